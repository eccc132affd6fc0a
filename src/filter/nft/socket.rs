//! NETLINK_NETFILTER socket: sends a batch, collects one ACK per message.

use super::msg::{NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub const NETLINK_NETFILTER: libc::c_int = 12;
const NETLINK_CAP_ACK: libc::c_int = 10;
pub const SOL_NETLINK: libc::c_int = 270;
/// A kernel answer slower than this means something is badly wrong.
const REPLY_TIMEOUT_MS: libc::c_int = 5000;

pub struct NlSocket {
    fd: OwnedFd,
    portid: u32,
    rx: [u8; 4096],
}

pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A netlink socket of `protocol`, bound to a port id the kernel picks:
/// the descriptor and that port id. What every netlink user here starts
/// from (the nftables and route sockets, the conntrack events).
pub fn bound(protocol: libc::c_int) -> io::Result<(OwnedFd, u32)> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    })?;
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_nl is valid; the kernel picks the port id.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    let salen = std::mem::size_of::<libc::sockaddr_nl>() as u32;
    // SAFETY: sa is a valid sockaddr_nl of salen bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            salen,
        )
    })?;
    let portid = portid_of(&fd)?;
    Ok((fd, portid))
}

/// One datagram into `buf` without waiting (WouldBlock when there is
/// none); an interrupted call is made again. Every netlink reader here
/// reads this way: the nftables answers, the conntrack events, the
/// address changes.
pub fn recv_now(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The port id a bound netlink socket has.
fn portid_of(fd: &OwnedFd) -> io::Result<u32> {
    // SAFETY: zeroed sockaddr_nl is valid.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_nl>() as u32;
    // SAFETY: sa and len describe a writable sockaddr_nl.
    cvt(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut sa as *mut libc::sockaddr_nl).cast(),
            &mut len,
        )
    })?;
    Ok(sa.nl_pid)
}

impl NlSocket {
    /// A socket of netlink `protocol` (NETLINK_NETFILTER, NETLINK_ROUTE).
    pub fn open(protocol: libc::c_int) -> io::Result<NlSocket> {
        let (fd, portid) = bound(protocol)?;
        // Errors come back without the whole request echoed: small ACKs.
        // Old kernels lack the option; ACKs are then just larger.
        let _ = crate::net::set_int_opt(&fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
        Ok(NlSocket {
            fd,
            portid,
            rx: [0; 4096],
        })
    }

    /// The socket a previous image of this process bound (a handover):
    /// the kernel still knows the tables it owns by its port id.
    pub fn adopt(fd: OwnedFd) -> io::Result<NlSocket> {
        let portid = portid_of(&fd)?;
        Ok(NlSocket {
            fd,
            portid,
            rx: [0; 4096],
        })
    }

    pub fn portid(&self) -> u32 {
        self.portid
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sends `batch`, whose BATCH_BEGIN has sequence number `first` and whose
    /// last ACKed message has `last`, and waits for the answers. Returns the
    /// first error the kernel reported (sequence number, positive errno).
    pub fn transact(
        &mut self,
        batch: &[u8],
        first: u32,
        last: u32,
    ) -> io::Result<Result<(), (u32, i32)>> {
        self.send(batch)?;
        let mut first_err: Option<(u32, i32)> = None;
        loop {
            // After an error the kernel may not answer the rest: don't wait.
            let timeout = match first_err {
                Some(_) => 0,
                None => REPLY_TIMEOUT_MS,
            };
            let n = match self.recv(timeout) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return first_err.map(Err).ok_or(e);
                }
                Err(e) => return Err(e),
            };
            let mut done = false;
            for (seq, kind, errno) in Acks::new(&self.rx[..n]) {
                if !in_batch(seq, first, last) {
                    continue; // a stale answer to an earlier batch
                }
                if kind == NLMSG_ERROR && errno != 0 && first_err.is_none() {
                    first_err = Some((seq, errno));
                }
                // An error on BATCH_BEGIN itself (EPERM…) answers the whole batch.
                if seq == last || (errno != 0 && seq == first) {
                    done = true;
                }
            }
            if done {
                return Ok(first_err.map_or(Ok(()), Err));
            }
        }
    }
}

impl NlSocket {
    /// Sends one request and returns the datagram that answers it (a
    /// reply message or an NLMSG_ERROR), skipping stale ones.
    pub fn request(&mut self, msg: &[u8], seq: u32) -> io::Result<&[u8]> {
        self.send(msg)?;
        loop {
            let n = self.recv(REPLY_TIMEOUT_MS)?;
            if Acks::new(&self.rx[..n]).any(|(s, _, _)| s == seq) {
                return Ok(&self.rx[..n]);
            }
        }
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_nl is valid; the kernel is the destination.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: pointers and lengths describe valid memory.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// One datagram into `rx`, waiting at most `timeout_ms`. The kernel
    /// answers a request while it is being sent (netlink runs the handler
    /// in the sender's call), so the answer is usually there already: a
    /// non-blocking read first, and poll(2) only when it is not.
    fn recv(&mut self, timeout_ms: libc::c_int) -> io::Result<usize> {
        loop {
            match recv_now(&self.fd, &mut self.rx) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut pfd, 1, timeout_ms) } {
                0 => return Err(io::ErrorKind::TimedOut.into()),
                1.. => {}
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Whether `seq` lies in `first..=last`, counting on across the wrap of
/// the 32-bit sequence number.
fn in_batch(seq: u32, first: u32, last: u32) -> bool {
    seq.wrapping_sub(first) <= last.wrapping_sub(first)
}

/// Iterates the (seq, type, errno) of the messages in one datagram.
pub struct Acks<'a> {
    buf: &'a [u8],
}

impl<'a> Acks<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Acks { buf }
    }
}

impl Iterator for Acks<'_> {
    type Item = (u32, u16, i32);
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let len = u32_at(self.buf, 0) as usize;
        if len < NLMSG_HDRLEN || len > self.buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([self.buf[4], self.buf[5]]);
        let seq = u32_at(self.buf, 8);
        let errno = if kind == NLMSG_ERROR && len >= NLMSG_HDRLEN + 4 {
            -(u32_at(self.buf, NLMSG_HDRLEN) as i32)
        } else {
            0
        };
        let step = ((len + 3) & !3).min(self.buf.len());
        self.buf = &self.buf[step..];
        let kind = if kind == NLMSG_DONE {
            NLMSG_ERROR
        } else {
            kind
        };
        Some((seq, kind, errno))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u32, err: i32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&36u32.to_ne_bytes());
        v.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&err.to_ne_bytes());
        v.extend_from_slice(&[0u8; 16]);
        v
    }

    #[test]
    fn batches_count_on_across_the_sequence_wrap() {
        assert!(in_batch(5, 5, 7) && in_batch(7, 5, 7));
        assert!(!in_batch(4, 5, 7) && !in_batch(8, 5, 7));
        let first = u32::MAX - 1;
        let last = first.wrapping_add(3);
        for seq in [u32::MAX - 1, u32::MAX, 0, 1] {
            assert!(in_batch(seq, first, last), "{seq}");
        }
        assert!(!in_batch(2, first, last) && !in_batch(u32::MAX - 2, first, last));
    }

    #[test]
    fn parses_acks_and_errors() {
        let mut d = ack(5, 0);
        d.extend(ack(6, -17));
        let got: Vec<_> = Acks::new(&d).collect();
        assert_eq!(got, [(5, NLMSG_ERROR, 0), (6, NLMSG_ERROR, 17)]);
        assert_eq!(Acks::new(&d[..10]).count(), 0, "truncated header");
    }
}
