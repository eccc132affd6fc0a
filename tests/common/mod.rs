//! Namespace lab for the end-to-end tests: wraps lab/lab.sh, starts the
//! proxy in the router namespace, runs real clients in the client one.
//! Every lab has unique namespace names and is torn down on drop, also
//! when a test fails.
#![allow(dead_code)]

pub mod inproc;
pub mod scripted;

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const LAB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lab/lab.sh");
pub const HA_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lab/ha.sh");
pub const FTPCLI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/ftpcli.py");
pub const PROXY: &str = env!("CARGO_BIN_EXE_ftp-proxy");

pub const SERVER4: &str = "198.19.2.2";
pub const SERVER6: &str = "2001:db8:2::2";
pub const ROUTER_C4: &str = "198.18.1.1";
pub const ROUTER_C6: &str = "2001:db8:1::1";
/// `add_upstream`: the NAT box's public address, and the client behind it.
pub const UPSTREAM_PUBLIC: &str = "198.18.4.1";
pub const UPSTREAM_CLIENT: &str = "198.18.4.2";

/// Size of the file every cell downloads: spans many TCP segments.
pub const FILE_SIZE: usize = 1_500_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Vsftpd,
    Proftpd,
    /// pyftpdlib as it is.
    Pyftpd,
    /// pyftpdlib without EPSV and EPRT (`500` to both), as old servers.
    PyftpdOld,
    /// pyftpdlib offering explicit FTPS (AUTH TLS in FEAT), not requiring it.
    PyftpdTls,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Vsftpd => "vsftpd",
            Server::Proftpd => "proftpd",
            Server::Pyftpd => "pyftpd",
            Server::PyftpdOld => "pyftpd-old",
            Server::PyftpdTls => "pyftpd-tls",
        }
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn vsftpd_present() -> bool {
    fs::metadata("/usr/sbin/vsftpd").is_ok() || fs::metadata("/opt/vsftpd/usr/sbin/vsftpd").is_ok()
}

/// What the suite needs that this machine lacks.
fn missing() -> Vec<String> {
    let mut m = Vec::new();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        m.push("root".to_string());
    }
    for c in [
        "ip",
        "tc",
        "nft",
        "ss",
        "curl",
        "lftp",
        "python3",
        "proftpd",
        "sha256sum",
        "timeout",
        "setpriv",
        "prlimit",
        "keepalived",
        "conntrackd",
    ] {
        if !have(c) {
            m.push(c.to_string());
        }
    }
    if !vsftpd_present() {
        m.push("vsftpd".to_string());
    }
    // Debian's python3-pyftpdlib, for Debian's own interpreter.
    let py = Command::new("/usr/bin/python3")
        .args(["-c", "import pyftpdlib.handlers, OpenSSL"])
        .stderr(Stdio::null())
        .status();
    if !py.is_ok_and(|s| s.success()) {
        m.push("python3-pyftpdlib and python3-openssl".to_string());
    }
    if !have("openssl") {
        m.push("openssl".to_string());
    }
    m
}

/// True when the suite can run. Under CI=true a missing prerequisite is a
/// failure; elsewhere the test says loudly that it did not run.
pub fn prerequisites(test: &str) -> bool {
    let m = missing();
    if m.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: missing prerequisites: {} (install them: see .ci/run)",
        m.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED (not run): {msg}");
    false
}

fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("running {cmd:?}: {e}"),
    }
}

fn check(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Deterministic bytes (xorshift), so a failed transfer can be reproduced.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn sha256(path: &PathBuf) -> String {
    let out = check(Command::new("sha256sum").arg(path));
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// What a command printed, stdout then stderr, for assertion messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits (at most 10 s) until the proxy `child`, logging to `log`, says
/// it listens; fails if it exits first.
pub fn wait_listening(child: &mut Child, log: &std::path::Path) {
    let text = || fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text().contains("listening on") {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("ftp-proxy exited at start ({st}):\n{}", text());
        }
        assert!(
            Instant::now() < deadline,
            "ftp-proxy did not start:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `sig`, which must end the proxy `child` within 10 s; its exit code.
pub fn signal_and_wait(mut child: Child, sig: libc::c_int, log: &std::path::Path) -> Option<i32> {
    // `ip netns exec` execs the proxy: the child pid is the proxy's.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = fs::read_to_string(log).unwrap_or_default();
            panic!("ftp-proxy ignored signal {sig}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The nftables table of a proxy started with `args`.
pub fn table_of(args: &[&str]) -> String {
    let cfg = ftp_proxy::config::Config::parse(args.iter().map(|a| a.to_string()))
        .expect("proxy arguments");
    ftp_proxy::filter::nft::instance::table_name(&cfg.instance).to_string()
}

pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    pub v6: bool,
    proxy: Option<Child>,
    pub log: PathBuf,
    /// The nftables table of the proxy started last.
    pub table: String,
    /// The binary `start_proxy` runs (a copy, for tests that replace it).
    pub binary: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Builds the three namespaces. `v6` only picks the server's family.
    pub fn new(v6: bool) -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // veth names are "fp<name>-rc": name stays within 10 characters.
        let name = format!("{:x}{n}", std::process::id() & 0xffff);
        let dir = std::env::temp_dir().join(format!("fp-lab-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("lab dir");
        let lab = Lab {
            log: dir.join("proxy.log"),
            name,
            dir,
            v6,
            proxy: None,
            table: String::new(),
            binary: PROXY.to_string(),
        };
        check(Command::new(LAB_SH).args(["up", &lab.name]));
        lab
    }

    /// Adds the `lan` network behind the router: namespace 'l', host
    /// 198.18.3.2, router side `lan_iface()`.
    pub fn add_lan(&self) {
        check(Command::new(LAB_SH).args(["lan", &self.name]));
    }

    /// Puts a NAT box in front of the router (double NAT): the client
    /// namespace becomes the box, publishing `UPSTREAM_PUBLIC` and
    /// forwarding tcp/21 and `range` (LOW-HIGH) to the router; the
    /// internet client is namespace 'i', `UPSTREAM_CLIENT`.
    pub fn add_upstream(&self, range: &str) {
        check(Command::new(LAB_SH).args(["upstream", &self.name, range]));
    }

    pub fn lan_iface(&self) -> String {
        format!("fp{}-rl", self.name)
    }

    /// The router's interface towards the server (the WAN, in zone tests).
    pub fn server_iface(&self) -> String {
        format!("fp{}-rs", self.name)
    }

    pub fn ns(&self, which: char) -> String {
        format!("fp-{}-{which}", self.name)
    }

    /// The router's interface towards the client.
    pub fn client_iface(&self) -> String {
        format!("fp{}-rc", self.name)
    }

    pub fn server_addr(&self) -> &'static str {
        if self.v6 {
            SERVER6
        } else {
            SERVER4
        }
    }

    pub fn router_client_side(&self) -> &'static str {
        if self.v6 {
            ROUTER_C6
        } else {
            ROUTER_C4
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Starts a real FTP server serving `file.bin` (and writable `pub/`).
    pub fn start_server(&self, kind: Server) {
        let mut cmd = Command::new(LAB_SH);
        cmd.args(["server", &self.name, kind.name()]).arg(&self.dir);
        if self.v6 {
            cmd.arg("6");
        }
        check(&mut cmd);
        fs::write(self.root().join("file.bin"), pattern(FILE_SIZE, 7)).expect("file.bin");
    }

    /// Starts ftp-proxy in the router namespace, in the foreground with
    /// debug logging (unless `args` has its own -D), and waits until it
    /// listens.
    pub fn start_proxy(&mut self, args: &[&str]) {
        self.start_proxy_as(&[], &[], args)
    }

    /// `start_proxy` with `wrap` in front of the proxy (setpriv, prlimit:
    /// they exec it, so the pid stays the proxy's) and `env` set.
    pub fn start_proxy_as(&mut self, wrap: &[&str], env: &[(&str, &str)], args: &[&str]) {
        assert!(self.proxy.is_none(), "proxy already running");
        self.table = table_of(args);
        let log = fs::File::create(&self.log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns('r')])
            .args(wrap)
            .args([self.binary.as_str(), "-d"])
            .args(if args.contains(&"-D") {
                &[][..]
            } else {
                &["-D", "7"][..]
            })
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ftp-proxy");
        let mut child = child;
        wait_listening(&mut child, &self.log);
        self.proxy = Some(child);
    }

    /// SIGTERM to the proxy; returns its exit code.
    pub fn stop_proxy(&mut self) -> Option<i32> {
        self.signal_proxy(libc::SIGTERM)
    }

    /// Sends `sig`, which must end the proxy; returns its exit code.
    pub fn signal_proxy(&mut self, sig: libc::c_int) -> Option<i32> {
        let child = self.proxy.take()?;
        signal_and_wait(child, sig, &self.log)
    }

    /// Runs the proxy (with `wrap` in front) expecting it to refuse to
    /// start: its exit code and what it printed.
    pub fn proxy_refuses(&self, wrap: &[&str], args: &[&str]) -> (Option<i32>, String) {
        let o = run(Command::new("ip")
            .args(["netns", "exec", &self.ns('r'), "timeout", "10"])
            .args(wrap)
            .args([PROXY, "-d"])
            .args(args)
            .stdin(Stdio::null()));
        let text = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), text)
    }

    /// `proxy_refuses` without -d: the command that detaches must report
    /// a failure after its fork.
    pub fn proxy_refuses_detached(&self, wrap: &[&str], args: &[&str]) -> (Option<i32>, String) {
        let o = run(Command::new("ip")
            .args(["netns", "exec", &self.ns('r'), "timeout", "10"])
            .args(wrap)
            .arg(PROXY)
            .args(args)
            .stdin(Stdio::null()));
        let text = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), text)
    }

    /// SIGKILL to the proxy, as a crash would end it.
    pub fn kill_proxy(&mut self) {
        if let Some(mut c) = self.proxy.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn proxy_pid(&self) -> Option<u32> {
        self.proxy.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Runs argv in namespace `which` ('c', 'r', 's'), bounded by `secs`.
    pub fn exec(&self, which: char, secs: u32, argv: &[&str]) -> Output {
        run(Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(which),
                "timeout",
                &secs.to_string(),
            ])
            .args(argv)
            .stdin(Stdio::null()))
    }

    /// `nft` in the router namespace; must succeed.
    pub fn nft(&self, args: &[&str]) -> String {
        check(
            Command::new("ip")
                .args(["netns", "exec", &self.ns('r'), "nft"])
                .args(args),
        )
    }

    /// `nft list tables` in the router.
    pub fn tables(&self) -> String {
        self.nft(&["list", "tables"])
    }

    /// Number of elements in one of the proxy's maps.
    pub fn elements(&self, table: &str, map: &str) -> usize {
        let out = self.nft(&["list", "map", "inet", table, map]);
        // `elements = { k : v, k : v }`: one " : " per element.
        match out.find("elements = {") {
            None => 0,
            Some(i) => out[i..].matches(" : ").count(),
        }
    }

    /// curl in namespace `ns` fetches `url` (file.bin) whole, `extra`
    /// among its options.
    pub fn assert_fetch(&self, ns: char, url: &str, extra: &[&str]) {
        let got = self.dir.join(format!("got-{ns}.bin"));
        let dst = got.display().to_string();
        let mut argv = vec!["curl", "-sS", "--max-time", "10", "-o", &dst];
        argv.extend_from_slice(extra);
        argv.push(url);
        let o = self.exec(ns, 20, &argv);
        self.assert_downloaded(&o, &got, &format!("{url} {extra:?}"));
    }

    /// A download that must have worked: the client's run `o` succeeded
    /// and `got` holds file.bin whole (`what` names the case).
    pub fn assert_downloaded(&self, o: &Output, got: &PathBuf, what: &str) {
        assert!(
            o.status.success(),
            "{what}: {}\n{}",
            output_text(o),
            self.log_text()
        );
        assert_eq!(sha256(got), sha256(&self.root().join("file.bin")), "{what}");
    }

    /// Fails unless the proxy's log holds each of `wanted`.
    pub fn assert_logged(&self, wanted: &[&str]) {
        let log = self.log_text();
        for w in wanted {
            assert!(log.contains(w), "the log lacks {w:?}:\n{log}");
        }
    }

    /// Open descriptors of the proxy process.
    pub fn fd_count(&self) -> usize {
        let pid = self.proxy_pid().expect("proxy running");
        fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("/proc/PID/fd")
            .count()
    }

    /// Elements in all of the proxy's maps (IPv4 table; snatp4 exists
    /// only with -r).
    pub fn all_elements(&self) -> usize {
        let maps = self.nft(&["list", "maps", "inet"]);
        ["dnat4", "snat4", "snatp4"]
            .iter()
            .filter(|m| maps.contains(&format!("map {m} ")))
            .map(|m| self.elements(&self.table, m))
            .sum()
    }

    /// Waits (at most 5 s) until the proxy is back to `fds` descriptors
    /// with no map element left, and is still running.
    pub fn assert_clean(&mut self, fds: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (now, elems) = (self.fd_count(), self.all_elements());
            if now == fds && elems == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "leak: {now} descriptors (baseline {fds}), {elems} map elements\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(Ok(Some(st))) = self.proxy.as_mut().map(|c| c.try_wait()) {
            panic!("ftp-proxy died ({st}):\n{}", self.log_text());
        }
    }

    /// Counts, per negotiation verb, the proxy's log lines for it.
    pub fn verbs(&self) -> [usize; 4] {
        let log = self.log_text();
        ["PASV", "EPSV", "PORT", "EPRT"].map(|v| {
            log.lines()
                .filter(|l| l.contains(&format!(" {v}: ")))
                .count()
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.proxy.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new(LAB_SH).args(["down", &self.name]).status();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab files kept for inspection: {}", self.dir.display());
        }
    }
}
