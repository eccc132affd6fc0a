//! Going into the background without losing the exit status: the parent
//! stays until the child says it runs (or dies), so a start that fails
//! after the fork (privilege drop, poll set-up) still exits 1 with its
//! reason on the admin's terminal, as daemon(3) cannot.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The child's side: its report pipe, and /dev/null for stdio, opened
/// before any chroot.
pub struct Detached {
    report: OwnedFd,
    null: OwnedFd,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    match r {
        0.. => Ok(r),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Forks. The parent waits for the child's word and exits 0 if the
/// child said it runs, 1 if it ended first; only the child returns, in a
/// session of its own, with stdio still open for error messages.
pub fn detach() -> io::Result<Detached> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe(2) writes.
    cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    // SAFETY: both are fresh descriptors owned by nothing else.
    let (from_child, report) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: a NUL-terminated path and plain flags.
    let null = cvt(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
    // SAFETY: as above.
    let null = unsafe { OwnedFd::from_raw_fd(null) };
    // SAFETY: single-threaded here; both sides go on with plain calls.
    match cvt(unsafe { libc::fork() })? {
        0 => {
            drop(from_child);
            // SAFETY: plain calls; setsid cannot fail right after fork.
            unsafe {
                libc::setsid();
                libc::chdir(c"/".as_ptr());
            }
            Ok(Detached { report, null })
        }
        _ => {
            drop(report);
            let mut b = [0u8; 1];
            let n = loop {
                // SAFETY: b is a writable byte.
                let n = unsafe { libc::read(from_child.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
                if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break n;
                }
            };
            // SAFETY: leaving the parent at once, as daemon(3) does.
            unsafe { libc::_exit(if n == 1 { 0 } else { 1 }) }
        }
    }
}

impl Detached {
    /// The daemon runs: stdio goes to /dev/null and the parent exits 0.
    pub fn ready(self) {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(self.null.as_raw_fd(), fd) };
        }
        // SAFETY: one byte from a valid buffer.
        unsafe { libc::write(self.report.as_raw_fd(), b"1".as_ptr().cast(), 1) };
    }
}
