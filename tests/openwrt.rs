//! The OpenWrt package: the init script's UCI → procd translation, run
//! with stand-ins for OpenWrt's shell functions (tests/openwrt/stubs.sh)
//! in a scratch root (IPKG_INSTROOT), on the shipped config and others.
//! Each command line must be one the daemon's own parser accepts; the
//! jail and capability parameters, the fw4 drop-ins (written on start,
//! gone on stop, fw4 reloaded only on change), the reload triggers and
//! the LuCI app (JSON, JS syntax, options the init script translates)
//! are checked. Needs only sh and sed (and node for the JS syntax).

use ftp_proxy::config::Config;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A scratch router root with /etc/config/ftp-proxy and, optionally,
/// ujail; fw4 is a stand-in that counts reloads.
struct Router {
    dir: PathBuf,
}

impl Router {
    fn new(tag: &str, uci: &str, ujail: bool) -> Router {
        let dir = std::env::temp_dir().join(format!("fp-openwrt-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for d in ["lib/functions", "sbin", "usr/share/nftables.d"] {
            fs::create_dir_all(dir.join(d)).expect("dirs");
        }
        fs::write(dir.join("ftp-proxy"), uci).expect("config");
        // network.sh stand-in: NET_<network>_DEV, _ADDR and _ADDR6.
        fs::write(
            dir.join("lib/functions/network.sh"),
            "network_get_device() { eval \"$1=\\${NET_$2_DEV:-}\"; eval \"[ -n \\\"\\${NET_$2_DEV:-}\\\" ]\"; }\n\
             network_get_physdev() { eval \"$1=''\"; return 1; }\n\
             network_get_ipaddr() { eval \"$1=\\${NET_$2_ADDR:-}\"; eval \"[ -n \\\"\\${NET_$2_ADDR:-}\\\" ]\"; }\n\
             network_get_ipaddr6() { eval \"$1=\\${NET_$2_ADDR6:-}\"; eval \"[ -n \\\"\\${NET_$2_ADDR6:-}\\\" ]\"; }\n",
        )
        .expect("network.sh");
        let fw4 = dir.join("sbin/fw4");
        fs::write(
            &fw4,
            format!("#!/bin/sh\necho \"$*\" >> {}/fw4.calls\n", dir.display()),
        )
        .expect("fw4");
        let mut bins = vec![fw4];
        if ujail {
            let path = dir.join("sbin/ujail");
            fs::write(&path, "#!/bin/sh\n").expect("ujail");
            bins.push(path);
        }
        for b in bins {
            let ok = Command::new("chmod")
                .arg("755")
                .arg(&b)
                .status()
                .expect("chmod");
            assert!(ok.success());
        }
        Router { dir }
    }

    /// Runs `func` of the init script; what procd was told, a line per call.
    fn run(&self, func: &str) -> Vec<String> {
        self.run_with(func, &[])
    }

    /// `run` with more environment (network stand-ins, UCI_SET).
    fn run_with(&self, func: &str, env: &[(&str, &str)]) -> Vec<String> {
        let script = format!(
            ". {ROOT}/tests/openwrt/stubs.sh; . {ROOT}/openwrt/files/ftp-proxy.init; {func}"
        );
        let o = Command::new("sh")
            .args(["-c", &script])
            .env("UCI_DIR", &self.dir)
            .env("IPKG_INSTROOT", &self.dir)
            .env("NET_lan_DEV", "br-lan")
            .env("NET_lan_ADDR", "198.18.1.1")
            .env("NET_lan_ADDR6", "2001:db8:1::1")
            .env("NET_guest_DEV", "br-guest")
            .env("NET_guest_ADDR", "198.18.7.1")
            .env("NET_wan_DEV", "eth1")
            .envs(env.iter().copied())
            .output()
            .expect("sh");
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{func}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    /// The fw4 drop-ins: (path under nftables.d, text), sorted.
    fn dropins(&self) -> Vec<(String, String)> {
        let base = self.dir.join("usr/share/nftables.d");
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    fn fw4_reloads(&self) -> usize {
        fs::read_to_string(self.dir.join("fw4.calls"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "-q reload")
            .count()
    }
}

fn walk(base: &Path, d: &Path, out: &mut Vec<(String, String)>) {
    for e in fs::read_dir(d).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(base, &p, out);
        } else {
            let rel = p.strip_prefix(base).expect("prefix").display().to_string();
            out.push((rel, fs::read_to_string(&p).expect("text")));
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Each instance's daemon arguments, checked by its parser.
fn commands(calls: &[String]) -> Vec<(String, Config)> {
    let cmds: Vec<(String, Config)> = calls
        .iter()
        .filter_map(|l| l.strip_prefix("param command /usr/sbin/ftp-proxy "))
        .map(|cmd| {
            let cfg = Config::parse(cmd.split_whitespace().map(String::from))
                .unwrap_or_else(|e| panic!("the daemon refuses `{cmd}`: {e}"));
            (cmd.to_string(), cfg)
        })
        .collect();
    assert!(!cmds.is_empty(), "no command in {calls:?}");
    cmds
}

fn has(calls: &[String], want: &str) -> bool {
    calls.iter().any(|c| c == want)
}

fn shipped() -> String {
    fs::read_to_string(PathBuf::from(ROOT).join("openwrt/files/ftp-proxy.config"))
        .expect("shipped config")
}

#[test]
fn shipped_config_runs_jailed_with_capabilities() {
    let r = Router::new("default", &shipped(), true);
    let calls = r.run("start_service");
    let cmds = commands(&calls);
    assert_eq!(cmds.len(), 1);
    let (cmd, cfg) = &cmds[0];
    assert_eq!(
        cmd,
        "-d -l syslog -n main -i br-lan -b 198.18.1.1 -p 8021 -m 100 -t 86400 -D 5"
    );
    assert!(cfg.foreground && cfg.max_sessions == 100 && cfg.intercept.len() == 1);
    assert_eq!(cfg.instance, "main");
    // procd hands capabilities and no_new_privs to ujail only: the jail
    // must come with them, and the user.
    for want in [
        "instance main",
        "jail ftp-proxy-main log",
        "param user ftp-proxy",
        "param group ftp-proxy",
        "param capabilities /etc/capabilities/ftp-proxy.json",
        "param no_new_privs 1",
        "param respawn",
        "param limits nofile=2048 2048",
        "param stderr 1",
        "end",
    ] {
        assert!(has(&calls, want), "{want:?} not in {calls:?}");
    }
    let jail = calls.iter().position(|c| c.starts_with("jail ")).unwrap();
    let caps = calls
        .iter()
        .position(|c| c.starts_with("param capabilities"))
        .unwrap();
    let open = calls
        .iter()
        .position(|c| c.starts_with("instance "))
        .unwrap();
    assert!(open < jail && jail < caps, "{calls:?}");
    // The status socket's directory is the jail user's, mounted in.
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("jail_mount_rw ") && c.ends_with("/var/run/ftp-proxy")),
        "{calls:?}"
    );
    // The capabilities file grants what the daemon needs, nothing more.
    let json =
        fs::read_to_string(PathBuf::from(ROOT).join("openwrt/files/ftp-proxy.capabilities.json"))
            .expect("json");
    for set in ["bounding", "effective", "permitted", "ambient"] {
        assert!(json.contains(&format!("\"{set}\"")), "{set} missing");
    }
    assert!(json.contains("CAP_NET_ADMIN"));
    assert!(!json.contains("CAP_SYS_ADMIN") && !json.contains("CAP_SETUID"));
}

#[test]
fn without_ujail_it_starts_as_root_and_drops_itself() {
    let r = Router::new("nojail", &shipped(), false);
    let calls = r.run("start_service");
    let (cmd, cfg) = &commands(&calls)[0];
    assert!(
        cmd.ends_with("-u ftp-proxy -c /var/run/ftp-proxy/empty"),
        "{cmd}"
    );
    assert_eq!(cfg.user.as_deref(), Some("ftp-proxy"));
    for absent in [
        "jail",
        "param user",
        "param capabilities",
        "param no_new_privs",
    ] {
        assert!(
            !calls.iter().any(|c| c.starts_with(absent)),
            "{absent} without ujail: {calls:?}"
        );
    }
    assert!(r.dir.join("var/run/ftp-proxy/empty").is_dir());
}

#[test]
fn every_option_maps_to_its_flag() {
    let uci = "config ftp-proxy 'main'\n\
               \toption enabled '1'\n\
               \tlist network 'lan'\n\
               \tlist network 'guest'\n\
               \tlist outbound 'wan'\n\
               \toption listen_addr '198.18.0.1'\n\
               \toption listen_port '2121'\n\
               \toption source_addr '198.19.0.1'\n\
               \toption ha_sync '198.18.9.1,198.18.9.2'\n\
               \toption max_sessions '500'\n\
               \toption max_per_client '8'\n\
               \toption timeout '600'\n\
               \toption anonymous_only '1'\n\
               \toption port20 'yes'\n\
               \toption tag '42'\n\
               \toption queue '1:10'\n\
               \toption log_level '6'\n\
               \toption verbose '2'\n";
    let r = Router::new("all", uci, true);
    let (cmd, cfg) = commands(&r.run("start_service")).remove(0);
    assert_eq!(
        cmd,
        "-d -l syslog -n main -i br-lan -i br-guest -o eth1 -b 198.18.0.1 -p 2121 -a 198.19.0.1 \
         -H 198.18.9.1,198.18.9.2 -m 500 -M 8 -t 600 -A -r -T 42 -q 1:10 -D 6 -v -v"
    );
    assert_eq!(
        cfg.ha_sync,
        Some(("198.18.9.1".parse().unwrap(), "198.18.9.2".parse().unwrap()))
    );
    assert_eq!(cfg.max_sessions, 500);
    assert_eq!(cfg.max_per_client, 8);
    assert_eq!(cfg.tag, Some(42));
    assert_eq!(cfg.verbose, 2);
    assert_eq!(cfg.egress.len(), 1);
    assert!(cfg.anonymous_only && cfg.port20);
    // Reverse mode is its own instance (-o and -R exclude each other).
    let uci = "config ftp-proxy 'rev'\n\
               \toption listen_addr '198.18.0.1'\n\
               \toption reverse_addr '198.19.2.2'\n\
               \toption reverse_port '2100'\n\
               \toption advertised_addr '198.18.4.1'\n\
               \toption proxy_ports '50000-50099'\n";
    let r = Router::new("rev", uci, true);
    let (cmd, cfg) = commands(&r.run("start_service")).remove(0);
    assert_eq!(
        cmd,
        "-d -l syslog -n rev -b 198.18.0.1 -R 198.19.2.2 -P 2100 -e 198.18.4.1 -E 50000-50099"
    );
    assert_eq!(cfg.reverse_port, 2100);
    assert_eq!(cfg.advertised, Some("198.18.4.1".parse().unwrap()));
    assert_eq!((cfg.ports.low(), cfg.ports.high()), (50000, 50099));
    // fw4 accepts the data connections of exactly that range.
    let d = r.dropins();
    let forward = &d
        .iter()
        .find(|(p, _)| p.contains("forward"))
        .expect("forward")
        .1;
    assert!(
        forward.contains("ct original proto-dst 50000-50099 accept"),
        "{forward}"
    );
}

#[test]
fn sections_are_instances_each_with_its_table() {
    let uci = "config ftp-proxy 'lan4'\n\
               \tlist network 'lan'\n\
               \n\
               config ftp-proxy 'guest4'\n\
               \tlist network 'guest'\n\
               \n\
               config ftp-proxy 'lan6'\n\
               \toption ipv6 '1'\n\
               \tlist network 'lan'\n\
               \n\
               config ftp-proxy 'off'\n\
               \toption enabled '0'\n\
               \toption listen_port '9021'\n";
    let r = Router::new("multi", uci, true);
    let calls = r.run("start_service");
    let cmds = commands(&calls);
    let got: Vec<&str> = cmds.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        got,
        [
            "-d -l syslog -n lan4 -i br-lan -b 198.18.1.1",
            "-d -l syslog -n guest4 -i br-guest -b 198.18.7.1",
            "-d -l syslog -n lan6 -i br-lan -b 2001:db8:1::1 -6",
        ]
    );
    let names: Vec<&str> = cmds.iter().map(|(_, c)| c.instance.as_str()).collect();
    assert_eq!(names, ["lan4", "guest4", "lan6"], "one table each");
    let instances: Vec<&String> = calls.iter().filter(|c| c.starts_with("instance")).collect();
    assert_eq!(
        instances.len(),
        3,
        "the disabled section must not start: {calls:?}"
    );
    // Reload on config changes and on every configured network's events.
    let triggers = r.run("service_triggers");
    assert_eq!(
        triggers,
        [
            "reload_trigger ftp-proxy",
            "interface_trigger lan",
            "interface_trigger guest",
            "interface_trigger lan",
        ]
    );
}

#[test]
fn firewall_wiring_follows_the_instances() {
    // Tagged: the forward accept matches the proxy's mark exactly.
    let uci = "config ftp-proxy 'lan4'\n\
               \tlist network 'lan'\n\
               \tlist network 'guest'\n\
               \toption tag '0x2a'\n\
               \n\
               config ftp-proxy 'rev'\n\
               \toption listen_addr '198.18.0.1'\n\
               \toption reverse_addr '198.19.2.2'\n";
    let r = Router::new("fw", uci, true);
    r.run("start_service");
    let d = r.dropins();
    let names: Vec<&str> = d.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "chain-pre/forward/30-ftp-proxy-lan4.nft",
            "chain-pre/forward/30-ftp-proxy-rev.nft",
            "chain-pre/input/30-ftp-proxy-lan4.nft",
        ],
        "reverse mode intercepts nothing: no input rule"
    );
    assert_eq!(
        d[0].1,
        "ct status dnat ct mark 0x2a accept comment \"ftp-proxy lan4: data connections\"\n"
    );
    assert_eq!(
        d[1].1,
        "meta l4proto tcp ct status dnat ct original proto-dst 49152-65535 accept \
         comment \"ftp-proxy rev: data connections\"\n"
    );
    assert_eq!(
        d[2].1,
        "iifname { \"br-lan\", \"br-guest\" } tcp dport 8021 ct status dnat accept \
         comment \"ftp-proxy lan4: redirected control connections\"\n"
    );
    assert_eq!(r.fw4_reloads(), 1, "fw4 reloads to take them in");
    // The same config again (a reload with nothing changed): no reload.
    r.run("start_service");
    assert_eq!(r.fw4_reloads(), 1, "reloaded fw4 for nothing");
    // A drop-in the package did not write is left alone.
    let other = r
        .dir
        .join("usr/share/nftables.d/chain-pre/forward/10-admin.nft");
    fs::write(&other, "accept\n").expect("admin drop-in");
    r.run("stop_service");
    assert_eq!(r.dropins().len(), 1, "{:?}", r.dropins());
    assert!(other.exists());
    assert_eq!(r.fw4_reloads(), 2, "fw4 reloads when they go");
    r.run("stop_service");
    assert_eq!(r.fw4_reloads(), 2, "nothing to remove: no reload");

    // Each drop-in is a rule nft(8) takes in a chain like fw4's (needs
    // nft and root; under CI=true both must be there).
    let nft_ok = Command::new("sh")
        .args(["-c", "command -v nft"])
        .output()
        .is_ok_and(|o| o.status.success());
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        assert!(nft_ok && root, "CI runs this as root with nft installed");
    }
    if nft_ok && root {
        for (_, rule) in &d {
            let text = format!(
                "table inet fw4chk {{\n chain c {{\n type filter hook forward priority 0;\n {}\n }}\n}}\n",
                rule.trim()
            );
            let o = Command::new("nft")
                .args(["-c", &text])
                .output()
                .expect("nft -c");
            assert!(
                o.status.success(),
                "{rule}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// Every option the LuCI view writes is one the init script reads.
#[test]
fn luci_view_writes_only_options_the_init_script_reads() {
    let base = PathBuf::from(ROOT).join("openwrt/luci-app-ftp-proxy");
    let view = fs::read_to_string(base.join("htdocs/luci-static/resources/view/ftp-proxy.js"))
        .expect("view");
    let init =
        fs::read_to_string(PathBuf::from(ROOT).join("openwrt/files/ftp-proxy.init")).expect("init");
    let mut options = Vec::new();
    for line in view.lines() {
        // s.taboption('tab', form.X, 'name', ...), also widgets.X
        if let Some(i) = line.find("form.").or_else(|| line.find("widgets.")) {
            let rest = &line[i..];
            if let Some(q) = rest.find('\'') {
                let name: String = rest[q + 1..].chars().take_while(|c| *c != '\'').collect();
                options.push(name);
            }
        }
    }
    options.retain(|o| !o.is_empty() && o != "ftp-proxy");
    assert!(options.len() >= 18, "too few options found: {options:?}");
    for o in &options {
        let read = init.contains(&format!("\"$s\" {o} "))
            || init.contains(&format!("\"$s\" {o}\n"))
            || init.contains(&format!("\"$1\" {o} "));
        assert!(read, "the view writes `{o}`, which the init script ignores");
    }
    // And every option the init script reads has a field in the view.
    for o in [
        "enabled",
        "network",
        "outbound",
        "listen_addr",
        "listen_port",
        "source_addr",
        "ha_sync",
        "max_sessions",
        "max_per_client",
        "timeout",
        "anonymous_only",
        "ipv6",
        "reverse_addr",
        "reverse_port",
        "port20",
        "tag",
        "queue",
        "log_level",
        "verbose",
    ] {
        assert!(
            options.iter().any(|v| v == o),
            "no field for `{o}` in the view"
        );
    }
    // The JSON files parse.
    for f in [
        "root/usr/share/luci/menu.d/luci-app-ftp-proxy.json",
        "root/usr/share/rpcd/acl.d/luci-app-ftp-proxy.json",
    ] {
        let text = fs::read_to_string(base.join(f)).expect(f);
        let o = Command::new("python3")
            .args(["-c", "import json,sys; json.load(sys.stdin)"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().expect("stdin").write_all(text.as_bytes())?;
                c.wait_with_output()
            })
            .expect("python3");
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let cap =
        fs::read_to_string(PathBuf::from(ROOT).join("openwrt/files/ftp-proxy.capabilities.json"))
            .expect("capabilities");
    assert!(cap.trim_start().starts_with('{'));
}

/// The view is valid JavaScript (node --check), where node is installed;
/// under CI=true node must be there.
#[test]
fn luci_view_is_valid_javascript() {
    let view = PathBuf::from(ROOT)
        .join("openwrt/luci-app-ftp-proxy/htdocs/luci-static/resources/view/ftp-proxy.js");
    let have_node = Command::new("sh")
        .args(["-c", "command -v node"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_node {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "node is missing (CI installs it: see .ci/run)"
        );
        eprintln!("SKIPPED (not run): node is not installed");
        return;
    }
    for view in [view.clone(), view.with_file_name("ftp-proxy/status.js")] {
        let o = Command::new("node")
            .arg("--check")
            .arg(&view)
            .output()
            .expect("node");
        assert!(
            o.status.success(),
            "{}: {}",
            view.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The status page has an ACL of its own that can read the status and
/// nothing else; the configuration ACL has the network calls its
/// network picker makes. The menu ties each page to its ACL.
#[test]
fn luci_acls_are_separate_and_sufficient() {
    let base = PathBuf::from(ROOT).join("openwrt/luci-app-ftp-proxy/root/usr/share");
    let py = |expr: &str, file: &str| {
        let o = Command::new("python3")
            .args([
                "-c",
                &format!("import json,sys; d=json.load(open(sys.argv[1])); print({expr})"),
            ])
            .arg(base.join(file))
            .output()
            .expect("python3");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let acl = "rpcd/acl.d/luci-app-ftp-proxy.json";
    assert_eq!(py("d['luci-app-ftp-proxy-status']", acl), "{'description': 'Grant read-only access to the status of running ftp-proxy instances', 'read': {'ubus': {'ftp-proxy': ['status']}}}");
    assert_eq!(
        py("d['luci-app-ftp-proxy']['write']", acl),
        "{'uci': ['ftp-proxy']}"
    );
    assert_eq!(
        py("sorted(d['luci-app-ftp-proxy']['read']['ubus'].items())", acl),
        "[('luci-rpc', ['getBoardJSON', 'getNetworkDevices', 'getWirelessDevices']), ('network', ['get_proto_handlers']), ('network.interface', ['dump'])]"
    );
    let menu = "luci/menu.d/luci-app-ftp-proxy.json";
    assert_eq!(py("d['admin/status/ftp-proxy']['action']['path'], d['admin/status/ftp-proxy']['depends']['acl']", menu), "ftp-proxy/status ['luci-app-ftp-proxy-status']");
    assert_eq!(
        py("d['admin/services/ftp-proxy']['depends']['acl']", menu),
        "['luci-app-ftp-proxy']"
    );
}

/// Values that no option may pass on: they would split the argv, end an
/// nft statement or comment the rest out, or run a command.
const HOSTILE: [&str; 9] = [
    "1 accept; iifname \"wan\" accept #",
    "8021 -u root",
    "x'y",
    "x\"y",
    "1;2",
    "1\n2",
    "# 1",
    "$(id)",
    "-1",
];

/// Section `bad` with one hostile value beside a good section: `bad` is
/// skipped with a log line naming the option, `good` starts as before,
/// and the value reaches no drop-in, no argv and no log line.
fn assert_refused(option: &str, value: &str, env: &[(&str, &str)], uci_extra: &str) {
    let uci = format!(
        "config ftp-proxy 'good'\n\tlist network 'lan'\n\toption tag '7'\n\n\
         config ftp-proxy 'bad'\n\tlist network 'guest'\n\toption listen_port '2121'\n{uci_extra}"
    );
    let r = Router::new("hostile", &uci, true);
    let var = format!("bad_{option}");
    let mut env = env.to_vec();
    if !option.is_empty() {
        env.push(("UCI_SET", &var));
        env.push(("UCI_VALUE", value));
    }
    let calls = r.run_with("start_service", &env);
    let what = format!("{option}={value:?}");
    assert!(has(&calls, "instance good"), "{what}: {calls:?}");
    assert!(!has(&calls, "instance bad"), "{what} started: {calls:?}");
    let logged: Vec<&String> = calls.iter().filter(|c| c.starts_with("logger ")).collect();
    assert_eq!(logged.len(), 1, "{what}: {calls:?}");
    assert!(
        logged[0].starts_with("logger -t ftp-proxy -p daemon.err -- instance bad not started: "),
        "{what}: {logged:?}"
    );
    let cmds = commands(&calls);
    assert_eq!(cmds.len(), 1, "{what}");
    assert_eq!(
        cmds[0].0,
        "-d -l syslog -n good -i br-lan -b 198.18.1.1 -T 7"
    );
    let d = r.dropins();
    assert_eq!(d.len(), 2, "{what}: {d:?}");
    for (path, text) in &d {
        assert!(path.ends_with("30-ftp-proxy-good.nft"), "{what}: {path}");
        assert_eq!(text.lines().count(), 1, "{what}: {text}");
    }
    if HOSTILE.contains(&value) {
        // The stand-in root's own path (with the test's pid) is no value.
        let all = calls
            .join("\n")
            .replace(&r.dir.display().to_string(), "<root>");
        assert!(!all.contains(value), "{what} passed on: {all}");
    }
}

#[test]
fn hostile_uci_values_start_nothing_and_reach_nothing() {
    // Every option that is passed on or written out.
    let options = [
        "listen_addr",
        "listen_port",
        "source_addr",
        "max_sessions",
        "max_per_client",
        "timeout",
        "reverse_addr",
        "reverse_port",
        "advertised_addr",
        "proxy_ports",
        "tag",
        "queue",
        "log_level",
        "verbose",
        "network_ITEM1",
        "outbound_ITEM1",
        "ha_sync",
    ];
    let mut cases = 0;
    for option in options {
        // One outbound network for the list case to override.
        let extra = match option {
            "outbound_ITEM1" => "\tlist outbound 'wan'\n",
            _ => "",
        };
        for value in HOSTILE {
            assert_refused(option, value, &[], extra);
            cases += 1;
        }
    }
    // Out of the daemon's ranges, or of the instance's family.
    for (option, value) in [
        ("listen_port", "0"),
        ("listen_port", "65536"),
        ("listen_port", "99999999999999999999"),
        ("reverse_port", "0"),
        ("max_sessions", "0"),
        ("max_sessions", "501"),
        ("max_per_client", "501"),
        ("timeout", "0"),
        ("timeout", "86401"),
        ("log_level", "8"),
        ("verbose", "3"),
        ("tag", "0"),
        ("tag", "4294967296"),
        ("tag", "0x"),
        ("tag", "0x123456789"),
        ("queue", "1"),
        ("queue", "12345:1"),
        ("queue", "g:1"),
        ("listen_addr", "2001:db8::1"),
        ("listen_addr", "198.18.1"),
        ("listen_addr", "198.18.1.1.1"),
        ("source_addr", "::1"),
        ("reverse_addr", "localhost"),
        ("network_ITEM1", "lan-x"),
        // One address, the same twice, three, of the other family, and
        // (no listen_addr in the section) without the VIPs it needs.
        ("ha_sync", "198.18.9.1"),
        ("ha_sync", "198.18.9.1,198.18.9.1"),
        ("ha_sync", "198.18.9.1,198.18.9.2,198.18.9.3"),
        ("ha_sync", "2001:db8::1,2001:db8::2"),
        ("ha_sync", "198.18.9.1,198.18.9.2"),
        // Without reverse_addr, or of the other family.
        ("advertised_addr", "198.18.9.9"),
        ("advertised_addr", "2001:db8::9"),
        ("proxy_ports", "1023-2000"),
        ("proxy_ports", "60000-60006"),
        ("proxy_ports", "2000-1024"),
        ("proxy_ports", "50000"),
        ("proxy_ports", "50000-65536"),
        ("proxy_ports", "50000-50099-50200"),
        // The listen port (2121) inside the range.
        ("proxy_ports", "2000-3000"),
    ] {
        assert_refused(option, value, &[], "");
        cases += 1;
    }
    // What needs a tag, and what the network stand-ins hand back.
    assert_refused("verbose", "2", &[], "");
    assert_refused("queue", "1:10", &[], "");
    let evil = [
        ("NET_evil_DEV", "eth0 -u root"),
        ("NET_evil_DEV", "x\"; accept"),
        ("NET_evil_DEV", "a-very-long-devicename"),
    ];
    for env in evil {
        assert_refused("network_ITEM1", "evil", &[env], "");
    }
    assert_refused(
        "network_ITEM1",
        "evil",
        &[
            ("NET_evil_DEV", "eth9"),
            ("NET_evil_ADDR", "1.2.3.4 -u root"),
        ],
        "",
    );
    // A section name longer than the daemon's -n allows.
    let long = "a".repeat(33);
    let uci = format!(
        "config ftp-proxy 'good'\n\tlist network 'lan'\n\toption tag '7'\n\n\
         config ftp-proxy '{long}'\n\tlist network 'guest'\n"
    );
    let r = Router::new("longname", &uci, true);
    let calls = r.run("start_service");
    assert_eq!(commands(&calls).len(), 1);
    assert!(
        has(
            &calls,
            "logger -t ftp-proxy -p daemon.err -- instance (unnamed) not started: section name: 1..32 of A-Z a-z 0-9 _ . -"
        ),
        "{calls:?}"
    );
    assert_eq!(cases, 17 * HOSTILE.len() + 38);
}

/// What passes is what the daemon takes: the checks are no stricter than
/// its own where a value is good.
#[test]
fn good_uci_values_pass_the_checks() {
    let uci = "config ftp-proxy 'good_1'\n\
               \tlist network 'lan'\n\
               \toption listen_port '65535'\n\
               \toption max_sessions '1'\n\
               \toption max_per_client '1'\n\
               \toption timeout '86400'\n\
               \toption tag '0xffffffff'\n\
               \toption queue 'ffff:1'\n\
               \toption log_level '0'\n\
               \toption verbose '2'\n\
               \toption proxy_ports '1024-1031'\n\
               \n\
               config ftp-proxy 'six'\n\
               \toption ipv6 '1'\n\
               \toption listen_addr '2001:db8:1::1'\n\
               \toption reverse_addr '2001:db8:2::2'\n\
               \toption advertised_addr '2001:db8:4::1'\n\
               \toption source_addr '::ffff:198.18.0.1'\n";
    let r = Router::new("goodvals", uci, true);
    let calls = r.run("start_service");
    assert!(!calls.iter().any(|c| c.starts_with("logger")), "{calls:?}");
    let cmds = commands(&calls);
    assert_eq!(cmds.len(), 2, "{calls:?}");
    assert_eq!(cmds[0].1.tag, Some(u32::MAX));
    assert_eq!(cmds[1].1.instance, "six");
    assert_eq!(cmds[0].1.ports.ports(), 8);
    assert!(cmds[1].1.advertised.is_some());
}

/// reload: an instance whose options did not change (and that runs) is
/// handed over (SIGUSR2), not restarted; one whose options changed is
/// left to procd, which restarts it; `upgrade` signals every instance.
#[test]
fn reload_hands_unchanged_instances_over_and_upgrade_signals_all() {
    let r = Router::new("reload", &shipped(), true);
    r.run("start_service");
    let calls = r.run_with("reload_service", &[("RUNNING", "main")]);
    assert!(has(&calls, "signal ftp-proxy main USR2"), "{calls:?}");
    // Not running (procd starts it now): no signal to a process that may
    // not have its handlers yet.
    let calls = r.run_with("reload_service", &[("RUNNING", "")]);
    assert!(!calls.iter().any(|c| c.starts_with("signal")), "{calls:?}");
    // Changed options: procd's restart, no signal.
    let changed = shipped().replace("option max_sessions '100'", "option max_sessions '50'");
    assert_ne!(changed, shipped());
    fs::write(r.dir.join("ftp-proxy"), changed).expect("uci");
    let calls = r.run_with("reload_service", &[("RUNNING", "main")]);
    assert!(!calls.iter().any(|c| c.starts_with("signal")), "{calls:?}");
    assert!(has(&r.run("upgrade"), "signal ftp-proxy * USR2"));
}
