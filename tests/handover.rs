//! Live handover (SIGUSR2): the proxy execs its binary again in place and
//! the new image serves every session on, mid-transfer included, through
//! vsftpd, ProFTPD and pyftpdlib; 100 idle and 20 pipelined sessions all
//! answer after it; a binary that reads another state format gets a clean
//! restart instead; and `kill -9` mid-transfer leaves the download whole
//! and no mapping of the dead process usable. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const SIZE: usize = 10_000_000;

/// A chroot for the proxy holding its binary's ELF dependencies, as
/// ujail mounts them on OpenWrt: a dynamically linked build needs its
/// loader there to exec itself again (a static build needs nothing).
fn jail(lab: &Lab) -> String {
    let dir = lab.dir.join("jail");
    std::fs::create_dir_all(&dir).expect("jail");
    let o = Command::new("ldd").arg(&lab.binary).output().expect("ldd");
    for word in String::from_utf8_lossy(&o.stdout).split_whitespace() {
        if !word.starts_with('/') {
            continue;
        }
        let to = dir.join(word.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("lib dir");
        std::fs::copy(word, &to).unwrap_or_else(|e| panic!("{word}: {e}"));
    }
    // SAFETY: chmod of a path we made; the proxy wants 0755, root-owned.
    let c = std::ffi::CString::new(dir.display().to_string()).expect("path");
    unsafe { libc::chmod(c.as_ptr(), 0o755) };
    dir.display().to_string()
}

/// The binary as a copy of its own in the lab, so a test may replace it
/// (as an upgrade does) without touching the build.
fn own_binary(lab: &mut Lab) {
    let dir = lab.dir.join("bin");
    std::fs::create_dir_all(&dir).expect("bin");
    let to = dir.join("ftp-proxy");
    std::fs::copy(PROXY, &to).expect("copy");
    lab.binary = to.display().to_string();
}

/// Replaces the lab's binary file with `content` (a new inode, as a
/// package upgrade writes it).
fn replace_binary(lab: &Lab, content: &[u8]) {
    let tmp = format!("{}.new", lab.binary);
    std::fs::write(&tmp, content).expect("write");
    let c = std::ffi::CString::new(tmp.clone()).expect("path");
    // SAFETY: chmod of our own file.
    unsafe { libc::chmod(c.as_ptr(), 0o755) };
    std::fs::rename(&tmp, &lab.binary).expect("rename");
}

/// Rate-limits the server's side to 20 Mbit/s: 10 MB take about 4 s.
fn slow_server(lab: &Lab) {
    let s_if = format!("fp{}-s", lab.name);
    let argv = [
        "tc", "qdisc", "add", "dev", &s_if, "root", "tbf", "rate", "20mbit", "burst", "32kb",
        "latency", "400ms",
    ];
    let o = lab.exec('s', 5, &argv);
    assert!(o.status.success(), "tc: {}", output_text(&o));
}

/// A logged-in session at the server, opened from the client: once this
/// returns it is open; `then` runs on it after `go` is sent.
fn held_session<T: Send + 'static>(
    lab: &Lab,
    then: impl FnOnce(&mut Peer) -> T + Send + 'static,
) -> (std::thread::JoinHandle<T>, std::sync::mpsc::Sender<()>) {
    let (to_open, open) = std::sync::mpsc::channel();
    let (to_go, go) = std::sync::mpsc::channel::<()>();
    let client = in_ns(&lab.ns('c'), move || {
        let mut c = greeted_at(SERVER4, 21);
        assert!(c.cmd("USER anonymous").starts_with("230"));
        to_open.send(()).expect("open");
        go.recv().expect("go");
        then(&mut c)
    });
    open.recv().expect("session open");
    (client, to_go)
}

fn count(text: &str, what: &str) -> usize {
    text.matches(what).count()
}

/// SIGUSR2, then waits until the new image says it serves; how long
/// that took.
fn hand_over(lab: &Lab) -> Duration {
    let before = count(&lab.log_text(), "sessions handed over");
    let pid = lab.proxy_pid().expect("proxy") as i32;
    let t = Instant::now();
    // SAFETY: a signal to our child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR2) }, 0);
    while count(&lab.log_text(), "sessions handed over") == before {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no handover: {}",
            lab.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

fn size_of(p: &PathBuf) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// curl downloads big.bin through the proxy; the proxy hands over once a
/// megabyte is in. curl must exit 0 (it got its 226 on the control
/// connection it opened) with every byte.
fn download_across_handover(kind: Server) {
    let mut lab = Lab::new(false);
    own_binary(&mut lab);
    lab.start_server(kind);
    std::fs::write(lab.root().join("big.bin"), pattern(SIZE, 23)).expect("big.bin");
    slow_server(&lab);
    let root = jail(&lab);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-c", &root]);
    let pid = lab.proxy_pid().expect("pid");
    let got = lab.dir.join("got.bin");
    let (ns, url, dst) = (
        lab.ns('c'),
        format!("ftp://{SERVER4}/big.bin"),
        got.display().to_string(),
    );
    let curl = std::thread::spawn(move || {
        Command::new("ip")
            .args(["netns", "exec", &ns, "timeout", "60"])
            .args(["curl", "-sS", "--max-time", "50", "-o", &dst, &url])
            .output()
            .expect("curl")
    });
    let t = Instant::now();
    while size_of(&got) < 1_000_000 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the download did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // An upgrade: the file is replaced first; the handover runs the new one.
    replace_binary(&lab, &std::fs::read(PROXY).expect("binary"));
    let took = hand_over(&lab);
    let at = size_of(&got);
    let o = curl.join().expect("curl thread");
    assert!(at < SIZE as u64 / 2, "handed over too late: {at} bytes in");
    assert!(
        o.status.success(),
        "curl: {}\n{}",
        output_text(&o),
        lab.log_text()
    );
    assert_eq!(
        sha256(&got),
        sha256(&lab.root().join("big.bin")),
        "{kind:?}"
    );
    assert_eq!(lab.proxy_pid(), Some(pid), "the pid stays");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert!(
        !exe.display().to_string().ends_with("(deleted)"),
        "still the old binary: {}",
        exe.display()
    );
    let log = lab.log_text();
    assert_eq!(count(&log, "serving 1 sessions handed over"), 1, "{log}");
    eprintln!("{kind:?}: handover with 1 session took {took:?} (signal to serving)");
    // The new image goes on as before: a new session, then a clean exit.
    lab.assert_fetch('c', &format!("ftp://{SERVER4}/file.bin"), &[]);
    assert_eq!(lab.stop_proxy(), Some(0));
}

#[test]
fn handover_mid_transfer_vsftpd() {
    if !prerequisites("handover_mid_transfer_vsftpd") {
        return;
    }
    download_across_handover(Server::Vsftpd);
}

#[test]
fn handover_mid_transfer_proftpd() {
    if !prerequisites("handover_mid_transfer_proftpd") {
        return;
    }
    download_across_handover(Server::Proftpd);
}

#[test]
fn handover_mid_transfer_pyftpdlib() {
    if !prerequisites("handover_mid_transfer_pyftpdlib") {
        return;
    }
    download_across_handover(Server::Pyftpd);
}

/// 100 logged-in idle sessions and 20 with commands in flight: after the
/// handover every one answers every command, in order, on its own
/// connection.
#[test]
fn handover_keeps_idle_and_pipelined_sessions() {
    if !prerequisites("handover_keeps_idle_and_pipelined_sessions") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let root = jail(&lab);
    let iface = lab.client_iface();
    lab.start_proxy(&[
        "-b", ROUTER_C4, "-i", &iface, "-c", &root, "-m", "200", "-M", "200",
    ]);
    let (to_ready, ready) = std::sync::mpsc::channel();
    let (to_go, go) = std::sync::mpsc::channel::<()>();
    let clients = in_ns(&lab.ns('c'), move || {
        let mut idle: Vec<Peer> = (0..100)
            .map(|_| {
                let mut c = greeted_at(SERVER4, 21);
                assert!(c.cmd("USER anonymous").starts_with("230"));
                c
            })
            .collect();
        let mut busy: Vec<Peer> = (0..20)
            .map(|_| {
                let mut c = greeted_at(SERVER4, 21);
                assert!(c.cmd("USER anonymous").starts_with("230"));
                c
            })
            .collect();
        // Ten commands each, sent at once and not read: in flight, in
        // buffers, as the handover comes.
        for c in &mut busy {
            c.send("NOOP\r\nPWD\r\n".repeat(5).as_bytes());
        }
        to_ready.send(()).expect("ready");
        go.recv().expect("go");
        for (i, c) in busy.iter_mut().enumerate() {
            for k in 0..10 {
                let r = c.reply();
                let want = if k % 2 == 0 { "200" } else { "257" };
                assert!(r.starts_with(want), "pipelined #{i}, reply {k}: {r}");
            }
        }
        for (i, c) in idle.iter_mut().chain(busy.iter_mut()).enumerate() {
            let r = c.cmd("NOOP");
            assert!(r.starts_with("200"), "session {i}: {r}");
        }
        idle.len() + busy.len()
    });
    ready.recv().expect("clients ready");
    let took = hand_over(&lab);
    to_go.send(()).expect("go");
    let n = clients.join().expect("sessions after the handover");
    assert_eq!(n, 120);
    let log = lab.log_text();
    assert!(log.contains("serving 120 sessions handed over"), "{log}");
    eprintln!("handover with 120 sessions took {took:?} (signal to serving)");
    assert_eq!(lab.stop_proxy(), Some(0));
}

/// A new binary that reads another state format: the probe says so, the
/// proxy makes today's clean restart (its sessions get 421, the table
/// goes, the keeper stays) and, as a capable user that can, starts the
/// new binary afresh in place; it serves new sessions.
#[test]
fn handover_to_another_format_falls_back_to_a_clean_restart() {
    if !prerequisites("handover_to_another_format_falls_back") {
        return;
    }
    let mut lab = Lab::new(false);
    own_binary(&mut lab);
    lab.start_server(Server::Vsftpd);
    let wrap = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_admin",
        "--ambient-caps=+net_admin",
    ];
    let iface = lab.client_iface();
    lab.start_proxy_as(&wrap, &[], &["-b", ROUTER_C4, "-i", &iface]);
    let pid = lab.proxy_pid().expect("pid");
    let (client, to_go) = held_session(&lab, move |c| c.reply());
    // The "new version": answers the probe with format 999, and runs
    // the real binary otherwise.
    let script = format!(
        "#!/bin/sh\nif [ -n \"$FTP_PROXY_PROBE\" ]; then echo 'ftp-proxy handover format 999'; exit 0; fi\nexec {PROXY} \"$@\"\n"
    );
    replace_binary(&lab, script.as_bytes());
    // SAFETY: a signal to our child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGUSR2) }, 0);
    to_go.send(()).expect("go");
    let farewell = client.join().expect("client");
    assert!(farewell.starts_with("421"), "{farewell}");
    let t = Instant::now();
    while count(&lab.log_text(), "listening on") < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no fresh start: {}",
            lab.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    lab.assert_logged(&[
        "reads state format 999, this one writes 1: clean restart instead",
        "ending session: proxy shutting down",
        "removed table inet",
    ]);
    assert_eq!(lab.proxy_pid(), Some(pid));
    lab.assert_fetch('c', &format!("ftp://{SERVER4}/file.bin"), &[]);
    assert_eq!(lab.stop_proxy(), Some(0));
}

/// A probe that fails changes nothing: the binary is gone, and the
/// proxy goes on serving its session.
#[test]
fn handover_to_a_missing_binary_keeps_serving() {
    if !prerequisites("handover_to_a_missing_binary_keeps_serving") {
        return;
    }
    let mut lab = Lab::new(false);
    own_binary(&mut lab);
    lab.start_server(Server::Vsftpd);
    let root = jail(&lab);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-c", &root]);
    let (client, to_go) = held_session(&lab, move |c| c.cmd("NOOP"));
    std::fs::remove_file(&lab.binary).expect("rm");
    let pid = lab.proxy_pid().expect("pid") as i32;
    // SAFETY: a signal to our child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR2) }, 0);
    let t = Instant::now();
    while !lab.log_text().contains("still serving") {
        assert!(t.elapsed() < Duration::from_secs(15), "{}", lab.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    to_go.send(()).expect("go");
    let r = client.join().expect("client");
    assert!(r.starts_with("200"), "{r}");
    assert_eq!(lab.stop_proxy(), Some(0));
}

/// `kill -9` in the middle of a download on a router with no nat chains
/// but the proxy's: the keeper (made at start, kept for as long as an
/// instance runs) holds the hooks, so the kernel's NAT of the transfer
/// goes on and the download completes. The dead process's table went
/// with it: a mapping it had pending admits nothing, before and after
/// the next start.
#[test]
fn kill_9_mid_transfer_keeps_the_download_and_no_stale_mapping() {
    if !prerequisites("kill_9_mid_transfer") {
        return;
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    std::fs::write(lab.root().join("big.bin"), pattern(SIZE, 29)).expect("big.bin");
    let want = sha256(&lab.root().join("big.bin"));
    slow_server(&lab);
    let iface = lab.client_iface();
    let args = ["-b", ROUTER_C4, "-i", &iface];
    lab.start_proxy(&args);
    let got = Arc::new(AtomicUsize::new(0));
    let counter = got.clone();
    let (to_port, pending_port) = std::sync::mpsc::channel();
    let reader = in_ns(&lab.ns('c'), move || {
        // A second session with a mapping pending when the proxy dies.
        let mut idle = greeted_at(SERVER4, 21);
        assert!(idle.cmd("USER anonymous").starts_with("230"));
        to_port.send(port_229(&idle.cmd("EPSV"))).expect("port");
        retr_counting("big.bin", SIZE, counter)
    });
    let stale = pending_port.recv().expect("pending port");
    let t = Instant::now();
    while got.load(Ordering::Relaxed) < 1_000_000 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the download did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    lab.kill_proxy();
    let at_kill = got.load(Ordering::Relaxed);
    let tables = lab.tables();
    assert!(tables.contains("table inet ftp-proxy_hooks"), "{tables}");
    assert!(!tables.contains("table inet ftp-proxy-"), "{tables}");
    // The dead process's pending mapping admits nothing.
    let try_stale = |lab: &Lab| {
        let url = format!("telnet://{SERVER4}:{stale}");
        lab.exec('c', 5, &["curl", "-sS", "--max-time", "2", &url])
    };
    let o = try_stale(&lab);
    assert!(
        !o.status.success(),
        "stale mapping used: {}",
        output_text(&o)
    );
    lab.start_proxy(&args);
    let o = try_stale(&lab);
    assert!(
        !o.status.success(),
        "stale mapping used after the start: {}",
        output_text(&o)
    );
    assert_eq!(lab.all_elements(), 0, "{}", lab.tables());
    let all = reader.join().expect("download across the crash");
    assert!(at_kill < SIZE / 2, "killed too late: {at_kill} bytes in");
    assert_eq!(all.len(), SIZE, "short download");
    let path = lab.dir.join("got-big.bin");
    std::fs::write(&path, &all).expect("write");
    assert_eq!(sha256(&path), want);
    assert_eq!(lab.stop_proxy(), Some(0));
}

/// The backup of an HA pair: its proxy starts on the VIP before it holds
/// it (IP_FREEBIND, no system-wide ip_nonlocal_bind) and serves once the
/// address arrives, as keepalived adds it on a failover.
#[test]
fn a_backup_listens_on_a_vip_it_does_not_hold_yet() {
    if !prerequisites("a_backup_listens_on_a_vip") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let vip = "198.18.1.100";
    let sysctl = lab.exec('r', 5, &["sysctl", "-n", "net.ipv4.ip_nonlocal_bind"]);
    assert_eq!(String::from_utf8_lossy(&sysctl.stdout).trim(), "0");
    lab.start_proxy(&["-b", vip, "-R", SERVER4, "-p", "21"]);
    let iface = lab.client_iface();
    let o = lab.exec(
        'r',
        5,
        &["ip", "addr", "add", &format!("{vip}/24"), "dev", &iface],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    lab.assert_fetch('c', &format!("ftp://{vip}/file.bin"), &[]);
    assert_eq!(lab.stop_proxy(), Some(0));
}

/// The former master of an HA pair loses its VIPs: sessions on one end
/// at once with a 421 that says why, not after `-t`; others go on.
#[test]
fn a_lost_address_ends_its_sessions_at_once() {
    if !prerequisites("a_lost_address_ends_its_sessions") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let wan_vip = "198.19.2.100";
    let s_if = lab.server_iface();
    let o = lab.exec(
        'r',
        5,
        &["ip", "addr", "add", &format!("{wan_vip}/24"), "dev", &s_if],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-a", wan_vip, "-t", "600"]);
    let (client, to_go) = held_session(&lab, move |c| {
        let t = Instant::now();
        let r = c.reply();
        (r, t.elapsed())
    });
    to_go.send(()).expect("go");
    let o = lab.exec(
        'r',
        5,
        &["ip", "addr", "del", &format!("{wan_vip}/24"), "dev", &s_if],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let (reply, after) = client.join().expect("client");
    assert!(
        reply.starts_with("421") && reply.contains("lost its address"),
        "{reply}"
    );
    assert!(after < Duration::from_secs(5), "{after:?}");
    lab.assert_logged(&["ending session: address 198.19.2.100 was removed from this router"]);
    // The VIP comes back (the peer failed in turn): new sessions run on it.
    let o = lab.exec(
        'r',
        5,
        &["ip", "addr", "add", &format!("{wan_vip}/24"), "dev", &s_if],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    lab.assert_fetch('c', &format!("ftp://{SERVER4}/file.bin"), &[]);
    assert_eq!(lab.stop_proxy(), Some(0));
}
