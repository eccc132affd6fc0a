//! Counters since start: what the status shows under "totals". Fixed
//! size: counting never allocates.

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
        let keys = [
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
            NAT_FAILED,
        ];
        let mut distinct: Vec<_> = keys.iter().map(|r| r.key).collect();
        distinct.push("syntax");
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() <= COMMAND_KEYS);
    }
}
