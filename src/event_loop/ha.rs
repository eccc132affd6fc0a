//! The loop's side of session failover (`crate::ha`): copies out after
//! the sessions' turns, copies in from the peer, and the takeover when
//! an address of the peer's sessions becomes ours.

use super::Proxy;
use crate::conntrack::event::Tuple;
use crate::filter::Installed;
use crate::ha::link::{Inbound, Kind, Sent};
use crate::ha::repair::{self, TcpEnd};
use crate::ha::{Copied, Ha, COMMIT_WAIT};
use crate::handover::wire::Reader;
use crate::session::{Phase, Session};
use mio::net::TcpStream;
use std::io;
use std::net::IpAddr;
use std::time::Instant;

fn reply_tuple(end: &TcpEnd) -> Tuple {
    // The client side's reply direction: from the proxy's end (where the
    // redirect sent it) back to the client.
    Tuple {
        src: end.local.ip(),
        dst: end.peer.ip(),
        sport: end.local.port(),
        dport: end.peer.port(),
    }
}

fn stream(fd: std::os::fd::OwnedFd) -> io::Result<TcpStream> {
    let s = std::net::TcpStream::from(fd);
    s.set_nonblocking(true)?;
    Ok(TcpStream::from_std(s))
}

/// Why a copy could not be taken over.
enum Refused {
    /// Its connection tracking is not there (yet).
    NotCommitted,
    /// What failed, and the error when there is one.
    Failed(&'static str, Option<io::Error>),
}

fn failed(what: &'static str) -> impl FnOnce(io::Error) -> Refused {
    move |e| Refused::Failed(what, Some(e))
}

impl Proxy {
    /// After the sessions' turns: the peer gets what changed (as much as
    /// the link takes now; the rest stays marked for the next turn).
    pub(super) fn ha_flush(&mut self) {
        let Some(ha) = self.ha.as_mut() else { return };
        if !ha.link.is_up() {
            return;
        }
        if ha.resync {
            if ha.link.send(Kind::Reset, |_| true) == Sent::Later {
                return;
            }
            ha.resync = false;
            ha.ended.clear();
            for (i, c) in ha.copies.iter_mut().enumerate() {
                *c = match self.sessions.get(i) {
                    Some(_) => Copied::Behind,
                    None => Copied::No,
                };
            }
        }
        while let Some(&id) = ha.ended.front() {
            let sent = ha.link.send(Kind::End, |w| {
                w.u64(id);
                true
            });
            if sent == Sent::Later {
                return;
            }
            ha.ended.pop_front();
        }
        let now = Instant::now();
        for i in 0..ha.copies.len() {
            if ha.copies[i] != Copied::Behind {
                continue;
            }
            let copied = match self.sessions.get(i) {
                Some(s) if s.phase == Phase::Running => copy_out(ha, s, now),
                _ => Some(Copied::No),
            };
            match copied {
                Some(c) => ha.copies[i] = c,
                None => return,
            }
        }
    }

    /// The peer's frames.
    pub(super) fn ha_read(&mut self) {
        let Some(Ha { link, standby, .. }) = self.ha.as_mut() else {
            self.ha_due = false;
            return;
        };
        let now = Instant::now();
        let peer = link.peer().ip();
        let got = link.read(|kind, body| {
            log::debug!(
                "HA sync from {peer}: {kind:?} frame of {} bytes",
                body.len()
            );
            match kind {
                Kind::Reset => standby.clear(),
                Kind::Session => {
                    if !standby.put(body, now) && !standby.full_logged {
                        standby.full_logged = true;
                        log::warn!(
                            "HA sync from {peer}: more sessions than -m: some are not copied"
                        );
                    }
                }
                Kind::End => {
                    if let Some(id) = crate::ha::standby::id_of(body) {
                        standby.remove(id);
                    }
                }
            }
        });
        self.ha_due = got == Inbound::More;
    }

    /// `ip` became ours: the peer's sessions on it are to be taken over.
    pub(super) fn ha_address_added(&mut self, ip: IpAddr, now: Instant) {
        let Some(ha) = self.ha.as_mut() else { return };
        let n = ha.standby.want_on(ip, now);
        log::debug!(
            "address {ip} added: {n} of the peer's {} sessions on it",
            ha.standby.len()
        );
        if n > 0 {
            log::warn!(target: "notice", "address {ip} is ours now: taking over {n} sessions from the HA peer");
        }
    }

    /// Takes over every copy whose connection tracking has arrived; gives
    /// up on those that waited `COMMIT_WAIT`.
    pub(super) fn ha_take_over(&mut self, now: Instant) {
        let Some(ha) = self.ha.as_ref() else { return };
        for k in 0..ha.standby.capacity() {
            let Some(ha) = self.ha.as_ref() else { return };
            let c = ha.standby.get(k);
            let (Some(since), id) = (c.wanted, c.id) else {
                continue;
            };
            if id == 0 {
                continue;
            }
            match self.take_over(k, now) {
                Ok(()) => {}
                Err(Refused::NotCommitted) if now.saturating_duration_since(since) < COMMIT_WAIT => {
                    continue
                }
                Err(Refused::NotCommitted) => log::error!(
                    "HA takeover of the peer's session #{id}: its connection tracking never arrived (is conntrackd committing?): given up"
                ),
                Err(Refused::Failed(what, e)) => {
                    let e = e.map(|e| e.to_string()).unwrap_or_default();
                    log::error!("HA takeover of the peer's session #{id}: {what} {e}: given up")
                }
            }
            if let Some(ha) = self.ha.as_mut() {
                ha.standby.free(k);
            }
        }
    }

    fn take_over(&mut self, k: usize, now: Instant) -> Result<(), Refused> {
        let Some(ha) = self.ha.as_mut() else {
            return Err(Refused::Failed("no HA", None));
        };
        let c = ha.standby.get(k);
        let (peer_id, received, wanted) = (c.id, c.received, c.wanted.unwrap_or(now));
        let mut r = Reader::new(c.bytes.get(8..).unwrap_or(&[]));
        let damaged = || Refused::Failed("a damaged copy", None);
        let client_end = TcpEnd::load(&mut r).ok_or_else(damaged)?;
        let server_end = TcpEnd::load(&mut r).ok_or_else(damaged)?;
        // Only our own two ends: the listener's address and port, and
        // the -a address (the peer is trusted no further than that).
        let ours = client_end.local.ip() == self.cfg.listen_addr
            && client_end.local.port() == self.cfg.listen_port
            && Some(server_end.local.ip()) == self.cfg.source_addr;
        if !ours {
            return Err(Refused::Failed("its ends are not on -b and -a", None));
        }
        ha.seq = ha.seq.wrapping_add(1);
        let tuple = reply_tuple(&client_end);
        match crate::conntrack::tracks_reply(&mut ha.conntrack, ha.seq, &tuple) {
            Ok(true) => {}
            Ok(false) => return Err(Refused::NotCommitted),
            Err(e) => return Err(failed("conntrack lookup:")(e)),
        }
        let age = now.saturating_duration_since(received).as_millis();
        let age = u32::try_from(age).unwrap_or(u32::MAX);
        let rebuilt = |end: &TcpEnd| end.rebuild(age).and_then(stream);
        let client = rebuilt(&client_end).map_err(failed("client side:"))?;
        let server = rebuilt(&server_end).map_err(failed("server side:"))?;
        let mut s = Session::load(&mut r, client, server, received).ok_or_else(damaged)?;
        let Some(slot) = self.sessions.vacant() else {
            return Err(Refused::Failed("no free session slot", None));
        };
        crate::net::set_client_options(&s.client, client_end.peer);
        let _ = s.server.set_nodelay(true);
        let _ = crate::net::set_keepalive(&s.server);
        repair::resume(&s.client).map_err(failed("client side:"))?;
        repair::resume(&s.server).map_err(failed("server side:"))?;
        self.next_id += 1;
        s.id = self.next_id;
        if let Some(p) = s.pending {
            match self.filter.install(None, &p.map, slot) {
                Ok(Installed::Done) => {}
                Ok(Installed::PortInUse) => s.pending = None,
                Err(e) => {
                    log::error!("#{} the pending data connection's mapping: {e}", s.id);
                    s.pending = None;
                }
            }
        }
        let waited = now.saturating_duration_since(wanted).as_millis();
        log::warn!(target: "notice", "#{} took over the HA peer's session #{peer_id}: client {} server {} ({waited} ms after the address came, its copy {age} ms old)", s.id, s.client_addr, s.server_addr);
        let Some(i) = self.sessions.insert_with(|_| s) else {
            return Err(Refused::Failed("no free session slot", None));
        };
        if let Some(ha) = self.ha.as_mut() {
            ha.touch(i);
        }
        if let Err(e) = self.register(i) {
            self.end(i, crate::session::End::ClientIo(e));
            return Ok(());
        }
        self.mark_ready(i);
        Ok(())
    }

    /// Whether a session on a lost address ends silently: the peer holds
    /// a current copy and takes it over.
    pub(super) fn ha_hands_over(&self, i: usize) -> bool {
        self.ha.as_ref().is_some_and(|ha| ha.peer_has(i))
    }
}

/// One session's copy to the peer: its record and both ends, or, when an
/// end cannot be copied now (half-closed, queues too full), an End so the
/// peer drops its stale copy. What the peer has then; `None`: the link
/// takes nothing now.
fn copy_out(ha: &mut Ha, s: &Session, now: Instant) -> Option<Copied> {
    let ends = TcpEnd::capture(&s.client).and_then(|c| Ok((c, TcpEnd::capture(&s.server)?)));
    match ends {
        Ok((client, server)) => {
            let sent = ha.link.send(Kind::Session, |w| {
                w.u64(s.id);
                client.save(w);
                server.save(w);
                s.save(w, now);
                true
            });
            (sent == Sent::Taken).then_some(Copied::Current)
        }
        Err(e) => {
            log::debug!("#{} not copied to the HA peer now: {e}", s.id);
            let sent = ha.link.send(Kind::End, |w| {
                w.u64(s.id);
                true
            });
            (sent == Sent::Taken).then_some(Copied::No)
        }
    }
}
