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

    /// Each router's own ftp-proxy: listening on its own LAN address (the
    /// redirect's), connecting from the WAN VIP (IP_FREEBIND on B).
    fn start_proxies(&mut self) {
        for (r, own) in [('a', "198.18.1.11"), ('b', "198.18.1.12")] {
            let log = self.dir.join(format!("proxy-{r}.log"));
            let iface = format!("fp{}{r}lan", self.name);
            let mut child = Command::new("ip")
                .args(["netns", "exec", &self.ns(r), PROXY, "-d", "-D", "7"])
                .args(["-b", own, "-i", &iface, "-a", "198.19.2.1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log"))
                .spawn()
                .expect("proxy");
            wait_listening(&mut child, &log);
            self.proxies.push(child);
        }
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
    pair.start_proxies();
    let got = Arc::new(AtomicUsize::new(0));
    let counter = got.clone();
    let reader = in_ns(&pair.ns('c'), move || match active {
        true => retr_active(counter),
        false => retr_counting_within("big.bin", SIZE, counter, QUIET),
    });
    let t = Instant::now();
    while got.load(Ordering::Relaxed) < 1_000_000 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the download did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sh(HA_SH, &["fail", &pair.name]);
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
