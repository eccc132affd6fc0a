//! The status interface against a loaded proxy: `ftp-proxy -S` and its
//! JSON list every one of 500 sessions with the instance and totals; a
//! reader that stops reading, or never asks, is dropped while sessions
//! keep being served; the socket is 0600 and refused in a directory
//! others may write. Needs root (network namespaces).

mod common;

use common::scripted::*;
use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

const SESSIONS: usize = 500;

fn status_dir(lab: &Lab) -> std::path::PathBuf {
    let d = lab.dir.join("run");
    std::fs::create_dir_all(&d).expect("run dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).expect("mode");
    d
}

fn query(args: &[&str]) -> (bool, String) {
    let o = Command::new(PROXY)
        .arg("-S")
        .args(args)
        .output()
        .expect("ftp-proxy -S");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// Validates JSON with Python's parser, and returns what `expr` (a Python
/// expression over `d`) gives.
fn json_eval(doc: &str, expr: &str) -> String {
    let mut p = Command::new("python3")
        .args([
            "-c",
            &format!("import json,sys; d=json.load(sys.stdin); print({expr})"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(doc.as_bytes())
        .expect("write");
    let o = p.wait_with_output().expect("python3");
    assert!(
        o.status.success(),
        "not JSON: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        &doc[..doc.len().min(2000)]
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn status_lists_500_sessions_and_drops_slow_readers() {
    if !prerequisites("status_lists_500_sessions_and_drops_slow_readers") {
        return;
    }
    let mut lab = Lab::new(false);
    let sock = status_dir(&lab).join("lab.sock");
    let sock_s = sock.to_str().expect("path").to_string();
    let (_seen, server) = recording_server(&lab, SESSIONS, passive_answers);
    let iface = lab.client_iface();
    let max = SESSIONS.to_string();
    lab.start_proxy(&[
        "-b", ROUTER_C4, "-i", &iface, "-m", &max, "-M", &max, "-D", "5", "-n", "lab", "-s",
        &sock_s,
    ]);
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "status socket mode");

    // 500 sessions, every other one with a pending passive mapping.
    let clients = in_ns(&lab.ns('c'), move || {
        let mut peers = Vec::new();
        for i in 0..SESSIONS {
            let mut c = connect(SERVER4, 21);
            assert_eq!(c.reply(), "220 fake ready", "session {i}");
            if i % 2 == 0 {
                let r = c.cmd("PASV");
                assert!(r.starts_with("227 "), "session {i}: {r}");
            }
            peers.push(c);
        }
        peers
    });
    let mut peers = clients.join().expect("clients");

    let (ok, text) = query(&[&sock_s]);
    assert!(ok, "{text}");
    let rows = text.lines().filter(|l| l.contains(" 198.18.1.2:")).count();
    assert_eq!(rows, SESSIONS, "text rows\n{text}");
    assert!(text.starts_with("instance lab (pid "), "{text}");
    assert!(
        text.contains(&format!("sessions {SESSIONS} of {SESSIONS}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "totals: {SESSIONS} sessions, {} data connections negotiated",
            SESSIONS / 2
        )),
        "{text}"
    );
    assert!(text.contains(&format!("intercepting {iface}")), "{text}");
    let passive_rows = text
        .lines()
        .filter(|l| l.contains(" passive ") && l.contains(" running "))
        .count();
    assert_eq!(passive_rows, SESSIONS / 2, "rows with a passive mapping");

    let (ok, json) = query(&["-j", &sock_s]);
    assert!(ok, "{json}");
    let got = json_eval(
        &json,
        "len(d['instances'][0]['sessions']), d['instances'][0]['instance']['name'], \
         d['instances'][0]['totals']['sessions'], \
         sum(1 for s in d['instances'][0]['sessions'] if s['proxy_port'] >= 49152 and s['mode'] == 'passive'), \
         len(set(s['id'] for s in d['instances'][0]['sessions']))",
    );
    assert_eq!(
        got,
        format!("{SESSIONS} lab {SESSIONS} {} {SESSIONS}", SESSIONS / 2)
    );

    // A reader that asks and never reads, and one that never asks: both
    // are dropped, and sessions are served all the while.
    let mut stalled = UnixStream::connect(&sock).expect("connect");
    stalled.write_all(b"json\n").expect("request");
    let mut silent = UnixStream::connect(&sock).expect("connect");
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let c = &mut peers[served % SESSIONS];
        assert_eq!(
            c.cmd("NOOP"),
            "200 ok",
            "a session stalled behind a status reader"
        );
        served += 1;
    }
    // Two more queries are served meanwhile (4 may run at once).
    let (ok, again) = query(&[&sock_s]);
    assert!(
        ok && again.lines().filter(|l| l.contains(" 198.18.1.2:")).count() == SESSIONS,
        "{again}"
    );
    let mut end = [0u8; 1];
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(
        silent.read(&mut end).unwrap_or(0),
        0,
        "a silent reader was not dropped"
    );
    // The stalled one: what it got ends short of the whole document.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = stalled.read_to_end(&mut got);
    assert!(
        !got.ends_with(b"]}\n"),
        "a stalled reader got everything: the test did not stall it"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "slow readers held for {:?}",
        started.elapsed()
    );
    let (_, after) = query(&[&sock_s]);
    assert!(after.contains("2 slow status readers"), "{after}");
    println!("{SESSIONS} sessions listed as text ({} bytes) and JSON ({} bytes); {served} NOOPs answered while two status readers stalled", text.len(), json.len());

    for c in peers.iter_mut() {
        c.send(b"QUIT\r\n");
    }
    drop(peers);
    server.join().expect("server");
    lab.stop_proxy();
    assert!(!query(&[&sock_s]).0, "a stopped instance still answers");
}

#[test]
fn status_socket_refuses_a_directory_others_may_write() {
    if !prerequisites("status_socket_refuses_a_directory_others_may_write") {
        return;
    }
    let mut lab = Lab::new(false);
    let open = lab.dir.join("open");
    std::fs::create_dir_all(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("mode");
    let sock = open.join("x.sock");
    let sock_s = sock.to_str().expect("path");
    lab.start_proxy(&["-R", SERVER4, "-n", "open", "-s", sock_s]);
    lab.assert_logged(&[
        "status socket",
        "writable by group or others",
        "running without one",
    ]);
    assert!(!sock.exists(), "bound in a directory others may write");
    // The name alone: an unknown instance is said to be not running.
    let (ok, out) = query(&["no-such-instance-here"]);
    assert!(!ok && out.contains("not running"), "{out}");
    lab.stop_proxy();
}

/// The rpcd plugin as rpcd runs it (`list`, then `call status` with the
/// arguments on stdin): the ubus object `ftp-proxy` answers with the
/// running instances, found at their default sockets.
#[test]
fn rpcd_plugin_answers_ubus_status() {
    if !prerequisites("rpcd_plugin_answers_ubus_status") {
        return;
    }
    let plugin = concat!(env!("CARGO_MANIFEST_DIR"), "/openwrt/files/ftp-proxy.rpcd");
    let rpcd = |args: &[&str]| {
        let mut p = Command::new(plugin)
            .args(args)
            .env("FTP_PROXY_BIN", PROXY)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("plugin");
        // As rpcd does; `list` exits without reading them (a broken pipe).
        let _ = p.stdin.take().expect("stdin").write_all(b"{}");
        let o = p.wait_with_output().expect("plugin");
        assert!(o.status.success(), "plugin {args:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(json_eval(&rpcd(&["list"]), "list(d.keys())"), "['status']");
    let mut lab = Lab::new(false);
    let name = format!("rpcd-{}", lab.name);
    let (_seen, server) = recording_server(&lab, 1, passive_answers);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface, "-n", &name]);
    let mut c = in_ns(&lab.ns('c'), || greeted_at(SERVER4, 21))
        .join()
        .expect("client");
    assert!(c.cmd("PASV").starts_with("227 "));
    let answer = rpcd(&["call", "status"]);
    let got = json_eval(
        &answer,
        &format!(
            "[(i['instance']['sessions'], i['sessions'][0]['mode'], i['totals']['negotiated']) \
             for i in d['instances'] if i['instance']['name'] == '{name}']"
        ),
    );
    assert_eq!(got, "[(1, 'passive', 1)]", "{answer}");
    c.send(b"QUIT\r\n");
    drop(c);
    server.join().expect("server");
    lab.stop_proxy();
}
