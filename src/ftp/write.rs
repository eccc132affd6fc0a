//! Formats lines straight into an output buffer's free tail, no allocation.

use core::fmt::{self, Write};
use std::net::IpAddr;

/// A `fmt::Write` over a byte slice; fails instead of truncating.
pub struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Cursor { buf, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats into `buf`; the length written, or `None` if it did not fit.
pub fn format(buf: &mut [u8], args: fmt::Arguments<'_>) -> Option<usize> {
    let mut c = Cursor::new(buf);
    c.write_fmt(args).ok()?;
    Some(c.len())
}

/// `h1,h2,h3,h4,p1,p2` for PORT and 227.
pub struct HostPort(pub [u8; 4], pub u16);

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        let [p1, p2] = self.1.to_be_bytes();
        write!(f, "{a},{b},{c},{d},{p1},{p2}")
    }
}

/// `|af|addr|port|` for EPRT.
pub struct ExtHostPort(pub IpAddr, pub u16);

impl fmt::Display for ExtHostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let af = if self.0.is_ipv4() { 1 } else { 2 };
        write!(f, "|{af}|{}|{}|", self.0, self.1)
    }
}

/// The proxy's own PORT (or EPRT) for a data connection to `proxy:pp`.
/// PORT cannot carry IPv6, so that is always EPRT. Returns the length.
pub fn active_command(buf: &mut [u8], proxy: IpAddr, pp: u16, extended: bool) -> Option<usize> {
    match proxy {
        IpAddr::V4(p) if !extended => {
            format(buf, format_args!("PORT {}\r\n", HostPort(p.octets(), pp)))
        }
        _ => format(buf, format_args!("EPRT {}\r\n", ExtHostPort(proxy, pp))),
    }
}

/// The 227 (or 229 when `extended`) the client gets: `addr:pp` is where it
/// must connect. 227 cannot carry IPv6, so that is always 229.
pub fn passive_reply(buf: &mut [u8], addr: IpAddr, pp: u16, extended: bool) -> Option<usize> {
    match addr {
        IpAddr::V4(a) if !extended => format(
            buf,
            format_args!(
                "227 Entering Passive Mode ({})\r\n",
                HostPort(a.octets(), pp)
            ),
        ),
        _ => format(
            buf,
            format_args!("229 Entering Extended Passive Mode (|||{pp}|)\r\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_refuses_overflow() {
        let mut b = [0u8; 64];
        let n = format(
            &mut b,
            format_args!("PORT {}\r\n", HostPort([198, 18, 0, 1], 50000)),
        )
        .unwrap();
        assert_eq!(&b[..n], b"PORT 198,18,0,1,195,80\r\n");
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let n = format(&mut b, format_args!("EPRT {}\r\n", ExtHostPort(ip, 6000))).unwrap();
        assert_eq!(&b[..n], b"EPRT |2|2001:db8::1|6000|\r\n");
        let n = active_command(&mut b, ip, 6000, false).unwrap();
        assert_eq!(&b[..n], b"EPRT |2|2001:db8::1|6000|\r\n");
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        let n = passive_reply(&mut b, v4, 50000, false).unwrap();
        assert_eq!(
            &b[..n],
            b"227 Entering Passive Mode (198,18,0,1,195,80)\r\n"
        );
        let n = passive_reply(&mut b, v4, 50000, true).unwrap();
        assert_eq!(
            &b[..n],
            b"229 Entering Extended Passive Mode (|||50000|)\r\n"
        );
        let mut small = [0u8; 4];
        assert_eq!(format(&mut small, format_args!("hello")), None);
    }
}
