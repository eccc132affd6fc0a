//! Misbehaving peers: a scripted client and a scripted server (threads in
//! the lab's namespaces) send what real ones should not. Each test checks
//! the reply or log line the proxy gives, that only the bad session ends,
//! and that no descriptor or map element is left behind. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[test]
fn client_garbage_is_refused_and_the_session_goes_on() {
    if !prerequisites("client_garbage") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let (seen, srv) = recording_server(&lab, 1, ok200);
    let lab_ns = lab.ns('c');
    let c = greeted(&lab);
    let replies = in_ns(&lab_ns, move || {
        let mut c = c;
        let mut r = vec![c.cmd("NOOP")];
        // Longer than the 512-byte line buffer, sent in one go.
        let mut long = vec![b'A'; 3000];
        long.extend_from_slice(b"\r\n");
        c.send(&long);
        r.push(c.reply());
        c.send(b"PO\0RT 198,18,99,7,195,80\r\n");
        r.push(c.reply());
        // Binary garbage: every byte value except LF, then a line end.
        let mut garbage: Vec<u8> = (0..=255u8).filter(|&b| b != b'\n').collect();
        garbage.extend_from_slice(b"\r\n");
        c.send(&garbage);
        r.push(c.reply());
        c.send(b"NOOP\rPORT 198,18,99,7,195,80\r\n");
        r.push(c.reply());
        r.push(c.cmd("noop"));
        r.push(c.cmd("QUIT"));
        assert!(
            c.closes_within(Duration::from_secs(5)),
            "no close after QUIT"
        );
        r
    })
    .join()
    .expect("client script");
    assert_eq!(
        replies,
        [
            "200 ok",
            "500 Command line too long",
            "500 Control characters in command refused",
            // Ends in IAC CR: a malformed Telnet sequence.
            "500 Malformed Telnet sequence in command refused",
            "500 Control characters in command refused",
            "200 ok",
            "221 bye"
        ]
    );
    srv.join().expect("server");
    assert_eq!(*seen.lock().unwrap(), ["NOOP", "noop", "QUIT"]);
    lab.assert_logged(&[
        "client sent a command longer than 512 bytes",
        "refused PO\\x00RT: 500 Control characters",
    ]);
    lab.assert_clean(fds);
}

#[test]
fn odd_server_replies_are_relayed_or_refused() {
    if !prerequisites("odd_server_replies") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let banner = format!(
        "220-{}\r\n220-second line\r\n220 ready\r\n",
        "x".repeat(1500)
    );
    let long250 = format!("250-{}\r\n250 done\r\n", "y".repeat(3000));
    let (b, l) = (banner.clone(), long250.clone());
    let data1 = data_server(&lab.ns('s'), SERVER4, 30000, b"passive data");
    let data2 = data_server(&lab.ns('s'), SERVER4, 30001, b"extended data");
    let srv = serve(&lab.ns('s'), SERVER4, 21, 1, move |_, mut p| {
        p.send(b.as_bytes());
        let mut pasv = 0;
        while let Some(line) = p.line() {
            let cmd = String::from_utf8_lossy(&line).trim_end().to_string();
            let answer = match cmd.as_str() {
                "LONG" => l.clone(),
                "PASV" => {
                    pasv += 1;
                    match pasv {
                        // A third host in the 227, inside and at the end.
                        1 => "227-Entering (198,18,99,1,5,6)\r\n227 Entering Passive Mode (198,18,99,7,117,48)\r\n".into(),
                        2 => format!("227 {}(198,19,2,2,117,48)\r\n", "z".repeat(600)),
                        3 => "227 Entering Passive Mode (198,19,2,2,0,22)\r\n".into(),
                        _ => "227 nothing to see\r\n".into(),
                    }
                }
                "EPSV" => "229 Entering Extended Passive Mode (!!!30001!)\r\n".into(),
                "QUIT" => {
                    p.send(b"221 bye\r\n");
                    break;
                }
                _ => "200 ok\r\n".into(),
            };
            p.send(answer.as_bytes());
        }
    });
    let ns = lab.ns('c');
    let (got_banner, got_long, r) = in_ns(&ns, move || {
        let mut c = connect(SERVER4, 21);
        let got_banner = c.reply();
        c.send(b"LONG\r\n");
        let got_long = c.reply();
        let mut r = Vec::new();
        let pasv = c.cmd("PASV");
        let data = fetch(SERVER4, port_227(&pasv));
        r.push(format!("{} {}", &pasv[..3], String::from_utf8_lossy(&data)));
        r.push(c.cmd("PASV"));
        r.push(c.cmd("PASV"));
        r.push(c.cmd("PASV"));
        let epsv = c.cmd("EPSV");
        let data = fetch(SERVER4, port_229(&epsv));
        r.push(format!("{} {}", &epsv[..3], String::from_utf8_lossy(&data)));
        r.push(c.cmd("NOOP"));
        r.push(c.cmd("QUIT"));
        (got_banner, got_long, r)
    })
    .join()
    .expect("client script");
    // Long lines pass through whole, in order.
    assert_eq!(got_banner, banner.replace("\r\n", "\n").trim_end());
    assert_eq!(got_long, long250.replace("\r\n", "\n").trim_end());
    assert_eq!(
        r,
        [
            "227 passive data",
            "425 Can't open data connection: bad passive reply from server",
            "425 Can't open data connection: server port below 1024 refused",
            "425 Can't open data connection: bad passive reply from server",
            "229 extended data",
            "200 ok",
            "221 bye"
        ]
    );
    srv.join().expect("server");
    // The data came from the proxy, not from the client's address.
    for d in [data1, data2] {
        let peers = d.join().expect("data server");
        assert_eq!(peers[0].ip().to_string(), "198.19.2.1");
    }
    lab.assert_logged(&["refused 227: 425 Can't open data connection: server port below 1024"]);
    lab.assert_clean(fds);
}

#[test]
fn bounce_attempts_are_refused_or_pinned() {
    if !prerequisites("bounce") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    // A second host on the client's network, to try the data port from.
    let iface = format!("fp{}-c", lab.name);
    let o = lab.exec(
        'c',
        5,
        &["ip", "addr", "add", "198.18.1.3/24", "dev", &iface],
    );
    assert!(o.status.success(), "second address");
    let (seen, srv) = recording_server(&lab, 1, |cmd| match cmd {
        "PASV" => "227 Entering Passive Mode (198,19,2,2,117,50)\r\n".into(),
        _ => "200 ok\r\n".into(),
    });
    let data = data_server(&lab.ns('s'), SERVER4, 30002, b"only for you");
    let c = greeted(&lab);
    let ns = lab.ns('c');
    let (r, pp) = in_ns(&ns, move || {
        let mut c = c;
        let mut r = vec![c.cmd("PORT 198,18,99,7,195,80")];
        r.push(c.cmd("PORT 198,18,1,2,0,25"));
        r.push(c.cmd("EPRT |1|198.18.1.2|1023|"));
        r.push(c.cmd("EPRT |1|198.18.99.7|65535|"));
        (r, c)
    })
    .join()
    .expect("client");
    assert_eq!(
        r,
        [
            "200 ok",
            "501 Data port below 1024 refused",
            "501 Data port below 1024 refused",
            "200 ok"
        ]
    );
    // The active mapping sends the server's connection to the client's
    // own address, never to the host named in PORT/EPRT.
    let map = lab.nft(&["list", "map", "inet", &lab.table, "dnat4"]);
    assert!(map.contains("198.18.1.2 . 65535"), "{map}");
    assert!(!map.contains("198.18.99"), "{map}");
    let mut c = pp;
    let (wrong, right) = in_ns(&ns, move || {
        let pasv = c.cmd("PASV");
        let port = port_227(&pasv);
        // From another address the proxy port leads nowhere…
        let wrong = from_other_address(port);
        // …from the client's own it reaches the server's data port.
        let right = fetch(SERVER4, port);
        assert_eq!(c.cmd("QUIT"), "221 bye");
        (wrong, right)
    })
    .join()
    .expect("client");
    assert!(wrong.is_err(), "a stranger got through: {wrong:?}");
    assert_eq!(right, b"only for you");
    srv.join().expect("server");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[0].starts_with("PORT 198,19,2,1,"), "{got:?}");
    assert!(got[1].starts_with("EPRT |1|198.19.2.1|"), "{got:?}");
    assert_eq!(got[2..], ["PASV", "QUIT"]);
    assert_eq!(data.join().expect("data")[0].ip().to_string(), "198.19.2.1");
    lab.assert_clean(fds);
}

/// Connects from 198.18.1.3 to the server's address at `port`.
fn from_other_address(port: u16) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket/bind/connect on a fresh descriptor we own.
    let s = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        std::net::TcpStream::from_raw_fd(fd)
    };
    let bind: std::net::SocketAddr = "198.18.1.3:0".parse().unwrap();
    let (ss, len) = ftp_proxy::net::sockaddr(&bind);
    // SAFETY: ss is a valid sockaddr of len bytes.
    let r = unsafe {
        libc::bind(
            s.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    assert_eq!(r, 0, "bind 198.18.1.3");
    let to: std::net::SocketAddr = format!("{SERVER4}:{port}").parse().unwrap();
    let (ss, len) = ftp_proxy::net::sockaddr(&to);
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: SO_SNDTIMEO bounds connect(2); valid pointers and lengths.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        libc::connect(
            s.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    Ok(all)
}

#[test]
fn abort_reaches_the_server_as_urgent_data() {
    if !prerequisites("abort_urgent") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    // The server reads as FTP servers do (no SO_OOBINLINE): the urgent
    // byte is taken out of the stream and read with MSG_OOB.
    let srv = serve(&lab.ns('s'), SERVER4, 21, 1, |_, mut p| {
        p.send(b"220 fake ready\r\n");
        let mut got = Vec::new();
        // What each abort leaves in the stream once its urgent byte is out.
        for left in [9, 5] {
            got.push(read_urgent(&p.s, left));
            p.send(b"426 aborted\r\n226 ABOR ok\r\n");
        }
        assert_eq!(p.text(), "NOOP");
        p.send(b"200 ok\r\n");
        got
    });
    let ns = lab.ns('c');
    let replies = in_ns(&ns, move || {
        let mut c = connect(SERVER4, 21);
        assert_eq!(c.reply(), "220 fake ready");
        let mut r = Vec::new();
        // BSD ftp(1): IAC IP IAC urgent, then DM ABOR.
        c.send_urgent(b"\xff\xf4\xff");
        c.send(b"\xf2ABOR\r\n");
        r.push(c.reply());
        r.push(c.reply());
        // Python's ftplib: the whole line urgent, so its LF is the mark.
        c.send_urgent(b"ABOR\r\n");
        r.push(c.reply());
        r.push(c.reply());
        r.push(c.cmd("NOOP"));
        r
    })
    .join()
    .expect("client");
    assert_eq!(
        replies,
        [
            "426 aborted",
            "226 ABOR ok",
            "426 aborted",
            "226 ABOR ok",
            "200 ok"
        ]
    );
    let got = srv.join().expect("server").remove(0);
    // The client's urgent byte reached the server as urgent data, at the
    // place in the stream where the client put it.
    assert_eq!(got[0], (b"\xff\xf4\xf2ABOR\r\n".to_vec(), Some((2, 0xff))));
    assert_eq!(got[1], (b"ABOR\r".to_vec(), Some((5, b'\n'))));
    lab.assert_clean(fds);
}

/// Reads `left` ordinary bytes as an FTP server without SO_OOBINLINE
/// does, and the urgent byte with MSG_OOB where the mark says: returns
/// the ordinary bytes and (offset, urgent byte).
fn read_urgent(s: &std::net::TcpStream, left: usize) -> (Vec<u8>, Option<(usize, u8)>) {
    const SIOCATMARK: libc::c_ulong = 0x8905;
    let fd = s.as_raw_fd();
    let deadline = Instant::now() + READ_DEADLINE;
    let (mut stream, mut urgent) = (Vec::new(), None);
    while stream.len() < left || urgent.is_none() {
        assert!(
            Instant::now() < deadline,
            "abort: got {stream:?}, urgent {urgent:?}"
        );
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLPRI,
            revents: 0,
        };
        let mut at_mark: libc::c_int = 0;
        let mut b = [0u8; 64];
        // SAFETY: poll, ioctl and recv on our own socket with valid buffers.
        unsafe {
            libc::poll(&mut pfd, 1, 100);
            assert_eq!(libc::ioctl(fd, SIOCATMARK as _, &mut at_mark), 0);
            if at_mark != 0 && urgent.is_none() {
                // The urgent byte may be announced before it arrives.
                if libc::recv(fd, b.as_mut_ptr().cast(), 1, libc::MSG_OOB) == 1 {
                    urgent = Some((stream.len(), b[0]));
                }
                continue;
            }
            let want = left.saturating_sub(stream.len()).clamp(1, 64);
            let n = libc::recv(fd, b.as_mut_ptr().cast(), want, libc::MSG_DONTWAIT);
            if n > 0 {
                stream.extend_from_slice(&b[..n as usize]);
            }
        }
    }
    (stream, urgent)
}

#[test]
fn abort_a_real_transfer_then_download_again() {
    if !prerequisites("abort_real") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Proftpd);
    let big = std::fs::File::create(lab.root().join("big.bin")).expect("big.bin");
    big.set_len(1 << 30).expect("sparse 1 GiB");
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    let fds = lab.fd_count();
    let out = lab.dir.join("small.out").display().to_string();
    let o = lab.exec(
        'c',
        60,
        &[
            "python3",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/ftpabort.py"),
            SERVER4,
            "21",
            "big.bin",
            "file.bin",
            &out,
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        lab.log_text()
    );
    let want = sha256(&lab.root().join("file.bin"));
    assert_eq!(stdout.trim(), format!("ok 426,226 {want}"));
    lab.assert_clean(fds);
}

#[test]
fn half_close_and_resets_clean_up() {
    if !prerequisites("half_close") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let srv = serve(&lab.ns('s'), SERVER4, 21, 3, |i, mut p| {
        p.send(b"220 fake ready\r\n");
        match i {
            // QUIT then FIN from the client: the 221 must still arrive.
            0 => {
                assert_eq!(p.text(), "QUIT");
                std::thread::sleep(Duration::from_millis(300));
                p.send(b"221 bye\r\n");
                assert!(p.closes_within(Duration::from_secs(5)));
                "quit"
            }
            // The client resets in the middle of a transfer.
            1 => {
                assert_eq!(p.text(), "PASV");
                p.send(b"227 Entering Passive Mode (198,19,2,2,117,51)\r\n");
                assert!(p.closes_within(Duration::from_secs(5)), "no close");
                "client reset"
            }
            // The server resets with a data connection pending.
            _ => {
                assert_eq!(p.text(), "PASV");
                p.send(b"227 Entering Passive Mode (198,19,2,2,117,52)\r\n");
                assert_eq!(p.text(), "NOOP");
                p.reset();
                "server reset"
            }
        }
    });
    let ns = lab.ns('c');
    let lab_ref = &lab;
    let c = in_ns(&ns, || {
        let mut c = greeted_at(SERVER4, 21);
        c.send(b"QUIT\r\n");
        c.s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let bye = c.reply();
        (bye, c.closes_within(Duration::from_secs(5)))
    })
    .join()
    .expect("client");
    assert_eq!(c, ("221 bye".to_string(), true));
    const DATA: usize = 2 << 20;
    let data = serve(&lab.ns('s'), SERVER4, 30003, 1, |_, mut p| {
        p.send(&vec![b'd'; DATA]);
    });
    let c2 = in_ns(&ns, || {
        let mut c = greeted_at(SERVER4, 21);
        let r = c.cmd("PASV");
        let mut d = connect(SERVER4, port_227(&r));
        let mut first = vec![0u8; 65536];
        std::io::Read::read_exact(&mut d.s, &mut first).expect("first data");
        (r, c, d)
    })
    .join()
    .expect("client");
    assert!(c2.0.starts_with("227 "), "{}", c2.0);
    // The data connection used its mapping up as it opened.
    assert_eq!(lab_ref.elements(&lab_ref.table, "dnat4"), 0);
    c2.1.reset();
    // The session ends and its mapping goes; the data connection the
    // kernel already forwards carries on to the end.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab_ref.elements(&lab_ref.table, "dnat4") != 0 {
        assert!(Instant::now() < deadline, "mapping left after the reset");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = Vec::new();
    let mut d = c2.2;
    std::io::Read::read_to_end(&mut d.s, &mut rest).expect("rest of data");
    assert_eq!(rest.len(), DATA - 65536);
    data.join().expect("data server");
    let c3 = in_ns(&ns, || {
        let mut c = greeted_at(SERVER4, 21);
        let r = c.cmd("PASV");
        c.send(b"NOOP\r\n");
        (r, c.closes_within(Duration::from_secs(5)))
    })
    .join()
    .expect("client");
    assert!(c3.0.starts_with("227 ") && c3.1, "{c3:?}");
    assert_eq!(
        srv.join().expect("server"),
        ["quit", "client reset", "server reset"]
    );
    lab.assert_logged(&[
        "client error: Connection reset by peer",
        "server error: Connection reset by peer",
    ]);
    lab.assert_clean(fds);
}

#[test]
fn silent_and_endless_peers_time_out() {
    if !prerequisites("timeouts") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&["-t", "3"]);
    let srv = serve(&lab.ns('s'), SERVER4, 21, 3, |i, mut p| match i {
        // A greeting that never ends, one line every 100 ms for 40 s.
        0 => {
            let end = Instant::now() + Duration::from_secs(40);
            while Instant::now() < end {
                if std::io::Write::write_all(&mut p.s, b"220-still talking\r\n").is_err() {
                    return "banner cut";
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            "banner not cut"
        }
        // A server that never answers a command.
        1 => {
            p.send(b"220 fake ready\r\n");
            assert_eq!(p.text(), "NOOP");
            assert!(p.closes_within(Duration::from_secs(10)));
            "silent server"
        }
        // A client that never sends anything.
        _ => {
            p.send(b"220 fake ready\r\n");
            assert!(p.closes_within(Duration::from_secs(10)));
            "silent client"
        }
    });
    let ns = lab.ns('c');
    let start = Instant::now();
    let endless = in_ns(&ns, || {
        let mut c = connect(SERVER4, 21);
        let mut last = c.text();
        let mut lines = 0;
        while last.starts_with("220-") {
            lines += 1;
            last = c.text();
        }
        (lines, last, c.closes_within(Duration::from_secs(5)))
    });
    // The next two connect once the banner server is busy.
    std::thread::sleep(Duration::from_millis(500));
    let silent_server = in_ns(&ns, || {
        let mut c = greeted_at(SERVER4, 21);
        c.send(b"NOOP\r\n");
        let t = Instant::now();
        (
            c.reply(),
            t.elapsed(),
            c.closes_within(Duration::from_secs(5)),
        )
    })
    .join()
    .expect("client");
    let silent_client = in_ns(&ns, || {
        let mut c = greeted_at(SERVER4, 21);
        let t = Instant::now();
        (
            c.reply(),
            t.elapsed(),
            c.closes_within(Duration::from_secs(5)),
        )
    })
    .join()
    .expect("client");
    for (what, (reply, took, closed)) in [("server", silent_server), ("client", silent_client)] {
        assert_eq!(
            reply, "421 Idle timeout, closing control connection",
            "{what}"
        );
        assert!(closed, "silent {what}: not closed");
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(8),
            "silent {what}: {took:?}"
        );
    }
    let (lines, last, closed) = endless.join().expect("client");
    assert!(lines > 100, "{lines} banner lines");
    assert_eq!(
        last,
        "421 Service not available: the FTP server did not greet"
    );
    assert!(closed && start.elapsed() < Duration::from_secs(40));
    assert_eq!(
        srv.join().expect("server"),
        ["banner cut", "silent server", "silent client"]
    );
    lab.assert_logged(&["ending session: server did not finish its greeting"]);
    let log = lab.log_text();
    assert_eq!(
        log.matches("ending session: idle timeout").count(),
        2,
        "{log}"
    );
    lab.assert_clean(fds);
}

#[test]
fn negotiation_state_epsv_all_and_refusals() {
    if !prerequisites("negotiation_state") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let (seen, srv) = recording_server(&lab, 1, passive_answers);
    let c = greeted(&lab);
    let ns = lab.ns('c');
    let lab = &mut lab;
    let dnat = |lab: &Lab| lab.nft(&["list", "map", "inet", &lab.table, "dnat4"]);
    let (first, mut c) = in_ns(&ns, move || {
        let mut c = c;
        let p = port_227(&c.cmd("PASV"));
        (p, c)
    })
    .join()
    .expect("client");
    assert!(dnat(lab).contains(&format!(". {first} ")), "{}", dnat(lab));
    let (second, c2) = in_ns(&ns, move || {
        let p = port_227(&c.cmd("PASV"));
        (p, c)
    })
    .join()
    .expect("client");
    c = c2;
    // The second PASV replaced the first mapping.
    let map = dnat(lab);
    assert_eq!(lab.elements(&lab.table, "dnat4"), 1, "{map}");
    assert!(map.contains(&format!(". {second} ")), "{map}");
    if first != second {
        assert!(!map.contains(&format!(". {first} ")), "{map}");
    }
    let r = in_ns(&ns, move || {
        [
            "AUTH TLS",
            "AUTH SSL",
            "PBSZ 0",
            "LPRT 4,4,198,18,1,2,2,195,80",
            "LPSV",
            "EPSV 2",
            "EPSV ALL",
            "PORT 198,18,1,2,195,80",
            "PASV",
            "EPRT |1|198.18.1.2|50000|",
            "EPSV",
            "QUIT",
        ]
        .map(|cmd| c.cmd(cmd))
    })
    .join()
    .expect("client");
    let tls = "534 TLS not available through this proxy: it must read the control channel";
    let all = "503 EPSV ALL in effect, only EPSV is allowed";
    assert_eq!(
        r[..6],
        [
            tls,
            tls,
            tls,
            "502 LPRT/LPSV not supported by the proxy, use EPRT/EPSV",
            "502 LPRT/LPSV not supported by the proxy, use EPRT/EPSV",
            "522 Network protocol not supported, use (1)"
        ]
    );
    assert_eq!(r[6], "200 ok");
    assert_eq!(r[7..10], [all, all, all]);
    assert!(
        r[10].starts_with("229 Entering Extended Passive Mode (|||"),
        "{}",
        r[10]
    );
    assert_ne!(port_229(&r[10]), 30001, "server port leaked");
    assert_eq!(r[11], "221 bye");
    srv.join().expect("server");
    assert_eq!(
        *seen.lock().unwrap(),
        ["PASV", "PASV", "EPSV ALL", "EPSV", "QUIT"]
    );
    // Three TLS commands, one line: each session's attempt is told once.
    lab.assert_logged(&["asked for TLS (AUTH): refused with 534"]);
    assert_eq!(lab.log_text().matches("asked for TLS").count(), 1);
    lab.assert_clean(fds);
}

#[test]
fn connection_flood_beyond_the_limit() {
    if !prerequisites("flood") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-m", "3"]);
    let fds = lab.fd_count();
    // Two slow downloads keep two of the three sessions busy.
    let downloads: Vec<_> = (0..2)
        .map(|i| {
            let dst = lab.dir.join(format!("got{i}.bin")).display().to_string();
            let src = lab.root().join("file.bin").display().to_string();
            std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &lab.ns('c'),
                    "timeout",
                    "60",
                    "python3",
                    FTPCLI,
                ])
                .args([SERVER4, "21", "epsv", &src, &dst, &format!("up{i}")])
                .args(["--slow", "1"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("ftpcli")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.log_text().matches("FTP session started").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "downloads did not start\n{}",
            lab.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // 300 connections, 100 held open at a time: one may take the free
    // slot, every other one must be told 421 at once.
    let ns = lab.ns('c');
    let (refused, served, slow) = in_ns(&ns, || {
        let (mut refused, mut served, mut slow) = (0, Vec::new(), 0);
        for _ in 0..3 {
            let mut open = Vec::new();
            for _ in 0..100 {
                let mut c = connect(SERVER4, 21);
                let t = Instant::now();
                let r = c.text();
                if t.elapsed() > Duration::from_secs(2) {
                    slow += 1;
                }
                if r.starts_with("421 ") {
                    refused += 1;
                } else {
                    served.push(r);
                }
                open.push(c);
            }
        }
        (refused, served, slow)
    })
    .join()
    .expect("flood");
    assert_eq!(slow, 0, "slow refusals");
    // At most the one free slot, taken again after each wave.
    assert!(
        served.len() <= 3 && refused + served.len() == 300,
        "{served:?} served, {refused} refused\n{}",
        lab.log_text()
    );
    assert!(served.iter().all(|r| r.starts_with("220")), "{served:?}");
    // The flood was over before the downloads were.
    let want = sha256(&lab.root().join("file.bin"));
    assert!(lab.log_text().matches("ending session").count() <= 3);
    for (i, d) in downloads.into_iter().enumerate() {
        let o = d.wait_with_output().expect("ftpcli");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "download {i}: {stdout}\n{}",
            lab.log_text()
        );
        assert_eq!(stdout.trim(), format!("ok {want} yes"), "download {i}");
    }
    lab.assert_clean(fds);
    // Every slot came back: three sessions at once are served.
    let greetings = in_ns(&ns, || {
        let mut cs: Vec<Peer> = (0..3).map(|_| connect(SERVER4, 21)).collect();
        cs.iter_mut().map(|c| c.reply()).collect::<Vec<_>>()
    })
    .join()
    .expect("clients");
    assert!(
        greetings.iter().all(|g| g.starts_with("220")),
        "{greetings:?}"
    );
    lab.assert_clean(fds);
    // Logged within the budget: 5 lines a second, the rest counted and
    // said in the next line let through.
    let log = lab.log_text();
    let logged = log.matches("session limit (3) reached").count();
    let counted: usize = log
        .split(" similar lines suppressed)")
        .filter_map(|l| l.rsplit('(').next()?.parse::<usize>().ok())
        .sum();
    assert!(
        logged >= 1 && logged < refused && logged + counted <= refused,
        "{logged} lines, {counted} counted, {refused} refusals"
    );
}
