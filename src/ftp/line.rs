//! Fixed-size buffers: an input buffer framed into lines, an output buffer
//! drained to a socket.

use crate::handover::wire::{Reader, Writer};
use std::io::{self, Read, Write};

/// Bytes read from a peer, handed out one complete line at a time. A line
/// longer than the buffer is handed out in pieces, flagged as such, so the
/// caller can relay or drop it without ever holding it whole.
pub struct LineBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// Inside a line longer than the buffer.
    long: bool,
    /// Index of the byte the peer sent as TCP urgent data (SO_OOBINLINE).
    urgent: Option<usize>,
}

/// What the framer found at the head of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line of this many bytes, LF included.
    Line(usize),
    /// No LF yet, and room left to wait for one.
    Partial,
    /// The buffer is full and holds no LF: the first bytes of a line too long.
    LongStart(usize),
    /// More bytes of that line, still no LF.
    LongMore(usize),
    /// The rest of that line, LF included.
    LongEnd(usize),
}

impl Frame {
    /// The bytes the frame covers (none while partial).
    pub fn span(self) -> usize {
        match self {
            Frame::Line(n) | Frame::LongStart(n) | Frame::LongMore(n) | Frame::LongEnd(n) => n,
            Frame::Partial => 0,
        }
    }
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        LineBuf {
            buf: [0; N],
            len: 0,
            long: false,
            urgent: None,
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

    /// Free bytes at the tail: what the next read may ask for.
    pub fn room(&self) -> usize {
        N - self.len
    }

    /// Reads once from `r` into the free tail. `Ok(0)` means end of stream.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<usize> {
        r.read(&mut self.buf[self.len..])
    }

    /// What is buffered, for a handover.
    pub fn save(&self, w: &mut Writer) {
        w.blob(&self.buf[..self.len]);
        w.bool(self.long);
        w.opt_u32(self.urgent);
    }

    pub fn load(r: &mut Reader) -> Option<Self> {
        let mut b = LineBuf::default();
        let data = r.blob()?;
        if data.len() > N {
            return None;
        }
        b.extend(data);
        b.long = r.bool()?;
        b.urgent = r.opt_u32(N)?;
        Some(b)
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

    /// The next byte to arrive is the peer's urgent byte.
    pub fn mark_urgent(&mut self) {
        if self.len < N {
            self.urgent = Some(self.len);
        }
    }

    /// Offset of the urgent byte within the first `n` bytes, if it is there.
    pub fn urgent_in(&self, n: usize) -> Option<usize> {
        self.urgent.filter(|&u| u < n.min(self.len))
    }

    pub fn frame(&self) -> Frame {
        let lf = self.buf[..self.len].iter().position(|&b| b == b'\n');
        match (self.long, lf) {
            (false, Some(i)) => Frame::Line(i + 1),
            (false, None) if self.len == N => Frame::LongStart(N),
            (true, Some(i)) => Frame::LongEnd(i + 1),
            (true, None) if self.len > 0 => Frame::LongMore(self.len),
            _ => Frame::Partial,
        }
    }

    /// True when a complete line (or piece of a long one) is waiting.
    pub fn has_frame(&self) -> bool {
        self.frame() != Frame::Partial
    }

    /// The first `n` bytes (a line found by `frame`).
    pub fn head(&self, n: usize) -> &[u8] {
        &self.buf[..n.min(self.len)]
    }

    /// Everything buffered, complete line or not.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Drops the bytes of a frame returned by `frame`.
    pub fn advance(&mut self, f: Frame) {
        match f {
            Frame::Line(n) | Frame::LongEnd(n) => {
                self.long = false;
                self.consume(n);
            }
            Frame::LongStart(n) | Frame::LongMore(n) => {
                self.long = true;
                self.consume(n);
            }
            Frame::Partial => {}
        }
    }

    /// Drops the first `n` bytes.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
        self.urgent = self.urgent.and_then(|u| u.checked_sub(n));
    }
}

/// Bytes waiting to be written to a peer.
pub struct OutBuf<const N: usize> {
    buf: [u8; N],
    start: usize,
    end: usize,
    /// Index of a byte to send as TCP urgent data: alone, in one send with
    /// MSG_OOB, so the peer's urgent mark lands exactly on it.
    urgent_at: Option<usize>,
}

impl<const N: usize> Default for OutBuf<N> {
    fn default() -> Self {
        OutBuf {
            buf: [0; N],
            start: 0,
            end: 0,
            urgent_at: None,
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

    /// What waits to be written, for a handover.
    pub fn save(&self, w: &mut Writer) {
        w.blob(self.as_slice());
        w.opt_u32(self.urgent_at.map(|u| u.saturating_sub(self.start)));
    }

    pub fn load(r: &mut Reader) -> Option<Self> {
        let mut b = OutBuf::default();
        let data = r.blob()?;
        let urgent = r.opt_u32(data.len())?;
        if !b.push(data) {
            return None;
        }
        b.urgent_at = urgent;
        Some(b)
    }

    /// Free space at the tail to format a line into; call `commit` after.
    pub fn tail(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.urgent_at = self.urgent_at.map(|u| u - self.start);
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

    /// Queues `data` whole with its byte at `urgent` as urgent data.
    pub fn push_urgent(&mut self, data: &[u8], urgent: usize) -> bool {
        if data.is_empty() || !self.push(data) {
            return false;
        }
        self.urgent_at = Some(self.end - data.len() + urgent.min(data.len() - 1));
        true
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Writes as much as the peer takes. `Ok(true)` once empty.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<bool> {
        self.send_with(|b, _| w.write(b))
    }

    /// Like `write_to`, through `send(bytes, urgent)`: the urgent byte is
    /// offered alone with `urgent` set, everything else without.
    pub fn send_with(
        &mut self,
        mut send: impl FnMut(&[u8], bool) -> io::Result<usize>,
    ) -> io::Result<bool> {
        while !self.is_empty() {
            let (to, urgent) = match self.urgent_at {
                Some(u) if u > self.start => (u, false),
                Some(u) => (u + 1, true),
                None => (self.end, false),
            };
            match send(&self.buf[self.start..to], urgent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.urgent_at.is_some_and(|u| self.start > u) {
                self.urgent_at = None;
            }
        }
        self.start = 0;
        self.end = 0;
        Ok(true)
    }
}

/// The line without its CR LF (or bare LF).
/// A command without its line end: exactly one final LF and the CR
/// before it, so that any other CR stays in and is judged.
pub fn strip_crlf(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

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

    /// Feeds `input` in chunks of `chunk` bytes through a framer of 8 and
    /// returns what it handed out, one entry per frame.
    fn frames(input: &[u8], chunk: usize) -> Vec<(Frame, Vec<u8>)> {
        let mut lb = LineBuf::<8>::default();
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            let mut part = part;
            while !part.is_empty() {
                let n = lb.extend(part);
                part = &part[n..];
                loop {
                    let f = lb.frame();
                    let n = match f {
                        Frame::Partial => break,
                        Frame::Line(n) | Frame::LongStart(n) => n,
                        Frame::LongMore(n) | Frame::LongEnd(n) => n,
                    };
                    out.push((f, lb.head(n).to_vec()));
                    lb.advance(f);
                }
            }
        }
        out
    }

    #[test]
    fn long_lines_come_out_in_pieces_and_framing_resumes() {
        for chunk in 1..=20 {
            let got = frames(b"ABCDEFGHIJK\nNOOP\n0123456789abcdefXY\r\nQUIT\r\n", chunk);
            let joined: Vec<u8> = got.iter().flat_map(|(_, b)| b.clone()).collect();
            assert_eq!(
                joined, b"ABCDEFGHIJK\nNOOP\n0123456789abcdefXY\r\nQUIT\r\n",
                "chunk {chunk}"
            );
            let lines: Vec<&[u8]> = got
                .iter()
                .filter(|(f, _)| matches!(f, Frame::Line(_)))
                .map(|(_, b)| &b[..])
                .collect();
            assert_eq!(lines, [&b"NOOP\n"[..], b"QUIT\r\n"], "chunk {chunk}");
            let starts = got
                .iter()
                .filter(|(f, _)| matches!(f, Frame::LongStart(8)))
                .count();
            let ends = got
                .iter()
                .filter(|(f, _)| matches!(f, Frame::LongEnd(_)))
                .count();
            assert_eq!((starts, ends), (2, 2), "chunk {chunk}");
        }
    }

    #[test]
    fn pipelined_commands_in_one_read() {
        let got = frames(b"NOOP\nPWD\r\nSYST\n", 64);
        assert!(got.iter().all(|(f, _)| matches!(f, Frame::Line(_))));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn urgent_byte_is_tracked_through_consume() {
        let mut lb = LineBuf::<16>::default();
        lb.extend(b"NOOP\r\n");
        lb.mark_urgent();
        lb.extend(b"\xff\xf2ABOR\r\n");
        assert_eq!(lb.urgent_in(6), None);
        lb.advance(Frame::Line(6));
        assert_eq!(lb.frame(), Frame::Line(8));
        assert_eq!(lb.urgent_in(8), Some(0));
        lb.advance(Frame::Line(8));
        assert_eq!(lb.urgent_in(16), None);
    }

    #[test]
    fn urgent_bytes_are_sent_flagged_up_to_the_mark() {
        let mut ob = OutBuf::<32>::default();
        assert!(ob.push(b"NOOP\r\n"));
        assert!(ob.push_urgent(b"\xff\xf4\xff\xf2ABOR\r\n", 3));
        let mut calls: Vec<(Vec<u8>, bool)> = Vec::new();
        // A peer that takes at most 5 bytes a call.
        let done = ob
            .send_with(|b, urg| {
                let n = b.len().min(5);
                calls.push((b[..n].to_vec(), urg));
                Ok(n)
            })
            .unwrap();
        assert!(done);
        let urgent: Vec<u8> = calls
            .iter()
            .filter(|c| c.1)
            .flat_map(|c| c.0.clone())
            .collect();
        let all: Vec<u8> = calls.iter().flat_map(|c| c.0.clone()).collect();
        assert_eq!(all, b"NOOP\r\n\xff\xf4\xff\xf2ABOR\r\n");
        // Exactly one flagged send: the urgent byte (DM, at offset 3).
        assert_eq!(urgent, b"\xf2");
        assert_eq!(calls.iter().filter(|c| c.1).count(), 1);
        assert!(!calls.last().unwrap().1);
    }

    #[test]
    fn buffers_cross_a_handover_as_they_were() {
        use crate::handover::wire::{Reader, Writer};
        let mut input = LineBuf::<16>::default();
        input.extend(b"NOOP\r\nAB");
        input.mark_urgent();
        input.extend(b"\xf2");
        let mut out = OutBuf::<32>::default();
        assert!(out.push(b"200 ok\r\n"));
        assert!(out.push_urgent(b"\xff\xf2ABOR\r\n", 1));
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        input.save(&mut w);
        out.save(&mut w);
        let n = w.written().expect("fits").len();
        let mut r = Reader::new(&buf[..n]);
        let input2 = LineBuf::<16>::load(&mut r).expect("line buffer");
        let out2 = OutBuf::<32>::load(&mut r).expect("output buffer");
        assert!(r.is_done());
        assert_eq!(input2.pending(), input.pending());
        assert_eq!(input2.urgent_in(16), input.urgent_in(16));
        assert_eq!(out2.as_slice(), out.as_slice());
        assert_eq!(out2.urgent_at, out.urgent_at);
        // More than the buffer holds, or an urgent mark past the data: refused.
        let mut w = Writer::new(&mut buf);
        w.blob(&[b'x'; 17]);
        w.bool(false);
        w.opt_u32(None);
        let n = w.written().expect("fits").len();
        assert!(LineBuf::<16>::load(&mut Reader::new(&buf[..n])).is_none());
        let mut w = Writer::new(&mut buf);
        w.blob(b"abc");
        w.opt_u32(Some(3));
        let n = w.written().expect("fits").len();
        assert!(OutBuf::<32>::load(&mut Reader::new(&buf[..n])).is_none());
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
