//! Counters since start: what the status shows under "totals". Fixed
//! size: counting never allocates.

use crate::handover::wire::{Reader, Writer};

/// Why a client's connection was refused before a session began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    SessionLimit,
    PerClientLimit,
    /// Connected to the proxy itself, not redirected, without -R.
    NotRedirected,
    /// Transparent mode: a destination the proxy may not connect to.
    Destination,
    /// The proxy could not connect to the server.
    Unreachable,
}

impl Refused {
    pub const ALL: [Refused; 5] = [
        Refused::SessionLimit,
        Refused::PerClientLimit,
        Refused::NotRedirected,
        Refused::Destination,
        Refused::Unreachable,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Refused::SessionLimit => "session-limit",
            Refused::PerClientLimit => "per-client-limit",
            Refused::NotRedirected => "not-redirected",
            Refused::Destination => "destination",
            Refused::Unreachable => "unreachable",
        }
    }
}

/// Bytes and connections of data connections (conntrack's counters: IP
/// bytes, headers included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub connections: u64,
    pub to_client: u64,
    pub to_server: u64,
}

impl Moved {
    pub fn add(&mut self, bytes: Option<(u64, u64)>) {
        self.connections += 1;
        if let Some((to_client, to_server)) = bytes {
            self.to_client = self.to_client.saturating_add(to_client);
            self.to_server = self.to_server.saturating_add(to_server);
        }
    }
}

/// Distinct refusal reasons of `ftp::policy`, with room to spare.
const COMMAND_KEYS: usize = 24;

#[derive(Debug, Default)]
pub struct Totals {
    pub sessions: u64,
    refused: [u64; Refused::ALL.len()],
    /// Refused commands and replies by `Refusal::key`, in first-seen order.
    commands: heapless::Vec<(&'static str, u64), COMMAND_KEYS>,
    /// Data connections negotiated (mappings installed).
    pub negotiated: u64,
    pub moved: Moved,
}

impl Totals {
    pub fn refuse(&mut self, why: Refused) {
        self.refused[why as usize] += 1;
    }

    pub fn refused(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Refused::ALL
            .iter()
            .map(|r| (r.key(), self.refused[*r as usize]))
    }

    pub fn refuse_command(&mut self, key: &'static str) {
        if let Some(e) = self.commands.iter_mut().find(|(k, _)| *k == key) {
            e.1 += 1;
        } else {
            // A key past the spare room is not counted: no growth.
            let _ = self.commands.push((key, 1));
        }
    }

    pub fn commands_refused(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.commands.iter().copied()
    }

    pub fn save(&self, w: &mut Writer) {
        w.u64(self.sessions);
        w.u8(self.refused.len() as u8);
        for n in self.refused {
            w.u64(n);
        }
        w.u8(self.commands.len() as u8);
        for (key, n) in &self.commands {
            w.blob(key.as_bytes());
            w.u64(*n);
        }
        w.u64(self.negotiated);
        w.u64(self.moved.connections);
        w.u64(self.moved.to_client);
        w.u64(self.moved.to_server);
    }

    /// Counts saved by `save`; a refusal key this binary does not know
    /// is left out.
    pub fn load(r: &mut Reader) -> Option<Totals> {
        let mut t = Totals {
            sessions: r.u64()?,
            ..Totals::default()
        };
        if usize::from(r.u8()?) != t.refused.len() {
            return None;
        }
        for n in &mut t.refused {
            *n = r.u64()?;
        }
        for _ in 0..r.u8()? {
            let key = r.blob()?;
            let n = r.u64()?;
            let known = crate::ftp::policy::ALL
                .iter()
                .find(|p| p.key.as_bytes() == key);
            if let Some(p) = known {
                let _ = t.commands.push((p.key, n));
            }
        }
        t.negotiated = r.u64()?;
        t.moved = Moved {
            connections: r.u64()?,
            to_client: r.u64()?,
            to_server: r.u64()?,
        };
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason() {
        let mut t = Totals::default();
        t.refuse(Refused::PerClientLimit);
        t.refuse(Refused::PerClientLimit);
        t.refuse_command("low-port");
        t.refuse_command("tls");
        t.refuse_command("low-port");
        let r: Vec<_> = t.refused().collect();
        assert_eq!(r[1], ("per-client-limit", 2));
        assert_eq!(r.iter().map(|x| x.1).sum::<u64>(), 2);
        let c: Vec<_> = t.commands_refused().collect();
        assert_eq!(c, [("low-port", 2), ("tls", 1)]);
    }

    #[test]
    fn every_policy_key_fits() {
        use crate::ftp::policy::*;
        let mut distinct: Vec<_> = ALL.iter().map(|r| r.key).collect();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() <= COMMAND_KEYS);
    }
}
