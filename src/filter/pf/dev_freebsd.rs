//! /dev/pf on FreeBSD: one transaction per mapping over the session
//! anchor's filter, nat and rdr rulesets; each rule's pool address goes in
//! through DIOCBEGINADDRS/DIOCADDADDR first.

use super::dev::{ioctl, AnchorPath, Anchors, Common};
use super::freebsd::*;
use super::rules::exact;
use super::rules_freebsd::{mapping_rules, FbRule};
use crate::config::Config;
use crate::filter::{DataMap, FilterError, OneShot};
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Rulesets of one transaction, in this order.
const RULESETS: [i32; 3] = [PF_RULESET_FILTER, PF_RULESET_NAT, PF_RULESET_RDR];

pub struct Pf {
    c: Common,
    /// Reused for every rule and pool: allocated once.
    io: Box<PfiocRule>,
    pool: Box<PfiocPooladdr>,
    rules: Box<[FbRule; 4]>,
}

fn addr(a: IpAddr) -> PfAddr {
    let mut p = PfAddr::default();
    match a {
        IpAddr::V4(v4) => p.addr8[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => p.addr8 = v6.octets(),
    }
    p
}

impl Pf {
    /// Opens /dev/pf, checks that pf is enabled and flushes the anchors
    /// of daemons that no longer run.
    pub fn open(cfg: &Config) -> Result<Pf, FilterError> {
        let mut pf = Pf {
            c: Common::open(cfg, DIOCGETSTATUS, |s: &PfStatus| s.running != 0)?,
            io: Box::default(),
            pool: Box::default(),
            rules: Box::new([FbRule::default(); 4]),
        };
        super::dev::sweep_and_say(&mut pf);
        Ok(pf)
    }

    /// After an `rdr … -> 127.0.0.1 port 8021`, the destination the client
    /// wanted, from pf's state (DIOCNATLOOK).
    fn natlook(&mut self, client: SocketAddr, local: SocketAddr) -> Option<SocketAddr> {
        let mut n = PfiocNatlook {
            saddr: addr(client.ip()),
            daddr: addr(local.ip()),
            sport: client.port().to_be(),
            dport: local.port().to_be(),
            af: if client.is_ipv4() { AF_INET } else { AF_INET6 },
            proto: 6,
            direction: PF_OUT,
            ..PfiocNatlook::default()
        };
        ioctl(&self.c.dev, DIOCNATLOOK, &mut n, "DIOCNATLOOK").ok()?;
        let port = u16::from_be(n.rdport);
        Some(match client {
            SocketAddr::V4(_) => {
                let a: [u8; 4] = n.rdaddr.addr8[..4].try_into().ok()?;
                SocketAddr::new(IpAddr::from(a), port)
            }
            SocketAddr::V6(_) => SocketAddr::new(IpAddr::from(n.rdaddr.addr8), port),
        })
    }

    /// Replaces the session anchor's rulesets with the first `count` rules
    /// of `self.rules` (0 flushes them); rolled back on any failure.
    fn transaction(&mut self, anchor: &AnchorPath, count: usize) -> Result<(), FilterError> {
        let mut e = [PfiocTransE::default(); 3];
        for (t, &rs) in e.iter_mut().zip(&RULESETS) {
            t.kind = rs;
            t.anchor = *anchor;
        }
        let mut t = PfiocTrans {
            size: e.len() as i32,
            esize: size_of::<PfiocTransE>() as i32,
            array: e.as_mut_ptr(),
        };
        ioctl(&self.c.dev, DIOCXBEGIN, &mut t, "DIOCXBEGIN")?;
        let mut r = Ok(());
        for i in 0..count {
            r = self.add_rule(i, &e);
            if r.is_err() {
                break;
            }
        }
        if r.is_ok() {
            r = super::dev::commit(&self.c.dev, DIOCXCOMMIT, &mut t);
        }
        if r.is_err() {
            let _ = ioctl(&self.c.dev, DIOCXROLLBACK, &mut t, "DIOCXROLLBACK");
        }
        r
    }

    /// One rule: its pool (address, if any) first, then the rule.
    fn add_rule(&mut self, i: usize, e: &[PfiocTransE; 3]) -> Result<(), FilterError> {
        let r = self.rules[i];
        let Some(te) = e.iter().find(|t| t.kind == r.ruleset) else {
            return Err(FilterError::Kernel("ruleset", libc::EINVAL));
        };
        let pool = &mut *self.pool;
        *pool = PfiocPooladdr::default();
        pool.anchor = te.anchor;
        ioctl(&self.c.dev, DIOCBEGINADDRS, pool, "DIOCBEGINADDRS")?;
        let pool_ticket = pool.ticket;
        if let Some(a) = r.pool {
            pool.af = r.rule.af;
            exact(&mut pool.addr.addr, a);
            ioctl(&self.c.dev, DIOCADDADDR, pool, "DIOCADDADDR")?;
        }
        let io = &mut *self.io;
        *io = PfiocRule::default();
        io.ticket = te.ticket;
        io.pool_ticket = pool_ticket;
        io.anchor = te.anchor;
        io.rule = r.rule;
        ioctl(&self.c.dev, DIOCADDRULE, io, "DIOCADDRULE")
    }
}

impl Anchors for Pf {
    /// FreeBSD's pf has no one-shot rules (no PFRULE_ONCE in its pf.h):
    /// the proxy looks once a second whether the anchor's pass rule has
    /// made its state, and then flushes the anchor.
    const ONE_SHOT: OneShot = OneShot::Polled;
    const CHECK_EVERY: Option<Duration> = Some(Duration::from_secs(1));

    /// The anchor gets the four rules of `d`, replacing the previous
    /// PORT/PASV's, or nothing.
    fn load(&mut self, anchor: &AnchorPath, d: Option<&DataMap>) -> Result<(), FilterError> {
        match d {
            Some(d) => {
                mapping_rules(d, &self.c.opts(), &mut self.rules);
                self.transaction(anchor, 4)
            }
            None => self.transaction(anchor, 0),
        }
    }

    /// The anchor's first filter rule (`pass in … keep state (max 1)`)
    /// has made a state: DIOCGETRULES for the ticket, DIOCGETRULE for its
    /// counters. An anchor with no filter rule counts as used.
    fn used(&mut self, anchor: &AnchorPath) -> Result<bool, FilterError> {
        let io = &mut *self.io;
        *io = PfiocRule::default();
        io.anchor = *anchor;
        io.rule.action = super::openbsd::PF_PASS;
        ioctl(&self.c.dev, DIOCGETRULES, io, "DIOCGETRULES")?;
        if io.nr == 0 {
            return Ok(true);
        }
        io.nr = 0;
        ioctl(&self.c.dev, DIOCGETRULE, io, "DIOCGETRULE")?;
        Ok(io.rule.u_states_tot > 0)
    }

    fn lookup(&mut self, client: SocketAddr, local: SocketAddr) -> Option<SocketAddr> {
        self.natlook(client, local)
    }

    fn dev(&self) -> &std::os::fd::OwnedFd {
        &self.c.dev
    }
}
