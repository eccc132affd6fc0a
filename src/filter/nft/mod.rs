//! Linux backend: nftables over raw netlink.
//!
//! One table of the proxy's own (`inet ftp-proxy`, `inet ftp-proxy6` with
//! -6) holds NAT chains whose rules look data connections up in maps with
//! per-element timeouts. A data connection costs one batch of two elements;
//! the ruleset never grows with the number of sessions.

pub mod expr;
#[cfg(test)]
mod golden;
pub mod msg;
pub mod objects;
pub mod socket;

use super::{DataMap, FilterError};
use crate::config::Config;
use msg::MsgBuf;
use objects::{Family, Marks, Value, NFT_TABLE_F_OWNER};
use socket::NlSocket;

/// How long a negotiated data connection may take to open (ms). NAT is
/// decided on the first packet, so an established connection outlives it.
pub const ELEMENT_TIMEOUT_MS: u64 = 60_000;

const PRE: &str = "prerouting";
const POST: &str = "postrouting";
const FWD: &str = "forward";
const ID_DNAT: u32 = 1;
const ID_SNAT: u32 = 2;
const ID_SNATP: u32 = 3;

/// Names of one family's maps.
struct Names {
    dnat: &'static str,
    snat: &'static str,
    snatp: &'static str,
}

fn names(fam: Family) -> Names {
    match fam {
        Family::V4 => Names {
            dnat: "dnat4",
            snat: "snat4",
            snatp: "snatp4",
        },
        Family::V6 => Names {
            dnat: "dnat6",
            snat: "snat6",
            snatp: "snatp6",
        },
    }
}

pub fn table_name(ipv6: bool) -> &'static str {
    if ipv6 {
        "ftp-proxy6"
    } else {
        "ftp-proxy"
    }
}

/// An SNAT element's identity: which map, and its key bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SnatId {
    port20: bool,
    len: u8,
    key: [u8; 36],
}

impl SnatId {
    fn new(port20: bool, key: &[u8]) -> SnatId {
        let mut k = [0u8; 36];
        k[..key.len()].copy_from_slice(key);
        SnatId {
            port20,
            len: key.len() as u8,
            key: k,
        }
    }
}

/// Room for one pending mapping per session at the session maximum.
const SHARED_CAP: usize = 512;

pub struct Nft {
    sock: NlSocket,
    msg: Box<MsgBuf>,
    seq: u32,
    table: &'static str,
    fam: Family,
    owner: bool,
    /// What the table is built from, to build it again.
    cfg: Config,
    /// How many pending mappings use each SNAT element. Its key is the
    /// tuple after DNAT, which a new session can meet again while an old
    /// one still holds its mapping: the server hands out a data port (or
    /// the client listens on a port) again once the old data connection
    /// is over. The element is shared, and the last user deletes it.
    snat_users: Box<heapless::FnvIndexMap<SnatId, u16, SHARED_CAP>>,
}

/// Set (to anything) to create the table without the owner flag, as on
/// kernels before 5.12: for tests of what an admin's `nft flush ruleset`
/// does there.
pub const NO_OWNER_ENV: &str = "FTP_PROXY_NO_OWNER";

fn errno_err(what: &'static str, errno: i32) -> FilterError {
    FilterError::Kernel(what, errno)
}

impl Nft {
    /// Creates the proxy's table, replacing a stale one left by a crash.
    pub fn open(cfg: &Config) -> Result<Nft, FilterError> {
        let sock = NlSocket::open().map_err(|e| FilterError::Io("netlink socket", e))?;
        let mut n = Nft {
            sock,
            msg: Box::default(),
            seq: std::process::id().wrapping_shl(12),
            table: table_name(cfg.ipv6),
            fam: if cfg.ipv6 { Family::V6 } else { Family::V4 },
            owner: std::env::var_os(NO_OWNER_ENV).is_none(),
            cfg: cfg.clone(),
            snat_users: Box::default(),
        };
        match n.delete_table() {
            Ok(()) => log::warn!(target: "notice", "removed stale table inet {}", n.table),
            Err(FilterError::Kernel(_, libc::ENOENT)) => {}
            Err(FilterError::Kernel(_, libc::EPERM | libc::EBUSY)) => {
                return Err(FilterError::InUse(n.table))
            }
            Err(e) => return Err(e),
        }
        match n.create(n.flags()) {
            // Kernels before 5.12 have no owned tables.
            Err(FilterError::Kernel(_, libc::EOPNOTSUPP | libc::EINVAL)) if n.owner => {
                log::warn!(target: "notice", "kernel has no owned tables; table inet {} stays after a crash until the next start", n.table);
                n.owner = false;
                n.create(0)?;
            }
            r => r?,
        }
        Ok(n)
    }

    fn flags(&self) -> u32 {
        if self.owner {
            NFT_TABLE_F_OWNER
        } else {
            0
        }
    }

    /// Whether the table is still in the kernel. Without the owner flag an
    /// admin's `nft flush ruleset` (a firewall reload) removes it.
    fn present(&mut self) -> Result<bool, FilterError> {
        let seq = self.next_seq();
        self.msg.clear();
        objects::get_table(&mut self.msg, seq, self.table);
        let bytes = self.msg.bytes().map_err(|_| FilterError::Overflow)?;
        match self.sock.transact(bytes, seq, seq) {
            Ok(Ok(())) => Ok(true),
            Ok(Err((_, libc::ENOENT))) => Ok(false),
            Ok(Err((_, errno))) => Err(errno_err("get table", errno)),
            Err(e) => Err(FilterError::Io("get table", e)),
        }
    }

    /// Re-creates the table if it is gone; true when it had to. Mappings
    /// that went with it are lost; new ones work again.
    pub fn ensure(&mut self) -> Result<bool, FilterError> {
        if self.present()? {
            return Ok(false);
        }
        self.rebuild()?;
        Ok(true)
    }

    fn rebuild(&mut self) -> Result<(), FilterError> {
        log::warn!(
            "table inet {} was removed (ruleset flushed?): creating it again",
            self.table
        );
        match self.delete_table() {
            Ok(()) | Err(FilterError::Kernel(_, libc::ENOENT)) => {}
            Err(e) => return Err(e),
        }
        self.create(self.flags())
    }

    /// Conntrack answers this (SO_ORIGINAL_DST, in `intercept`).
    pub fn original_dst(
        &mut self,
        _client: std::net::SocketAddr,
        _local: std::net::SocketAddr,
    ) -> Option<std::net::SocketAddr> {
        None
    }

    /// True when the kernel drops the table by itself with the process.
    pub fn owned(&self) -> bool {
        self.owner
    }

    pub fn table(&self) -> &'static str {
        self.table
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Wraps what `body` encodes into a batch and sends it.
    fn batch(
        &mut self,
        what: &'static str,
        body: impl FnOnce(&mut MsgBuf, &mut dyn FnMut() -> u32, &'static str),
    ) -> Result<(), FilterError> {
        let first = self.next_seq();
        let mut seq = first;
        {
            let msg = &mut *self.msg;
            msg.clear();
            msg.batch_begin(first);
            body(
                msg,
                &mut || {
                    seq = seq.wrapping_add(1);
                    seq
                },
                self.table,
            );
        }
        let last = seq;
        self.seq = last.wrapping_add(1);
        self.msg.batch_end(self.seq);
        let bytes = self.msg.bytes().map_err(|_| FilterError::Overflow)?;
        match self.sock.transact(bytes, first, last) {
            Ok(Ok(())) => Ok(()),
            Ok(Err((at, errno))) => {
                if errno != libc::ENOENT && errno != libc::EEXIST {
                    let n = at.wrapping_sub(first);
                    log::debug!("nft {what}: message {n} of the batch failed, errno {errno}");
                }
                Err(errno_err(what, errno))
            }
            Err(e) => Err(FilterError::Io(what, e)),
        }
    }

    fn delete_table(&mut self) -> Result<(), FilterError> {
        self.batch("delete table", |m, seq, t| objects::del_table(m, seq(), t))
    }

    fn create(&mut self, flags: u32) -> Result<(), FilterError> {
        let cfg = &self.cfg;
        let fam = self.fam;
        let nm = names(fam);
        let marks = Marks {
            ct_mark: cfg.tag,
            log: cfg.verbose > 0,
        };
        let port20 = cfg.port20;
        let intercept = cfg.intercept.clone();
        let listen_port = cfg.listen_port;
        let fwd = cfg.tag.filter(|_| cfg.queue.is_some() || cfg.verbose > 1);
        let (queue, log_all) = (cfg.queue, cfg.verbose > 1);
        self.batch("create table", |m, seq, t| {
            objects::table(m, seq(), t, flags);
            objects::map(m, seq(), t, nm.dnat, ID_DNAT, fam, Value::AddrPort);
            objects::map(m, seq(), t, nm.snat, ID_SNAT, fam, Value::Addr);
            if port20 {
                objects::map(m, seq(), t, nm.snatp, ID_SNATP, fam, Value::AddrPort);
            }
            objects::base_chain(
                m,
                seq(),
                t,
                PRE,
                "nat",
                objects::HOOK_PREROUTING,
                objects::PRIO_DSTNAT,
            );
            objects::base_chain(
                m,
                seq(),
                t,
                POST,
                "nat",
                objects::HOOK_POSTROUTING,
                objects::PRIO_SRCNAT,
            );
            for ifc in &intercept {
                objects::intercept_rule(m, seq(), t, PRE, ifc, fam, listen_port);
            }
            let dnat = expr::NAT_DNAT;
            let snat = expr::NAT_SNAT;
            objects::nat_rule(
                m,
                seq(),
                t,
                PRE,
                fam,
                nm.dnat,
                ID_DNAT,
                dnat,
                Value::AddrPort,
                marks,
            );
            objects::nat_rule(
                m,
                seq(),
                t,
                POST,
                fam,
                nm.snat,
                ID_SNAT,
                snat,
                Value::Addr,
                Marks::default(),
            );
            if port20 {
                objects::nat_rule(
                    m,
                    seq(),
                    t,
                    POST,
                    fam,
                    nm.snatp,
                    ID_SNATP,
                    snat,
                    Value::AddrPort,
                    Marks::default(),
                );
            }
            if let Some(tag) = fwd {
                objects::base_chain(
                    m,
                    seq(),
                    t,
                    FWD,
                    "filter",
                    objects::HOOK_FORWARD,
                    objects::PRIO_FILTER,
                );
                objects::forward_rule(m, seq(), t, FWD, tag, queue, log_all);
            }
        })
    }

    fn snat_set(&self, d: &DataMap) -> &'static str {
        let nm = names(self.fam);
        if d.nat_sport.is_some() {
            nm.snatp
        } else {
            nm.snat
        }
    }

    /// Installs one data connection's DNAT and SNAT elements, first
    /// re-creating the table if an admin removed it.
    pub fn add(&mut self, d: &DataMap) -> Result<(), FilterError> {
        match self.add_elements(d) {
            Err(FilterError::Kernel(_, libc::ENOENT)) if !self.present()? => {
                self.rebuild()?;
                self.add_elements(d)
            }
            r => r,
        }
    }

    fn add_elements(&mut self, d: &DataMap) -> Result<(), FilterError> {
        let dnat = names(self.fam).dnat;
        let snat = self.snat_set(d);
        let dk = objects::key(&d.src, &d.dst, d.dport);
        let dv = objects::value(&d.to, Some(d.to_port));
        let sk = objects::key(&d.src, &d.to, d.to_port);
        let sv = objects::value(&d.nat_src, d.nat_sport);
        let id = SnatId::new(d.nat_sport.is_some(), sk.bytes());
        let t = Some(ELEMENT_TIMEOUT_MS);
        let shared = self.snat_users.get(&id).is_some_and(|&n| n > 0);
        let mut r = Err(FilterError::Kernel("add mapping", libc::ENOENT));
        if shared {
            // Replace the shared element in the same batch: a fresh timeout.
            r = self.batch("add mapping", |m, seq, tb| {
                objects::element(m, seq(), tb, dnat, dk.bytes(), Some(dv.bytes()), t);
                objects::element(m, seq(), tb, snat, sk.bytes(), None, None);
                objects::element(m, seq(), tb, snat, sk.bytes(), Some(sv.bytes()), t);
            });
        }
        // Not shared, or the shared element already expired.
        if matches!(r, Err(FilterError::Kernel(_, libc::ENOENT))) {
            r = self.batch("add mapping", |m, seq, tb| {
                objects::element(m, seq(), tb, dnat, dk.bytes(), Some(dv.bytes()), t);
                objects::element(m, seq(), tb, snat, sk.bytes(), Some(sv.bytes()), t);
            });
        }
        r?;
        match self.snat_users.get_mut(&id) {
            Some(n) => *n += 1,
            None => {
                // Cannot be full: each session holds one mapping at most.
                let _ = self.snat_users.insert(id, 1);
            }
        }
        Ok(())
    }

    /// Removes `old`'s elements and adds `new`'s in one batch: one netlink
    /// round trip per PORT/PASV. When the SNAT elements are shared, or the
    /// batch fails on an expired element, it is remove then add.
    pub fn replace(&mut self, old: &DataMap, new: &DataMap) -> Result<(), FilterError> {
        let dnat = names(self.fam).dnat;
        let (osnat, nsnat) = (self.snat_set(old), self.snat_set(new));
        let odk = objects::key(&old.src, &old.dst, old.dport);
        let osk = objects::key(&old.src, &old.to, old.to_port);
        let ndk = objects::key(&new.src, &new.dst, new.dport);
        let ndv = objects::value(&new.to, Some(new.to_port));
        let nsk = objects::key(&new.src, &new.to, new.to_port);
        let nsv = objects::value(&new.nat_src, new.nat_sport);
        let oid = SnatId::new(old.nat_sport.is_some(), osk.bytes());
        let nid = SnatId::new(new.nat_sport.is_some(), nsk.bytes());
        let simple = oid != nid
            && self.snat_users.get(&oid) == Some(&1)
            && !self.snat_users.contains_key(&nid);
        if !simple {
            self.remove(old)?;
            return self.add(new);
        }
        let t = Some(ELEMENT_TIMEOUT_MS);
        let r = self.batch("replace mapping", |m, seq, tb| {
            objects::element(m, seq(), tb, dnat, odk.bytes(), None, None);
            objects::element(m, seq(), tb, osnat, osk.bytes(), None, None);
            objects::element(m, seq(), tb, dnat, ndk.bytes(), Some(ndv.bytes()), t);
            objects::element(m, seq(), tb, nsnat, nsk.bytes(), Some(nsv.bytes()), t);
        });
        match r {
            Ok(()) => {
                self.snat_users.remove(&oid);
                // Cannot be full: each session holds one mapping at most.
                let _ = self.snat_users.insert(nid, 1);
                Ok(())
            }
            // An old element expired, or the table is gone.
            Err(FilterError::Kernel(_, libc::ENOENT)) => {
                self.remove(old)?;
                self.add(new)
            }
            // The batch was rolled back: `old` is still in place.
            Err(e) => Err(e),
        }
    }

    /// Removes one data connection's elements (its SNAT element only when
    /// no other pending mapping shares it); those already expired are not
    /// an error.
    pub fn remove(&mut self, d: &DataMap) -> Result<(), FilterError> {
        let dnat = names(self.fam).dnat;
        let snat = self.snat_set(d);
        let dk = objects::key(&d.src, &d.dst, d.dport);
        let sk = objects::key(&d.src, &d.to, d.to_port);
        let id = SnatId::new(d.nat_sport.is_some(), sk.bytes());
        let keep_snat = match self.snat_users.get_mut(&id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            _ => {
                self.snat_users.remove(&id);
                false
            }
        };
        let both = self.batch("remove mapping", |m, seq, tb| {
            objects::element(m, seq(), tb, dnat, dk.bytes(), None, None);
            if !keep_snat {
                objects::element(m, seq(), tb, snat, sk.bytes(), None, None);
            }
        });
        match both {
            // One expired: the batch was rolled back, so delete one by one.
            Err(FilterError::Kernel(_, libc::ENOENT)) if !keep_snat => {
                for (set, k) in [(dnat, dk.bytes()), (snat, sk.bytes())] {
                    match self.batch("remove mapping", |m, seq, tb| {
                        objects::element(m, seq(), tb, set, k, None, None)
                    }) {
                        Ok(()) | Err(FilterError::Kernel(_, libc::ENOENT)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Err(FilterError::Kernel(_, libc::ENOENT)) => Ok(()),
            r => r,
        }
    }

    /// Deletes the table and everything in it.
    pub fn close(&mut self) -> Result<(), FilterError> {
        self.delete_table()
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.raw_fd()
    }
}
