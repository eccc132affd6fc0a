//! The OpenWrt init script's UCI → command line translation, run with
//! stand-ins for OpenWrt's shell functions (tests/openwrt/stubs.sh) on the
//! shipped default config and others; each command line must also be one
//! the daemon's own option parser accepts. Needs only sh and sed.

use ftp_proxy::config::Config;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs start_service on `uci` (the text of /etc/config/ftp-proxy) and
/// returns what procd was told, one line per call.
fn procd_calls(tag: &str, uci: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("fp-openwrt-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("lib/functions")).expect("dirs");
    fs::write(dir.join("ftp-proxy"), uci).expect("config");
    // network.sh stand-in: NET_<network>_DEV and NET_<network>_ADDR.
    fs::write(
        dir.join("lib/functions/network.sh"),
        "network_get_device() { eval \"$1=\\${NET_$2_DEV:-}\"; eval \"[ -n \\\"\\${NET_$2_DEV:-}\\\" ]\"; }\n\
         network_get_physdev() { eval \"$1=''\"; return 1; }\n\
         network_get_ipaddr() { eval \"$1=\\${NET_$2_ADDR:-}\"; eval \"[ -n \\\"\\${NET_$2_ADDR:-}\\\" ]\"; }\n",
    )
    .expect("network.sh");
    let script = format!(
        ". {ROOT}/tests/openwrt/stubs.sh; . {ROOT}/openwrt/files/ftp-proxy.init; start_service"
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .env("UCI_DIR", &dir)
        .env("IPKG_INSTROOT", &dir)
        .env("NET_lan_DEV", "br-lan")
        .env("NET_lan_ADDR", "198.18.1.1")
        .env("NET_guest_DEV", "br-guest")
        .env("NET_guest_ADDR", "198.18.7.1")
        .output()
        .expect("sh");
    let _ = fs::remove_dir_all(&dir);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{tag}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The daemon's arguments from procd's command, checked by its parser.
fn command(calls: &[String]) -> (String, Config) {
    let cmd = calls
        .iter()
        .find_map(|l| l.strip_prefix("param command /usr/sbin/ftp-proxy "))
        .unwrap_or_else(|| panic!("no command in {calls:?}"))
        .to_string();
    let cfg = Config::parse(cmd.split_whitespace().map(String::from))
        .unwrap_or_else(|e| panic!("the daemon refuses `{cmd}`: {e}"));
    (cmd, cfg)
}

#[test]
fn shipped_config_intercepts_the_lan() {
    let uci = fs::read_to_string(PathBuf::from(ROOT).join("openwrt/files/ftp-proxy.config"))
        .expect("shipped config");
    let calls = procd_calls("default", &uci);
    let (cmd, cfg) = command(&calls);
    assert_eq!(
        cmd,
        "-d -i br-lan -b 198.18.1.1 -p 8021 -m 100 -t 86400 -D 5"
    );
    assert!(cfg.foreground && cfg.max_sessions == 100 && cfg.intercept.len() == 1);
    // How procd runs it: respawned, unprivileged, capabilities, no_new_privs.
    for want in [
        "instance main",
        "param respawn",
        "param user ftp-proxy",
        "param group ftp-proxy",
        "param capabilities /etc/capabilities/ftp-proxy.json",
        "param no_new_privs 1",
        "param limits nofile=2048 2048",
        "param stderr 1",
        "end",
    ] {
        assert!(calls.iter().any(|c| c == want), "{want:?} not in {calls:?}");
    }
}

#[test]
fn every_option_maps_to_its_flag() {
    let uci = "config ftp-proxy 'main'\n\
               \toption enabled '1'\n\
               \tlist network 'lan'\n\
               \tlist network 'guest'\n\
               \toption listen_addr '198.18.0.1'\n\
               \toption listen_port '2121'\n\
               \toption source_addr '198.19.0.1'\n\
               \toption max_sessions '500'\n\
               \toption timeout '600'\n\
               \toption anonymous_only '1'\n\
               \toption reverse_addr '198.19.2.2'\n\
               \toption reverse_port '2100'\n\
               \toption port20 'yes'\n\
               \toption tag '42'\n\
               \toption queue '1:10'\n\
               \toption log_level '6'\n\
               \toption verbose '2'\n";
    let (cmd, cfg) = command(&procd_calls("all", uci));
    assert_eq!(
        cmd,
        "-d -i br-lan -i br-guest -b 198.18.0.1 -p 2121 -a 198.19.0.1 -m 500 -t 600 -A \
         -R 198.19.2.2 -P 2100 -r -T 42 -q 1:10 -D 6 -v -v"
    );
    assert_eq!(cfg.max_sessions, 500);
    assert_eq!(cfg.tag, Some(42));
    assert_eq!(cfg.verbose, 2);
    assert!(cfg.anonymous_only && cfg.port20);
}

#[test]
fn ipv6_and_disabled_sections() {
    let uci = "config ftp-proxy 'v6'\n\
               \toption ipv6 '1'\n\
               \toption listen_addr '2001:db8:1::1'\n\
               \tlist network 'lan'\n\
               \n\
               config ftp-proxy 'off'\n\
               \toption enabled '0'\n\
               \toption listen_port '9021'\n";
    let calls = procd_calls("v6", uci);
    let (cmd, cfg) = command(&calls);
    assert_eq!(cmd, "-d -i br-lan -b 2001:db8:1::1 -6");
    assert!(cfg.ipv6);
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("instance")).count(),
        1,
        "the disabled section must not start: {calls:?}"
    );
}
