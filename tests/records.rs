//! What moved: each data connection ends with a log line (and a count in
//! the status) of its duration and byte counts from conntrack. Real
//! server (vsftpd) and client (curl) in namespaces, accounting on and
//! off, and a flowtable that offloads the transfer. Needs root.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const UP: usize = 300_000;

struct Moved {
    mode: String,
    to_client: u64,
    to_server: u64,
}

/// The record lines in the log, waiting up to 10 s for `n` of them.
fn records(lab: &Lab, n: usize) -> Vec<Moved> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = lab.log_text();
        let got: Vec<Moved> = log
            .lines()
            .filter(|l| l.contains(" data connection from ") && l.contains(" ended after "))
            .map(|l| {
                let mode = l.split_whitespace().nth(1).unwrap_or("").to_string();
                let num = |after: &str| -> u64 {
                    l.split(after)
                        .next()
                        .and_then(|s| s.rsplit(' ').next())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(u64::MAX)
                };
                match l.contains("no byte counts") {
                    true => Moved {
                        mode,
                        to_client: 0,
                        to_server: 0,
                    },
                    false => Moved {
                        mode,
                        to_client: num(" bytes to the client"),
                        to_server: num(" to the server"),
                    },
                }
            })
            .collect();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sysctl(lab: &Lab, v: &str) {
    let o = lab.exec('r', 5, &["sysctl", "-qw", v]);
    assert!(
        o.status.success(),
        "sysctl {v}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A lab with vsftpd and the proxy intercepting; `acct` sets conntrack
/// accounting in the router's namespace first.
fn lab_with(acct: bool, extra_nft: Option<&dyn Fn(&Lab) -> String>) -> (Lab, String) {
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    sysctl(
        &lab,
        &format!("net.netfilter.nf_conntrack_acct={}", u8::from(acct)),
    );
    if let Some(rules) = extra_nft {
        let rules = rules(&lab);
        let f = lab.dir.join("extra.nft");
        std::fs::write(&f, rules).expect("rules");
        let o = lab.exec('r', 5, &["nft", "-f", f.to_str().expect("path")]);
        assert!(
            o.status.success(),
            "nft -f: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let run = lab.dir.join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).expect("mode");
    let sock = run.join("rec.sock").display().to_string();
    let iface = lab.client_iface();
    lab.start_proxy(&[
        "-b", ROUTER_C4, "-i", &iface, "-n", "rec", "-s", &sock, "-D", "6",
    ]);
    (lab, sock)
}

fn curl(lab: &Lab, args: &[&str]) {
    let mut argv = vec!["curl", "-sS", "--max-time", "20"];
    argv.extend_from_slice(args);
    let o = lab.exec('c', 30, &argv);
    assert!(
        o.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// conntrack counts IP bytes: the payload plus 20 bytes of IP and 32 of
/// TCP (with timestamps) per packet. `bytes` matches `size` when it is at
/// least the payload and at most the payload and 6 % of headers.
fn matches(bytes: u64, size: usize) -> bool {
    let size = size as u64;
    bytes >= size && bytes <= size + size * 6 / 100 + 4096
}

#[test]
fn byte_counts_match_the_files_moved() {
    if !prerequisites("byte_counts_match_the_files_moved") {
        return;
    }
    let (mut lab, sock) = lab_with(true, None);
    lab.assert_logged(&["data connection records: conntrack events, with byte counts"]);
    let out = lab.dir.join("out.bin").display().to_string();
    let src = lab.dir.join("src.bin");
    std::fs::write(&src, pattern(UP, 3)).expect("src");
    let src = src.display().to_string();
    let base = format!("ftp://{SERVER4}");
    // A passive download and an active upload.
    curl(
        &lab,
        &["--disable-epsv", "-o", &out, &format!("{base}/file.bin")],
    );
    curl(
        &lab,
        &[
            "-P",
            "-",
            "--disable-eprt",
            "-T",
            &src,
            &format!("{base}/pub/up.bin"),
        ],
    );
    let got = records(&lab, 2);
    assert_eq!(got.len(), 2, "records:\n{}", lab.log_text());
    let (down, up) = (&got[0], &got[1]);
    assert_eq!(
        (down.mode.as_str(), up.mode.as_str()),
        ("passive", "active")
    );
    assert!(
        matches(down.to_client, FILE_SIZE),
        "download: {} bytes to the client for {FILE_SIZE}",
        down.to_client
    );
    assert!(
        down.to_server < FILE_SIZE as u64 / 10,
        "download: {} to the server",
        down.to_server
    );
    assert!(
        matches(up.to_server, UP),
        "upload: {} bytes to the server for {UP}",
        up.to_server
    );
    assert!(
        up.to_client < UP as u64 / 10,
        "upload: {} to the client",
        up.to_client
    );
    // The status has the same.
    let o = std::process::Command::new(PROXY)
        .args(["-S", "-j", &sock])
        .output()
        .expect("-S");
    let json = String::from_utf8_lossy(&o.stdout);
    let total = down.to_client + up.to_client;
    assert!(json.contains("\"data_connections\":2,"), "{json}");
    assert!(
        json.contains(&format!("\"bytes_to_clients\":{total},")),
        "{json}"
    );
    println!(
        "passive download of {FILE_SIZE} bytes: {} IP bytes to the client, {} back; active upload of {UP}: {} to the server, {} back",
        down.to_client, down.to_server, up.to_server, up.to_client
    );
    lab.stop_proxy();
}

#[test]
fn without_accounting_records_say_so_and_carry_no_bytes() {
    if !prerequisites("without_accounting_records_say_so_and_carry_no_bytes") {
        return;
    }
    let (mut lab, _) = lab_with(false, None);
    lab.assert_logged(&["conntrack accounting is off"]);
    let out = lab.dir.join("out.bin").display().to_string();
    curl(&lab, &["-o", &out, &format!("ftp://{SERVER4}/file.bin")]);
    let got = records(&lab, 1);
    assert_eq!(got.len(), 1, "records:\n{}", lab.log_text());
    lab.assert_logged(&["(no byte counts: conntrack accounting is off)"]);
    lab.stop_proxy();
}

/// fw4's flow offloading: established forwarded flows leave conntrack's
/// path for a flowtable. Without the flowtable's `counter` flag their
/// bytes are not counted; with it they are.
fn offloaded(counter: bool) -> u64 {
    let rules = move |lab: &Lab| {
        format!(
            "table inet flows {{\n\
             flowtable ft {{ hook ingress priority 0; devices = {{ \"{}\", \"{}\" }}; {} }}\n\
             chain forward {{ type filter hook forward priority 0; policy accept; \
             meta l4proto tcp ct state established flow add @ft; }}\n}}\n",
            lab.client_iface(),
            lab.server_iface(),
            if counter { "counter;" } else { "" }
        )
    };
    let (mut lab, _) = lab_with(true, Some(&rules));
    let out = lab.dir.join("out.bin").display().to_string();
    curl(
        &lab,
        &[
            "--disable-epsv",
            "-o",
            &out,
            &format!("ftp://{SERVER4}/file.bin"),
        ],
    );
    let got = records(&lab, 1);
    assert_eq!(
        got.len(),
        1,
        "no record of an offloaded transfer:\n{}",
        lab.log_text()
    );
    lab.stop_proxy();
    got[0].to_client
}

#[test]
#[ignore = "needs a kernel with flowtables (CONFIG_NF_FLOW_TABLE); this machine's has none: run with --ignored where it has"]
fn offloaded_flows_are_counted_only_with_the_flowtable_counter() {
    if !prerequisites("offloaded_flows_are_counted_only_with_the_flowtable_counter") {
        return;
    }
    let plain = offloaded(false);
    let counted = offloaded(true);
    println!("offloaded download of {FILE_SIZE} bytes: {plain} IP bytes counted without the flowtable counter, {counted} with it");
    assert!(
        plain < FILE_SIZE as u64 / 2,
        "without `counter` the flowtable hid nothing: {plain}"
    );
    assert!(matches(counted, FILE_SIZE), "with `counter`: {counted}");
}
