//! A session's state as it crosses a live handover: everything but its
//! two sockets, which the successor inherits as they are. Times go as
//! their age, since `Instant`s mean nothing to another process image.

use super::{DataMode, Extended, Input, Pending, Phase, Session};
use crate::filter::DataMap;
use crate::ftp::line::{LineBuf, OutBuf};
use crate::ftp::policy::Policy;
use crate::ftp::relay::ReplyRelay;
use crate::handover::wire::{Reader, Writer};
use crate::log::Budget;
use crate::readiness::Readable;
use crate::status::totals::Moved;
use mio::net::TcpStream;
use std::time::{Duration, Instant};

fn age(w: &mut Writer, now: Instant, t: Instant) {
    w.u64(now.saturating_duration_since(t).as_millis() as u64);
}

fn instant(r: &mut Reader, now: Instant) -> Option<Instant> {
    let ms = r.u64()?;
    Some(now.checked_sub(Duration::from_millis(ms)).unwrap_or(now))
}

fn input(i: Input) -> u8 {
    match i {
        Input::Open => 0,
        Input::Ended => 1,
        Input::Passed => 2,
    }
}

fn input_of(v: u8) -> Option<Input> {
    [Input::Open, Input::Ended, Input::Passed]
        .get(usize::from(v))
        .copied()
}

impl Session {
    pub fn save(&self, w: &mut Writer, now: Instant) {
        w.u64(self.id);
        w.addr(self.client_addr);
        w.addr(self.orig_server);
        w.addr(self.server_addr);
        match self.proxy_addr {
            Some(a) => {
                w.bool(true);
                w.ip(a);
            }
            None => w.bool(false),
        }
        w.u8(self.phase as u8);
        age(w, now, self.started);
        age(w, now, self.last_io);
        w.u32(self.commands);
        w.u32(self.negotiated);
        w.u8(match self.mode {
            None => 0,
            Some(DataMode::Passive) => 1,
            Some(DataMode::Active) => 2,
        });
        w.u64(self.moved.connections);
        w.u64(self.moved.to_client);
        w.u64(self.moved.to_server);
        match &self.pending {
            Some(p) => {
                w.bool(true);
                p.map.save(w);
                age(w, now, p.since);
            }
            None => w.bool(false),
        }
        self.policy.save(w);
        self.from_client.save(w);
        self.from_server.save(w);
        self.to_client.save(w);
        self.to_server.save(w);
        self.relay.save(w);
        w.u8(input(self.client_input));
        w.u8(input(self.server_input));
        w.u8(self.client_readable as u8);
        w.u8(self.server_readable as u8);
        w.bool(self.connect_reported);
        self.log_budget.save(w);
        w.bool(self.server_epsv == Extended::Refused);
        w.bool(self.server_eprt == Extended::Refused);
        w.bool(self.tls_logged);
    }

    /// The session saved in `r`, on the sockets it had.
    pub fn load(
        r: &mut Reader,
        client: TcpStream,
        server: TcpStream,
        now: Instant,
    ) -> Option<Session> {
        let extended = |refused: bool| match refused {
            true => Extended::Refused,
            false => Extended::Unknown,
        };
        let id = r.u64()?;
        let (client_addr, orig_server, server_addr) = (r.addr()?, r.addr()?, r.addr()?);
        let proxy_addr = match r.bool()? {
            true => Some(r.ip()?),
            false => None,
        };
        let phase = [Phase::Connecting, Phase::Greeting, Phase::Running]
            .get(usize::from(r.u8()?))
            .copied()?;
        let (started, last_io) = (instant(r, now)?, instant(r, now)?);
        let (commands, negotiated) = (r.u32()?, r.u32()?);
        let mode = match r.u8()? {
            0 => None,
            1 => Some(DataMode::Passive),
            2 => Some(DataMode::Active),
            _ => return None,
        };
        let moved = Moved {
            connections: r.u64()?,
            to_client: r.u64()?,
            to_server: r.u64()?,
        };
        let pending = match r.bool()? {
            true => Some(Pending {
                map: DataMap::load(r)?,
                since: instant(r, now)?,
            }),
            false => None,
        };
        Some(Session {
            id,
            client,
            server,
            client_addr,
            orig_server,
            server_addr,
            proxy_addr,
            phase,
            started,
            last_io,
            commands,
            negotiated,
            mode,
            moved,
            pending,
            policy: Policy::load(r)?,
            from_client: LineBuf::load(r)?,
            from_server: LineBuf::load(r)?,
            to_client: OutBuf::load(r)?,
            to_server: OutBuf::load(r)?,
            relay: ReplyRelay::load(r)?,
            client_input: input_of(r.u8()?)?,
            server_input: input_of(r.u8()?)?,
            client_readable: Readable::from_u8(r.u8()?)?,
            server_readable: Readable::from_u8(r.u8()?)?,
            connect_reported: r.bool()?,
            log_budget: Budget::load(r)?,
            server_epsv: extended(r.bool()?),
            server_eprt: extended(r.bool()?),
            tls_logged: r.bool()?,
        })
    }
}
