//! What moved: the proxy's data connections as conntrack saw them, from
//! its event groups, with a socket filter so that the kernel passes on
//! only messages about them (see `bpf`). When a data connection's TCP
//! state reaches TIME_WAIT or CLOSE the proxy asks for its counters (the
//! destroy event, which carries them too, comes only after TIME_WAIT's
//! two minutes); the record is its duration and byte counts.
//!
//! The cost on a router: subscribing makes the kernel build an event
//! message for each new connection, state change and end of *every*
//! connection (the kernel cannot filter before building), which the
//! socket filter then drops for all but the proxy's. Byte counts need
//! `net.netfilter.nf_conntrack_acct=1` (OpenWrt's default); without it
//! records carry only the duration. Connections offloaded to a flowtable
//! are counted only where the flowtable has the `counter` flag.

pub mod bpf;
pub mod event;
mod transfers;

use crate::filter::nft::msg::MsgBuf;
use crate::filter::nft::msg::NLMSG_ERROR;
use crate::filter::nft::socket::{self, cvt, NlSocket, SOL_NETLINK};
use crate::status::render::Records;
use event::{Event, Kind, Tuple};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};
use transfers::Transfers;

const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;
const NFNLGRP_CONNTRACK_NEW: u32 = 1;
const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;
/// Messages read in one turn (the fair loop's bound for this socket).
const PER_TURN: usize = 64;
/// How long an asked-for answer may take before the record goes without.
const ANSWER_TIME: Duration = Duration::from_secs(5);
/// The kernel's receive queue for events: room for bursts.
const RCVBUF: libc::c_int = 256 * 1024;

/// A data connection under way (its conntrack id is its key).
#[derive(Clone, Copy, Debug)]
struct Transfer {
    tuple: Tuple,
    owner: Owner,
    started: Instant,
    /// When its counters were asked for.
    asked: Option<Instant>,
    /// When it stopped moving (TIME_WAIT/CLOSE).
    ended: Option<Instant>,
}

/// The session a data connection belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub slot: usize,
    pub session: u64,
    /// PASV/EPSV: the client opened it; else the server did.
    pub passive: bool,
}

/// One finished data connection.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub owner: Owner,
    /// Who opened it, to the proxy port.
    pub from: IpAddr,
    pub sport: u16,
    pub proxy_port: u16,
    pub duration: Duration,
    /// (to the client, to the server), IP bytes as conntrack counts them.
    pub bytes: Option<(u64, u64)>,
}

pub struct Conntrack {
    fd: OwnedFd,
    rx: Box<[u8]>,
    tx: Box<MsgBuf>,
    transfers: Transfers<Transfer>,
    pub records: Records,
    seq: u32,
    /// Transfers not tracked for want of room, events the kernel dropped.
    pub untracked: u64,
    pub lost: u64,
    /// Records finished in this turn, for the caller to take.
    done: Box<heapless::Deque<Record, DONE>>,
}

/// Records one turn may finish; reading stops early when they fill.
const DONE: usize = 2 * PER_TURN;

fn sysctl(name: &str) -> Option<u8> {
    let v = std::fs::read_to_string(format!("/proc/sys/net/netfilter/{name}")).ok()?;
    v.trim().parse().ok()
}

impl Conntrack {
    /// Subscribes to the conntrack events of this network namespace with
    /// the filter for `tag`; `max_sessions` sizes the transfer table.
    pub fn open(
        tag: Option<u32>,
        ports: crate::ports::Range,
        max_sessions: u32,
    ) -> io::Result<Conntrack> {
        if sysctl("nf_conntrack_events") == Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "net.netfilter.nf_conntrack_events is 0",
            ));
        }
        let (fd, _portid) = socket::bound(socket::NETLINK_NETFILTER)?;
        // The filter first: no message of others is queued even once.
        let prog = bpf::program(tag, ports);
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: fprog points at prog, which outlives the call; Insn is
        // laid out as sock_filter.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as u32,
            )
        })?;
        let _ = crate::net::set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
        for g in [
            NFNLGRP_CONNTRACK_NEW,
            NFNLGRP_CONNTRACK_UPDATE,
            NFNLGRP_CONNTRACK_DESTROY,
        ] {
            crate::net::set_int_opt(&fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g as libc::c_int)?;
        }
        let records = match sysctl("nf_conntrack_acct") {
            Some(1) => Records::Bytes,
            _ => Records::NoBytes,
        };
        Ok(Conntrack::adopt(fd, records, max_sessions))
    }

    /// The reader of a subscribed socket: `open`'s, or the one a previous
    /// image made (its filter stays on the socket; transfers under way
    /// are not known to this one).
    pub fn adopt(fd: OwnedFd, records: Records, max_sessions: u32) -> Conntrack {
        let n = 2 * max_sessions as usize;
        Conntrack {
            fd,
            // Events and answers are a few hundred bytes each.
            rx: vec![0u8; 8192].into_boxed_slice(),
            tx: Box::default(),
            transfers: Transfers::with_capacity(n),
            records,
            seq: 0,
            untracked: 0,
            lost: 0,
            done: Box::default(),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads up to `PER_TURN` messages. `owner_of` names the session whose
    /// pending mapping a new connection's tuple is; finished records wait
    /// in `take_records`. True when more may be waiting.
    pub fn read(&mut self, now: Instant, owner_of: &dyn Fn(&Tuple) -> Option<Owner>) -> bool {
        for _ in 0..PER_TURN {
            if self.done.len() + 4 > DONE {
                return true;
            }
            let n = match socket::recv_now(&self.fd, &mut self.rx) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // The kernel dropped events: some records will be
                    // missing; counted and shown in the status.
                    self.lost += 1;
                    continue;
                }
                Err(_) => return false,
            };
            let mut at = 0;
            while at + 16 <= n {
                let len = u32::from_ne_bytes([
                    self.rx[at],
                    self.rx[at + 1],
                    self.rx[at + 2],
                    self.rx[at + 3],
                ]) as usize;
                if len < 16 || at + len > n {
                    break;
                }
                if let Some(e) = event::parse(&self.rx[at..at + len]) {
                    self.on_event(e, now, owner_of);
                }
                at += (len + 3) & !3;
            }
        }
        true
    }

    /// The records finished since the last call.
    /// The next record finished, oldest first.
    pub fn next_record(&mut self) -> Option<Record> {
        self.done.pop_front()
    }

    fn on_event(&mut self, e: Event, now: Instant, owner_of: &dyn Fn(&Tuple) -> Option<Owner>) {
        let Some(t) = self.transfers.get_mut(e.id).filter(|t| t.tuple == e.tuple) else {
            if e.kind == Kind::New {
                if let Some(owner) = owner_of(&e.tuple) {
                    self.track(e, owner, now);
                }
            }
            return;
        };
        let over = matches!(e.tcp_state, Some(event::TCP_TIME_WAIT | event::TCP_CLOSE));
        // Updates carry no counters: one that has them answers our GET.
        let answer = e.kind == Kind::Update && e.bytes.is_some() && t.asked.is_some();
        let finish = match e.kind {
            Kind::Destroy => Some(e.bytes),
            _ if answer => Some(e.bytes),
            _ if over && t.ended.is_none() => {
                t.ended = Some(now);
                match self.records {
                    Records::Bytes => {
                        t.asked = Some(now);
                        let tuple = t.tuple;
                        if let Err(err) = self.ask(&tuple) {
                            // The destroy event ends it, with counters.
                            log::debug!("conntrack: asking for counters: {err}");
                        }
                        None
                    }
                    _ => Some(None),
                }
            }
            _ => None,
        };
        if let Some(bytes) = finish {
            if let Some(t) = self.transfers.remove(e.id) {
                // Room was checked before the read.
                let _ = self.done.push_back(record(&t, bytes, now));
            }
        }
    }

    fn track(&mut self, e: Event, owner: Owner, now: Instant) {
        if self.transfers.is_full() {
            // Full: the oldest gives way (its end was lost, or it is one
            // of very many at once), counted. Rare, so a walk is fine.
            let oldest = self
                .transfers
                .iter()
                .min_by_key(|(_, t)| t.started)
                .map(|(id, _)| id);
            if let Some(id) = oldest {
                self.transfers.remove(id);
                self.untracked += 1;
            }
        }
        self.transfers.insert(
            e.id,
            Transfer {
                tuple: e.tuple,
                owner,
                started: now,
                asked: None,
                ended: None,
            },
        );
    }

    /// Data connections being followed now.
    pub fn tracking(&self) -> usize {
        self.transfers.len()
    }

    /// Once a second: a transfer whose counters were asked for and never
    /// came (the answer was lost) is recorded without them.
    pub fn expire(&mut self, now: Instant) {
        let mut late = heapless::Vec::<u32, DONE>::new();
        let room = DONE - self.done.len();
        let overdue = |t: &Transfer| {
            t.asked
                .is_some_and(|a| now.saturating_duration_since(a) >= ANSWER_TIME)
        };
        for (id, _) in self.transfers.iter().filter(|(_, t)| overdue(t)) {
            if late.len() == room || late.push(id).is_err() {
                break;
            }
        }
        for id in late {
            if let Some(t) = self.transfers.remove(id) {
                let _ = self.done.push_back(record(&t, None, now));
            }
        }
    }

    /// IPCTNL_MSG_CT_GET for the connection of `t`: the answer is an
    /// update with the counters, read like the events.
    fn ask(&mut self, t: &Tuple) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let m = &mut self.tx;
        get_request(m, self.seq, event::CTA_TUPLE_ORIG, t)?;
        let b = m
            .bytes()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        // SAFETY: b is a valid buffer for the call.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                libc::MSG_DONTWAIT,
            )
        };
        match r {
            0.. => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

/// An IPCTNL_MSG_CT_GET in `m` for the connection whose tuple `nest`
/// (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY) is `t`.
fn get_request(m: &mut MsgBuf, seq: u32, nest: u16, t: &Tuple) -> io::Result<()> {
    use event::*;
    m.clear();
    let family = if t.src.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u8;
    m.begin_msg(
        (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
        0,
        seq,
        family,
        0,
    );
    m.nest_begin(nest);
    m.nest_begin(CTA_TUPLE_IP);
    match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            m.attr(CTA_IP_V4_SRC, &s.octets());
            m.attr(CTA_IP_V4_DST, &d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            m.attr(CTA_IP_V6_SRC, &s.octets());
            m.attr(CTA_IP_V6_DST, &d.octets());
        }
        _ => return Err(io::ErrorKind::InvalidInput.into()),
    }
    m.nest_end();
    m.nest_begin(CTA_TUPLE_PROTO);
    m.attr(CTA_PROTO_NUM, &[6]);
    m.attr(CTA_PROTO_SRC_PORT, &t.sport.to_be_bytes());
    m.attr(CTA_PROTO_DST_PORT, &t.dport.to_be_bytes());
    m.nest_end();
    m.nest_end();
    m.end_msg();
    Ok(())
}

/// Whether the kernel tracks a connection whose reply direction is
/// `reply` (an HA takeover waits for conntrackd's commit of it). One
/// request, answered at once.
pub fn tracks_reply(sock: &mut NlSocket, seq: u32, reply: &Tuple) -> io::Result<bool> {
    let mut m = MsgBuf::default();
    get_request(&mut m, seq, event::CTA_TUPLE_REPLY, reply)?;
    let b = m
        .bytes()
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    let answer = sock.request(b, seq)?;
    match socket::Acks::new(answer).find(|&(s, _, _)| s == seq) {
        Some((_, NLMSG_ERROR, 0)) | None => Ok(true),
        Some((_, NLMSG_ERROR, libc::ENOENT)) => Ok(false),
        Some((_, NLMSG_ERROR, errno)) => Err(io::Error::from_raw_os_error(errno)),
        Some(_) => Ok(true),
    }
}

fn record(t: &Transfer, bytes: Option<(u64, u64)>, now: Instant) -> Record {
    let end = t.ended.unwrap_or(now);
    // The original direction is the opener's: the client's in passive
    // mode, the server's in active mode.
    let bytes = bytes.map(|(orig, reply)| match t.owner.passive {
        true => (reply, orig),
        false => (orig, reply),
    });
    Record {
        owner: t.owner,
        from: t.tuple.src,
        sport: t.tuple.sport,
        proxy_port: t.tuple.dport,
        duration: end.saturating_duration_since(t.started),
        bytes,
    }
}
