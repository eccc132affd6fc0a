//! Live handover (SIGUSR2): the running process execs the binary at the
//! path it was started from, in place, and the new image goes on serving
//! every session.
//!
//! Why exec in place: procd (and any supervisor that watches a pid)
//! starts a new instance only after the old one has exited, and would
//! take a successor with another pid for a crash. The pid stays, and so
//! does everything the kernel keys by it (the owned table's netlink
//! socket, pf anchors named after the pid).
//!
//! Steps, all-or-nothing:
//! 1. The new binary runs as a *probe* child (`PROBE_ENV`) with the same
//!    options and says which state format it reads. The loop keeps
//!    serving meanwhile; a probe that fails, refuses the options or
//!    does not answer within `PROBE_TIMEOUT` changes nothing.
//! 2. Same format: the state goes into a memfd (the sessions one by one
//!    through a stack buffer: no heap per session), every descriptor to
//!    keep loses close-on-exec, and the process execs. If the exec
//!    fails, close-on-exec comes back and the loop goes on.
//! 3. Another format: a clean restart (421 to each session, the keeper
//!    holds the data connections), said in the log.
//!
//! From inside the chroot and without root: the binary's directory is
//! opened at start-up (before the chroot) and `execveat` runs the file
//! of that name in it, so a replaced file takes effect; CAP_NET_ADMIN
//! crosses the exec as an ambient capability (`privs`).

pub mod wire;

#[cfg(target_os = "linux")]
mod exec;
#[cfg(target_os = "linux")]
pub use exec::{Exec, Image, Incoming, Probe};

/// The state format this binary writes and reads. Bump it with any
/// change to what `save`/`load` write, anywhere.
pub const FORMAT: u32 = 1;
/// Set for the successor: the descriptor of the memfd with the state.
pub const STATE_ENV: &str = "FTP_PROXY_HANDOVER";
/// Set for the probe: answer `PROBE_ANSWER` and the format, then exit.
pub const PROBE_ENV: &str = "FTP_PROXY_PROBE";
pub const PROBE_ANSWER: &str = "ftp-proxy handover format ";
/// How long the probe may take to answer.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the probe said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Format(u32),
    /// It ended without the answer (it refused the options, or is no
    /// ftp-proxy that knows handovers).
    Silent,
    /// The exec of the probe failed with this errno.
    ExecFailed(i32),
}

/// What the probe child writes when its exec fails.
pub const EXEC_FAILED: &str = "exec failed: errno ";

/// Parses the probe's output.
pub fn answer(out: &[u8]) -> Answer {
    let text = std::str::from_utf8(out).unwrap_or("");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
    };
    match (field(PROBE_ANSWER), field(EXEC_FAILED)) {
        (Some(f), _) => Answer::Format(f),
        (None, Some(e)) => Answer::ExecFailed(e as i32),
        (None, None) => Answer::Silent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers() {
        assert_eq!(answer(b"ftp-proxy handover format 1\n"), Answer::Format(1));
        assert_eq!(
            answer(b"noise\nftp-proxy handover format 7\n"),
            Answer::Format(7)
        );
        assert_eq!(answer(b""), Answer::Silent);
        assert_eq!(answer(b"ftp-proxy handover format x\n"), Answer::Silent);
        assert_eq!(answer(b"exec failed: errno 002\n"), Answer::ExecFailed(2));
    }
}
