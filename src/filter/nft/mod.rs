//! Linux backend: nftables over raw netlink.
//!
//! One table per instance (`inet ftp-proxy-NAME`, see `instance`) holds
//! NAT chains whose rules look data connections up in maps with
//! one element each per data connection, used up by its first packet. A
//! data connection costs one batch of two elements; the ruleset never
//! grows with the number of sessions.

pub mod expr;
#[cfg(test)]
mod golden;
pub mod instance;
pub mod msg;
pub mod objects;
pub mod socket;

use super::{DataMap, DataPath, FilterError, Installed, OneShot};
use crate::config::Config;
use instance::{Claim, TableName, Taken};
use msg::MsgBuf;
use objects::{Del, Family, Intercept, KeyFrom, Marks, NatRule, Packed, Value, NFT_TABLE_F_OWNER};
use socket::NlSocket;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a pending mapping lives where the kernel cannot drop the
/// table with the process (no owner flag, Linux < 5.12) or cannot use an
/// element up (no dynset delete): a crashed proxy leaves nothing usable
/// behind for longer. A live proxy refreshes its pending mappings well
/// before (`REFRESH_EVERY`), so they last until used all the same.
pub const ELEMENT_TIMEOUT_MS: u64 = 60_000;
/// How often a pending mapping's elements get a fresh timeout.
const REFRESH_EVERY: Duration = Duration::from_secs(20);

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

/// What this kernel can do, found out at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Abilities {
    /// Owned tables (5.12+): the table goes with the process.
    owner: bool,
    /// dynset delete: an element is used up by its first connection.
    one_shot: bool,
    /// DESTROYSETELEM (6.3+): a used-up element can be deleted quietly.
    destroy: bool,
}

/// One mapping's elements, computed once: both maps share the key (the
/// first packet's tuple; SNAT reads it from conntrack), so no element is
/// ever shared between mappings.
struct Elements {
    key: Packed,
    dnat_value: Packed,
    snat_value: Packed,
    snat_map: &'static str,
}

pub struct Nft {
    sock: NlSocket,
    msg: Box<MsgBuf>,
    seq: u32,
    table: TableName,
    /// This instance's hold on its table name, for the process's life
    /// (none when a process that is no instance squats the name).
    _claim: Option<Claim>,
    fam: Family,
    can: Abilities,
    /// What the table is built from, to build it again.
    cfg: Config,
}

/// The keeper's table, chain and rule (see `instance::KEEPER`), made or
/// made again: its rule is flushed first, so one stays.
fn keeper(m: &mut MsgBuf, seq: &mut dyn FnMut() -> u32) {
    let (hook, prio) = (objects::HOOK_POSTROUTING, objects::PRIO_SRCNAT);
    let (table, chain) = (instance::KEEPER, instance::KEEPER_CHAIN);
    objects::table(m, seq(), table, 0);
    objects::base_chain(m, seq(), table, chain, "nat", hook, prio);
    objects::flush_chain(m, seq(), table, chain);
    objects::keeper_rule(m, seq(), table, chain);
}

/// Set (to anything) to create the table without the owner flag, as on
/// kernels before 5.12: for tests of what an admin's `nft flush ruleset`
/// does there.
pub const NO_OWNER_ENV: &str = "FTP_PROXY_NO_OWNER";

fn errno_err(what: &'static str, errno: i32) -> FilterError {
    FilterError::Kernel(what, errno)
}

/// True for the answers of a kernel that lacks a feature.
fn unsupported(e: &FilterError) -> bool {
    matches!(e, FilterError::Kernel(_, libc::EOPNOTSUPP | libc::EINVAL))
}

impl Nft {
    /// Creates the instance's table, replacing a stale one left by a
    /// crash, with what this kernel can do.
    pub fn open(cfg: &Config) -> Result<Nft, FilterError> {
        let table = instance::table_name(&cfg.instance);
        let claim = match Claim::take(&table) {
            Ok(Taken::Claimed(c)) => Some(c),
            Ok(Taken::Instance { pid, uid }) => {
                log::debug!("instance claim on {table} held by pid {pid} (uid {uid})");
                return Err(FilterError::InUse(table.as_str().into()));
            }
            Ok(Taken::Squatted { pid, uid }) => {
                match uid {
                    Some(uid) => log::warn!("instance name of table inet {table} is held by pid {pid}, uid {uid}, which is no instance: starting without the claim"),
                    None => log::warn!("instance name of table inet {table} is bound by a process that is no instance: starting without the claim"),
                }
                None
            }
            Err(e) => return Err(FilterError::Io("instance claim", e)),
        };
        let sock = NlSocket::open(socket::NETLINK_NETFILTER)
            .map_err(|e| FilterError::Io("netlink socket", e))?;
        let can = Abilities {
            owner: std::env::var_os(NO_OWNER_ENV).is_none(),
            one_shot: true,
            destroy: false,
        };
        let seq = std::process::id().wrapping_shl(12);
        let mut n = Nft::with(cfg, sock, claim, seq, can);
        match n.delete_table() {
            Ok(()) => log::warn!(target: "notice", "removed stale table inet {}", n.table),
            Err(FilterError::Kernel(_, libc::ENOENT)) => {}
            // Another process's owned table, or no permission at all:
            // reading the table tells which.
            Err(FilterError::Kernel(_, libc::EPERM | libc::EBUSY)) => {
                return Err(match n.present() {
                    Ok(_) => FilterError::InUse(n.table.as_str().into()),
                    Err(e) => e,
                })
            }
            Err(e) => return Err(e),
        }
        // Newest kernels first; each step down is said in the log.
        let mut r = n.create();
        if r.as_ref().is_err_and(unsupported) && n.can.owner {
            n.can.owner = false;
            r = n.create();
            if r.is_ok() {
                log::warn!(target: "notice", "kernel has no owned tables (Linux < 5.12): table inet {} stays after a crash until the next start; its elements expire within {} s", n.table, ELEMENT_TIMEOUT_MS / 1000);
            }
        }
        if r.as_ref().is_err_and(unsupported) {
            n.can.one_shot = false;
            r = n.create();
            if r.is_ok() {
                log::warn!(target: "notice", "kernel cannot delete map elements from the packet path: a data mapping admits connections until it expires ({} s) or is replaced", ELEMENT_TIMEOUT_MS / 1000);
            }
        }
        r?;
        // The keeper stays for as long as an instance is configured: a
        // crash (the owned table gone with the process) leaves the nat
        // hooks registered, so data connections under way keep their NAT
        // while no mapping of the dead process remains.
        match n.batch("keeper", |m, seq, _| keeper(m, seq)) {
            Ok(()) => log::debug!("table inet {} holds the nat hooks", instance::KEEPER),
            Err(e) => log::warn!(
                "keeping the nat hooks in table inet {}: {e}",
                instance::KEEPER
            ),
        }
        n.can.destroy = n.probe_destroy();
        log::debug!("nftables abilities: {:?}", n.can);
        Ok(n)
    }

    /// What a live handover passes on: the socket that owns the table
    /// and the claim on its name (-1: none).
    pub fn handover_fds(&self) -> [std::os::fd::RawFd; 2] {
        [
            self.sock.raw_fd(),
            self._claim.as_ref().map_or(-1, Claim::fd),
        ]
    }

    pub fn save(&self, w: &mut crate::handover::wire::Writer) {
        w.u32(self.seq);
        w.bool(self.can.owner);
        w.bool(self.can.one_shot);
        w.bool(self.can.destroy);
    }

    /// The table a previous image of this process made, as it was: no
    /// probe, no rebuild (its elements are the sessions' mappings).
    pub fn adopt(
        cfg: &Config,
        sock: std::os::fd::OwnedFd,
        claim: Option<std::os::fd::OwnedFd>,
        r: &mut crate::handover::wire::Reader,
    ) -> Option<Nft> {
        let seq = r.u32()?;
        let can = Abilities {
            owner: r.bool()?,
            one_shot: r.bool()?,
            destroy: r.bool()?,
        };
        let sock = NlSocket::adopt(sock).ok()?;
        Some(Nft::with(cfg, sock, claim.map(Claim::adopt), seq, can))
    }

    /// The backend of `cfg`'s instance on `sock`: `open`'s new socket,
    /// or the one a handover passed on.
    fn with(cfg: &Config, sock: NlSocket, claim: Option<Claim>, seq: u32, can: Abilities) -> Nft {
        Nft {
            sock,
            msg: Box::default(),
            seq,
            table: instance::table_name(&cfg.instance),
            _claim: claim,
            fam: if cfg.ipv6 { Family::V6 } else { Family::V4 },
            can,
            cfg: cfg.clone(),
        }
    }

    /// Whether the kernel deletes a missing element without ENOENT.
    fn probe_destroy(&mut self) -> bool {
        let dnat = names(self.fam).dnat;
        let zero = [0u8; 36];
        let key = &zero[..objects::key_len(self.fam)];
        self.batch("probe destroy", |m, seq, t| {
            objects::del_element(m, seq(), t, dnat, key, Del::Destroy)
        })
        .is_ok()
    }

    /// Element timeout: none where the kernel both uses elements up and
    /// drops the table with the process.
    fn timeout(&self) -> Option<u64> {
        match self.can.owner && self.can.one_shot {
            true => None,
            false => Some(ELEMENT_TIMEOUT_MS),
        }
    }

    fn elements(&self, d: &DataMap) -> Elements {
        let nm = names(self.fam);
        Elements {
            key: objects::key(&d.src, &d.dst, d.dport),
            dnat_value: objects::value(&d.to, Some(d.to_port)),
            snat_value: objects::value(&d.nat_src, d.nat_sport),
            snat_map: match d.nat_sport {
                Some(_) => nm.snatp,
                None => nm.snat,
            },
        }
    }

    fn flags(&self) -> u32 {
        if self.can.owner {
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
        objects::get_table(&mut self.msg, seq, &self.table);
        let bytes = self.msg.bytes().map_err(|_| FilterError::Overflow)?;
        match self.sock.transact(bytes, seq, seq) {
            Ok(Ok(())) => Ok(true),
            Ok(Err((_, libc::ENOENT))) => Ok(false),
            Ok(Err((_, errno))) => Err(errno_err("get table", errno)),
            Err(e) => Err(FilterError::Io("get table", e)),
        }
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
        self.create()
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Wraps what `body` encodes into a batch and sends it.
    fn batch(
        &mut self,
        what: &'static str,
        body: impl FnOnce(&mut MsgBuf, &mut dyn FnMut() -> u32, &str),
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
                &self.table,
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

    fn create(&mut self) -> Result<(), FilterError> {
        let flags = self.flags();
        let cfg = &self.cfg;
        let fam = self.fam;
        let nm = names(fam);
        let marks = Marks {
            ct_mark: cfg.tag,
            log: cfg.verbose > 0,
        };
        let port20 = cfg.port20;
        let listen_port = cfg.listen_port;
        let one_shot = self.can.one_shot;
        // In reverse mode the server is fixed, so a redirect of traffic
        // to the router itself (its published address) is the point.
        let not_local = cfg.reverse_addr.is_none();
        let fwd = cfg.tag.filter(|_| cfg.queue.is_some() || cfg.verbose > 1);
        let (queue, log_all) = (cfg.queue, cfg.verbose > 1);
        let (intercept, outs) = (cfg.intercept.clone(), cfg.egress.clone());
        let to_addr = Some(cfg.listen_addr).filter(|a| !a.is_unspecified());
        let rule = |chain, set, set_id, kind, value, key, marks| NatRule {
            chain,
            fam,
            set,
            set_id,
            kind,
            value,
            key,
            one_shot,
            marks,
        };
        self.batch("create table", |m, seq, t| {
            objects::table(m, seq(), t, flags);
            objects::map(m, seq(), t, nm.dnat, ID_DNAT, fam, Value::AddrPort);
            objects::map(m, seq(), t, nm.snat, ID_SNAT, fam, Value::Addr);
            if port20 {
                objects::map(m, seq(), t, nm.snatp, ID_SNATP, fam, Value::AddrPort);
            }
            let (hook, prio) = (objects::HOOK_PREROUTING, objects::PRIO_DSTNAT);
            objects::base_chain(m, seq(), t, PRE, "nat", hook, prio);
            let (hook, prio) = (objects::HOOK_POSTROUTING, objects::PRIO_SRCNAT);
            objects::base_chain(m, seq(), t, POST, "nat", hook, prio);
            for ifc in &intercept {
                let mut i = Intercept {
                    iface: ifc,
                    not_local,
                    out: None,
                    to: to_addr,
                };
                if outs.is_empty() {
                    objects::intercept_rule(m, seq(), t, PRE, &i, fam, listen_port);
                }
                for o in &outs {
                    i.out = Some(o);
                    objects::intercept_rule(m, seq(), t, PRE, &i, fam, listen_port);
                }
            }
            let (dnat, snat) = (expr::NAT_DNAT, expr::NAT_SNAT);
            let (packet, ct) = (KeyFrom::Packet, KeyFrom::Conntrack);
            let none = Marks::default();
            let r = rule(PRE, nm.dnat, ID_DNAT, dnat, Value::AddrPort, packet, marks);
            objects::nat_rule(m, seq(), t, &r);
            let r = rule(POST, nm.snat, ID_SNAT, snat, Value::Addr, ct, none);
            objects::nat_rule(m, seq(), t, &r);
            if port20 {
                let r = rule(POST, nm.snatp, ID_SNATP, snat, Value::AddrPort, ct, none);
                objects::nat_rule(m, seq(), t, &r);
            }
            if let Some(tag) = fwd {
                let (hook, prio) = (objects::HOOK_FORWARD, objects::PRIO_FILTER);
                objects::base_chain(m, seq(), t, FWD, "filter", hook, prio);
                objects::forward_rule(m, seq(), t, FWD, tag, queue, log_all);
            }
        })
    }

    /// One batch: `gone`'s elements deleted quietly, `e`'s added.
    fn add(&mut self, gone: Option<&Elements>, e: &Elements) -> Result<Installed, FilterError> {
        let dnat = names(self.fam).dnat;
        let t = self.timeout();
        let r = self.batch("add mapping", |m, seq, tb| {
            if let Some(g) = gone {
                let k = g.key.bytes();
                objects::del_element(m, seq(), tb, dnat, k, Del::Destroy);
                objects::del_element(m, seq(), tb, g.snat_map, k, Del::Destroy);
            }
            let k = e.key.bytes();
            objects::add_element(m, seq(), tb, dnat, k, e.dnat_value.bytes(), t);
            objects::add_element(m, seq(), tb, e.snat_map, k, e.snat_value.bytes(), t);
        });
        match r {
            Ok(()) => Ok(Installed::Done),
            // The random proxy port is taken for this pair of hosts.
            Err(FilterError::Kernel(_, libc::EEXIST)) => Ok(Installed::PortInUse),
            Err(e) => Err(e),
        }
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.raw_fd()
    }
}

impl DataPath for Nft {
    /// Installs `new`'s two elements, removing `old`'s in the same batch:
    /// one netlink round trip per PORT/PASV where the kernel can delete
    /// quietly (an element its connection used up is gone already).
    fn install(&mut self, old: Option<&DataMap>, new: &DataMap) -> Result<Installed, FilterError> {
        let e = self.elements(new);
        let gone = old.map(|o| self.elements(o));
        // Without quiet deletes the old elements go first, one by one.
        let gone = match (old, gone) {
            (Some(o), Some(_)) if !self.can.destroy => {
                self.remove(o)?;
                None
            }
            (_, g) => g,
        };
        match self.add(gone.as_ref(), &e) {
            Err(FilterError::Kernel(_, libc::ENOENT)) if !self.present()? => {
                self.rebuild()?;
                self.add(None, &e)
            }
            r => r,
        }
    }

    /// Removes one data connection's elements; those already used up or
    /// expired are not an error.
    fn remove(&mut self, d: &DataMap) -> Result<(), FilterError> {
        let dnat = names(self.fam).dnat;
        let e = self.elements(d);
        let how = match self.can.destroy {
            true => Del::Destroy,
            false => Del::Delete,
        };
        let both = self.batch("remove mapping", |m, seq, tb| {
            objects::del_element(m, seq(), tb, dnat, e.key.bytes(), how);
            objects::del_element(m, seq(), tb, e.snat_map, e.key.bytes(), how);
        });
        match both {
            // One was gone: the batch was rolled back, so one by one.
            Err(FilterError::Kernel(_, libc::ENOENT)) => {
                for set in [dnat, e.snat_map] {
                    match self.batch("remove mapping", |m, seq, tb| {
                        objects::del_element(m, seq(), tb, set, e.key.bytes(), Del::Delete)
                    }) {
                        Ok(()) | Err(FilterError::Kernel(_, libc::ENOENT)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            r => r,
        }
    }

    /// Pending mappings are refreshed to outlive the element timeout
    /// only where the kernel uses elements up but would not drop the
    /// table with a crashed process.
    fn refresh_every(&self) -> Option<Duration> {
        match self.timeout().is_some() && self.can.one_shot {
            true => Some(REFRESH_EVERY),
            false => None,
        }
    }

    /// Gives a pending mapping a fresh timeout. False when its elements
    /// are gone: its connection used them up (or they expired).
    fn refresh(&mut self, d: &DataMap) -> Result<bool, FilterError> {
        let dnat = names(self.fam).dnat;
        let e = self.elements(d);
        let t = self.timeout();
        let r = self.batch("refresh mapping", |m, seq, tb| {
            let k = e.key.bytes();
            objects::del_element(m, seq(), tb, dnat, k, Del::Delete);
            objects::del_element(m, seq(), tb, e.snat_map, k, Del::Delete);
            objects::add_element(m, seq(), tb, dnat, k, e.dnat_value.bytes(), t);
            objects::add_element(m, seq(), tb, e.snat_map, k, e.snat_value.bytes(), t);
        });
        match r {
            Ok(()) => Ok(true),
            // Rolled back: used up (or expired). The session forgets it,
            // so its key is free again.
            Err(FilterError::Kernel(_, libc::ENOENT)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Re-creates the table if it is gone; true when it had to. Mappings
    /// that went with it are lost; new ones work again.
    fn ensure(&mut self) -> Result<bool, FilterError> {
        if self.present()? {
            return Ok(false);
        }
        self.rebuild()?;
        Ok(true)
    }

    /// Deletes the table and everything in it, leaving the keeper's
    /// nat chain registered in the same batch (see `instance::KEEPER`).
    fn close(&mut self) -> Result<(), FilterError> {
        let with_keeper = self.batch("delete table", |m, seq, t| {
            keeper(m, seq);
            objects::del_table(m, seq(), t);
        });
        match with_keeper {
            Ok(()) => Ok(()),
            // The table was flushed away already: nothing to keep.
            Err(FilterError::Kernel(_, libc::ENOENT)) => Ok(()),
            Err(e) => {
                log::warn!(
                    "keeping the nat hooks in table inet {}: {e}",
                    instance::KEEPER
                );
                self.delete_table()
            }
        }
    }

    fn table(&self) -> &str {
        &self.table
    }

    /// True when the kernel drops the table by itself with the process.
    fn owned(&self) -> bool {
        self.can.owner
    }

    /// Conntrack answers this (SO_ORIGINAL_DST, in `intercept`).
    fn original_dst(&mut self, _client: SocketAddr, _local: SocketAddr) -> Option<SocketAddr> {
        None
    }

    fn one_shot(&self) -> OneShot {
        match self.can.one_shot {
            true => OneShot::Kernel,
            false => OneShot::Replaced,
        }
    }
}
