//! Reverse mode on a router behind another NAT (an ISP's box that
//! forwards tcp/21 and a fixed port range to the router's private
//! address): `-e` names the box's public address in passive replies,
//! `-E` keeps proxy ports inside the forwarded range. Needs root.

mod common;

use common::scripted::{connect, host_227, in_ns, port_227, port_229};
use common::*;

const RANGE: &str = "50000-50015";

/// vsftpd behind the router, the router behind the box.
fn lab() -> Lab {
    let lab = Lab::new(false);
    lab.add_upstream(RANGE);
    lab.start_server(Server::Vsftpd);
    lab
}

/// The proxy publishes vsftpd on the router's private address, port 21.
fn reverse(lab: &mut Lab, extra: &[&str]) {
    let mut args = vec!["-b", ROUTER_C4, "-p", "21", "-R", SERVER4];
    args.extend_from_slice(extra);
    lab.start_proxy(&args);
}

/// curl from the internet client to the box's public address.
fn curl(lab: &Lab, flags: &[&str]) -> std::process::Output {
    let dst = lab.dir.join("got.bin").display().to_string();
    let url = format!("ftp://{UPSTREAM_PUBLIC}/file.bin");
    let mut argv = vec!["curl", "-sS", "--max-time", "10", "-o", &dst];
    argv.extend_from_slice(flags);
    argv.push(&url);
    lab.exec('i', 20, &argv)
}

fn assert_download(lab: &Lab, flags: &[&str]) {
    let _ = std::fs::remove_file(lab.dir.join("got.bin"));
    let o = curl(lab, flags);
    lab.assert_downloaded(&o, &lab.dir.join("got.bin"), &format!("{flags:?}"));
}

/// A client that trusts the address in 227 (curl does not by default).
const TRUSTS_227: &[&str] = &["--disable-epsv", "--no-ftp-skip-pasv-ip"];

#[test]
fn passive_and_active_through_an_upstream_nat() {
    if !prerequisites("passive_and_active_through_an_upstream_nat") {
        return;
    }
    let mut lab = lab();
    // Before: the client is told the router's private address, and a
    // port the box does not forward.
    reverse(&mut lab, &[]);
    let o = curl(&lab, TRUSTS_227);
    assert!(
        !o.status.success(),
        "a transfer to the private address should fail: {}",
        output_text(&o)
    );
    lab.stop_proxy();

    reverse(&mut lab, &["-e", UPSTREAM_PUBLIC, "-E", RANGE]);
    let fds = lab.fd_count();
    // What the client is told: the box's address, a port it forwards.
    let ns = lab.ns('i');
    let (hosts, ports) = in_ns(&ns, || {
        let mut c = connect(UPSTREAM_PUBLIC, 21);
        assert!(c.reply().starts_with("220"));
        let mut r = c.cmd("USER anonymous");
        if r.starts_with("331") {
            r = c.cmd("PASS x@");
        }
        assert!(r.starts_with("230"), "{r}");
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..40 {
            let r = c.cmd("PASV");
            hosts.push(host_227(&r));
            ports.push(port_227(&r));
            ports.push(port_229(&c.cmd("EPSV")));
        }
        c.cmd("QUIT");
        (hosts, ports)
    })
    .join()
    .expect("client");
    assert!(hosts.iter().all(|h| h == UPSTREAM_PUBLIC), "{hosts:?}");
    assert!(
        ports.iter().all(|p| (50000..=50015).contains(p)),
        "{ports:?}"
    );
    // 80 draws from 16 ports: a stuck pick would show one or two.
    let distinct: std::collections::HashSet<_> = ports.iter().collect();
    assert!(distinct.len() >= 8, "{distinct:?}");

    // Passive that trusts 227, passive EPSV, active PORT and EPRT.
    for flags in [
        TRUSTS_227,
        &[][..],
        &["-P", "-", "--disable-eprt"],
        &["-P", "-"],
    ] {
        assert_download(&lab, flags);
    }
    lab.assert_logged(&[
        "passive replies name 198.18.4.1 (-e)",
        "proxy ports 50000-50015",
    ]);
    lab.assert_clean(fds);
}

#[test]
fn a_full_port_range_gets_a_425_until_a_port_is_free() {
    if !prerequisites("full_port_range") {
        return;
    }
    use common::scripted::{greeted, intercepting_lab, passive_answers, recording_server};
    let lab_dir = std::env::temp_dir().join(format!("fp-range-{}", std::process::id()));
    std::fs::create_dir_all(&lab_dir).expect("dir");
    let sock = lab_dir.join("range.sock").display().to_string();
    let (mut lab, fds) = intercepting_lab(&["-E", "50000-50007", "-n", "range", "-s", &sock]);
    let (_, srv) = recording_server(&lab, 9, passive_answers);
    let ns = lab.ns('c');
    let clients: Vec<_> = (0..9).map(|_| greeted(&lab)).collect();
    let (ports, refused, mut clients) = in_ns(&ns, move || {
        let mut clients = clients;
        let mut ports = Vec::new();
        for c in &mut clients[..8] {
            ports.push(port_227(&c.cmd("PASV")));
        }
        let refused = clients[8].cmd("PASV");
        (ports, refused, clients)
    })
    .join()
    .expect("clients");
    let mut sorted = ports.clone();
    sorted.sort();
    assert_eq!(sorted, (50000..=50007).collect::<Vec<u16>>(), "one each");
    assert_eq!(
        refused,
        "425 Can't open data connection: no free proxy port, try again later"
    );
    let status = std::process::Command::new(PROXY)
        .args(["-S", &sock])
        .output()
        .expect("-S");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("proxy ports 50000-50007 (8 held)"),
        "{status}"
    );
    assert!(status.contains("no-proxy-port 1"), "{status}");
    // One session goes: its port is the one free, and the refused
    // session (still there) gets it.
    let freed = ports[0];
    let again = in_ns(&ns, move || {
        assert_eq!(clients[0].cmd("QUIT"), "221 bye");
        let again = port_227(&clients[8].cmd("PASV"));
        assert_eq!(clients[8].cmd("NOOP"), "200 ok");
        for c in &mut clients[1..] {
            c.cmd("QUIT");
        }
        again
    })
    .join()
    .expect("clients");
    assert_eq!(again, freed);
    srv.join().expect("server");
    lab.assert_logged(&["no free proxy port in 50000-50007 for 198.18.1.2 to 198.19.2.2"]);
    lab.assert_clean(fds);
    let _ = std::fs::remove_dir_all(&lab_dir);
}
