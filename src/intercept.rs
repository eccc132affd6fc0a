//! Where a redirected client wanted to go.

use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

#[cfg(target_os = "linux")]
const SO_ORIGINAL_DST: libc::c_int = 80; // also IP6T_SO_ORIGINAL_DST

/// The original destination of an accepted connection. pf's `divert-to`
/// keeps it as the socket's own address, as Linux tproxy does.
#[cfg(not(target_os = "linux"))]
pub fn original_dst<S: AsRawFd>(_sock: &S, local: SocketAddr) -> SocketAddr {
    local
}

/// The original destination of an accepted connection: the conntrack
/// entry's pre-NAT destination after an nft `redirect`/`dnat`, else the
/// local address (tproxy keeps the original destination as the socket's own
/// address).
#[cfg(target_os = "linux")]
pub fn original_dst<S: AsRawFd>(sock: &S, local: SocketAddr) -> SocketAddr {
    let fd = sock.as_raw_fd();
    match local {
        SocketAddr::V4(_) => {
            // SAFETY: zeroed sockaddr_in is valid; len matches its size.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // SAFETY: sa/len describe writable memory of that size.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_IP,
                    SO_ORIGINAL_DST,
                    (&mut sa as *mut libc::sockaddr_in).cast(),
                    &mut len,
                )
            };
            if r == 0 && i32::from(sa.sin_family) == libc::AF_INET {
                let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
                return SocketAddr::new(IpAddr::V4(ip), u16::from_be(sa.sin_port));
            }
        }
        SocketAddr::V6(_) => {
            // SAFETY: as above, for sockaddr_in6.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            // SAFETY: sa/len describe writable memory of that size.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_IPV6,
                    SO_ORIGINAL_DST,
                    (&mut sa as *mut libc::sockaddr_in6).cast(),
                    &mut len,
                )
            };
            if r == 0 && i32::from(sa.sin6_family) == libc::AF_INET6 {
                let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
                return SocketAddr::new(IpAddr::V6(ip), u16::from_be(sa.sin6_port));
            }
        }
    }
    local
}
