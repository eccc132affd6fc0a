//! One FTP session: the client and server control connections, their fixed
//! buffers, and the rewriting of data-connection negotiation.
//!
//! Commands flow client → `from_client` → (judged, rewritten) →
//! `to_server` → server; replies flow server → `from_server` → (rewritten)
//! → `to_client` → client. A line is only taken from an input buffer when
//! the output it may produce fits, so a slow peer stops the reading of the
//! other one (backpressure). One call of `pump` does a bounded amount of
//! work, so no peer can hold the loop.

use crate::config::Config;
use crate::filter::{DataMap, Installed, Mappings};
use crate::ftp::line::{Frame, LineBuf, OutBuf};
use crate::ftp::policy::{self, Policy, Refusal, Severity, Verdict};
use crate::ftp::relay::{Action, ReplyRelay, Retry, Sent};
use crate::ftp::{write, MAX_LINE};
use crate::log::{Budget, Suppressed};
use crate::net;
use crate::ports::Pick;
use crate::readiness::Readable;
use crate::status::totals::{Moved, Totals};
use mio::net::TcpStream;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::Instant;

mod saved;

/// Output buffers hold two full lines: one being written, one queued.
const OUT: usize = 2 * MAX_LINE;
/// Room a line needs in an output buffer before it is taken from input.
const ROOM: usize = MAX_LINE + 64;
/// Ports the kernel may find taken (stale elements of a table without
/// the owner flag) before the data connection is refused.
const PORT_TRIES: usize = 8;
/// What the proxy sends for a client's EPSV the server does not know.
const PASV: &[u8] = b"PASV\r\n";
/// Passes over both directions in one turn, each reading at most one
/// line buffer per peer: a session moves at most 4 × 512 bytes each way
/// before every other session, timer and signal has had its turn.
const PASSES_PER_TURN: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The proxy's connect to the server is under way.
    Connecting,
    /// Connected; the server has not finished its greeting.
    Greeting,
    Running,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Greeting => "greeting",
            Phase::Running => "running",
        }
    }
}

/// Which of a session's two connections an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// What one turn left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Everything the peers allow is done; readiness events bring more.
    Idle,
    /// The turn's budget ran out with work left: serve again next turn.
    More,
}

/// One direction's input stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    Open,
    /// The peer sent FIN; lines it sent before may still wait.
    Ended,
    /// (client only) The FIN was passed on to the server.
    Passed,
}

impl End {
    /// What the client is told as the proxy hangs up, if anything: not
    /// when a peer left on its own or broke the connection.
    fn farewell(&self) -> Option<&'static [u8]> {
        Some(match self {
            End::Connect(_) | End::ConnectTimeout => {
                b"421 Service not available: cannot reach the FTP server\r\n"
            }
            End::GreetingTimeout => b"421 Service not available: the FTP server did not greet\r\n",
            End::IdleTimeout => b"421 Idle timeout, closing control connection\r\n",
            End::Shutdown => b"421 Proxy shutting down, closing control connection\r\n",
            End::AddressGone(_) => {
                b"421 Service not available: the proxy lost its address, please reconnect\r\n"
            }
            _ => return None,
        })
    }
}

/// Why a session ended: the log line says it.
#[derive(Debug)]
pub enum End {
    ClientClosed,
    ServerClosed,
    Connect(io::Error),
    ClientIo(io::Error),
    ServerIo(io::Error),
    IdleTimeout,
    ConnectTimeout,
    /// The server accepted but never finished its 220 greeting.
    GreetingTimeout,
    Shutdown,
    /// The router lost an address the session runs on (an HA failover
    /// moved a VIP to the peer).
    AddressGone(IpAddr),
    /// As `AddressGone`, and the HA peer holds a current copy of the
    /// session (`-H`): it takes the session over, so this end goes
    /// without a word (no 421, no FIN, no reset).
    HandedToPeer(IpAddr),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::ClientClosed => f.write_str("client closed"),
            End::ServerClosed => f.write_str("server closed"),
            End::Connect(e) => write!(f, "connect to server failed: {e}"),
            End::ClientIo(e) => write!(f, "client error: {e}"),
            End::ServerIo(e) => write!(f, "server error: {e}"),
            End::IdleTimeout => f.write_str("idle timeout"),
            End::ConnectTimeout => f.write_str("timeout connecting to server"),
            End::GreetingTimeout => f.write_str("server did not finish its greeting"),
            End::Shutdown => f.write_str("proxy shutting down"),
            End::AddressGone(a) => write!(f, "address {a} was removed from this router"),
            End::HandedToPeer(a) => write!(
                f,
                "address {a} was removed from this router: the HA peer takes the session over"
            ),
        }
    }
}

/// What a session needs from the daemon while it handles a line.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub filter: &'a mut Mappings,
    /// The session's slot: the holder of the mappings it installs.
    pub slot: usize,
    pub now: Instant,
    /// Whole seconds since start, for log budgets.
    pub second: u64,
    pub totals: &'a mut Totals,
}

/// How the last data connection of a session was negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataMode {
    /// PASV/EPSV: the client connects.
    Passive,
    /// PORT/EPRT: the server connects.
    Active,
}

impl DataMode {
    pub fn name(self) -> &'static str {
        match self {
            DataMode::Passive => "passive",
            DataMode::Active => "active",
        }
    }
}

/// Whether the server knows an extended command (RFC 2428).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extended {
    /// Not refused so far: the client's choice is sent on.
    Unknown,
    /// Refused as unknown once: the older command goes at once.
    Refused,
}

/// The kernel mapping of a session's pending data connection.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub map: DataMap,
    /// When it was installed or last refreshed.
    pub since: Instant,
}

pub struct Session {
    pub id: u64,
    pub client: TcpStream,
    pub server: TcpStream,
    pub client_addr: SocketAddr,
    /// Where the client wanted to go (before the redirect).
    pub orig_server: SocketAddr,
    /// Where the proxy connects: `orig_server`, or `-R`/`-P`.
    pub server_addr: SocketAddr,
    /// The proxy's own address towards the server, once connected.
    pub proxy_addr: Option<IpAddr>,
    pub phase: Phase,
    pub started: Instant,
    pub last_io: Instant,
    pub commands: u32,
    /// Data connections negotiated (mappings installed).
    pub negotiated: u32,
    /// The last negotiation's mode.
    pub mode: Option<DataMode>,
    /// Data connections made, as conntrack reported them.
    pub moved: Moved,
    pub pending: Option<Pending>,
    policy: Policy,
    from_client: LineBuf<MAX_LINE>,
    from_server: LineBuf<MAX_LINE>,
    to_client: OutBuf<OUT>,
    to_server: OutBuf<OUT>,
    /// The server-to-client stream: framing, commands in flight, held
    /// refusals.
    relay: ReplyRelay,
    client_input: Input,
    server_input: Input,
    client_readable: Readable,
    server_readable: Readable,
    /// (while connecting) The server socket had an event: the connect
    /// has an outcome to look at.
    connect_reported: bool,
    log_budget: Budget,
    /// EPSV and EPRT, as far as this session's server knows them.
    server_epsv: Extended,
    server_eprt: Extended,
    /// A refused TLS attempt was logged: clients try AUTH TLS, AUTH SSL,
    /// PBSZ, PROT in turn, and one line says it.
    tls_logged: bool,
}

/// Reads once from `r` into `buf`, unless it is full, ended, or known to
/// be empty. Returns whether anything (data or end of stream) arrived.
/// With `urgent` (the client side), asks first, when urgent data was
/// reported, whether the next byte is the peer's urgent byte (reads stop
/// just before it).
fn fill<const N: usize>(
    r: &mut TcpStream,
    buf: &mut LineBuf<N>,
    input: &mut Input,
    readable: &mut Readable,
    urgent: bool,
) -> io::Result<bool> {
    if *input != Input::Open || buf.is_full() || !readable.may_read() {
        return Ok(false);
    }
    if urgent && readable.ask_mark() && net::at_mark(r)? {
        buf.mark_urgent();
    }
    let room = buf.room();
    loop {
        return match buf.read_from(r) {
            Ok(0) => {
                *input = Input::Ended;
                Ok(true)
            }
            Ok(n) => {
                buf.filled(n);
                *readable = readable.after_read(n, room);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *readable = Readable::Drained;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// Writes what the peer takes, the urgent byte as TCP urgent data.
fn flush<const N: usize>(w: &mut TcpStream, out: &mut OutBuf<N>) -> io::Result<bool> {
    let before = out.free();
    out.send_with(|b, urgent| match urgent {
        true => net::send_urgent(w, b),
        false => w.write(b),
    })?;
    Ok(out.free() != before)
}

/// Queues a line formatted by `f`; the caller checked for room.
fn emit<const N: usize>(out: &mut OutBuf<N>, f: impl FnOnce(&mut [u8]) -> Option<usize>) {
    if let Some(n) = f(out.tail()) {
        out.commit(n);
    }
}

/// A client's verb for the log: at most 8 bytes, never its argument
/// (which may be a password), non-printable bytes escaped.
#[derive(Clone, Copy)]
struct Verb {
    b: [u8; 8],
    len: usize,
}

impl Verb {
    fn of(line: &[u8]) -> Verb {
        let mut v = Verb { b: [0; 8], len: 0 };
        let end = |c: &&u8| !matches!(c, b' ' | b'\r' | b'\n');
        for &c in line.iter().take_while(end).take(8) {
            v.b[v.len] = c;
            v.len += 1;
        }
        v
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.b[..self.len] {
            match b {
                0x21..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        client: TcpStream,
        server: TcpStream,
        client_addr: SocketAddr,
        orig_server: SocketAddr,
        server_addr: SocketAddr,
        policy: Policy,
        now: Instant,
    ) -> Session {
        Session {
            id,
            client,
            server,
            client_addr,
            orig_server,
            server_addr,
            proxy_addr: None,
            phase: Phase::Connecting,
            started: now,
            last_io: now,
            commands: 0,
            negotiated: 0,
            mode: None,
            moved: Moved::default(),
            pending: None,
            policy,
            from_client: LineBuf::default(),
            from_server: LineBuf::default(),
            to_client: OutBuf::default(),
            to_server: OutBuf::default(),
            relay: ReplyRelay::default(),
            client_input: Input::Open,
            server_input: Input::Open,
            // Registration reports what is already there.
            client_readable: Readable::Drained,
            server_readable: Readable::Drained,
            connect_reported: false,
            log_budget: Budget::default(),
            server_epsv: Extended::Unknown,
            server_eprt: Extended::Unknown,
            tls_logged: false,
        }
    }

    /// Whether the session runs on `a`: the proxy's address towards the
    /// client or towards the server.
    pub fn runs_on(&self, a: IpAddr) -> bool {
        self.proxy_addr == Some(a) || self.client.local_addr().is_ok_and(|l| l.ip() == a)
    }

    /// Takes in what the poll loop said about one of the connections.
    pub fn on_event(&mut self, side: Side, ev: &mio::event::Event) {
        match side {
            Side::Client => self.client_readable = self.client_readable.on_event(ev),
            Side::Server => {
                self.server_readable = self.server_readable.on_event(ev);
                self.connect_reported = true;
            }
        }
    }

    /// One turn: moves bytes as far as both peers allow, within the
    /// turn's budget. `Err` ends the session.
    pub fn pump(&mut self, cx: &mut Ctx) -> Result<Turn, End> {
        if self.phase == Phase::Connecting && !self.check_connected()? {
            return Ok(Turn::Idle);
        }
        self.check_broken()?;
        let mut turn = Turn::More;
        for _ in 0..PASSES_PER_TURN {
            if !self.pass(cx)? {
                turn = Turn::Idle;
                break;
            }
        }
        self.ends()?;
        Ok(turn)
    }

    /// One read from each peer, the lines it completed, and the writes;
    /// true when anything moved.
    fn pass(&mut self, cx: &mut Ctx) -> Result<bool, End> {
        let mut progress = false;
        let got = fill(
            &mut self.client,
            &mut self.from_client,
            &mut self.client_input,
            &mut self.client_readable,
            true,
        );
        if got.map_err(End::ClientIo)? {
            self.last_io = cx.now;
            progress = true;
        }
        progress |= self.client_lines(cx);
        progress |= flush(&mut self.server, &mut self.to_server).map_err(End::ServerIo)?;
        let got = fill(
            &mut self.server,
            &mut self.from_server,
            &mut self.server_input,
            &mut self.server_readable,
            false,
        );
        if got.map_err(End::ServerIo)? {
            self.last_io = cx.now;
            progress = true;
        }
        progress |= self.server_lines(cx);
        progress |= flush(&mut self.client, &mut self.to_client).map_err(End::ClientIo)?;
        Ok(progress)
    }

    /// A peer that closed has had its last complete lines relayed.
    fn ends(&mut self) -> Result<(), End> {
        if self.server_input == Input::Ended
            && self.to_client.is_empty()
            && !self.from_server.has_frame()
        {
            return Err(End::ServerClosed);
        }
        if self.client_input == Input::Ended
            && self.to_server.is_empty()
            && !self.from_client.has_frame()
            && !self.relay.holding()
        {
            // Half-close: pass the client's FIN on and keep relaying the
            // server's last replies (a 221 to QUIT) until it closes too.
            self.client_input = Input::Passed;
            if self.server.shutdown(Shutdown::Write).is_err() {
                return Err(End::ClientClosed);
            }
        }
        Ok(())
    }

    /// A peer whose socket reported an error (a reset) is gone, even when
    /// its input is paused and no read would find out.
    fn check_broken(&mut self) -> Result<(), End> {
        if self.client_readable.is_broken() {
            if let Ok(Some(e)) | Err(e) = self.client.take_error() {
                return Err(End::ClientIo(e));
            }
            self.client_readable = Readable::ToEnd;
        }
        if self.server_readable.is_broken() {
            if let Ok(Some(e)) | Err(e) = self.server.take_error() {
                return Err(End::ServerIo(e));
            }
            self.server_readable = Readable::ToEnd;
        }
        Ok(())
    }

    /// Completes the non-blocking connect to the server, once the server
    /// socket has had an event (none comes before the outcome).
    fn check_connected(&mut self) -> Result<bool, End> {
        if !self.connect_reported {
            return Ok(false);
        }
        if let Ok(Some(e)) | Err(e) = self.server.take_error() {
            return Err(End::Connect(e));
        }
        match self.server.peer_addr() {
            Ok(_) => {}
            Err(e)
                if e.kind() == io::ErrorKind::NotConnected
                    || e.raw_os_error() == Some(libc::EINPROGRESS) =>
            {
                // Not the outcome yet: wait for the next event.
                self.connect_reported = false;
                return Ok(false);
            }
            Err(e) => return Err(End::Connect(e)),
        }
        let local = self.server.local_addr().map_err(End::Connect)?;
        self.proxy_addr = Some(local.ip());
        self.phase = Phase::Greeting;
        log::info!(
            "#{} FTP session started: client {} to server {} via proxy {}",
            self.id,
            self.client_addr,
            self.server_addr,
            local
        );
        Ok(true)
    }

    fn client_lines(&mut self, cx: &mut Ctx) -> bool {
        let mut progress = false;
        loop {
            if self.relay.holding() {
                if self.to_client.free() < ROOM {
                    break;
                }
                let Some(r) = self.relay.take_held() else {
                    break;
                };
                emit_refusal(&mut self.to_client, r);
                progress = true;
            }
            if self.to_server.free() < ROOM || self.to_client.free() < ROOM || self.relay.is_full()
            {
                break;
            }
            let f = self.from_client.frame();
            match f {
                Frame::Line(n) => self.command(n, cx),
                Frame::Partial => break,
                Frame::LongStart(_) => log::info!(
                    "#{} client sent a command longer than {MAX_LINE} bytes, dropping it",
                    self.id
                ),
                Frame::LongMore(_) => {}
                Frame::LongEnd(_) => self.refuse(cx, policy::LINE_TOO_LONG, Verb::of(b"(long)")),
            }
            self.from_client.advance(f);
            progress = true;
        }
        progress
    }

    fn server_lines(&mut self, cx: &mut Ctx) -> bool {
        let mut progress = false;
        while self.to_client.free() >= ROOM {
            let f = self.from_server.frame();
            if f == Frame::Partial {
                break;
            }
            let action = self.relay.frame(f, self.from_server.head(f.span()));
            if self.phase == Phase::Greeting && self.relay.greeted() {
                self.phase = Phase::Running;
            }
            // Room for the line (and a pad byte) was checked above.
            let bytes = self.from_server.head(f.span());
            match action {
                Action::Relay => {
                    let _ = self.to_client.push(bytes);
                }
                Action::Pad => {
                    let _ = self.to_client.push(b" ") && self.to_client.push(bytes);
                }
                Action::Drop => {}
                Action::Passive { extended, port } => self.passive(cx, extended, port),
                Action::Replace { with, code } => self.reply_instead(cx, with, code),
                Action::Retry { instead, code } => {
                    if !self.retry(instead, code) {
                        let _ = self.to_client.push(self.from_server.head(f.span()));
                    }
                }
            }
            self.from_server.advance(f);
            progress = true;
        }
        progress
    }

    /// Logs a refusal, at most `LINES_PER_SECOND` a second per session;
    /// TLS once per session.
    fn log_refusal(&mut self, cx: &mut Ctx, r: Refusal, what: &dyn fmt::Display) {
        cx.totals.refuse_command(r.key);
        if r == policy::TLS {
            if self.tls_logged {
                return;
            }
            self.tls_logged = true;
            return log::info!(target: crate::log::NOTICE,
                "#{} client {} asked for TLS ({what}): refused with 534, the proxy must read the control channel (TLS commands of this session are not logged again)",
                self.id, self.client_addr);
        }
        let Some(suppressed) = self.log_budget.take(cx.second) else {
            return;
        };
        let more = Suppressed(suppressed);
        match r.severity {
            Severity::Security => log::warn!(
                "#{} client {} refused {what}: {} {}{more}",
                self.id,
                self.client_addr,
                r.code,
                r.text
            ),
            Severity::Protocol => log::info!(target: crate::log::NOTICE,
                "#{} refused {what}: {} {}{more}", self.id, r.code, r.text),
        }
    }

    /// Answers a client's command with `r` instead of forwarding it: at
    /// once, or after the server's replies to the commands before it.
    fn refuse(&mut self, cx: &mut Ctx, r: Refusal, verb: Verb) {
        self.log_refusal(cx, r, &verb);
        if let Some(r) = self.relay.refuse(r) {
            emit_refusal(&mut self.to_client, r);
        }
    }

    /// Replaces a server's final reply (a passive reply the proxy cannot
    /// or will not pass on) with `r`, in its place.
    fn reply_instead(&mut self, cx: &mut Ctx, r: Refusal, code: u16) {
        self.log_refusal(cx, r, &code);
        emit_refusal(&mut self.to_client, r);
    }

    fn command(&mut self, n: usize, cx: &mut Ctx) {
        self.commands += 1;
        let raw = self.from_client.head(n);
        let urgent = self.from_client.urgent_in(n);
        let kind = match self.policy.judge(raw) {
            Verdict::Forward => Sent::Other,
            Verdict::Feat => Sent::Feat,
            Verdict::Passive { fallback: false } => Sent::Passive,
            Verdict::Passive { fallback: true } => match (self.server_epsv, urgent) {
                // The server refused EPSV before: PASV at once, no round
                // trip lost per transfer. (A line with the urgent byte
                // goes as it is.)
                (Extended::Refused, None) => {
                    let _ = self.to_server.push(PASV);
                    return self.relay.forwarded(Sent::PasvForEpsv);
                }
                _ => Sent::Epsv,
            },
            Verdict::Active { extended, port } => return self.active(cx, extended, port),
            Verdict::Refuse(r) => {
                let verb = Verb::of(raw);
                return self.refuse(cx, r, verb);
            }
        };
        // Exactly the bytes judged; room was checked by the caller.
        let _ = match urgent {
            Some(u) => self.to_server.push_urgent(raw, u),
            None => self.to_server.push(raw),
        };
        self.relay.forwarded(kind);
    }

    /// The server refused an EPSV (or the proxy's EPRT) as unknown: the
    /// older command goes in its place, and for the rest of the session
    /// at once. False when it cannot (then the refusal is relayed).
    fn retry(&mut self, instead: Retry, code: u16) -> bool {
        // Nothing passes a command that may be retried, so the buffer
        // holds nothing the retry could overtake.
        if self.to_server.free() < ROOM {
            return false;
        }
        let known = match instead {
            Retry::Pasv => {
                let _ = self.to_server.push(PASV);
                &mut self.server_epsv
            }
            Retry::Port => {
                let (Some(proxy), Some(p)) = (self.proxy_addr, self.pending) else {
                    return false;
                };
                emit(&mut self.to_server, |b| {
                    write::active_command(b, proxy, p.map.dport, false)
                });
                &mut self.server_eprt
            }
        };
        self.relay.forwarded(instead.sent());
        if *known == Extended::Unknown {
            *known = Extended::Refused;
            let (older, new) = instead.verbs();
            log::info!(target: crate::log::NOTICE,
                "#{} server does not know {older} ({code}): {new} is sent in its place for this session",
                self.id);
        }
        true
    }

    /// PORT/EPRT: the address the client named is ignored; the server is
    /// sent the proxy's address and a fresh port whose connection the
    /// kernel forwards to the client's control address and named port.
    fn active(&mut self, cx: &mut Ctx, extended: bool, port: u16) {
        let Some(proxy) = self.proxy_addr else { return };
        let (client, server, orig) = (
            self.client_addr.ip(),
            self.server_addr.ip(),
            self.orig_server.ip(),
        );
        let (port20, id) = (cx.cfg.port20, self.id);
        self.mode = Some(DataMode::Active);
        let pp = match self.install(cx, |pp| {
            DataMap::active(server, proxy, pp, client, port, orig, port20, id)
        }) {
            Ok(pp) => pp,
            Err(r) => return self.refuse(cx, r, Verb::of(b"PORT")),
        };
        // Where PORT can stand in (IPv4): a server that refused EPRT gets
        // PORT at once, and an EPRT it may not know waits for its answer.
        let may_fall_back = proxy.is_ipv4() && self.policy.may_fall_back();
        let extended = extended && !(may_fall_back && self.server_eprt == Extended::Refused);
        emit(&mut self.to_server, |b| {
            write::active_command(b, proxy, pp, extended)
        });
        let kind = match extended && may_fall_back {
            true => Sent::Eprt,
            false => Sent::Other,
        };
        self.relay.forwarded(kind);
        log::debug!(
            "#{} {}: server {server} -> proxy {} -> client {}",
            self.id,
            if extended || proxy.is_ipv6() {
                "EPRT"
            } else {
                "PORT"
            },
            SocketAddr::new(proxy, pp),
            SocketAddr::new(client, port)
        );
    }

    /// Picks a proxy port of the range (`-E`) that no other session holds
    /// for this pair of hosts and installs the kernel mapping built by
    /// `make`, replacing the session's previous one in the same
    /// transaction. `Err`: what the client is told instead.
    fn install(&mut self, cx: &mut Ctx, make: impl Fn(u16) -> DataMap) -> Result<u16, Refusal> {
        let old = self.pending.take().map(|p| p.map);
        let range = cx.cfg.ports;
        for _ in 0..PORT_TRIES {
            let pp = match range.pick(|pp| !cx.filter.taken(old.as_ref(), &make(pp))) {
                Pick::Port(pp) => pp,
                Pick::Exhausted => {
                    let m = make(range.low());
                    log::warn!(
                        "#{} no free proxy port in {range} for {} to {}: every one is held by a pending data connection",
                        self.id,
                        m.src,
                        m.dst
                    );
                    self.drop_old(cx, old);
                    return Err(policy::NO_PROXY_PORT);
                }
                Pick::NoRandomness => {
                    log::error!(
                        "#{} the kernel gave no random numbers: no proxy port",
                        self.id
                    );
                    self.drop_old(cx, old);
                    return Err(policy::NAT_FAILED);
                }
            };
            let m = make(pp);
            match cx.filter.install(old.as_ref(), &m, cx.slot) {
                Ok(Installed::Done) => {
                    self.pending = Some(Pending {
                        map: m,
                        since: cx.now,
                    });
                    self.negotiated += 1;
                    cx.totals.negotiated += 1;
                    return Ok(pp);
                }
                // Taken in the kernel all the same (a stale element).
                Ok(Installed::PortInUse) => continue,
                Err(e) => {
                    log::error!("#{} kernel refused data mapping: {e}", self.id);
                    self.drop_old(cx, old);
                    return Err(policy::NAT_FAILED);
                }
            }
        }
        log::error!("#{} no free proxy port after {PORT_TRIES} tries", self.id);
        self.drop_old(cx, old);
        Err(policy::NAT_FAILED)
    }

    /// The previous mapping, when no new one replaced it.
    fn drop_old(&mut self, cx: &mut Ctx, old: Option<DataMap>) {
        if let Some(o) = old {
            if let Err(e) = cx.filter.remove(&o) {
                log::error!("#{} removing previous mapping: {e}", self.id);
            }
        }
    }

    /// 227/229: the server's port is replaced by a proxy port on the
    /// address the client wanted (`orig_server`, or `-e`); the kernel forwards the
    /// connection to it to the server's control address. The address in
    /// a 227 is never trusted.
    fn passive(&mut self, cx: &mut Ctx, extended: bool, port: u16) {
        let Some(proxy) = self.proxy_addr else { return };
        let (client, server, orig) = (
            self.client_addr.ip(),
            self.server_addr.ip(),
            self.orig_server.ip(),
        );
        let id = self.id;
        self.mode = Some(DataMode::Passive);
        let pp = match self.install(cx, |pp| {
            DataMap::passive(client, orig, pp, server, port, proxy, id)
        }) {
            Ok(pp) => pp,
            Err(r) => {
                let code = if extended { 229 } else { 227 };
                return self.reply_instead(cx, r, code);
            }
        };
        // Behind a NAT (`-e`), the client is told the address that NAT
        // publishes; the connection still reaches the router at `orig`.
        let told = cx.cfg.advertised.unwrap_or(orig);
        emit(&mut self.to_client, |b| {
            write::passive_reply(b, told, pp, extended)
        });
        log::debug!(
            "#{} {}: client {client} -> {} -> server {}",
            self.id,
            if extended || orig.is_ipv6() {
                "EPSV"
            } else {
                "PASV"
            },
            SocketAddr::new(told, pp),
            SocketAddr::new(server, port)
        );
    }

    /// Removes the kernel state and closes both connections.
    pub fn close(&mut self, filter: &mut Mappings, why: &End) {
        if let Some(p) = self.pending.take() {
            if let Err(e) = filter.remove(&p.map) {
                log::error!("#{} removing mapping: {e}", self.id);
            }
        }
        #[cfg(target_os = "linux")]
        if let End::HandedToPeer(_) = why {
            // Closed in repair mode: the connections live on at the peer.
            crate::ha::repair::freeze(&self.client);
            crate::ha::repair::freeze(&self.server);
        }
        // Logged before the sockets close: whoever sees the close can
        // find the reason in the log already.
        let level = match why {
            End::ClientClosed | End::ServerClosed | End::Shutdown => log::Level::Info,
            _ => log::Level::Warn,
        };
        log::log!(
            level,
            "#{} ending session: {why} ({} commands, {} data connections negotiated, {} made)",
            self.id,
            self.commands,
            self.negotiated,
            self.moved.connections
        );
        // Tell the client why, unless that would land inside a line the
        // client is still receiving.
        if let Some(text) = why.farewell() {
            if self.to_client.is_empty() && !self.relay.mid_line() {
                let _ = self.client.write(text);
            }
        }
        if !matches!(why, End::HandedToPeer(_)) {
            let _ = self.client.shutdown(Shutdown::Both);
            let _ = self.server.shutdown(Shutdown::Both);
        }
    }
}

/// Queues the proxy's own reply `r`; the caller checked for room.
fn emit_refusal<const N: usize>(out: &mut OutBuf<N>, r: Refusal) {
    emit(out, |b| {
        write::format(b, format_args!("{} {}\r\n", r.code, r.text))
    });
}
