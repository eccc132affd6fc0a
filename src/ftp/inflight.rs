//! Commands sent to the server and not yet answered, oldest first, each
//! with what its reply means to the proxy.
//!
//! Every command gets exactly one final reply (2xx–5xx; 1xx replies are
//! preliminary), in order (RFC 959 4.2). Counting them tells the session
//! when a reply it makes up itself may go to the client without
//! overtaking the server's replies to earlier commands; their kinds tell
//! whether a 227/229 answers a PASV/EPSV at all, whether a refusal is one
//! the proxy answers by trying the older command, and which reply lists
//! features.

use crate::handover::wire::{Reader, Writer};

/// Most commands the proxy lets a client have in flight to the server:
/// a client that pipelines more waits (its bytes stay in the kernel).
pub const MAX_IN_FLIGHT: u8 = 64;

/// A command in flight, as far as its reply matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The greeting, or any command whose reply is relayed as it is.
    Other,
    /// PASV, or an EPSV that may not fall back: its 227/229 is rewritten.
    Passive,
    /// An EPSV of an IPv4 session: refused, PASV is tried in its place.
    Epsv,
    /// The proxy's PASV in place of a refused EPSV: its 227 reaches the
    /// client as a 229.
    PasvForEpsv,
    /// The proxy's EPRT of an IPv4 session: refused, PORT is tried.
    Eprt,
    /// FEAT: the TLS features of its reply are removed.
    Feat,
}

impl Sent {
    const ALL: [Sent; 6] = [
        Sent::Other,
        Sent::Passive,
        Sent::Epsv,
        Sent::PasvForEpsv,
        Sent::Eprt,
        Sent::Feat,
    ];

    /// Whether its refusal is answered by another command: nothing the
    /// client sends may go to the server before that is settled.
    pub fn may_retry(self) -> bool {
        matches!(self, Sent::Epsv | Sent::Eprt)
    }

    /// Whether it asked for passive mode: its 227/229 is the one to
    /// rewrite (any other is unsolicited).
    pub fn asks_passive(self) -> bool {
        matches!(self, Sent::Passive | Sent::Epsv | Sent::PasvForEpsv)
    }
}

/// Bits per kind, kept in planes: bit i of plane b is bit b of the i-th
/// oldest command's kind.
const PLANES: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    len: u8,
    planes: [u64; PLANES],
}

impl InFlight {
    pub fn save(&self, w: &mut Writer) {
        w.u8(self.len);
        for p in self.planes {
            w.u64(p);
        }
    }

    pub fn load(r: &mut Reader) -> Option<InFlight> {
        let len = r.u8()?;
        let mut planes = [0; PLANES];
        for p in &mut planes {
            *p = r.u64()?;
        }
        let f = InFlight { len, planes };
        // Every slot's kind one of `Sent::ALL`, and no bit past the last.
        let used = |p: &u64| len >= 64 || p >> len == 0;
        let known = (0..len).all(|i| (f.code(i) as usize) < Sent::ALL.len());
        (len <= MAX_IN_FLIGHT && planes.iter().all(used) && known).then_some(f)
    }

    /// A new connection: the server's greeting is awaited like a reply.
    pub fn greeting() -> InFlight {
        InFlight {
            len: 1,
            planes: [0; PLANES],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No command more may be sent: too many in flight, or the newest
    /// waits to see whether it must be tried again another way.
    pub fn is_full(&self) -> bool {
        self.len >= MAX_IN_FLIGHT || self.newest().is_some_and(Sent::may_retry)
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    fn code(&self, i: u8) -> u64 {
        (0..PLANES).fold(0, |c, b| c | (((self.planes[b] >> i) & 1) << b))
    }

    fn at(&self, i: u8) -> Sent {
        let code = self.code(i);
        Sent::ALL.get(code as usize).copied().unwrap_or(Sent::Other)
    }

    /// The command the next final reply answers.
    pub fn oldest(&self) -> Option<Sent> {
        (self.len > 0).then(|| self.at(0))
    }

    fn newest(&self) -> Option<Sent> {
        self.len.checked_sub(1).map(|i| self.at(i))
    }

    /// A command was sent; false (and nothing counted) when no more fit.
    pub fn push(&mut self, kind: Sent) -> bool {
        if self.len >= MAX_IN_FLIGHT {
            return false;
        }
        let code = kind as u64;
        for (b, plane) in self.planes.iter_mut().enumerate() {
            *plane |= ((code >> b) & 1) << self.len;
        }
        self.len += 1;
        true
    }

    /// A final reply arrived: it answers the oldest command in flight
    /// (None: nothing was waiting, a reply nobody asked for, such as a
    /// 421 before the server hangs up).
    pub fn answer(&mut self) -> Option<Sent> {
        let oldest = self.oldest()?;
        for plane in &mut self.planes {
            *plane >>= 1;
        }
        self.len -= 1;
        Some(oldest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_answer_commands_in_order() {
        let mut f = InFlight::greeting();
        assert!(f.push(Sent::Other)); // USER
        assert!(f.push(Sent::Passive)); // PASV
        assert!(f.push(Sent::Feat)); // FEAT
        assert_eq!(f.answer(), Some(Sent::Other)); // 220
        assert_eq!(f.answer(), Some(Sent::Other)); // 331
        assert_eq!(f.oldest(), Some(Sent::Passive));
        assert_eq!(f.answer(), Some(Sent::Passive)); // 227
        assert!(!f.is_empty());
        assert_eq!(f.answer(), Some(Sent::Feat)); // 211
        assert!(f.is_empty());
        assert_eq!(f.answer(), None, "unsolicited");
        assert!(f.is_empty());
    }

    #[test]
    fn a_command_that_may_be_retried_holds_the_next() {
        let mut f = InFlight::greeting();
        assert!(f.push(Sent::Epsv));
        assert!(f.is_full(), "nothing may pass an EPSV that may fall back");
        assert_eq!(f.answer(), Some(Sent::Other));
        assert!(f.is_full());
        assert_eq!(f.answer(), Some(Sent::Epsv));
        assert!(f.push(Sent::PasvForEpsv));
        assert!(!f.is_full(), "the PASV itself is final");
        assert!(f.push(Sent::Eprt));
        assert!(f.is_full());
    }

    #[test]
    fn bounded_and_every_kind_kept() {
        let mut f = InFlight::greeting();
        let kind = |i: u8| Sent::ALL[usize::from(i) % Sent::ALL.len()];
        // No retriable kind here: they hold the queue (tested above).
        let kind = |i: u8| match kind(i) {
            k if k.may_retry() => Sent::Other,
            k => k,
        };
        for i in 1..MAX_IN_FLIGHT {
            assert!(f.push(kind(i)), "{i}");
        }
        assert!(f.is_full());
        assert!(!f.push(Sent::Passive));
        assert_eq!(f.len(), MAX_IN_FLIGHT);
        assert_eq!(f.answer(), Some(Sent::Other));
        for i in 1..MAX_IN_FLIGHT {
            assert_eq!(f.answer(), Some(kind(i)), "{i}");
        }
        assert!(f.is_empty());
    }
}
