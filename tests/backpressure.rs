//! Backpressure: a client that sends without reading fills every buffer on
//! the way (its replies back up through the proxy into the server, which
//! then stops reading). The proxy must stop reading rather than drop or
//! grow, and when the client reads again every reply must arrive, in order.
//! Needs root (the proxy's nftables table lives in a private namespace).

mod common;

use common::inproc;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Enough commands (6 MB) and replies (8 MB) to fill the socket buffers
/// between client, proxy and server.
const BURST: usize = 1_000_000;

#[test]
fn slow_reader_stops_the_flow_without_loss() {
    if !common::prerequisites("slow_reader_stops_the_flow_without_loss") {
        return;
    }
    let client = |port| {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect proxy");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut line = String::new();
        r.read_line(&mut line).expect("banner");
        r.read_line(&mut line).expect("banner");
        // Send everything from another thread and do not read yet: the
        // writer blocks once the proxy stops taking commands.
        let mut w = s.try_clone().expect("clone");
        let writer = std::thread::spawn(move || {
            let burst = "NOOP\r\n".repeat(BURST);
            w.write_all(burst.as_bytes()).expect("send burst");
            w.write_all(b"QUIT\r\n").expect("send quit");
        });
        std::thread::sleep(Duration::from_millis(500));
        // Both ends of the client's connection: bytes the proxy left unread
        // (its Recv-Q) and bytes still waiting in the client (its Send-Q).
        let filter = format!("( sport = :{port} or dport = :{port} )");
        let ss = std::process::Command::new("ss")
            .args(["-Htn", "state", "established", &filter])
            .output()
            .expect("ss");
        let (mut unread, mut waiting) = (0usize, 0usize);
        for l in String::from_utf8_lossy(&ss.stdout).lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                continue;
            }
            let suffix = format!(":{port}");
            if f[2].ends_with(&suffix) {
                unread = f[0].parse().unwrap_or(0);
            } else if f[3].ends_with(&suffix) {
                waiting = f[1].parse().unwrap_or(0);
            }
        }
        let mut ok = 0usize;
        let mut other = Vec::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if line == "200 ok\r\n" {
                ok += 1;
            } else {
                other.push(line.clone());
            }
        }
        writer.join().expect("writer");
        inproc::stop_proxy();
        (unread, waiting, ok, other)
    };
    let ((unread, waiting, ok, other), tables) = inproc::run("-D 5", client, |run| run());
    // A proxy reading without bound would leave neither queue filled.
    println!("proxy left {unread} bytes unread; {waiting} bytes wait in the client");
    assert!(unread > 0, "the proxy read everything the client sent");
    let queued = unread + waiting;
    assert!(
        queued >= 64 * 1024,
        "only {queued} bytes queued in front of the proxy"
    );
    assert_eq!(ok, BURST, "replies lost or duplicated");
    assert_eq!(other, ["221 bye\r\n"], "unexpected replies");
    assert!(!tables.contains("table inet ftp-proxy-"), "{tables}");
}
