//! Addresses the router gains and loses (rtnetlink RTM_NEWADDR and
//! RTM_DELADDR): the former master of an HA pair loses its VIPs when
//! keepalived hands them to the peer, and a session that runs on one of
//! them cannot go on there (its packets now reach the peer): it ends at
//! once, not after `-t`. The new master gains them, and takes over the
//! sessions its peer copied to it (`crate::ha`).

use crate::filter::nft::socket::{bound, recv_now, SOL_NETLINK};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const NETLINK_ROUTE: libc::c_int = 0;
const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;
const RTNLGRP_IPV4_IFADDR: libc::c_int = 5;
const RTNLGRP_IPV6_IFADDR: libc::c_int = 9;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLMSG_HDRLEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Messages read in one turn; more wait for the next.
const PER_TURN: usize = 8;

pub struct AddrWatch {
    fd: OwnedFd,
    rx: [u8; 4096],
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// One address change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added(IpAddr),
    Removed(IpAddr),
}

/// The address changes in one datagram of netlink messages.
pub fn changes(mut b: &[u8], mut each: impl FnMut(Change)) {
    while let Some(len) = u32_at(b, 0).map(|l| l as usize) {
        if len < NLMSG_HDRLEN || len > b.len() {
            return;
        }
        let change = match u16_at(b, 4) {
            Some(RTM_NEWADDR) => Some(Change::Added as fn(IpAddr) -> Change),
            Some(RTM_DELADDR) => Some(Change::Removed as fn(IpAddr) -> Change),
            _ => None,
        };
        if let (Some(change), Some(a)) = (change, address(&b[NLMSG_HDRLEN..len])) {
            each(change(a));
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
}

/// The address of one RTM_NEWADDR/RTM_DELADDR body: IFA_LOCAL (IPv4: the
/// address itself; IFA_ADDRESS may be a point-to-point peer), else
/// IFA_ADDRESS.
fn address(body: &[u8]) -> Option<IpAddr> {
    let family = *body.first()?;
    let mut at = body.get(IFADDRMSG_LEN..)?;
    let (mut local, mut address) = (None, None);
    while let (Some(len), Some(kind)) = (u16_at(at, 0), u16_at(at, 2)) {
        let len = usize::from(len);
        let value = at.get(4..len)?;
        let ip = match (i32::from(family), value.len()) {
            (libc::AF_INET, 4) => {
                Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?)))
            }
            (libc::AF_INET6, 16) => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(value).ok()?,
            ))),
            _ => None,
        };
        match kind {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => address = ip,
            _ => {}
        }
        at = at.get((len + 3) & !3..).unwrap_or(&[]);
    }
    local.or(address)
}

impl AddrWatch {
    /// Subscribes to the address changes of this network namespace (no
    /// privilege needed: a successor in the chroot opens it again).
    pub fn open() -> io::Result<AddrWatch> {
        let (fd, _) = bound(NETLINK_ROUTE)?;
        for g in [RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR] {
            crate::net::set_int_opt(&fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g)?;
        }
        Ok(AddrWatch { fd, rx: [0; 4096] })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads what is waiting (a bounded number of messages); `each` gets
    /// every change. True when more may wait.
    pub fn read(&mut self, mut each: impl FnMut(Change)) -> bool {
        for _ in 0..PER_TURN {
            match recv_now(&self.fd, &mut self.rx) {
                Ok(0) => return false,
                Ok(n) => changes(&self.rx[..n], &mut each),
                // The kernel dropped messages: read on (the sessions of
                // an address lost with them end by their own errors or
                // `-t`).
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    log::warn!("address changes were lost (ENOBUFS)");
                }
                Err(_) => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, family: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![family, 24, 0, 0, 2, 0, 0, 0];
        for (t, v) in attrs {
            body.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&t.to_ne_bytes());
            body.extend_from_slice(v);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = ((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn finds_the_added_and_removed_addresses() {
        let v6: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let mut all = msg(
            RTM_DELADDR,
            libc::AF_INET as u8,
            &[
                (IFA_ADDRESS, &[198, 18, 9, 9]),
                (IFA_LOCAL, &[198, 18, 1, 100]),
            ],
        );
        all.extend(msg(
            RTM_NEWADDR,
            libc::AF_INET as u8,
            &[(IFA_LOCAL, &[198, 18, 1, 7])],
        ));
        all.extend(msg(
            RTM_DELADDR,
            libc::AF_INET6 as u8,
            &[(IFA_ADDRESS, &v6.octets())],
        ));
        // Neither: a link message.
        all.extend(msg(16, libc::AF_INET as u8, &[(IFA_LOCAL, &[1, 1, 1, 1])]));
        let mut got = Vec::new();
        changes(&all, |c| got.push(c));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            got,
            [
                Change::Removed(ip("198.18.1.100")),
                Change::Added(ip("198.18.1.7")),
                Change::Removed(IpAddr::V6(v6))
            ]
        );
        // Damaged: a length past the end, an attribute longer than its
        // message; nothing, and no panic.
        let mut bad = msg(
            RTM_DELADDR,
            libc::AF_INET as u8,
            &[(IFA_LOCAL, &[1, 2, 3, 4])],
        );
        bad[0] = 200;
        changes(&bad, |c| panic!("{c:?}"));
        let mut bad = msg(
            RTM_DELADDR,
            libc::AF_INET as u8,
            &[(IFA_LOCAL, &[1, 2, 3, 4])],
        );
        let n = bad.len();
        bad[NLMSG_HDRLEN + IFADDRMSG_LEN] = 40;
        bad.truncate(n);
        changes(&bad, |c| panic!("{c:?}"));
    }
}
