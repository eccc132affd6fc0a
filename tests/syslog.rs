//! `-l`: log lines as syslog datagrams, each at its own priority (facility
//! daemon) and tagged ftp-proxy/NAME[pid], read from a stand-in /dev/log;
//! the writer finds syslogd again after it restarts. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A syslogd stand-in: every datagram at `path` becomes a line of `log`.
struct Syslogd {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syslogd {
    fn start(path: &Path, log: &Path) -> Syslogd {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path).expect("bind stand-in /dev/log");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, log) = (stop.clone(), log.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&log)
                        .expect("log");
                    let _ = f.write_all(b"SYSLOG ");
                    let _ = f.write_all(&buf[..n]);
                    let _ = f.write_all(b"\n");
                }
            }
        });
        Syslogd {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self, path: &Path) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("syslogd");
        }
        let _ = std::fs::remove_file(path);
    }
}

fn wait_for(lab: &Lab, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if lab.log_text().contains(what) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A client that connects to the proxy's own port: refused, at warning.
fn refused_client(lab: &Lab) {
    let _ = in_ns(&lab.ns('c'), || {
        let mut c = connect(ROUTER_C4, 8021);
        c.reply()
    })
    .join();
}

#[test]
fn syslog_lines_carry_their_priorities_and_survive_a_restart() {
    if !prerequisites("syslog_lines_carry_their_priorities_and_survive_a_restart") {
        return;
    }
    let mut lab = Lab::new(false);
    let path: PathBuf = lab.dir.join("devlog");
    let syslogd = Syslogd::start(&path, &lab.log);
    let iface = lab.client_iface();
    let p = path.to_str().expect("path");
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-n", "sys", "-l", p]);
    let pid = lab.proxy_pid().expect("pid");
    let tag = format!("ftp-proxy/sys[{pid}]: ");
    // notice (5), info (6) and debug (7) of the daemon facility (3 << 3).
    for (prio, text) in [
        (29, "listening on"),
        (30, "status on"),
        (31, "nftables abilities"),
    ] {
        assert!(
            wait_for(&lab, &format!("SYSLOG <{prio}>{tag}{text}")),
            "no <{prio}> line {text:?}:\n{}",
            lab.log_text()
        );
    }
    refused_client(&lab);
    assert!(
        wait_for(&lab, &format!("SYSLOG <28>{tag}refusing client")),
        "{}",
        lab.log_text()
    );
    // syslogd restarts: a new socket at the same path.
    syslogd.stop(&path);
    refused_client(&lab);
    let syslogd = Syslogd::start(&path, &lab.log);
    std::thread::sleep(Duration::from_millis(1100));
    let before = lab.log_text().matches("SYSLOG <28>").count();
    refused_client(&lab);
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.log_text().matches("SYSLOG <28>").count() == before {
        assert!(
            Instant::now() < deadline,
            "no line after syslogd restarted:\n{}",
            lab.log_text()
        );
        refused_client(&lab);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Meanwhile the line had gone to stderr, not nowhere.
    let log = lab.log_text();
    assert!(
        log.lines().any(|l| l.starts_with("refusing client")),
        "{log}"
    );
    lab.stop_proxy();
    syslogd.stop(&path);
}
