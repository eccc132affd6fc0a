//! The proxy's rules, one lab each: it does the work (nothing passes
//! without it), limits sessions, honours the admin's own redirect rule,
//! -A, -r, -T/-v and the idle timeout. Needs root.

mod common;

use common::*;

/// A lab with vsftpd on IPv4 and the proxy intercepting with `-i`.
fn transparent(extra: &[&str]) -> Lab {
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let iface = lab.client_iface();
    let mut args = vec!["-b", ROUTER_C4, "-i", &iface];
    args.extend_from_slice(extra);
    lab.start_proxy(&args);
    lab
}

fn curl_get(lab: &Lab, secs: &str, flags: &[&str]) -> std::process::Output {
    let dst = lab.dir.join("got.bin").display().to_string();
    let url = format!("ftp://{SERVER4}/file.bin");
    let mut argv = vec![
        "curl",
        "-sS",
        "--connect-timeout",
        secs,
        "--max-time",
        secs,
        "-o",
        &dst,
    ];
    argv.extend_from_slice(flags);
    argv.push(&url);
    lab.exec('c', 20, &argv)
}

/// Downloads file.bin through the proxy (curl `flags` pick the mode) and
/// checks it arrived whole.
fn assert_download(lab: &Lab, flags: &[&str]) {
    let o = curl_get(lab, "10", flags);
    lab.assert_downloaded(&o, &lab.dir.join("got.bin"), &format!("{flags:?}"));
}

/// Passive (EPSV) and active (EPRT) downloads.
fn assert_downloads_both_modes(lab: &Lab) {
    assert_download(lab, &[]);
    assert_download(lab, &["-P", "-"]);
}

#[test]
fn transfer_needs_the_proxy() {
    if !prerequisites("transfer_needs_the_proxy") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let o = curl_get(&lab, "3", &[]);
    assert!(
        !o.status.success(),
        "download worked without the proxy: the lab does not prove anything"
    );
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    assert_download(&lab, &[]);
}

const HOLD: &str = r#"
import ftplib, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
def session():
    f = ftplib.FTP(timeout=10)
    f.connect(host, port)
    f.login()
    return f
a, b = session(), session()
s = socket.create_connection((host, port), timeout=10)
data = b""
while True:
    chunk = s.recv(1024)
    if not chunk:
        break
    data += chunk
print("third:", data.decode().strip())
print("a lists", "file.bin" in a.nlst(), "b lists", "file.bin" in b.nlst())
a.quit(); b.quit()
for _ in range(50):
    try:
        c = session()
        break
    except (ftplib.error_temp, EOFError, ConnectionError):
        time.sleep(0.1)
print("c lists", "file.bin" in c.nlst())
c.quit()
"#;

#[test]
fn session_limit_refuses_extra_clients_only() {
    if !prerequisites("session_limit_refuses_extra_clients_only") {
        return;
    }
    let lab = transparent(&["-m", "2"]);
    let o = lab.exec('c', 60, &["python3", "-c", HOLD, SERVER4, "21"]);
    let t = output_text(&o);
    assert!(o.status.success(), "{t}\n{}", lab.log_text());
    assert!(
        t.contains("third: 421"),
        "third session not refused with 421: {t}"
    );
    assert!(
        t.contains("a lists True b lists True"),
        "existing sessions stopped working: {t}"
    );
    assert!(
        t.contains("c lists True"),
        "slot not returned after sessions ended: {t}"
    );
    assert!(
        lab.log_text().contains("session limit (2) reached"),
        "{}",
        lab.log_text()
    );
}

#[test]
fn admins_own_redirect_rule() {
    if !prerequisites("admins_own_redirect_rule") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let iface = lab.client_iface();
    lab.nft(&["add", "table", "ip", "lab"]);
    lab.nft(&[
        "add",
        "chain",
        "ip",
        "lab",
        "pre",
        "{ type nat hook prerouting priority dstnat; }",
    ]);
    lab.nft(&[
        "add", "rule", "ip", "lab", "pre", "iifname", &iface, "tcp", "dport", "21", "redirect",
        "to", ":8021",
    ]);
    lab.start_proxy(&["-b", ROUTER_C4]);
    assert_download(&lab, &[]);
}

const LOGIN: &str = r#"
import ftplib, sys
f = ftplib.FTP(timeout=10)
f.connect(sys.argv[1], 21)
try:
    f.login("root", "secret")
    print("root: logged in")
except ftplib.error_perm as e:
    print("root:", e)
f.login("anonymous", "x@example.org")
print("anonymous lists", "file.bin" in f.nlst())
f.quit()
"#;

#[test]
fn anonymous_only() {
    if !prerequisites("anonymous_only") {
        return;
    }
    let lab = transparent(&["-A"]);
    let o = lab.exec('c', 30, &["python3", "-c", LOGIN, SERVER4]);
    let t = output_text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("root: 530 Only anonymous FTP"), "{t}");
    assert!(t.contains("anonymous lists True"), "{t}");
}

#[test]
fn port20_for_active_mode() {
    if !prerequisites("port20_for_active_mode") {
        return;
    }
    let lab = transparent(&["-r"]);
    let src = lab.dir.join("src.bin");
    std::fs::write(&src, pattern(10_000, 3)).expect("src");
    for mode in ["port", "eprt"] {
        let dst = lab.dir.join(format!("got-{mode}.bin"));
        let (s, d) = (src.display().to_string(), dst.display().to_string());
        let up = format!("up-{mode}.bin");
        let argv = [
            "python3",
            FTPCLI,
            SERVER4,
            "21",
            mode,
            &s,
            &d,
            &up,
            "--expect-src-port",
            "20",
        ];
        let o = lab.exec('c', 30, &argv);
        assert!(
            o.status.success(),
            "{mode}: {}\n{}",
            output_text(&o),
            lab.log_text()
        );
        assert_eq!(sha256(&dst), sha256(&lab.root().join("file.bin")));
    }
    // Passive connections are not affected by -r.
    let dst = lab.dir.join("got-pasv.bin").display().to_string();
    let argv = [
        "python3",
        FTPCLI,
        SERVER4,
        "21",
        "pasv",
        &src.display().to_string(),
        &dst,
        "up2.bin",
    ];
    assert!(lab.exec('c', 30, &argv).status.success());
}

#[test]
fn tag_marks_data_connections() {
    if !prerequisites("tag_marks_data_connections") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    lab.nft(&["add", "table", "inet", "lab"]);
    lab.nft(&[
        "add",
        "chain",
        "inet",
        "lab",
        "marked",
        "{ type filter hook forward priority 10; }",
    ]);
    lab.nft(&[
        "add", "rule", "inet", "lab", "marked", "ct", "mark", "42", "counter",
    ]);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-T", "42", "-v"]);
    let table = lab.nft(&["list", "table", "inet", &lab.table]);
    assert!(table.contains("ct mark set 0x0000002a"), "{table}");
    assert!(table.contains("log prefix \"ftp-proxy data: \""), "{table}");
    assert_download(&lab, &[]);
    let chain = lab.nft(&["list", "chain", "inet", "lab", "marked"]);
    let packets: u64 = chain
        .split("packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // The whole download carried the mark (GRO makes packets few but big).
    let bytes: u64 = chain
        .split("bytes ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        packets > 0 && bytes >= FILE_SIZE as u64,
        "marked data: {packets} packets, {bytes} bytes\n{chain}"
    );
}

const IDLE: &str = r#"
import ftplib, sys, time
f = ftplib.FTP(timeout=10)
f.connect(sys.argv[1], 21)
f.login()
time.sleep(4)
try:
    f.voidcmd("NOOP")
    print("still open")
except (EOFError, ConnectionError, ftplib.Error) as e:
    print("closed:", type(e).__name__)
"#;

#[test]
fn idle_timeout_closes_session() {
    if !prerequisites("idle_timeout_closes_session") {
        return;
    }
    let lab = transparent(&["-t", "2"]);
    let o = lab.exec('c', 30, &["python3", "-c", IDLE, SERVER4]);
    let t = output_text(&o);
    assert!(t.contains("closed:"), "{t}");
    assert!(
        lab.log_text().contains("ending session: idle timeout"),
        "{}",
        lab.log_text()
    );
}

#[test]
fn tproxy_interception() {
    if !prerequisites("tproxy_interception") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let iface = lab.client_iface();
    // The usual tproxy set-up: marked packets are delivered locally.
    for argv in [
        &["ip", "rule", "add", "fwmark", "1", "lookup", "100"][..],
        &[
            "ip",
            "route",
            "add",
            "local",
            "0.0.0.0/0",
            "dev",
            "lo",
            "table",
            "100",
        ],
    ] {
        let o = lab.exec('r', 10, argv);
        assert!(o.status.success(), "{argv:?}: {}", output_text(&o));
    }
    lab.nft(&["add", "table", "ip", "tp"]);
    lab.nft(&[
        "add",
        "chain",
        "ip",
        "tp",
        "pre",
        "{ type filter hook prerouting priority mangle; }",
    ]);
    lab.nft(&[
        "add", "rule", "ip", "tp", "pre", "iifname", &iface, "tcp", "dport", "21", "tproxy", "to",
        ":8021", "meta", "mark", "set", "1", "accept",
    ]);
    lab.start_proxy(&["-b", ROUTER_C4]);
    assert_downloads_both_modes(&lab);
    // The original destination came from the socket, not from conntrack NAT.
    assert!(
        lab.log_text().contains("wants 198.19.2.2:21"),
        "{}",
        lab.log_text()
    );
}

#[test]
fn daemon_mode_detaches_and_cleans_up() {
    if !prerequisites("daemon_mode_detaches_and_cleans_up") {
        return;
    }
    let lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let iface = lab.client_iface();
    // Without -d: the started process exits 0 once the daemon runs.
    let o = lab.exec('r', 10, &[PROXY, "-b", ROUTER_C4, "-i", &iface]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        lab.tables().contains("table inet ftp-proxy-"),
        "no table while the daemon runs"
    );
    assert_download(&lab, &[]);
    // The daemon is the only process left in the router namespace.
    let pids = std::process::Command::new("ip")
        .args(["netns", "pids", &lab.ns('r')])
        .output()
        .expect("ip netns pids");
    let pids = String::from_utf8_lossy(&pids.stdout).into_owned();
    let pid: i32 = pids
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("daemon pid");
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // SAFETY: probing with signal 0.
    while unsafe { libc::kill(pid, 0) } == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "daemon ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !lab.tables().contains("table inet ftp-proxy-"),
        "table left: {}",
        lab.tables()
    );
}

#[test]
fn source_address_towards_server() {
    if !prerequisites("source_address_towards_server") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let rs = format!("fp{}-rs", lab.name);
    let o = lab.exec('r', 10, &["ip", "addr", "add", "198.19.2.3/24", "dev", &rs]);
    assert!(o.status.success(), "{}", output_text(&o));
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-a", "198.19.2.3"]);
    // vsftpd accepts passive data connections only from the control
    // connection's address, so passive mode also proves the SNAT.
    assert_downloads_both_modes(&lab);
    assert!(
        lab.log_text().contains("via proxy 198.19.2.3:"),
        "{}",
        lab.log_text()
    );
}

const GREETING: &str = r#"
import socket, sys, time
t = time.monotonic()
s = socket.create_connection((sys.argv[1], 21), timeout=45)
data = b""
while True:
    chunk = s.recv(1024)
    if not chunk:
        break
    data += chunk
print(f"after {time.monotonic() - t:.0f}s:", data.decode().strip())
"#;

#[test]
fn unreachable_server_gets_the_client_a_421() {
    if !prerequisites("unreachable_server_gets_the_client_a_421") {
        return;
    }
    // No FTP server at all: the server refuses, at once.
    let mut lab = Lab::new(false);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    let o = lab.exec('c', 20, &["python3", "-c", GREETING, SERVER4]);
    let t = output_text(&o);
    assert!(t.contains("after 0s: 421 "), "{t}");
    assert!(
        lab.log_text()
            .contains("connect to server failed: Connection refused"),
        "{}",
        lab.log_text()
    );
}

#[test]
fn silent_server_times_out_after_30s() {
    if !prerequisites("silent_server_times_out_after_30s") {
        return;
    }
    // The server drops the SYNs: the proxy gives up after 30 s.
    let mut lab = Lab::new(false);
    let o = lab.exec('s', 10, &["nft", "add table inet silent; add chain inet silent in { type filter hook input priority 0; tcp dport 21 drop; }"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    let o = lab.exec('c', 60, &["python3", "-c", GREETING, SERVER4]);
    let t = output_text(&o);
    let secs: u32 = t
        .split("after ")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((29..=35).contains(&secs), "{t}");
    assert!(t.contains("421 "), "{t}");
    assert!(
        lab.log_text()
            .contains("ending session: timeout connecting to server"),
        "{}",
        lab.log_text()
    );
}
