//! The loop's side of a live handover (see `crate::handover`): SIGUSR2
//! starts the probe, its answer decides, and the state is written and
//! read back here. Record 0 is the daemon's, one record per session
//! follows.

use super::{Ending, Proxy, Upgrade, PROBE};
use crate::config::Config;
use crate::filter::{Backend, DataPath};
use crate::handover::wire::{Reader, Writer};
use crate::handover::{self, Answer, Exec, Image, Incoming, FORMAT};
use crate::intercept::Destinations;
use crate::log::Budget;
use crate::session::Session;
use crate::status::render::Records;
use crate::status::{Status, Totals};
use mio::net::{TcpListener, TcpStream, UnixListener};
use mio::unix::SourceFd;
use mio::Interest;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Room for one record: a session's four buffers are 3 KiB.
const RECORD: usize = 8192;

/// The daemon's descriptors, in the order record 0 lists them.
const LISTENER: usize = 0;
const TABLE: usize = 1;
const CLAIM: usize = 2;
const STATUS: usize = 3;
const CONNTRACK: usize = 4;
const SYSLOG: usize = 5;
const BINARY_DIR: usize = 6;
const FDS: usize = 7;

fn owned(fd: i32) -> Option<OwnedFd> {
    // SAFETY: a descriptor the previous image listed as ours; -1 is none.
    (fd > 2).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn records_code(r: Records) -> u8 {
    match r {
        Records::Bytes => 0,
        Records::NoBytes => 1,
        Records::Off => 2,
    }
}

impl Proxy {
    /// SIGUSR2: runs the binary as a probe, unless one runs already.
    pub(super) fn upgrade_asked(&mut self) {
        if matches!(self.upgrade, Upgrade::Probing(_)) {
            return log::warn!(target: "notice", "SIGUSR2: a handover is under way already");
        }
        let Some(exec) = self.exec.as_ref() else {
            return log::warn!("SIGUSR2: this process cannot find its binary again (see the start-up log): no live handover; restart it instead");
        };
        let p = match exec.probe() {
            Ok(p) => p,
            Err(e) => return log::error!("SIGUSR2: cannot run the new binary: {e}: still serving"),
        };
        let fd = p.fd();
        match self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), PROBE, Interest::READABLE)
        {
            Ok(()) => {
                log::info!(target: "notice", "SIGUSR2: live handover: asking the new binary which state format it reads");
                self.upgrade = Upgrade::Probing(p);
            }
            Err(e) => log::error!("SIGUSR2: no live handover: {e}"),
        }
    }

    /// The probe's output moved, or its time may have run out. What
    /// follows: nothing (still waiting, or still serving), the exec (it
    /// does not return), or a clean restart.
    pub(super) fn upgrade_progress(&mut self, now: Instant) -> Option<Ending> {
        let Upgrade::Probing(p) = &mut self.upgrade else {
            return None;
        };
        let answer = match p.read() {
            Some(a) => a,
            None if now >= p.deadline => {
                log::error!(
                    "live handover: the new binary did not answer within {} s: still serving",
                    handover::PROBE_TIMEOUT.as_secs()
                );
                self.end_probe();
                return None;
            }
            None => return None,
        };
        self.end_probe();
        match answer {
            Answer::Format(f) if f == FORMAT => {
                let e = self.hand_over(now);
                log::error!("live handover failed: {e}: still serving");
                None
            }
            Answer::Format(f) => {
                log::warn!(target: "notice", "live handover: the new binary reads state format {f}, this one writes {FORMAT}: clean restart instead (sessions end with 421; data connections under way keep going)");
                Some(Ending::Restart)
            }
            Answer::ExecFailed(errno) => {
                let e = io::Error::from_raw_os_error(errno);
                let hint = match errno {
                    libc::ENOENT if self.confined => " (in the chroot, a dynamically linked binary needs its loader and libraries there; static builds do not)",
                    _ => "",
                };
                log::error!("live handover: cannot run the new binary: {e}{hint}: still serving");
                None
            }
            Answer::Silent => {
                log::error!("live handover: the new binary gave no answer (it refused the options or cannot run here; see its errors above): still serving");
                None
            }
        }
    }

    /// The probe is done with: out of the poll set, collected (killed if
    /// it lingers).
    fn end_probe(&mut self) {
        if let Upgrade::Probing(p) = &self.upgrade {
            let _ = self.poll.registry().deregister(&mut SourceFd(&p.fd()));
        }
        self.upgrade = Upgrade::Idle;
    }

    /// Writes the state and execs; returns only on failure, with
    /// everything as it was.
    fn hand_over(&mut self, started: Instant) -> io::Error {
        let mut keep = [-1; FDS];
        let mut image = match self.write_image(&mut keep) {
            Ok(i) => i,
            Err(e) => return e,
        };
        let state = match image.finish() {
            Ok(fd) => fd,
            Err(e) => return e,
        };
        let Some(exec) = self.exec.as_ref() else {
            return io::Error::from(io::ErrorKind::NotFound);
        };
        let dir = exec.dir_fd();
        let daemon = keep.into_iter().filter(move |&fd| fd >= 0 && fd != dir);
        let sessions = &self.sessions;
        let each = (0..sessions.capacity())
            .filter_map(move |i| sessions.get(i))
            .flat_map(|s| [s.client.as_raw_fd(), s.server.as_raw_fd()]);
        log::info!(target: "notice", "live handover: {} sessions written in {} ms, exec", sessions.len(), started.elapsed().as_millis());
        exec.exec_keeping(daemon.chain(each), Some(state))
    }

    fn write_image(&self, keep: &mut [RawFd; FDS]) -> io::Result<Image> {
        let mut image = Image::create(FORMAT)?;
        let now = Instant::now();
        let mut buf = [0u8; RECORD];
        let [table, claim] = self.filter.backend.handover_fds();
        keep[LISTENER] = self.listener.as_raw_fd();
        keep[TABLE] = table;
        keep[CLAIM] = claim;
        keep[STATUS] = self.status.as_ref().map_or(-1, Status::listener_fd);
        keep[CONNTRACK] = self.conntrack.as_ref().map_or(-1, |c| c.raw_fd());
        keep[SYSLOG] = crate::log::syslog_fd().unwrap_or(-1);
        keep[BINARY_DIR] = self.exec.as_ref().map_or(-1, Exec::dir_fd);
        let mut w = Writer::new(&mut buf);
        for fd in *keep {
            w.i32(fd);
        }
        w.bool(self.confined);
        w.u64(self.next_id);
        w.u64(now.saturating_duration_since(self.started).as_millis() as u64);
        self.refusals_logged.save(&mut w);
        self.totals.save(&mut w);
        w.u64(self.filter.errors);
        self.filter.backend.save(&mut w);
        match &self.conntrack {
            Some(ct) => {
                w.u8(records_code(ct.records));
                w.u64(ct.lost);
                w.u64(ct.untracked);
            }
            None => w.u8(u8::MAX),
        }
        image.record(w.written().ok_or_else(too_big)?)?;
        for i in self.sessions.indices() {
            let Some(s) = self.sessions.get(i) else {
                continue;
            };
            let mut w = Writer::new(&mut buf);
            w.i32(s.client.as_raw_fd());
            w.i32(s.server.as_raw_fd());
            s.save(&mut w, now);
            image.record(w.written().ok_or_else(too_big)?)?;
        }
        Ok(image)
    }

    /// The successor's start: the daemon and its sessions as the
    /// previous image left them. `Err`: the image cannot be used (the
    /// caller ends the process; the sessions' sockets close with it).
    pub fn resume(cfg: Config, mut from: Incoming) -> Result<Proxy, String> {
        if from.format != FORMAT {
            return Err(format!(
                "state format {} handed over, this binary reads {FORMAT}",
                from.format
            ));
        }
        let bad = |what: &str| format!("handover image: {what}");
        let mut buf = [0u8; RECORD];
        let rec = from
            .record(&mut buf)
            .map_err(|e| bad(&e.to_string()))?
            .ok_or_else(|| bad("no daemon record"))?;
        let mut r = Reader::new(rec);
        let mut fds: [Option<OwnedFd>; FDS] = Default::default();
        for fd in &mut fds {
            *fd = owned(r.i32().ok_or_else(|| bad("descriptors"))?);
        }
        let confined = r.bool().ok_or_else(|| bad("flags"))?;
        let next_id = r.u64().ok_or_else(|| bad("counters"))?;
        let uptime = Duration::from_millis(r.u64().ok_or_else(|| bad("uptime"))?);
        let refusals_logged = Budget::load(&mut r).ok_or_else(|| bad("log budget"))?;
        let totals = Totals::load(&mut r).ok_or_else(|| bad("totals"))?;
        let errors = r.u64().ok_or_else(|| bad("counters"))?;
        let table = fds[TABLE].take().ok_or_else(|| bad("no table socket"))?;
        let claim = fds[CLAIM].take();
        let backend = Backend::adopt(&cfg, table, claim, &mut r).ok_or_else(|| bad("table"))?;
        let ct = match r.u8().ok_or_else(|| bad("conntrack"))? {
            u8::MAX => None,
            code => {
                let records = [Records::Bytes, Records::NoBytes, Records::Off]
                    .get(usize::from(code))
                    .copied()
                    .ok_or_else(|| bad("conntrack"))?;
                let lost = r.u64().ok_or_else(|| bad("conntrack"))?;
                let untracked = r.u64().ok_or_else(|| bad("conntrack"))?;
                Some((records, lost, untracked))
            }
        };
        if let Some(fd) = fds[SYSLOG].take() {
            let tag = format!("ftp-proxy/{}", cfg.instance);
            let path = match &cfg.log_to {
                Some(crate::config::LogTo::Syslog(p)) => p.as_str(),
                _ => crate::config::DEV_LOG,
            };
            crate::log::adopt_syslog(path, &tag, std::os::unix::net::UnixDatagram::from(fd));
        }
        let listener = fds[LISTENER].take().ok_or_else(|| bad("no listener"))?;
        let listener = TcpListener::from_std(std::net::TcpListener::from(listener));
        let destinations = Destinations::open(&cfg).map_err(|e| format!("route lookups: {e}"))?;
        let status = fds[STATUS]
            .take()
            .map(|fd| UnixListener::from_std(std::os::unix::net::UnixListener::from(fd)));
        let conntrack = match (fds[CONNTRACK].take(), ct) {
            (Some(fd), Some((records, lost, untracked))) => {
                let mut c = crate::conntrack::Conntrack::adopt(fd, records, cfg.max_sessions);
                c.lost = lost;
                c.untracked = untracked;
                Some(c)
            }
            _ => None,
        };
        let exec = fds[BINARY_DIR].take().and_then(|d| Exec::adopt(d).ok());
        let observers = super::Observers { status, conntrack };
        let mut p = Proxy::new(cfg, listener, backend, destinations, observers)
            .map_err(|e| format!("start-up: {e}"))?;
        p.exec = exec;
        p.confined = confined;
        p.next_id = next_id;
        let now = Instant::now();
        p.started = now.checked_sub(uptime).unwrap_or(now);
        p.refusals_logged = refusals_logged;
        p.totals = totals;
        p.filter.errors = errors;
        let mut sessions = 0;
        while let Some(rec) = from.record(&mut buf).map_err(|e| bad(&e.to_string()))? {
            let mut r = Reader::new(rec);
            let (Some(c), Some(s)) = (r.i32().and_then(owned), r.i32().and_then(owned)) else {
                return Err(bad("session sockets"));
            };
            let client = TcpStream::from_std(std::net::TcpStream::from(c));
            let server = TcpStream::from_std(std::net::TcpStream::from(s));
            let s = Session::load(&mut r, client, server, now).ok_or_else(|| bad("session"))?;
            p.adopt_session(s).map_err(|e| format!("session: {e}"))?;
            sessions += 1;
        }
        log::info!(target: "notice", "live handover: serving {sessions} sessions handed over, table inet {} kept", p.filter.backend.table());
        Ok(p)
    }

    fn adopt_session(&mut self, s: Session) -> io::Result<()> {
        let pending = s.pending.map(|p| p.map);
        let Some(i) = self.sessions.insert_with(|_| s) else {
            return Err(io::Error::other("more sessions than -m"));
        };
        if let Some(m) = &pending {
            self.filter.hold(m, i);
        }
        self.register(i)?;
        // Registration reports what is there already; a turn finds out
        // what is not.
        self.mark_ready(i);
        Ok(())
    }
}

fn too_big() -> io::Error {
    io::Error::other("a record does not fit its buffer")
}
