//! What both BSDs' /dev/pf code shares: opening the device and ioctls.

use super::rules::RuleOpts;
use crate::config::Config;
use crate::filter::FilterError;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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

/// The parts of the `Backend` interface both BSDs implement alike, for a
/// `Pf` with a `transaction(session, count)`.
macro_rules! anchor_backend {
    () => {
        /// Flushes the session's anchor.
        pub fn remove(&mut self, d: &DataMap) -> Result<(), FilterError> {
            self.transaction(d.session, 0)
        }

        /// A transaction replaces the anchor's rules anyway; every session
        /// has an anchor of its own, so a port is never in use there.
        pub fn install(
            &mut self,
            _old: Option<&DataMap>,
            new: &DataMap,
        ) -> Result<crate::filter::Installed, FilterError> {
            self.add(new).map(|()| crate::filter::Installed::Done)
        }

        /// pf rules do not expire: `max-states 1` uses them up.
        pub fn expires(&self) -> bool {
            false
        }

        pub fn refresh(&mut self, _d: &DataMap) -> Result<bool, FilterError> {
            Ok(true)
        }

        /// Anchors belong to the admin's ruleset: nothing to re-create.
        pub fn ensure(&mut self) -> Result<bool, FilterError> {
            Ok(false)
        }

        /// Every session flushed its anchor as it ended.
        pub fn close(&mut self) -> Result<(), FilterError> {
            Ok(())
        }

        pub fn table(&self) -> &'static str {
            "ftp-proxy/* (pf anchors)"
        }

        /// pf keeps a dead process's anchors; they match only their exact
        /// tuples, `max 1` state each.
        pub fn owned(&self) -> bool {
            false
        }
    };
}
pub(crate) use anchor_backend;
