//! The one poll loop: listener, sessions, timers and signals. No protocol
//! logic lives here.

use crate::config::Config;
use crate::filter::{Backend, DataPath, Mappings};
use crate::ftp::command::Af;
use crate::ftp::policy::Policy;
use crate::intercept::{self, Destinations};
use crate::log::{Budget, Suppressed};
use crate::net;
use crate::session::{Ctx, End, Phase, Session, Side, Turn};
use crate::signals;
use crate::slab::Slab;
use crate::status::render::{self, Records, Row};
use crate::status::totals::Refused;
use crate::status::{self, Status, Totals};
use mio::net::{TcpListener, TcpStream, UnixListener};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
mod ha;
#[cfg(target_os = "linux")]
mod handover;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Addresses the router loses (Linux).
#[cfg(target_os = "linux")]
const ADDRS: Token = Token(usize::MAX - 18);
/// The output of a handover's probe.
#[cfg(target_os = "linux")]
const PROBE: Token = Token(usize::MAX - 17);
/// The HA sync link (Linux, `-H`): its listener, our connection to the
/// peer, the peer's to us.
#[cfg(target_os = "linux")]
const HA_TOKENS: [Token; 3] = [
    Token(usize::MAX - 19),
    Token(usize::MAX - 20),
    Token(usize::MAX - 21),
];
/// Sessions use tokens from here: client 2+2i, server 3+2i.
const FIRST: usize = 2;
/// How long a server may take to accept the control connection, and then
/// to finish its greeting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_secs(1);
/// While a data connection is followed, conntrack is read at least this
/// often even when no session has anything to do: its socket is not in
/// the poll set, and other connections' events that pass the filter
/// (without `-T`) must not fill the socket and crowd out its end.
#[cfg(target_os = "linux")]
const CONNTRACK_EVERY: Duration = Duration::from_millis(250);
/// Every this many ticks, check that the kernel table is still there.
const CHECK_TABLE_TICKS: u32 = 5;
/// Connections accepted in one turn; more wait for the next turn, so a
/// connection flood cannot hold the loop either.
const ACCEPTS_PER_TURN: usize = 16;
/// The listener's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listening {
    /// Waiting for readiness.
    Idle,
    /// The last turn stopped at `ACCEPTS_PER_TURN`: accept again.
    More,
    /// Out of descriptors: deregistered until the next tick.
    Paused,
}

/// How the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A terminating signal: every session ended, the table removed.
    Stopped,
    /// A handover the new binary cannot take: every session ended as
    /// for `Stopped`; the caller starts the new binary afresh.
    Restart,
}

/// A live handover in progress (SIGUSR2).
#[cfg(target_os = "linux")]
enum Upgrade {
    Idle,
    Probing(crate::handover::Probe),
}

pub struct Proxy {
    cfg: Config,
    poll: Poll,
    listener: TcpListener,
    listening: Listening,
    signals: OwnedFd,
    sessions: Slab<Session>,
    /// Sessions to serve this turn (each once), in the order they became
    /// ready; a session whose turn ran out of budget goes to the back.
    ready: Vec<usize>,
    queued: Vec<bool>,
    filter: Mappings,
    /// What the proxy may connect to in transparent mode.
    destinations: Destinations,
    next_id: u64,
    ticks: u32,
    started: Instant,
    /// Log lines about refused connections, all peers together.
    refusals_logged: Budget,
    totals: Totals,
    status: Option<Status>,
    /// A status query has something to do this turn.
    status_due: bool,
    #[cfg(target_os = "linux")]
    conntrack: Option<crate::conntrack::Conntrack>,
    /// Conntrack messages may be waiting: the last read stopped at its
    /// bound, or a tick asks for one.
    conntrack_due: bool,
    /// How to run the binary again, for a handover.
    #[cfg(target_os = "linux")]
    pub exec: Option<crate::handover::Exec>,
    #[cfg(target_os = "linux")]
    upgrade: Upgrade,
    /// Addresses removed from the router end the sessions on them.
    #[cfg(target_os = "linux")]
    addr_watch: Option<crate::addr_watch::AddrWatch>,
    addrs_due: bool,
    /// Session failover (`-H`).
    #[cfg(target_os = "linux")]
    ha: Option<crate::ha::Ha>,
    /// The peer's connection has frames waiting.
    ha_due: bool,
    /// Privileges were dropped into a chroot: a fresh start in place
    /// cannot work (a clean restart then exits for the service manager).
    pub confined: bool,
}

/// What watches the daemon besides its peers: the status socket, and
/// (Linux) the conntrack events of its data connections. Both are opened
/// before the privilege drop.
#[derive(Default)]
pub struct Observers {
    pub status: Option<UnixListener>,
    #[cfg(target_os = "linux")]
    pub conntrack: Option<crate::conntrack::Conntrack>,
}

fn client_token(i: usize) -> Token {
    Token(FIRST + 2 * i)
}

fn server_token(i: usize) -> Token {
    Token(FIRST + 2 * i + 1)
}

/// The slot and side a session token names: the inverse of the two above.
fn session_of(Token(t): Token) -> (usize, Side) {
    let side = match (t - FIRST) % 2 {
        0 => Side::Client,
        _ => Side::Server,
    };
    ((t - FIRST) / 2, side)
}

impl Proxy {
    /// Everything is allocated here, once: the slab, the ready list, the
    /// event list.
    pub fn new(
        cfg: Config,
        mut listener: TcpListener,
        filter: Backend,
        destinations: Destinations,
        observers: Observers,
    ) -> io::Result<Proxy> {
        let poll = Poll::new()?;
        let signals = signals::install()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        let n = cfg.max_sessions as usize;
        let status = match observers.status {
            Some(l) => Some(Status::new(l, poll.registry())?),
            None => None,
        };
        #[cfg(target_os = "linux")]
        let addr_watch = match crate::addr_watch::AddrWatch::open() {
            Ok(w) => {
                let fd = w.raw_fd();
                poll.registry()
                    .register(&mut SourceFd(&fd), ADDRS, Interest::READABLE)?;
                Some(w)
            }
            Err(e) => {
                log::warn!("not watching for lost addresses (sessions on one end by -t): {e}");
                None
            }
        };
        #[cfg(target_os = "linux")]
        let ha = match cfg.ha_sync {
            Some((local, peer)) => {
                let link = crate::ha::link::Link::open(
                    local,
                    peer,
                    cfg.listen_port,
                    poll.registry(),
                    HA_TOKENS,
                )
                .map_err(|e| io::Error::new(e.kind(), format!("HA sync link on {local}: {e}")))?;
                Some(crate::ha::Ha::new(link, n, Instant::now())?)
            }
            None => None,
        };
        // The conntrack socket is not in the poll set: a data connection's
        // events would each wake the loop (the first packet's in the middle
        // of an active-mode PORT exchange), and nothing in them is urgent.
        // They are read when sessions are served, while a transfer is
        // followed at least every `CONNTRACK_EVERY`, and on the tick.
        Ok(Proxy {
            sessions: Slab::with_capacity(n),
            // A turn's entries stay until it ends while sessions whose
            // budget ran out queue again behind them: twice the slots.
            ready: Vec::with_capacity(2 * n),
            queued: vec![false; n],
            cfg,
            poll,
            listener,
            listening: Listening::Idle,
            signals,
            filter: Mappings::new(filter),
            destinations,
            next_id: 0,
            ticks: 0,
            started: Instant::now(),
            refusals_logged: Budget::default(),
            totals: Totals::default(),
            status,
            status_due: false,
            #[cfg(target_os = "linux")]
            conntrack: observers.conntrack,
            conntrack_due: false,
            #[cfg(target_os = "linux")]
            exec: None,
            #[cfg(target_os = "linux")]
            upgrade: Upgrade::Idle,
            #[cfg(target_os = "linux")]
            addr_watch,
            addrs_due: false,
            #[cfg(target_os = "linux")]
            ha,
            ha_due: false,
            confined: false,
        })
    }

    /// Runs until a terminating signal, then ends every session and removes
    /// every kernel object. A live handover execs from inside and does
    /// not return.
    pub fn run(&mut self) -> io::Result<Ending> {
        let mut events = Events::with_capacity(256);
        let mut next_tick = Instant::now() + TICK;
        loop {
            // Work left over from the last turn: look for events without
            // waiting, then serve it again.
            let idle = self.ready.is_empty()
                && self.listening != Listening::More
                && !self.addrs_due
                && !self.ha_due;
            let wait = match idle && !self.status_due && !self.conntrack_due {
                true => next_tick.saturating_duration_since(Instant::now()),
                false => Duration::ZERO,
            };
            // Sessions to take over wait for their conntrack commit.
            #[cfg(target_os = "linux")]
            let wait = match self.ha.as_ref().is_some_and(|h| h.standby.any_wanted()) {
                true => wait.min(crate::ha::COMMIT_POLL),
                false => wait,
            };
            #[cfg(target_os = "linux")]
            let wait = match self.conntrack.as_ref().is_some_and(|ct| ct.tracking() > 0) {
                true => wait.min(CONNTRACK_EVERY),
                false => wait,
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.listening = Listening::More,
                    status::LISTENER => {
                        if let Some(st) = self.status.as_mut() {
                            st.on_listener();
                        }
                        self.status_due = true;
                    }
                    token if status::query_of(token).is_some() => self.status_due = true,
                    SIGNALS => {
                        if let Some(ending) = self.signals() {
                            self.shutdown();
                            return Ok(ending);
                        }
                    }
                    #[cfg(target_os = "linux")]
                    ADDRS => self.addrs_due = true,
                    #[cfg(target_os = "linux")]
                    token if HA_TOKENS.contains(&token) => self.ha_event(token),
                    #[cfg(target_os = "linux")]
                    PROBE => {
                        if let Some(ending) = self.upgrade_progress(Instant::now()) {
                            self.shutdown();
                            return Ok(ending);
                        }
                    }
                    token => {
                        let (i, side) = session_of(token);
                        if let Some(s) = self.sessions.get_mut(i) {
                            s.on_event(side, ev);
                            self.mark_ready(i);
                        }
                    }
                }
            }
            if self.listening == Listening::More {
                self.accept();
            }
            // Before sessions are served: a new connection is matched to
            // the mapping it used before a next PASV/PORT could replace it
            // (its event is queued before its first packet leaves).
            #[cfg(target_os = "linux")]
            if self.conntrack_due || self.conntrack_wanted() {
                self.read_conntrack();
            }
            #[cfg(target_os = "linux")]
            if self.addrs_due {
                self.addresses_changed();
            }
            #[cfg(target_os = "linux")]
            if self.ha_due {
                self.ha_read();
            }
            #[cfg(target_os = "linux")]
            if self.ha.as_ref().is_some_and(|h| h.standby.any_wanted()) {
                self.ha_take_over(Instant::now());
            }
            self.serve_ready();
            #[cfg(target_os = "linux")]
            self.ha_flush();
            if self.status_due {
                self.serve_status();
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK;
                // A probe that never ends its output runs out of time.
                #[cfg(target_os = "linux")]
                if matches!(self.upgrade, Upgrade::Probing(_)) {
                    if let Some(ending) = self.upgrade_progress(now) {
                        self.shutdown();
                        return Ok(ending);
                    }
                }
            }
        }
    }

    fn mark_ready(&mut self, i: usize) {
        if let Some(q) = self.queued.get_mut(i) {
            if !*q {
                *q = true;
                self.ready.push(i);
            }
        }
    }

    /// One turn for each session that was ready when the turn began.
    fn serve_ready(&mut self) {
        let n = self.ready.len();
        for k in 0..n {
            let i = self.ready[k];
            self.queued[i] = false;
            #[cfg(target_os = "linux")]
            if let Some(ha) = self.ha.as_mut() {
                ha.touch(i);
            }
            if self.pump(i) == Turn::More {
                self.mark_ready(i);
            }
        }
        // At most one entry per slot from this turn and one from the
        // next: within the capacity reserved at start, so nothing grows.
        self.ready.drain(..n);
    }

    /// Handles pending signals; how the loop ends, when it must.
    fn signals(&mut self) -> Option<Ending> {
        let mut buf = [0u8; 32];
        let mut stop = None;
        loop {
            let n = signals::drain(self.signals.as_raw_fd(), &mut buf);
            if n == 0 {
                break;
            }
            for &sig in &buf[..n] {
                let sig = libc::c_int::from(sig);
                if signals::TERMINATE.contains(&sig) {
                    log::warn!(target: "notice", "signal {sig}: shutting down");
                    stop = Some(Ending::Stopped);
                } else if sig == libc::SIGUSR1 {
                    self.report();
                } else if sig == libc::SIGUSR2 {
                    #[cfg(target_os = "linux")]
                    self.upgrade_asked();
                    #[cfg(not(target_os = "linux"))]
                    {
                        log::warn!(target: "notice", "SIGUSR2: live handover is not built for this system: clean restart instead");
                        stop = stop.or(Some(Ending::Restart));
                    }
                }
            }
        }
        stop
    }

    /// Whether to read conntrack in this turn: on every turn while a data
    /// connection is followed (turns are at most `CONNTRACK_EVERY` apart
    /// then), and on turns that serve sessions while a mapping is pending
    /// (its connection's first event may be there).
    #[cfg(target_os = "linux")]
    fn conntrack_wanted(&self) -> bool {
        self.conntrack.as_ref().is_some_and(|ct| {
            ct.tracking() > 0 || (!self.ready.is_empty() && self.filter.held() > 0)
        })
    }

    /// One turn's conntrack messages: new data connections matched to
    /// their sessions, finished ones logged and counted.
    #[cfg(target_os = "linux")]
    fn read_conntrack(&mut self) {
        use crate::conntrack::Owner;
        let Some(ct) = self.conntrack.as_mut() else {
            self.conntrack_due = false;
            return;
        };
        let now = Instant::now();
        let (sessions, filter) = (&self.sessions, &self.filter);
        let owner_of = |t: &crate::conntrack::event::Tuple| {
            let i = filter.holder(t.src, t.dst, t.dport)?;
            let s = sessions.get(i)?;
            let m = s.pending?.map;
            (m.src == t.src && m.dst == t.dst && m.dport == t.dport).then_some(Owner {
                slot: i,
                session: s.id,
                passive: s.mode == Some(crate::session::DataMode::Passive),
            })
        };
        self.conntrack_due = ct.read(now, &owner_of);
        let counted = ct.records == Records::Bytes;
        while let Some(r) = ct.next_record() {
            self.totals.moved.add(r.bytes);
            if let Some(s) = self.sessions.get_mut(r.owner.slot) {
                if s.id == r.owner.session {
                    s.moved.add(r.bytes);
                }
            }
            log_record(&r, counted);
        }
    }

    /// Addresses removed from the router: every session on one ends now,
    /// its client told why (or, when the HA peer takes it over, without a
    /// word). Addresses added: the HA peer's sessions on them come here.
    #[cfg(target_os = "linux")]
    fn addresses_changed(&mut self) {
        use crate::addr_watch::Change;
        let Some(w) = self.addr_watch.as_mut() else {
            self.addrs_due = false;
            return;
        };
        let mut changes: heapless::Vec<Change, 16> = heapless::Vec::new();
        // More than fit in one turn wait for the next.
        self.addrs_due = w.read(|c| {
            if !changes.contains(&c) {
                let _ = changes.push(c);
            }
        }) || changes.is_full();
        let now = Instant::now();
        for c in changes {
            let a = match c {
                Change::Added(a) => {
                    self.ha_address_added(a, now);
                    continue;
                }
                Change::Removed(a) => a,
            };
            for i in 0..self.sessions.capacity() {
                if self.sessions.get(i).is_some_and(|s| s.runs_on(a)) {
                    let why = match self.ha_hands_over(i) {
                        true => End::HandedToPeer(a),
                        false => End::AddressGone(a),
                    };
                    self.end(i, why);
                }
            }
        }
    }

    /// An event of the HA sync link.
    #[cfg(target_os = "linux")]
    fn ha_event(&mut self, token: Token) {
        let Some(ha) = self.ha.as_mut() else { return };
        match token {
            t if t == HA_TOKENS[0] => {
                if ha.link.accept(self.poll.registry()) {
                    // The peer's copies start again from its Reset.
                    self.ha_due = true;
                }
            }
            t if t == HA_TOKENS[1] => {
                if ha.link.on_out_event() {
                    ha.resync = true;
                }
            }
            _ => self.ha_due = true,
        }
    }

    /// Whether data connections are recorded, and how many records the
    /// kernel's events could not give.
    fn records(&self) -> (Records, u64) {
        #[cfg(target_os = "linux")]
        if let Some(ct) = &self.conntrack {
            return (ct.records, ct.lost + ct.untracked);
        }
        (Records::Off, 0)
    }

    /// One step for each status query.
    fn serve_status(&mut self) {
        let (records, records_lost) = self.records();
        let Some(st) = self.status.as_mut() else {
            self.status_due = false;
            return;
        };
        let view = View {
            cfg: &self.cfg,
            sessions: &self.sessions,
            totals: &self.totals,
            filter: &self.filter,
            started: self.started,
            records,
            records_lost,
        };
        let pending = st.serve(&view, self.poll.registry(), Instant::now());
        self.status_due = pending == Turn::More;
    }

    /// SIGUSR1: one line per live session (who is connected).
    fn report(&mut self) {
        let now = Instant::now();
        log::warn!(target: "notice", "{} of {} sessions in use", self.sessions.len(), self.sessions.capacity());
        for (_, s) in self.sessions.iter_mut() {
            let state = s.phase.name();
            // The key's port is the proxy port in both modes.
            let pp = s.pending.map_or(0, |p| p.map.dport);
            log::warn!(target: "notice",
                "#{} client {} server {} proxy-port {} state {} idle {}s commands {} data {}",
                s.id, s.client_addr, s.server_addr, pp, state,
                now.saturating_duration_since(s.last_io).as_secs(), s.commands, s.negotiated
            );
        }
    }

    /// Accepts up to `ACCEPTS_PER_TURN` connections.
    fn accept(&mut self) {
        self.listening = Listening::Idle;
        for _ in 0..ACCEPTS_PER_TURN {
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
                        self.listening = Listening::Paused;
                    }
                    return;
                }
                Err(e) => log::warn!("accept: {e}"),
            }
        }
        self.listening = Listening::More;
    }

    /// Refuses a client with `reply` (best effort: one non-blocking
    /// write), logging why within the log budget.
    fn refuse(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        reply: &[u8],
        reason: Refused,
        why: fmt::Arguments,
    ) {
        self.totals.refuse(reason);
        let second = self.started.elapsed().as_secs();
        if let Some(n) = self.refusals_logged.take(second) {
            log::warn!("refusing client {peer}: {why}{}", Suppressed(n));
        }
        let _ = stream.write(reply);
    }

    fn start(&mut self, client: TcpStream, peer: SocketAddr) {
        const BUSY: &[u8] = b"421 Service not available, closing control connection\r\n";
        if self.sessions.is_full() {
            let cap = self.sessions.capacity();
            return self.refuse(
                client,
                peer,
                BUSY,
                Refused::SessionLimit,
                format_args!("session limit ({cap}) reached"),
            );
        }
        let host = net::client_host(peer.ip());
        let held = self
            .sessions
            .iter_mut()
            .filter(|(_, s)| net::client_host(s.client_addr.ip()) == host)
            .count();
        let per_client = self.cfg.max_per_client;
        if held >= per_client as usize {
            let why = format_args!("per-client limit ({per_client}) reached");
            return self.refuse(client, peer, BUSY, Refused::PerClientLimit, why);
        }
        let local = match client.local_addr() {
            Ok(a) => a,
            Err(e) => return log::warn!("client {peer}: {e}"),
        };
        let orig = self
            .filter
            .backend
            .original_dst(peer, local)
            .unwrap_or_else(|| intercept::original_dst(&client, local));
        let server = match self.cfg.reverse_addr {
            Some(a) => SocketAddr::new(a, self.cfg.reverse_port),
            None if orig == local && orig.port() == self.cfg.listen_port => {
                let why = "connected to the proxy itself, not redirected (use -R for reverse mode)";
                return self.refuse(
                    client,
                    peer,
                    BUSY,
                    Refused::NotRedirected,
                    format_args!("{why}"),
                );
            }
            None => {
                // Transparent mode: the client chose the destination.
                if let Err(why) = self.destinations.check(orig.ip()) {
                    const NO: &[u8] =
                        b"421 Service not available: destination not allowed through this proxy\r\n";
                    let why = format_args!("destination {orig} refused: {why}");
                    return self.refuse(client, peer, NO, Refused::Destination, why);
                }
                orig
            }
        };
        let server_sock = match net::connect_from(self.cfg.source_addr, server) {
            Ok(s) => s,
            Err(e) => {
                let why = format_args!("cannot connect to server {server}: {e}");
                return self.refuse(client, peer, BUSY, Refused::Unreachable, why);
            }
        };
        // The client's socket has these from the listener on Linux (see
        // `net::listen`).
        if !net::ACCEPTED_INHERIT {
            net::set_client_options(&client, peer);
        }
        let _ = server_sock.set_nodelay(true);
        if let Err(e) = net::set_keepalive(&server_sock) {
            log::warn!("client {peer}: keepalive towards the server: {e}");
        }
        self.next_id += 1;
        self.totals.sessions += 1;
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
        if let Err(e) = self.register(i) {
            self.end(i, End::ClientIo(e));
        }
    }

    /// Puts a session's two sockets in the poll set.
    fn register(&mut self, i: usize) -> io::Result<()> {
        let registry = self.poll.registry();
        let both = Interest::READABLE | Interest::WRITABLE;
        // Urgent data (an ABOR's) is reported on Linux: reads ask for the
        // urgent mark only then (see `readiness`).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let client_interest = both | Interest::PRIORITY;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let client_interest = both;
        match self.sessions.get_mut(i) {
            Some(s) => registry
                .register(&mut s.client, client_token(i), client_interest)
                .and_then(|()| registry.register(&mut s.server, server_token(i), both)),
            None => Ok(()),
        }
    }

    fn pump(&mut self, i: usize) -> Turn {
        let Some(s) = self.sessions.get_mut(i) else {
            return Turn::Idle;
        };
        let now = Instant::now();
        let mut cx = Ctx {
            cfg: &self.cfg,
            filter: &mut self.filter,
            slot: i,
            now,
            second: now.saturating_duration_since(self.started).as_secs(),
            totals: &mut self.totals,
        };
        match s.pump(&mut cx) {
            Ok(turn) => turn,
            Err(why) => {
                self.end(i, why);
                Turn::Idle
            }
        }
    }

    fn end(&mut self, i: usize, why: End) {
        // Closing a socket takes it out of the poll set: the proxy never
        // duplicates a session's descriptors, so no deregister is needed.
        if let Some(mut s) = self.sessions.remove(i) {
            s.close(&mut self.filter, &why);
            #[cfg(target_os = "linux")]
            if let Some(ha) = self.ha.as_mut() {
                match why {
                    // The peer's copy is the session now: it must stay.
                    End::HandedToPeer(_) => ha.copies[i] = crate::ha::Copied::No,
                    _ => ha.ended(i, s.id),
                }
            }
        }
    }

    /// Once a second: timeouts, a paused listener comes back, and now and
    /// then the kernel table is re-created if an admin removed it.
    fn tick(&mut self, now: Instant) {
        self.ticks = self.ticks.wrapping_add(1);
        // Late queries are dropped on a tick at the latest.
        self.status_due |= self.status.is_some();
        #[cfg(target_os = "linux")]
        if let Some(ct) = self.conntrack.as_mut() {
            // Records whose counters never came; logged on the next read.
            ct.expire(now);
            self.conntrack_due = true;
        }
        #[cfg(target_os = "linux")]
        if let Some(ha) = self.ha.as_mut() {
            ha.link.tick(now, self.poll.registry());
        }
        if self.ticks % CHECK_TABLE_TICKS == 0 {
            if let Err(e) = self.filter.ensure() {
                log::error!("checking table inet {}: {e}", self.filter.backend.table());
            }
        }
        let idle = Duration::from_secs(self.cfg.timeout.into());
        let refresh = self.filter.backend.refresh_every();
        for i in 0..self.sessions.capacity() {
            let why = match self.sessions.get_mut(i) {
                Some(s) if s.phase != Phase::Running && now - s.started >= CONNECT_TIMEOUT => {
                    match s.phase {
                        Phase::Connecting => End::ConnectTimeout,
                        _ => End::GreetingTimeout,
                    }
                }
                Some(s) if now.saturating_duration_since(s.last_io) >= idle => End::IdleTimeout,
                Some(s) => {
                    if let Some(every) = refresh {
                        refresh_pending(s, &mut self.filter, now, every);
                    }
                    continue;
                }
                _ => continue,
            };
            self.end(i, why);
        }
        if self.listening == Listening::Paused
            && self
                .poll
                .registry()
                .register(&mut self.listener, LISTENER, Interest::READABLE)
                .is_ok()
        {
            // Connections may have queued meanwhile: accept them now.
            self.listening = Listening::More;
        }
    }

    fn shutdown(&mut self) {
        // Every session's end removes its mapping; nothing else remains.
        for i in 0..self.sessions.capacity() {
            self.end(i, End::Shutdown);
        }
        // The peer drops its copies of them (as far as the link takes
        // the Ends now).
        #[cfg(target_os = "linux")]
        self.ha_flush();
        match self.filter.close() {
            Ok(()) => {
                log::info!(target: "notice", "removed table inet {}", self.filter.backend.table())
            }
            Err(e) => log::error!("removing table inet {}: {e}", self.filter.backend.table()),
        }
    }
}

/// Every `every` (the backend's `refresh_every`): keeps a session's
/// pending mapping alive past its timeout, or finds it used up (then it
/// is forgotten).
fn refresh_pending(s: &mut Session, filter: &mut Mappings, now: Instant, every: Duration) {
    let Some(p) = s.pending.as_mut() else { return };
    if now.saturating_duration_since(p.since) < every {
        return;
    }
    p.since = now;
    match filter.refresh(&p.map) {
        Ok(true) => {}
        Ok(false) => s.pending = None,
        Err(e) => log::error!("#{} refreshing mapping: {e}", s.id),
    }
}

/// A duration as `12.345`: integers, as float formatting would cost the
/// binary kilobytes for one log line.
#[cfg(target_os = "linux")]
struct Seconds(Duration);

#[cfg(target_os = "linux")]
impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        write!(f, "{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// The line that says what one data connection moved; `counted`:
/// conntrack accounting is on (so missing bytes mean a lost answer).
#[cfg(target_os = "linux")]
fn log_record(r: &crate::conntrack::Record, counted: bool) {
    let (mode, opener) = match r.owner.passive {
        true => ("passive", "client"),
        false => ("active", "server"),
    };
    let secs = Seconds(r.duration);
    let why = match counted {
        true => "the kernel's answer with them was lost",
        false => "conntrack accounting is off",
    };
    match r.bytes {
        Some((to_client, to_server)) => log::info!(
            "#{} {mode} data connection from {opener} {}:{} to proxy port {} ended after {secs}s: {to_client} bytes to the client, {to_server} to the server",
            r.owner.session, r.from, r.sport, r.proxy_port
        ),
        None => log::info!(
            "#{} {mode} data connection from {opener} {}:{} to proxy port {} ended after {secs}s (no byte counts: {why})",
            r.owner.session, r.from, r.sport, r.proxy_port
        ),
    }
}

/// What a status query reads: the daemon's state, borrowed for one turn.
struct View<'a> {
    cfg: &'a Config,
    sessions: &'a Slab<Session>,
    totals: &'a Totals,
    filter: &'a Mappings,
    started: Instant,
    records: Records,
    records_lost: u64,
}

impl status::Source for View<'_> {
    fn instance(&self) -> render::Instance<'_> {
        let c = self.cfg;
        render::Instance {
            name: &c.instance,
            pid: std::process::id(),
            listen: SocketAddr::new(c.listen_addr, c.listen_port),
            table: self.filter.backend.table(),
            owned: self.filter.backend.owned(),
            one_shot: self.filter.backend.one_shot().name(),
            reverse: c.reverse_addr.map(|a| SocketAddr::new(a, c.reverse_port)),
            intercept: &c.intercept,
            tag: c.tag,
            ports: c.ports,
            ports_held: self.filter.held(),
            advertised: c.advertised,
            max_sessions: c.max_sessions,
            max_per_client: c.max_per_client,
            timeout: c.timeout,
            uptime: self.started.elapsed().as_secs(),
            sessions: self.sessions.len(),
            records: self.records,
            records_lost: self.records_lost,
            kernel_errors: self.filter.errors,
            slow_readers: 0,
        }
    }

    fn totals(&self) -> &Totals {
        self.totals
    }

    fn slots(&self) -> usize {
        self.sessions.capacity()
    }

    fn row(&self, i: usize, now: Instant) -> Option<Row> {
        let s = self.sessions.get(i)?;
        Some(Row {
            id: s.id,
            client: s.client_addr,
            server: s.server_addr,
            mode: s.mode.map_or("-", |m| m.name()),
            // The key's port is the proxy port in both modes.
            proxy_port: s.pending.map_or(0, |p| p.map.dport),
            phase: s.phase.name(),
            age: now.saturating_duration_since(s.started).as_secs(),
            idle: now.saturating_duration_since(s.last_io).as_secs(),
            commands: s.commands,
            negotiated: s.negotiated,
            moved: s.moved,
        })
    }
}
