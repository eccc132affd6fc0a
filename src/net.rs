//! Socket calls std and mio do not offer: a non-blocking connect from a
//! chosen source address, transparent listeners, TCP urgent data.

use mio::net::TcpStream;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A `sockaddr_storage` holding `a`, and its length.
pub fn sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// A non-blocking, close-on-exec TCP socket of `addr`'s family.
fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2).
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The host a client address stands for, for `-M`: an IPv4 address
/// itself, an IPv6 address by its /64. One IPv6 host holds many addresses
/// of its /64 (privacy addresses, RFC 8981) and can make up more at will;
/// a /64 is the smallest block a host's network hands out. A v4-mapped
/// address counts as its IPv4 address.
pub fn client_host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Starts a non-blocking TCP connect to `dst`, from `src` if given.
pub fn connect_from(src: Option<IpAddr>, dst: SocketAddr) -> io::Result<TcpStream> {
    let stream = std::net::TcpStream::from(tcp_socket(&dst)?);
    let fd = stream.as_raw_fd();
    if let Some(src) = src {
        free_bind(&stream);
        let (ss, len) = sockaddr(&SocketAddr::new(src, 0));
        // SAFETY: ss holds a valid sockaddr of len bytes.
        if unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (ss, len) = sockaddr(&dst);
    // SAFETY: ss holds a valid sockaddr of len bytes.
    if unsafe { libc::connect(fd, (&ss as *const libc::sockaddr_storage).cast(), len) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(TcpStream::from_std(stream))
}

/// IP_FREEBIND (Linux): a bind to an address the host does not hold
/// (yet) works, without the system-wide ip_nonlocal_bind: the backup of
/// an HA pair listens on, and connects from, the VIPs it takes over. It
/// covers IPv6 sockets too.
fn free_bind<S: AsRawFd>(sock: &S) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = set_int_opt(sock, libc::SOL_IP, libc::IP_FREEBIND, 1);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = sock;
}

/// A non-blocking listener on `addr`; an IPv6 one takes IPv6 only, so
/// `-6 -b ::` does not also take IPv4 connections (as a dual-stack
/// socket would, with v4-mapped addresses the proxy cannot map).
pub fn listen(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let l = std::net::TcpListener::from(tcp_socket(&addr)?);
    let fd = l.as_raw_fd();
    set_int_opt(&l, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        set_int_opt(&l, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    if ACCEPTED_INHERIT {
        client_options(&l)?;
    }
    free_bind(&l);
    let (ss, len) = sockaddr(&addr);
    // SAFETY: ss holds a valid sockaddr of len bytes.
    if unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a bound socket; the backlog is clamped by the kernel.
    if unsafe { libc::listen(fd, 128) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(mio::net::TcpListener::from_std(l))
}

/// setsockopt(2) of an `int` option.
pub fn set_int_opt<S: AsRawFd>(
    sock: &S,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid pointer and length for an int option.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Keepalive probes after this long idle, then every `KEEPALIVE_INTERVAL`;
/// after `KEEPALIVE_PROBES` unanswered ones the kernel resets the
/// connection: a peer that vanished frees its slot within 2 minutes
/// instead of holding it until `-t` (24 hours by default).
pub const KEEPALIVE_IDLE: libc::c_int = 60;
pub const KEEPALIVE_INTERVAL: libc::c_int = 15;
pub const KEEPALIVE_PROBES: libc::c_int = 4;

/// TCP keepalive with the intervals above.
pub fn set_keepalive<S: AsRawFd>(sock: &S) -> io::Result<()> {
    set_int_opt(sock, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    // OpenBSD sets the intervals system-wide only.
    #[cfg(not(target_os = "openbsd"))]
    {
        set_int_opt(sock, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, KEEPALIVE_IDLE)?;
        set_int_opt(
            sock,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            KEEPALIVE_INTERVAL,
        )?;
        set_int_opt(sock, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, KEEPALIVE_PROBES)?;
    }
    Ok(())
}

/// Whether accepted sockets come with the listener's TCP_NODELAY,
/// keepalive settings and SO_OOBINLINE: on Linux they are copies of it
/// (`client_options_are_inherited` checks), so setting them once on the
/// listener saves six calls per session. Elsewhere each client socket
/// gets them.
pub const ACCEPTED_INHERIT: bool = cfg!(target_os = "linux");

/// A client control connection's options: no Nagle delay, keepalive,
/// urgent data in line.
fn client_options<S: AsRawFd>(sock: &S) -> io::Result<()> {
    set_int_opt(sock, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    set_keepalive(sock)?;
    set_oob_inline(sock)
}

/// `client_options` on one accepted socket, where they are not inherited;
/// a failure is logged, the session goes on.
pub fn set_client_options<S: AsRawFd>(sock: &S, peer: SocketAddr) {
    let _ = set_int_opt(sock, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    if let Err(e) = set_keepalive(sock) {
        log::warn!("client {peer}: keepalive: {e}");
    }
    if let Err(e) = set_oob_inline(sock) {
        log::warn!("client {peer}: SO_OOBINLINE: {e}; ABOR may not reach the server");
    }
}

/// No tproxy outside Linux: pf's divert-to needs no socket option.
#[cfg(not(target_os = "linux"))]
pub fn set_transparent<S: AsRawFd>(_sock: &S, _ipv6: bool) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Lets a listener accept connections that an nft `tproxy` rule hands it
/// (their destination is not a local address). Needs CAP_NET_ADMIN.
#[cfg(target_os = "linux")]
pub fn set_transparent<S: AsRawFd>(sock: &S, ipv6: bool) -> io::Result<()> {
    match ipv6 {
        true => set_int_opt(sock, libc::SOL_IPV6, libc::IPV6_TRANSPARENT, 1),
        false => set_int_opt(sock, libc::SOL_IP, libc::IP_TRANSPARENT, 1),
    }
}

/// SIOCATMARK: 0x8905 in asm-generic/sockios.h. MIPS Linux (the SoC of
/// many routers) spells it `_IOR('s', 7, int)`, as the BSDs do; there the
/// generic number is no ioctl at all and every urgent byte would end its
/// session (found by `readiness::tests` under qemu-mips).
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(any(target_arch = "mips", target_arch = "mips64"))
))]
const SIOCATMARK: u32 = 0x8905;
#[cfg(not(all(
    any(target_os = "linux", target_os = "android"),
    not(any(target_arch = "mips", target_arch = "mips64"))
)))]
const SIOCATMARK: u32 = 0x4004_7307;

/// Keeps TCP urgent data in the byte stream (SO_OOBINLINE), so the proxy
/// relays an ABOR's urgent byte in order instead of losing it.
pub fn set_oob_inline<S: AsRawFd>(sock: &S) -> io::Result<()> {
    set_int_opt(sock, libc::SOL_SOCKET, libc::SO_OOBINLINE, 1)
}

/// Whether the next byte to read is the peer's urgent byte. Reads stop
/// before that byte, so asking before every read finds it.
pub fn at_mark<S: AsRawFd>(sock: &S) -> io::Result<bool> {
    let mut v: libc::c_int = 0;
    // SAFETY: SIOCATMARK writes one int.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCATMARK as _, &mut v) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v != 0)
}

/// Sends `buf` as TCP urgent data: the peer's urgent mark lands on its
/// last byte.
pub fn send_urgent<S: AsRawFd>(sock: &S, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes.
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_OOB | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn int_opt<S: AsRawFd>(sock: &S, level: libc::c_int, opt: libc::c_int) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: v and len describe a writable int.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                level,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "getsockopt {level}/{opt}");
        v
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let host = |s: &str| client_host(s.parse().unwrap());
        assert_eq!(host("2001:db8:1::2"), host("2001:db8:1::3"));
        assert_eq!(
            host("2001:db8:1:0:aaaa:bbbb:cccc:dddd"),
            host("2001:db8:1::")
        );
        assert_ne!(host("2001:db8:1::2"), host("2001:db8:1:1::2"));
        assert_eq!(host("198.18.1.2"), host("::ffff:198.18.1.2"));
        assert_ne!(host("198.18.1.2"), host("198.18.1.3"));
    }

    /// The event loop sets no option on client sockets here: this is
    /// what makes that right.
    #[test]
    fn client_options_are_inherited() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = (0..100)
            .find_map(|_| match l.accept() {
                Ok(x) => Some(x),
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    None
                }
            })
            .expect("accepted");
        let tcp = libc::IPPROTO_TCP;
        assert_ne!(int_opt(&s, tcp, libc::TCP_NODELAY), 0, "TCP_NODELAY");
        assert_ne!(int_opt(&s, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        assert_eq!(int_opt(&s, tcp, libc::TCP_KEEPIDLE), KEEPALIVE_IDLE);
        assert_eq!(int_opt(&s, tcp, libc::TCP_KEEPINTVL), KEEPALIVE_INTERVAL);
        assert_eq!(int_opt(&s, tcp, libc::TCP_KEEPCNT), KEEPALIVE_PROBES);
        assert_ne!(int_opt(&s, libc::SOL_SOCKET, libc::SO_OOBINLINE), 0);
        // And the urgent byte really arrives in line.
        c.write_all(b"ab").unwrap();
        send_urgent(&c, b"!").unwrap();
        let mut got = [0u8; 3];
        let mut s = std::net::TcpStream::from(OwnedFd::from(s));
        s.set_nonblocking(false).unwrap();
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ab!");
    }
}
