//! One FTP session: the client and server control connections, their fixed
//! buffers, and the rewriting of data-connection negotiation.
//!
//! Commands flow client → `cin` → (checked, rewritten) → `sout` → server;
//! replies flow server → `sin` → (rewritten) → `cout` → client. A line is
//! only taken from an input buffer when the output it may produce fits, so
//! a slow peer stops the reading of the other one (backpressure).

use crate::config::Config;
use crate::filter::{Backend, DataMap};
use crate::ftp::line::{Frame, LineBuf, OutBuf};
use crate::ftp::policy::{self, Policy, Refusal, Severity, Verdict};
use crate::ftp::reply::{Kind, ReplyFramer};
use crate::ftp::{telnet, write, MAX_LINE};
use crate::net;
use mio::net::TcpStream;
use std::fmt;
use std::io::{self, Write};
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
        #[cfg(not(target_os = "openbsd"))]
        let ok = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) } == 8;
        // SAFETY: as above.
        #[cfg(target_os = "openbsd")]
        let ok = unsafe { libc::getentropy(seed.as_mut_ptr().cast(), seed.len()) } == 0;
        let mut s = u64::from_ne_bytes(seed);
        if !ok || s == 0 {
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
    /// The server's greeting (its first complete reply) has arrived.
    pub greeted: bool,
    policy: Policy,
    cin: LineBuf<MAX_LINE>,
    sin: LineBuf<MAX_LINE>,
    cout: OutBuf<OUT>,
    sout: OutBuf<OUT>,
    replies: ReplyFramer,
    /// A server line too long for `sin` is being relayed piece by piece.
    relaying_long: bool,
    /// …or dropped, because it was a passive reply the proxy cannot read.
    dropping_long: bool,
    client_eof: bool,
    server_eof: bool,
    /// The client half-closed and the server has been sent FIN too.
    server_shut: bool,
}

/// Reads what `r` has into `buf` until it would block or the buffer is
/// full. Returns whether anything (data or end of stream) arrived. With
/// `urgent`, asks before each read whether the next byte is the peer's
/// urgent byte (reads stop just before it).
fn fill<const N: usize>(
    r: &mut TcpStream,
    buf: &mut LineBuf<N>,
    eof: &mut bool,
    urgent: bool,
) -> io::Result<bool> {
    let mut progress = false;
    while !*eof && !buf.is_full() {
        if urgent && net::at_mark(r)? {
            buf.mark_urgent();
        }
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

/// A client's verb for the log: at most 8 printable bytes, never its
/// argument (which may be a password).
struct Verb<'a>(&'a [u8]);

impl fmt::Display for Verb<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take_while(|&&b| b != b' ').take(8) {
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
            data_conns: 0,
            map: None,
            greeted: false,
            policy,
            cin: LineBuf::default(),
            sin: LineBuf::default(),
            cout: OutBuf::default(),
            sout: OutBuf::default(),
            replies: ReplyFramer::default(),
            relaying_long: false,
            dropping_long: false,
            client_eof: false,
            server_eof: false,
            server_shut: false,
        }
    }

    /// Moves bytes as far as both peers allow. `Err` ends the session.
    pub fn pump(&mut self, cx: &mut Ctx) -> Result<(), End> {
        if self.phase == Phase::Connecting && !self.check_connected()? {
            return Ok(());
        }
        loop {
            let mut progress = false;
            let got = fill(&mut self.client, &mut self.cin, &mut self.client_eof, true);
            if got.map_err(End::ClientIo)? {
                self.last_io = cx.now;
                progress = true;
            }
            progress |= self.client_lines(cx);
            progress |= flush(&mut self.server, &mut self.sout).map_err(End::ServerIo)?;
            let got = fill(&mut self.server, &mut self.sin, &mut self.server_eof, false);
            if got.map_err(End::ServerIo)? {
                self.last_io = cx.now;
                progress = true;
            }
            progress |= self.server_lines(cx);
            progress |= flush(&mut self.client, &mut self.cout).map_err(End::ClientIo)?;
            if !progress {
                break;
            }
        }
        // A peer that closed has had its last complete lines relayed.
        if self.server_eof && self.cout.is_empty() && !self.sin.has_frame() {
            return Err(End::ServerClosed);
        }
        if self.client_eof && self.sout.is_empty() && !self.cin.has_frame() && !self.server_shut {
            // Half-close: pass the client's FIN on and keep relaying the
            // server's last replies (a 221 to QUIT) until it closes too.
            self.server_shut = true;
            if self.server.shutdown(Shutdown::Write).is_err() {
                return Err(End::ClientClosed);
            }
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

    fn client_lines(&mut self, cx: &mut Ctx) -> bool {
        let mut progress = false;
        while self.sout.free() >= ROOM && self.cout.free() >= ROOM {
            let f = self.cin.frame();
            match f {
                Frame::Line(n) => self.command(n, cx),
                Frame::Partial => break,
                Frame::LongStart(_) => log::info!(
                    "#{} client sent a command longer than {MAX_LINE} bytes, dropping it",
                    self.id
                ),
                Frame::LongMore(_) => {}
                Frame::LongEnd(_) => self.refuse(policy::LINE_TOO_LONG, b"(long)"),
            }
            self.cin.advance(f);
            progress = true;
        }
        progress
    }

    fn server_lines(&mut self, cx: &mut Ctx) -> bool {
        let mut progress = false;
        while self.cout.free() >= ROOM {
            let f = self.sin.frame();
            match f {
                Frame::Line(n) => self.reply(n, cx),
                Frame::Partial => break,
                Frame::LongStart(n) => self.long_reply_start(n),
                Frame::LongMore(n) | Frame::LongEnd(n) => {
                    if !self.dropping_long {
                        let _ = self.cout.push(self.sin.head(n));
                    }
                }
            }
            if let Frame::LongEnd(_) = f {
                self.relaying_long = false;
                self.dropping_long = false;
            }
            self.sin.advance(f);
            progress = true;
        }
        progress
    }

    /// Tells the client `r` instead of relaying what it or the server said.
    fn refuse(&mut self, r: Refusal, what: &[u8]) {
        let what = Verb(what);
        match r.severity {
            Severity::Security => log::warn!(
                "#{} client {} refused {what}: {} {}",
                self.id,
                self.client_addr,
                r.code,
                r.text
            ),
            Severity::Protocol => log::info!(target: crate::log::NOTICE,
                "#{} refused {what}: {} {}", self.id, r.code, r.text),
        }
        emit(&mut self.cout, |b| {
            write::format(b, format_args!("{} {}\r\n", r.code, r.text))
        });
    }

    fn command(&mut self, n: usize, cx: &mut Ctx) {
        self.commands += 1;
        let raw = self.cin.head(n);
        // Judge the line the server will read: without Telnet sequences.
        let mut clean = [0u8; MAX_LINE];
        let line = match telnet::has_iac(raw) {
            true => {
                let k = telnet::strip(raw, &mut clean);
                &clean[..k]
            }
            false => raw,
        };
        match self.policy.judge(line) {
            Verdict::Forward => {
                // Room was checked by the caller; a line is at most MAX_LINE.
                let _ = match self.cin.urgent_in(n) {
                    Some(u) => self.sout.push_urgent(raw, u),
                    None => self.sout.push(raw),
                };
            }
            Verdict::Active { extended, port } => self.active(cx, extended, port),
            Verdict::Refuse(r) => {
                let verb = if line.len() < 8 { line } else { &line[..8] };
                let mut v = [0u8; 8];
                v[..verb.len()].copy_from_slice(verb);
                self.refuse(r, &v[..verb.len()]);
            }
        }
    }

    /// PORT/EPRT: the address the client named is ignored; the server is
    /// sent the proxy's address and a fresh port whose connections the
    /// kernel forwards to the client's control address and named port.
    fn active(&mut self, cx: &mut Ctx, extended: bool, port: u16) {
        let Some(proxy) = self.proxy_addr else { return };
        let (client, server, orig) = (
            self.client_addr.ip(),
            self.server_addr.ip(),
            self.orig_server.ip(),
        );
        let (port20, id) = (cx.cfg.port20, self.id);
        let Some(pp) = self.install(cx, |pp| {
            DataMap::active(server, proxy, pp, client, port, orig, port20, id)
        }) else {
            return self.refuse(policy::NAT_FAILED, b"PORT");
        };
        emit(&mut self.sout, |b| {
            write::active_command(b, proxy, pp, extended)
        });
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

    /// Picks a proxy port and installs the kernel mapping built by `make`,
    /// replacing the session's previous one.
    fn install(&mut self, cx: &mut Ctx, make: impl Fn(u16) -> DataMap) -> Option<u16> {
        // The previous mapping goes in the same kernel transaction as the
        // new one comes (one round trip), or stays if that fails.
        let old = self.map.take();
        for _ in 0..PORT_TRIES {
            let pp = cx.rng.proxy_port();
            let m = make(pp);
            let r = match &old {
                Some(o) => cx.filter.replace(o, &m),
                None => cx.filter.add(&m),
            };
            match r {
                Ok(()) => {
                    self.map = Some(m);
                    self.data_conns += 1;
                    return Some(pp);
                }
                Err(e) if e.is_exists() => continue,
                Err(e) => {
                    log::error!("#{} kernel refused data mapping: {e}", self.id);
                    self.drop_old(cx, old);
                    return None;
                }
            }
        }
        log::error!("#{} no free proxy port after {PORT_TRIES} tries", self.id);
        self.drop_old(cx, old);
        None
    }

    /// The previous mapping, when no new one replaced it.
    fn drop_old(&mut self, cx: &mut Ctx, old: Option<DataMap>) {
        if let Some(o) = old {
            if let Err(e) = cx.filter.remove(&o) {
                log::error!("#{} removing previous mapping: {e}", self.id);
            }
        }
    }

    fn reply(&mut self, n: usize, cx: &mut Ctx) {
        let line = self.sin.head(n);
        let kind = self.replies.classify(line);
        if let Some(Kind::Final(code)) = kind {
            self.greeted = true;
            match policy::passive_port(code, line) {
                Some(Ok(port)) => return self.passive(cx, code == 229, port),
                Some(Err(r)) => return self.refuse_reply(r, code),
                None => {}
            }
        }
        let _ = self.cout.push(self.sin.head(n));
    }

    /// The first piece of a server line longer than `sin`: relayed as it
    /// comes, unless it is a passive reply, which the proxy must read
    /// whole and cannot.
    fn long_reply_start(&mut self, n: usize) {
        let head = self.sin.head(n);
        match self.replies.classify(head) {
            Some(Kind::Final(code @ (227 | 229))) => {
                self.dropping_long = true;
                self.refuse_reply(policy::BAD_PASSIVE, code);
            }
            _ => {
                self.relaying_long = true;
                let _ = self.cout.push(head);
            }
        }
    }

    fn refuse_reply(&mut self, r: Refusal, code: u16) {
        let mut what = [0u8; 3];
        let _ = write::format(&mut what, format_args!("{code}"));
        self.refuse(r, &what);
    }

    /// 227/229: the server's port is replaced by a proxy port on the
    /// address the client wanted (`orig_server`); the kernel forwards
    /// connections to it to the server's control address. The address in
    /// a 227 is never trusted.
    fn passive(&mut self, cx: &mut Ctx, extended: bool, port: u16) {
        let Some(proxy) = self.proxy_addr else { return };
        let (client, server, orig) = (
            self.client_addr.ip(),
            self.server_addr.ip(),
            self.orig_server.ip(),
        );
        let id = self.id;
        let Some(pp) = self.install(cx, |pp| {
            DataMap::passive(client, orig, pp, server, port, proxy, id)
        }) else {
            return self.refuse(policy::NAT_FAILED, b"PASV");
        };
        emit(&mut self.cout, |b| {
            write::passive_reply(b, orig, pp, extended)
        });
        log::debug!(
            "#{} {}: client {client} -> {} -> server {}",
            self.id,
            if extended || orig.is_ipv6() {
                "EPSV"
            } else {
                "PASV"
            },
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
        // Tell the client why, unless that would land inside a line the
        // client is still receiving.
        if let Some(text) = why.farewell() {
            if self.cout.is_empty() && !self.relaying_long {
                let _ = self.client.write(text);
            }
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
