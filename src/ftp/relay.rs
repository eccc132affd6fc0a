//! The server-to-client stream, as one piece: which line ends a reply,
//! which inner line must be padded so no client reads it as one, when a
//! long line has really ended, which reply answers which command, and
//! when a refusal the proxy made up may go out.
//!
//! Clients end a reply in different places: curl at any line that starts
//! `ddd ` whatever its code, ftplib at the line with the opening code.
//! So the proxy relays a line that starts with a digit only when it is
//! a reply's first or final line by RFC 959's rule; any other such line
//! gets one space in front, the padding RFC 959 4.2 asks servers for.
//! Padding rather than refusing keeps replies like STAT listings whole
//! (their lines may start with digits) and costs one byte. Inner lines
//! `ddd-` with the opening code are left as they are: many servers write
//! every line that way, and no client takes `ddd-` as a last line.
//!
//! A proxy-made refusal goes out only between replies: after the server
//! has answered every command sent before it, and never while a
//! multi-line reply is open or a line longer than a buffer is under way.

use super::command::is_security_feature;
use super::inflight::InFlight;
pub use super::inflight::Sent;
use super::line::Frame;
use super::policy::{self, Refusal};
use super::reply::{Kind, ReplyFramer};
use crate::handover::wire::{Reader, Writer};

/// What to do with one frame of the server's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Relay it unchanged.
    Relay,
    /// Relay it with one space in front: an inner line that starts with
    /// a digit.
    Pad,
    /// Relay nothing (the rest of a long reply already replaced).
    Drop,
    /// A 227/229 answering the client's PASV/EPSV: the proxy writes its
    /// own reply for the server's `port`, or refuses.
    Passive { extended: bool, port: u16 },
    /// Send the refusal `with` in place of the server's reply `code`.
    Replace { with: Refusal, code: u16 },
    /// The server does not know an EPSV or EPRT (its reply `code` is
    /// dropped): send it `instead`, whose reply the client gets.
    Retry { instead: Retry, code: u16 },
}

/// The older command tried in place of a refused extended one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// PASV for EPSV: its 227 reaches the client as a 229.
    Pasv,
    /// PORT for the proxy's EPRT, with the same proxy port.
    Port,
}

impl Retry {
    /// What the retried command is in flight.
    pub fn sent(self) -> Sent {
        match self {
            Retry::Pasv => Sent::PasvForEpsv,
            Retry::Port => Sent::Other,
        }
    }

    /// The refused verb and the one sent in its place, for the log.
    pub fn verbs(self) -> (&'static str, &'static str) {
        match self {
            Retry::Pasv => ("EPSV", "PASV"),
            Retry::Port => ("EPRT", "PORT"),
        }
    }
}

/// Replies that say a command is not known (RFC 959: 500 unrecognised,
/// 501 bad arguments, 502 not implemented): an old server's answer to
/// EPSV or EPRT, and worth trying PASV or PORT for. Any other refusal
/// (a 425, a 530) would be the same for those.
fn not_known(code: u16) -> bool {
    matches!(code, 500..=502)
}

/// A server line longer than a line buffer, in pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Long {
    None,
    Relaying,
    /// A passive reply the proxy must read whole and cannot.
    Dropping,
}

pub struct ReplyRelay {
    framer: ReplyFramer,
    long: Long,
    /// Commands forwarded and not yet answered (the greeting first).
    in_flight: InFlight,
    /// A refusal waiting for its turn. No command is taken while one
    /// waits, so one place is enough.
    held: Option<Refusal>,
    /// A final reply has been seen: the greeting is over.
    greeted: bool,
}

impl Default for ReplyRelay {
    fn default() -> Self {
        ReplyRelay {
            framer: ReplyFramer::default(),
            long: Long::None,
            in_flight: InFlight::greeting(),
            held: None,
            greeted: false,
        }
    }
}

impl ReplyRelay {
    pub fn save(&self, w: &mut Writer) {
        self.framer.save(w);
        w.u8(self.long as u8);
        self.in_flight.save(w);
        let held = self
            .held
            .and_then(|h| policy::ALL.iter().position(|r| *r == h));
        w.opt_u32(held);
        w.bool(self.greeted);
    }

    pub fn load(r: &mut Reader) -> Option<ReplyRelay> {
        Some(ReplyRelay {
            framer: ReplyFramer::load(r)?,
            long: match r.u8()? {
                0 => Long::None,
                1 => Long::Relaying,
                2 => Long::Dropping,
                _ => return None,
            },
            in_flight: InFlight::load(r)?,
            held: r.opt_u32(policy::ALL.len())?.map(|i| policy::ALL[i]),
            greeted: r.bool()?,
        })
    }
}

/// Whether a line the framer did not read as a first or final line
/// could be taken for one by some client. `open`: the code of the
/// multi-line reply it sits in.
fn confusable(line: &[u8], open: Option<u16>) -> bool {
    let Some(first) = line.first() else {
        return false;
    };
    if !first.is_ascii_digit() {
        return false;
    }
    match (open, line) {
        (Some(code), [a, b, c, b'-', ..]) => {
            let own = [
                b'0' + (code / 100) as u8,
                b'0' + (code / 10 % 10) as u8,
                b'0' + (code % 10) as u8,
            ];
            [*a, *b, *c] != own
        }
        _ => true,
    }
}

impl ReplyRelay {
    /// No command more may be forwarded: too many in flight, or a
    /// refusal waits.
    pub fn is_full(&self) -> bool {
        self.in_flight.is_full() || self.held.is_some()
    }

    /// A command was sent to the server.
    pub fn forwarded(&mut self, kind: Sent) {
        self.in_flight.push(kind);
    }

    /// Between replies: nothing sent before is unanswered, no multi-line
    /// reply is open and no long line is under way.
    pub fn at_boundary(&self) -> bool {
        self.in_flight.is_empty() && !self.framer.in_multiline() && self.long == Long::None
    }

    /// Inside a line the client is still receiving.
    pub fn mid_line(&self) -> bool {
        self.long == Long::Relaying
    }

    pub fn greeted(&self) -> bool {
        self.greeted
    }

    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// The client is to get `r` for a command instead of the server's
    /// reply: returned when it may go out now, else held for `take_held`.
    pub fn refuse(&mut self, r: Refusal) -> Option<Refusal> {
        match self.at_boundary() && self.held.is_none() {
            true => Some(r),
            false => {
                self.held = Some(r);
                None
            }
        }
    }

    /// The held refusal, once its turn has come.
    pub fn take_held(&mut self) -> Option<Refusal> {
        match self.at_boundary() {
            true => self.held.take(),
            false => None,
        }
    }

    /// A final reply answers the oldest command in flight (1xx replies
    /// are preliminary and answer nothing).
    fn answered(&mut self, code: u16) -> Option<Sent> {
        self.greeted = true;
        match code {
            200.. => self.in_flight.answer(),
            _ => None,
        }
    }

    /// Decides about the next frame of the server's stream; `bytes` are
    /// the frame's bytes.
    pub fn frame(&mut self, f: Frame, bytes: &[u8]) -> Action {
        match f {
            Frame::Partial => Action::Drop,
            Frame::Line(_) => self.line(bytes),
            Frame::LongStart(_) => self.long_start(bytes),
            Frame::LongMore(_) | Frame::LongEnd(_) => {
                let action = match self.long {
                    Long::Dropping => Action::Drop,
                    _ => Action::Relay,
                };
                if let Frame::LongEnd(_) = f {
                    self.long = Long::None;
                }
                action
            }
        }
    }

    /// The relay of a line that is neither a final nor a passive reply.
    fn plain(&self, line: &[u8], kind: Option<Kind>, open: Option<u16>) -> Action {
        match kind {
            Some(Kind::Final(_) | Kind::Opens(_)) => Action::Relay,
            _ if confusable(line, open) => Action::Pad,
            _ => Action::Relay,
        }
    }

    fn line(&mut self, line: &[u8]) -> Action {
        let open = self.framer.open_code();
        let kind = self.framer.classify(line);
        let Some(Kind::Final(code)) = kind else {
            if kind == Some(Kind::Inner)
                && self.in_flight.oldest() == Some(Sent::Feat)
                && is_security_feature(line)
            {
                return Action::Drop;
            }
            return self.plain(line, kind, open);
        };
        let answered = self.answered(code);
        match (answered, policy::passive_port(code, line)) {
            (Some(Sent::Epsv), _) if not_known(code) => Action::Retry {
                instead: Retry::Pasv,
                code,
            },
            (Some(Sent::Eprt), _) if not_known(code) => Action::Retry {
                instead: Retry::Port,
                code,
            },
            (Some(asked), Some(Ok(port))) if asked.asks_passive() => Action::Passive {
                extended: code == 229 || asked == Sent::PasvForEpsv,
                port,
            },
            (Some(asked), Some(Err(with))) if asked.asks_passive() => {
                Action::Replace { with, code }
            }
            // Only a PASV/EPSV the client sent opens a data mapping.
            (_, Some(_)) => Action::Replace {
                with: policy::UNSOLICITED_PASSIVE,
                code,
            },
            (_, None) => Action::Relay,
        }
    }

    /// The first piece of a line longer than a buffer: relayed as it
    /// comes, unless it is a passive reply, which is replaced.
    fn long_start(&mut self, piece: &[u8]) -> Action {
        let open = self.framer.open_code();
        let kind = self.framer.classify(piece);
        if let Some(Kind::Final(code)) = kind {
            let answered = self.answered(code);
            if matches!(code, 227 | 229) {
                self.long = Long::Dropping;
                let with = match answered.is_some_and(Sent::asks_passive) {
                    true => policy::BAD_PASSIVE,
                    false => policy::UNSOLICITED_PASSIVE,
                };
                return Action::Replace { with, code };
            }
        }
        self.long = Long::Relaying;
        self.plain(piece, kind, open)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_held_refusal_and_commands_in_flight_cross_a_handover() {
        use crate::handover::wire::{Reader, Writer};
        let mut r = ReplyRelay::default();
        r.forwarded(Sent::Passive);
        assert_eq!(
            r.refuse(policy::LOW_PORT),
            None,
            "held behind the greeting and PASV"
        );
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        r.save(&mut w);
        let n = w.written().expect("fits").len();
        let mut back = ReplyRelay::load(&mut Reader::new(&buf[..n])).expect("relay");
        assert!(back.holding());
        assert_eq!(back.in_flight, r.in_flight);
        assert_eq!(back.held, Some(policy::LOW_PORT));
        assert_eq!(back.take_held(), None, "still behind the replies in flight");
        // An index past the refusal table is refused, not trusted.
        buf[n - 5..n - 1].copy_from_slice(&(policy::ALL.len() as u32).to_le_bytes());
        assert!(ReplyRelay::load(&mut Reader::new(&buf[..n])).is_none());
    }

    use super::*;
    use crate::ftp::line::LineBuf;
    use crate::ftp::MAX_LINE;

    /// Runs `server` through a relay that has `commands` in flight
    /// (true: PASV) and a refusal held for the next one; returns what the
    /// client receives, the refusal written as `<R>`.
    fn client_sees(commands: &[Sent], server: &[u8]) -> String {
        let mut r = ReplyRelay::default();
        let mut out = Vec::new();
        let mut lb = LineBuf::<MAX_LINE>::default();
        for &p in commands {
            r.forwarded(p);
        }
        let mut refused = r.refuse(policy::TLS);
        let mut fed = 0;
        loop {
            if refused.take().is_some() || r.take_held().is_some() {
                out.extend_from_slice(b"<R>");
            }
            fed += lb.extend(&server[fed..]);
            let f = lb.frame();
            if f == Frame::Partial {
                break;
            }
            let bytes = lb.head(f.span());
            match r.frame(f, bytes) {
                Action::Relay => out.extend_from_slice(bytes),
                Action::Pad => {
                    out.push(b' ');
                    out.extend_from_slice(bytes);
                }
                Action::Drop => {}
                Action::Passive { port, .. } => out.extend(format!("<P{port}>").bytes()),
                Action::Replace { code, .. } => out.extend(format!("<X{code}>").bytes()),
                Action::Retry { instead, code } => {
                    out.extend(format!("<{instead:?} for {code}>").bytes());
                    r.forwarded(instead.sent());
                }
            }
            lb.advance(f);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn inner_lines_that_look_like_replies_are_padded() {
        // The greeting answers nothing here: start after it.
        let seen = client_sees(
            &[Sent::Other],
            b"220 hi\r\n211-status\r\n229 Entering Extended Passive Mode (|||51210|)\r\n211 end\r\n",
        );
        assert_eq!(
            seen,
            "220 hi\r\n211-status\r\n 229 Entering Extended Passive Mode (|||51210|)\r\n211 end\r\n<R>"
        );
        // Same-code continuation lines stay; other digits are padded.
        let seen = client_sees(
            &[],
            b"220-a\r\n220-b\r\n227-c\r\n1 file\r\n x\r\n220 ready\r\n",
        );
        assert_eq!(
            seen,
            "220-a\r\n220-b\r\n 227-c\r\n 1 file\r\n x\r\n220 ready\r\n<R>"
        );
        // Outside a reply, a line with digits that is no reply is padded.
        let seen = client_sees(&[], b"220 hi\r\n699 odd\r\nhello\r\n");
        assert_eq!(seen, "220 hi\r\n<R> 699 odd\r\nhello\r\n");
    }

    #[test]
    fn a_refusal_waits_for_the_end_of_a_long_reply() {
        let long = format!("220 hi\r\n200 {}\r\n250 next\r\n", "x".repeat(1000));
        let seen = client_sees(&[Sent::Other], long.as_bytes());
        let want = format!("220 hi\r\n200 {}\r\n<R>250 next\r\n", "x".repeat(1000));
        assert_eq!(seen, want);
        // An unsolicited multi-line reply holds it too.
        let seen = client_sees(&[], b"220 hi\r\n");
        assert_eq!(seen, "220 hi\r\n<R>");
        let mut r = ReplyRelay::default();
        assert_eq!(r.frame(Frame::Line(8), b"220 hi\r\n"), Action::Relay);
        assert_eq!(r.frame(Frame::Line(6), b"211-x\n"), Action::Relay);
        assert_eq!(r.refuse(policy::TLS), None, "inside a reply");
        assert!(r.is_full() && r.take_held().is_none());
        assert_eq!(r.frame(Frame::Line(6), b"211 y\n"), Action::Relay);
        assert_eq!(r.take_held(), Some(policy::TLS));
        assert!(!r.is_full());
    }

    #[test]
    fn passive_replies_only_answer_passive_commands() {
        let seen = client_sees(
            &[Sent::Other, Sent::Passive, Sent::Other],
            b"220 hi\r\n227 (198,18,0,1,200,1)\r\n227 (198,18,0,1,200,2)\r\n229 (|||5000|)\r\n",
        );
        assert_eq!(seen, "220 hi\r\n<X227><P51202><X229><R>");
        let long = format!("220 hi\r\n229 {}(|||5000|)\r\n200 ok\r\n", "z".repeat(600));
        let seen = client_sees(&[Sent::Passive], long.as_bytes());
        assert_eq!(seen, "220 hi\r\n<X229><R>200 ok\r\n");
    }

    #[test]
    fn an_epsv_or_eprt_the_server_does_not_know_is_tried_the_old_way() {
        // 500 to EPSV: PASV instead, its 227 told as a 229.
        let seen = client_sees(
            &[Sent::Epsv],
            b"220 hi\r\n500 EPSV not understood\r\n227 (198,19,2,2,117,48)\r\n",
        );
        assert_eq!(seen, "220 hi\r\n<Pasv for 500><P30000><R>");
        let mut r = ReplyRelay::default();
        r.forwarded(Sent::Epsv);
        assert!(r.is_full(), "no command passes an EPSV that may fall back");
        assert_eq!(r.frame(Frame::Line(8), b"220 hi\r\n"), Action::Relay);
        assert_eq!(
            r.frame(Frame::Line(10), b"227 (198,19,2,2,117,48)\r\n"),
            Action::Passive {
                extended: false,
                port: 30000
            },
            "an EPSV answered with a 227 is no refusal"
        );
        for code in ["501", "502"] {
            let reply = format!("220 hi\r\n{code} no\r\n200 PORT ok\r\n");
            let seen = client_sees(&[Sent::Eprt], reply.as_bytes());
            assert_eq!(
                seen,
                format!("220 hi\r\n<Port for {code}>200 PORT ok\r\n<R>")
            );
        }
        // Other refusals, and EPSV that may not fall back, reach the client.
        let seen = client_sees(&[Sent::Epsv], b"220 hi\r\n425 no\r\n");
        assert_eq!(seen, "220 hi\r\n425 no\r\n<R>");
        let seen = client_sees(&[Sent::Passive], b"220 hi\r\n500 no\r\n");
        assert_eq!(seen, "220 hi\r\n500 no\r\n<R>");
        // The proxy's PASV refused in turn: that refusal is relayed.
        let seen = client_sees(&[Sent::PasvForEpsv], b"220 hi\r\n500 no\r\n");
        assert_eq!(seen, "220 hi\r\n500 no\r\n<R>");
        // Malformed replies to the fallback PASV: a 425, never an address.
        let seen = client_sees(&[Sent::Epsv], b"220 hi\r\n502 x\r\n227 Logout.\r\n");
        assert_eq!(seen, "220 hi\r\n<Pasv for 502><X227><R>");
    }

    #[test]
    fn tls_features_are_not_offered() {
        let feat = b"220 hi\r\n211-Features:\r\n AUTH TLS\r\n MDTM\r\n PBSZ\r\n PROT\r\n REST STREAM\r\n211 End\r\n";
        let seen = client_sees(&[Sent::Feat], feat);
        assert_eq!(
            seen,
            "220 hi\r\n211-Features:\r\n MDTM\r\n REST STREAM\r\n211 End\r\n<R>"
        );
        // The same lines in any other reply (a HELP, a STAT) stay.
        let seen = client_sees(&[Sent::Other], feat);
        assert!(seen.contains(" AUTH TLS\r\n") && seen.contains(" PROT\r\n"));
        // One-line FEAT replies and refusals pass as they are.
        let seen = client_sees(
            &[Sent::Feat, Sent::Other],
            b"220 hi\r\n211 no features\r\n500 x\r\n",
        );
        assert_eq!(seen, "220 hi\r\n211 no features\r\n500 x\r\n<R>");
    }
}
