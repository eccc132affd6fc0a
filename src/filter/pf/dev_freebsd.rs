//! /dev/pf on FreeBSD: one transaction per mapping over the session
//! anchor's filter, nat and rdr rulesets; each rule's pool address goes in
//! through DIOCBEGINADDRS/DIOCADDADDR first.

use super::dev::{ioctl, Common};
use super::freebsd::*;
use super::rules::{anchor_name, exact};
use super::rules_freebsd::{mapping_rules, FbRule};
use crate::config::Config;
use crate::filter::{DataMap, FilterError};
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};

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
    /// Opens /dev/pf and checks that pf is enabled.
    pub fn open(cfg: &Config) -> Result<Pf, FilterError> {
        Ok(Pf {
            c: Common::open(cfg, DIOCGETSTATUS, |s: &PfStatus| s.running != 0)?,
            io: Box::default(),
            pool: Box::default(),
            rules: Box::new([FbRule::default(); 4]),
        })
    }

    /// After an `rdr … -> 127.0.0.1 port 8021`, the destination the client
    /// wanted, from pf's state (DIOCNATLOOK).
    pub fn original_dst(&mut self, client: SocketAddr, local: SocketAddr) -> Option<SocketAddr> {
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
    fn transaction(&mut self, session: u64, count: usize) -> Result<(), FilterError> {
        let mut e = [PfiocTransE::default(); 3];
        for (t, &rs) in e.iter_mut().zip(&RULESETS) {
            t.kind = rs;
            anchor_name(&mut t.anchor, super::dev::pid(), session);
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

    /// The session's anchor gets the four rules of `d`, replacing the
    /// previous PORT/PASV's.
    pub fn add(&mut self, d: &DataMap) -> Result<(), FilterError> {
        mapping_rules(d, &self.c.opts(), &mut self.rules);
        self.transaction(d.session, 4)
    }

    super::dev::anchor_backend!();
}
