//! The peer's sessions as it last copied them: one slot per session, up
//! to our own `-m` (a pair runs with the same limits). A slot keeps its
//! buffer when its session ends, so the steady state allocates nothing;
//! a buffer grows only past the largest copy that slot has held.

use super::repair::TcpEnd;
use crate::handover::wire::Reader;
use std::net::IpAddr;
use std::time::Instant;

pub struct Copy {
    /// The peer's id of the session; 0: the slot is free.
    pub id: u64,
    pub received: Instant,
    /// Since when one of its addresses is ours: it is to be taken over.
    pub wanted: Option<Instant>,
    /// Client end, server end, session record (see `crate::ha`).
    pub bytes: Vec<u8>,
}

impl Copy {
    /// The local addresses of its two connection ends.
    fn locals(&self) -> Option<(IpAddr, IpAddr)> {
        let mut r = Reader::new(self.bytes.get(8..)?);
        let client = TcpEnd::load(&mut r)?;
        let server = TcpEnd::load(&mut r)?;
        Some((client.local.ip(), server.local.ip()))
    }
}

/// The session id a Session or End frame's body starts with.
pub fn id_of(body: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(body.get(..8)?.try_into().ok()?))
}

pub struct Standby {
    slots: Vec<Copy>,
    /// A copy found no free slot (logged once per link).
    pub full_logged: bool,
}

impl Standby {
    pub fn new(n: usize, now: Instant) -> Standby {
        Standby {
            slots: (0..n)
                .map(|_| Copy {
                    id: 0,
                    received: now,
                    wanted: None,
                    bytes: Vec::new(),
                })
                .collect(),
            full_logged: false,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|c| c.id != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a Session frame's body (its id first). False: no room.
    pub fn put(&mut self, body: &[u8], now: Instant) -> bool {
        let Some(id) = id_of(body).filter(|&id| id != 0) else {
            return true;
        };
        let k = match self.slots.iter().position(|c| c.id == id) {
            Some(k) => k,
            None => match self.slots.iter().position(|c| c.id == 0) {
                Some(k) => k,
                None => return false,
            },
        };
        let c = &mut self.slots[k];
        c.id = id;
        c.received = now;
        c.bytes.clear();
        c.bytes.extend_from_slice(body);
        true
    }

    pub fn remove(&mut self, id: u64) {
        for c in self.slots.iter_mut().filter(|c| c.id == id) {
            c.id = 0;
            c.wanted = None;
        }
    }

    pub fn clear(&mut self) {
        for c in &mut self.slots {
            c.id = 0;
            c.wanted = None;
        }
        self.full_logged = false;
    }

    /// `ip` is ours now: every copy with an end on it is to be taken
    /// over. How many.
    pub fn want_on(&mut self, ip: IpAddr, now: Instant) -> usize {
        let mut n = 0;
        for c in self
            .slots
            .iter_mut()
            .filter(|c| c.id != 0 && c.wanted.is_none())
        {
            if c.locals().is_some_and(|(a, b)| a == ip || b == ip) {
                c.wanted = Some(now);
                n += 1;
            }
        }
        n
    }

    pub fn any_wanted(&self) -> bool {
        self.slots.iter().any(|c| c.id != 0 && c.wanted.is_some())
    }

    /// Slots to take over.
    pub fn wanted(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.slots.len()).filter(|&k| self.slots[k].id != 0 && self.slots[k].wanted.is_some())
    }

    pub fn get(&self, k: usize) -> &Copy {
        &self.slots[k]
    }

    /// Frees slot `k` (taken over, or given up).
    pub fn free(&mut self, k: usize) {
        if let Some(c) = self.slots.get_mut(k) {
            c.id = 0;
            c.wanted = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handover::wire::Writer;

    /// A Session frame's body with ends on `client_local` and
    /// `server_local` (the record itself does not matter here).
    fn body(id: u64, client_local: &str, server_local: &str) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        w.u64(id);
        for (local, peer) in [
            (client_local, "198.18.1.2:40000"),
            (server_local, "198.19.2.2:21"),
        ] {
            let mut b = [0u8; 128];
            let mut e = Writer::new(&mut b);
            e.addr(local.parse().unwrap());
            e.addr(peer.parse().unwrap());
            for _ in 0..3 {
                e.u32(1);
            }
            for _ in 0..3 {
                e.u8(0);
            }
            for _ in 0..6 {
                e.u32(0);
            }
            e.blob(b"");
            e.blob(b"");
            w.bytes(e.written().unwrap());
        }
        w.written().unwrap().to_vec()
    }

    #[test]
    fn copies_come_and_go_and_are_wanted_by_address() {
        let now = Instant::now();
        let mut s = Standby::new(2, now);
        assert!(s.put(&body(5, "198.18.1.1:8021", "198.19.2.1:40001"), now));
        assert!(s.put(&body(6, "198.18.1.1:8021", "198.19.2.1:40002"), now));
        // An update takes its own slot; a third session finds none.
        assert!(s.put(&body(5, "198.18.1.1:8021", "198.19.2.1:40001"), now));
        assert!(!s.put(&body(7, "198.18.1.1:8021", "198.19.2.1:40003"), now));
        assert_eq!(s.len(), 2);
        assert_eq!(s.want_on("198.18.7.7".parse().unwrap(), now), 0);
        assert_eq!(s.want_on("198.19.2.1".parse().unwrap(), now), 2);
        // Wanted once only.
        assert_eq!(s.want_on("198.18.1.1".parse().unwrap(), now), 0);
        assert_eq!(s.wanted().count(), 2);
        s.remove(5);
        assert_eq!(s.wanted().collect::<Vec<_>>(), [1]);
        s.clear();
        assert!(s.is_empty() && !s.any_wanted());
        // Short or id-less bodies are no copy.
        assert!(s.put(&[1, 2], now) && s.put(&[0; 8], now) && s.is_empty());
    }
}
