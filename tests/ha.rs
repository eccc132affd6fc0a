//! An HA pair (lab/ha.sh): keepalived moves the VIPs, conntrackd (FTFW)
//! copies connection tracking, each router runs its own ftp-proxy with
//! `-a <WAN VIP>`. Router A fails one megabyte into a 10 MB download at
//! 8 Mbit/s: the data connection, NATed by the kernel, goes on through B
//! to the last byte in passive and in active mode; A's proxy ends the
//! session on the VIP it lost at once. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZE: usize = 10_000_000;
/// The longest the data connection may stay silent: through the outage
/// (VRRP's three missed adverts, then conntrackd's commit) the server's
/// retransmissions back off exponentially, one gap can pass 20 s.
const QUIET: Duration = Duration::from_secs(60);
static COUNT: AtomicU32 = AtomicU32::new(0);

struct Pair {
    name: String,
    dir: PathBuf,
    proxies: Vec<Child>,
}

impl Pair {
    fn ns(&self, x: char) -> String {
        format!("fp-{}-{x}", self.name)
    }

    fn new() -> Pair {
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = format!("h{:x}{n}", std::process::id() & 0xfff);
        let dir = std::env::temp_dir().join(format!("fp-ha-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let p = Pair {
            name,
            dir,
            proxies: Vec::new(),
        };
        sh(HA_SH, &["up", &p.name]);
        let d = p.dir.display().to_string();
        sh(LAB_SH, &["server", &p.name, "vsftpd", &d]);
        std::fs::write(p.dir.join("root/big.bin"), pattern(SIZE, 31)).expect("big.bin");
        let s_if = format!("fp{}swan", p.name);
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &p.ns('s'),
                "tc",
                "qdisc",
                "add",
                "dev",
                &s_if,
                "root",
                "tbf",
                "rate",
                "8mbit",
                "burst",
                "32kb",
                "latency",
                "400ms",
            ],
        );
        sh(HA_SH, &["start", &p.name, &d]);
        p.wait_state('a', "master");
        p.wait_state('b', "backup");
        // conntrackd's resync and bulk send of the new master run on
        // after its script: a pair that just formed settles first.
        std::thread::sleep(Duration::from_secs(2));
        p
    }

    fn wait_state(&self, r: char, want: &str) {
        let f = self.dir.join(format!("state-{r}"));
        let t = Instant::now();
        while std::fs::read_to_string(&f).unwrap_or_default().trim() != want {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "router {r} not {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Each router's own ftp-proxy, connecting from the WAN VIP
    /// (IP_FREEBIND on B). Without `sync`: listening on its own LAN
    /// address (the redirect's). With it: both on the LAN VIP, each
    /// copying its sessions to the other over the sync link (`-H`).
    fn start_proxies(&mut self, sync: bool) {
        for (r, own, link) in [
            ('a', "198.18.1.11", "198.18.9.1,198.18.9.2"),
            ('b', "198.18.1.12", "198.18.9.2,198.18.9.1"),
        ] {
            let log = self.dir.join(format!("proxy-{r}.log"));
            let iface = format!("fp{}{r}lan", self.name);
            let listen = if sync { "198.18.1.1" } else { own };
            let ha: &[&str] = if sync { &["-H", link] } else { &[] };
            let mut child = Command::new("ip")
                .args(["netns", "exec", &self.ns(r), PROXY, "-d", "-D", "7"])
                .args(["-b", listen, "-i", &iface, "-a", "198.19.2.1"])
                .args(ha)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log"))
                .spawn()
                .expect("proxy");
            wait_listening(&mut child, &log);
            self.proxies.push(child);
        }
    }

    /// Fails router A once `received()` (the client's bytes so far) is
    /// past a megabyte.
    fn fail_a_megabyte_in(&self, received: impl Fn() -> u64) {
        let t = Instant::now();
        while received() < 1_000_000 {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "the download did not start: {}",
                self.log('a')
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        sh(HA_SH, &["fail", &self.name]);
    }

    fn log(&self, r: char) -> String {
        std::fs::read_to_string(self.dir.join(format!("proxy-{r}.log"))).unwrap_or_default()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for c in &mut self.proxies {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new(HA_SH).args(["down", &self.name]).status();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("HA lab files kept: {}", self.dir.display());
        }
    }
}

fn sh(cmd: &str, args: &[&str]) {
    let o = Command::new(cmd).args(args).output().expect(cmd);
    assert!(o.status.success(), "{cmd} {args:?}: {}", output_text(&o));
}

/// Active mode: the client listens, names its port, and reads what the
/// server connects to it with.
fn retr_active(counter: Arc<AtomicUsize>) -> Vec<u8> {
    let l = std::net::TcpListener::bind("198.18.1.2:0").expect("listen");
    let p = l.local_addr().expect("addr").port();
    let mut c = greeted_at(SERVER4, 21);
    assert!(c.cmd("USER anonymous").starts_with("230"));
    assert!(c.cmd("TYPE I").starts_with("200"));
    let port = format!("PORT 198,18,1,2,{},{}", p >> 8, p & 0xff);
    assert!(c.cmd(&port).starts_with("200"));
    c.send(b"RETR big.bin\r\n");
    let (mut d, _) = l.accept().expect("the server's connection");
    d.set_read_timeout(Some(QUIET)).expect("timeout");
    let mut all = Vec::with_capacity(SIZE);
    let mut buf = [0u8; 65536];
    loop {
        match d.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                counter.store(all.len(), Ordering::Relaxed);
            }
            Err(e) => panic!("data connection: {e} after {} bytes", all.len()),
        }
    }
}

fn failover_mid_download(active: bool) {
    let mut pair = Pair::new();
    pair.start_proxies(false);
    let got = Arc::new(AtomicUsize::new(0));
    let counter = got.clone();
    let reader = in_ns(&pair.ns('c'), move || match active {
        true => retr_active(counter),
        false => retr_counting_within("big.bin", SIZE, counter, QUIET),
    });
    pair.fail_a_megabyte_in(|| got.load(Ordering::Relaxed) as u64);
    let at_fail = got.load(Ordering::Relaxed);
    // How long the data stood still across the failover, for the log.
    let failed = Instant::now();
    while got.load(Ordering::Relaxed) <= at_fail + 200_000 && failed.elapsed() < QUIET {
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "data moving again through B {:?} after the failure",
        failed.elapsed()
    );
    let all = reader.join().expect("download across the failover");
    assert!(
        at_fail < SIZE / 2,
        "failed over too late: {at_fail} bytes in"
    );
    assert_eq!(all.len(), SIZE, "short download");
    let path = pair.dir.join("got.bin");
    std::fs::write(&path, &all).expect("write");
    assert_eq!(sha256(&path), sha256(&pair.dir.join("root/big.bin")));
    pair.wait_state('b', "master");
    // A lost its VIPs as it failed: its session on the WAN VIP ended at
    // once, not after -t.
    let t = Instant::now();
    while !pair.log('a').contains("address 198.19.2.1 was removed") {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", pair.log('a'));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failover_keeps_a_passive_download() {
    if !prerequisites("failover_keeps_a_passive_download") {
        return;
    }
    failover_mid_download(false);
}

#[test]
fn failover_keeps_an_active_download() {
    if !prerequisites("failover_keeps_an_active_download") {
        return;
    }
    failover_mid_download(true);
}

/// What the client saw of a download across the failover, on one
/// control connection: the data, the replies to RETR, and to a NOOP
/// after it.
struct Seen {
    data: Vec<u8>,
    retr: [String; 2],
    noop: String,
}

/// A download whose control connection stays open across the failover.
fn retr_on_one_session(active: bool, counter: Arc<AtomicUsize>) -> Seen {
    let mut c = greeted_at(SERVER4, 21);
    assert!(c.cmd("USER anonymous").starts_with("230"));
    assert!(c.cmd("TYPE I").starts_with("200"));
    let mut all = Vec::with_capacity(SIZE);
    let mut buf = [0u8; 65536];
    let mut d = match active {
        true => {
            let l = std::net::TcpListener::bind("198.18.1.2:0").expect("listen");
            let p = l.local_addr().expect("addr").port();
            let port = format!("PORT 198,18,1,2,{},{}", p >> 8, p & 0xff);
            assert!(c.cmd(&port).starts_with("200"));
            c.send(b"RETR big.bin\r\n");
            l.accept().expect("the server's connection").0
        }
        false => {
            let d = connect(SERVER4, port_229(&c.cmd("EPSV")));
            c.send(b"RETR big.bin\r\n");
            d.s
        }
    };
    d.set_read_timeout(Some(QUIET)).expect("timeout");
    loop {
        match d.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                counter.store(all.len(), Ordering::Relaxed);
            }
            Err(e) => panic!("data connection: {e} after {} bytes", all.len()),
        }
    }
    c.s.set_read_timeout(Some(QUIET)).expect("timeout");
    let retr = [c.reply(), c.reply()];
    let noop = c.cmd("NOOP");
    let _ = c.cmd("QUIT");
    Seen {
        data: all,
        retr,
        noop,
    }
}

/// With `-H`, the control session goes on through B as well: the 226
/// comes on the same control connection, and B answers the next command.
fn failover_keeps_the_session(active: bool) {
    let mut pair = Pair::new();
    pair.start_proxies(true);
    let got = Arc::new(AtomicUsize::new(0));
    let counter = got.clone();
    let reader = in_ns(&pair.ns('c'), move || retr_on_one_session(active, counter));
    pair.fail_a_megabyte_in(|| got.load(Ordering::Relaxed) as u64);
    let failed = Instant::now();
    let seen = reader.join().expect("the session across the failover");
    eprintln!(
        "session served through B; download ended {:?} after the failure",
        failed.elapsed()
    );
    assert_eq!(seen.data.len(), SIZE, "short download");
    let path = pair.dir.join("got.bin");
    std::fs::write(&path, &seen.data).expect("write");
    assert_eq!(sha256(&path), sha256(&pair.dir.join("root/big.bin")));
    assert!(seen.retr[0].starts_with("150"), "{:?}", seen.retr);
    assert!(seen.retr[1].starts_with("226"), "{:?}", seen.retr);
    assert!(seen.noop.starts_with("200"), "{}", seen.noop);
    let b = pair.log('b');
    let took = b
        .lines()
        .find(|l| l.contains("took over the HA peer's session"));
    eprintln!("B: {}", took.unwrap_or_else(|| panic!("no takeover: {b}")));
    let a = pair.log('a');
    assert!(a.contains("the HA peer takes the session over"), "{a}");
    assert!(!a.contains("421"), "{a}");
}

#[test]
fn failover_keeps_a_passive_session() {
    if !prerequisites("failover_keeps_a_passive_session") {
        return;
    }
    failover_keeps_the_session(false);
}

#[test]
fn failover_keeps_an_active_session() {
    if !prerequisites("failover_keeps_an_active_session") {
        return;
    }
    failover_keeps_the_session(true);
}

/// curl, as the independent lab ran it: without `-H` it had the whole
/// file and then a reset control connection (exit 56); with it, exit 0.
#[test]
fn failover_keeps_a_curl_download() {
    if !prerequisites("failover_keeps_a_curl_download") {
        return;
    }
    let mut pair = Pair::new();
    pair.start_proxies(true);
    let got = pair.dir.join("curl.bin");
    let dst = got.display().to_string();
    let ns = pair.ns('c');
    let curl = std::thread::spawn(move || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "curl",
                "-sS",
                "--max-time",
                "90",
                "-o",
                &dst,
            ])
            .arg(format!("ftp://{SERVER4}/big.bin"))
            .output()
            .expect("curl")
    });
    pair.fail_a_megabyte_in(|| std::fs::metadata(&got).map_or(0, |m| m.len()));
    let o = curl.join().expect("curl thread");
    assert!(
        o.status.success(),
        "curl: {}\n{}",
        output_text(&o),
        pair.log('b')
    );
    assert_eq!(sha256(&got), sha256(&pair.dir.join("root/big.bin")));
    assert!(pair.log('b').contains("took over the HA peer's session"));
}
