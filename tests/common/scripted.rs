//! Scripted peers for the misbehaving-peer tests: a fake client and a fake
//! server, each a thread that has entered one of the lab's namespaces.
//! Every read has a deadline, so a proxy that hangs fails the test instead
//! of hanging it.

use super::{Lab, ROUTER_C4, SERVER4};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single read waits before the test fails.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `f` on a new thread inside network namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on this thread only; fd is a namespace file.
        let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// One end of a control connection, read line by line.
pub struct Peer {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    pub fn new(s: TcpStream) -> Peer {
        s.set_read_timeout(Some(READ_DEADLINE)).expect("timeout");
        Peer { s, buf: Vec::new() }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("send");
    }

    /// Sends `b` as TCP urgent data (its last byte is the urgent one).
    pub fn send_urgent(&mut self, b: &[u8]) {
        // SAFETY: b is valid for its length.
        let n = unsafe {
            libc::send(
                self.s.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                libc::MSG_OOB,
            )
        };
        assert_eq!(n, b.len() as isize, "send MSG_OOB");
    }

    /// The next line, LF included; `None` at end of stream.
    pub fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                return Some(self.buf.drain(..=i).collect());
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!(
                    "reading a line: {e} (have {:?})",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// The next line as text, without CR LF; panics at end of stream.
    pub fn text(&mut self) -> String {
        let l = self.line().expect("a line, got end of stream");
        String::from_utf8_lossy(&l)
            .trim_end_matches(['\r', '\n'])
            .to_string()
    }

    /// A whole reply, multi-line ones joined with '\n'.
    pub fn reply(&mut self) -> String {
        let first = self.text();
        let mut all = first.clone();
        if first.len() >= 4 && first.as_bytes()[3] == b'-' {
            let end = format!("{} ", &first[..3]);
            loop {
                let l = self.text();
                all.push('\n');
                all.push_str(&l);
                if l.starts_with(&end) {
                    break;
                }
            }
        }
        all
    }

    /// Sends a command and returns the reply.
    pub fn cmd(&mut self, c: &str) -> String {
        self.send(format!("{c}\r\n").as_bytes());
        self.reply()
    }

    /// True when the peer closes (or resets) within `d`; false when data
    /// arrives instead or the time runs out.
    pub fn closes_within(&mut self, d: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.s.set_read_timeout(Some(d)).expect("timeout");
        let mut b = [0u8; 1];
        let r = self.s.read(&mut b);
        self.s
            .set_read_timeout(Some(READ_DEADLINE))
            .expect("timeout");
        match r {
            Ok(0) => true,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
            Ok(_) => {
                self.buf.push(b[0]);
                false
            }
        }
    }

    /// Closes with a TCP reset instead of a FIN.
    pub fn reset(self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid linger struct for SO_LINGER.
        unsafe {
            libc::setsockopt(
                self.s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
    }
}

/// A client in the lab's client namespace, connected to the server's
/// port 21 (the router hands it to the proxy), with the greeting read.
pub fn client(lab: &Lab) -> JoinHandle<Peer> {
    let server = lab.server_addr().to_string();
    in_ns(&lab.ns('c'), move || connect(&server, 21))
}

/// `connect`, with the greeting read and dropped.
pub fn greeted_at(host: &str, port: u16) -> Peer {
    let mut c = connect(host, port);
    c.reply();
    c
}

pub fn connect(host: &str, port: u16) -> Peer {
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .expect("address");
    Peer::new(TcpStream::connect_timeout(&addr, READ_DEADLINE).expect("connect"))
}

/// `connect`, from local address `src` (bound before connecting).
pub fn connect_from(src: &str, host: &str, port: u16) -> Peer {
    let dst = SocketAddr::new(host.parse().expect("address"), port);
    let s = ftp_proxy::net::connect_from(Some(src.parse().expect("source")), dst).expect("connect");
    let deadline = Instant::now() + READ_DEADLINE;
    while s.peer_addr().is_err() {
        assert!(
            Instant::now() < deadline,
            "connect from {src} to {dst} timed out"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let std = TcpStream::from(std::os::fd::OwnedFd::from(s));
    std.set_nonblocking(false).expect("blocking");
    Peer::new(std)
}

/// Accepts on `addr:port` in `ns` for `secs` seconds, greeting each
/// connection with `hello`; returns every peer's address. For listeners
/// that must stay open whether or not anything comes.
pub fn listen_for(
    ns: &str,
    addr: &str,
    port: u16,
    secs: u64,
    hello: &'static [u8],
) -> JoinHandle<Vec<SocketAddr>> {
    let (tx, rx) = mpsc::channel();
    let bind = format!("{addr}:{port}");
    let h = in_ns(ns, move || {
        let l = TcpListener::bind(&bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        l.set_nonblocking(true).expect("nonblocking");
        tx.send(()).expect("ready");
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut peers = Vec::new();
        while Instant::now() < deadline {
            match l.accept() {
                Ok((mut s, peer)) => {
                    peers.push(peer);
                    let _ = s.write_all(hello);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("accept {bind}: {e}"),
            }
        }
        peers
    });
    rx.recv().expect("listener ready");
    h
}

/// Listens on `addr:port` in namespace `ns` and hands each of the next
/// `conns` connections to `script` (with its number, in accept order) on
/// a thread of its own. Returns once it listens; the handle yields what
/// the scripts returned, in accept order.
pub fn serve<T: Send + 'static>(
    ns: &str,
    addr: &str,
    port: u16,
    conns: usize,
    script: impl Fn(usize, Peer) -> T + Send + Sync + 'static,
) -> JoinHandle<Vec<T>> {
    let (tx, rx) = mpsc::channel();
    let bind = format!("{addr}:{port}");
    let script = std::sync::Arc::new(script);
    let h = in_ns(ns, move || {
        let l = TcpListener::bind(&bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        l.set_nonblocking(true).expect("nonblocking");
        tx.send(()).expect("ready");
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut running = Vec::new();
        while running.len() < conns {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("blocking");
                    let (i, script) = (running.len(), script.clone());
                    running.push(thread::spawn(move || script(i, Peer::new(s))));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "{bind}: no connection came");
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept {bind}: {e}"),
            }
        }
        running
            .into_iter()
            .map(|h| h.join().expect("server script"))
            .collect()
    });
    rx.recv().expect("server ready");
    h
}

/// A data listener at `addr:port` in `ns`: accepts one connection, sends
/// `payload`, and returns the peer's address.
pub fn data_server(
    ns: &str,
    addr: &str,
    port: u16,
    payload: &'static [u8],
) -> JoinHandle<Vec<SocketAddr>> {
    serve(ns, addr, port, 1, move |_, mut p| {
        let peer = p.s.peer_addr().expect("peer");
        p.send(payload);
        peer
    })
}

/// The six numbers of a `227 … (h1,h2,h3,h4,p1,p2)` reply (its last line).
fn numbers_227(reply: &str) -> [u16; 6] {
    let last = reply.lines().last().unwrap_or_default();
    let inner = last
        .split(['(', ')'])
        .nth(1)
        .unwrap_or_else(|| panic!("no numbers in {reply:?}"));
    let n: Vec<u16> = inner
        .split(',')
        .map(|x| x.trim().parse().expect("number"))
        .collect();
    n.try_into()
        .unwrap_or_else(|n| panic!("not six numbers: {n:?} in {reply:?}"))
}

/// Address from a `227` reply.
pub fn host_227(reply: &str) -> String {
    let n = numbers_227(reply);
    format!("{}.{}.{}.{}", n[0], n[1], n[2], n[3])
}

/// Port from a `227` reply.
pub fn port_227(reply: &str) -> u16 {
    let n = numbers_227(reply);
    n[4] * 256 + n[5]
}

/// Port from a `229 … (|||port|)` reply.
pub fn port_229(reply: &str) -> u16 {
    let inner = reply
        .split(['(', ')'])
        .nth(1)
        .unwrap_or_else(|| panic!("no port in {reply:?}"));
    inner
        .trim_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|_| panic!("bad 229 {reply:?}"))
}

/// Reads everything a data connection to `host:port` sends.
pub fn fetch(host: &str, port: u16) -> Vec<u8> {
    let mut p = connect(host, port);
    let mut all = Vec::new();
    p.s.read_to_end(&mut all).expect("data");
    all
}

/// A lab with the proxy intercepting the client side (`-i`), no server.
pub fn intercepting_lab(extra: &[&str]) -> (Lab, usize) {
    let mut lab = Lab::new(false);
    let iface = lab.client_iface();
    let mut args = vec!["-b", ROUTER_C4, "-i", &iface];
    args.extend_from_slice(extra);
    lab.start_proxy(&args);
    let fds = lab.fd_count();
    (lab, fds)
}

pub type Seen = Arc<Mutex<Vec<String>>>;

/// A fake server that greets, records each command it receives and
/// answers it with `answer(command)`; ends at QUIT or end of stream.
pub fn recording_server(
    lab: &Lab,
    conns: usize,
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (Seen, std::thread::JoinHandle<Vec<()>>) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let h = serve(&lab.ns('s'), SERVER4, 21, conns, move |_, mut p| {
        p.send(b"220 fake ready\r\n");
        while let Some(l) = p.line() {
            let cmd = String::from_utf8_lossy(&l)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            log.lock().unwrap().push(cmd.clone());
            if cmd.eq_ignore_ascii_case("QUIT") {
                p.send(b"221 bye\r\n");
                break;
            }
            p.send(answer(&cmd).as_bytes());
        }
    });
    (seen, h)
}

/// Answers PASV with data port 30000 and EPSV with 30001 on the server's
/// address, everything else with 200.
pub fn passive_answers(cmd: &str) -> String {
    match cmd {
        "PASV" => "227 Entering Passive Mode (198,19,2,2,117,48)\r\n".into(),
        "EPSV" => "229 Entering Extended Passive Mode (|||30001|)\r\n".into(),
        _ => "200 ok\r\n".into(),
    }
}

pub fn ok200(_: &str) -> String {
    "200 ok\r\n".into()
}

pub fn greeted(lab: &Lab) -> Peer {
    let mut c = client(lab).join().expect("client");
    assert_eq!(c.reply(), "220 fake ready");
    c
}

/// Logs in anonymously at `SERVER4`, RETRs `file` over EPSV and reads
/// the data connection to its end, storing the count so far in
/// `counter`: a download another thread can watch (and cut the proxy
/// under). Returns every byte.
pub fn retr_counting(
    file: &str,
    size: usize,
    counter: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<u8> {
    retr_counting_within(file, size, counter, Duration::from_secs(20))
}

/// `retr_counting` with `quiet`, the longest the data connection may
/// stay silent.
pub fn retr_counting_within(
    file: &str,
    size: usize,
    counter: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    quiet: Duration,
) -> Vec<u8> {
    let mut c = greeted_at(SERVER4, 21);
    assert!(c.cmd("USER anonymous").starts_with("230"));
    assert!(c.cmd("TYPE I").starts_with("200"));
    let mut d = connect(SERVER4, port_229(&c.cmd("EPSV")));
    c.send(format!("RETR {file}\r\n").as_bytes());
    let mut all = Vec::with_capacity(size);
    let mut buf = [0u8; 65536];
    d.s.set_read_timeout(Some(quiet)).expect("timeout");
    loop {
        match d.s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                counter.store(all.len(), std::sync::atomic::Ordering::Relaxed);
            }
            // A read with a timeout is not restarted after a signal.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("data connection: {e} after {} bytes", all.len()),
        }
    }
}
