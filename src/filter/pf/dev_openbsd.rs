//! /dev/pf on OpenBSD: one transaction per mapping on the session's anchor,
//! holding its rdr and nat rules (pf_rule has a pool for each).

use super::dev::{ioctl, AnchorPath, Anchors, Common};
use super::openbsd::*;
use super::rules::mapping_rules;
use crate::config::Config;
use crate::filter::{DataMap, FilterError, OneShot};
use std::mem::size_of;
use std::net::SocketAddr;
use std::time::Duration;

pub struct Pf {
    c: Common,
    /// Reused for every rule: 3.4 KB, allocated once.
    io: Box<PfiocRule>,
    rules: Box<[PfRule; 2]>,
}

impl Pf {
    /// Opens /dev/pf, checks that pf is enabled and flushes the anchors
    /// of daemons that no longer run.
    pub fn open(cfg: &Config) -> Result<Pf, FilterError> {
        let mut pf = Pf {
            c: Common::open(cfg, DIOCGETSTATUS, |s: &PfStatus| s.running != 0)?,
            io: Box::default(),
            rules: Box::new([PfRule::default(); 2]),
        };
        super::dev::sweep_and_say(&mut pf);
        Ok(pf)
    }

    /// Replaces `anchor`'s rules with `count` rules of `self.rules` (0
    /// flushes it); rolled back if any step fails.
    fn transaction(&mut self, anchor: &AnchorPath, count: usize) -> Result<(), FilterError> {
        let mut e = PfiocTransE {
            kind: PF_TRANS_RULESET,
            anchor: *anchor,
            ..PfiocTransE::default()
        };
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
}

impl Anchors for Pf {
    /// Both rules are `once`: pf removes each at its first match.
    const ONE_SHOT: OneShot = OneShot::Kernel;
    const CHECK_EVERY: Option<Duration> = None;

    /// The anchor gets the rdr and nat rules of `d`, replacing what it
    /// had (the previous PORT/PASV), or nothing.
    fn load(&mut self, anchor: &AnchorPath, d: Option<&DataMap>) -> Result<(), FilterError> {
        match d {
            Some(d) => {
                mapping_rules(d, &self.c.opts(), &mut self.rules);
                self.transaction(anchor, 2)
            }
            None => self.transaction(anchor, 0),
        }
    }

    /// Never asked: the kernel uses the rules up.
    fn used(&mut self, _anchor: &AnchorPath) -> Result<bool, FilterError> {
        Ok(false)
    }

    /// `divert-to` leaves the original destination as the socket's own
    /// address: nothing to look up.
    fn lookup(&mut self, _client: SocketAddr, _local: SocketAddr) -> Option<SocketAddr> {
        None
    }

    fn dev(&self) -> &std::os::fd::OwnedFd {
        &self.c.dev
    }
}
