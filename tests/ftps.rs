//! FTPS through the proxy: it cannot read TLS, so it refuses AUTH, PBSZ
//! and PROT (534) and no longer offers them in FEAT; clients that only
//! try TLS go on in plain FTP, clients that require it fail at once with
//! their own clear error. pyftpdlib offering explicit FTPS is the server.
//! Needs root.

mod common;

use common::scripted::*;
use common::*;

fn lab() -> (Lab, usize) {
    let mut lab = Lab::new(false);
    lab.start_server(Server::PyftpdTls);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    let fds = lab.fd_count();
    (lab, fds)
}

/// FEAT asked of `host` from namespace `ns`.
fn feat(ns: &str, host: &'static str) -> String {
    in_ns(ns, move || {
        let mut c = greeted_at(host, 21);
        let f = c.cmd("FEAT");
        c.cmd("QUIT");
        f
    })
    .join()
    .expect("FEAT")
}

#[test]
fn feat_no_longer_offers_tls() {
    if !prerequisites("feat_no_longer_offers_tls") {
        return;
    }
    let (mut lab, fds) = lab();
    // The server offers it (asked from the router, not through the proxy).
    let direct = feat(&lab.ns('r'), SERVER4);
    for f in [" AUTH TLS", " PBSZ", " PROT"] {
        assert!(direct.contains(f), "{direct}");
    }
    let through = feat(&lab.ns('c'), SERVER4);
    assert!(through.starts_with("211-") && through.ends_with("211 End FEAT."));
    let kept: Vec<&str> = direct
        .lines()
        .filter(|l| !l.starts_with(" AUTH") && !l.starts_with(" PBSZ") && !l.starts_with(" PROT"))
        .collect();
    // Every other line, in order.
    assert_eq!(through.lines().collect::<Vec<_>>(), kept, "{direct}");
    lab.assert_clean(fds);
}

#[test]
fn clients_that_try_tls_fall_back_and_those_that_need_it_fail_clearly() {
    if !prerequisites("tls_fall_back_or_fail_clearly") {
        return;
    }
    let (mut lab, fds) = lab();
    let url = format!("ftp://lab:secret@{SERVER4}/file.bin");
    let got = lab.dir.join("got.bin");
    let dst = got.display().to_string();
    // curl --ssl: TLS if it can be had.
    let o = lab.exec(
        'c',
        30,
        &[
            "curl",
            "-sSv",
            "--max-time",
            "20",
            "--ssl",
            "-o",
            &dst,
            &url,
        ],
    );
    lab.assert_downloaded(&o, &got, "curl --ssl");
    let t = output_text(&o);
    assert!(t.contains("> AUTH "), "curl tried TLS: {t}");
    // lftp, ftp:ssl-allow being its default: the same.
    let _ = std::fs::remove_file(&dst);
    let script = format!(
        "set ftp:ssl-allow yes; set net:max-retries 1; set net:timeout 10; get file.bin -o {dst}; bye"
    );
    let o = lab.exec('c', 30, &["lftp", "-d", "-e", &script, &url]);
    lab.assert_downloaded(&o, &got, "lftp");
    let t = output_text(&o);
    assert!(t.contains("---> AUTH TLS"), "lftp tried TLS: {t}");
    assert!(t.contains("<--- 534"), "{t}");
    // curl --ssl-reqd: its own error for "no TLS" (64), not a timeout (28).
    let o = lab.exec(
        'c',
        30,
        &[
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--ssl-reqd",
            "-o",
            "/dev/null",
            &url,
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", output_text(&o));
    // One line per session however many TLS commands it tried.
    let log = lab.log_text();
    let sessions = log.matches("FTP session started").count();
    let lines = log.matches("asked for TLS").count();
    assert!(
        lines >= 2 && lines <= sessions,
        "{lines} TLS lines, {sessions} sessions:\n{log}"
    );
    let refused = log.matches("refused with 534").count();
    assert_eq!(refused, lines);
    lab.assert_clean(fds);
}

/// The recipe for publishing an FTPS server (docs/ftps.md): not through
/// the proxy, but two port forwards, tcp/990 and the server's passive
/// ports, with the server naming the router's address in its 227s. Here
/// in nftables as fw4 renders the two UCI `redirect` sections; the proxy
/// publishes the plain FTP server beside it.
#[test]
fn recipe_publishing_an_ftps_server_beside_the_proxy() {
    if !prerequisites("recipe_publishing_ftps") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    ftps_server(&lab, Some(ROUTER_C4));
    let rc = lab.client_iface();
    lab.nft(&[
        "-f",
        &write(
            &lab,
            "forwards.nft",
            &format!(
                "table ip recipe {{\n chain dstnat {{\n  type nat hook prerouting priority dstnat;\n  \
                 iifname \"{rc}\" tcp dport {{ 990, 31000-31009 }} dnat to {SERVER4}\n }}\n}}\n"
            ),
        ),
    ]);
    // The server's gateway is the router, as behind any router.
    lab.exec(
        's',
        5,
        &["ip", "route", "add", "198.18.1.0/24", "via", "198.19.2.1"],
    );
    lab.start_proxy(&["-b", ROUTER_C4, "-p", "21", "-R", SERVER4]);
    let fds = lab.fd_count();
    for url in [
        format!("ftps://{ROUTER_C4}:990/file.bin"),
        format!("ftp://{ROUTER_C4}/file.bin"),
    ] {
        assert_fetched(&lab, &url);
    }
    // Only the plain session went through the proxy.
    assert_eq!(lab.log_text().matches("FTP session started").count(), 1);
    lab.assert_clean(fds);
}

/// The recipe for clients reaching FTPS servers outside: implicit FTPS
/// (990) is not intercepted and passes in passive mode through the
/// router's own masquerading (fw4's wan zone, pfSense's outbound NAT);
/// explicit FTPS on 21 is refused by the proxy (the test above).
#[test]
fn recipe_clients_reach_implicit_ftps_past_the_proxy() {
    if !prerequisites("recipe_outbound_ftps") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    ftps_server(&lab, None);
    let rs = lab.server_iface();
    lab.nft(&[
        "-f",
        &write(
            &lab,
            "masq.nft",
            &format!(
                "table ip recipe {{\n chain srcnat {{\n  type nat hook postrouting priority srcnat;\n  \
                 oifname \"{rs}\" masquerade\n }}\n}}\n"
            ),
        ),
    ]);
    let iface = lab.client_iface();
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &iface]);
    let fds = lab.fd_count();
    assert_fetched(&lab, &format!("ftps://{SERVER4}:990/file.bin"));
    assert_fetched(&lab, &format!("ftp://{SERVER4}/file.bin"));
    assert_eq!(lab.log_text().matches("FTP session started").count(), 1);
    lab.assert_clean(fds);
}

fn ftps_server(lab: &Lab, pasv_addr: Option<&str>) {
    let mut cmd = std::process::Command::new(LAB_SH);
    cmd.args(["ftps", &lab.name]).arg(&lab.dir);
    cmd.args(pasv_addr);
    let o = cmd.output().expect("lab.sh ftps");
    assert!(o.status.success(), "{}", output_text(&o));
}

fn write(lab: &Lab, name: &str, body: &str) -> String {
    let p = lab.dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

fn assert_fetched(lab: &Lab, url: &str) {
    let dst = lab.dir.join("got.bin");
    let _ = std::fs::remove_file(&dst);
    let d = dst.display().to_string();
    let o = lab.exec(
        'c',
        30,
        &["curl", "-sS", "-k", "--max-time", "20", "-o", &d, url],
    );
    lab.assert_downloaded(&o, &dst, url);
}
