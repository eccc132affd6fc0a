//! Commands and replies through the proxy's rules and rewriting: nothing
//! that negotiates an address is relayed as the peer wrote it, what is
//! forwarded is exactly the line judged and carries no control byte but
//! its final CR LF and no malformed Telnet sequence, every
//! rewritten line fits a line buffer and carries the proxy's address and
//! port, and reads back as exactly that.
#![no_main]

use ftp_proxy::ftp::command::{Af, Command};
use ftp_proxy::ftp::line::{strip_crlf, trim_eol};
use ftp_proxy::ftp::policy::{self, Policy, Verdict};
use ftp_proxy::ftp::reply::{self, Kind, ReplyFramer};
use ftp_proxy::ftp::{telnet, write, MAX_LINE, MIN_DATA_PORT};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

/// Verbs a server would act on with an address or a security exchange.
const NEVER_RELAYED: [&[u8]; 12] = [
    b"PORT", b"EPRT", b"LPRT", b"LPSV", b"AUTH", b"CCC", b"CONF", b"ENC", b"MIC", b"PBSZ", b"PROT",
    b"ADAT",
];

fn verb(line: &[u8]) -> &[u8] {
    let l = trim_eol(line);
    let start = l.iter().position(|&b| b != b' ').unwrap_or(l.len());
    let l = &l[start..];
    &l[..l.iter().position(|&b| b == b' ').unwrap_or(l.len())]
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let v6 = ctl & 1 != 0;
    let (family, proxy): (Af, IpAddr) = match v6 {
        false => (Af::Inet, IpAddr::from([198, 18, 0, 1])),
        true => (Af::Inet6, "2001:db8::1".parse().unwrap()),
    };
    let mut rules = Policy::new(v6 && ctl & 2 != 0, ctl & 4 != 0, family);
    let pp = 49152 + u16::from(ctl) * 61;
    let mut out = [0u8; MAX_LINE + 64];
    let mut replies = ReplyFramer::default();

    for raw in input
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.len() <= MAX_LINE)
    {
        // As a client command: judged and (if so) forwarded raw.
        match rules.judge(raw) {
            v @ (Verdict::Forward | Verdict::Feat | Verdict::Passive { .. }) => {
                assert!(
                    !strip_crlf(raw).iter().any(|&b| telnet::is_control(b)),
                    "forwarded a control byte: {raw:?}"
                );
                let mut clean = [0u8; MAX_LINE];
                let k = telnet::strip(raw, &mut clean).expect("forwarded malformed Telnet");
                let line = &clean[..k];
                let verb = verb(line).to_ascii_uppercase();
                assert!(!NEVER_RELAYED.contains(&&verb[..]), "relayed {raw:?}");
                let passive = matches!(Command::parse(line), Command::Pasv | Command::Epsv(_));
                assert_eq!(matches!(v, Verdict::Passive { .. }), passive, "{raw:?}");
                if v == (Verdict::Passive { fallback: true }) {
                    // PASV for a refused EPSV: IPv4, and never after EPSV ALL.
                    assert!(matches!(Command::parse(line), Command::Epsv(_)) && !v6);
                    assert!(rules.may_fall_back());
                }
                assert_eq!(v == Verdict::Feat, Command::parse(line) == Command::Feat);
            }
            Verdict::Active { extended, port } => {
                assert!(port >= MIN_DATA_PORT);
                let n = write::active_command(&mut out, proxy, pp, extended).unwrap();
                assert!(n <= MAX_LINE);
                match Command::parse(&out[..n]) {
                    Command::Port(p) => assert!(p == pp && !extended && !v6),
                    Command::Eprt(af, p) => assert!(p == pp && af == family),
                    other => panic!("rewrote {raw:?} into {other:?}"),
                }
            }
            Verdict::Refuse(r) => assert!((400..600).contains(&r.code)),
        }
        // As a server reply.
        if let Some(Kind::Final(code)) = replies.classify(raw) {
            match policy::passive_port(code, raw) {
                None => assert!(code != 227 && code != 229),
                Some(Err(r)) => assert_eq!(r.code, 425),
                Some(Ok(port)) => {
                    assert!(port >= MIN_DATA_PORT);
                    let n = write::passive_reply(&mut out, proxy, pp, code == 229).unwrap();
                    assert!(n <= MAX_LINE);
                    let back = &out[..n];
                    assert_eq!(
                        ReplyFramer::default().classify(back),
                        Some(Kind::Final(if v6 { 229 } else { code }))
                    );
                    match v6 || code == 229 {
                        true => assert_eq!(reply::parse_229(back), Some(pp)),
                        false => assert_eq!(reply::parse_227(back), Some(([198, 18, 0, 1], pp))),
                    }
                }
            }
        }
    }
});
