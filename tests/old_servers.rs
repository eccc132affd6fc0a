//! Servers without EPSV/EPRT, and servers that answer oddly: the proxy
//! tries PASV/PORT for the client (IPv4), honours EPSV ALL, and answers
//! a passive reply it cannot read with a 425 while the session goes on.
//! Scripted servers for exact replies, pyftpdlib with EPSV and EPRT
//! removed as a real one. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::io::Read;

/// An old server: EPSV and EPRT unknown, PASV to data port 30000.
fn old(cmd: &str) -> String {
    match cmd {
        "EPSV" => "500 'EPSV': command not understood.\r\n".into(),
        c if c.starts_with("EPRT") => "502 Command not implemented.\r\n".into(),
        "PASV" => "227 Entering Passive Mode (198,19,2,2,117,48).\r\n".into(),
        c if c.starts_with("PORT") => "200 PORT command successful.\r\n".into(),
        _ => "200 ok\r\n".into(),
    }
}

/// The port of the proxy's `PORT h,h,h,h,p1,p2` as the server saw it.
fn port_of(line: &str) -> u16 {
    let n: Vec<u16> = line[5..].split(',').map(|x| x.parse().unwrap()).collect();
    n[4] * 256 + n[5]
}

#[test]
fn epsv_and_eprt_the_server_does_not_know_become_pasv_and_port() {
    if !prerequisites("epsv_and_eprt_fall_back") {
        return;
    }
    let (lab, fds) = intercepting_lab(&[]);
    let mut lab = lab;
    let (seen, srv) = recording_server(&lab, 1, old);
    let data = data_server(&lab.ns('s'), SERVER4, 30000, b"passive via PASV");
    // The client's own listener for the active transfer.
    let active = serve(&lab.ns('c'), "198.18.1.2", 40000, 1, |_, mut p| {
        let mut got = Vec::new();
        let _ = p.s.read_to_end(&mut got);
        got
    });
    let c = greeted(&lab);
    let ns = lab.ns('c');
    let (r, got, c) = in_ns(&ns, move || {
        let mut c = c;
        let first = c.cmd("EPSV");
        let got = fetch(SERVER4, port_229(&first));
        let r = vec![
            first,
            c.cmd("EPSV"),
            c.cmd("EPRT |1|198.18.1.2|40000|"),
            c.cmd("EPRT |1|198.18.1.2|40000|"),
        ];
        (r, got, c)
    })
    .join()
    .expect("client");
    for epsv in &r[..2] {
        assert!(
            epsv.starts_with("229 Entering Extended Passive Mode (|||"),
            "the client sees a 229, never the server's 500: {epsv}"
        );
        assert_ne!(port_229(epsv), 30000, "server port leaked");
    }
    assert_eq!(got, b"passive via PASV");
    assert_eq!(data.join().expect("data").len(), 1);
    assert_eq!(r[2], "200 PORT command successful.");
    assert_eq!(r[3], "200 PORT command successful.");
    // The server's connection to the proxy's PORT reaches the client.
    let last_port = {
        let seen = seen.lock().unwrap();
        port_of(seen.last().expect("PORT"))
    };
    in_ns(&lab.ns('s'), move || {
        let mut p = connect("198.19.2.1", last_port);
        p.send(b"active via PORT");
    })
    .join()
    .expect("server's data connection");
    assert_eq!(
        active.join().expect("client listener")[0],
        b"active via PORT"
    );
    in_ns(&ns, move || {
        let mut c = c;
        assert_eq!(c.cmd("QUIT"), "221 bye");
    })
    .join()
    .expect("quit");
    srv.join().expect("server");
    let seen = seen.lock().unwrap().clone();
    // One refusal each: then the older command goes at once.
    assert_eq!(seen[..3], ["EPSV", "PASV", "PASV"], "{seen:?}");
    assert!(seen[3].starts_with("EPRT |1|198.19.2.1|"), "{seen:?}");
    assert!(seen[4].starts_with("PORT 198,19,2,1,"), "{seen:?}");
    assert_eq!(
        port_of(&seen[4]),
        seen[3].split('|').nth(3).unwrap().parse::<u16>().unwrap(),
        "the PORT names the proxy port the EPRT did"
    );
    assert!(seen[5].starts_with("PORT 198,19,2,1,"), "{seen:?}");
    assert_eq!(seen.len(), 7, "{seen:?}");
    lab.assert_logged(&[
        "server does not know EPSV (500): PASV is sent in its place",
        "server does not know EPRT (502): PORT is sent in its place",
    ]);
    lab.assert_clean(fds);
}

#[test]
fn epsv_all_means_no_pasv_or_port_on_the_clients_behalf() {
    if !prerequisites("epsv_all_no_fallback") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let (seen, srv) = recording_server(&lab, 1, old);
    let c = greeted(&lab);
    let r = in_ns(&lab.ns('c'), move || {
        let mut c = c;
        [
            "EPSV ALL",
            "EPSV",
            "PASV",
            "EPRT |1|198.18.1.2|40000|",
            "QUIT",
        ]
        .map(|cmd| c.cmd(cmd))
    })
    .join()
    .expect("client");
    let all = "503 EPSV ALL in effect, only EPSV is allowed";
    assert_eq!(
        r,
        [
            "200 ok",
            "500 'EPSV': command not understood.",
            all,
            all,
            "221 bye"
        ]
    );
    srv.join().expect("server");
    assert_eq!(*seen.lock().unwrap(), ["EPSV ALL", "EPSV", "QUIT"]);
    lab.assert_clean(fds);
}

#[test]
fn passive_replies_that_cannot_be_read_get_a_425_and_the_session_goes_on() {
    if !prerequisites("unreadable_passive_replies") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    // pure-ftpd's "227 Logout.", 229s without a port or cut short, and
    // an old server whose PASV (for a refused EPSV) says nothing usable.
    let epsv = std::sync::atomic::AtomicUsize::new(0);
    let odd = move |cmd: &str| -> String {
        match cmd {
            "PASV" => "227 Logout.\r\n".into(),
            "EPSV" => match 1 + epsv.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
                1 => "229 Entering Extended Passive Mode\r\n".into(),
                2 => "229 Entering Extended Passive Mode (|||).\r\n".into(),
                3 => "229 Entering Extended Passive Mode (|||65536|)\r\n".into(),
                _ => "500 unknown\r\n".into(),
            },
            _ => "200 ok\r\n".into(),
        }
    };
    let (seen, srv) = recording_server(&lab, 1, odd);
    let c = greeted(&lab);
    let r = in_ns(&lab.ns('c'), move || {
        let mut c = c;
        ["PASV", "EPSV", "EPSV", "EPSV", "EPSV", "NOOP", "QUIT"].map(|cmd| c.cmd(cmd))
    })
    .join()
    .expect("client");
    let bad = "425 Can't open data connection: bad passive reply from server";
    assert_eq!(r, [bad, bad, bad, bad, bad, "200 ok", "221 bye"]);
    srv.join().expect("server");
    assert_eq!(
        *seen.lock().unwrap(),
        ["PASV", "EPSV", "EPSV", "EPSV", "EPSV", "PASV", "NOOP", "QUIT"]
    );
    assert_eq!(lab.all_elements(), 0, "nothing installed for them");
    lab.assert_clean(fds);
}

#[test]
fn a_real_server_without_epsv_serves_clients_that_use_it() {
    if !prerequisites("real_server_without_epsv") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::PyftpdOld);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    let fds = lab.fd_count();
    let dst = lab.dir.join("got.bin").display().to_string();
    let url = format!("ftp://{SERVER4}/file.bin");
    // curl asks EPSV, then EPRT (-P -), and never sees them refused: a
    // client that did would retry itself.
    for flags in [&[][..], &["-P", "-"]] {
        let _ = std::fs::remove_file(&dst);
        let mut argv = vec!["curl", "-sS", "--max-time", "10", "-o", &dst, "-v"];
        argv.extend_from_slice(flags);
        argv.push(&url);
        let o = lab.exec('c', 20, &argv);
        lab.assert_downloaded(&o, &lab.dir.join("got.bin"), &format!("{flags:?}"));
        let text = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!text.contains("not understood"), "{text}");
        let want = if flags.is_empty() { "> EPSV" } else { "> EPRT" };
        assert!(text.contains(want), "{text}");
    }
    lab.assert_logged(&[
        "server does not know EPSV (500): PASV is sent in its place",
        "server does not know EPRT (500): PORT is sent in its place",
    ]);
    lab.assert_clean(fds);
}
