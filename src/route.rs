//! How the kernel would route to an address (rtnetlink RTM_GETROUTE): the
//! route's type tells the router's own, broadcast and multicast addresses
//! from those it forwards to, and its output interface which zone the
//! destination is in. One request per transparent session, no allocation.

use crate::filter::nft::msg::{NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_REQUEST};
use crate::filter::nft::socket::NlSocket;
use std::io;
use std::net::IpAddr;

const NETLINK_ROUTE: libc::c_int = 0;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTMSG_LEN: usize = 12;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
pub const RTN_UNICAST: u8 = 1;

/// The kernel's answer for one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// rtm_type: RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, …
    pub kind: u8,
    /// Output interface index (0 if none).
    pub oif: u32,
}

pub struct Routes {
    sock: NlSocket,
    seq: u32,
}

impl Routes {
    pub fn open() -> io::Result<Routes> {
        Ok(Routes {
            sock: NlSocket::open(NETLINK_ROUTE)?,
            seq: 0,
        })
    }

    /// The route to `dst`; an error where there is none (ENETUNREACH…).
    pub fn lookup(&mut self, dst: IpAddr) -> io::Result<Route> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = [0u8; NLMSG_HDRLEN + RTMSG_LEN + 4 + 16];
        let (family, bits, alen) = match dst {
            IpAddr::V4(_) => (libc::AF_INET as u8, 32, 4),
            IpAddr::V6(_) => (libc::AF_INET6 as u8, 128, 16),
        };
        let len = NLMSG_HDRLEN + RTMSG_LEN + 4 + alen;
        req[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&RTM_GETROUTE.to_ne_bytes());
        req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        req[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        let r = NLMSG_HDRLEN;
        req[r] = family; // rtm_family
        req[r + 1] = bits; // rtm_dst_len
        let a = r + RTMSG_LEN;
        req[a..a + 2].copy_from_slice(&((4 + alen) as u16).to_ne_bytes());
        req[a + 2..a + 4].copy_from_slice(&RTA_DST.to_ne_bytes());
        match dst {
            IpAddr::V4(v) => req[a + 4..a + 8].copy_from_slice(&v.octets()),
            IpAddr::V6(v) => req[a + 4..a + 20].copy_from_slice(&v.octets()),
        }
        let seq = self.seq;
        let answer = self.sock.request(&req[..len], seq)?;
        parse(answer, seq)
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_ne_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The route in the kernel's answer to request `seq`.
fn parse(mut b: &[u8], seq: u32) -> io::Result<Route> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad route answer");
    while b.len() >= NLMSG_HDRLEN {
        let len = u32_at(b, 0) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(bad());
        }
        let msg = &b[..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        if u32_at(msg, 8) != seq {
            continue;
        }
        match u16_at(msg, 4) {
            NLMSG_ERROR if msg.len() >= NLMSG_HDRLEN + 4 => {
                let errno = -(u32_at(msg, NLMSG_HDRLEN) as i32);
                return Err(io::Error::from_raw_os_error(errno));
            }
            RTM_NEWROUTE if msg.len() >= NLMSG_HDRLEN + RTMSG_LEN => {
                let mut route = Route {
                    kind: msg[NLMSG_HDRLEN + 7],
                    oif: 0,
                };
                let mut a = &msg[NLMSG_HDRLEN + RTMSG_LEN..];
                while a.len() >= 4 {
                    let alen = usize::from(u16_at(a, 0));
                    if alen < 4 || alen > a.len() {
                        return Err(bad());
                    }
                    if u16_at(a, 2) == RTA_OIF && alen >= 8 {
                        route.oif = u32_at(a, 4);
                    }
                    a = &a[((alen + 3) & !3).min(a.len())..];
                }
                return Ok(route);
            }
            _ => return Err(bad()),
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(seq: u32, kind: u8, oif: u32) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN + RTMSG_LEN];
        m[4..6].copy_from_slice(&RTM_NEWROUTE.to_ne_bytes());
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        m[NLMSG_HDRLEN + 7] = kind;
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&RTA_OIF.to_ne_bytes());
        m.extend_from_slice(&oif.to_ne_bytes());
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn reads_type_and_interface() {
        let r = parse(&answer(7, 2, 3), 7).unwrap();
        assert_eq!(r, Route { kind: 2, oif: 3 });
        assert!(parse(&answer(7, 2, 3), 8).is_err(), "another request's");
        assert!(parse(&answer(7, 2, 3)[..20], 7).is_err(), "truncated");
    }
}
