//! Signals reach the poll loop through a self-pipe: the handler only writes
//! the signal number, the loop reads it like any other event.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

static PIPE_W: AtomicI32 = AtomicI32::new(-1);

/// Where this thread's errno lives (the handler must leave it unchanged).
#[cfg(target_os = "linux")]
unsafe fn errno_ptr() -> *mut libc::c_int {
    libc::__errno_location()
}
#[cfg(target_os = "openbsd")]
unsafe fn errno_ptr() -> *mut libc::c_int {
    libc::__errno()
}
#[cfg(target_os = "freebsd")]
unsafe fn errno_ptr() -> *mut libc::c_int {
    libc::__error()
}

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: errno is saved and restored; write(2) is async-signal-safe.
    unsafe {
        let errno = *errno_ptr();
        let b = sig as u8;
        libc::write(PIPE_W.load(Ordering::Relaxed), (&b as *const u8).cast(), 1);
        *errno_ptr() = errno;
    }
}

/// Signals that end the daemon cleanly.
pub const TERMINATE: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Installs the handlers; returns the pipe's read end (non-blocking).
pub fn install() -> io::Result<OwnedFd> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh; the read end is owned from here.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let old = PIPE_W.swap(fds[1], Ordering::Relaxed);
    if old >= 0 {
        // SAFETY: a previous install's write end, no longer used.
        unsafe { libc::close(old) };
    }
    for sig in TERMINATE.into_iter().chain([libc::SIGUSR1, libc::SIGUSR2]) {
        // SAFETY: a zeroed sigaction with a valid handler and empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // A peer that vanishes must give EPIPE, not kill the daemon.
    // SAFETY: setting a standard disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // A handover execs with every signal blocked (so none is lost or
    // kills the process in between): the handlers take them from here.
    // SAFETY: an empty set, filled by sigemptyset.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    Ok(r)
}

/// Reads pending signal numbers into `buf`; returns how many.
pub fn drain(fd: RawFd, buf: &mut [u8]) -> usize {
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    n.max(0) as usize
}
