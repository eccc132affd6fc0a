//! `log` backend: stderr, or a syslog socket (`syslog::Writer`: facility
//! daemon, each line at its own priority). Lines are formatted on the
//! stack; logging never allocates and never blocks.

use crate::ftp::write::Cursor;
use crate::syslog::{Sent, Writer};
use core::fmt::Write as _;
use log::{Level, Metadata, Record};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

static LEVEL: AtomicU8 = AtomicU8::new(5);
/// Lines go to `SINK` rather than stderr.
static SYSLOG: AtomicBool = AtomicBool::new(false);
static SINK: Mutex<Option<Writer>> = Mutex::new(None);

struct Logger;
static LOGGER: Logger = Logger;

/// Target of records logged at syslog's NOTICE, which `log` lacks.
pub const NOTICE: &str = "notice";

/// The syslog priority (0..7) of a record.
pub fn priority(level: Level, target: &str) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn if target == NOTICE => 5,
        Level::Warn => 4,
        Level::Info if target == NOTICE => 5,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

fn to_stderr(line: &[u8]) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(line);
    let _ = e.write_all(b"\n");
}

impl log::Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        // Only the proxy's own records: dependencies (mio) log at trace.
        let ours = m.target() == NOTICE || m.target().starts_with("ftp_proxy");
        ours && priority(m.level(), m.target()) <= LEVEL.load(Ordering::Relaxed)
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mut buf = [0u8; 600];
        let mut c = Cursor::new(&mut buf[..]);
        // A line too long for the buffer is cut (the cursor keeps what fit).
        let _ = c.write_fmt(*r.args());
        let n = c.len();
        let line = &buf[..n];
        if SYSLOG.load(Ordering::Relaxed) {
            let prio = priority(r.level(), r.target());
            let sent = match SINK.lock() {
                Ok(mut sink) => sink.as_mut().map(|w| w.line(prio, line)),
                Err(_) => None,
            };
            // While syslogd is away, stderr (procd, a terminal) has it.
            if matches!(sent, None | Some(Sent::Unreachable)) {
                to_stderr(line);
            }
        } else {
            to_stderr(line);
        }
    }

    fn flush(&self) {}
}

/// Installs the logger, writing to stderr.
pub fn init(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(match level {
        0..=4 => log::LevelFilter::Warn,
        5 | 6 => log::LevelFilter::Info,
        _ => log::LevelFilter::Trace,
    });
}

/// Connects to the syslog socket at `path` (do it before a chroot);
/// lines go there once `use_syslog` is called. False when syslogd did not
/// answer yet (the writer tries again later).
pub fn open_syslog(path: &str, tag: &str) -> std::io::Result<bool> {
    let w = Writer::open(path, tag)?;
    let connected = w.connected();
    if let Ok(mut sink) = SINK.lock() {
        *sink = Some(w);
    }
    Ok(connected)
}

/// The syslog socket lines go to now, if any: a handover passes it on.
pub fn syslog_fd() -> Option<std::os::fd::RawFd> {
    if !SYSLOG.load(Ordering::Relaxed) {
        return None;
    }
    SINK.lock().ok()?.as_ref()?.fd()
}

/// A successor's syslog: the socket its previous image used.
pub fn adopt_syslog(path: &str, tag: &str, sock: std::os::unix::net::UnixDatagram) {
    if let Ok(w) = Writer::adopt(path, tag, sock) {
        if let Ok(mut sink) = SINK.lock() {
            *sink = Some(w);
            SYSLOG.store(true, Ordering::Relaxed);
        }
    }
}

/// Sends lines to the syslog socket opened before (after daemonizing:
/// the lines carry the new pid).
pub fn use_syslog() {
    if let Ok(mut sink) = SINK.lock() {
        if let Some(w) = sink.as_mut() {
            w.set_pid();
            SYSLOG.store(true, Ordering::Relaxed);
        }
    }
}

/// Log lines one peer may cause per second, past which they are counted
/// and summed up in the next line let through: a hostile peer cannot
/// flood syslog (or fill a router's flash) with refusals.
pub const LINES_PER_SECOND: u8 = 5;

/// One peer's allowance of log lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    /// Which second (of the caller's clock) `used` counts in.
    second: u64,
    used: u8,
    suppressed: u32,
}

impl Budget {
    pub fn save(&self, w: &mut crate::handover::wire::Writer) {
        w.u64(self.second);
        w.u8(self.used);
        w.u32(self.suppressed);
    }

    pub fn load(r: &mut crate::handover::wire::Reader) -> Option<Budget> {
        Some(Budget {
            second: r.u64()?,
            used: r.u8()?.min(LINES_PER_SECOND),
            suppressed: r.u32()?,
        })
    }

    /// Whether a line may be logged in second `now`; when it may, how
    /// many were suppressed before it (to say so in the line).
    pub fn take(&mut self, now: u64) -> Option<u32> {
        if now != self.second {
            self.second = now;
            self.used = 0;
        }
        if self.used >= LINES_PER_SECOND {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// " (N similar lines suppressed)" after a line the budget let through,
/// when it had suppressed N before it; nothing when N is 0.
pub struct Suppressed(pub u32);

impl core::fmt::Display for Suppressed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} similar lines suppressed)"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn budget_limits_lines_per_second_and_counts_the_rest() {
        let mut b = Budget::default();
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(b.take(7), Some(0));
        }
        assert_eq!(b.take(7), None);
        assert_eq!(b.take(7), None);
        assert_eq!(b.take(8), Some(2), "the next second reports the two");
        assert_eq!(b.take(8), Some(0));
    }

    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::Error, ""), 3);
        assert_eq!(priority(Level::Warn, ""), 4);
        assert_eq!(priority(Level::Info, NOTICE), 5);
        assert_eq!(priority(Level::Info, ""), 6);
        assert_eq!(priority(Level::Debug, ""), 7);
    }
}
