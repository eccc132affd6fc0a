//! Command-line behaviour: bad options exit 1 with a reason and usage.

use std::process::Command;

const PROXY: &str = env!("CARGO_BIN_EXE_ftp-proxy");

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(PROXY)
        .args(args)
        .output()
        .expect("run ftp-proxy");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn help_prints_usage_and_exits_0() {
    let (code, out, _) = run(&["-h"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: ftp-proxy"), "{out}");
    for opt in [
        "-6", "-A", "-a", "-b", "-D", "-d", "-i", "-M", "-m", "-o", "-P", "-p", "-q", "-R", "-r",
        "-T", "-t", "-v",
    ] {
        assert!(out.contains(&format!("  {opt} ")), "usage lacks {opt}");
    }
}

#[test]
fn bad_values_exit_1_with_a_reason() {
    for (args, reason) in [
        (&["-m", "501"][..], "-m 501"),
        (&["-m", "0"], "-m 0"),
        (&["-t", "86401"], "-t 86401"),
        (&["-D", "8"], "-D 8"),
        (&["-b", "not-an-ip"], "-b not-an-ip"),
        (&["-x"], "Unrecognized option"),
        (&["-6", "-b", "127.0.0.1"], "-b 127.0.0.1"),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 1, "{args:?}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("ftp-proxy: ") && first.contains(reason),
            "{args:?}: {err}"
        );
        assert!(err.contains("usage: ftp-proxy"), "{args:?}: no usage");
    }
}

#[test]
fn listen_failure_is_reported() {
    // A port another socket holds. (An address this machine does not
    // have is no failure: the listener binds with IP_FREEBIND, for HA.)
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (code, _, err) = run(&["-d", "-b", "127.0.0.1", "-p", &port]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn reverse_server_by_name_and_the_kernels_routes() {
    use ftp_proxy::config::Config;
    // /etc/hosts has localhost on every system the suite runs on.
    let c = Config::parse(["-R", "localhost"].map(String::from)).expect("-R localhost");
    assert_eq!(c.reverse_addr, Some("127.0.0.1".parse().unwrap()));
    let (code, _, err) = run(&["-R", "no-such-host.invalid"]);
    assert_eq!(code, 1);
    assert!(err.contains("-R no-such-host.invalid"), "{err}");
    // Every network namespace routes its loopback addresses locally.
    let mut routes = ftp_proxy::route::Routes::open().expect("NETLINK_ROUTE socket");
    let lo = routes.lookup("127.0.0.1".parse().unwrap()).expect("route");
    assert_eq!(lo.kind, 2, "RTN_LOCAL");
    let mut d = ftp_proxy::intercept::Destinations::open(&c).expect("destinations");
    assert_eq!(
        d.check("127.0.0.1".parse().unwrap()),
        Err("loopback address")
    );
}
