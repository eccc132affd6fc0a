//! The process side of a handover (Linux): the probe child, the state
//! image in a memfd, and the exec.

use super::{Answer, PROBE_ENV, PROBE_TIMEOUT, STATE_ENV};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

/// The image's first bytes: what it is, then the format.
const MAGIC: &[u8; 8] = b"FTPXHAND";
/// Marks the end of the records.
const END: u32 = u32::MAX;

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    match r {
        -1 => Err(io::Error::last_os_error()),
        r => Ok(r),
    }
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Sets or clears close-on-exec.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number; a closed one gives EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) }.into())? as libc::c_int;
    let flags = match on {
        true => flags | libc::FD_CLOEXEC,
        false => flags & !libc::FD_CLOEXEC,
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }.into())?;
    Ok(())
}

/// Every signal blocked until dropped: none is handled by a handler of
/// the image that is going away, none kills the process between the
/// exec and the new image's handlers (the mask crosses the exec, and
/// pending signals with it).
struct Blocked(libc::sigset_t);

impl Blocked {
    fn all() -> Blocked {
        // SAFETY: sigset_t is plain data, filled by the calls.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
            Blocked(old)
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved above.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// How to run this binary again: its directory, opened at start-up
/// (before any chroot), the file name in it, and the options.
pub struct Exec {
    dir: OwnedFd,
    name: CString,
    argv: Vec<CString>,
}

impl Exec {
    /// At start-up: the binary this process runs.
    pub fn at_start() -> io::Result<Exec> {
        let exe = std::env::current_exe()?;
        let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let dir_c = cstring(dir.as_os_str())?;
        // SAFETY: a NUL-terminated path; the descriptor is owned below.
        let fd = unsafe {
            libc::open(
                dir_c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        cvt(fd.into())?;
        // SAFETY: fresh descriptor.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Exec::with(dir, cstring(name)?)
    }

    /// In a successor: the directory handed over.
    pub fn adopt(dir: OwnedFd) -> io::Result<Exec> {
        let exe = std::env::args_os().next().unwrap_or_default();
        let name = std::path::Path::new(&exe)
            .file_name()
            .unwrap_or(OsStr::new("ftp-proxy"));
        Exec::with(dir, cstring(name)?)
    }

    fn with(dir: OwnedFd, name: CString) -> io::Result<Exec> {
        let argv = std::env::args_os()
            .map(|a| cstring(&a))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Exec { dir, name, argv })
    }

    pub fn dir_fd(&self) -> RawFd {
        self.dir.as_raw_fd()
    }

    /// The environment for the next image: this one's without our
    /// variables, and `set` added.
    fn envp(set: Option<(&str, &str)>) -> io::Result<Vec<CString>> {
        let mut env = Vec::new();
        for (k, v) in std::env::vars_os() {
            if k == STATE_ENV || k == PROBE_ENV {
                continue;
            }
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            env.push(CString::new(kv).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?);
        }
        if let Some((k, v)) = set {
            env.push(CString::new(format!("{k}={v}"))?);
        }
        Ok(env)
    }

    fn pointers(v: &[CString]) -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    }

    /// execveat(2) of the binary; returns only on failure. The
    /// directory descriptor must survive the exec for a script (#!):
    /// the interpreter opens the script by /dev/fd/N/name.
    fn execveat(&self, envp: &[*const libc::c_char], argv: &[*const libc::c_char]) -> io::Error {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays that
        // outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                self.dir.as_raw_fd(),
                self.name.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                0,
            )
        };
        io::Error::last_os_error()
    }

    /// Runs the binary as the probe: a child whose standard output is a
    /// pipe, read without blocking.
    pub fn probe(&self) -> io::Result<Probe> {
        let env = Exec::envp(Some((PROBE_ENV, "1")))?;
        let (envp, argv) = (Exec::pointers(&env), Exec::pointers(&self.argv));
        let mut fds = [0 as RawFd; 2];
        // SAFETY: room for the two descriptors.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
        // SAFETY: fresh descriptors, owned from here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_cloexec(self.dir.as_raw_fd(), false)?;
        let pid = {
            let _blocked = Blocked::all();
            // SAFETY: one thread; the child only calls dup2, execveat and
            // _exit, all async-signal-safe, on memory prepared above.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe {
                    libc::dup2(write.as_raw_fd(), 1);
                    let e = self.execveat(&envp, &argv);
                    // Said on the pipe for the parent's log: formatted on
                    // the stack (no allocation after fork).
                    let mut line = *b"exec failed: errno 000\n";
                    let errno = e.raw_os_error().unwrap_or(0).clamp(0, 999) as u32;
                    line[19] = b'0' + (errno / 100) as u8;
                    line[20] = b'0' + (errno / 10 % 10) as u8;
                    line[21] = b'0' + (errno % 10) as u8;
                    libc::write(1, line.as_ptr().cast(), line.len());
                    libc::_exit(127);
                }
            }
            pid
        };
        let _ = set_cloexec(self.dir.as_raw_fd(), true);
        cvt(pid.into())?;
        drop(write);
        // SAFETY: our descriptor.
        unsafe {
            let fl = libc::fcntl(read.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(read.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Ok(Probe {
            pid,
            out: File::from(read),
            buf: [0; 128],
            len: 0,
            deadline: Instant::now() + PROBE_TIMEOUT,
            reaped: false,
        })
    }

    /// Execs the binary with `keep` inherited and `state` (a memfd) named
    /// in the environment; `None`: a fresh start. Returns only on
    /// failure, with every descriptor as it was.
    pub fn exec_keeping<I>(&self, keep: I, state: Option<RawFd>) -> io::Error
    where
        I: Iterator<Item = RawFd> + Clone,
    {
        let fd_text;
        let set = match state {
            Some(fd) => {
                fd_text = fd.to_string();
                Some((STATE_ENV, fd_text.as_str()))
            }
            None => None,
        };
        let env = match Exec::envp(set) {
            Ok(e) => e,
            Err(e) => return e,
        };
        let (envp, argv) = (Exec::pointers(&env), Exec::pointers(&self.argv));
        let _blocked = Blocked::all();
        let all = keep.chain(state).chain([self.dir.as_raw_fd()]);
        for fd in all.clone() {
            if let Err(e) = set_cloexec(fd, false) {
                for fd in all {
                    let _ = set_cloexec(fd, true);
                }
                return e;
            }
        }
        let e = self.execveat(&envp, &argv);
        for fd in all {
            let _ = set_cloexec(fd, true);
        }
        e
    }
}

/// The probe child, while it runs.
pub struct Probe {
    pid: libc::pid_t,
    out: File,
    buf: [u8; 128],
    len: usize,
    pub deadline: Instant,
    reaped: bool,
}

impl Probe {
    pub fn fd(&self) -> RawFd {
        self.out.as_raw_fd()
    }

    /// Reads what the probe wrote; its answer once its output ended.
    pub fn read(&mut self) -> Option<Answer> {
        loop {
            match self.out.read(&mut self.buf[self.len..]) {
                Ok(0) => return Some(super::answer(&self.buf[..self.len])),
                Ok(n) => {
                    self.len += n;
                    if self.len == self.buf.len() {
                        return Some(super::answer(&self.buf[..self.len]));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(_) => return Some(Answer::Silent),
            }
        }
    }

    /// Ends the child (if still running) and collects it. True once it
    /// is collected.
    pub fn reap(&mut self, kill: bool) -> bool {
        if self.reaped {
            return true;
        }
        if kill {
            // SAFETY: our child, not yet collected.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let mut status = 0;
        let flags = if kill { 0 } else { libc::WNOHANG };
        // SAFETY: our child.
        self.reaped = unsafe { libc::waitpid(self.pid, &mut status, flags) } == self.pid;
        self.reaped
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.reap(true);
    }
}

/// The state being written: a memfd, records appended.
pub struct Image {
    file: File,
}

impl Image {
    pub fn create(format: u32) -> io::Result<Image> {
        // SAFETY: a NUL-terminated name.
        let fd = cvt(unsafe {
            libc::syscall(
                libc::SYS_memfd_create,
                c"ftp-proxy-handover".as_ptr(),
                libc::MFD_CLOEXEC,
            )
        })?;
        // SAFETY: fresh descriptor.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        file.write_all(MAGIC)?;
        file.write_all(&format.to_le_bytes())?;
        Ok(Image { file })
    }

    pub fn record(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(&(bytes.len() as u32).to_le_bytes())?;
        self.file.write_all(bytes)
    }

    /// Ends the records; the image is ready for the exec.
    pub fn finish(&mut self) -> io::Result<RawFd> {
        self.file.write_all(&END.to_le_bytes())?;
        self.file.rewind()?;
        Ok(self.file.as_raw_fd())
    }
}

/// The state a successor reads.
pub struct Incoming {
    file: File,
    pub format: u32,
}

impl Incoming {
    /// The image named by `STATE_ENV`, if this process is a successor
    /// (the variable is removed: it is for this image only).
    pub fn take() -> Option<io::Result<Incoming>> {
        let v = std::env::var_os(STATE_ENV)?;
        std::env::remove_var(STATE_ENV);
        let fd: RawFd = match v.to_str().and_then(|s| s.parse().ok()) {
            Some(fd) if fd > 2 => fd,
            _ => return Some(Err(io::Error::from(io::ErrorKind::InvalidInput))),
        };
        Some(Incoming::open(fd))
    }

    fn open(fd: RawFd) -> io::Result<Incoming> {
        set_cloexec(fd, true)?;
        // SAFETY: the descriptor the previous image named for us.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut head = [0u8; 12];
        file.read_exact(&mut head)?;
        if &head[..8] != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a handover image",
            ));
        }
        let format = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        Ok(Incoming { file, format })
    }

    /// The next record into `buf`; None after the last.
    pub fn record<'b>(&mut self, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len);
        if len == END {
            return Ok(None);
        }
        let Some(dst) = buf.get_mut(..len as usize) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record too long",
            ));
        };
        self.file.read_exact(dst)?;
        Ok(Some(dst))
    }
}
