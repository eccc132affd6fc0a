//! One FTP session: the client and server control connections, their fixed
//! buffers, and the rewriting of data-connection negotiation.
//!
//! Commands flow client → `cin` → (checked, rewritten) → `sout` → server;
//! replies flow server → `sin` → (rewritten) → `cout` → client. A line is
//! only taken from an input buffer when the output it may produce fits, so
//! a slow peer stops the reading of the other one (backpressure).

use crate::config::Config;
use crate::filter::{Backend, DataMap};
use crate::ftp::command::{is_anonymous, Af, Command};
use crate::ftp::line::{Frame, LineBuf, OutBuf};
use crate::ftp::reply::{self, Kind, ReplyFramer};
use crate::ftp::write::{format, ExtHostPort, HostPort};
use crate::ftp::{MAX_LINE, MIN_DATA_PORT};
use mio::net::TcpStream;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::Instant;

/// Output buffers hold two full lines: one being written, one queued.
const OUT: usize = 2 * MAX_LINE;
/// Room a line needs in an output buffer before it is taken from input.
const ROOM: usize = MAX_LINE + 64;
/// Proxy ports are picked from the IANA dynamic range (ftp-proxy(8)).
const PORT_MIN: u16 = 49152;
/// Tries at a free proxy port before the data connection is refused.
const PORT_TRIES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Running,
}

/// Why a session ended: the log line says it.
#[derive(Debug)]
pub enum End {
    ClientClosed,
    ServerClosed,
    Connect(io::Error),
    ClientIo(io::Error),
    ServerIo(io::Error),
    LineTooLong(&'static str),
    IdleTimeout,
    ConnectTimeout,
    Shutdown,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::ClientClosed => f.write_str("client closed"),
            End::ServerClosed => f.write_str("server closed"),
            End::Connect(e) => write!(f, "connect to server failed: {e}"),
            End::ClientIo(e) => write!(f, "client error: {e}"),
            End::ServerIo(e) => write!(f, "server error: {e}"),
            End::LineTooLong(who) => write!(f, "{who} sent a line longer than {MAX_LINE} bytes"),
            End::IdleTimeout => f.write_str("idle timeout"),
            End::ConnectTimeout => f.write_str("timeout connecting to server"),
            End::Shutdown => f.write_str("proxy shutting down"),
        }
    }
}

/// Small, fast, non-cryptographic generator for proxy ports (xorshift64*),
/// seeded from the kernel's random pool.
pub struct Rng(u64);

impl Rng {
    pub fn from_os() -> Rng {
        let mut seed = [0u8; 8];
        // SAFETY: seed is a writable 8-byte buffer.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
        let mut s = u64::from_ne_bytes(seed);
        if n != 8 || s == 0 {
            s = u64::from(std::process::id()) << 32 | 0x9e37_79b9;
        }
        Rng(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A port in 49152..=65535.
    pub fn proxy_port(&mut self) -> u16 {
        PORT_MIN + (self.next_u64() % u64::from(u16::MAX - PORT_MIN + 1)) as u16
    }
}

/// What a session needs from the daemon while it handles a line.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub filter: &'a mut Backend,
    pub rng: &'a mut Rng,
    pub now: Instant,
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
    pub data_conns: u32,
    /// The kernel mapping of the pending data connection.
    pub map: Option<DataMap>,
    cin: LineBuf<MAX_LINE>,
    sin: LineBuf<MAX_LINE>,
    cout: OutBuf<OUT>,
    sout: OutBuf<OUT>,
    replies: ReplyFramer,
    epsv_all: bool,
    client_eof: bool,
    server_eof: bool,
}

/// Reads what `r` has into `buf` until it would block or the buffer is
/// full. Returns whether anything (data or end of stream) arrived.
fn fill<R: Read, const N: usize>(
    r: &mut R,
    buf: &mut LineBuf<N>,
    eof: &mut bool,
) -> io::Result<bool> {
    let mut progress = false;
    while !*eof && !buf.is_full() {
        match buf.read_from(r) {
            Ok(0) => {
                *eof = true;
                progress = true;
            }
            Ok(n) => {
                buf.filled(n);
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(progress)
}

fn flush<W: Write, const N: usize>(w: &mut W, out: &mut OutBuf<N>) -> io::Result<bool> {
    let before = out.free();
    out.write_to(w)?;
    Ok(out.free() != before)
}

/// Queues a formatted line; the caller checked for room.
fn emit<const N: usize>(out: &mut OutBuf<N>, args: fmt::Arguments<'_>) {
    let tail = out.tail();
    if let Some(n) = format(tail, args) {
        out.commit(n);
    }
}

impl Session {
    pub fn new(
        id: u64,
        client: TcpStream,
        server: TcpStream,
        client_addr: SocketAddr,
        orig_server: SocketAddr,
        server_addr: SocketAddr,
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
            data_conns: 0,
            map: None,
            cin: LineBuf::default(),
            sin: LineBuf::default(),
            cout: OutBuf::default(),
            sout: OutBuf::default(),
            replies: ReplyFramer::default(),
            epsv_all: false,
            client_eof: false,
            server_eof: false,
        }
    }

    /// Moves bytes as far as both peers allow. `Err` ends the session.
    pub fn pump(&mut self, cx: &mut Ctx) -> Result<(), End> {
        if self.phase == Phase::Connecting && !self.check_connected()? {
            return Ok(());
        }
        loop {
            let mut progress = false;
            if fill(&mut self.client, &mut self.cin, &mut self.client_eof).map_err(End::ClientIo)? {
                self.last_io = cx.now;
                progress = true;
            }
            progress |= self.client_lines(cx)?;
            progress |= flush(&mut self.server, &mut self.sout).map_err(End::ServerIo)?;
            if fill(&mut self.server, &mut self.sin, &mut self.server_eof).map_err(End::ServerIo)? {
                self.last_io = cx.now;
                progress = true;
            }
            progress |= self.server_lines(cx)?;
            progress |= flush(&mut self.client, &mut self.cout).map_err(End::ClientIo)?;
            if !progress {
                break;
            }
        }
        // A peer that closed has had its last complete lines relayed.
        if self.server_eof && self.cout.is_empty() && !matches!(self.sin.frame(), Frame::Line(_)) {
            return Err(End::ServerClosed);
        }
        if self.client_eof && self.sout.is_empty() && !matches!(self.cin.frame(), Frame::Line(_)) {
            return Err(End::ClientClosed);
        }
        Ok(())
    }

    /// Completes the non-blocking connect to the server.
    fn check_connected(&mut self) -> Result<bool, End> {
        if let Ok(Some(e)) | Err(e) = self.server.take_error() {
            return Err(End::Connect(e));
        }
        match self.server.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => return Ok(false),
            Err(e) => return Err(End::Connect(e)),
        }
        let local = self.server.local_addr().map_err(End::Connect)?;
        self.proxy_addr = Some(local.ip());
        self.phase = Phase::Running;
        log::info!(
            "#{} FTP session started: client {} to server {} via proxy {}",
            self.id,
            self.client_addr,
            self.server_addr,
            local
        );
        Ok(true)
    }

    fn client_lines(&mut self, cx: &mut Ctx) -> Result<bool, End> {
        let mut progress = false;
        while self.sout.free() >= ROOM && self.cout.free() >= ROOM {
            match self.cin.frame() {
                Frame::Line(n) => {
                    self.command(n, cx);
                    self.cin.consume(n);
                    progress = true;
                }
                Frame::Partial => break,
                Frame::TooLong => return Err(End::LineTooLong("client")),
            }
        }
        Ok(progress)
    }

    fn server_lines(&mut self, cx: &mut Ctx) -> Result<bool, End> {
        let mut progress = false;
        while self.cout.free() >= ROOM {
            match self.sin.frame() {
                Frame::Line(n) => {
                    self.reply(n, cx);
                    self.sin.consume(n);
                    progress = true;
                }
                Frame::Partial => break,
                Frame::TooLong => return Err(End::LineTooLong("server")),
            }
        }
        Ok(progress)
    }

    /// Tells the client `code text` instead of forwarding its command.
    fn refuse(&mut self, code: u16, text: &str) {
        log::info!("#{} refused client command: {code} {text}", self.id);
        emit(&mut self.cout, format_args!("{code} {text}\r\n"));
    }

    fn command(&mut self, n: usize, cx: &mut Ctx) {
        self.commands += 1;
        let line = self.cin.head(n);
        match Command::parse(line) {
            Command::Port(port) => self.active(cx, None, port),
            Command::Eprt(af, port) => self.active(cx, Some(af), port),
            Command::Pasv if cx.cfg.ipv6 => {
                self.refuse(500, "PASV not allowed in IPv6 mode, use EPSV")
            }
            Command::Pasv if self.epsv_all => {
                self.refuse(503, "EPSV ALL in effect, only EPSV is allowed")
            }
            Command::Epsv(Some(af)) if af != self.family() => self.refuse_family(),
            Command::EpsvAll => {
                self.epsv_all = true;
                self.forward_command(n);
            }
            Command::User(user) if cx.cfg.anonymous_only && !is_anonymous(user) => {
                self.refuse(530, "Only anonymous FTP is allowed through this proxy")
            }
            Command::Security => self.refuse(
                534,
                "AUTH refused: ftp-proxy must read the control channel, TLS cannot pass through it",
            ),
            Command::Long => {
                self.refuse(502, "LPRT/LPSV not supported by the proxy, use EPRT/EPSV")
            }
            Command::Malformed(verb) => {
                let text = match verb {
                    "PORT" => "Syntax error in PORT parameters",
                    "EPRT" => "Syntax error in EPRT parameters",
                    _ => "Syntax error in EPSV parameters",
                };
                self.refuse(501, text)
            }
            _ => self.forward_command(n),
        }
    }

    fn forward_command(&mut self, n: usize) {
        // Room was checked by the caller; a line is at most MAX_LINE.
        let _ = self.sout.push(self.cin.head(n));
    }

    /// 522 (RFC 2428): the family the client named is not the one in use.
    fn refuse_family(&mut self) {
        let text = match self.family() {
            Af::Inet => "Network protocol not supported, use (1)",
            Af::Inet6 => "Network protocol not supported, use (2)",
        };
        self.refuse(522, text)
    }

    fn family(&self) -> Af {
        if self.client_addr.is_ipv4() {
            Af::Inet
        } else {
            Af::Inet6
        }
    }

    /// PORT/EPRT: the address the client named is ignored; the server is
    /// sent the proxy's address and a fresh port whose connections the
    /// kernel forwards to the client's control address and named port.
    fn active(&mut self, cx: &mut Ctx, af: Option<Af>, port: u16) {
        let Some(proxy) = self.proxy_addr else { return };
        if af.is_none() && cx.cfg.ipv6 {
            return self.refuse(500, "PORT not allowed in IPv6 mode, use EPRT");
        }
        if self.epsv_all {
            return self.refuse(503, "EPSV ALL in effect, only EPSV is allowed");
        }
        if af.is_some_and(|af| af != self.family()) {
            return self.refuse_family();
        }
        if port < MIN_DATA_PORT {
            log::warn!(
                "#{} client {} asked for data port {port} below {MIN_DATA_PORT}",
                self.id,
                self.client_addr
            );
            return self.refuse(501, "Data port below 1024 refused");
        }
        let (client, server, orig) = (
            self.client_addr.ip(),
            self.server_addr.ip(),
            self.orig_server.ip(),
        );
        let port20 = cx.cfg.port20;
        let Some(pp) = self.install(cx, |pp| {
            DataMap::active(server, proxy, pp, client, port, orig, port20)
        }) else {
            return self.refuse(
                425,
                "Can't open data connection: proxy could not set up NAT",
            );
        };
        let verb = match (af, proxy) {
            (None, IpAddr::V4(p)) => {
                emit(
                    &mut self.sout,
                    format_args!("PORT {}\r\n", HostPort(p.octets(), pp)),
                );
                "PORT"
            }
            _ => {
                emit(
                    &mut self.sout,
                    format_args!("EPRT {}\r\n", ExtHostPort(proxy, pp)),
                );
                "EPRT"
            }
        };
        log::debug!(
            "#{} {verb}: server {server} -> proxy {} -> client {}",
            self.id,
            SocketAddr::new(proxy, pp),
            SocketAddr::new(client, port)
        );
    }

    /// Picks a proxy port and installs the kernel mapping built by `make`,
    /// replacing the session's previous one.
    fn install(&mut self, cx: &mut Ctx, make: impl Fn(u16) -> DataMap) -> Option<u16> {
        if let Some(old) = self.map.take() {
            if let Err(e) = cx.filter.remove(&old) {
                log::error!("#{} removing previous mapping: {e}", self.id);
            }
        }
        for _ in 0..PORT_TRIES {
            let pp = cx.rng.proxy_port();
            let m = make(pp);
            match cx.filter.add(&m) {
                Ok(()) => {
                    self.map = Some(m);
                    self.data_conns += 1;
                    return Some(pp);
                }
                Err(e) if e.is_exists() => continue,
                Err(e) => {
                    log::error!("#{} kernel refused data mapping: {e}", self.id);
                    return None;
                }
            }
        }
        log::error!("#{} no free proxy port after {PORT_TRIES} tries", self.id);
        None
    }

    fn reply(&mut self, n: usize, cx: &mut Ctx) {
        let kind = self.replies.classify(self.sin.head(n));
        match kind {
            Some(Kind::Final(227)) => self.passive(n, cx, false),
            Some(Kind::Final(229)) => self.passive(n, cx, true),
            _ => {
                let _ = self.cout.push(self.sin.head(n));
            }
        }
    }

    /// 227/229: the server's port is replaced by a proxy port on the
    /// address the client wanted (`orig_server`); the kernel forwards
    /// connections to it to the server's control address. The address in
    /// a 227 is never trusted.
    fn passive(&mut self, n: usize, cx: &mut Ctx, extended: bool) {
        let Some(proxy) = self.proxy_addr else { return };
        let line = self.sin.head(n);
        let port = if extended {
            reply::parse_229(line)
        } else {
            reply::parse_227(line).map(|(_, p)| p)
        };
        let Some(port) = port else {
            log::warn!(
                "#{} server sent a malformed {} reply",
                self.id,
                if extended { 229 } else { 227 }
            );
            return self.refuse(
                425,
                "Can't open data connection: bad passive reply from server",
            );
        };
        if port < MIN_DATA_PORT {
            log::warn!(
                "#{} server {} offered data port {port} below {MIN_DATA_PORT}",
                self.id,
                self.server_addr
            );
            return self.refuse(
                425,
                "Can't open data connection: server port below 1024 refused",
            );
        }
        let (client, server, orig) = (
            self.client_addr.ip(),
            self.server_addr.ip(),
            self.orig_server.ip(),
        );
        let Some(pp) = self.install(cx, |pp| {
            DataMap::passive(client, orig, pp, server, port, proxy)
        }) else {
            return self.refuse(
                425,
                "Can't open data connection: proxy could not set up NAT",
            );
        };
        match (extended, orig) {
            (false, IpAddr::V4(o)) => emit(
                &mut self.cout,
                format_args!(
                    "227 Entering Passive Mode ({})\r\n",
                    HostPort(o.octets(), pp)
                ),
            ),
            _ => emit(
                &mut self.cout,
                format_args!("229 Entering Extended Passive Mode (|||{pp}|)\r\n"),
            ),
        }
        log::debug!(
            "#{} {}: client {client} -> {} -> server {}",
            self.id,
            if extended { "EPSV" } else { "PASV" },
            SocketAddr::new(orig, pp),
            SocketAddr::new(server, port)
        );
    }

    /// Removes the kernel state and closes both connections.
    pub fn close(&mut self, filter: &mut Backend, why: &End) {
        if let Some(m) = self.map.take() {
            if let Err(e) = filter.remove(&m) {
                log::error!("#{} removing mapping: {e}", self.id);
            }
        }
        if self.phase == Phase::Connecting {
            // The client has not heard from any server yet: say why it ends.
            let _ = self
                .client
                .write(b"421 Service not available: cannot reach the FTP server\r\n");
        }
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
        let level = match why {
            End::ClientClosed | End::ServerClosed | End::Shutdown => log::Level::Info,
            _ => log::Level::Warn,
        };
        log::log!(
            level,
            "#{} ending session: {why} ({} commands, {} data connections)",
            self.id,
            self.commands,
            self.data_conns
        );
    }
}
