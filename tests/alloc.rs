//! After start-up the proxy allocates nothing per accept, command, reply
//! or data connection. A counting allocator counts the proxy thread's
//! allocations while a client runs whole sessions through it; the kernel
//! side is real (nftables in a private network namespace). Needs root.

mod common;

use common::inproc;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Counting;

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn note() {
    if TRACKED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Counting = Counting;

/// One session of `user` (`old`: a server without EPSV and EPRT, which
/// the proxy answers with PASV and PORT): login, FEAT, then `rounds` of
/// every negotiation and NOOPs.
fn session(port: u16, rounds: usize, user: &str) -> Vec<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect proxy");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut replies = Vec::new();
    let read_reply = |r: &mut BufReader<TcpStream>| {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(
                r.read_line(&mut line).expect("reply") > 0,
                "proxy closed early"
            );
            all.push_str(&line);
            if line.as_bytes().get(3) == Some(&b' ') {
                return all;
            }
        }
    };
    replies.push(read_reply(&mut r));
    let mut cmds = vec![format!("USER {user}"), "PASS x".into(), "FEAT".into()];
    for i in 0..rounds {
        cmds.push("PASV".into());
        cmds.push("EPSV".into());
        cmds.push(format!("PORT 127,0,0,1,{},{}", 100 + i % 100, i % 256));
        cmds.push(format!("EPRT |1|127.0.0.1|{}|", 20000 + i));
        cmds.push("NOOP".into());
        // Refusals, with their log lines, must not allocate either.
        cmds.push("AUTH TLS".into());
        cmds.push("NO\u{1}OP".into());
        cmds.push("PORT 127,0,0,1,0,21".into());
        cmds.push("L".repeat(600));
    }
    cmds.push("QUIT".into());
    for c in cmds {
        s.write_all(format!("{c}\r\n").as_bytes()).expect("send");
        let reply = read_reply(&mut r);
        // A data connection to the proxy port: refused (nothing listens
        // on loopback), it still begins and ends in conntrack, which the
        // proxy reads and records.
        if let Some(p) = reply.strip_prefix("227 Entering Passive Mode (127,0,0,1,") {
            let n: Vec<u16> = p
                .trim_end()
                .trim_end_matches(')')
                .split(',')
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [hi, lo] = n[..] {
                let _ = TcpStream::connect(("127.0.0.1", hi * 256 + lo));
            }
        }
        replies.push(reply);
    }
    // The proxy closes after relaying 221: wait for it.
    let mut rest = String::new();
    assert_eq!(r.read_line(&mut rest).unwrap_or(0), 0, "unexpected: {rest}");
    replies
}

#[test]
fn no_allocation_per_session_command_or_mapping() {
    if !common::prerequisites("no_allocation_per_session_command_or_mapping") {
        return;
    }
    let client = |port| {
        let mut warm = session(port, 2, "anonymous");
        warm.extend(session(port, 2, "old"));
        // A session that stays while the status is asked for: one row.
        let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect proxy");
        idle.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut hello = [0u8; 64];
        let _ = std::io::Read::read(&mut idle, &mut hello);
        let warm_status = inproc::query("json");
        let before = ALLOCS.load(Ordering::SeqCst);
        let mut replies = Vec::new();
        let mut answers = Vec::new();
        for user in ["anonymous", "old", "anonymous"] {
            replies.extend(session(port, 40, user));
            answers.push(inproc::query("text"));
            answers.push(inproc::query("json"));
        }
        let after = ALLOCS.load(Ordering::SeqCst);
        drop(idle);
        inproc::stop_proxy();
        assert!(
            warm_status.contains("\"sessions\":[{\"id\":"),
            "{warm_status}"
        );
        // Conntrack's records of the refused data connections were read
        // (in the measured stretch too).
        let last = answers.last().cloned().unwrap_or_default();
        let made: u64 = last
            .split("\"data_connections\":")
            .nth(1)
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(made > 100, "conntrack records: {made}\n{last}");
        (warm, replies, answers, made, after - before)
    };
    let track = |run: &mut dyn FnMut()| {
        TRACKED.with(|t| t.set(true));
        run();
        TRACKED.with(|t| t.set(false));
    };
    let ((warm, replies, answers, made, allocs), tables) =
        inproc::run("-D 6 -m 4 -T 7 -v", client, track);
    // The proxy really did the work it was measured on.
    assert!(warm[0].starts_with("220-fake server"), "{warm:?}");
    let pasv = replies
        .iter()
        .filter(|r| r.starts_with("227 Entering Passive Mode (127,0,0,1,"))
        .count();
    let epsv = replies
        .iter()
        .filter(|r| r.starts_with("229 Entering Extended Passive Mode (|||"))
        .count();
    let port_ok = replies.iter().filter(|r| r.starts_with("200 ok")).count();
    assert_eq!(pasv, 120, "rewritten 227 replies");
    // The old server's 40 among them: PASV in place of its refused EPSV.
    assert_eq!(epsv, 120, "rewritten 229 replies");
    let feat: Vec<&String> = replies.iter().filter(|r| r.starts_with("211-")).collect();
    assert_eq!(feat.len(), 3);
    assert!(
        feat.iter()
            .all(|f| f.contains(" EPSV\r\n") && !f.contains("AUTH") && !f.contains("PROT")),
        "{feat:?}"
    );
    assert!(port_ok >= 360, "PORT/EPRT/NOOP answered: {port_ok}");
    for (code, want) in [("534 ", 120), ("500 ", 240), ("501 ", 120)] {
        let got = replies.iter().filter(|r| r.starts_with(code)).count();
        assert_eq!(got, want, "{code}replies");
    }
    assert!(
        !replies
            .iter()
            .any(|r| r.contains("(|||30000|)") || r.contains("117,48)")),
        "server port leaked"
    );
    assert!(
        !tables.contains("table inet ftp-proxy-"),
        "table left after shutdown: {tables}"
    );
    // The status was served, with the idle session's row and the totals.
    for (k, a) in answers.iter().enumerate() {
        match k % 2 {
            0 => assert!(
                a.contains("\n  ") && a.contains(" running "),
                "text status: {a}"
            ),
            _ => assert!(
                a.contains("\"phase\":\"running\"") && a.contains("\"low-port\":"),
                "json status: {a}"
            ),
        }
    }
    println!("heap allocations on the proxy thread for 3 sessions (one with a server without EPSV/EPRT), 600 negotiations, 3 FEATs, 120 NOOPs, 480 refused commands, 6 status queries, {made} data connections recorded from conntrack: {allocs}");
    assert_eq!(allocs, 0, "the proxy allocated in steady state");
}
