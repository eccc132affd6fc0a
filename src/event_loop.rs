//! The one poll loop: listener, sessions, timers and signals. No protocol
//! logic lives here.

use crate::config::Config;
use crate::filter::Backend;
use crate::ftp::command::Af;
use crate::ftp::policy::Policy;
use crate::intercept;
use crate::net;
use crate::session::{Ctx, End, Phase, Rng, Session};
use crate::signals;
use crate::slab::Slab;
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Sessions use tokens from here: client 2+2i, server 3+2i.
const FIRST: usize = 2;
/// How long a server may take to accept the control connection, and then
/// to finish its greeting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_secs(1);
/// Every this many ticks, check that the kernel table is still there.
const CHECK_TABLE_TICKS: u32 = 5;

pub struct Proxy {
    cfg: Config,
    poll: Poll,
    listener: TcpListener,
    listener_paused: bool,
    signals: OwnedFd,
    sessions: Slab<Session>,
    filter: Backend,
    rng: Rng,
    next_id: u64,
    ticks: u32,
}

fn client_token(i: usize) -> Token {
    Token(FIRST + 2 * i)
}

fn server_token(i: usize) -> Token {
    Token(FIRST + 2 * i + 1)
}

impl Proxy {
    /// Everything is allocated here, once: the slab, the event list.
    pub fn new(cfg: Config, mut listener: TcpListener, filter: Backend) -> io::Result<Proxy> {
        let poll = Poll::new()?;
        let signals = signals::install()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        Ok(Proxy {
            sessions: Slab::with_capacity(cfg.max_sessions as usize),
            cfg,
            poll,
            listener,
            listener_paused: false,
            signals,
            filter,
            rng: Rng::from_os(),
            next_id: 0,
            ticks: 0,
        })
    }

    /// Runs until a terminating signal, then ends every session and removes
    /// every kernel object.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    SIGNALS => {
                        if self.signals() {
                            self.shutdown();
                            return Ok(());
                        }
                    }
                    Token(t) => self.pump((t - FIRST) / 2),
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK;
            }
        }
    }

    /// Handles pending signals; true when the daemon must stop.
    fn signals(&mut self) -> bool {
        let mut buf = [0u8; 32];
        let mut stop = false;
        loop {
            let n = signals::drain(self.signals.as_raw_fd(), &mut buf);
            if n == 0 {
                break;
            }
            for &sig in &buf[..n] {
                let sig = libc::c_int::from(sig);
                if signals::TERMINATE.contains(&sig) {
                    log::warn!(target: "notice", "signal {sig}: shutting down");
                    stop = true;
                } else if sig == libc::SIGUSR1 {
                    self.report();
                }
            }
        }
        stop
    }

    /// SIGUSR1: one line per live session (who is connected).
    fn report(&mut self) {
        let now = Instant::now();
        log::warn!(target: "notice", "{} of {} sessions in use", self.sessions.len(), self.sessions.capacity());
        for (_, s) in self.sessions.iter_mut() {
            let state = match s.phase {
                Phase::Connecting => "connecting",
                Phase::Running => "running",
            };
            // The key's port is the proxy port in both modes.
            let pp = s.map.map_or(0, |m| m.dport);
            log::warn!(target: "notice",
                "#{} client {} server {} proxy-port {} state {} idle {}s commands {} data {}",
                s.id, s.client_addr, s.server_addr, pp, state,
                now.saturating_duration_since(s.last_io).as_secs(), s.commands, s.data_conns
            );
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.start(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    // Out of descriptors: stop accepting for a tick rather
                    // than spin on a listener that stays readable.
                    log::error!("accept: {e}; pausing new connections for a second");
                    if self.poll.registry().deregister(&mut self.listener).is_ok() {
                        self.listener_paused = true;
                    }
                    return;
                }
                Err(e) => log::warn!("accept: {e}"),
            }
        }
    }

    /// Refuses a client with a 421 (best effort: one non-blocking write).
    fn refuse(mut stream: TcpStream, peer: SocketAddr, why: fmt::Arguments<'_>) {
        log::warn!("refusing client {peer}: {why}");
        let _ = stream.write(b"421 Service not available, closing control connection\r\n");
    }

    fn start(&mut self, client: TcpStream, peer: SocketAddr) {
        if self.sessions.is_full() {
            return Self::refuse(
                client,
                peer,
                format_args!("session limit ({}) reached", self.sessions.capacity()),
            );
        }
        let local = match client.local_addr() {
            Ok(a) => a,
            Err(e) => return log::warn!("client {peer}: {e}"),
        };
        let orig = self
            .filter
            .original_dst(peer, local)
            .unwrap_or_else(|| intercept::original_dst(&client, local));
        let server = match self.cfg.reverse_addr {
            Some(a) => SocketAddr::new(a, self.cfg.reverse_port),
            None if orig == local && orig.port() == self.cfg.listen_port => {
                let why = "connected to the proxy itself, not redirected (use -R for reverse mode)";
                return Self::refuse(client, peer, format_args!("{why}"));
            }
            None => orig,
        };
        let server_sock = match net::connect_from(self.cfg.source_addr, server) {
            Ok(s) => s,
            Err(e) => {
                return Self::refuse(
                    client,
                    peer,
                    format_args!("cannot connect to server {server}: {e}"),
                )
            }
        };
        let _ = client.set_nodelay(true);
        if let Err(e) = net::set_oob_inline(&client) {
            log::warn!("client {peer}: SO_OOBINLINE: {e}; ABOR may not reach the server");
        }
        let _ = server_sock.set_nodelay(true);
        self.next_id += 1;
        let id = self.next_id;
        let now = Instant::now();
        let Some(i) = self.sessions.insert_with(|_| {
            let family = if peer.is_ipv4() { Af::Inet } else { Af::Inet6 };
            let policy = Policy::new(self.cfg.ipv6, self.cfg.anonymous_only, family);
            Session::new(id, client, server_sock, peer, orig, server, policy, now)
        }) else {
            return;
        };
        log::debug!("#{id} client {peer} wants {orig}, connecting to {server}");
        let registry = self.poll.registry();
        let both = Interest::READABLE | Interest::WRITABLE;
        let registered = match self.sessions.get_mut(i) {
            Some(s) => registry
                .register(&mut s.client, client_token(i), both)
                .and_then(|()| registry.register(&mut s.server, server_token(i), both)),
            None => return,
        };
        if let Err(e) = registered {
            self.end(i, End::ClientIo(e));
        }
    }

    fn pump(&mut self, i: usize) {
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        let mut cx = Ctx {
            cfg: &self.cfg,
            filter: &mut self.filter,
            rng: &mut self.rng,
            now: Instant::now(),
        };
        if let Err(why) = s.pump(&mut cx) {
            self.end(i, why);
        }
    }

    fn end(&mut self, i: usize, why: End) {
        if let Some(mut s) = self.sessions.remove(i) {
            let _ = self.poll.registry().deregister(&mut s.client);
            let _ = self.poll.registry().deregister(&mut s.server);
            s.close(&mut self.filter, &why);
        }
    }

    /// Once a second: timeouts, a paused listener comes back, and now and
    /// then the kernel table is re-created if an admin removed it.
    fn tick(&mut self, now: Instant) {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % CHECK_TABLE_TICKS == 0 {
            if let Err(e) = self.filter.ensure() {
                log::error!("checking table inet {}: {e}", self.filter.table());
            }
        }
        let idle = Duration::from_secs(self.cfg.timeout.into());
        for i in 0..self.sessions.capacity() {
            let why = match self.sessions.get_mut(i) {
                Some(s) if !s.greeted && now - s.started >= CONNECT_TIMEOUT => match s.phase {
                    Phase::Connecting => End::ConnectTimeout,
                    Phase::Running => End::GreetingTimeout,
                },
                Some(s) if now.saturating_duration_since(s.last_io) >= idle => End::IdleTimeout,
                _ => continue,
            };
            self.end(i, why);
        }
        if self.listener_paused
            && self
                .poll
                .registry()
                .register(&mut self.listener, LISTENER, Interest::READABLE)
                .is_ok()
        {
            self.listener_paused = false;
        }
    }

    fn shutdown(&mut self) {
        for i in 0..self.sessions.capacity() {
            self.end(i, End::Shutdown);
        }
        match self.filter.close() {
            Ok(()) => log::info!(target: "notice", "removed table inet {}", self.filter.table()),
            Err(e) => log::error!("removing table inet {}: {e}", self.filter.table()),
        }
    }
}
