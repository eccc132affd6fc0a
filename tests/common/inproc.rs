//! The proxy run in-process, in a private network namespace, against a
//! scripted FTP server: for tests that look inside the process.

use ftp_proxy::config::Config;
use ftp_proxy::event_loop::Proxy;
use ftp_proxy::filter::Backend;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

/// A scripted FTP server: answers every command, offers passive ports
/// and TLS in FEAT. After `USER old` it is an old server: EPSV and EPRT
/// get 500. Blocking I/O: when its client stops reading, it stops too.
pub fn fake_server(l: TcpListener) {
    for conn in l.incoming() {
        let Ok(s) = conn else { return };
        // A thread per connection: a session may stay open meanwhile.
        std::thread::spawn(move || fake_session(s));
    }
}

fn fake_session(mut s: std::net::TcpStream) {
    let Ok(clone) = s.try_clone() else { return };
    let mut r = BufReader::new(clone);
    let _ = s.write_all(b"220-fake server\r\n220 ready\r\n");
    let mut line = String::new();
    let mut old = false;
    while r.read_line(&mut line).unwrap_or(0) > 0 {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        old |= line.trim_end() == "USER old";
        let reply: &[u8] = match verb.as_str() {
            "USER" => b"331 password\r\n",
            "PASS" => b"230 in\r\n",
            "EPSV" | "EPRT" if old => b"500 command not understood\r\n",
            "PASV" => b"227 Entering Passive Mode (127,0,0,1,117,48)\r\n",
            "EPSV" => b"229 Entering Extended Passive Mode (|||30000|)\r\n",
            "FEAT" => b"211-Features\r\n AUTH TLS\r\n EPSV\r\n PBSZ\r\n PROT\r\n211 End\r\n",
            "QUIT" => b"221 bye\r\n",
            _ => b"200 ok\r\n",
        };
        if s.write_all(reply).is_err() || verb == "QUIT" {
            break;
        }
        line.clear();
    }
}

/// Runs ftp-proxy with `args` (plus -R/-P/-p for the scripted server) in a
/// new network namespace. `client` gets the proxy's port, runs in the same
/// namespace, and its result is returned once the proxy has shut down on
/// the SIGTERM that `client` must send when done. `around_run` wraps the
/// proxy's run on its own thread (to count allocations there).
pub fn run<T: Send + 'static>(
    args: &str,
    client: impl FnOnce(u16) -> T + Send + 'static,
    around_run: fn(&mut dyn FnMut()),
) -> (T, String) {
    let args = args.to_string();
    let lab = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread and threads it spawns.
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
        let all = format!("-d -R 127.0.0.1 -P {fake_port} -p {port} {args}");
        let cfg = Config::parse(all.split_whitespace().map(String::from)).expect("config");
        ftp_proxy::log::init(cfg.debug_level);
        let filter = Backend::open(&cfg).expect("nftables table");
        let cfg_sessions = cfg.max_sessions;
        let listener = mio::net::TcpListener::from_std(listener);
        let dests = ftp_proxy::intercept::Destinations::open(&cfg).expect("route socket");
        let dir = status_path().parent().expect("dir").to_path_buf();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("status dir");
        let status = match ftp_proxy::status::socket::bind(&status_path()).expect("status socket") {
            ftp_proxy::status::socket::Bound::Listening(l) => l,
            ftp_proxy::status::socket::Bound::Answered => panic!("status socket taken"),
        };
        let mut proxy = Proxy::new(
            cfg,
            listener,
            filter,
            dests,
            ftp_proxy::event_loop::Observers {
                status: Some(status),
                // By the port range, not -T's mark: the test's loopback
                // connections are not DNATed, so they carry no mark.
                conntrack: ftp_proxy::conntrack::Conntrack::open(
                    None,
                    Default::default(),
                    cfg_sessions,
                )
                .ok(),
            },
        )
        .expect("proxy");
        let (port_tx, port_rx) = mpsc::channel();
        let c = std::thread::spawn(move || client(port_rx.recv().expect("port")));
        port_tx.send(port).expect("send port");
        let mut result = Ok(ftp_proxy::event_loop::Ending::Stopped);
        around_run(&mut || result = proxy.run());
        assert_eq!(
            result.expect("proxy run"),
            ftp_proxy::event_loop::Ending::Stopped
        );
        let tables = std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
            .expect("nft");
        (
            c.join().expect("client"),
            String::from_utf8_lossy(&tables.stdout).into_owned(),
        )
    });
    lab.join().expect("lab thread")
}

/// The in-process proxy's status socket.
pub fn status_path() -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("ftp-proxy-inproc-{}", std::process::id()))
        .join("status.sock")
}

/// Asks the in-process proxy for its status (`text` or `json`).
pub fn query(request: &str) -> String {
    use std::io::Read;
    let mut s = std::os::unix::net::UnixStream::connect(status_path()).expect("status socket");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(format!("{request}\n").as_bytes())
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("status answer");
    out
}

/// Asks the in-process proxy to shut down, as an admin's SIGTERM would.
pub fn stop_proxy() {
    // SAFETY: signalling our own process; the proxy's handler turns
    // SIGTERM into a clean shutdown.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
}
