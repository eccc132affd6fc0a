//! End-to-end suite: real FTP servers and clients in network namespaces,
//! ftp-proxy and its nftables table on the router between them. Needs root.
//!
//! Matrix: {vsftpd, ProFTPD} × {transparent, reverse} × {IPv4, IPv6 (-6)},
//! each cell one client in one mode doing a download, an upload and a
//! listing, checked by sha256 and by the proxy's log of what was negotiated.

mod common;

use common::*;
use std::fs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Curl,
    Lftp,
    Python,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

impl Mode {
    /// Index in `Lab::verbs()`.
    fn verb(self) -> usize {
        self as usize
    }
    fn name(self) -> &'static str {
        ["PASV", "EPSV", "PORT", "EPRT"][self as usize]
    }
}

/// The cells a family allows: with -6 only EPSV and EPRT exist.
fn cells(v6: bool) -> Vec<(Client, Mode)> {
    use Client::*;
    use Mode::*;
    if v6 {
        vec![
            (Curl, Epsv),
            (Curl, Eprt),
            (Lftp, Epsv),
            (Lftp, Eprt),
            (Python, Epsv),
            (Python, Eprt),
        ]
    } else {
        // lftp has no switch for EPRT over IPv4; curl and ftplib cover it.
        vec![
            (Curl, Pasv),
            (Curl, Epsv),
            (Curl, Port),
            (Curl, Eprt),
            (Lftp, Pasv),
            (Lftp, Epsv),
            (Lftp, Port),
            (Python, Pasv),
            (Python, Epsv),
            (Python, Port),
            (Python, Eprt),
        ]
    }
}

fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// One cell: download file.bin, upload a file as pub/NAME, list pub/.
/// Returns what went wrong, if anything.
fn cell(lab: &Lab, client: Client, mode: Mode, host: &str, port: u16) -> Result<(), String> {
    let tag = format!("{client:?}-{}", mode.name()).to_lowercase();
    let up_name = format!("up-{tag}.bin");
    let src = lab.dir.join(format!("src-{tag}.bin"));
    let out = lab.dir.join(format!("out-{tag}.bin"));
    fs::write(&src, pattern(300_000, tag.len() as u64 * 31 + mode as u64))
        .map_err(|e| e.to_string())?;
    let (src_s, out_s) = (src.display().to_string(), out.display().to_string());
    let before = lab.verbs();
    let h = url_host(host);
    let base = format!("ftp://{h}:{port}");
    let listing = match client {
        Client::Curl => {
            let flags: &[&str] = match mode {
                Mode::Pasv => &["--disable-epsv"],
                Mode::Epsv => &[],
                Mode::Port => &["-P", "-", "--disable-eprt"],
                Mode::Eprt => &["-P", "-"],
            };
            let curl = |extra: &[&str]| {
                let mut argv = vec!["curl", "-sS", "--max-time", "20"];
                argv.extend_from_slice(flags);
                argv.extend_from_slice(extra);
                lab.exec('c', 30, &argv)
            };
            let o = curl(&["-o", &out_s, &format!("{base}/file.bin")]);
            if !o.status.success() {
                return Err(format!("download: {}", output_text(&o)));
            }
            let o = curl(&["-T", &src_s, &format!("{base}/pub/{up_name}")]);
            if !o.status.success() {
                return Err(format!("upload: {}", output_text(&o)));
            }
            let o = curl(&[&format!("{base}/pub/")]);
            if !o.status.success() {
                return Err(format!("listing: {}", output_text(&o)));
            }
            output_text(&o)
        }
        Client::Lftp => {
            let (passive, epsv) = match mode {
                Mode::Pasv => ("on", "no"),
                Mode::Epsv => ("on", "yes"),
                Mode::Port | Mode::Eprt => ("off", "no"),
            };
            let script = format!(
                "set ftp:passive-mode {passive}; set ftp:prefer-epsv {epsv}; set net:max-retries 1; \
                 set net:timeout 10; set xfer:clobber on; open {base}; \
                 get file.bin -o {out_s}; put {src_s} -o pub/{up_name}; cls pub/"
            );
            let o = lab.exec('c', 60, &["lftp", "-c", &script]);
            if !o.status.success() {
                return Err(format!("lftp: {}", output_text(&o)));
            }
            output_text(&o)
        }
        Client::Python => {
            let m = mode.name().to_lowercase();
            let argv = [
                "python3",
                FTPCLI,
                host,
                &port.to_string(),
                &m,
                &src_s,
                &out_s,
                &up_name,
            ];
            let o = lab.exec('c', 60, &argv);
            if !o.status.success() {
                return Err(format!("ftplib: {}", output_text(&o)));
            }
            let t = output_text(&o);
            if !t.contains(" yes") {
                return Err(format!("ftplib listing lacks {up_name}: {t}"));
            }
            up_name.clone()
        }
    };
    let want = sha256(&lab.root().join("file.bin"));
    if sha256(&out) != want {
        return Err("downloaded file differs (sha256)".into());
    }
    let uploaded = lab.root().join("pub").join(&up_name);
    if !uploaded.exists() || sha256(&uploaded) != sha256(&src) {
        return Err("uploaded file missing or differs (sha256)".into());
    }
    if !listing.contains(&up_name) {
        return Err(format!("listing lacks {up_name}: {listing}"));
    }
    // The proxy, not a fallback, negotiated every data connection.
    let after = lab.verbs();
    for v in 0..4 {
        let n = after[v] - before[v];
        if v == mode.verb() && n < 3 {
            return Err(format!(
                "proxy logged {n} {} negotiations, expected 3",
                mode.name()
            ));
        }
        if v != mode.verb() && n != 0 {
            return Err(format!(
                "proxy logged {n} unexpected {} negotiations",
                ["PASV", "EPSV", "PORT", "EPRT"][v]
            ));
        }
    }
    Ok(())
}

/// Runs every cell for one server, family and proxy mode; asserts they
/// all passed, that no map element outlives its session, and that the
/// proxy removes its table on SIGTERM.
fn matrix(server: Server, v6: bool, reverse: bool) {
    let name = format!(
        "{} {} {}",
        server.name(),
        if v6 { "IPv6" } else { "IPv4" },
        if reverse { "reverse" } else { "transparent" }
    );
    if !prerequisites(&name) {
        return;
    }
    let mut lab = Lab::new(v6);
    lab.start_server(server);
    let iface = lab.client_iface();
    let mut args: Vec<&str> = Vec::new();
    if v6 {
        args.push("-6");
    }
    let (host, port) = if reverse {
        args.extend([
            "-b",
            lab.router_client_side(),
            "-p",
            "2121",
            "-R",
            lab.server_addr(),
        ]);
        (lab.router_client_side(), 2121)
    } else {
        args.extend(["-b", lab.router_client_side(), "-i", &iface]);
        (lab.server_addr(), 21)
    };
    lab.start_proxy(&args);
    let mut failed = Vec::new();
    let mut passed = 0;
    for (client, mode) in cells(v6) {
        match cell(&lab, client, mode, host, port) {
            Ok(()) => {
                passed += 1;
                println!("{name}: {client:?} {}: ok", mode.name());
            }
            Err(e) => {
                println!("{name}: {client:?} {}: FAILED: {e}", mode.name());
                failed.push(format!("{client:?} {}: {e}", mode.name()));
            }
        }
    }
    println!("{name}: {passed} passed, {} failed", failed.len());
    assert!(
        failed.is_empty(),
        "{name}:\n{}\nproxy log:\n{}",
        failed.join("\n"),
        lab.log_text()
    );
    let table = &lab.table.clone();
    let (dnat, snat) = if v6 {
        ("dnat6", "snat6")
    } else {
        ("dnat4", "snat4")
    };
    assert_eq!(
        lab.elements(table, dnat),
        0,
        "dnat elements left after sessions ended"
    );
    assert_eq!(
        lab.elements(table, snat),
        0,
        "snat elements left after sessions ended"
    );
    assert_eq!(lab.stop_proxy(), Some(0), "exit code after SIGTERM");
    assert!(
        !lab.tables().contains(table),
        "table left after exit: {}",
        lab.tables()
    );
}

#[test]
fn vsftpd_ipv4_transparent() {
    matrix(Server::Vsftpd, false, false);
}

#[test]
fn vsftpd_ipv4_reverse() {
    matrix(Server::Vsftpd, false, true);
}

#[test]
fn vsftpd_ipv6_transparent() {
    matrix(Server::Vsftpd, true, false);
}

#[test]
fn vsftpd_ipv6_reverse() {
    matrix(Server::Vsftpd, true, true);
}

#[test]
fn proftpd_ipv4_transparent() {
    matrix(Server::Proftpd, false, false);
}

#[test]
fn proftpd_ipv4_reverse() {
    matrix(Server::Proftpd, false, true);
}

#[test]
fn proftpd_ipv6_transparent() {
    matrix(Server::Proftpd, true, false);
}

#[test]
fn proftpd_ipv6_reverse() {
    matrix(Server::Proftpd, true, true);
}
