//! One end of an established TCP connection as `TCP_REPAIR` (Linux,
//! CAP_NET_ADMIN) reads and rebuilds it: the sequence numbers of both
//! directions, the bytes still queued in the kernel, the options the
//! handshake agreed, the windows and the timestamp clock. `capture` looks
//! at a live socket for a moment (it leaves repair mode without the
//! window probe, so the peer sees nothing); `rebuild` makes the same end
//! on another router, in repair mode, so nothing is sent until `resume`.

use crate::handover::wire::{Reader, Writer};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// The kernel's ABI (include/uapi/linux/tcp.h), the same on every arch.
const TCP_MAXSEG: libc::c_int = 2;
const TCP_INFO: libc::c_int = 11;
const TCP_REPAIR: libc::c_int = 19;
const TCP_REPAIR_QUEUE: libc::c_int = 20;
const TCP_QUEUE_SEQ: libc::c_int = 21;
const TCP_REPAIR_OPTIONS: libc::c_int = 22;
const TCP_TIMESTAMP: libc::c_int = 24;
const TCP_REPAIR_WINDOW: libc::c_int = 29;
const REPAIR_ON: libc::c_int = 1;
const REPAIR_OFF: libc::c_int = 0;
/// Off without the window probe `REPAIR_OFF` sends.
const REPAIR_OFF_NO_PROBE: libc::c_int = -1;
const RECV_QUEUE: libc::c_int = 1;
const SEND_QUEUE: libc::c_int = 2;
const TCPOPT_MSS: u32 = 2;
const TCPOPT_WINDOW: u32 = 3;
const TCPOPT_SACK_PERM: u32 = 4;
const TCPOPT_TIMESTAMP: u32 = 8;
const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;
#[cfg(any(target_os = "linux", target_os = "android"))]
const SIOCINQ: libc::c_ulong = 0x541B;
#[cfg(any(target_os = "linux", target_os = "android"))]
const SIOCOUTQ: libc::c_ulong = 0x5411;

/// The most a kernel queue may hold for the connection to be copied: a
/// control connection's queues are a reply or a command or two; one
/// whose peer stopped reading is not worth a failover.
pub const QUEUE_MAX: usize = 2048;

/// One end of a connection, as of its capture.
pub struct TcpEnd {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// The next byte to send (`write_seq`) and to receive (`rcv_nxt`).
    send_seq: u32,
    recv_seq: u32,
    mss: u32,
    /// TCPI_OPT_* as the handshake agreed.
    options: u8,
    send_wscale: u8,
    recv_wscale: u8,
    /// `struct tcp_repair_window`: snd_wl1, snd_wnd, max_window,
    /// rcv_wnd, rcv_wup.
    window: [u32; 5],
    timestamp: u32,
    /// Sent but not acknowledged (or not sent yet), and received but not
    /// read yet.
    send_queue: heapless::Vec<u8, QUEUE_MAX>,
    recv_queue: heapless::Vec<u8, QUEUE_MAX>,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    match r {
        -1 => Err(io::Error::last_os_error()),
        r => Ok(r),
    }
}

fn set(fd: RawFd, opt: libc::c_int, val: &[u8]) -> io::Result<()> {
    // SAFETY: val is valid for val.len() bytes.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            opt,
            val.as_ptr().cast(),
            val.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn set_int(fd: RawFd, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    set(fd, opt, &v.to_ne_bytes())
}

/// Fills `out` from a getsockopt; how many bytes the kernel wrote.
fn get(fd: RawFd, opt: libc::c_int, out: &mut [u8]) -> io::Result<usize> {
    let mut len = out.len() as libc::socklen_t;
    // SAFETY: out is valid for len bytes; len is updated by the kernel.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            opt,
            out.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    Ok(len as usize)
}

fn get_u32(fd: RawFd, opt: libc::c_int) -> io::Result<u32> {
    let mut b = [0u8; 4];
    get(fd, opt, &mut b)?;
    Ok(u32::from_ne_bytes(b))
}

fn queued(fd: RawFd, req: libc::c_ulong) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCINQ/SIOCOUTQ write one int.
    cvt(unsafe { libc::ioctl(fd, req as _, &mut n) })?;
    Ok(n.max(0) as usize)
}

/// Peeks the selected queue (in repair mode) into `out`, which must take
/// `n` bytes.
fn peek(fd: RawFd, n: usize, out: &mut heapless::Vec<u8, QUEUE_MAX>) -> io::Result<()> {
    if n == 0 {
        return Ok(());
    }
    out.resize_default(n).map_err(|_| too_much())?;
    // SAFETY: out is valid for n bytes.
    let got = unsafe {
        libc::recv(
            fd,
            out.as_mut_ptr().cast(),
            n,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    out.truncate(got as usize);
    Ok(())
}

fn too_much() -> io::Error {
    io::Error::other("more queued than a failover copies")
}

fn sock_addr(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    // SAFETY: std owns nothing here: a borrowed view of fd, forgotten.
    let s = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
    match peer {
        true => s.peer_addr(),
        false => s.local_addr(),
    }
}

/// The window scales of `tcp_info`'s bitfield byte (declared
/// `snd_wscale : 4, rcv_wscale : 4`: the first field takes the low bits
/// on little-endian ABIs and the high bits on big-endian ones).
fn wscales(b: u8) -> (u8, u8) {
    if cfg!(target_endian = "little") {
        (b & 0xf, b >> 4)
    } else {
        (b >> 4, b & 0xf)
    }
}

impl TcpEnd {
    /// Copies the state of `sock`, which stays as it was. Fails for a
    /// socket that is not ESTABLISHED (a half-closed one), without
    /// CAP_NET_ADMIN, or when a queue holds more than `QUEUE_MAX`.
    pub fn capture<S: AsRawFd>(sock: &S) -> io::Result<TcpEnd> {
        let fd = sock.as_raw_fd();
        let (outq, inq) = (queued(fd, SIOCOUTQ)?, queued(fd, SIOCINQ)?);
        if outq > QUEUE_MAX || inq > QUEUE_MAX {
            return Err(too_much());
        }
        set_int(fd, TCP_REPAIR, REPAIR_ON)?;
        let r = Self::read_repairing(fd, outq, inq);
        let off = set_int(fd, TCP_REPAIR, REPAIR_OFF_NO_PROBE);
        let end = r?;
        off?;
        Ok(end)
    }

    fn read_repairing(fd: RawFd, outq: usize, inq: usize) -> io::Result<TcpEnd> {
        let mut info = [0u8; 8];
        get(fd, TCP_INFO, &mut info)?;
        let (send_wscale, recv_wscale) = wscales(info[6]);
        let mut win = [0u8; 20];
        if get(fd, TCP_REPAIR_WINDOW, &mut win)? != win.len() {
            return Err(io::Error::other("short tcp_repair_window"));
        }
        let mut window = [0u32; 5];
        for (w, b) in window.iter_mut().zip(win.chunks_exact(4)) {
            *w = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
        let mut end = TcpEnd {
            local: sock_addr(fd, false)?,
            peer: sock_addr(fd, true)?,
            send_seq: 0,
            recv_seq: 0,
            // In repair mode TCP_MAXSEG reads the clamp the peer's MSS set.
            mss: get_u32(fd, TCP_MAXSEG)?,
            options: info[5],
            send_wscale,
            recv_wscale,
            window,
            timestamp: get_u32(fd, TCP_TIMESTAMP)?,
            send_queue: heapless::Vec::new(),
            recv_queue: heapless::Vec::new(),
        };
        set_int(fd, TCP_REPAIR_QUEUE, SEND_QUEUE)?;
        end.send_seq = get_u32(fd, TCP_QUEUE_SEQ)?;
        peek(fd, outq, &mut end.send_queue)?;
        set_int(fd, TCP_REPAIR_QUEUE, RECV_QUEUE)?;
        end.recv_seq = get_u32(fd, TCP_QUEUE_SEQ)?;
        peek(fd, inq, &mut end.recv_queue)?;
        Ok(end)
    }

    /// The same end, built here in repair mode (nothing sent, nothing
    /// answered): bound to its local address (IP_FREEBIND: the VIP may
    /// come a moment later), "connected" to its peer, its queues
    /// refilled. `age_ms`: how long ago it was captured, at least, so
    /// its timestamps go on rising.
    pub fn rebuild(&self, age_ms: u32) -> io::Result<OwnedFd> {
        let domain = match self.local {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: plain socket(2).
        let fd = cvt(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: fd is fresh and owned by nothing else.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // Repair mode binds beside the listener on the same address and
        // port (the kernel forces the reuse; SO_REUSEADDR would undo it).
        set_int(fd, TCP_REPAIR, REPAIR_ON)?;
        let _ = crate::net::set_int_opt(&sock, libc::SOL_IP, libc::IP_FREEBIND, 1);
        let (ss, len) = crate::net::sockaddr(&self.local);
        // SAFETY: ss holds a valid sockaddr of len bytes.
        cvt(unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) })?;
        let (sendq, recvq) = (&self.send_queue[..], &self.recv_queue[..]);
        set_int(fd, TCP_REPAIR_QUEUE, SEND_QUEUE)?;
        let first_unsent = self.send_seq.wrapping_sub(sendq.len() as u32);
        set(fd, TCP_QUEUE_SEQ, &first_unsent.to_ne_bytes())?;
        set_int(fd, TCP_REPAIR_QUEUE, RECV_QUEUE)?;
        let first_unread = self.recv_seq.wrapping_sub(recvq.len() as u32);
        set(fd, TCP_QUEUE_SEQ, &first_unread.to_ne_bytes())?;
        let (ss, len) = crate::net::sockaddr(&self.peer);
        // SAFETY: as above. In repair mode connect sends no SYN: the
        // socket is ESTABLISHED at once.
        cvt(unsafe { libc::connect(fd, (&ss as *const libc::sockaddr_storage).cast(), len) })?;
        let mut opts = [0u8; 32];
        let mut n = 0;
        let mut opt = |code: u32, val: u32| {
            opts[n..n + 4].copy_from_slice(&code.to_ne_bytes());
            opts[n + 4..n + 8].copy_from_slice(&val.to_ne_bytes());
            n += 8;
        };
        opt(TCPOPT_MSS, self.mss);
        if self.options & TCPI_OPT_WSCALE != 0 {
            let v = u32::from(self.send_wscale) | (u32::from(self.recv_wscale) << 16);
            opt(TCPOPT_WINDOW, v);
        }
        if self.options & TCPI_OPT_SACK != 0 {
            opt(TCPOPT_SACK_PERM, 0);
        }
        if self.options & TCPI_OPT_TIMESTAMPS != 0 {
            opt(TCPOPT_TIMESTAMP, 0);
        }
        set(fd, TCP_REPAIR_OPTIONS, &opts[..n])?;
        if self.options & TCPI_OPT_TIMESTAMPS != 0 {
            let ts = self.timestamp.wrapping_add(age_ms);
            set(fd, TCP_TIMESTAMP, &ts.to_ne_bytes())?;
        }
        for (queue, data) in [(SEND_QUEUE, sendq), (RECV_QUEUE, recvq)] {
            if data.is_empty() {
                continue;
            }
            set_int(fd, TCP_REPAIR_QUEUE, queue)?;
            // SAFETY: data is valid for its length.
            let sent = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), 0) };
            if sent != data.len() as isize {
                return Err(io::Error::other("a queue did not refill"));
            }
        }
        let mut win = [0u8; 20];
        for (b, w) in win.chunks_exact_mut(4).zip(self.window) {
            b.copy_from_slice(&w.to_ne_bytes());
        }
        set(fd, TCP_REPAIR_WINDOW, &win)?;
        Ok(sock)
    }

    pub fn save(&self, w: &mut Writer) {
        w.addr(self.local);
        w.addr(self.peer);
        w.u32(self.send_seq);
        w.u32(self.recv_seq);
        w.u32(self.mss);
        w.u8(self.options);
        w.u8(self.send_wscale);
        w.u8(self.recv_wscale);
        for v in self.window {
            w.u32(v);
        }
        w.u32(self.timestamp);
        w.blob(&self.send_queue);
        w.blob(&self.recv_queue);
    }

    pub fn load(r: &mut Reader) -> Option<TcpEnd> {
        let (local, peer) = (r.addr()?, r.addr()?);
        let (send_seq, recv_seq, mss) = (r.u32()?, r.u32()?, r.u32()?);
        let (options, send_wscale, recv_wscale) = (r.u8()?, r.u8()?, r.u8()?);
        if send_wscale > 14 || recv_wscale > 14 || local.is_ipv4() != peer.is_ipv4() {
            return None;
        }
        let mut window = [0u32; 5];
        for v in &mut window {
            *v = r.u32()?;
        }
        let timestamp = r.u32()?;
        let send_queue = heapless::Vec::from_slice(r.blob()?).ok()?;
        let recv_queue = heapless::Vec::from_slice(r.blob()?).ok()?;
        Some(TcpEnd {
            local,
            peer,
            send_seq,
            recv_seq,
            mss,
            options,
            send_wscale,
            recv_wscale,
            window,
            timestamp,
            send_queue,
            recv_queue,
        })
    }
}

/// Takes a rebuilt socket out of repair mode: it sends from now on (a
/// window probe first, which tells the peer where the connection went).
pub fn resume<S: AsRawFd>(sock: &S) -> io::Result<()> {
    set_int(sock.as_raw_fd(), TCP_REPAIR, REPAIR_OFF)
}

/// Puts a connection in repair mode for its close, which then goes
/// without a word to its peer (no FIN, no reset): the HA peer took it
/// over.
pub fn freeze<S: AsRawFd>(sock: &S) {
    let _ = set_int(sock.as_raw_fd(), TCP_REPAIR, REPAIR_ON);
}
