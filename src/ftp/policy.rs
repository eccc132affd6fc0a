//! The proxy's rules for the control channel (ftp-proxy(8)) as pure
//! functions: what to do with each client command and each passive reply.
//! The session carries out the verdict; nothing here does I/O.

use super::command::{is_anonymous, Af, Command};
use super::line::strip_crlf;
use super::telnet;
use super::{reply, MAX_LINE, MIN_DATA_PORT};
use crate::handover::wire::{Reader, Writer};

/// How loudly a refusal is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// A client or server speaking FTP the proxy does not relay (notice).
    Protocol,
    /// An attempt the rules exist to stop: bounce, login, smuggling (warning).
    Security,
}

/// A reply the proxy sends itself instead of relaying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// A short name for counting refusals by reason (the status).
    pub key: &'static str,
    pub code: u16,
    pub text: &'static str,
    pub severity: Severity,
}

const fn protocol(key: &'static str, code: u16, text: &'static str) -> Refusal {
    Refusal {
        key,
        code,
        text,
        severity: Severity::Protocol,
    }
}

const fn security(key: &'static str, code: u16, text: &'static str) -> Refusal {
    Refusal {
        key,
        code,
        text,
        severity: Severity::Security,
    }
}

pub const CONTROL_CHARS: Refusal = security(
    "control-chars",
    500,
    "Control characters in command refused",
);
pub const BAD_TELNET: Refusal = security(
    "bad-telnet",
    500,
    "Malformed Telnet sequence in command refused",
);
pub const EMPTY: Refusal = protocol("empty", 500, "Empty command");
pub const LINE_TOO_LONG: Refusal = protocol("too-long", 500, "Command line too long");
pub const LOW_PORT: Refusal = security("low-port", 501, "Data port below 1024 refused");
pub const NOT_ANONYMOUS: Refusal = security(
    "not-anonymous",
    530,
    "Only anonymous FTP is allowed through this proxy",
);
pub const TLS: Refusal = protocol(
    "tls",
    534,
    "TLS not available through this proxy: it must read the control channel",
);
pub const LONG_FORMS: Refusal = protocol(
    "lprt-lpsv",
    502,
    "LPRT/LPSV not supported by the proxy, use EPRT/EPSV",
);
pub const EPSV_ALL: Refusal = protocol("epsv-all", 503, "EPSV ALL in effect, only EPSV is allowed");
pub const PASV_IN_V6: Refusal =
    protocol("pasv-in-v6", 500, "PASV not allowed in IPv6 mode, use EPSV");
pub const PORT_IN_V6: Refusal =
    protocol("port-in-v6", 500, "PORT not allowed in IPv6 mode, use EPRT");
pub const USE_INET: Refusal = protocol(
    "wrong-family",
    522,
    "Network protocol not supported, use (1)",
);
pub const USE_INET6: Refusal = protocol(
    "wrong-family",
    522,
    "Network protocol not supported, use (2)",
);
pub const BAD_PASSIVE: Refusal = protocol(
    "bad-passive",
    425,
    "Can't open data connection: bad passive reply from server",
);
pub const LOW_SERVER_PORT: Refusal = security(
    "low-server-port",
    425,
    "Can't open data connection: server port below 1024 refused",
);
/// A 227/229 that answers no PASV/EPSV: nothing is installed for it, and
/// the client never sees an address the proxy did not choose.
pub const UNSOLICITED_PASSIVE: Refusal = protocol(
    "unsolicited-passive",
    425,
    "Can't open data connection: passive reply to no PASV/EPSV",
);
/// Every proxy port of `-E` is held for this pair of hosts.
pub const NO_PROXY_PORT: Refusal = protocol(
    "no-proxy-port",
    425,
    "Can't open data connection: no free proxy port, try again later",
);
/// The kernel would not take a data mapping (logged where it failed).
pub const NAT_FAILED: Refusal = protocol(
    "nat-failed",
    425,
    "Can't open data connection: proxy could not set up NAT",
);

const BAD_PORT: Refusal = protocol("syntax", 501, "Syntax error in PORT parameters");
const BAD_EPRT: Refusal = protocol("syntax", 501, "Syntax error in EPRT parameters");
const BAD_EPSV: Refusal = protocol("syntax", 501, "Syntax error in EPSV parameters");

fn malformed(verb: &str) -> Refusal {
    match verb {
        "PORT" => BAD_PORT,
        "EPRT" => BAD_EPRT,
        _ => BAD_EPSV,
    }
}

/// Every refusal, in a fixed order: a held one crosses a handover as its
/// index here. New ones go at the end (the format version says which
/// list a saved index refers to).
pub const ALL: [Refusal; 21] = [
    CONTROL_CHARS,
    BAD_TELNET,
    EMPTY,
    LINE_TOO_LONG,
    LOW_PORT,
    NOT_ANONYMOUS,
    TLS,
    LONG_FORMS,
    EPSV_ALL,
    PASV_IN_V6,
    PORT_IN_V6,
    USE_INET,
    USE_INET6,
    BAD_PASSIVE,
    LOW_SERVER_PORT,
    UNSOLICITED_PASSIVE,
    NO_PROXY_PORT,
    NAT_FAILED,
    BAD_PORT,
    BAD_EPRT,
    BAD_EPSV,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Relay the client's line unchanged.
    Forward,
    /// Relay FEAT unchanged; the TLS features of its reply are removed.
    Feat,
    /// Relay PASV/EPSV unchanged; its 227/229 is the one to rewrite.
    /// `fallback`: an EPSV the server may not know, for which the proxy
    /// may send PASV (IPv4, and no EPSV ALL).
    Passive {
        fallback: bool,
    },
    /// Send the server the proxy's own PORT (or EPRT when `extended`) for
    /// a data connection to the client's `port`.
    Active {
        extended: bool,
        port: u16,
    },
    Refuse(Refusal),
}

/// One session's view of the rules.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// `-6`: PASV and PORT cannot carry the addresses in use.
    pub ipv6_mode: bool,
    /// `-A`: only anonymous logins.
    pub anonymous_only: bool,
    /// The family of the client's control connection.
    pub family: Af,
    epsv_all: bool,
}

impl Policy {
    pub fn save(&self, w: &mut Writer) {
        w.bool(self.ipv6_mode);
        w.bool(self.anonymous_only);
        w.bool(self.family == Af::Inet6);
        w.bool(self.epsv_all);
    }

    pub fn load(r: &mut Reader) -> Option<Policy> {
        Some(Policy {
            ipv6_mode: r.bool()?,
            anonymous_only: r.bool()?,
            family: if r.bool()? { Af::Inet6 } else { Af::Inet },
            epsv_all: r.bool()?,
        })
    }

    pub fn new(ipv6_mode: bool, anonymous_only: bool, family: Af) -> Policy {
        Policy {
            ipv6_mode,
            anonymous_only,
            family,
            epsv_all: false,
        }
    }

    /// Whether a refused EPSV (or the proxy's EPRT) may be tried again
    /// as PASV (PORT): only where those can carry the addresses, and
    /// never after the client's EPSV ALL (RFC 2428: nothing but EPSV).
    pub fn may_fall_back(&self) -> bool {
        self.family == Af::Inet && !self.ipv6_mode && !self.epsv_all
    }

    fn wrong_family(&self) -> Refusal {
        match self.family {
            Af::Inet => USE_INET,
            Af::Inet6 => USE_INET6,
        }
    }

    /// Judges one command line exactly as received, LF included: what is
    /// forwarded is what was judged. Telnet sequences must be well formed
    /// and are judged without (as servers read the verb); no other
    /// control byte may stand anywhere but in the final CR LF.
    pub fn judge(&mut self, raw: &[u8]) -> Verdict {
        let refuse = Verdict::Refuse;
        if raw.len() > MAX_LINE {
            return refuse(LINE_TOO_LONG);
        }
        let mut clean = [0u8; MAX_LINE];
        let line = match telnet::has_iac(raw) {
            false => raw,
            true => match telnet::strip(raw, &mut clean) {
                Some(n) => &clean[..n],
                None => return refuse(BAD_TELNET),
            },
        };
        // On the raw line, which is what is forwarded: well-formed Telnet
        // carries no control byte, so none may stand anywhere but in the
        // final CR LF (not even between a Telnet sequence and the LF).
        if strip_crlf(raw).iter().any(|&b| telnet::is_control(b)) {
            // NUL, CR, … inside a line: servers disagree on what they
            // mean, so a verb could hide from the proxy behind them.
            return refuse(CONTROL_CHARS);
        }
        let body = strip_crlf(line);
        if body.is_empty() {
            // Answered here, as servers do, so every forwarded line has
            // exactly one reply to wait for.
            return refuse(EMPTY);
        }
        match Command::parse(line) {
            Command::Port(_) if self.ipv6_mode => refuse(PORT_IN_V6),
            Command::Pasv if self.ipv6_mode => refuse(PASV_IN_V6),
            Command::Port(_) | Command::Eprt(..) | Command::Pasv if self.epsv_all => {
                refuse(EPSV_ALL)
            }
            Command::Eprt(af, _) | Command::Epsv(Some(af)) if af != self.family => {
                refuse(self.wrong_family())
            }
            Command::Port(port) | Command::Eprt(_, port) if port < MIN_DATA_PORT => {
                refuse(LOW_PORT)
            }
            Command::Port(port) => Verdict::Active {
                extended: false,
                port,
            },
            Command::Eprt(_, port) => Verdict::Active {
                extended: true,
                port,
            },
            Command::EpsvAll => {
                self.epsv_all = true;
                Verdict::Forward
            }
            Command::User(user) if self.anonymous_only && !is_anonymous(user) => {
                refuse(NOT_ANONYMOUS)
            }
            Command::Security => refuse(TLS),
            Command::Long => refuse(LONG_FORMS),
            Command::Malformed(verb) => refuse(malformed(verb)),
            Command::Pasv => Verdict::Passive { fallback: false },
            Command::Epsv(_) => Verdict::Passive {
                fallback: self.may_fall_back(),
            },
            Command::Feat => Verdict::Feat,
            Command::User(_) | Command::Other => Verdict::Forward,
        }
    }
}

/// A final 227 or 229 reply: the server's data port, or why the client
/// gets a refusal instead. The address inside a 227 is never used.
pub fn passive_port(code: u16, line: &[u8]) -> Option<Result<u16, Refusal>> {
    let port = match code {
        227 => reply::parse_227(line).map(|(_, p)| p),
        229 => reply::parse_229(line),
        _ => return None,
    };
    Some(match port {
        None => Err(BAD_PASSIVE),
        Some(p) if p < MIN_DATA_PORT => Err(LOW_SERVER_PORT),
        Some(p) => Ok(p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> Policy {
        Policy::new(false, false, Af::Inet)
    }

    #[test]
    fn active_mode_reads_only_the_port() {
        let mut p = v4();
        // A third host in PORT is not a refusal: the address is ignored.
        assert_eq!(
            p.judge(b"PORT 198,18,99,9,195,80\r\n"),
            Verdict::Active {
                extended: false,
                port: 50000
            }
        );
        assert_eq!(
            p.judge(b"EPRT |1|198.18.99.7|2000|\r\n"),
            Verdict::Active {
                extended: true,
                port: 2000
            }
        );
        assert_eq!(
            p.judge(b"PORT 198,18,1,2,0,25\r\n"),
            Verdict::Refuse(LOW_PORT)
        );
        assert_eq!(p.judge(b"EPRT |1|x|1023|\r\n"), Verdict::Refuse(LOW_PORT));
        assert_eq!(
            p.judge(b"EPRT |2|2001:db8::1|5000|\r\n"),
            Verdict::Refuse(USE_INET)
        );
        assert_eq!(
            p.judge(b"PORT 1,2,3\r\n"),
            Verdict::Refuse(malformed("PORT"))
        );
    }

    #[test]
    fn epsv_all_locks_out_other_negotiation() {
        let mut p = v4();
        assert_eq!(p.judge(b"PASV\r\n"), Verdict::Passive { fallback: false });
        assert_eq!(p.judge(b"EPSV\r\n"), Verdict::Passive { fallback: true });
        assert!(p.may_fall_back());
        assert_eq!(p.judge(b"EPSV ALL\r\n"), Verdict::Forward);
        assert!(!p.may_fall_back(), "never PASV or PORT after EPSV ALL");
        for cmd in [
            &b"PASV\r\n"[..],
            b"PORT 1,2,3,4,5,6\r\n",
            b"EPRT |1|h|5000|\r\n",
        ] {
            assert_eq!(p.judge(cmd), Verdict::Refuse(EPSV_ALL), "{cmd:?}");
        }
        assert_eq!(p.judge(b"EPSV\r\n"), Verdict::Passive { fallback: false });
        assert_eq!(p.judge(b"EPSV 1\r\n"), Verdict::Passive { fallback: false });
        assert_eq!(p.judge(b"FEAT\r\n"), Verdict::Feat);
        assert_eq!(p.judge(b"EPSV 2\r\n"), Verdict::Refuse(USE_INET));
    }

    #[test]
    fn ipv6_mode_and_anonymous_only() {
        let mut p = Policy::new(true, true, Af::Inet6);
        assert_eq!(p.judge(b"PASV\r\n"), Verdict::Refuse(PASV_IN_V6));
        assert_eq!(
            p.judge(b"PORT 1,2,3,4,5,6\r\n"),
            Verdict::Refuse(PORT_IN_V6)
        );
        assert_eq!(p.judge(b"EPSV 1\r\n"), Verdict::Refuse(USE_INET6));
        assert_eq!(p.judge(b"USER root\r\n"), Verdict::Refuse(NOT_ANONYMOUS));
        assert_eq!(p.judge(b"EPSV\r\n"), Verdict::Passive { fallback: false });
        assert_eq!(p.judge(b"user Anonymous\r\n"), Verdict::Forward);
    }

    #[test]
    fn refusals_for_what_cannot_be_relayed() {
        let mut p = v4();
        for cmd in [
            &b"AUTH TLS\r\n"[..],
            b"auth ssl\r\n",
            b"PBSZ 0\r\n",
            b"PROT P\r\n",
        ] {
            assert_eq!(p.judge(cmd), Verdict::Refuse(TLS), "{cmd:?}");
        }
        assert_eq!(p.judge(b"LPSV\r\n"), Verdict::Refuse(LONG_FORMS));
        assert_eq!(p.judge(b"PO\0RT 1\r\n"), Verdict::Refuse(CONTROL_CHARS));
        assert_eq!(p.judge(b"NOOP\rPORT 1\n"), Verdict::Refuse(CONTROL_CHARS));
        assert_eq!(p.judge(b"RETR \x7f\r\n"), Verdict::Refuse(CONTROL_CHARS));
        // Bytes above ASCII are file names in UTF-8, not control characters.
        assert_eq!(p.judge("RETR fü\r\n".as_bytes()), Verdict::Forward);
        assert_eq!(p.judge(b"noop  \n"), Verdict::Forward);
        assert_eq!(p.judge(b"NOOP\r\r\n"), Verdict::Refuse(CONTROL_CHARS));
        assert_eq!(p.judge(b"\r\n"), Verdict::Refuse(EMPTY));
        assert_eq!(p.judge(b"\xff\xf4\xff\xf2\r\n"), Verdict::Refuse(EMPTY));
    }

    #[test]
    fn telnet_is_judged_on_the_raw_line() {
        let mut p = v4();
        // The verb behind a well-formed sequence is the one judged.
        assert_eq!(
            p.judge(b"\xff\xf4\xff\xf2PORT 1,2,3,4,195,80\r\n"),
            Verdict::Active {
                extended: false,
                port: 50000
            }
        );
        assert_eq!(p.judge(b"\xff\xf4\xff\xf2ABOR\r\n"), Verdict::Forward);
        // Malformed ones never reach a server that reads raw bytes.
        assert_eq!(
            p.judge(b"NOOP\xff\rPORT 1,2,3,4,5,6\r\n"),
            Verdict::Refuse(BAD_TELNET)
        );
        assert_eq!(p.judge(b"NOOP\xff\x00X\r\n"), Verdict::Refuse(BAD_TELNET));
        assert_eq!(p.judge(b"NOOP\xff\xfd\r\n"), Verdict::Refuse(BAD_TELNET));
        // A CR hidden before a Telnet sequence at the end of the line.
        assert_eq!(p.judge(b"NOOP\r\xff\xf1\n"), Verdict::Refuse(CONTROL_CHARS));
    }

    #[test]
    fn passive_replies() {
        assert_eq!(passive_port(200, b"200 ok\r\n"), None);
        assert_eq!(
            passive_port(227, b"227 Entering Passive Mode (198,18,99,9,117,48).\r\n"),
            Some(Ok(30000))
        );
        assert_eq!(
            passive_port(227, b"227 (198,19,2,2,0,22)\r\n"),
            Some(Err(LOW_SERVER_PORT))
        );
        assert_eq!(
            passive_port(227, b"227 (198,19,2,2,300,1)\r\n"),
            Some(Err(BAD_PASSIVE))
        );
        assert_eq!(
            passive_port(229, b"229 (#1#2#3#)\r\n"),
            Some(Err(BAD_PASSIVE))
        );
        assert_eq!(
            passive_port(229, b"229 (###1023#)\r\n"),
            Some(Err(LOW_SERVER_PORT))
        );
        assert_eq!(passive_port(229, b"229 x (%%%31000%)\r\n"), Some(Ok(31000)));
    }
}
