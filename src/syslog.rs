//! A syslog writer of our own: one datagram per line to a local socket
//! (`/dev/log`), `<PRI>TAG[PID]: text`, sent without blocking.
//!
//! Why not syslog(3): glibc's formats through a heap stream and blocks
//! while syslogd's queue is full; neither may happen in the loop. Here a
//! line is formatted on the stack; when the queue is full it is dropped
//! and counted, and the count is logged once syslogd takes lines again.
//! When syslogd restarts (its socket is new), the writer connects again,
//! at most once a second; meanwhile lines go to stderr. After a chroot
//! the path is looked up inside it (as for every chrooted daemon): keep a
//! syslog socket there, or run without -c, to survive a syslogd restart.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// LOG_DAEMON.
const FACILITY: u8 = 3 << 3;
const RETRY: Duration = Duration::from_secs(1);
/// A line's room: the log's 600 bytes and the header.
const LINE: usize = 720;

pub type Path = heapless::String<108>;
pub type Tag = heapless::String<64>;

pub struct Writer {
    path: Path,
    tag: Tag,
    pid: u32,
    sock: Option<UnixDatagram>,
    /// Lines dropped since the last one sent.
    dropped: u32,
    /// No reconnect before this.
    retry_at: Option<Instant>,
}

/// What sending a line came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Sent,
    /// syslogd's queue is full: dropped, counted.
    Dropped,
    /// No syslogd to take it: the caller writes it elsewhere.
    Unreachable,
}

/// A datagram socket connected to `path`, its sends non-blocking. std
/// builds the address on the stack: no allocation, also on reconnects.
fn connect(path: &str) -> io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

impl Writer {
    /// A writer to the syslog socket at `path`, connected now (before any
    /// chroot) if syslogd answers; else on a later line. Fails only for
    /// a path too long for a socket address.
    pub fn open(path: &str, tag: &str) -> io::Result<Writer> {
        let mut w = Writer::open_unconnected(path, tag)?;
        w.sock = connect(path).ok();
        Ok(w)
    }

    fn open_unconnected(path: &str, tag: &str) -> io::Result<Writer> {
        let mut w = Writer {
            path: Path::try_from(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            tag: Tag::new(),
            pid: std::process::id(),
            sock: None,
            dropped: 0,
            retry_at: None,
        };
        for c in tag.chars() {
            if w.tag.push(c).is_err() {
                break;
            }
        }
        Ok(w)
    }

    /// The connected socket, for a handover.
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.sock.as_ref().map(|s| s.as_raw_fd())
    }

    /// A writer on the socket a previous image connected (the successor
    /// may sit in a chroot where the path is not).
    pub fn adopt(path: &str, tag: &str, sock: UnixDatagram) -> io::Result<Writer> {
        let mut w = Writer::open_unconnected(path, tag)?;
        w.sock = Some(sock);
        Ok(w)
    }

    pub fn connected(&self) -> bool {
        self.sock.is_some()
    }

    /// Sends `text` at syslog priority `prio` (0..7).
    pub fn line(&mut self, prio: u8, text: &[u8]) -> Sent {
        if self.dropped > 0 {
            let mut note = [0u8; 64];
            let n = crate::ftp::write::format(
                &mut note,
                format_args!("{} log lines dropped: syslog was busy", self.dropped),
            )
            .unwrap_or(0);
            if self.send(4, &note[..n]) == Sent::Sent {
                self.dropped = 0;
            }
        }
        let sent = self.send(prio, text);
        if sent == Sent::Dropped {
            self.dropped = self.dropped.saturating_add(1);
        }
        sent
    }

    fn send(&mut self, prio: u8, text: &[u8]) -> Sent {
        let mut buf = [0u8; LINE];
        let mut c = crate::ftp::write::Cursor::new(&mut buf);
        let _ = core::fmt::Write::write_fmt(
            &mut c,
            format_args!("<{}>{}[{}]: ", FACILITY | (prio & 7), self.tag, self.pid),
        );
        let head = c.len();
        let n = text.len().min(LINE - head);
        buf[head..head + n].copy_from_slice(&text[..n]);
        let line = &buf[..head + n];
        for attempt in 0..2 {
            let Some(sock) = self.sock.as_ref() else {
                if attempt == 0 && self.reconnect() {
                    continue;
                }
                return Sent::Unreachable;
            };
            match sock.send(line) {
                Ok(_) => return Sent::Sent,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) => {
                    return Sent::Dropped
                }
                // The socket went (syslogd restarted) or never was.
                Err(_) => {
                    self.sock = None;
                    if attempt == 0 && self.reconnect() {
                        continue;
                    }
                    return Sent::Unreachable;
                }
            }
        }
        Sent::Unreachable
    }

    /// One try at connecting again, unless one failed under a second ago.
    fn reconnect(&mut self) -> bool {
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| now < t) {
            return false;
        }
        match connect(&self.path) {
            Ok(sock) => {
                self.sock = Some(sock);
                self.retry_at = None;
                true
            }
            Err(_) => {
                self.retry_at = Some(now + RETRY);
                false
            }
        }
    }

    /// After a fork: the pid in each line is the new process's.
    pub fn set_pid(&mut self) {
        self.pid = std::process::id();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn lines_carry_priority_tag_and_pid_and_survive_a_restart() {
        let p = std::env::temp_dir().join(format!("ftp-proxy-syslog-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let path = p.to_str().unwrap();
        let d = UnixDatagram::bind(&p).unwrap();
        let mut w = Writer::open(path, "ftp-proxy/lan").unwrap();
        assert_eq!(w.line(5, b"hello"), Sent::Sent);
        let mut buf = [0u8; 800];
        let n = d.recv(&mut buf).unwrap();
        let want = format!("<29>ftp-proxy/lan[{}]: hello", std::process::id());
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), want);
        // syslogd restarts: its socket is a new one at the same path.
        drop(d);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(w.line(3, b"nobody"), Sent::Unreachable);
        let d = UnixDatagram::bind(&p).unwrap();
        w.retry_at = None;
        assert_eq!(w.line(3, b"back"), Sent::Sent);
        let n = d.recv(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"<27>ftp-proxy/lan["),
            "{:?}",
            &buf[..n]
        );
        assert!(buf[..n].ends_with(b"]: back"));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn a_full_queue_drops_and_counts_then_says_so() {
        let p = std::env::temp_dir().join(format!("ftp-proxy-syslog-full-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let d = UnixDatagram::bind(&p).unwrap();
        let mut w = Writer::open(p.to_str().unwrap(), "t").unwrap();
        let mut dropped = 0;
        for _ in 0..10_000 {
            if w.line(6, &[b'x'; 500]) == Sent::Dropped {
                dropped += 1;
            }
        }
        assert!(dropped > 0, "the queue never filled");
        let mut buf = [0u8; 800];
        while d.recv(&mut buf).is_ok_and(|n| n > 0) {
            d.set_nonblocking(true).unwrap();
        }
        assert_eq!(w.line(6, b"after"), Sent::Sent);
        d.set_nonblocking(false).unwrap();
        let n = d.recv(&mut buf).unwrap();
        let first = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            first.starts_with("<28>") && first.contains("log lines dropped"),
            "{first}"
        );
        let _ = std::fs::remove_file(&p);
    }
}
