//! Control sessions that survive an HA failover (`-H local,peer`, Linux).
//!
//! Each proxy of a pair copies its sessions to the other over the sync
//! link as they change: after every turn a session had, its record (as
//! a live handover writes it) and the TCP state of its two connections
//! (`repair`: sequence numbers, queued bytes, options, windows). The
//! peer keeps the copies (`standby`). When keepalived moves a VIP to it
//! (an RTM_NEWADDR), it rebuilds the sessions on that address with
//! `TCP_REPAIR`, waits for conntrackd's commit of the client side's
//! connection (its NAT: the redirect) and serves them from where the
//! copy left off. Data connections are conntrackd's alone, as without
//! `-H`.
//!
//! What cannot be saved: bytes the kernel acknowledged after the last
//! copy left. A control connection is idle nearly all of its life (a
//! transfer runs on the data connection), so a failure mid-command is
//! what loses a session: the new master then has its stream behind the
//! peer's, and the session ends by timeout. The copies go out as the
//! turn ends, so that window is one turn and the sync link's latency.

pub mod link;
pub mod repair;
pub mod standby;

use link::Link;
use standby::Standby;
use std::time::{Duration, Instant};

/// How long a session to take over may wait for its connection
/// tracking (conntrackd commits it as its master script runs).
pub const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// Between looks for that commit.
pub const COMMIT_POLL: Duration = Duration::from_millis(50);
/// Ended ids waiting to be sent; more than this and the peer gets a
/// full copy instead.
const ENDED: usize = 64;

/// Where the peer's copy of one of our sessions stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copied {
    /// The peer has none (never sent, or dropped with an End).
    No,
    /// The session changed since its last copy went.
    Behind,
    /// The peer has it as it is.
    Current,
}

pub struct Ha {
    pub link: Link,
    pub standby: Standby,
    /// Our sessions, by slot.
    pub copies: Vec<Copied>,
    /// Ids whose End the peer has not been sent.
    pub ended: heapless::Deque<u64, ENDED>,
    /// The peer needs a Reset and every session.
    pub resync: bool,
    /// Conntrack lookups: has conntrackd committed a connection?
    pub conntrack: crate::filter::nft::socket::NlSocket,
    pub seq: u32,
}

impl Ha {
    pub fn new(link: Link, slots: usize, now: Instant) -> std::io::Result<Ha> {
        let conntrack = crate::filter::nft::socket::NlSocket::open(
            crate::filter::nft::socket::NETLINK_NETFILTER,
        )?;
        Ok(Ha {
            link,
            standby: Standby::new(slots, now),
            copies: vec![Copied::No; slots],
            ended: heapless::Deque::new(),
            resync: true,
            conntrack,
            seq: 0,
        })
    }

    /// Session `slot` (id `id`) ended: its copy goes, if the peer has
    /// one.
    pub fn ended(&mut self, slot: usize, id: u64) {
        let Some(c) = self.copies.get_mut(slot) else {
            return;
        };
        let had = *c != Copied::No;
        *c = Copied::No;
        if had && self.ended.push_back(id).is_err() {
            self.resync = true;
        }
    }

    pub fn touch(&mut self, slot: usize) {
        if let Some(c) = self.copies.get_mut(slot) {
            *c = Copied::Behind;
        }
    }

    /// Whether the peer can take session `slot` over as it is now.
    pub fn peer_has(&self, slot: usize) -> bool {
        self.link.is_up() && self.copies.get(slot) == Some(&Copied::Current)
    }
}
