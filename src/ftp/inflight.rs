//! Commands sent to the server and not yet answered, oldest first.
//!
//! Every command gets exactly one final reply (2xx–5xx; 1xx replies are
//! preliminary), in order (RFC 959 4.2). Counting them tells the session
//! two things: when a reply it makes up itself may go to the client
//! without overtaking the server's replies to earlier commands, and
//! whether a 227/229 answers a PASV/EPSV at all.

/// Most commands the proxy lets a client have in flight to the server:
/// a client that pipelines more waits (its bytes stay in the kernel).
pub const MAX_IN_FLIGHT: u8 = 64;

/// What a final reply answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// The greeting, or a command other than PASV/EPSV.
    Other,
    /// A PASV or EPSV: its 227/229 is the one to rewrite.
    Passive,
    /// Nothing was waiting: a reply nobody asked for (a 421 before the
    /// server hangs up, or a confused or hostile server).
    Nothing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    len: u8,
    /// Bit i: the i-th oldest command is a PASV/EPSV.
    passive: u64,
}

impl InFlight {
    /// A new connection: the server's greeting is awaited like a reply.
    pub fn greeting() -> InFlight {
        InFlight { len: 1, passive: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len >= MAX_IN_FLIGHT
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    /// A command was forwarded; false (and nothing counted) when full.
    pub fn push(&mut self, passive: bool) -> bool {
        if self.is_full() {
            return false;
        }
        self.passive |= u64::from(passive) << self.len;
        self.len += 1;
        true
    }

    /// A final reply arrived: it answers the oldest command in flight.
    pub fn answer(&mut self) -> Answered {
        if self.len == 0 {
            return Answered::Nothing;
        }
        let passive = self.passive & 1 != 0;
        self.passive >>= 1;
        self.len -= 1;
        match passive {
            true => Answered::Passive,
            false => Answered::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_answer_commands_in_order() {
        let mut f = InFlight::greeting();
        assert!(f.push(false)); // USER
        assert!(f.push(true)); // PASV
        assert!(f.push(false)); // LIST
        assert_eq!(f.answer(), Answered::Other); // 220
        assert_eq!(f.answer(), Answered::Other); // 331
        assert_eq!(f.answer(), Answered::Passive); // 227
        assert!(!f.is_empty());
        assert_eq!(f.answer(), Answered::Other); // 226
        assert!(f.is_empty());
        assert_eq!(f.answer(), Answered::Nothing, "unsolicited");
        assert!(f.is_empty());
    }

    #[test]
    fn bounded() {
        let mut f = InFlight::greeting();
        for i in 1..MAX_IN_FLIGHT {
            assert!(f.push(i % 2 == 0), "{i}");
        }
        assert!(f.is_full());
        assert!(!f.push(true));
        assert_eq!(f.len(), MAX_IN_FLIGHT);
        assert_eq!(f.answer(), Answered::Other);
        for i in 1..MAX_IN_FLIGHT {
            let want = match i % 2 == 0 {
                true => Answered::Passive,
                false => Answered::Other,
            };
            assert_eq!(f.answer(), want, "{i}");
        }
        assert!(f.is_empty());
    }
}
