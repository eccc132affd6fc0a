//! The FreeBSD port, the pfSense package and the OPNsense plugin (bsd/),
//! checked on Linux: PHP syntax (php -l), XML (xmllint), the rc scripts
//! (shellcheck, and the port's run with a stand-in rc.subr), the port's
//! crate list against Cargo.lock, and every daemon command line the GUIs
//! produce for sample configs parsed by the daemon's own parser for pf,
//! with the meaning intended. Nothing here runs on a BSD.

use ftp_proxy::config::{Config, Filter};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PFSENSE_INC: &str = "bsd/pfsense/pfSense-pkg-ftp-proxy/files/usr/local/pkg/ftp-proxy.inc";
const OPNSENSE_TEMPLATE: &str =
    "bsd/opnsense/net/ftp-proxy-rs/src/opnsense/service/templates/OPNsense/FtpProxyRs/ftp_proxy_rs";
const RC_SCRIPT: &str = "bsd/port/ftp/ftp-proxy-rs/files/ftp_proxy_rs.in";

fn path(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

/// True when `tool probe…` succeeds; under CI=true a missing tool fails
/// the test.
fn have(tool: &str, probe: &[&str]) -> bool {
    have_as(tool, tool, probe)
}

/// `have`, naming the missing piece `what` (a package, not the command).
fn have_as(what: &str, tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            env::var("CI").map_or(true, |v| v != "true"),
            "{what} is missing (lab/setup.sh installs it)"
        );
        eprintln!("SKIPPED (not run): {what} is not installed");
    }
    ok
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn bsd_files(exts: &[&str]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(&path("bsd"), &mut all);
    all.retain(|p| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
    });
    all.sort();
    all
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn parse_pf(flags: &str) -> Config {
    Config::parse_for(Filter::Pf, flags.split_whitespace().map(String::from))
        .unwrap_or_else(|e| panic!("the daemon refuses {flags:?}: {e:?}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn php_files_are_valid_php() {
    if !have("php", &["-v"]) {
        return;
    }
    let php = bsd_files(&["php", "inc"]);
    assert!(php.len() >= 7, "{php:?}");
    for f in php {
        run(Command::new("php").arg("-l").arg(&f));
    }
}

#[test]
fn xml_files_are_well_formed() {
    if !have("xmllint", &["--version"]) {
        return;
    }
    let xml = bsd_files(&["xml"]);
    assert!(xml.len() >= 6, "{xml:?}");
    for f in xml {
        run(Command::new("xmllint").arg("--noout").arg(&f));
    }
}

#[test]
fn rc_scripts_pass_shellcheck() {
    if !have("shellcheck", &["--version"]) {
        return;
    }
    run(Command::new("shellcheck").args(["-s", "sh"]).args([
        path(RC_SCRIPT),
        path("bsd/pfsense/pfSense-pkg-ftp-proxy/files/pkg-install.in"),
        path("bsd/pfsense/pfSense-pkg-ftp-proxy/files/pkg-deinstall.in"),
        path("bsd/port/crates.sh"),
        path("bsd/port/mkdist.sh"),
        path("bsd/abi/probe.sh"),
        path("openwrt/files/ftp-proxy.rpcd"),
    ]));
}

/// The crates of Cargo.lock: (name-version, sha256).
fn locked_crates() -> Vec<(String, String)> {
    let lock = fs::read_to_string(path("Cargo.lock")).expect("Cargo.lock");
    let mut out = Vec::new();
    for pkg in lock.split("[[package]]").skip(1) {
        let field = |k: &str| {
            pkg.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if let (Some(n), Some(v), Some(sum)) = (field("name"), field("version"), field("checksum"))
        {
            out.push((format!("{n}-{v}"), sum));
        }
    }
    out
}

#[test]
fn port_lists_every_locked_crate_with_its_checksum() {
    let locked = locked_crates();
    assert!(locked.iter().any(|(c, _)| c.starts_with("mio-")));
    let make = fs::read_to_string(path("bsd/port/ftp/ftp-proxy-rs/Makefile")).expect("Makefile");
    let listed: Vec<&str> = make
        .split("CARGO_CRATES=")
        .nth(1)
        .expect("CARGO_CRATES")
        .lines()
        .take_while(|l| l.ends_with('\\') || l.starts_with('\t'))
        .map(|l| l.trim().trim_end_matches('\\').trim())
        .filter(|l| !l.is_empty())
        .collect();
    let names: Vec<&str> = locked.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(listed, names, "run bsd/port/crates.sh");
    let distinfo =
        fs::read_to_string(path("bsd/port/ftp/ftp-proxy-rs/distinfo")).expect("distinfo");
    for (c, sum) in &locked {
        assert!(
            distinfo.contains(&format!("SHA256 (rust/crates/{c}.crate) = {sum}\n")),
            "distinfo: {c} (run bsd/port/crates.sh)"
        );
        assert!(distinfo.contains(&format!("SIZE (rust/crates/{c}.crate) = ")));
    }
    assert!(make.contains("LICENSE=\tISC") && make.contains("USES=\t\tcargo"));
    assert!(make.contains("${STAGEDIR}${PREFIX}/sbin/ftp-proxy"));
}

/// The port's rc.d script with a stand-in rc.subr: each instance of
/// rc.conf becomes one daemon(8) line with its own pid file, and the
/// flags are ones the daemon takes.
#[test]
fn rc_script_starts_each_instance_with_its_flags() {
    let dir = env::temp_dir().join(format!("fp-bsd-rc-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    let script = fs::read_to_string(path(RC_SCRIPT))
        .expect("rc script")
        .replace("/etc/rc.subr", &path("tests/bsd/rc.subr").to_string_lossy())
        .replace("%%PREFIX%%", "/usr/local");
    let rc = dir.join("ftp_proxy_rs");
    fs::write(&rc, script).expect("write");
    let conf = dir.join("rc.conf");
    fs::write(
        &conf,
        "ftp_proxy_rs_enable=YES\nftp_proxy_rs_instances=\"lan guest6\"\n\
         ftp_proxy_rs_lan=\"-b 127.0.0.1 -p 8021 -A\"\n\
         ftp_proxy_rs_guest6=\"-b ::1 -p 8022 -6 -T FTPDATA\"\n",
    )
    .expect("conf");
    let out = run(Command::new("sh")
        .arg(&rc)
        .arg("start")
        .env("RC_CONF", &conf));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, inst, port) in [(lines[0], "lan", 8021), (lines[1], "guest6", 8022)] {
        let pid = format!("/var/run/ftp-proxy-rs.{inst}.pid");
        assert!(
            line.starts_with(&format!("RUN start pidfile={pid} ")),
            "{line}"
        );
        let daemon = line.split(": ").nth(1).expect("command");
        let want = format!(
            "/usr/sbin/daemon -p {pid} -S -T ftp-proxy-{inst} /usr/local/sbin/ftp-proxy -b "
        );
        assert!(daemon.starts_with(&want), "{daemon}");
        let flags = daemon
            .split("/usr/local/sbin/ftp-proxy ")
            .nth(1)
            .expect("flags");
        let c = parse_pf(flags);
        assert!(c.foreground, "-d under daemon(8)");
        assert_eq!(c.listen_port, port);
    }
    let bad = Command::new("sh")
        .arg(&rc)
        .args(["start", "x;reboot"])
        .env("RC_CONF", &conf)
        .output()
        .expect("sh");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad instance name"));
    let _ = fs::remove_dir_all(&dir);
}

/// A sample instance: the fields the GUIs store, and what the daemon
/// must make of them.
struct Sample {
    pfsense: &'static str,
    opnsense: &'static str,
    check: fn(&Config),
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            pfsense: r#"{"enable":"on","interface":"lan","family":"inet","listenport":"8021"}"#,
            opnsense: r#"{"@uuid":"0a1b-2c3d","enabled":"1","listenaddress":"127.0.0.1","listenport":"8021","log":"none","anononly":"0","rewritesourceport":"0","debuglevel":""}"#,
            check: |c| {
                let d = Config::default();
                assert_eq!((c.listen_addr, c.listen_port), (ip("127.0.0.1"), 8021));
                assert!(!c.ipv6 && !c.anonymous_only && !c.port20);
                assert_eq!(
                    (c.max_sessions, c.timeout, c.verbose),
                    (d.max_sessions, d.timeout, 0)
                );
                assert_eq!((c.debug_level, c.tag_name.as_deref()), (5, None));
            },
        },
        Sample {
            pfsense: r#"{"enable":"on","interface":"opt1","family":"inet","listenport":"8023","sourceaddr":"198.19.0.1","maxsessions":"500","maxperclient":"4","timeout":"600","anononly":"on","port20":"on","tag":"FTPDATA","queue":"ftp_q","log":"all","debuglevel":"7"}"#,
            opnsense: r#"{"@uuid":"1111-2222","enabled":"1","listenaddress":"127.0.0.1","listenport":"8023","sourceaddress":"198.19.0.1","maxsessions":"500","maxperclient":"4","idletimeout":"600","anononly":"1","rewritesourceport":"1","tag":"FTPDATA","queue":"ftp_q","log":"all","debuglevel":"7"}"#,
            check: |c| {
                assert_eq!(c.listen_port, 8023);
                assert_eq!(c.source_addr, Some(ip("198.19.0.1")));
                assert_eq!((c.max_sessions, c.max_per_client, c.timeout), (500, 4, 600));
                assert!(c.anonymous_only && c.port20);
                assert_eq!(c.tag_name.as_deref(), Some("FTPDATA"));
                assert_eq!(c.queue_name.as_deref(), Some("ftp_q"));
                assert_eq!((c.verbose, c.debug_level), (2, 7));
            },
        },
        Sample {
            pfsense: r#"{"enable":"on","interface":"lan","family":"inet6","listenport":"8021","sourceaddr":"2001:db8:2::1","log":"first"}"#,
            opnsense: r#"{"@uuid":"3333-4444","enabled":"1","listenaddress":"::1","listenport":"8021","sourceaddress":"2001:db8:2::1","log":"first"}"#,
            check: |c| {
                assert!(c.ipv6);
                assert_eq!(c.listen_addr, ip("::1"));
                assert_eq!(c.source_addr, Some(ip("2001:db8:2::1")));
                assert_eq!(c.verbose, 1);
            },
        },
        Sample {
            pfsense: r#"{"enable":"on","interface":"opt2","family":"inet","listenport":"8024","reverseaddr":"198.19.2.2","reverseport":"2121","maxperclient":"1","advertisedaddr":"198.18.4.1","proxyports":"50000-50099"}"#,
            opnsense: r#"{"@uuid":"5555-6666","enabled":"1","listenaddress":"127.0.0.1","listenport":"8024","reverseaddress":"198.19.2.2","reverseport":"2121","maxperclient":"1","advertisedaddress":"198.18.4.1","proxyports":"50000-50099"}"#,
            check: |c| {
                assert_eq!(c.reverse_addr, Some(ip("198.19.2.2")));
                assert_eq!((c.reverse_port, c.max_per_client), (2121, 1));
                assert_eq!(c.advertised, Some(ip("198.18.4.1")));
                assert_eq!((c.ports.low(), c.ports.high()), (50000, 50099));
            },
        },
    ]
}

fn write_json(name: &str, items: &[&str]) -> PathBuf {
    let f = env::temp_dir().join(format!("fp-bsd-{}-{name}.json", std::process::id()));
    fs::write(&f, format!("[{}]", items.join(","))).expect("json");
    f
}

/// Lines `KEY n rest` of the harness output.
fn tagged<'a>(out: &'a str, key: &str) -> Vec<(usize, &'a str)> {
    out.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .map(|l| {
            let (n, rest) = l.split_once(' ').expect("n rest");
            (n.parse().expect("index"), rest)
        })
        .collect()
}

fn pfsense(json: &Path) -> String {
    run(Command::new("php")
        .arg(path("tests/bsd/pfsense.php"))
        .arg(json)
        .arg(path(PFSENSE_INC)))
}

#[test]
fn pfsense_command_lines_mean_what_the_page_says() {
    if !have("php", &["-v"]) {
        return;
    }
    let samples = samples();
    let mut items: Vec<&str> = samples.iter().map(|s| s.pfsense).collect();
    // A disabled instance: no daemon, no rdr.
    items.push(r#"{"interface":"opt2","family":"inet6","listenport":"9000"}"#);
    let out = pfsense(&write_json("pfsense", &items));
    assert!(tagged(&out, "ERR").is_empty(), "{out}");
    let args = tagged(&out, "ARGS");
    assert_eq!(args.len(), samples.len(), "{out}");
    for ((n, flags), s) in args.iter().zip(&samples) {
        assert!(
            flags.starts_with("-b "),
            "ps must find \"ftp-proxy -b\": {flags}"
        );
        (s.check)(&parse_pf(flags));
        assert!(
            out.contains(&format!("ftp_proxy_rs_i{n}=\"{flags}\"\n")),
            "rc.conf.d: {out}"
        );
    }
    assert!(out.contains("ftp_proxy_rs_enable=\"YES\"\nftp_proxy_rs_instances=\"i0 i1 i2 i3\"\n"));
    let nat = out
        .split("--nat--\n")
        .nth(1)
        .expect("nat")
        .split("--filter--")
        .next()
        .expect("nat");
    assert!(
        nat.starts_with("nat-anchor \"ftp-proxy/*\"\nrdr-anchor \"ftp-proxy/*\"\n"),
        "{nat}"
    );
    for rdr in [
        "rdr pass on igb1 inet proto tcp from any to ! (self) port 21 -> 127.0.0.1 port 8021",
        "rdr pass on igb2 inet proto tcp from any to ! (self) port 21 -> 127.0.0.1 port 8023",
        "rdr pass on igb1 inet6 proto tcp from any to ! (self) port 21 -> ::1 port 8021",
        "rdr pass on igb3 inet proto tcp from any to ! (self) port 21 -> 127.0.0.1 port 8024",
    ] {
        assert!(nat.contains(rdr), "{rdr} missing from {nat}");
    }
    assert!(!nat.contains("9000"));
    assert!(
        out.ends_with("--filter--\nanchor \"ftp-proxy/*\"\n"),
        "{out}"
    );
}

#[test]
fn pfsense_validation_refuses_what_the_daemon_would() {
    if !have("php", &["-v"]) {
        return;
    }
    let bad = [
        (
            r#"{"enable":"on","interface":"lan","listenport":"70000"}"#,
            "Listen port",
        ),
        (
            r#"{"enable":"on","interface":"lan","listenport":"8030","maxsessions":"501"}"#,
            "Maximum sessions",
        ),
        (
            r#"{"enable":"on","interface":"lan","listenport":"8031","timeout":"0"}"#,
            "Idle timeout",
        ),
        (
            r#"{"enable":"on","interface":"lan","family":"inet6","listenport":"8032","sourceaddr":"198.19.0.1"}"#,
            "Source address",
        ),
        (
            r#"{"enable":"on","interface":"lan","listenport":"8033","tag":"a b"}"#,
            "Tag",
        ),
        (
            r#"{"enable":"on","interface":"lan","listenport":"8034","reverseport":"21"}"#,
            "needs a reverse",
        ),
    ];
    for (inst, want) in bad {
        let out = pfsense(&write_json("pfsense-bad", &[inst]));
        let errs = tagged(&out, "ERR");
        assert!(errs.iter().any(|(_, e)| e.contains(want)), "{inst}: {out}");
        // The daemon itself refuses the same line.
        if let Some((_, flags)) = tagged(&out, "ARGS").first() {
            let r = Config::parse_for(Filter::Pf, flags.split_whitespace().map(String::from));
            if !want.contains("reverse") {
                assert!(r.is_err(), "the daemon takes {flags:?}");
            }
        }
    }
    // Two instances on one port, or one interface twice in a family.
    let out = pfsense(&write_json(
        "pfsense-clash",
        &[
            r#"{"enable":"on","interface":"lan","listenport":"8021"}"#,
            r#"{"enable":"on","interface":"lan","listenport":"8021"}"#,
        ],
    ));
    assert!(
        out.contains("ERR 1 Another instance listens on port 8021."),
        "{out}"
    );
    assert!(
        out.contains("ERR 1 Another IPv4 instance serves this interface."),
        "{out}"
    );
}

#[test]
fn opnsense_template_lines_mean_what_the_form_says() {
    if !have_as(
        "python3-jinja2",
        "/usr/bin/python3",
        &["-c", "import jinja2"],
    ) {
        return;
    }
    let samples = samples();
    let mut items: Vec<&str> = samples.iter().map(|s| s.opnsense).collect();
    items.push(
        r#"{"@uuid":"dead-beef","enabled":"0","listenaddress":"127.0.0.1","listenport":"9000"}"#,
    );
    let out = run(Command::new("/usr/bin/python3")
        .arg(path("tests/bsd/opnsense.py"))
        .arg(path(OPNSENSE_TEMPLATE))
        .arg(write_json("opnsense", &items)));
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), samples.len() + 2, "{out}");
    for (line, s) in lines.iter().zip(&samples) {
        let uuid = s.opnsense.split('"').nth(3).expect("uuid").replace('-', "");
        let flags = line
            .strip_prefix(&format!("ftp_proxy_rs_{uuid}=\""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{line}"));
        assert!(flags.starts_with("-b "), "{flags}");
        (s.check)(&parse_pf(flags));
    }
    assert!(out.contains("ftp_proxy_rs_enable=\"YES\"\n"));
    assert!(out.contains("ftp_proxy_rs_instances=\"0a1b2c3d 11112222 33334444 55556666\""));
    assert!(!out.contains("9000"));
    // The plugin's conflicts and dependency.
    let make =
        fs::read_to_string(path("bsd/opnsense/net/ftp-proxy-rs/Makefile")).expect("Makefile");
    assert!(make.contains("PLUGIN_CONFLICTS=\tftp-proxy\n"));
    assert!(make.contains("PLUGIN_DEPENDS=\t\tftp-proxy-rs\n"));
}

/// Values no field may pass on into rc.conf.d (read by sh) or pf.conf.
const HOSTILE: [&str; 9] = [
    "8021\nrdr pass on igb0 from any to any -> 198.18.9.9",
    "1 -u root",
    "x'y",
    "x\\\"y",
    "1;2",
    "$(id)",
    "`id`",
    "# 1",
    "-1",
];

/// The part of the harness output that is written out: rc.conf.d and
/// the rules.
fn rendered(out: &str) -> &str {
    &out[out.find("# Written by").expect("rc.conf.d text")..]
}

#[test]
fn pfsense_renders_nothing_unvalidated() {
    if !have("php", &["-v"]) {
        return;
    }
    let fields = [
        "interface",
        "family",
        "listenport",
        "sourceaddr",
        "maxsessions",
        "maxperclient",
        "timeout",
        "reverseaddr",
        "reverseport",
        "advertisedaddr",
        "proxyports",
        "tag",
        "queue",
        "debuglevel",
        "log",
    ];
    let good = r#"{"enable":"on","interface":"lan","family":"inet","listenport":"8021"}"#;
    let mut cases = 0;
    for field in fields {
        // As JSON strings, and one value that is not a string at all.
        let values = HOSTILE
            .iter()
            .map(|v| format!("\"{}\"", v.replace('\n', "\\n")))
            .chain(["[\"8021\"]".to_string()]);
        for v in values {
            let bad = format!(
                r#"{{"enable":"on","interface":"opt1","family":"inet","listenport":"8022","{field}":{v}}}"#
            );
            let out = pfsense(&write_json("pfsense-hostile", &[good, &bad]));
            let what = format!("{field}={v}");
            assert!(
                tagged(&out, "ERR").iter().any(|(n, _)| *n == 1),
                "{what}: not refused on save: {out}"
            );
            let text = rendered(&out);
            assert!(
                text.contains("ftp_proxy_rs_instances=\"i0\"\n")
                    && !text.contains("ftp_proxy_rs_i1"),
                "{what}: {text}"
            );
            assert!(!text.contains("8022"), "{what}: {text}");
            let rdrs = text.lines().filter(|l| l.starts_with("rdr pass")).count();
            assert_eq!(rdrs, 1, "{what}: {text}");
            assert!(
                out.contains("LOG ftp-proxy: instance 1 not started: "),
                "{what}: {out}"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 15 * (HOSTILE.len() + 1));
}

#[test]
fn opnsense_renders_nothing_unvalidated() {
    if !have_as(
        "python3-jinja2",
        "/usr/bin/python3",
        &["-c", "import jinja2"],
    ) {
        return;
    }
    let fields = [
        "@uuid",
        "listenaddress",
        "listenport",
        "sourceaddress",
        "maxsessions",
        "maxperclient",
        "idletimeout",
        "reverseaddress",
        "reverseport",
        "advertisedaddress",
        "proxyports",
        "tag",
        "queue",
        "debuglevel",
        "log",
    ];
    let good =
        r#"{"@uuid":"0a1b-2c3d","enabled":"1","listenaddress":"127.0.0.1","listenport":"8021"}"#;
    let mut cases = 0;
    for field in fields {
        let extra: &[&str] = match field {
            "listenport" | "reverseport" | "maxsessions" | "debuglevel" => &["0", "70000", "٣"],
            // Too low, too few, holding the listen port (8022), no -R.
            "proxyports" => &["1023-2000", "60000-60006", "8000-8100", "5٣000-50099"],
            "advertisedaddress" => &["198.18.4.1"],
            _ => &[],
        };
        let values = HOSTILE.iter().chain(extra);
        for v in values {
            let v = v.replace('\n', "\\n");
            let mut bad = format!(
                r#"{{"@uuid":"9999-8888","enabled":"1","listenaddress":"127.0.0.1","listenport":"8022","{field}":"{v}"}}"#
            );
            if field == "debuglevel" && v == "0" {
                // 0 is a good log level.
                bad = bad.replace("\"0\"", "\"8\"");
            }
            let out = run(Command::new("/usr/bin/python3")
                .arg(path("tests/bsd/opnsense.py"))
                .arg(path(OPNSENSE_TEMPLATE))
                .arg(write_json("opnsense-hostile", &[good, &bad])));
            let what = format!("{field}={v}");
            assert!(
                out.contains("ftp_proxy_rs_instances=\"0a1b2c3d\""),
                "{what}: {out}"
            );
            assert!(
                out.contains("# an enabled instance with an invalid value is left out"),
                "{what}: {out}"
            );
            assert!(!out.contains("8022"), "{what}: {out}");
            cases += 1;
        }
    }
    assert_eq!(cases, 15 * HOSTILE.len() + 4 * 3 + 4 + 1);
}
