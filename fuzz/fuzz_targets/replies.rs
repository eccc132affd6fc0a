//! The server-to-client stream (`ftp::relay`) as a session drives it:
//! server bytes in reads of any size, client commands forwarded or
//! refused in between. Checked against a reference framer written here
//! from RFC 959, not the proxy's:
//! - every byte the client gets is the server's, unchanged and in order,
//!   or written by the proxy (its replies, one pad space before a line);
//!   a long line is relayed whole or replaced whole;
//! - no line the client gets starts with a digit unless it is a reply's
//!   first line, a same-code continuation, a final line, or the proxy's;
//! - a refusal goes out only between replies, never inside a multi-line
//!   reply or a long line;
//! - a refusal goes out only after the finals of every command sent
//!   before it;
//! - only a 500/501/502 to an EPSV or EPRT is retried (and nothing of it
//!   reaches the client); only a TLS feature inside a reply is dropped.
#![no_main]

use ftp_proxy::ftp::line::{Frame, LineBuf};
use ftp_proxy::ftp::policy;
use ftp_proxy::ftp::relay::{Action, ReplyRelay, Sent};
use ftp_proxy::ftp::{write, MAX_LINE};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::net::IpAddr;

const FORWARD: u8 = 0xf0;
const FORWARD_PASV: u8 = 0xf1;
const REFUSE: u8 = 0xf2;
const FORWARD_EPSV: u8 = 0xf3;
const FORWARD_EPRT: u8 = 0xf4;
const FORWARD_FEAT: u8 = 0xf5;

/// What the reference framer makes of a line's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ref {
    Final(u16),
    Opener,
    /// `ddd-` with the open reply's code.
    Continuation,
    Inner,
    /// Outside any reply and not a reply.
    Junk,
}

/// Where a byte the client received came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Proxy,
    Pad,
    /// The first byte of a server line.
    Server(Ref),
    ServerMore,
}

#[derive(Default)]
struct RefFramer {
    open: Option<[u8; 3]>,
}

impl RefFramer {
    fn classify(&mut self, start: &[u8]) -> Ref {
        let mut l = start;
        while let [rest @ .., b'\r' | b'\n'] = l {
            l = rest;
        }
        let is_code = l.len() >= 3
            && (b'1'..=b'5').contains(&l[0])
            && l[1].is_ascii_digit()
            && l[2].is_ascii_digit();
        let sep = l.get(3).copied();
        let code = || l[..3].iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
        match self.open {
            None if is_code && sep == Some(b'-') => {
                self.open = Some([l[0], l[1], l[2]]);
                Ref::Opener
            }
            None if is_code => Ref::Final(code()),
            None => Ref::Junk,
            Some(c) if is_code && l[..3] == c && matches!(sep, None | Some(b' ')) => {
                self.open = None;
                Ref::Final(code())
            }
            Some(c) if l.len() >= 4 && l[..3] == c && sep == Some(b'-') => Ref::Continuation,
            Some(_) => Ref::Inner,
        }
    }
}

struct Model {
    relay: ReplyRelay,
    lb: LineBuf<MAX_LINE>,
    reference: RefFramer,
    /// Everything the server sent, and how much of it the relay took.
    server: Vec<u8>,
    fed: usize,
    consumed: usize,
    chunk: usize,
    ops: VecDeque<u8>,
    /// Commands forwarded so far (the greeting counts as one).
    forwarded: usize,
    /// Finals (2xx–5xx) the reference saw.
    answers: usize,
    /// The finals a held refusal waits for.
    held_needs: usize,
    /// Inside a long line; whether its first piece went to the client.
    long: Option<bool>,
    out: Vec<u8>,
    tags: Vec<Tag>,
}

impl Model {
    fn emit(&mut self, bytes: &[u8], first: Tag, rest: Tag) {
        for (i, &b) in bytes.iter().enumerate() {
            self.out.push(b);
            self.tags.push(if i == 0 { first } else { rest });
        }
    }

    fn emit_refusal(&mut self, needs: usize) {
        assert!(
            self.reference.open.is_none() && self.long.is_none(),
            "a refusal inside a reply"
        );
        assert!(
            self.out.is_empty() || self.out.ends_with(b"\n"),
            "a refusal inside a line"
        );
        assert!(
            self.answers >= needs,
            "a refusal before the replies to earlier commands"
        );
        self.emit(b"534 refused\r\n", Tag::Proxy, Tag::Proxy);
    }

    fn frame(&mut self, f: Frame) {
        let n = f.span();
        let bytes = self.lb.head(n).to_vec();
        assert_eq!(&bytes[..], &self.server[self.consumed..self.consumed + n]);
        let kind = match f {
            Frame::Line(_) | Frame::LongStart(_) => {
                let k = self.reference.classify(&bytes);
                if let Ref::Final(c) = k {
                    self.answers += usize::from(c >= 200);
                }
                Some(k)
            }
            _ => None,
        };
        let action = self.relay.frame(f, &bytes);
        match (f, action) {
            (Frame::Line(_) | Frame::LongStart(_), Action::Relay) => {
                self.emit(&bytes, Tag::Server(kind.unwrap()), Tag::ServerMore)
            }
            (Frame::Line(_) | Frame::LongStart(_), Action::Pad) => {
                self.emit(b" ", Tag::Pad, Tag::Pad);
                self.emit(&bytes, Tag::Server(kind.unwrap()), Tag::ServerMore);
            }
            (Frame::Line(_) | Frame::LongStart(_), Action::Passive { extended, port }) => {
                assert!(matches!(f, Frame::Line(_)), "a long passive reply read");
                // A 229, or a 227 (to PASV, or told as a 229 to the EPSV
                // it stands in for).
                assert!(matches!(kind, Some(Ref::Final(227 | 229))), "{kind:?}");
                assert!(extended || kind == Some(Ref::Final(227)), "{kind:?}");
                assert!(port >= 1024);
                let mut line = [0u8; MAX_LINE];
                let proxy = IpAddr::from([198, 18, 0, 1]);
                let k = write::passive_reply(&mut line, proxy, 50000, extended).unwrap();
                self.emit(&line[..k], Tag::Proxy, Tag::Proxy);
            }
            (Frame::Line(_) | Frame::LongStart(_), Action::Replace { with, code }) => {
                assert!(matches!(code, 227 | 229));
                assert_eq!(kind, Some(Ref::Final(code)));
                assert!((400..600).contains(&with.code));
                self.emit(b"425 replaced\r\n", Tag::Proxy, Tag::Proxy);
            }
            (Frame::LongMore(_) | Frame::LongEnd(_), Action::Relay) => {
                assert_eq!(self.long, Some(true), "the tail of a replaced line");
                self.emit(&bytes, Tag::ServerMore, Tag::ServerMore);
            }
            (Frame::Line(_), Action::Retry { instead, code }) => {
                assert!(matches!(code, 500..=502), "retried after {code}");
                assert_eq!(kind, Some(Ref::Final(code)));
                // The session sends PASV or PORT in its place.
                self.relay.forwarded(instead.sent());
                self.forwarded += 1;
            }
            (Frame::Line(_), Action::Drop) => {
                assert_eq!(kind, Some(Ref::Inner), "dropped {bytes:?}");
                let word: Vec<u8> = bytes
                    .iter()
                    .skip_while(|&&b| b == b' ' || b == b'\t')
                    .take_while(|&&b| !matches!(b, b' ' | b'\r' | b'\n'))
                    .map(u8::to_ascii_uppercase)
                    .collect();
                assert!(
                    [&b"AUTH"[..], b"CCC", b"CONF", b"ENC", b"MIC", b"PBSZ", b"PROT", b"ADAT"]
                        .contains(&&word[..]),
                    "dropped {bytes:?}"
                );
            }
            (Frame::LongMore(_) | Frame::LongEnd(_), Action::Drop) => {
                assert_eq!(self.long, Some(false), "the tail of a relayed line dropped");
            }
            (f, a) => panic!("{a:?} for {f:?}"),
        }
        self.long = match (f, action) {
            (Frame::LongStart(_), Action::Replace { .. }) => Some(false),
            (Frame::LongStart(_), _) => Some(true),
            (Frame::LongEnd(_), _) => None,
            _ => self.long,
        };
        self.consumed += n;
        self.lb.advance(f);
    }

    /// What one turn of the session does, until nothing moves.
    fn step(&mut self) {
        loop {
            let mut progress = false;
            if self.relay.holding() && self.relay.take_held().is_some() {
                self.emit_refusal(self.held_needs);
                progress = true;
            }
            while let Some(&op) = self.ops.front() {
                if self.relay.is_full() {
                    break;
                }
                self.ops.pop_front();
                progress = true;
                match op {
                    REFUSE => {
                        let needs = self.forwarded;
                        match self.relay.refuse(policy::TLS) {
                            Some(_) => self.emit_refusal(needs),
                            None => self.held_needs = needs,
                        }
                    }
                    op => {
                        self.relay.forwarded(match op {
                            FORWARD_PASV => Sent::Passive,
                            FORWARD_EPSV => Sent::Epsv,
                            FORWARD_EPRT => Sent::Eprt,
                            FORWARD_FEAT => Sent::Feat,
                            _ => Sent::Other,
                        });
                        self.forwarded += 1;
                    }
                }
            }
            if self.fed < self.server.len() && !self.lb.is_full() {
                let end = (self.fed + self.chunk).min(self.server.len());
                self.fed += self.lb.extend(&self.server[self.fed..end]);
                progress = true;
            }
            loop {
                let f = self.lb.frame();
                if f == Frame::Partial {
                    break;
                }
                self.frame(f);
                progress = true;
            }
            if !progress {
                return;
            }
        }
    }

    /// No client line starts with a digit unless it may.
    fn check_lines(&self) {
        let mut start = 0;
        for (i, &b) in self.out.iter().enumerate() {
            if b != b'\n' {
                continue;
            }
            if self.out[start].is_ascii_digit() {
                match self.tags[start] {
                    Tag::Proxy
                    | Tag::Server(Ref::Final(_) | Ref::Opener | Ref::Continuation) => {}
                    t => panic!(
                        "confusable line {:?} ({t:?})",
                        String::from_utf8_lossy(&self.out[start..=i])
                    ),
                }
            }
            start = i + 1;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let mut m = Model {
        relay: ReplyRelay::default(),
        lb: LineBuf::default(),
        reference: RefFramer::default(),
        server: Vec::with_capacity(input.len()),
        fed: 0,
        consumed: 0,
        chunk: match ctl & 0x3f {
            0 => MAX_LINE,
            c => usize::from(c),
        },
        ops: VecDeque::new(),
        forwarded: 1,
        answers: 0,
        held_needs: 0,
        long: None,
        out: Vec::new(),
        tags: Vec::new(),
    };
    for &b in input {
        match b {
            FORWARD..=FORWARD_FEAT => {
                m.ops.push_back(b);
                m.step();
            }
            b => {
                m.server.push(b);
                if m.server.len() - m.fed >= m.chunk {
                    m.step();
                }
            }
        }
    }
    m.step();
    m.check_lines();
    // Everything framed was taken in order; what is left is one
    // unfinished line.
    assert_eq!(m.consumed + m.lb.pending().len(), m.server.len());
});
