//! The pf rules of one data connection, as OpenBSD's ftp-proxy(8) writes
//! them into the session's anchor `ftp-proxy/<pid>.<session>`:
//!
//! ```text
//! pass in  [log] quick inet proto tcp from $src to $dst port $dport \
//!     flags S/SA keep state (max 1) rdr-to $to port $to_port [tag] [queue]
//! pass out [log] quick inet proto tcp from $src to $to port $to_port \
//!     flags S/SA keep state (max 1) nat-to $nat_src [port 20] [tag] [queue]
//! ```
//!
//! With `-T tag` the rules are `match` without `quick`, so the admin's own
//! rules decide, on the tag. Both rules are `once` (PFRULE_ONCE), which
//! OpenBSD's ftp-proxy leaves out (`notyet`): `max 1` bounds only the
//! states at one time, so without it a second connection could follow
//! the first until the next PORT/PASV. A one-shot rule is gone from the
//! anchor at its first match, and the state it made stays. Plain data:
//! tested on every target.

use super::openbsd::*;
use crate::filter::DataMap;
use std::net::IpAddr;

/// The NAT source port range when `-r` does not ask for port 20
/// (ftp-proxy.c: PF_NAT_PROXY_PORT_LOW..HIGH).
pub const NAT_PORT_LOW: u16 = 50001;
pub const NAT_PORT_HIGH: u16 = 65535;

/// What every rule carries from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleOpts<'a> {
    /// 0, PF_LOG (`-v`) or PF_LOG_ALL (`-vv`).
    pub log: u8,
    /// `-T`: a pf tag name.
    pub tag: Option<&'a str>,
    /// `-q`: a queue name.
    pub queue: Option<&'a str>,
}

/// Copies `s` into a NUL-terminated fixed field (cut to fit).
pub fn put_str(field: &mut [u8], s: &str) {
    let n = s.len().min(field.len() - 1);
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
    field[n..].fill(0);
}

/// An exact address (all-ones mask) of either family.
pub fn exact(w: &mut PfAddrWrap, a: IpAddr) {
    w.kind = PF_ADDR_ADDRMASK;
    match a {
        IpAddr::V4(v4) => {
            w.addr.addr8[..4].copy_from_slice(&v4.octets());
            w.mask.addr8[..4].fill(0xff);
        }
        IpAddr::V6(v6) => {
            w.addr.addr8 = v6.octets();
            w.mask.addr8 = [0xff; 16];
        }
    }
}

/// `proto tcp from $src to $dst port = $dport`, in either ABI's rule
/// (their address fields have the same names and layout).
macro_rules! match_fields {
    ($r:expr, $src:expr, $dst:expr, $dport:expr, $af4:expr, $af6:expr) => {{
        $r.af = if $src.is_ipv4() { $af4 } else { $af6 };
        $r.proto = IPPROTO_TCP;
        $crate::filter::pf::rules::exact(&mut $r.src.addr, $src);
        $crate::filter::pf::rules::exact(&mut $r.dst.addr, $dst);
        $r.dst.port_op = PF_OP_EQ;
        $r.dst.port[0] = $dport.to_be();
        // No `rtable`: the routing table of the packet.
        $r.rtableid = -1;
    }};
}
pub(crate) use match_fields;

/// `pass [quick] [log] … flags S/SA keep state (max 1) [queue] [tag]`
/// (filter.c: prepare_rule); `match` without quick when tagging.
macro_rules! pass_fields {
    ($r:expr, $o:expr, $pass:expr, $match:expr) => {{
        $r.action = if $o.tag.is_some() { $match } else { $pass };
        $r.quick = u8::from($o.tag.is_none());
        $r.log = $o.log;
        $r.keep_state = PF_STATE_NORMAL;
        $r.flags = TH_SYN;
        $r.flagset = TH_SYN | TH_ACK;
        $r.max_states = 1;
        if let Some(q) = $o.queue {
            $crate::filter::pf::rules::put_str(&mut $r.qname, q);
        }
        if let Some(t) = $o.tag {
            $crate::filter::pf::rules::put_str(&mut $r.tagname, t);
        }
    }};
}
pub(crate) use pass_fields;

/// The part both rules share (filter.c: prepare_rule).
fn base(r: &mut PfRule, src: IpAddr, dst: IpAddr, dport: u16, o: &RuleOpts) {
    *r = PfRule::default();
    match_fields!(r, src, dst, dport, AF_INET, AF_INET6);
    pass_fields!(r, o, PF_PASS, PF_MATCH);
    r.nat.addr.kind = PF_ADDR_NONE;
    r.rdr.addr.kind = PF_ADDR_NONE;
    r.set_prio = [PF_PRIO_NOTSET; 2];
    r.onrdomain = -1;
    r.rule_flag = PFRULE_ONCE;
}

/// Fills `out` with the rdr rule and the nat rule of mapping `d`.
pub fn mapping_rules(d: &DataMap, o: &RuleOpts, out: &mut [PfRule; 2]) {
    let [rdr, nat] = out;
    base(rdr, d.src, d.dst, d.dport, o);
    rdr.direction = PF_IN;
    exact(&mut rdr.rdr.addr, d.to);
    rdr.rdr.proxy_port[0] = d.to_port;

    base(nat, d.src, d.to, d.to_port, o);
    nat.direction = PF_OUT;
    exact(&mut nat.nat.addr, d.nat_src);
    nat.nat.proxy_port = match d.nat_sport {
        Some(p) => [p, p],
        None => [NAT_PORT_LOW, NAT_PORT_HIGH],
    };
}

/// The pid in a session anchor's own name (`<pid>.<session>`, as the
/// kernel lists the children of `ftp-proxy`); None for names that are
/// not the proxy's.
pub fn anchor_pid(name: &[u8]) -> Option<u32> {
    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
    let dot = name.iter().position(|&b| b == b'.')?;
    let (pid, session) = (&name[..dot], &name[dot + 1..]);
    let digits = |p: &[u8]| !p.is_empty() && p.len() <= 20 && p.iter().all(u8::is_ascii_digit);
    if !digits(pid) || !digits(session) || pid.len() > 10 {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// `ftp-proxy/<pid>.<session>`, NUL-terminated in `out`.
pub fn anchor_name(out: &mut [u8], pid: u32, session: u64) {
    out.fill(0);
    let room = out.len() - 1;
    let _ = crate::ftp::write::format(&mut out[..room], format_args!("ftp-proxy/{pid}.{session}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::DataMap;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cstr(b: &[u8]) -> &str {
        let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        std::str::from_utf8(&b[..n]).unwrap()
    }

    fn addr4(w: &PfAddrWrap) -> (IpAddr, [u8; 4]) {
        let a: [u8; 4] = w.addr.addr8[..4].try_into().unwrap();
        (IpAddr::from(a), w.mask.addr8[..4].try_into().unwrap())
    }

    fn build(d: &DataMap, o: &RuleOpts) -> [PfRule; 2] {
        let mut out = [PfRule::default(); 2];
        mapping_rules(d, o, &mut out);
        out
    }

    #[test]
    fn passive_pair_as_ftp_proxy_8_describes() {
        // Client 198.18.1.2 was told 198.19.2.2:50123; the server listens
        // on 198.19.2.2:30000; the proxy talks to it from 198.19.2.1.
        let d = DataMap::passive(
            ip("198.18.1.2"),
            ip("198.19.2.2"),
            50123,
            ip("198.19.2.2"),
            30000,
            ip("198.19.2.1"),
            7,
        );
        let [rdr, nat] = build(&d, &RuleOpts::default());
        for r in [&rdr, &nat] {
            assert_eq!(
                r.rule_flag, PFRULE_ONCE,
                "one connection, not one at a time"
            );
            assert_eq!((r.af, r.proto), (AF_INET, IPPROTO_TCP));
            assert_eq!((r.action, r.quick, r.log), (PF_PASS, 1, 0));
            assert_eq!((r.keep_state, r.max_states), (PF_STATE_NORMAL, 1));
            assert_eq!((r.flags, r.flagset), (TH_SYN, TH_SYN | TH_ACK));
            assert_eq!((r.rtableid, r.onrdomain), (-1, -1));
            assert_eq!(r.dst.port_op, PF_OP_EQ);
            assert_eq!(addr4(&r.src.addr), (ip("198.18.1.2"), [255; 4]));
        }
        assert_eq!(rdr.direction, PF_IN);
        assert_eq!(addr4(&rdr.dst.addr).0, ip("198.19.2.2"));
        assert_eq!(u16::from_be(rdr.dst.port[0]), 50123);
        assert_eq!(addr4(&rdr.rdr.addr), (ip("198.19.2.2"), [255; 4]));
        assert_eq!(rdr.rdr.proxy_port, [30000, 0]);
        assert_eq!(rdr.nat.addr.kind, PF_ADDR_NONE);
        assert_eq!(nat.direction, PF_OUT);
        assert_eq!(u16::from_be(nat.dst.port[0]), 30000);
        assert_eq!(addr4(&nat.nat.addr).0, ip("198.19.2.1"));
        assert_eq!(nat.nat.proxy_port, [NAT_PORT_LOW, NAT_PORT_HIGH]);
        assert_eq!(nat.rdr.addr.kind, PF_ADDR_NONE);
    }

    #[test]
    fn active_pair_with_port20_tag_queue_and_log_all() {
        let d = DataMap::active(
            ip("2001:db8:2::2"),
            ip("2001:db8:2::1"),
            60000,
            ip("2001:db8:1::2"),
            40000,
            ip("2001:db8:2::2"),
            true,
            9,
        );
        let o = RuleOpts {
            log: PF_LOG_ALL,
            tag: Some("FTPDATA"),
            queue: Some("ftp_q"),
        };
        let [rdr, nat] = build(&d, &o);
        for r in [&rdr, &nat] {
            assert_eq!(r.af, AF_INET6);
            assert_eq!(r.rule_flag, PFRULE_ONCE);
            assert_eq!((r.action, r.quick, r.log), (PF_MATCH, 0, PF_LOG_ALL));
            assert_eq!(cstr(&r.tagname), "FTPDATA");
            assert_eq!(cstr(&r.qname), "ftp_q");
            assert_eq!(r.src.addr.addr.addr8, ip6("2001:db8:2::2"));
            assert_eq!(r.src.addr.mask.addr8, [0xff; 16]);
        }
        assert_eq!(rdr.dst.addr.addr.addr8, ip6("2001:db8:2::1"));
        assert_eq!(u16::from_be(rdr.dst.port[0]), 60000);
        assert_eq!(rdr.rdr.addr.addr.addr8, ip6("2001:db8:1::2"));
        assert_eq!(rdr.rdr.proxy_port[0], 40000);
        assert_eq!(nat.dst.addr.addr.addr8, ip6("2001:db8:1::2"));
        assert_eq!(u16::from_be(nat.dst.port[0]), 40000);
        assert_eq!(nat.nat.addr.addr.addr8, ip6("2001:db8:2::2"));
        assert_eq!(nat.nat.proxy_port, [20, 20]);
    }

    fn ip6(s: &str) -> [u8; 16] {
        match ip(s) {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => unreachable!(),
        }
    }

    #[test]
    fn anchor_names_and_fixed_strings() {
        let mut a = [0xaa_u8; 64];
        anchor_name(&mut a, 4242, 17);
        assert_eq!(cstr(&a), "ftp-proxy/4242.17");
        let mut short = [0xaa_u8; 8];
        put_str(&mut short, "a-very-long-tag");
        assert_eq!(cstr(&short), "a-very-");
        assert_eq!(short[7], 0);
    }

    #[test]
    fn stale_anchors_are_told_by_their_pid() {
        assert_eq!(anchor_pid(b"4242.17\0\0"), Some(4242));
        assert_eq!(anchor_pid(b"1.0"), Some(1));
        for not_ours in [
            &b"4242"[..],
            b".17",
            b"4242.",
            b"a.1",
            b"1.b",
            b"99999999999.1",
            b"",
        ] {
            assert_eq!(anchor_pid(not_ours), None, "{not_ours:?}");
        }
    }
}
