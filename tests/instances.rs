//! Several instances on one router, and restarts: each instance owns its
//! table, a second one with the same name is refused without touching the
//! first, transfers go through each, and a download in flight survives a
//! restart of the proxy (SIGTERM, then a new start, as procd does) whether
//! or not the router has nat chains of its own. Needs root.

mod common;

use common::scripted::*;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEEPER: &str = "table inet ftp-proxy_hooks";

/// A proxy besides the lab's own, logging to `log`.
struct Extra {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Extra {
    fn start(lab: &Lab, tag: &str, args: &[&str]) -> Extra {
        let log = lab.dir.join(format!("proxy-{tag}.log"));
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns('r'), PROXY, "-d", "-D", "7"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn");
        wait_listening(&mut child, &log);
        Extra {
            child: Some(child),
            log,
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit code.
    fn stop(mut self) -> Option<i32> {
        let child = self.child.take()?;
        signal_and_wait(child, libc::SIGTERM, &self.log)
    }
}

impl Drop for Extra {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn has_table(lab: &Lab, table: &str) -> bool {
    let want = format!("table inet {table}");
    lab.tables().lines().any(|l| l.trim() == want)
}

#[test]
fn instances_side_by_side() {
    if !prerequisites("instances_side_by_side") {
        return;
    }
    let mut lab = Lab::new(false);
    lab.add_lan();
    // ProFTPD answers on IPv4 and IPv6 alike.
    lab.start_server(Server::Proftpd);
    let (c_if, l_if) = (lab.client_iface(), lab.lan_iface());

    // Two IPv4 instances, one per LAN interface, an IPv6 one, and a
    // reverse-mode one, each named by its listen address and port.
    lab.start_proxy(&["-b", ROUTER_C4, "-i", &c_if]);
    let lan_args = ["-b", "198.18.3.1", "-i", &l_if];
    let lan = Extra::start(&lab, "lan", &lan_args);
    let v6_args = ["-6", "-b", ROUTER_C6, "-i", &c_if];
    let v6 = Extra::start(&lab, "v6", &v6_args);
    let rev_args = ["-b", ROUTER_C4, "-p", "2121", "-R", SERVER4, "-n", "rev"];
    let rev = Extra::start(&lab, "rev", &rev_args);
    let tables: Vec<String> = [&lan_args[..], &v6_args[..], &rev_args[..]]
        .iter()
        .map(|a| table_of(a))
        .chain([lab.table.clone()])
        .collect();
    assert_eq!(tables[2], "ftp-proxy-rev");
    for t in &tables {
        assert!(has_table(&lab, t), "{t} missing:\n{}", lab.tables());
    }

    // The same name again: refused, and the live instance keeps its table.
    let (code, text) = lab.proxy_refuses(&[], &["-b", ROUTER_C4, "-p", "2122", "-n", "rev"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("another running instance"), "{text}");
    assert!(has_table(&lab, "ftp-proxy-rev"), "{}", lab.tables());

    // A transfer through each, passive and active where a LAN client is
    // intercepted.
    let url4 = format!("ftp://{SERVER4}/file.bin");
    lab.assert_fetch('c', &url4, &[]);
    lab.assert_fetch('c', &url4, &["-P", "-"]);
    lab.assert_fetch('l', &url4, &[]);
    lab.assert_fetch('l', &url4, &["-P", "-"]);
    lab.assert_fetch('c', &format!("ftp://[{SERVER6}]/file.bin"), &[]);
    lab.assert_fetch('c', "ftp://198.18.1.1:2121/file.bin", &[]);
    for (e, what) in [(&lan, "lan"), (&v6, "v6"), (&rev, "rev")] {
        assert!(
            e.text().contains("FTP session started"),
            "{what} carried no session:\n{}",
            e.text()
        );
    }

    // Clean exits, each taking only its own table.
    assert_eq!(rev.stop(), Some(0));
    assert!(!has_table(&lab, &tables[2]) && has_table(&lab, &tables[0]));
    assert_eq!(v6.stop(), Some(0));
    assert_eq!(lan.stop(), Some(0));
    lab.assert_fetch('c', &url4, &[]);
    assert_eq!(lab.stop_proxy(), Some(0));
    let left = lab.tables();
    assert!(!left.contains("table inet ftp-proxy-"), "{left}");
}

/// A slow download (about 4 s) through the proxy; the proxy is restarted
/// one second in. The data connection is the kernel's: it must complete,
/// byte for byte, although the control connection goes with the old
/// process.
fn download_across_restart(fw4_like: bool) {
    let mut lab = Lab::new(false);
    lab.start_server(Server::Vsftpd);
    const SIZE: usize = 10_000_000;
    let data = pattern(SIZE, 11);
    std::fs::write(lab.root().join("big.bin"), &data).expect("big.bin");
    let want = sha256(&lab.root().join("big.bin"));
    // 20 Mbit/s out of the server: 10 MB take about 4 s.
    let s_if = format!("fp{}-s", lab.name);
    let tbf = ["rate", "20mbit", "burst", "32kb", "latency", "400ms"];
    let mut tc = vec!["tc", "qdisc", "add", "dev", &s_if, "root", "tbf"];
    tc.extend(tbf);
    let o = lab.exec('s', 5, &tc);
    assert!(o.status.success(), "tc: {}", output_text(&o));
    if fw4_like {
        for cmd in [
            "add table inet fw4",
            "add chain inet fw4 dstnat { type nat hook prerouting priority dstnat; policy accept; }",
            "add chain inet fw4 srcnat { type nat hook postrouting priority srcnat; policy accept; }",
            "add chain inet fw4 forward { type filter hook forward priority filter; policy accept; }",
            "add rule inet fw4 forward ct state established,related accept",
        ] {
            let argv: Vec<&str> = cmd.split(' ').collect();
            lab.nft(&argv);
        }
    }
    let iface = lab.client_iface();
    let args = ["-b", ROUTER_C4, "-i", &iface];
    lab.start_proxy(&args);

    let got = Arc::new(AtomicUsize::new(0));
    let counter = got.clone();
    let reader = in_ns(&lab.ns('c'), move || {
        retr_counting("big.bin", SIZE, counter)
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    while got.load(Ordering::Relaxed) < 1_000_000 {
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lab.stop_proxy(), Some(0));
    let at_stop = got.load(Ordering::Relaxed);
    // Between the two processes only the keeper is there.
    let between = lab.tables();
    assert!(between.contains(KEEPER), "{between}");
    assert!(!between.contains("table inet ftp-proxy-"), "{between}");
    lab.start_proxy(&args);
    let after = lab.tables();
    assert!(after.contains(KEEPER), "the keeper goes: {after}");
    let all = reader.join().expect("download across the restart");
    assert!(at_stop < SIZE / 2, "restarted too late: {at_stop} bytes in");
    assert_eq!(all.len(), SIZE, "short download");
    let path = lab.dir.join("got-big.bin");
    std::fs::write(&path, &all).expect("write");
    assert_eq!(sha256(&path), want);
    // The new instance works as before.
    lab.assert_fetch('c', &format!("ftp://{SERVER4}/file.bin"), &[]);
    assert_eq!(lab.stop_proxy(), Some(0));
}

#[test]
fn download_survives_a_restart_on_a_bare_router() {
    if !prerequisites("download_survives_a_restart_on_a_bare_router") {
        return;
    }
    download_across_restart(false);
}

#[test]
fn download_survives_a_restart_next_to_fw4_nat_chains() {
    if !prerequisites("download_survives_a_restart_next_to_fw4_nat_chains") {
        return;
    }
    download_across_restart(true);
}

/// An unprivileged local user who takes an instance's name first keeps
/// it from nothing: the instance starts and says who squats its name.
#[test]
fn a_squatted_instance_name_does_not_keep_the_instance_down() {
    if !prerequisites("squatted_claim") {
        return;
    }
    let lab = Lab::new(false);
    let squat = "import socket,sys,time\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.bind('\\0ftp-proxy/ftp-proxy-squat')\n\
        s.listen(1)\n\
        print('ready',flush=True)\n\
        time.sleep(30)\n";
    let mut squatter = Command::new("ip")
        .args(["netns", "exec", &lab.ns('r'), "setpriv", "--reuid", "65534"])
        .args([
            "--regid",
            "65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            squat,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("squatter");
    let mut ready = [0u8; 6];
    let got = squatter
        .stdout
        .as_mut()
        .expect("stdout")
        .read_exact(&mut ready);
    assert!(
        got.is_ok() && &ready == b"ready\n",
        "squatter did not start"
    );
    let rev = Extra::start(
        &lab,
        "squat",
        &["-b", ROUTER_C4, "-R", SERVER4, "-n", "squat"],
    );
    let text = rev.text();
    assert!(
        text.contains("held by pid") && text.contains("uid 65534, which is no instance"),
        "{text}"
    );
    assert!(has_table(&lab, "ftp-proxy-squat"), "{}", lab.tables());
    // The instance itself holds the name as an instance does: a second
    // start is still refused.
    let (code, text) = lab.proxy_refuses(&[], &["-b", ROUTER_C4, "-p", "2122", "-n", "squat"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(rev.stop(), Some(0));
    let _ = squatter.kill();
    let _ = squatter.wait();
}
