//! What both BSDs' /dev/pf code shares: opening the device and ioctls.

use super::openbsd::{PfiocRuleset, DIOCGETRULESET, DIOCGETRULESETS, PATH_MAX};
use super::rules::{anchor_name, anchor_pid, put_str, RuleOpts};
use crate::config::Config;
use crate::filter::{DataMap, DataPath, FilterError, Installed, OneShot};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// An ioctl whose request was made with `_IOWR` for `T`'s size.
pub fn ioctl<T>(
    fd: &OwnedFd,
    req: u64,
    arg: &mut T,
    what: &'static str,
) -> Result<(), FilterError> {
    // SAFETY: `req` encodes exactly this type's size; arg is valid for it.
    if unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) } < 0 {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        return Err(FilterError::Kernel(what, errno));
    }
    Ok(())
}

/// Opens /dev/pf (before the privilege drop; the descriptor is kept).
/// `-i` has no meaning on pf: the admin's pf.conf intercepts.
pub fn open(cfg: &Config) -> Result<OwnedFd, FilterError> {
    if !cfg.intercept.is_empty() {
        return Err(FilterError::Kernel(
            "-i: on pf, intercept in pf.conf (divert-to or rdr)",
            libc::EINVAL,
        ));
    }
    // SAFETY: a NUL-terminated path and plain flags.
    let fd = unsafe { libc::open(c"/dev/pf".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(FilterError::Io("open /dev/pf", io::Error::last_os_error()));
    }
    // SAFETY: fd is fresh and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The device and what every rule takes from the command line.
pub struct Common {
    pub dev: OwnedFd,
    log: u8,
    tag: Option<String>,
    queue: Option<String>,
}

impl Common {
    /// Opens /dev/pf and checks with DIOCGETSTATUS (`status_req`, whose
    /// answer `running` reads) that pf is enabled.
    pub fn open<S: Default>(
        cfg: &Config,
        status_req: u64,
        running: impl Fn(&S) -> bool,
    ) -> Result<Common, FilterError> {
        let dev = open(cfg)?;
        let mut status = S::default();
        match ioctl(&dev, status_req, &mut status, "DIOCGETSTATUS") {
            Ok(()) if !running(&status) => {
                return Err(FilterError::Kernel(
                    "pf is disabled (pfctl -e)",
                    libc::ENXIO,
                ))
            }
            Ok(()) => {}
            // A kernel without the ioctl (FreeBSD 15) cannot say; the
            // first transaction will, with its own error.
            Err(FilterError::Kernel(_, libc::ENODEV | libc::ENOTTY | libc::EINVAL)) => {
                log::warn!(
                    "pf: DIOCGETSTATUS unknown to this kernel; not checking that pf is enabled"
                );
            }
            Err(e) => return Err(e),
        }
        Ok(Common {
            dev,
            // `-v`/`-vv` as PF_LOG, PF_LOG_ALL.
            log: match cfg.verbose {
                0 => 0,
                1 => 0x01,
                _ => 0x02,
            },
            tag: cfg.tag_name.clone(),
            queue: cfg.queue_name.clone(),
        })
    }

    pub fn opts(&self) -> RuleOpts<'_> {
        RuleOpts {
            log: self.log,
            tag: self.tag.as_deref(),
            queue: self.queue.as_deref(),
        }
    }
}

/// The pid in anchor names: the running daemon's, asked each time, so a
/// device opened before the fork names the right anchors (as OpenBSD's
/// ftp-proxy does after daemon(3)).
pub fn pid() -> u32 {
    std::process::id()
}

/// DIOCXCOMMIT, tried once more on EBUSY (another transaction, such as
/// a pfctl run, was committed in between), as OpenBSD's filter.c does.
pub fn commit<T>(fd: &OwnedFd, req: u64, t: &mut T) -> Result<(), FilterError> {
    match ioctl(fd, req, t, "DIOCXCOMMIT") {
        Err(FilterError::Kernel(_, libc::EBUSY)) => ioctl(fd, req, t, "DIOCXCOMMIT"),
        r => r,
    }
}

/// What each BSD's /dev/pf code provides; the `DataPath` contract is
/// built on it once, below, for both.
pub trait Anchors {
    /// How this kernel keeps a mapping to one connection.
    const ONE_SHOT: OneShot;
    /// How often pending mappings are checked (`Polled` only).
    const CHECK_EVERY: Option<Duration>;
    /// Replaces the rules of `anchor` with the rules of `d` (or none).
    fn load(&mut self, anchor: &AnchorPath, d: Option<&DataMap>) -> Result<(), FilterError>;
    /// Whether the mapping in `anchor` has made its state (Polled only).
    fn used(&mut self, anchor: &AnchorPath) -> Result<bool, FilterError>;
    fn lookup(&mut self, client: SocketAddr, local: SocketAddr) -> Option<SocketAddr>;
    fn dev(&self) -> &OwnedFd;
}

pub type AnchorPath = [u8; PATH_MAX];

/// The anchor of session `session` of this daemon.
pub fn session_anchor(session: u64) -> AnchorPath {
    let mut a = [0; PATH_MAX];
    anchor_name(&mut a, pid(), session);
    a
}

impl<T: Anchors> DataPath for T {
    /// A transaction replaces the anchor's rules anyway; every session
    /// has an anchor of its own, so a port is never in use there.
    fn install(&mut self, _old: Option<&DataMap>, new: &DataMap) -> Result<Installed, FilterError> {
        self.load(&session_anchor(new.session), Some(new))
            .map(|()| Installed::Done)
    }

    /// Flushes the session's anchor.
    fn remove(&mut self, d: &DataMap) -> Result<(), FilterError> {
        self.load(&session_anchor(d.session), None)
    }

    fn refresh_every(&self) -> Option<Duration> {
        T::CHECK_EVERY
    }

    /// Where pf cannot use a rule up (FreeBSD): once the rule has made
    /// its state, the anchor is flushed; the state stays.
    fn refresh(&mut self, d: &DataMap) -> Result<bool, FilterError> {
        let anchor = session_anchor(d.session);
        if !self.used(&anchor)? {
            return Ok(true);
        }
        self.load(&anchor, None)?;
        Ok(false)
    }

    /// Anchors belong to the admin's ruleset: nothing to re-create.
    fn ensure(&mut self) -> Result<bool, FilterError> {
        Ok(false)
    }

    /// Every session flushed its anchor as it ended.
    fn close(&mut self) -> Result<(), FilterError> {
        Ok(())
    }

    fn table(&self) -> &str {
        "ftp-proxy/* (pf anchors)"
    }

    /// pf keeps a dead process's anchors: the next start flushes them
    /// (`sweep_stale`).
    fn owned(&self) -> bool {
        false
    }

    fn one_shot(&self) -> OneShot {
        T::ONE_SHOT
    }

    fn original_dst(&mut self, client: SocketAddr, local: SocketAddr) -> Option<SocketAddr> {
        self.lookup(client, local)
    }
}

/// Most anchors one sweep looks at.
const SWEEP_MAX: u32 = 4096;

/// Whether process `pid` exists (EPERM: it does, under another user;
/// this daemon's own pid answers 0 like any other live one).
fn running(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Flushes the anchors `ftp-proxy/<pid>.<session>` of daemons that no
/// longer run: a crash or `kill -9` leaves them, and pf keeps them.
/// Returns how many went. Allocates (at start only).
pub fn sweep_stale<T: Anchors>(pf: &mut T) -> Result<usize, FilterError> {
    let mut rs = PfiocRuleset::default();
    put_str(&mut rs.path, "ftp-proxy");
    match ioctl(pf.dev(), DIOCGETRULESETS, &mut rs, "DIOCGETRULESETS") {
        // No session anchor yet.
        Err(FilterError::Kernel(_, libc::ENOENT | libc::EINVAL)) => return Ok(0),
        r => r?,
    }
    let mut stale = Vec::new();
    for nr in 0..rs.nr.min(SWEEP_MAX) {
        rs.nr = nr;
        ioctl(pf.dev(), DIOCGETRULESET, &mut rs, "DIOCGETRULESET")?;
        if anchor_pid(&rs.name).is_some_and(|p| !running(p)) {
            let mut path = [0; PATH_MAX];
            let n = rs
                .name
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(rs.name.len());
            let name = std::str::from_utf8(&rs.name[..n]).unwrap_or("");
            put_str(&mut path, &format!("ftp-proxy/{name}"));
            stale.push(path);
        }
    }
    for path in &stale {
        pf.load(path, None)?;
    }
    Ok(stale.len())
}

/// At start: the sweep, said in the log.
pub fn sweep_and_say<T: Anchors>(pf: &mut T) {
    match sweep_stale(pf) {
        Ok(0) => {}
        Ok(n) => {
            log::warn!(target: "notice", "flushed {n} anchors of ftp-proxy daemons no longer running")
        }
        Err(e) => log::warn!("looking for stale anchors: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// A kernel that records what it is asked and says a state exists
    /// once `state` is set.
    #[derive(Default)]
    struct Fake {
        loads: Vec<(String, bool)>,
        state: bool,
    }

    impl Anchors for Fake {
        const ONE_SHOT: OneShot = OneShot::Polled;
        const CHECK_EVERY: Option<Duration> = Some(Duration::from_secs(1));
        fn load(&mut self, anchor: &AnchorPath, d: Option<&DataMap>) -> Result<(), FilterError> {
            let n = anchor.iter().position(|&b| b == 0).unwrap_or(0);
            let name = String::from_utf8_lossy(&anchor[..n]).into_owned();
            self.loads.push((name, d.is_some()));
            Ok(())
        }
        fn used(&mut self, _anchor: &AnchorPath) -> Result<bool, FilterError> {
            Ok(self.state)
        }
        fn lookup(&mut self, _c: SocketAddr, _l: SocketAddr) -> Option<SocketAddr> {
            None
        }
        fn dev(&self) -> &OwnedFd {
            unreachable!("no device in the unit test")
        }
    }

    /// Where pf has no one-shot rule, the anchor goes as soon as its
    /// state exists: no second connection after the check.
    #[test]
    fn a_polled_mapping_is_flushed_once_its_state_exists() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let d = DataMap::passive(
            ip("198.18.1.2"),
            ip("198.19.2.2"),
            50000,
            ip("198.19.2.2"),
            30000,
            ip("198.19.2.1"),
            7,
        );
        let mut f = Fake::default();
        let anchor = format!("ftp-proxy/{}.7", std::process::id());
        assert_eq!(f.install(None, &d).unwrap(), Installed::Done);
        assert_eq!(f.refresh_every(), Some(Duration::from_secs(1)));
        assert!(f.refresh(&d).unwrap(), "no state yet: still pending");
        f.state = true;
        assert!(!f.refresh(&d).unwrap(), "used: forgotten");
        assert_eq!(f.loads, [(anchor.clone(), true), (anchor, false)]);
        assert_eq!(f.one_shot(), OneShot::Polled);
        assert!(!f.owned());
    }
}
