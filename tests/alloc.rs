//! After start-up the proxy allocates nothing per accept, command, reply
//! or data connection. A counting allocator counts the proxy thread's
//! allocations while a client runs whole sessions through it; the kernel
//! side is real (nftables in a private network namespace). Needs root.

mod common;

use ftp_proxy::config::Config;
use ftp_proxy::event_loop::Proxy;
use ftp_proxy::filter::Backend;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
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

/// A scripted FTP server: answers every command, offers passive ports.
fn fake_server(l: TcpListener) {
    for conn in l.incoming() {
        let Ok(mut s) = conn else { return };
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let _ = s.write_all(b"220-fake server\r\n220 ready\r\n");
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "USER" => b"331 password\r\n",
                "PASS" => b"230 in\r\n",
                "PASV" => b"227 Entering Passive Mode (127,0,0,1,200,10)\r\n",
                "EPSV" => b"229 Entering Extended Passive Mode (|||51210|)\r\n",
                "FEAT" => b"211-Features\r\n EPSV\r\n211 End\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"200 ok\r\n",
            };
            let _ = s.write_all(reply);
            if verb == "QUIT" {
                break;
            }
            line.clear();
        }
    }
}

/// One session: login, then `rounds` of every negotiation and NOOPs.
fn session(port: u16, rounds: usize) -> Vec<String> {
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
    let mut cmds = vec!["USER anonymous".to_string(), "PASS x".into(), "FEAT".into()];
    for i in 0..rounds {
        cmds.push("PASV".into());
        cmds.push("EPSV".into());
        cmds.push(format!("PORT 127,0,0,1,{},{}", 100 + i % 100, i % 256));
        cmds.push(format!("EPRT |1|127.0.0.1|{}|", 20000 + i));
        cmds.push("NOOP".into());
    }
    cmds.push("QUIT".into());
    for c in cmds {
        s.write_all(format!("{c}\r\n").as_bytes()).expect("send");
        replies.push(read_reply(&mut r));
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
    let (done_tx, done_rx) = mpsc::channel();
    // All of the lab lives in one thread's private network namespace;
    // threads it spawns inherit it.
    let lab = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread (and threads it spawns).
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(up.is_ok_and(|s| s.success()), "lo up");
        let fake = TcpListener::bind("127.0.0.1:0").expect("fake server");
        let fake_port = fake.local_addr().expect("addr").port();
        std::thread::spawn(move || fake_server(fake));

        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let args = format!("-d -D 6 -m 4 -R 127.0.0.1 -P {fake_port} -p {port} -T 7 -v");
        let cfg = Config::parse(args.split(' ').map(String::from)).expect("config");
        ftp_proxy::log::init(cfg.debug_level, false);
        let filter = Backend::open(&cfg).expect("nftables table");
        let mut proxy =
            Proxy::new(cfg, mio::net::TcpListener::from_std(listener), filter).expect("proxy");
        let (port_tx, port_rx) = mpsc::channel();
        let client = std::thread::spawn(move || {
            let port: u16 = port_rx.recv().expect("port");
            let warm = session(port, 2);
            let before = ALLOCS.load(Ordering::SeqCst);
            let mut replies = Vec::new();
            for _ in 0..3 {
                replies.extend(session(port, 40));
            }
            let after = ALLOCS.load(Ordering::SeqCst);
            // SAFETY: signalling our own process; the proxy's handler
            // turns SIGTERM into a clean shutdown.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            (warm, replies, after - before)
        });
        port_tx.send(port).expect("send port");
        TRACKED.with(|t| t.set(true));
        let r = proxy.run();
        TRACKED.with(|t| t.set(false));
        r.expect("proxy run");
        let tables = std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
            .expect("nft");
        let (warm, replies, allocs) = client.join().expect("client");
        done_tx
            .send((
                warm,
                replies,
                allocs,
                String::from_utf8_lossy(&tables.stdout).into_owned(),
            ))
            .expect("done");
    });
    lab.join().expect("lab thread");
    let (warm, replies, allocs, tables) = done_rx.recv().expect("result");
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
    assert_eq!(epsv, 120, "rewritten 229 replies");
    assert!(port_ok >= 360, "PORT/EPRT/NOOP answered: {port_ok}");
    assert!(
        !replies
            .iter()
            .any(|r| r.contains("(|||51210|)") || r.contains("200,10)")),
        "server port leaked"
    );
    assert!(
        !tables.contains("ftp-proxy"),
        "table left after shutdown: {tables}"
    );
    println!("heap allocations on the proxy thread for 3 sessions, 600 negotiations, 120 NOOPs: {allocs}");
    assert_eq!(allocs, 0, "the proxy allocated in steady state");
}
