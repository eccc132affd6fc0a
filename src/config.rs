//! Command-line options, validated against the ranges of OpenBSD's ftp-proxy(8).

use crate::ports::{Range, RANGE_MIN_PORTS};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAX_SESSIONS: u32 = 500;
pub const MAX_TIMEOUT: u32 = 86400;
/// Linux interface names are at most IFNAMSIZ-1 bytes.
pub const IFNAMSIZ: usize = 16;
/// How many `-i` (and `-o`) interfaces one proxy names.
pub const MAX_IFACES: usize = 8;
/// Default of `-M`: sessions one client address may hold (or `-m`, if
/// smaller). Enough for a client's parallel transfers, and one host on a
/// LAN or guest network cannot take every slot.
pub const DEFAULT_PER_CLIENT: u32 = 32;
/// pf's PF_TAG_NAME_SIZE and PF_QNAME_SIZE, with their NUL.
pub const PF_NAME_SIZE: usize = 64;

pub type Ifaces = heapless::Vec<heapless::String<IFNAMSIZ>, MAX_IFACES>;
/// Longest instance name: `-n`, or an IPv6 listen address and a port.
pub const NAME_MAX: usize = 48;
pub type Instance = heapless::String<NAME_MAX>;
/// A unix socket path's room (sun_path, less its NUL).
pub const SUN_PATH_MAX: usize = 104;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub ipv6: bool,
    pub anonymous_only: bool,
    pub source_addr: Option<IpAddr>,
    pub listen_addr: IpAddr,
    pub debug_level: u8,
    pub foreground: bool,
    pub max_sessions: u32,
    /// `-M`: sessions one client host (IPv6: one /64) may hold at once.
    pub max_per_client: u32,
    pub reverse_port: u16,
    pub listen_port: u16,
    pub queue: Option<u32>,
    pub reverse_addr: Option<IpAddr>,
    pub port20: bool,
    pub tag: Option<u32>,
    pub timeout: u32,
    pub verbose: u8,
    pub intercept: Ifaces,
    /// `-o`: intercept only what would be routed out of these.
    pub egress: Ifaces,
    /// `-T` and `-q` as given: on pf a tag name and a queue name.
    pub tag_name: Option<String>,
    pub queue_name: Option<String>,
    /// `-u`: the user to run as (default _ftp_proxy, else nobody).
    pub user: Option<String>,
    /// `-c`: the directory to chroot to (default /var/empty).
    pub chroot: Option<String>,
    /// What tells this instance from others on the host (`-n`, else the
    /// listen address and port): its nftables table is named after it.
    pub instance: Instance,
    /// `-s`: the status socket (default `RUN_DIR/NAME.sock`).
    pub status_path: Option<String>,
    /// `-l`: where log lines go (default: stderr with -d, else syslog).
    pub log_to: Option<LogTo>,
    /// `-e`: (reverse mode) the address passive replies name, where a
    /// NAT in front of the router publishes it.
    pub advertised: Option<IpAddr>,
    /// `-E`: the proxy ports to pick from.
    pub ports: Range,
    /// `-H local,peer`: (Linux) the sync link of an HA pair, our
    /// address and the peer's, both at the listen port.
    pub ha_sync: Option<(IpAddr, IpAddr)>,
}

/// `-l`: the log's destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTo {
    Stderr,
    /// A syslog socket: `/dev/log`, or the path given.
    Syslog(String),
}

/// The syslog socket of `-l syslog`.
pub const DEV_LOG: &str = "/dev/log";

impl Default for Config {
    fn default() -> Self {
        Config {
            ipv6: false,
            anonymous_only: false,
            source_addr: None,
            listen_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            debug_level: 5,
            foreground: false,
            max_sessions: 100,
            max_per_client: DEFAULT_PER_CLIENT,
            reverse_port: 21,
            listen_port: 8021,
            queue: None,
            reverse_addr: None,
            port20: false,
            tag: None,
            timeout: MAX_TIMEOUT,
            verbose: 0,
            intercept: heapless::Vec::new(),
            egress: heapless::Vec::new(),
            tag_name: None,
            queue_name: None,
            user: None,
            chroot: None,
            instance: Instance::new(),
            status_path: None,
            log_to: None,
            advertised: None,
            ports: Range::default(),
            ha_sync: None,
        }
    }
}

/// Why the command line was refused: a one-line reason for stderr.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    Help,
    Bad(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Help => f.write_str("help requested"),
            ConfigError::Bad(s) => f.write_str(s),
        }
    }
}

fn bad<T>(msg: String) -> Result<T, ConfigError> {
    Err(ConfigError::Bad(msg))
}

pub const USAGE: &str = "\
usage: ftp-proxy [-6Adrv] [-a sourceaddr] [-b address] [-c dir] [-D level]
                 [-E low-high] [-e address] [-i interface] [-l log]
                 [-M maxperclient] [-m maxsessions] [-n name] [-o interface]
                 [-P port] [-p port] [-q queue] [-R address] [-s socket]
                 [-T tag] [-t timeout] [-u user]
                 [-H local,peer]
       ftp-proxy -S [-j] [name | socket ...]

  -6              IPv6 mode: only EPSV and EPRT are allowed
  -A              only anonymous logins (USER ftp or anonymous)
  -a sourceaddr   source address of the control connection to the server
  -b address      listen address (default 127.0.0.1, ::1 with -6)
  -c dir          empty directory to chroot to, as root (default /var/empty)
  -D level        log level 0..7, as syslog priorities (default 5)
  -d              stay in the foreground and log to stderr
  -E low-high     proxy ports to pick from, both ends included, 1024..65535,
                  at least 8 (default 49152-65535): what a NAT in front
                  of the router forwards
  -e address      with -R: the address passive (227) replies name, where a
                  NAT in front of the router publishes it (double NAT)
  -H local,peer   (Linux) HA pair: copy the sessions to the peer proxy at
                  address peer, port -p, and take over the peer's when
                  its VIPs (-b, -a) come here; needs -b and -a
  -i interface    (Linux) redirect tcp/21 arriving on this interface to the
                  proxy (to -b, or with -b 0.0.0.0 to the interface's
                  first address); may be given up to 8 times
  -l log          where log lines go: stderr, syslog (/dev/log, facility
                  daemon, each line at its own priority, tagged
                  ftp-proxy/NAME) or the path of a syslog socket
                  (default: stderr with -d, else syslog)
  -M maxperclient sessions one client host may hold, 1..500 (an IPv6
                  client counts by its /64; default 32, or -m if smaller)
  -m maxsessions  concurrent sessions, 1..500 (default 100)
  -n name         (Linux) instance name, 1..32 of A-Z a-z 0-9 _ . -; the
                  nftables table is inet ftp-proxy-NAME (default: the
                  listen address and port, as 127.0.0.1-8021)
  -o interface    (Linux) proxy only to destinations routed out of this
                  interface (for example the WAN); with -i, intercept only
                  those; up to 8 times
  -P port         fixed server port, with -R (default 21)
  -p port         listen port (default 8021)
  -q queue        Linux: tc class MAJOR:MINOR set as the priority of data
                  packets, needs -T; pf: queue name
  -S              print the state of running instances (all, or those
                  named) and exit; -j: as JSON
  -s socket       status socket, mode 0600 (default
                  /var/run/ftp-proxy/NAME.sock)
  -R address      reverse mode: always connect to this server (a name is
                  resolved once, at start)
  -r              active mode data connections come from port 20
  -T tag          Linux: conntrack mark (number) on data connections;
                  pf: tag name (match rules instead of pass rules)
  -t timeout      idle timeout of the control connection, 1..86400 s
                  (default 86400)
  -u user         user to run as, when started as root (default _ftp_proxy,
                  on FreeBSD then proxy, then nobody)
  -v              log the first packet of data connections; twice: log all
                  their packets (needs -T)
  -h              this help
";

fn number(opt: &str, s: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let v = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        s.parse::<u64>().ok()
    };
    match v {
        Some(v) if v >= min && v <= max => Ok(v),
        _ => bad(format!("-{opt} {s}: must be a number from {min} to {max}")),
    }
}

fn address(opt: &str, s: &str) -> Result<IpAddr, ConfigError> {
    s.parse::<IpAddr>()
        .or_else(|_| bad(format!("-{opt} {s}: not a numeric IPv4 or IPv6 address")))
}

/// `-R`: a numeric address, or a host name resolved now (as OpenBSD's
/// ftp-proxy does) to its first address of the proxy's family.
fn server_address(s: &str, ipv6: bool) -> Result<IpAddr, ConfigError> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok(a);
    }
    use std::net::ToSocketAddrs;
    let found = (s, 0u16)
        .to_socket_addrs()
        .map_err(|e| ConfigError::Bad(format!("-R {s}: {e}")))?
        .map(|a| a.ip())
        .find(|a| a.is_ipv6() == ipv6);
    let fam = if ipv6 { "IPv6" } else { "IPv4" };
    found.ok_or_else(|| ConfigError::Bad(format!("-R {s}: no {fam} address")))
}

/// Interface names: the kernel's IFNAMSIZ less its NUL, never cut.
fn interfaces(opt: &str, names: Vec<String>) -> Result<Ifaces, ConfigError> {
    let mut out = Ifaces::new();
    for name in names {
        let ok = !name.is_empty()
            && name.len() < IFNAMSIZ
            && !name.contains('/')
            && name.bytes().all(|b| b.is_ascii_graphic());
        match heapless::String::try_from(name.as_str())
            .ok()
            .filter(|_| ok)
        {
            Some(s) => out
                .push(s)
                .or_else(|_| bad(format!("-{opt}: at most {MAX_IFACES} interfaces")))?,
            None => {
                return bad(format!(
                    "-{opt} {name}: not an interface name (1..{} characters)",
                    IFNAMSIZ - 1
                ))
            }
        }
    }
    Ok(out)
}

/// `-n NAME`, or the listen address and port (`198.18.1.1-8021`,
/// `2001_db8__1-8021`): characters nft's own parser takes in a name.
fn instance(given: Option<String>, addr: IpAddr, port: u16) -> Result<Instance, ConfigError> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let name = match given {
        Some(n) if (1..=32).contains(&n.len()) && n.bytes().all(ok) => n,
        Some(n) => return bad(format!("-n {n}: 1..32 of A-Z a-z 0-9 _ . -")),
        None => format!("{addr}-{port}").replace(':', "_"),
    };
    Instance::try_from(name.as_str()).or_else(|_| bad(format!("-n {name}: too long")))
}

/// `-E LOW-HIGH`: proxy ports above the privileged ones, enough of them.
fn port_range(s: &str) -> Result<Range, ConfigError> {
    let parsed = s.split_once('-').and_then(|(l, h)| {
        let low = l.parse::<u16>().ok()?;
        let high = h.parse::<u16>().ok()?;
        Range::new(low, high)
    });
    match parsed {
        Some(r) if r.low() >= 1024 && r.ports() >= RANGE_MIN_PORTS => Ok(r),
        _ => bad(format!(
            "-E {s}: LOW-HIGH, ports 1024..65535, at least {RANGE_MIN_PORTS} of them"
        )),
    }
}

/// `MAJOR:MINOR` in hex as tc(8) writes class ids, packed as skb->priority.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn tc_class(s: &str) -> Result<u32, ConfigError> {
    let parsed = s.split_once(':').and_then(|(maj, min)| {
        let maj = u16::from_str_radix(maj, 16).ok()?;
        let min = u16::from_str_radix(min, 16).ok()?;
        Some((u32::from(maj) << 16) | u32::from(min))
    });
    parsed.ok_or_else(|| ConfigError::Bad(format!("-q {s}: not a tc class MAJOR:MINOR (hex)")))
}

/// The packet filter a command line is meant for: a few options differ
/// between them (`-T`, `-q`; `-i`, `-o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Linux: `-T` a conntrack mark, `-q` a tc class; `-i`/`-o` intercept.
    Nft,
    /// OpenBSD, FreeBSD: `-T` and `-q` are names; pf.conf intercepts.
    Pf,
}

impl Filter {
    /// The one this binary drives.
    pub const HOST: Filter = if cfg!(target_os = "linux") {
        Filter::Nft
    } else {
        Filter::Pf
    };
}

impl Config {
    /// Parses `args` (without the program name) for this host's filter.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Config, ConfigError> {
        Config::parse_for(Filter::HOST, args)
    }

    /// Parses `args` as the daemon built for `filter` would (the package
    /// tests check BSD command lines on Linux with it).
    pub fn parse_for<I: IntoIterator<Item = String>>(
        filter: Filter,
        args: I,
    ) -> Result<Config, ConfigError> {
        let mut o = getopts::Options::new();
        o.parsing_style(getopts::ParsingStyle::StopAtFirstFree);
        for (f, d) in [
            ("6", "ipv6"),
            ("A", "anon"),
            ("d", "fg"),
            ("r", "port20"),
            ("h", "help"),
        ] {
            o.optflag(f, "", d);
        }
        o.optflagmulti("v", "", "verbose");
        for f in [
            "a", "b", "c", "D", "E", "e", "H", "l", "M", "m", "n", "P", "p", "q", "R", "s", "T",
            "t", "u",
        ] {
            o.optopt(f, "", "", "");
        }
        o.optmulti("i", "", "", "");
        o.optmulti("o", "", "", "");
        let m = o.parse(args).map_err(|e| ConfigError::Bad(e.to_string()))?;
        if m.opt_present("h") {
            return Err(ConfigError::Help);
        }
        if let Some(extra) = m.free.first() {
            return bad(format!("unexpected argument: {extra}"));
        }
        let mut c = Config {
            ipv6: m.opt_present("6"),
            anonymous_only: m.opt_present("A"),
            foreground: m.opt_present("d"),
            port20: m.opt_present("r"),
            verbose: m.opt_count("v").min(2) as u8,
            user: m.opt_str("u"),
            chroot: m.opt_str("c"),
            ..Config::default()
        };
        if c.ipv6 {
            c.listen_addr = IpAddr::V6(Ipv6Addr::LOCALHOST);
        }
        if let Some(s) = m.opt_str("a") {
            c.source_addr = Some(address("a", &s)?);
        }
        if let Some(s) = m.opt_str("b") {
            c.listen_addr = address("b", &s)?;
        }
        if let Some(s) = m.opt_str("e") {
            c.advertised = Some(address("e", &s)?);
        }
        if let Some(s) = m.opt_str("E") {
            c.ports = port_range(&s)?;
        }
        if let Some(s) = m.opt_str("H") {
            let Some((local, peer)) = s.split_once(',') else {
                return bad(format!("-H {s}: local,peer (two addresses)"));
            };
            c.ha_sync = Some((address("H", local)?, address("H", peer)?));
        }
        if let Some(s) = m.opt_str("D") {
            c.debug_level = number("D", &s, 0, 7)? as u8;
        }
        if let Some(s) = m.opt_str("m") {
            c.max_sessions = number("m", &s, 1, MAX_SESSIONS.into())? as u32;
        }
        c.max_per_client = match m.opt_str("M") {
            Some(s) => number("M", &s, 1, MAX_SESSIONS.into())? as u32,
            None => DEFAULT_PER_CLIENT,
        }
        .min(c.max_sessions);
        if let Some(s) = m.opt_str("P") {
            c.reverse_port = number("P", &s, 1, 65535)? as u16;
        }
        if let Some(s) = m.opt_str("p") {
            c.listen_port = number("p", &s, 1, 65535)? as u16;
        }
        c.queue_name = m.opt_str("q");
        c.tag_name = m.opt_str("T");
        // nftables: a tc class and a conntrack mark; pf takes names.
        if let (Filter::Nft, Some(s)) = (filter, m.opt_str("q")) {
            c.queue = Some(tc_class(&s)?);
        }
        for (opt, v) in [("T", &c.tag_name), ("q", &c.queue_name)] {
            if v.as_ref()
                .is_some_and(|v| v.is_empty() || v.len() >= PF_NAME_SIZE)
            {
                return bad(format!("-{opt}: 1..{} characters", PF_NAME_SIZE - 1));
            }
        }
        if let Some(s) = m.opt_str("R") {
            c.reverse_addr = Some(server_address(&s, c.ipv6)?);
        }
        if let (Filter::Nft, Some(s)) = (filter, m.opt_str("T")) {
            c.tag = Some(number("T", &s, 1, u32::MAX.into())? as u32);
        }
        if let Some(s) = m.opt_str("t") {
            c.timeout = number("t", &s, 1, MAX_TIMEOUT.into())? as u32;
        }
        c.intercept = interfaces("i", m.opt_strs("i"))?;
        c.egress = interfaces("o", m.opt_strs("o"))?;
        c.instance = instance(m.opt_str("n"), c.listen_addr, c.listen_port)?;
        if let Some(s) = m.opt_str("s") {
            if !s.starts_with('/') || s.len() >= SUN_PATH_MAX {
                return bad(format!(
                    "-s {s}: an absolute path, under {SUN_PATH_MAX} characters"
                ));
            }
            c.status_path = Some(s);
        }
        c.log_to = match m.opt_str("l").as_deref() {
            None => None,
            Some("stderr") => Some(LogTo::Stderr),
            Some("syslog") => Some(LogTo::Syslog(DEV_LOG.into())),
            Some(p) if p.starts_with('/') && p.len() < SUN_PATH_MAX => {
                Some(LogTo::Syslog(p.into()))
            }
            Some(p) => {
                return bad(format!(
                    "-l {p}: stderr, syslog, or the absolute path of a syslog socket"
                ))
            }
        };
        c.check(filter)?;
        Ok(c)
    }

    /// Rules that span several options.
    fn check(&self, filter: Filter) -> Result<(), ConfigError> {
        let fam_ok = |a: &IpAddr| a.is_ipv6() == self.ipv6;
        let fam = if self.ipv6 { "IPv6 (-6)" } else { "IPv4" };
        for (opt, a) in [
            ("a", self.source_addr),
            ("b", Some(self.listen_addr)),
            ("R", self.reverse_addr),
            ("e", self.advertised),
        ] {
            if let Some(a) = a {
                if !fam_ok(&a) {
                    return bad(format!("-{opt} {a}: the proxy is in {fam} mode"));
                }
            }
        }
        let nft = filter == Filter::Nft;
        // nftables finds the later packets of a data connection by its mark.
        if nft && self.queue_name.is_some() && self.tag_name.is_none() {
            return bad("-q needs -T: the queue is applied to connections carrying the tag".into());
        }
        if nft && self.verbose > 1 && self.tag_name.is_none() {
            return bad("-vv needs -T: every packet is logged by its conntrack mark".into());
        }
        if !nft && (!self.intercept.is_empty() || !self.egress.is_empty()) {
            return bad(
                "-i and -o are for nftables: on pf, intercept in pf.conf (rdr-to or divert-to)"
                    .into(),
            );
        }
        if let Some(a) = self.advertised {
            if self.reverse_addr.is_none() {
                return bad(format!(
                    "-e {a} needs -R: in transparent mode clients are told the \
                     address they connected to"
                ));
            }
            if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                return bad(format!("-e {a}: a unicast address clients can connect to"));
            }
        }
        // (The default range is the man page's, whatever the listen port.)
        if self.ports != Range::default() && self.ports.contains(self.listen_port) {
            return bad(format!(
                "-E {}: holds the listen port {}",
                self.ports, self.listen_port
            ));
        }
        if !self.egress.is_empty() && self.reverse_addr.is_some() {
            return bad("-o and -R exclude each other: -R names the one server".into());
        }
        if let Some((local, peer)) = self.ha_sync {
            self.check_ha(filter, local, peer)?;
        }
        if !self.intercept.is_empty() && self.listen_addr.is_loopback() {
            return bad(format!(
                "-i needs a non-loopback -b: redirected connections arrive at -b \
                 (or, with -b 0.0.0.0, at the interface's first address), not at {}",
                self.listen_addr
            ));
        }
        Ok(())
    }
}

impl Config {
    /// `-H`: what session failover needs of the other options.
    fn check_ha(&self, filter: Filter, local: IpAddr, peer: IpAddr) -> Result<(), ConfigError> {
        let h = format!("-H {local},{peer}");
        if filter != Filter::Nft {
            return bad(format!("{h}: session failover is Linux-only (TCP_REPAIR)"));
        }
        let unicast = |a: IpAddr| !(a.is_unspecified() || a.is_multicast() || a.is_loopback());
        if local == peer || !unicast(local) || !unicast(peer) || local.is_ipv4() != peer.is_ipv4() {
            return bad(format!(
                "{h}: two different unicast addresses of one family, ours and the peer's on the sync link"
            ));
        }
        // The two ends of a session must be on addresses the peer takes
        // over: the VIPs.
        if self.listen_addr.is_unspecified() || self.listen_addr.is_loopback() {
            return bad(format!(
                "{h} needs -b <the LAN VIP>: the peer rebuilds the sessions on the address they arrived at"
            ));
        }
        if self.source_addr.is_none() {
            return bad(format!(
                "{h} needs -a <the WAN VIP>: the peer rebuilds the connections to the servers from it"
            ));
        }
        // The sync link listens at -p after the privileges are dropped.
        if self.listen_port < 1024 {
            return bad(format!(
                "{h}: the sync link listens at -p, which must be 1024 or above"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn pf_and_nftables_read_tag_and_queue_differently() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let pf = Config::parse_for(Filter::Pf, args("-T FTPDATA -q ftp_q -vv")).unwrap();
        assert_eq!(pf.tag_name.as_deref(), Some("FTPDATA"));
        assert_eq!(pf.queue_name.as_deref(), Some("ftp_q"));
        assert_eq!((pf.tag, pf.queue, pf.verbose), (None, None, 2));
        // pf logs every packet with its own `log (all)`: no tag needed.
        assert!(Config::parse_for(Filter::Pf, args("-vv")).is_ok());
        assert!(Config::parse_for(Filter::Nft, args("-vv")).is_err());
        assert!(Config::parse_for(Filter::Nft, args("-T FTPDATA")).is_err());
        let nft = Config::parse_for(Filter::Nft, args("-T 7 -q 1:10")).unwrap();
        assert_eq!((nft.tag, nft.queue), (Some(7), Some(0x0001_0010)));
        let e = Config::parse_for(Filter::Pf, args("-b 198.18.0.1 -i em0")).unwrap_err();
        assert!(matches!(e, ConfigError::Bad(m) if m.contains("pf.conf")));
        assert!(Config::parse_for(Filter::Pf, args("-o em1")).is_err());
    }

    #[test]
    fn defaults_match_the_man_page() {
        let c = p("").unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(c.listen_port, 8021);
        assert_eq!(c.max_sessions, 100);
        assert_eq!(c.timeout, 86400);
        assert_eq!(c.debug_level, 5);
        assert_eq!(c.reverse_port, 21);
        assert!(!c.foreground && !c.ipv6 && !c.anonymous_only && !c.port20);
        assert_eq!(
            p("-6").unwrap().listen_addr,
            "::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ranges_are_enforced() {
        assert!(p("-m 0").is_err());
        assert_eq!(p("-m 1").unwrap().max_sessions, 1);
        assert_eq!(p("-m 500").unwrap().max_sessions, 500);
        assert!(p("-m 501").is_err());
        assert!(p("-t 0").is_err());
        assert_eq!(p("-t 86400").unwrap().timeout, 86400);
        assert!(p("-t 86401").is_err());
        assert!(p("-D 8").is_err());
        assert_eq!(p("-D 0").unwrap().debug_level, 0);
        assert!(p("-p 0").is_err());
        assert!(p("-p 65536").is_err());
        assert!(p("-m abc").is_err());
    }

    #[test]
    fn flags_and_values() {
        let c =
            p("-6 -A -d -r -vv -T 0x2a -q 1:10 -b :: -a 2001:db8::1 -R 2001:db8::2 -P 2121 -p 21")
                .unwrap();
        assert!(c.ipv6 && c.anonymous_only && c.foreground && c.port20);
        assert_eq!(c.verbose, 2);
        assert_eq!(c.tag, Some(42));
        assert_eq!(c.queue, Some(0x0001_0010));
        assert_eq!(c.reverse_addr, Some("2001:db8::2".parse().unwrap()));
        assert_eq!(c.reverse_port, 2121);
        assert_eq!(c.listen_port, 21);
    }

    #[test]
    fn instance_names() {
        assert_eq!(p("").unwrap().instance, "127.0.0.1-8021");
        assert_eq!(p("-6").unwrap().instance, "__1-8021");
        let v6 = p("-6 -b 2001:db8:1:2:3:4:5:6 -p 65535").unwrap();
        assert_eq!(v6.instance, "2001_db8_1_2_3_4_5_6-65535");
        assert_eq!(p("-n guest_v4").unwrap().instance, "guest_v4");
        assert_eq!(
            p(&format!("-n {}", "a".repeat(32))).unwrap().instance.len(),
            32
        );
        for bad in ["a b", "fw4;", "x/y", "name:1", &"a".repeat(33)] {
            let args = vec!["-n".to_string(), bad.to_string()];
            assert!(Config::parse(args).is_err(), "{bad:?}");
        }
        assert!(Config::parse(vec!["-n".to_string(), String::new()]).is_err());
    }

    #[test]
    fn per_client_limit() {
        assert_eq!(p("").unwrap().max_per_client, DEFAULT_PER_CLIENT);
        assert_eq!(p("-m 5").unwrap().max_per_client, 5, "capped by -m");
        assert_eq!(p("-M 2").unwrap().max_per_client, 2);
        assert!(p("-M 0").is_err());
        assert!(p("-M 501").is_err());
    }

    #[test]
    fn reverse_server_numeric_or_unknown() {
        // A name that resolves: tests/cli.rs (name service, native only).
        assert_eq!(
            p("-R 198.18.0.9").unwrap().reverse_addr,
            Some("198.18.0.9".parse().unwrap())
        );
        assert!(p("-R no-such-host.invalid").is_err());
    }

    #[test]
    fn inconsistent_combinations_are_refused() {
        assert!(p("-6 -b 127.0.0.1").is_err());
        assert!(p("-R 2001:db8::1").is_err());
        assert!(p("-q 1:1").is_err());
        assert!(p("-vv").is_err());
        assert!(p("-i eth0").is_err());
        assert_eq!(p("-i eth0 -b 198.18.0.1").unwrap().intercept.len(), 1);
        assert!(p("-i a/b -b 198.18.0.1").is_err());
        assert!(p("-i averyveryverylongname -b 198.18.0.1").is_err());
        // IFNAMSIZ is 16 with its NUL: 15 characters fit, 16 do not.
        assert!(p("-i abcdefghijklmno -b 198.18.0.1").is_ok());
        assert!(p("-i abcdefghijklmnop -b 198.18.0.1").is_err());
        // Without -i, -o still limits where the proxy connects to.
        assert!(p("-o wan").is_ok());
        assert!(p("-i lan -o wan -b 198.18.0.1 -R 198.18.0.2").is_err());
        let c = p("-i lan -o wan -o wan6 -b 198.18.0.1").unwrap();
        assert_eq!(c.egress.len(), 2);
        let long = "x".repeat(64);
        assert!(p(&format!("-T {long}")).is_err());
        assert!(p(&format!("-q {long} -T 1")).is_err());
        assert!(p("-x").is_err());
        assert!(p("stray").is_err());
        assert_eq!(p("-h"), Err(ConfigError::Help));
    }

    #[test]
    fn proxy_port_range_and_advertised_address() {
        assert_eq!(p("").unwrap().ports, Range::default());
        let r = p("-E 50000-50099").unwrap().ports;
        assert_eq!((r.low(), r.high(), r.ports()), (50000, 50099, 100));
        assert_eq!(p("-E 60000-60007").unwrap().ports.ports(), 8);
        for bad in [
            "60000-60006", // 7 ports
            "1023-2000",
            "2000-1024",
            "50000",
            "50000:50099",
            "50000-65536",
            "-1-100",
            "a-b",
            "8000-8100", // the listen port 8021
        ] {
            let args = vec!["-E".to_string(), bad.to_string()];
            assert!(Config::parse(args).is_err(), "{bad:?}");
        }
        assert!(p("-E 8000-8100 -p 2121").is_ok());
        let c = p("-R 198.18.5.2 -e 198.18.9.9").unwrap();
        assert_eq!(c.advertised, Some("198.18.9.9".parse().unwrap()));
        assert!(p("-e 198.18.9.9").is_err(), "needs -R");
        assert!(p("-R 198.18.5.2 -e 2001:db8::1").is_err());
        assert!(p("-R 198.18.5.2 -e 0.0.0.0").is_err());
        assert!(p("-R 198.18.5.2 -e 224.0.0.1").is_err());
        assert!(p("-R 198.18.5.2 -e 127.0.0.1").is_err());
        assert!(p("-R 198.18.5.2 -e example.org").is_err());
        assert!(p("-6 -R 2001:db8::5 -e 2001:db8::9").is_ok());
    }

    #[test]
    fn log_destinations_and_status_socket() {
        assert_eq!(p("").unwrap().log_to, None);
        assert_eq!(p("-l stderr").unwrap().log_to, Some(LogTo::Stderr));
        assert_eq!(
            p("-l syslog").unwrap().log_to,
            Some(LogTo::Syslog("/dev/log".into()))
        );
        assert_eq!(
            p("-l /run/log.sock").unwrap().log_to,
            Some(LogTo::Syslog("/run/log.sock".into()))
        );
        assert!(p("-l relative").is_err());
        assert!(p(&format!("-l /{}", "x".repeat(110))).is_err());
        assert_eq!(
            p("-s /run/x.sock").unwrap().status_path.as_deref(),
            Some("/run/x.sock")
        );
        assert!(p("-s x.sock").is_err());
    }
}
