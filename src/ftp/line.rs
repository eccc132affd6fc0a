//! Fixed-size buffers: an input buffer framed into lines, an output buffer
//! drained to a socket.

use std::io::{self, Read, Write};

/// Bytes read from a peer, handed out one complete line at a time.
pub struct LineBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

/// What the framer found at the head of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line of this many bytes, LF included.
    Line(usize),
    /// No LF yet, and room left to wait for one.
    Partial,
    /// The buffer is full and holds no LF: the peer sent a line too long.
    TooLong,
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        LineBuf {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> LineBuf<N> {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Reads once from `r` into the free tail. `Ok(0)` means end of stream.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<usize> {
        r.read(&mut self.buf[self.len..])
    }

    /// Appends bytes (for tests and fuzzing); returns how many fitted.
    pub fn extend(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// Records `n` bytes written into the tail by `read_from`.
    pub fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(N);
    }

    pub fn frame(&self) -> Frame {
        match self.buf[..self.len].iter().position(|&b| b == b'\n') {
            Some(i) => Frame::Line(i + 1),
            None if self.len == N => Frame::TooLong,
            None => Frame::Partial,
        }
    }

    /// The first `n` bytes (a line found by `frame`).
    pub fn head(&self, n: usize) -> &[u8] {
        &self.buf[..n.min(self.len)]
    }

    /// Everything buffered, complete line or not.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Drops the first `n` bytes.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// Bytes waiting to be written to a peer.
pub struct OutBuf<const N: usize> {
    buf: [u8; N],
    start: usize,
    end: usize,
}

impl<const N: usize> Default for OutBuf<N> {
    fn default() -> Self {
        OutBuf {
            buf: [0; N],
            start: 0,
            end: 0,
        }
    }
}

impl<const N: usize> OutBuf<N> {
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn free(&self) -> usize {
        N - (self.end - self.start)
    }

    /// Free space at the tail to format a line into; call `commit` after.
    pub fn tail(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(N);
    }

    /// Queues `data` whole, or nothing if it does not fit.
    pub fn push(&mut self, data: &[u8]) -> bool {
        if data.len() > self.free() {
            return false;
        }
        let n = data.len();
        self.tail()[..n].copy_from_slice(data);
        self.commit(n);
        true
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Writes as much as the peer takes. `Ok(true)` once empty.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<bool> {
        while !self.is_empty() {
            match w.write(&self.buf[self.start..self.end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.start = 0;
        self.end = 0;
        Ok(true)
    }
}

/// The line without its CR LF (or bare LF).
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\n' | b'\r'] = l {
        l = rest;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lines_split_at_every_byte() {
        let input = b"USER ftp\r\nPASS x\nPASV\r\n";
        for cut in 0..=input.len() {
            let mut lb = LineBuf::<64>::default();
            let mut lines: Vec<Vec<u8>> = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                assert_eq!(lb.extend(part), part.len());
                while let Frame::Line(n) = lb.frame() {
                    lines.push(trim_eol(lb.head(n)).to_vec());
                    lb.consume(n);
                }
            }
            assert_eq!(lines, [&b"USER ftp"[..], b"PASS x", b"PASV"], "cut {cut}");
            assert!(lb.is_empty());
        }
    }

    #[test]
    fn too_long_without_newline() {
        let mut lb = LineBuf::<8>::default();
        assert_eq!(lb.extend(b"ABCDEFGHIJ"), 8);
        assert_eq!(lb.frame(), Frame::TooLong);
        let mut lb = LineBuf::<8>::default();
        lb.extend(b"ABCDEFG\n");
        assert_eq!(lb.frame(), Frame::Line(8));
    }

    #[test]
    fn outbuf_keeps_order_and_refuses_overflow() {
        let mut ob = OutBuf::<8>::default();
        assert!(ob.push(b"abc"));
        assert!(ob.push(b"defgh"));
        assert!(!ob.push(b"i"));
        let mut sink = Vec::new();
        assert!(ob.write_to(&mut sink).unwrap());
        assert_eq!(sink, b"abcdefgh");
        assert_eq!(ob.free(), 8);
    }
}
