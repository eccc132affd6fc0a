//! Where a redirected client wanted to go, and whether it may go there.

use std::net::{IpAddr, SocketAddr};
#[cfg(target_os = "linux")]
use std::net::{Ipv4Addr, Ipv6Addr};
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

/// Why a destination is refused in transparent mode: the proxy connects
/// from the router itself, so without this a client could reach the
/// router's own services, or (through its OUTPUT path, past the forward
/// chain's zone rules) hosts its zone may not reach.
pub fn forbidden(dst: IpAddr) -> Option<&'static str> {
    let dst = match dst {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(dst, IpAddr::V4),
        v4 => v4,
    };
    match dst {
        IpAddr::V4(a) if a.is_unspecified() => Some("unspecified address"),
        IpAddr::V4(a) if a.is_loopback() => Some("loopback address"),
        IpAddr::V4(a) if a.is_multicast() => Some("multicast address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("broadcast address"),
        IpAddr::V4(a) if a.is_link_local() => Some("link-local address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("unspecified address"),
        IpAddr::V6(a) if a.is_loopback() => Some("loopback address"),
        IpAddr::V6(a) if a.is_multicast() => Some("multicast address"),
        IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => Some("link-local address"),
        _ => None,
    }
}

/// The transparent-mode destination check: `forbidden`, then the kernel's
/// route: only unicast routes (not the router's own addresses, nor a
/// subnet's broadcast), and with `-o` only out of those interfaces.
pub struct Destinations {
    #[cfg(target_os = "linux")]
    routes: crate::route::Routes,
    #[cfg(target_os = "linux")]
    egress: crate::config::Ifaces,
    /// Where no route lookup says "local": the host's own addresses.
    #[cfg(not(target_os = "linux"))]
    own: crate::self_addrs::SelfAddrs,
}

impl Destinations {
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub fn open(cfg: &crate::config::Config) -> std::io::Result<Destinations> {
        Ok(Destinations {
            #[cfg(target_os = "linux")]
            routes: crate::route::Routes::open()?,
            #[cfg(target_os = "linux")]
            egress: cfg.egress.clone(),
            #[cfg(not(target_os = "linux"))]
            own: crate::self_addrs::SelfAddrs::read()?,
        })
    }

    pub fn check(&mut self, dst: IpAddr) -> Result<(), &'static str> {
        if let Some(why) = forbidden(dst) {
            return Err(why);
        }
        self.check_route(dst)
    }

    #[cfg(target_os = "linux")]
    fn check_route(&mut self, dst: IpAddr) -> Result<(), &'static str> {
        use crate::route::RTN_UNICAST;
        let route = self.routes.lookup(dst).map_err(|_| "no route")?;
        if route.kind != RTN_UNICAST {
            return Err(match route.kind {
                2 => "an address of the router itself",
                3 => "broadcast address",
                5 => "multicast address",
                _ => "not routed (unreachable, blackhole or prohibit)",
            });
        }
        if self.egress.is_empty() {
            return Ok(());
        }
        let mut name = [0u8; libc::IF_NAMESIZE];
        // SAFETY: name has IF_NAMESIZE bytes, as if_indextoname needs.
        let p = unsafe { libc::if_indextoname(route.oif, name.as_mut_ptr().cast()) };
        let len = name.iter().position(|&b| b == 0).unwrap_or(0);
        let out = &name[..len];
        match !p.is_null() && self.egress.iter().any(|o| o.as_bytes() == out) {
            true => Ok(()),
            false => Err("routed out of an interface not named by -o"),
        }
    }

    /// pf.conf decides what is intercepted; the firewall's own addresses
    /// are refused here (the generated rdr rules also say `to ! (self)`).
    #[cfg(not(target_os = "linux"))]
    fn check_route(&mut self, dst: IpAddr) -> Result<(), &'static str> {
        match self.own.contains(dst, std::time::Instant::now()) {
            true => Err("an address of the router itself"),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_destinations_are_forbidden() {
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "127.9.9.9",
            "224.0.0.1",
            "255.255.255.255",
            "169.254.1.1",
            "::",
            "::1",
            "ff02::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(forbidden(a.parse().unwrap()).is_some(), "{a}");
        }
        for a in ["198.18.1.2", "198.19.2.2", "2001:db8::2"] {
            assert_eq!(forbidden(a.parse().unwrap()), None, "{a}");
        }
    }
}
