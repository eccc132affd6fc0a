//! The invariants of DESIGN.md, each against peers that try to break it:
//! a fair loop under floods, one connection per mapping for as long as it
//! is pending, no route around the firewall, a clean command stream,
//! replies in order, passive replies only when asked for, a cap per
//! client, and the smaller promises (keepalive, log budget, long
//! greetings, exit status, IPv6-only listener). Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A fake server for `conns` sessions: greets, answers every line 200,
/// except that the first session's lines are read and never answered.
fn answering_server(lab: &Lab, conns: usize) -> std::thread::JoinHandle<Vec<()>> {
    serve(&lab.ns('s'), SERVER4, 21, conns, |i, mut p| {
        p.send(b"220 fake ready\r\n");
        while let Some(l) = p.line() {
            if l.starts_with(b"QUIT") {
                p.send(b"221 bye\r\n");
                break;
            }
            if i > 0 {
                p.send(b"200 ok\r\n");
            }
        }
    })
}

/// Writes `chunk` again and again for `secs`, never reading.
fn flood(mut c: Peer, chunk: Vec<u8>, secs: u64) -> u64 {
    c.s.set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut sent = 0u64;
    while Instant::now() < deadline {
        match c.s.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    sent
}

#[test]
fn a_flooding_client_slows_only_itself() {
    if !prerequisites("fair_loop") {
        return;
    }
    let (mut lab, _) = intercepting_lab(&["-t", "3"]);
    let _srv = answering_server(&lab, 6);
    let ns = lab.ns('c');
    let kinds: [(&str, Vec<u8>); 2] = [
        ("no line end", vec![b'A'; 65536]),
        (
            "NOOP flood to a server that drops them",
            b"NOOP\r\n".repeat(10000),
        ),
    ];
    for (k, (kind, chunk)) in kinds.into_iter().enumerate() {
        // The flooder is the first session of its pair on the server.
        let flooder = in_ns(&ns, move || {
            let c = greeted_at(SERVER4, 21);
            flood(c, chunk, 9)
        });
        std::thread::sleep(Duration::from_millis(500));
        let talker = in_ns(&ns, || {
            let mut c = greeted_at(SERVER4, 21);
            let (t, mut n) = (Instant::now(), 0);
            while t.elapsed() < Duration::from_secs(4) {
                assert_eq!(c.cmd("NOOP"), "200 ok");
                n += 1;
            }
            n
        });
        let idler = in_ns(&ns, || {
            let mut c = greeted_at(SERVER4, 21);
            let t = Instant::now();
            (c.text(), t.elapsed())
        });
        let replies = talker.join().expect("talker");
        let (bye, idle) = idler.join().expect("idler");
        // Generous bounds: a NOOP round trip takes well under 10 ms here.
        assert!(replies >= 40, "{kind}: {replies} replies in 4 s");
        assert_eq!(
            bye, "421 Idle timeout, closing control connection",
            "{kind}"
        );
        assert!(
            idle >= Duration::from_secs(2) && idle < Duration::from_secs(6),
            "{kind}: idle timer of 3 s fired after {idle:?}"
        );
        if k == 1 {
            // SIGTERM while the flood goes on.
            let t = Instant::now();
            assert_eq!(lab.stop_proxy(), Some(0), "{kind}");
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "shutdown took {:?}",
                t.elapsed()
            );
        }
        let sent = flooder.join().expect("flooder");
        assert!(sent > 0, "{kind}");
    }
}

/// A data listener that stays open for `secs` and answers every
/// connection with `payload`: how many connections reached it.
fn data_counter(
    lab: &Lab,
    port: u16,
    secs: u64,
    payload: &'static [u8],
) -> std::thread::JoinHandle<Vec<SocketAddr>> {
    listen_for(&lab.ns('s'), SERVER4, port, secs, payload)
}

fn try_fetch(port: u16) -> Option<Vec<u8>> {
    let addr: SocketAddr = format!("{SERVER4}:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    Some(all)
}

/// PASV: one connection gets through, a second to the same proxy port
/// does not; EPSV: a connection 75 s later still gets through (the
/// mapping lives until used, however long that takes).
fn one_shot_case(no_owner: bool) {
    let mut lab = Lab::new(false);
    let iface = lab.client_iface();
    let env: &[(&str, &str)] = match no_owner {
        true => &[("FTP_PROXY_NO_OWNER", "1")],
        false => &[],
    };
    lab.start_proxy_as(&[], env, &["-b", ROUTER_C4, "-i", &iface]);
    let fds = lab.fd_count();
    // The control connection idles for 75 s: a server that waits.
    let srv = serve(&lab.ns('s'), SERVER4, 21, 1, |_, mut p| {
        p.s.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        p.send(b"220 fake ready\r\n");
        while let Some(l) = p.line() {
            let cmd = String::from_utf8_lossy(&l).trim_end().to_string();
            if cmd == "QUIT" {
                p.send(b"221 bye\r\n");
                break;
            }
            p.send(passive_answers(&cmd).as_bytes());
        }
    });
    let first = data_counter(&lab, 30000, 12, b"once");
    let late = data_counter(&lab, 30001, 100, b"late");
    let ns = lab.ns('c');
    let mut c = in_ns(&ns, || greeted_at(SERVER4, 21))
        .join()
        .expect("client");
    let pasv = in_ns(&ns, move || {
        let r = c.cmd("PASV");
        let port = port_227(&r);
        let one = try_fetch(port);
        let two = try_fetch(port);
        (c, one, two)
    });
    let (mut c, one, two) = pasv.join().expect("client");
    assert_eq!(one.as_deref(), Some(&b"once"[..]), "first connection");
    assert_eq!(
        two, None,
        "a second connection to the same proxy port got through"
    );
    assert_eq!(first.join().expect("data").len(), 1);
    // Used up in the kernel: no element left for it.
    assert_eq!(lab.all_elements(), 0);
    let epsv = in_ns(&ns, move || {
        let r = c.cmd("EPSV");
        (c, port_229(&r))
    });
    let (c, port) = epsv.join().expect("client");
    c.s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    std::thread::sleep(Duration::from_secs(75));
    assert_eq!(lab.all_elements(), 2, "the pending mapping expired");
    let got = in_ns(&ns, move || {
        let mut c = c;
        c.s.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let got = try_fetch(port);
        c.cmd("QUIT");
        got
    })
    .join()
    .expect("client");
    assert_eq!(got.as_deref(), Some(&b"late"[..]), "no_owner {no_owner}");
    srv.join().expect("server");
    lab.assert_clean(fds);
    drop(late);
}

#[test]
fn a_mapping_admits_one_connection_and_waits_for_it() {
    if !prerequisites("one_shot") {
        return;
    }
    // With the owner flag (no element timeout) and without it (timeouts,
    // refreshed while pending), side by side.
    let t = std::thread::spawn(|| one_shot_case(true));
    one_shot_case(false);
    t.join().expect("without owner flag");
}

#[test]
fn guests_reach_neither_the_lan_nor_the_router_through_the_proxy() {
    if !prerequisites("zones") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.add_lan();
    let (guest, wan, lan) = (lab.client_iface(), lab.server_iface(), lab.lan_iface());
    // The admin's firewall: guests may not forward into the LAN.
    let fw = format!(
        "table inet fw {{\n chain guests {{\n type filter hook forward priority 0;\n \
         iifname \"{guest}\" oifname \"{lan}\" drop\n }}\n}}\n"
    );
    let file = lab.dir.join("fw.nft");
    std::fs::write(&file, fw).expect("fw");
    lab.nft(&["-f", &file.display().to_string()]);
    let lan_srv = listen_for(&lab.ns('l'), "198.18.3.2", 21, 20, b"220 lan host\r\n");
    let router_srv = listen_for(&lab.ns('r'), "198.19.2.1", 21, 20, b"220 router itself\r\n");
    let wan_srv = listen_for(&lab.ns('s'), SERVER4, 21, 20, b"220 wan\r\n");
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &guest, "-o", &wan]);
    let ns = lab.ns('c');
    let (to_wan, to_lan, to_router) = in_ns(&ns, || {
        let wan = greeted_at(SERVER4, 21);
        drop(wan);
        let lan =
            TcpStream::connect_timeout(&"198.18.3.2:21".parse().unwrap(), Duration::from_secs(3));
        let mut router = connect("198.19.2.1", 21);
        ("220 wan", lan.is_ok(), router.text())
    })
    .join()
    .expect("client");
    assert_eq!(to_wan, "220 wan");
    assert!(!to_lan, "a guest reached the LAN host");
    // Not intercepted: the router's own service saw the guest itself.
    assert_eq!(to_router, "220 router itself");
    let log = lab.log_text();
    assert_eq!(log.matches("FTP session started").count(), 1, "{log}");
    // Without -i's rule: the admin's own redirect takes everything; the
    // proxy itself refuses the router's addresses and what -o excludes.
    lab.stop_proxy();
    let redirect = format!(
        "table ip admin {{\n chain pre {{\n type nat hook prerouting priority dstnat;\n \
         iifname \"{guest}\" tcp dport 21 redirect to :8021\n }}\n}}\n"
    );
    std::fs::write(&file, redirect).expect("redirect");
    lab.nft(&["-f", &file.display().to_string()]);
    lab.start_proxy(&["-b", ROUTER_C4, "-o", &wan]);
    let refused = in_ns(&ns, || {
        let mut r = Vec::new();
        for host in ["198.19.2.1", "198.18.1.1", "198.18.3.2"] {
            let mut c = connect(host, 21);
            r.push(c.text());
        }
        let mut ok = connect(SERVER4, 21);
        r.push(ok.text());
        r
    })
    .join()
    .expect("client");
    let no = "421 Service not available: destination not allowed through this proxy";
    assert_eq!(refused, [no, no, no, "220 wan"]);
    lab.assert_logged(&[
        "destination 198.19.2.1:21 refused: an address of the router itself",
        "destination 198.18.1.1:21 refused: an address of the router itself",
        "destination 198.18.3.2:21 refused: routed out of an interface not named by -o",
    ]);
    let guest_addr = "198.18.1.2";
    let router_peers = router_srv.join().expect("router service");
    assert!(
        router_peers
            .iter()
            .all(|p| p.ip().to_string() == guest_addr),
        "{router_peers:?}"
    );
    assert!(
        lan_srv.join().expect("lan").is_empty(),
        "the LAN host was reached"
    );
    assert_eq!(wan_srv.join().expect("wan").len(), 2);
}

#[test]
fn only_judged_bytes_reach_the_server_and_passive_replies_need_a_pasv() {
    if !prerequisites("clean_stream") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let (seen, srv) = recording_server(&lab, 1, |cmd| match cmd {
        "SYST" => "227 Entering Passive Mode (198,19,2,2,117,48)\r\n".into(),
        "STAT" => "229 Entering Extended Passive Mode (|||30001|)\r\n".into(),
        _ => "200 ok\r\n".into(),
    });
    let ns = lab.ns('c');
    let c = greeted(&lab);
    let r = in_ns(&ns, move || {
        let mut c = c;
        let mut r = Vec::new();
        for raw in [
            &b"NOOP\xff\rPORT 198,18,1,2,195,80\r\n"[..],
            b"NOOP\xff\x00X\r\n",
            b"NOOP\r\r\n",
            b"\r\n",
            b"\xff\xf4\xff\xf2NOOP\r\n",
        ] {
            c.send(raw);
            r.push(c.reply());
        }
        r.push(c.cmd("SYST"));
        r.push(c.cmd("STAT"));
        r.push(c.cmd("QUIT"));
        r
    })
    .join()
    .expect("client");
    let telnet = "500 Malformed Telnet sequence in command refused";
    let unsolicited = "425 Can't open data connection: passive reply to no PASV/EPSV";
    assert_eq!(
        r,
        [
            telnet,
            telnet,
            "500 Control characters in command refused",
            "500 Empty command",
            "200 ok",
            unsolicited,
            unsolicited,
            "221 bye"
        ]
    );
    srv.join().expect("server");
    // The server read exactly the accepted lines, Telnet and all.
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "\u{fffd}\u{fffd}\u{fffd}\u{fffd}NOOP",
            "SYST",
            "STAT",
            "QUIT"
        ]
    );
    lab.assert_clean(fds);
}

/// Pipelined commands, some refused by the proxy, against a real server:
/// every reply in the order of the commands.
fn ordered_case(kind: Server) {
    let mut lab = Lab::new(false);
    lab.start_server(kind);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    let ns = lab.ns('c');
    let codes = in_ns(&ns, || {
        let mut c = greeted_at(SERVER4, 21);
        // vsftpd here takes anonymous logins without a password.
        let mut r = c.cmd("USER anonymous");
        if r.starts_with("331") {
            r = c.cmd("PASS x@");
        }
        assert!(r.starts_with("230"), "{r}");
        let code = |r: String| r[..3].to_string();
        c.send(b"NOOP\r\nAUTH TLS\r\nNOOP\r\nLPSV\r\nPWD\r\n\r\nNOOP\r\n");
        let mut codes: Vec<String> = (0..7).map(|_| code(c.reply())).collect();
        let pasv = c.cmd("PASV");
        assert!(pasv.starts_with("227"), "{pasv}");
        let mut data = connect(SERVER4, port_227(&pasv));
        // RETR's 150 and 226 come before the refusal sent after it.
        c.send(b"TYPE I\r\nRETR file.bin\r\nAUTH TLS\r\nNOOP\r\n");
        let mut all = Vec::new();
        data.s.read_to_end(&mut all).expect("data");
        assert_eq!(all.len(), FILE_SIZE);
        // ProFTPD answers 226 once the client has closed its end too.
        drop(data);
        codes.extend((0..5).map(|_| code(c.reply())));
        codes
    })
    .join()
    .unwrap_or_else(|_| panic!("{}: client failed\n{}", kind.name(), lab.log_text()));
    assert_eq!(
        codes,
        ["200", "534", "200", "502", "257", "500", "200", "200", "150", "226", "534", "200"],
        "{}",
        kind.name()
    );
}

#[test]
fn refusals_wait_for_the_replies_before_them() {
    if !prerequisites("ordered_replies") {
        return;
    }
    let t = std::thread::spawn(|| ordered_case(Server::Proftpd));
    ordered_case(Server::Vsftpd);
    t.join().expect("proftpd");
}

#[test]
fn one_client_address_cannot_take_every_slot() {
    if !prerequisites("per_client") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&["-M", "2"]);
    let _srv = answering_server(&lab, 4);
    let dev = format!("fp{}-c", lab.name);
    let o = lab.exec('c', 5, &["ip", "addr", "add", "198.18.1.3/24", "dev", &dev]);
    assert!(o.status.success());
    let ns = lab.ns('c');
    let r = in_ns(&ns, || {
        // The first session is the server's silent one; it only greets.
        let mut held: Vec<Peer> = (0..2).map(|_| connect(SERVER4, 21)).collect();
        let mut r: Vec<String> = held.iter_mut().map(|c| c.text()).collect();
        r.push(connect(SERVER4, 21).text());
        let mut other = connect_from("198.18.1.3", SERVER4, 21);
        r.push(other.text());
        r.push(other.cmd("NOOP"));
        r
    })
    .join()
    .expect("clients");
    assert_eq!(
        r,
        [
            "220 fake ready",
            "220 fake ready",
            "421 Service not available, closing control connection",
            "220 fake ready",
            "200 ok"
        ]
    );
    lab.assert_logged(&[
        "refusing client 198.18.1.2:",
        "per-client limit (2) reached",
    ]);
    lab.assert_clean(fds);
}

#[test]
fn dead_peers_are_probed_and_refusals_are_logged_within_a_budget() {
    if !prerequisites("keepalive_and_log_budget") {
        return;
    }
    let (lab, _) = intercepting_lab(&[]);
    let (_, _srv) = recording_server(&lab, 1, ok200);
    let c = greeted(&lab);
    // Both of the session's sockets probe an idle peer after 60 s.
    let ss = lab.exec('r', 5, &["ss", "-tnoH", "state", "established"]);
    let ss = String::from_utf8_lossy(&ss.stdout).into_owned();
    let probed = ss
        .lines()
        .filter(|l| l.contains("timer:(keepalive,"))
        .count();
    assert!(probed >= 2, "{ss}");
    let ns = lab.ns('c');
    let n = 200;
    let replies = in_ns(&ns, move || {
        let mut c = c;
        // (TLS attempts are logged once per session, not by the budget.)
        c.send(&b"LPSV\r\n".repeat(n));
        let r: Vec<String> = (0..n).map(|_| c.reply()).collect();
        std::thread::sleep(Duration::from_millis(1100));
        c.cmd("LPSV");
        c.cmd("QUIT");
        r
    })
    .join()
    .expect("client");
    assert!(replies.iter().all(|r| r.starts_with("502 ")));
    let log = lab.log_text();
    let logged = log.matches("refused LPSV").count();
    assert!(logged <= 10, "{logged} refusal lines for {n} refusals");
    assert!(
        log.contains("similar lines suppressed)"),
        "no summary of the suppressed lines:\n{log}"
    );
}

#[test]
fn a_long_single_line_greeting_is_a_greeting() {
    if !prerequisites("long_greeting") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let banner = format!("220 {}\r\n", "x".repeat(1000));
    let b = banner.clone();
    let srv = serve(&lab.ns('s'), SERVER4, 21, 1, move |_, mut p| {
        p.s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        p.send(b.as_bytes());
        while let Some(l) = p.line() {
            if l.starts_with(b"QUIT") {
                p.send(b"221 bye\r\n");
                break;
            }
            p.send(b"200 ok\r\n");
        }
    });
    let mut c = client(&lab).join().expect("client");
    c.s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    assert_eq!(c.text(), banner.trim_end());
    // Past the 30 s the greeting may take, the session is still there.
    std::thread::sleep(Duration::from_secs(32));
    let ns = lab.ns('c');
    let r = in_ns(&ns, move || [c.cmd("NOOP"), c.cmd("QUIT")])
        .join()
        .expect("client");
    assert_eq!(r, ["200 ok", "221 bye"]);
    srv.join().expect("server");
    lab.assert_clean(fds);
}

#[test]
fn a_failure_after_the_fork_is_the_exit_status() {
    if !prerequisites("exit_status") {
        return;
    }
    let lab = Lab::new(false);
    // Without CAP_SETUID the privilege drop fails after the fork (the
    // table and listener already exist): the started command says so.
    let (code, text) = lab.proxy_refuses_detached(
        &["setpriv", "--bounding-set", "-setuid,-setgid"],
        &["-p", "8023"],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("dropping privileges"), "{text}");
    assert!(
        !lab.tables().contains("table inet ftp-proxy-"),
        "table left"
    );
}

#[test]
fn an_ipv6_listener_takes_ipv6_only() {
    if !prerequisites("v6only") {
        return;
    }
    let mut lab = Lab::new(true);
    let _srv = listen_for(&lab.ns('s'), "[2001:db8:2::2]", 21, 15, b"220 six\r\n");
    lab.start_proxy(&["-6", "-b", "::", "-R", SERVER6]);
    let ns = lab.ns('c');
    let (v4, v6) = in_ns(&ns, || {
        let v4 = TcpStream::connect_timeout(
            &format!("{ROUTER_C4}:8021").parse().unwrap(),
            Duration::from_secs(3),
        );
        let mut v6 = connect(ROUTER_C6, 8021);
        (v4.is_ok(), v6.text())
    })
    .join()
    .expect("client");
    assert!(!v4, "an IPv4 client reached the IPv6 listener");
    assert_eq!(v6, "220 six");
}
