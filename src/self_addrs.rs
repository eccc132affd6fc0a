//! The router's own addresses, for the transparent-mode check where the
//! kernel's route lookup is not asked (the BSDs): a client's connection to
//! the firewall itself must not become a connection from the firewall to
//! itself, past pf's rules for the client's interface.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most addresses kept; more are not looked at (and said in the log).
const MAX_ADDRS: usize = 256;
/// Addresses come and go (DHCP, PPPoE, SLAAC): read again this often,
/// when a check needs them.
const FRESH_FOR: Duration = Duration::from_secs(10);

pub struct SelfAddrs {
    addrs: heapless::Vec<IpAddr, MAX_ADDRS>,
    read: Instant,
}

impl SelfAddrs {
    pub fn read() -> io::Result<SelfAddrs> {
        let mut s = SelfAddrs {
            addrs: heapless::Vec::new(),
            read: Instant::now(),
        };
        s.reload()?;
        Ok(s)
    }

    /// Whether `ip` is one of this host's addresses, reading them again
    /// first when they are older than `FRESH_FOR`. A failed read keeps
    /// the addresses read before.
    pub fn contains(&mut self, ip: IpAddr, now: Instant) -> bool {
        if now.saturating_duration_since(self.read) >= FRESH_FOR {
            if let Err(e) = self.reload() {
                log::warn!("reading the host's addresses: {e}");
            }
            self.read = now;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.addrs.contains(&ip)
    }

    fn reload(&mut self) -> io::Result<()> {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `list`, freed below.
        if unsafe { libc::getifaddrs(&mut list) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.addrs.clear();
        let mut full = false;
        let mut p = list;
        while !p.is_null() {
            // SAFETY: p is an entry of the list getifaddrs returned.
            let ifa = unsafe { &*p };
            p = ifa.ifa_next;
            if ifa.ifa_addr.is_null() {
                continue;
            }
            // SAFETY: ifa_addr points at a sockaddr of its family.
            let ip = match i32::from(unsafe { (*ifa.ifa_addr).sa_family }) {
                libc::AF_INET => {
                    // SAFETY: an AF_INET address is a sockaddr_in.
                    let sa = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                    IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes())
                }
                libc::AF_INET6 => {
                    // SAFETY: an AF_INET6 address is a sockaddr_in6.
                    let sa = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                    IpAddr::from(sa.sin6_addr.s6_addr)
                }
                _ => continue,
            };
            if !self.addrs.contains(&ip) && self.addrs.push(ip).is_err() {
                full = true;
            }
        }
        // SAFETY: the list getifaddrs returned, freed once.
        unsafe { libc::freeifaddrs(list) };
        if full {
            log::warn!(
                "more than {MAX_ADDRS} host addresses: only the first are refused as destinations"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // musl's getifaddrs asks over rtnetlink, which qemu-user (the cross
    // builds' unit tests) does not answer: it never returns there.
    #[test]
    #[cfg_attr(target_env = "musl", ignore = "qemu-user answers no rtnetlink dump")]
    fn the_hosts_own_addresses_are_known() {
        let mut s = SelfAddrs::read().unwrap();
        let now = Instant::now();
        assert!(s.contains("127.0.0.1".parse().unwrap(), now));
        assert!(s.contains("::ffff:127.0.0.1".parse().unwrap(), now));
        assert!(!s.contains("198.18.255.254".parse().unwrap(), now));
        // Read again once stale; still right.
        assert!(s.contains("127.0.0.1".parse().unwrap(), now + FRESH_FOR));
    }
}
