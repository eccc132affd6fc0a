//! Many sessions at once against a real server (vsftpd): each lists a
//! directory again and again, passive and active in turn, for a bounded
//! time. Every listing must succeed, the maps may never hold more elements
//! than there are sessions (one pending mapping each), and afterwards the
//! proxy is back to its descriptor count with no element left.
//!
//! The suite runs 50 sessions for 5 s; `bench/load.sh` runs the maximum,
//! 500, for longer: FTP_PROXY_LOAD=SESSIONS:SECONDS. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One listing over a fresh data connection, passive or active.
fn listing(c: &mut Peer, active: bool) -> Result<(), String> {
    let mut data = if active {
        let l = TcpListener::bind("198.18.1.2:0").map_err(|e| e.to_string())?;
        let p = l.local_addr().map_err(|e| e.to_string())?.port();
        let r = c.cmd(&format!("PORT 198,18,1,2,{},{}", p >> 8, p & 0xff));
        if !r.starts_with("200") {
            return Err(format!("PORT: {r}"));
        }
        let r = c.cmd("LIST");
        if !r.starts_with("150") {
            return Err(format!("LIST: {r}"));
        }
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + READ_DEADLINE;
        loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(format!("no active data connection: {e}")),
            }
        }
    } else {
        let r = c.cmd("PASV");
        if !r.starts_with("227") {
            return Err(format!("PASV: {r}"));
        }
        let d = connect(&host_227(&r), port_227(&r));
        let r = c.cmd("LIST");
        if !r.starts_with("150") {
            return Err(format!("LIST: {r}"));
        }
        d.s
    };
    data.set_nonblocking(false).map_err(|e| e.to_string())?;
    data.set_read_timeout(Some(READ_DEADLINE))
        .map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    data.read_to_end(&mut all).map_err(|e| e.to_string())?;
    let done = c.reply();
    if !done.starts_with("226") {
        return Err(format!("after LIST: {done}"));
    }
    if !String::from_utf8_lossy(&all).contains("file.bin") {
        return Err("listing lacks file.bin".into());
    }
    Ok(())
}

#[test]
fn many_sessions_list_passive_and_active() {
    if !prerequisites("load") {
        return;
    }
    let (sessions, secs) = std::env::var("FTP_PROXY_LOAD")
        .ok()
        .and_then(|v| {
            let (n, s) = v.split_once(':')?;
            Some((n.parse::<usize>().ok()?, s.parse::<u64>().ok()?))
        })
        .unwrap_or((50, 5));
    assert!(
        (1..=500).contains(&sessions) && secs <= 600,
        "bounded load only"
    );
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let iface = lab.client_iface();
    let max = sessions.to_string();
    // Only warnings in the log: debug lines for every listing would be
    // most of the work.
    // One client host opens every session: -M as high as -m.
    lab.start_proxy(&[
        "-b", ROUTER_C4, "-i", &iface, "-m", &max, "-M", &max, "-D", "5",
    ]);
    let fds = lab.fd_count();

    let ok = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let (ok2, run2) = (ok.clone(), running.clone());
    let started = Instant::now();
    let clients = in_ns(&lab.ns('c'), move || {
        let end = Instant::now() + Duration::from_secs(secs);
        let threads: Vec<_> = (0..sessions)
            .map(|i| {
                let ok = ok2.clone();
                // Staggered starts: the server's accept queue is short.
                std::thread::sleep(Duration::from_millis(4));
                std::thread::spawn(move || -> Result<usize, String> {
                    let mut c = connect(SERVER4, 21);
                    let hello = c.reply();
                    if !hello.starts_with("220") {
                        return Err(format!("session {i}: {hello}"));
                    }
                    c.cmd("USER anonymous");
                    c.cmd("PASS x");
                    let mut n = 0;
                    while Instant::now() < end {
                        listing(&mut c, n % 2 == 1).map_err(|e| format!("session {i}: {e}"))?;
                        n += 1;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    c.cmd("QUIT");
                    Ok(n)
                })
            })
            .collect();
        let r: Vec<Result<usize, String>> = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err("panicked".into())))
            .collect();
        run2.store(false, Ordering::Relaxed);
        r
    });
    // Sample the maps while the sessions run.
    let mut most = (0, 0);
    let mut samples = 0;
    while running.load(Ordering::Relaxed) {
        let (d, s) = (
            lab.elements(&lab.table, "dnat4"),
            lab.elements(&lab.table, "snat4"),
        );
        most = (most.0.max(d), most.1.max(s));
        samples += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let results = clients.join().expect("clients");
    let took = started.elapsed();
    let pid = lab.proxy_pid().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let peak_rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map_or("?", |l| l[6..].trim());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // utime and stime, fields 14 and 15, after the ")" that ends comm.
    let f: Vec<u64> = stat[stat.rfind(')').unwrap_or(0) + 2..]
        .split(' ')
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no failure mode for _SC_CLK_TCK.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = f.iter().sum::<u64>() as f64 / hz;
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let total = ok.load(Ordering::Relaxed);
    println!(
        "{sessions} sessions, {secs} s: {total} listings ({:.0}/s), {} failed; most elements seen: dnat {} snat {} ({samples} samples); proxy peak RSS {peak_rss}, CPU {cpu:.2} s",
        total as f64 / took.as_secs_f64(),
        failed.len(),
        most.0,
        most.1
    );
    assert!(
        failed.is_empty(),
        "{} sessions failed, first: {}\n{}",
        failed.len(),
        failed[0],
        lab.log_text()
    );
    assert!(total >= sessions, "{total} listings");
    assert!(samples >= 3, "{samples} samples");
    assert!(
        most.0 <= sessions && most.1 <= sessions,
        "more elements than sessions: {most:?}"
    );
    lab.assert_clean(fds);
}
