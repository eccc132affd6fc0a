//! The handover's byte format: fixed-width little-endian integers, one
//! byte per enum variant, lengths checked against the buffer they fill.
//! Pure code over caller-owned buffers: nothing is allocated, and a
//! reader hands back `None` for anything short, oversized or unknown, so
//! a damaged image is refused rather than trusted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Appends to a fixed buffer; once something did not fit, `overflowed`
/// says so and nothing more is written.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflowed: bool,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer {
            buf,
            len: 0,
            overflowed: false,
        }
    }

    pub fn bytes(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(dst) if !self.overflowed => {
                dst.copy_from_slice(b);
                self.len += b.len();
            }
            _ => self.overflowed = true,
        }
    }

    pub fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.bytes(&v.to_le_bytes());
    }

    /// A length-prefixed run of bytes (at most 65535).
    pub fn blob(&mut self, b: &[u8]) {
        match u16::try_from(b.len()) {
            Ok(n) => {
                self.u16(n);
                self.bytes(b);
            }
            Err(_) => self.overflowed = true,
        }
    }

    /// `None` as 0xffff_ffff: offsets and indices never reach it.
    pub fn opt_u32(&mut self, v: Option<usize>) {
        self.u32(v.map_or(u32::MAX, |v| v as u32));
    }

    pub fn ip(&mut self, a: IpAddr) {
        match a {
            IpAddr::V4(v4) => {
                self.u8(4);
                self.bytes(&v4.octets());
            }
            IpAddr::V6(v6) => {
                self.u8(6);
                self.bytes(&v6.octets());
            }
        }
    }

    pub fn addr(&mut self, a: SocketAddr) {
        self.ip(a.ip());
        self.u16(a.port());
    }

    pub fn written(&self) -> Option<&[u8]> {
        (!self.overflowed).then(|| &self.buf[..self.len])
    }
}

/// Reads back what a `Writer` wrote.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.array()?))
    }

    pub fn blob(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.bytes(n.into())
    }

    /// An optional offset that must be below `limit`.
    pub fn opt_u32(&mut self, limit: usize) -> Option<Option<usize>> {
        match self.u32()? {
            u32::MAX => Some(None),
            v if (v as usize) < limit => Some(Some(v as usize)),
            _ => None,
        }
    }

    pub fn ip(&mut self) -> Option<IpAddr> {
        match self.u8()? {
            4 => Some(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
            6 => Some(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            _ => None,
        }
    }

    pub fn addr(&mut self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.ip()?, self.u16()?))
    }

    pub fn is_done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_as_written() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        let a: SocketAddr = "[2001:db8::1]:21".parse().unwrap();
        let b: SocketAddr = "198.18.0.1:49152".parse().unwrap();
        w.u8(7);
        w.bool(true);
        w.u16(0xbeef);
        w.u32(70_000);
        w.u64(u64::MAX - 1);
        w.i32(-1);
        w.blob(b"abc");
        w.opt_u32(None);
        w.opt_u32(Some(9));
        w.addr(a);
        w.addr(b);
        let n = w.written().unwrap().len();
        let mut r = Reader::new(&buf[..n]);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.bool(), Some(true));
        assert_eq!(r.u16(), Some(0xbeef));
        assert_eq!(r.u32(), Some(70_000));
        assert_eq!(r.u64(), Some(u64::MAX - 1));
        assert_eq!(r.i32(), Some(-1));
        assert_eq!(r.blob(), Some(&b"abc"[..]));
        assert_eq!(r.opt_u32(10), Some(None));
        assert_eq!(r.opt_u32(10), Some(Some(9)));
        assert_eq!(r.addr(), Some(a));
        assert_eq!(r.addr(), Some(b));
        assert!(r.is_done());
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn overflow_and_damage_are_refused() {
        let mut small = [0u8; 3];
        let mut w = Writer::new(&mut small);
        w.u32(1);
        w.u8(1);
        assert!(w.written().is_none());
        // An offset beyond its limit, a bool that is neither, an unknown
        // address family, a blob longer than the input.
        assert_eq!(Reader::new(&9u32.to_le_bytes()).opt_u32(9), None);
        assert_eq!(Reader::new(&[2]).bool(), None);
        assert_eq!(Reader::new(&[5, 0, 0, 0, 0]).ip(), None);
        assert_eq!(Reader::new(&[9, 0, 1]).blob(), None);
    }
}
