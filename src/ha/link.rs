//! The sync link between the two proxies of an HA pair: TCP on the sync
//! network, one connection each way. Ours goes out to the peer and
//! carries our sessions; the peer's comes in and carries its sessions.
//! TCP, not UDP: a copy that missed an update is worse than none (its
//! sequence numbers would be behind the peer's), and TCP keeps every
//! update, in order, or breaks the connection, after which the next one
//! starts with a full copy.
//!
//! Frames: a u32 length (little-endian) of what follows, a kind byte,
//! the body. One frame at most is half-written at any time, in a fixed
//! buffer; the rest wait for the socket (the caller keeps them marked).

use crate::handover::wire::Writer;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A frame's largest body: two connection ends with full queues and a
/// session record.
pub const FRAME_MAX: usize = 24 * 1024;
const HEAD: usize = 5;
/// Between attempts to reach the peer.
const RETRY: Duration = Duration::from_secs(1);
/// Reads of the peer's connection in one turn.
const READS_PER_TURN: usize = 16;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Forget every copy of mine you hold (a fresh start of the link).
    Reset = 0,
    /// A session's current state (its id first).
    Session = 1,
    /// A session ended, or cannot be copied now (its id).
    End = 2,
}

impl Kind {
    fn of(b: u8) -> Option<Kind> {
        [Kind::Reset, Kind::Session, Kind::End]
            .get(usize::from(b))
            .copied()
    }
}

enum Out {
    Down { retry: Instant },
    Connecting(TcpStream),
    Up(TcpStream),
}

/// Whether `send` took the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Taken,
    /// The socket is full (or the link down): try again later.
    Later,
}

pub struct Link {
    local: IpAddr,
    peer: SocketAddr,
    listener: TcpListener,
    out: Out,
    out_token: Token,
    in_token: Token,
    /// The frame being written, and how much of it went.
    tx: Box<[u8]>,
    tx_len: usize,
    tx_sent: usize,
    inbound: Option<TcpStream>,
    rx: Box<[u8]>,
    rx_len: usize,
    /// The peer could not be reached since the link was last up (said
    /// once, not every retry).
    unreachable_said: bool,
}

impl Link {
    /// Listens on `local` port `port` for the peer, whose proxy listens
    /// on `peer` at the same port.
    pub fn open(
        local: IpAddr,
        peer: IpAddr,
        port: u16,
        registry: &Registry,
        [listen_token, out_token, in_token]: [Token; 3],
    ) -> io::Result<Link> {
        let mut listener = crate::net::listen(SocketAddr::new(local, port))?;
        registry.register(&mut listener, listen_token, Interest::READABLE)?;
        Ok(Link {
            local,
            peer: SocketAddr::new(peer, port),
            listener,
            out: Out::Down {
                retry: Instant::now(),
            },
            out_token,
            in_token,
            tx: vec![0; HEAD + FRAME_MAX].into_boxed_slice(),
            tx_len: 0,
            tx_sent: 0,
            inbound: None,
            rx: vec![0; HEAD + FRAME_MAX].into_boxed_slice(),
            rx_len: 0,
            unreachable_said: false,
        })
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn is_up(&self) -> bool {
        matches!(self.out, Out::Up(_))
    }

    fn down(&mut self, why: &dyn std::fmt::Display) {
        if matches!(self.out, Out::Up(_)) {
            log::warn!("HA sync to {}: {why}: the peer's copies of our sessions are stale until it is back", self.peer);
        } else if !self.unreachable_said {
            self.unreachable_said = true;
            log::warn!("HA sync to {}: cannot reach the peer's proxy: {why} (trying every second; until then a failover ends our sessions)", self.peer);
        }
        self.out = Out::Down {
            retry: Instant::now() + RETRY,
        };
        self.tx_len = 0;
        self.tx_sent = 0;
    }

    /// Once a tick: reach for the peer if the link is down.
    pub fn tick(&mut self, now: Instant, registry: &Registry) {
        let Out::Down { retry } = self.out else {
            return;
        };
        if now < retry {
            return;
        }
        match crate::net::connect_from(Some(self.local), self.peer) {
            Ok(mut s) => match registry.register(
                &mut s,
                self.out_token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                Ok(()) => self.out = Out::Connecting(s),
                Err(e) => self.down(&e),
            },
            Err(e) => self.down(&e),
        }
    }

    /// An event on our connection. True when it just came up: the caller
    /// starts a full copy.
    pub fn on_out_event(&mut self) -> bool {
        match &mut self.out {
            Out::Connecting(s) => match (s.take_error(), s.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    let Out::Connecting(s) = std::mem::replace(
                        &mut self.out,
                        Out::Down {
                            retry: Instant::now(),
                        },
                    ) else {
                        return false;
                    };
                    let _ = s.set_nodelay(true);
                    log::info!(target: "notice", "HA sync to {}: up, copying every session", self.peer);
                    self.unreachable_said = false;
                    self.out = Out::Up(s);
                    true
                }
                (Ok(Some(e)) | Err(e), _) => {
                    self.down(&e);
                    false
                }
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => false,
                (Ok(None), Err(e)) => {
                    self.down(&e);
                    false
                }
            },
            Out::Up(s) => {
                // The peer sends nothing this way: data or end, it is gone.
                let mut b = [0u8; 64];
                match s.read(&mut b) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Ok(0) => self.down(&"the peer closed the link"),
                    Ok(_) => self.down(&"the peer sent on our link"),
                    Err(e) => self.down(&e),
                }
                false
            }
            Out::Down { .. } => false,
        }
    }

    /// Writes what is left of the frame in hand; true when none is left.
    pub fn drain(&mut self) -> bool {
        let Out::Up(s) = &mut self.out else {
            return false;
        };
        while self.tx_sent < self.tx_len {
            match s.write(&self.tx[self.tx_sent..self.tx_len]) {
                Ok(0) => {
                    self.down(&"write returned 0");
                    return false;
                }
                Ok(n) => self.tx_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.down(&e);
                    return false;
                }
            }
        }
        self.tx_len = 0;
        self.tx_sent = 0;
        true
    }

    /// Sends one frame whose body `body` writes (false from it: nothing
    /// to send after all).
    pub fn send(&mut self, kind: Kind, body: impl FnOnce(&mut Writer) -> bool) -> Sent {
        if !self.drain() {
            return Sent::Later;
        }
        let mut w = Writer::new(&mut self.tx[HEAD..]);
        if !body(&mut w) {
            return Sent::Taken;
        }
        let Some(n) = w.written().map(<[u8]>::len) else {
            log::warn!("HA sync: a frame did not fit {FRAME_MAX} bytes: not copied");
            return Sent::Taken;
        };
        self.tx[..4].copy_from_slice(&((n + 1) as u32).to_le_bytes());
        self.tx[4] = kind as u8;
        self.tx_len = HEAD + n;
        self.tx_sent = 0;
        // Half a frame is fine: the rest goes before the next one.
        self.drain();
        Sent::Taken
    }

    /// The listener is ready: the peer's connection replaces the one it
    /// had; anyone else is turned away. True when a new one came in (its
    /// copies start from nothing).
    pub fn accept(&mut self, registry: &Registry) -> bool {
        let mut fresh = false;
        loop {
            match self.listener.accept() {
                Ok((mut s, from)) if from.ip() == self.peer.ip() => {
                    if registry
                        .register(&mut s, self.in_token, Interest::READABLE)
                        .is_ok()
                    {
                        log::info!(target: "notice", "HA sync from {from}: up");
                        self.inbound = Some(s);
                        self.rx_len = 0;
                        fresh = true;
                    }
                }
                Ok((_, from)) => log::warn!("HA sync: refused {from}, not the peer"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return fresh,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("HA sync: accept: {e}");
                    return fresh;
                }
            }
        }
    }

    /// Reads the peer's frames (a bounded number of reads), each to
    /// `each(kind, body)`. A frame longer than `FRAME_MAX` or of an
    /// unknown kind ends the link: the peer's next connection starts
    /// afresh.
    pub fn read(&mut self, mut each: impl FnMut(Kind, &[u8])) -> Inbound {
        let Some(s) = self.inbound.as_mut() else {
            return Inbound::Closed;
        };
        let peer = self.peer.ip();
        for _ in 0..READS_PER_TURN {
            let n = match s.read(&mut self.rx[self.rx_len..]) {
                Ok(0) => {
                    log::warn!("HA sync from {peer}: closed");
                    return self.close_inbound();
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Inbound::Idle,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("HA sync from {peer}: {e}");
                    return self.close_inbound();
                }
            };
            self.rx_len += n;
            let Some(used) = frames(&self.rx[..self.rx_len], &mut each) else {
                log::warn!("HA sync from {peer}: a damaged frame: link closed");
                return self.close_inbound();
            };
            self.rx.copy_within(used..self.rx_len, 0);
            self.rx_len -= used;
        }
        Inbound::More
    }

    fn close_inbound(&mut self) -> Inbound {
        self.inbound = None;
        self.rx_len = 0;
        Inbound::Closed
    }
}

/// What reading the peer's connection left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Everything read.
    Idle,
    /// More may wait: read again next turn.
    More,
    /// No connection from the peer (now).
    Closed,
}

/// Hands each whole frame of `b` to `each`; how many bytes they took, or
/// `None` for a damaged one.
pub fn frames(b: &[u8], each: &mut impl FnMut(Kind, &[u8])) -> Option<usize> {
    let mut at = 0;
    while let Some(head) = b.get(at..at + HEAD) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if !(1..=FRAME_MAX + 1).contains(&len) {
            return None;
        }
        let kind = Kind::of(head[4])?;
        let Some(body) = b.get(at + HEAD..at + 4 + len) else {
            break;
        };
        each(kind, body);
        at += 4 + len;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut f = ((body.len() + 1) as u32).to_le_bytes().to_vec();
        f.push(kind);
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn whole_frames_only_and_damaged_ones_refused() {
        let mut all = frame(1, b"abc");
        all.extend(frame(2, &7u64.to_le_bytes()));
        all.extend(frame(0, b""));
        let mut got = Vec::new();
        let used = frames(&all, &mut |k, b| got.push((k, b.to_vec())));
        assert_eq!(used, Some(all.len()));
        assert_eq!(
            got,
            [
                (Kind::Session, b"abc".to_vec()),
                (Kind::End, 7u64.to_le_bytes().to_vec()),
                (Kind::Reset, vec![])
            ]
        );
        // Cut anywhere: the whole frames before the cut, none after.
        for cut in 0..all.len() {
            let mut n = 0;
            let used = frames(&all[..cut], &mut |_, _| n += 1).unwrap();
            assert!(used <= cut && n <= 3);
        }
        // An unknown kind, a zero length, one past the largest frame.
        assert_eq!(frames(&frame(3, b"x"), &mut |_, _| panic!()), None);
        assert_eq!(frames(&[0, 0, 0, 0, 1], &mut |_, _| panic!()), None);
        let big = ((FRAME_MAX + 2) as u32).to_le_bytes();
        assert_eq!(
            frames(&[big[0], big[1], big[2], big[3], 1], &mut |_, _| panic!()),
            None
        );
    }
}
