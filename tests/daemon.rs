//! The proxy as a router daemon: least privilege, refusals at start, the
//! SIGUSR1 view, and kernel state through a crash, a flushed ruleset and
//! a kernel error on one mapping. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::fs;
use std::time::{Duration, Instant};

/// `Key:\tvalue` from /proc/PID/status.
fn status(pid: u32, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in status"))
        .trim()
        .to_string()
}

fn root_of(pid: u32) -> String {
    fs::read_link(format!("/proc/{pid}/root"))
        .expect("root link")
        .display()
        .to_string()
}

/// uid and gid of `name` from /etc/passwd.
fn ids(name: &str) -> (String, String) {
    let text = fs::read_to_string("/etc/passwd").expect("passwd");
    let f: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no user {name}"))
        .split(':')
        .collect();
    (f[2].to_string(), f[3].to_string())
}

/// CAP_NET_ADMIN (bit 12) alone, as /proc prints capability sets.
const NET_ADMIN_ONLY: &str = "0000000000001000";

fn assert_least_privilege(lab: &Lab, user: &str, root: &str) {
    let pid = lab.proxy_pid().expect("pid");
    let (uid, gid) = ids(user);
    let all = |v: &str| format!("{v}\t{v}\t{v}\t{v}");
    assert_eq!(status(pid, "Uid"), all(&uid));
    assert_eq!(status(pid, "Gid"), all(&gid));
    assert_eq!(status(pid, "Groups"), gid);
    assert_eq!(status(pid, "CapEff"), NET_ADMIN_ONLY);
    assert_eq!(status(pid, "CapPrm"), NET_ADMIN_ONLY);
    assert_eq!(status(pid, "CapInh"), NET_ADMIN_ONLY);
    // Ambient, so that a live handover's exec keeps it (and nothing else).
    assert_eq!(status(pid, "CapAmb"), NET_ADMIN_ONLY);
    assert_eq!(status(pid, "NoNewPrivs"), "1");
    assert_eq!(root_of(pid), root);
}

/// A lab with vsftpd and the proxy intercepting, started with `wrap`.
fn served_lab(wrap: &[&str], env: &[(&str, &str)], extra: &[&str]) -> Lab {
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    let iface = lab.client_iface();
    let mut args = vec!["-b", ROUTER_C4, "-i", &iface];
    args.extend_from_slice(extra);
    lab.start_proxy_as(wrap, env, &args);
    lab
}

/// Downloads file.bin through the proxy with curl and checks it.
fn download(lab: &Lab, tag: &str) {
    let dst = lab.dir.join(format!("{tag}.bin")).display().to_string();
    let url = format!("ftp://{SERVER4}/file.bin");
    let o = lab.exec(
        'c',
        20,
        &["curl", "-sS", "--max-time", "15", "-o", &dst, &url],
    );
    assert!(
        o.status.success(),
        "{tag}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        lab.log_text()
    );
    assert_eq!(
        sha256(&lab.dir.join(format!("{tag}.bin"))),
        sha256(&lab.root().join("file.bin")),
        "{tag}"
    );
}

#[test]
fn root_start_drops_to_a_user_in_a_chroot_with_only_net_admin() {
    if !prerequisites("root_drop") {
        return;
    }
    let mut lab = served_lab(&[], &[], &[]);
    // No _ftp_proxy user on the test machine: nobody, in /var/empty.
    assert_least_privilege(&lab, "nobody", "/var/empty");
    lab.assert_logged(&["dropped privileges: user nobody (65534), group nogroup (65534), chroot /var/empty, only CAP_NET_ADMIN"]);
    download(&lab, "as-nobody");
    assert_eq!(lab.stop_proxy(), Some(0));
    assert!(
        !lab.tables().contains("table inet ftp-proxy-"),
        "table left"
    );
    // -u and -c: another user, a directory of the admin's choice.
    let dir = lab.dir.join("jail");
    fs::create_dir(&dir).expect("jail");
    let jail = dir.display().to_string();
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-u", "ftp", "-c", &jail]);
    assert_least_privilege(&lab, "ftp", &jail);
    download(&lab, "as-ftp");
}

#[test]
fn capable_user_start_keeps_only_net_admin() {
    if !prerequisites("capable_user") {
        return;
    }
    // How procd starts it on OpenWrt: a user with CAP_NET_ADMIN.
    let wrap = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_admin",
        "--ambient-caps=+net_admin",
    ];
    let lab = served_lab(&wrap, &[], &[]);
    let pid = lab.proxy_pid().expect("pid");
    assert_eq!(status(pid, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(status(pid, "CapEff"), NET_ADMIN_ONLY);
    assert_eq!(status(pid, "CapPrm"), NET_ADMIN_ONLY);
    // Ambient, so that a live handover's exec keeps it (and nothing else).
    assert_eq!(status(pid, "CapAmb"), NET_ADMIN_ONLY);
    assert_eq!(status(pid, "NoNewPrivs"), "1");
    lab.assert_logged(&["dropped privileges: not root: only CAP_NET_ADMIN kept, no chroot"]);
    download(&lab, "capable");
}

#[test]
fn start_refusals_say_why() {
    if !prerequisites("start_refusals") {
        return;
    }
    let mut lab = Lab::new(false);
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let capable = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_admin",
        "--ambient-caps=+net_admin",
        "prlimit",
        "--nofile=64:64",
    ];
    let cases: [(&[&str], &[&str], &str); 5] = [
        (
            &nobody,
            &[],
            "must be started as root or with CAP_NET_ADMIN",
        ),
        (
            &[],
            &["-c", "/tmp"],
            "chroot /tmp: must be owned by root and writable only by root",
        ),
        (
            &[],
            &["-u", "no-such-user"],
            "no user no-such-user in /etc/passwd",
        ),
        (&[], &["-u", "root"], "user root is root"),
        (
            &capable,
            &["-m", "500"],
            "need 1516 file descriptors for the session maximum, limit is 64",
        ),
    ];
    for (wrap, args, why) in cases {
        let (code, text) = lab.proxy_refuses(wrap, args);
        assert_eq!(code, Some(1), "{wrap:?} {args:?}: {text}");
        assert!(text.contains(why), "{wrap:?} {args:?}: {text}");
    }
    assert!(
        !lab.tables().contains("table inet ftp-proxy-"),
        "a refused start left a table"
    );
    // A second proxy for the same table while the first one runs.
    lab.start_proxy(&[]);
    // (Another port is another instance; the same name is refused.)
    let (code, text) = lab.proxy_refuses(&[], &["-p", "8022", "-n", "127.0.0.1-8021"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("another running instance"), "{text}");
    assert_eq!(lab.stop_proxy(), Some(0));
    // A low soft limit is raised as far as needed (the hard one only
    // with CAP_SYS_RESOURCE, which this sandbox's root lacks).
    lab.start_proxy_as(&["prlimit", "--nofile=64:4096"], &[], &["-m", "500"]);
    let pid = lab.proxy_pid().expect("pid");
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("nofile");
    let soft: u64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(soft >= 1516, "{line}");
}

#[test]
fn sigusr1_lists_who_is_connected() {
    if !prerequisites("sigusr1") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    let (_, srv) = recording_server(&lab, 2, passive_answers);
    let ns = lab.ns('c');
    let (a, pp, b) = in_ns(&ns, || {
        let mut a = greeted_at(SERVER4, 21);
        a.cmd("USER anonymous");
        let pp = port_227(&a.cmd("PASV"));
        let b = greeted_at(SERVER4, 21);
        (a, pp, b)
    })
    .join()
    .expect("clients");
    let (pa, pb) = (
        a.s.local_addr().expect("a").port(),
        b.s.local_addr().expect("b").port(),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let pid = lab.proxy_pid().expect("pid");
    // SAFETY: signalling the proxy we started.
    unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lab.log_text().contains("sessions in use") {
        assert!(Instant::now() < deadline, "no report\n{}", lab.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let log = lab.log_text();
    let report: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("sessions in use"))
        .take(3)
        .collect();
    assert_eq!(report[0], "2 of 100 sessions in use", "{log}");
    let expect = [
        (
            format!("#1 client 198.18.1.2:{pa} server 198.19.2.2:21 proxy-port {pp} state running idle "),
            "s commands 2 data 1",
        ),
        (
            format!("#2 client 198.18.1.2:{pb} server 198.19.2.2:21 proxy-port 0 state running idle "),
            "s commands 0 data 0",
        ),
    ];
    for (line, (head, tail)) in report[1..].iter().zip(&expect) {
        let idle = line
            .strip_prefix(head.as_str())
            .and_then(|l| l.strip_suffix(tail))
            .unwrap_or_else(|| panic!("{line:?} is not {head}…{tail}"));
        let idle: u64 = idle.parse().expect("idle seconds");
        assert!((1..=3).contains(&idle), "{line}");
    }
    drop((a, b));
    srv.join().expect("server");
    lab.assert_clean(fds);
}

/// Seconds (rounded up) of an nft duration such as `59s960ms` or `1m`.
fn nft_secs(t: &str) -> u64 {
    let (mut total_ms, mut num) = (0u64, 0u64);
    let mut rest = t;
    while let Some(c) = rest.chars().next() {
        if let Some(d) = c.to_digit(10) {
            num = num * 10 + u64::from(d);
            rest = &rest[1..];
            continue;
        }
        let (unit, ms) = [
            ("ms", 1),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))
        .unwrap_or_else(|| panic!("duration {t:?}"));
        total_ms += num * ms;
        num = 0;
        rest = &rest[unit.len()..];
    }
    total_ms.div_ceil(1000)
}

/// PASV, then a listing over the data connection; the listing's bytes.
fn list_over_pasv(c: &mut Peer) -> Vec<u8> {
    let pasv = c.cmd("PASV");
    let mut d = connect(&host_227(&pasv), port_227(&pasv));
    assert!(c.cmd("LIST").starts_with("150"));
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut d.s, &mut all).expect("listing");
    assert!(c.reply().starts_with("226"));
    all
}

/// One PASV left pending through the proxy (reached at `host:port`), so
/// the maps hold elements.
fn pending_pasv(lab: &Lab, host: &'static str, port: u16) -> Peer {
    let ns = lab.ns('c');
    let c = in_ns(&ns, move || {
        let mut c = greeted_at(host, port);
        c.cmd("USER anonymous");
        c.cmd("PASS x");
        assert!(c.cmd("PASV").starts_with("227 "));
        c
    })
    .join()
    .expect("client");
    assert_eq!(lab.elements(&lab.table, "dnat4"), 1);
    c
}

/// A listing over PASV in a running session, from the client namespace.
fn list_in(lab: &Lab, c: Peer) -> Peer {
    in_ns(&lab.ns('c'), move || {
        let mut c = c;
        let list = list_over_pasv(&mut c);
        assert!(String::from_utf8_lossy(&list).contains("file.bin"));
        c
    })
    .join()
    .expect("client")
}

#[test]
fn kill_9_leaves_nothing_usable_and_a_restart_is_clean() {
    if !prerequisites("kill9") {
        return;
    }
    let mut lab = served_lab(&[], &[], &[]);
    let _c = pending_pasv(&lab, SERVER4, 21);
    lab.kill_proxy();
    // Owned table: gone with the process.
    assert!(
        !lab.tables().contains("table inet ftp-proxy-"),
        "{}",
        lab.tables()
    );
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    download(&lab, "after-kill");
    lab.kill_proxy();

    // As on kernels without owned tables: the table stays, but every
    // element expires within its timeout, and the next start removes it.
    let env = [("FTP_PROXY_NO_OWNER", "1")];
    lab.start_proxy_as(&[], &env, &["-b", ROUTER_C4, "-i", &iface]);
    let _c2 = pending_pasv(&lab, SERVER4, 21);
    lab.kill_proxy();
    let map = lab.nft(&["list", "map", "inet", &lab.table, "dnat4"]);
    let expires: Vec<u64> = map
        .split("expires ")
        .skip(1)
        .map(|s| nft_secs(s.split([' ', ',']).next().unwrap_or("")))
        .collect();
    assert_eq!(expires.len(), 1, "{map}");
    assert!(expires[0] <= 60, "{map}");
    lab.start_proxy_as(&[], &env, &["-b", ROUTER_C4, "-i", &iface]);
    lab.assert_logged(&["removed stale table inet ftp-proxy"]);
    assert_eq!(lab.elements(&lab.table, "dnat4"), 0);
    download(&lab, "after-stale");
}

#[test]
fn flushed_ruleset_is_rebuilt_and_transfers_go_on() {
    if !prerequisites("flush") {
        return;
    }
    // An owned table is out of reach of another process's flush: the
    // session and its pending mapping carry on.
    let mut lab = served_lab(&[], &[], &[]);
    let c = pending_pasv(&lab, SERVER4, 21);
    lab.nft(&["flush", "ruleset"]);
    assert_eq!(lab.elements(&lab.table, "dnat4"), 1);
    let c = list_in(&lab, c);
    download(&lab, "owned");
    drop(c);
    lab.stop_proxy();

    // Without the owner flag (kernels before 5.12) the flush takes the
    // table. A reverse-mode session (its control connection not NATed)
    // runs on, and its next data connection re-creates the table.
    let env = [("FTP_PROXY_NO_OWNER", "1")];
    lab.start_proxy_as(&[], &env, &["-b", ROUTER_C4, "-R", SERVER4]);
    let c = pending_pasv(&lab, ROUTER_C4, 8021);
    lab.nft(&["flush", "ruleset"]);
    assert!(!lab.tables().contains("table inet ftp-proxy-"));
    let c = list_in(&lab, c);
    assert!(lab.tables().contains("table inet ftp-proxy-"));
    assert_rebuilt_once(&lab);
    drop(c);
    lab.stop_proxy();

    // Interception with no data connection to follow: the periodic
    // check (5 s) brings the redirect back for new sessions. (Sessions
    // redirected before the flush lose their NAT state with the table,
    // in the kernel; the proxy ends them cleanly.)
    let iface = lab.client_iface();
    lab.start_proxy_as(&[], &env, &["-b", ROUTER_C4, "-i", &iface]);
    lab.nft(&["flush", "ruleset"]);
    let deadline = Instant::now() + Duration::from_secs(8);
    while !lab.tables().contains("table inet ftp-proxy-") {
        assert!(
            Instant::now() < deadline,
            "not re-created\n{}",
            lab.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    download(&lab, "after-flush");
    assert_rebuilt_once(&lab);
}

/// The proxy said once that it re-created its table.
fn assert_rebuilt_once(lab: &Lab) {
    let log = lab.log_text();
    let said = format!(
        "table inet {} was removed (ruleset flushed?): creating it again",
        lab.table
    );
    assert_eq!(log.matches(&said).count(), 1, "{log}");
}

#[test]
fn kernel_error_on_one_mapping_fails_only_that_data_connection() {
    if !prerequisites("kernel_error") {
        return;
    }
    let env = [("FTP_PROXY_NO_OWNER", "1")];
    let mut lab = Lab::new(false);
    let iface = lab.client_iface();
    lab.start_proxy_as(&[], &env, &["-b", ROUTER_C4, "-i", &iface]);
    let fds = lab.fd_count();
    let (_, srv) = recording_server(&lab, 2, passive_answers);
    // Every proxy port is taken for this client and server: each try is
    // refused by the kernel (EEXIST).
    let elems: Vec<String> = (49152..=65535u32)
        .map(|p| format!("198.18.1.2 . 198.19.2.2 . {p} : 198.19.2.2 . 9"))
        .collect();
    let batch = format!(
        "add element inet {} dnat4 {{ {} }}\n",
        lab.table,
        elems.join(", ")
    );
    let file = lab.dir.join("fill.nft");
    fs::write(&file, batch).expect("nft file");
    lab.nft(&["-f", &file.display().to_string()]);
    let ns = lab.ns('c');
    let (r, a, b) = in_ns(&ns, || {
        let mut a = greeted_at(SERVER4, 21);
        let mut b = greeted_at(SERVER4, 21);
        let r = [a.cmd("PASV"), a.cmd("NOOP"), b.cmd("NOOP")];
        (r, a, b)
    })
    .join()
    .expect("clients");
    assert_eq!(
        r,
        [
            "425 Can't open data connection: proxy could not set up NAT",
            "200 ok",
            "200 ok"
        ]
    );
    lab.assert_logged(&["#1 no free proxy port after 8 tries"]);
    lab.nft(&["flush", "map", "inet", &lab.table, "dnat4"]);
    let r = in_ns(&ns, move || {
        let (mut a, mut b) = (a, b);
        [a.cmd("PASV"), b.cmd("QUIT"), a.cmd("QUIT")]
    })
    .join()
    .expect("clients");
    assert!(
        r[0].starts_with("227 Entering Passive Mode (198,19,2,2,"),
        "{r:?}"
    );
    srv.join().expect("server");
    lab.assert_clean(fds);
}

#[test]
fn two_sessions_meeting_the_same_server_data_port_keep_their_own_elements() {
    if !prerequisites("shared_snat") {
        return;
    }
    let (mut lab, fds) = intercepting_lab(&[]);
    // Both sessions are offered the same server data port, as a server
    // does once the first data connection is over.
    let (_, srv) = recording_server(&lab, 2, passive_answers);
    let data = data_server(&lab.ns('s'), SERVER4, 30000, b"for b");
    let ns = lab.ns('c');
    let (a, b, pb) = in_ns(&ns, || {
        let mut a = greeted_at(SERVER4, 21);
        let mut b = greeted_at(SERVER4, 21);
        assert!(a.cmd("PASV").starts_with("227 "));
        let r = b.cmd("PASV");
        assert!(r.starts_with("227 "), "{r}");
        (a, b, port_227(&r))
    })
    .join()
    .expect("clients");
    // SNAT is keyed by the connection's original tuple, as DNAT is: the
    // proxy ports differ, so nothing is shared and nothing is counted.
    assert_eq!(lab.elements(&lab.table, "dnat4"), 2);
    assert_eq!(lab.elements(&lab.table, "snat4"), 2);
    // The first session ends: the second one's elements stay.
    let got = in_ns(&ns, move || {
        let (mut a, mut b) = (a, b);
        assert_eq!(a.cmd("QUIT"), "221 bye");
        drop(a);
        std::thread::sleep(Duration::from_millis(200));
        let got = fetch(SERVER4, pb);
        b.cmd("QUIT");
        got
    })
    .join()
    .expect("client");
    assert_eq!(got, b"for b");
    assert_eq!(data.join().expect("data")[0].ip().to_string(), "198.19.2.1");
    srv.join().expect("server");
    lab.assert_clean(fds);
}

#[test]
fn terminating_signals_end_sessions_and_remove_the_table() {
    if !prerequisites("signals") {
        return;
    }
    let (mut lab, _) = intercepting_lab(&[]);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        if lab.proxy_pid().is_none() {
            let iface = lab.client_iface();
            lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
        }
        let srv = serve(&lab.ns('s'), SERVER4, 21, 1, |_, mut p| {
            p.send(b"220 fake ready\r\n");
            p.closes_within(Duration::from_secs(10))
        });
        let mut c = client(&lab).join().expect("client");
        assert_eq!(c.reply(), "220 fake ready");
        assert_eq!(lab.signal_proxy(sig), Some(0), "signal {sig}");
        assert_eq!(
            c.text(),
            "421 Proxy shutting down, closing control connection"
        );
        assert!(c.closes_within(Duration::from_secs(5)));
        assert_eq!(srv.join().expect("server"), [true], "server side closed");
        assert!(
            !lab.tables().contains("table inet ftp-proxy-"),
            "table left after {sig}"
        );
    }
}
