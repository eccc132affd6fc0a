//! /dev/pf on OpenBSD: one transaction per mapping on the session's anchor,
//! holding its rdr and nat rules (pf_rule has a pool for each).

use super::dev::{ioctl, Common};
use super::openbsd::*;
use super::rules::{anchor_name, mapping_rules};
use crate::config::Config;
use crate::filter::{DataMap, FilterError};
use std::mem::size_of;
use std::net::SocketAddr;

pub struct Pf {
    c: Common,
    /// Reused for every rule: 3.4 KB, allocated once.
    io: Box<PfiocRule>,
    rules: Box<[PfRule; 2]>,
}

impl Pf {
    /// Opens /dev/pf and checks that pf is enabled.
    pub fn open(cfg: &Config) -> Result<Pf, FilterError> {
        Ok(Pf {
            c: Common::open(cfg, DIOCGETSTATUS, |s: &PfStatus| s.running != 0)?,
            io: Box::default(),
            rules: Box::new([PfRule::default(); 2]),
        })
    }

    /// `divert-to` leaves the original destination as the socket's own
    /// address: nothing to look up.
    pub fn original_dst(&mut self, _client: SocketAddr, _local: SocketAddr) -> Option<SocketAddr> {
        None
    }

    /// Replaces the session's anchor with `count` rules of `self.rules`
    /// (0 flushes it); rolled back if any step fails.
    fn transaction(&mut self, session: u64, count: usize) -> Result<(), FilterError> {
        let mut e = PfiocTransE {
            kind: PF_TRANS_RULESET,
            ..PfiocTransE::default()
        };
        anchor_name(&mut e.anchor, super::dev::pid(), session);
        let mut t = PfiocTrans {
            size: 1,
            esize: size_of::<PfiocTransE>() as i32,
            array: &mut e,
        };
        ioctl(&self.c.dev, DIOCXBEGIN, &mut t, "DIOCXBEGIN")?;
        for i in 0..count {
            let io = &mut *self.io;
            *io = PfiocRule::default();
            // SAFETY: t.array points at e, alive for this whole call.
            let (ticket, anchor) = unsafe { ((*t.array).ticket, (*t.array).anchor) };
            io.ticket = ticket;
            io.anchor = anchor;
            io.rule = self.rules[i];
            if let Err(err) = ioctl(&self.c.dev, DIOCADDRULE, io, "DIOCADDRULE") {
                let _ = ioctl(&self.c.dev, DIOCXROLLBACK, &mut t, "DIOCXROLLBACK");
                return Err(err);
            }
        }
        if let Err(err) = super::dev::commit(&self.c.dev, DIOCXCOMMIT, &mut t) {
            let _ = ioctl(&self.c.dev, DIOCXROLLBACK, &mut t, "DIOCXROLLBACK");
            return Err(err);
        }
        Ok(())
    }

    /// The session's anchor gets the rdr and nat rules of `d`, replacing
    /// what it had (the previous PORT/PASV).
    pub fn add(&mut self, d: &DataMap) -> Result<(), FilterError> {
        mapping_rules(d, &self.c.opts(), &mut self.rules);
        self.transaction(d.session, 2)
    }

    super::dev::anchor_backend!();
}
