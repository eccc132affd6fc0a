//! The trust boundaries off the main road: a hostile server's replies, a
//! client that vanishes while its reads are paused, and IPv6 clients
//! with many addresses. Scripted peers in the namespace lab; needs root.

mod common;

use common::scripted::*;
use common::*;
use std::io::Read;
use std::time::Duration;

/// Lines of a reply as the client receives them, raw, up to and
/// including the first that starts with `last`.
fn raw_lines_until(c: &mut Peer, last: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let l = c.line().expect("a line, got end of stream");
        let l = String::from_utf8_lossy(&l).into_owned();
        let done = l.starts_with(last);
        lines.push(l);
        if done {
            return lines;
        }
    }
}

/// curl's end of a reply: any line of the form `ddd `.
fn curl_last_line(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' '
}

#[test]
fn a_server_cannot_slip_a_reply_inside_a_reply() {
    if !prerequisites("inner_reply_lines") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let (_, srv) = recording_server(&lab, 1, |cmd| {
        match cmd {
        "STAT" => "211-status\r\n229 Entering Extended Passive Mode (|||51210|)\r\n211-x\r\n226 done\r\n42 files\r\n211 end\r\n".into(),
        "HELP" => "214-help\r\n214-more help\r\n CWD\r\n214 end\r\n".into(),
        _ => "200 ok\r\n".into(),
    }
    });
    let mut c = greeted(&lab);
    let (stat, help, noop) = in_ns(&lab.ns('c'), move || {
        c.send(b"STAT\r\n");
        let stat = raw_lines_until(&mut c, "211 ");
        c.send(b"HELP\r\n");
        let help = raw_lines_until(&mut c, "214 ");
        (stat, help, c.cmd("NOOP"))
    })
    .join()
    .expect("client");
    assert_eq!(
        stat,
        [
            "211-status\r\n",
            " 229 Entering Extended Passive Mode (|||51210|)\r\n",
            "211-x\r\n",
            " 226 done\r\n",
            " 42 files\r\n",
            "211 end\r\n"
        ]
    );
    // A lenient client ends the reply where the server did.
    let ends: Vec<_> = stat.iter().filter(|l| curl_last_line(l)).collect();
    assert_eq!(ends, ["211 end\r\n"]);
    // Same-code continuations and plain text pass byte for byte.
    assert_eq!(
        help,
        [
            "214-help\r\n",
            "214-more help\r\n",
            " CWD\r\n",
            "214 end\r\n"
        ]
    );
    assert_eq!(noop, "200 ok");
    srv.join().expect("server");
    lab.assert_clean(fds);
}

#[test]
fn a_refusal_never_lands_inside_a_long_reply() {
    if !prerequisites("refusal_after_long_reply") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let long = format!("200 {}\r\n", "x".repeat(1000));
    let l1 = long.clone();
    let srv = serve(&lab.ns('s'), SERVER4, 21, 1, move |_, mut p| {
        p.send(b"220 fake ready\r\n");
        while let Some(line) = p.line() {
            match &line[..] {
                b"NOOP\r\n" => p.send(l1.as_bytes()),
                // Half now, half once the client has had time to send
                // a command the proxy refuses (the immediate path).
                b"SLOW\r\n" => {
                    p.send(&l1.as_bytes()[..600]);
                    std::thread::sleep(Duration::from_millis(500));
                    p.send(&l1.as_bytes()[600..]);
                }
                b"QUIT\r\n" => return p.send(b"221 bye\r\n"),
                _ => p.send(b"200 ok\r\n"),
            }
        }
    });
    let mut c = greeted(&lab);
    let got = in_ns(&lab.ns('c'), move || {
        // The held path: pipelined behind a command in flight.
        c.send(b"NOOP\r\nAUTH TLS\r\n");
        let mut got = vec![c.text(), c.text()];
        // The immediate path: the command goes in while the long reply
        // is under way and nothing else is in flight.
        c.send(b"SLOW\r\n");
        let mut first = [0u8; 100];
        c.s.read_exact(&mut first)
            .expect("first bytes of the reply");
        c.send(b"AUTH TLS\r\n");
        let rest = c.text();
        got.push(format!("{}{rest}", String::from_utf8_lossy(&first)));
        got.push(c.text());
        got.push(c.cmd("QUIT"));
        got
    })
    .join()
    .expect("client");
    let whole = long.trim_end().to_string();
    assert_eq!(got[0], whole);
    assert!(got[1].starts_with("534 "), "{}", got[1]);
    assert_eq!(got[2], whole);
    assert_eq!(got[3], got[1]);
    assert_eq!(got[4], "221 bye");
    srv.join().expect("server");
    lab.assert_clean(fds);
}

#[test]
fn a_client_that_resets_while_paused_ends_its_session() {
    if !prerequisites("reset_while_paused") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    // Reads every command and answers none.
    let srv = serve(&lab.ns('s'), SERVER4, 21, 1, |_, mut p| {
        p.send(b"220 fake ready\r\n");
        let mut n = 0;
        while p.line().is_some() {
            n += 1;
        }
        n
    });
    let c = greeted(&lab);
    in_ns(&lab.ns('c'), move || {
        let mut c = c;
        // Far more than the proxy lets be in flight: its reads pause.
        c.send(&b"NOOP\r\n".repeat(400));
        std::thread::sleep(Duration::from_millis(300));
        c.reset();
    })
    .join()
    .expect("client");
    // The session ends at the reset, not at the 24 h idle timeout: the
    // server sees its connection close.
    let forwarded = srv.join().expect("server")[0];
    assert!(
        (64..400).contains(&forwarded),
        "{forwarded} commands reached the server"
    );
    lab.assert_logged(&["ending session: client error"]);
    lab.assert_clean(fds);
}

#[test]
fn an_ipv6_host_counts_once_whatever_its_addresses() {
    if !prerequisites("per_client_v6") {
        return;
    }
    let mut lab = Lab::new(true);
    let dev = format!("fp{}-c", lab.name);
    for a in ["2001:db8:1::3/64", "2001:db8:1:0:8a2e:370:7334:1/64"] {
        let o = lab.exec('c', 5, &["ip", "addr", "add", a, "dev", &dev, "nodad"]);
        assert!(o.status.success(), "{o:?}");
    }
    // Holds each session open until its client goes.
    let srv = serve(&lab.ns('s'), "[2001:db8:2::2]", 21, 2, |_, mut p| {
        p.send(b"220 six\r\n");
        while p.line().is_some() {}
    });
    lab.start_proxy(&["-6", "-b", "::", "-R", SERVER6, "-M", "2"]);
    let got = in_ns(&lab.ns('c'), || {
        let from = |src: &str| {
            let mut p = connect_from(src, ROUTER_C6, 8021);
            let t = p.text();
            (p, t)
        };
        let (_a, a) = from("2001:db8:1::2");
        let (_b, b) = from("2001:db8:1::3");
        let (_c, c) = from("2001:db8:1:0:8a2e:370:7334:1");
        vec![a, b, c]
    })
    .join()
    .expect("clients");
    assert_eq!(
        got,
        [
            "220 six",
            "220 six",
            "421 Service not available, closing control connection"
        ],
        "{}",
        lab.log_text()
    );
    lab.assert_logged(&["per-client limit (2) reached"]);
    srv.join().expect("server");
}
