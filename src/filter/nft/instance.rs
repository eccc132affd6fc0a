//! Several proxies on one host: each instance has a table of its own,
//! claims its name while it lives, and between two instances a tiny table
//! keeps the kernel's NAT hooks registered so that restarts do not cut
//! data connections already translated.

use crate::config::NAME_MAX;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Every instance's table starts with this; the keeper does not.
pub const TABLE_PREFIX: &str = "ftp-proxy-";

/// Holds one nat chain with one rule that reads conntrack and decides
/// nothing. Connections set up earlier stay translated only while some
/// nat chain of their family is registered *and* some rule uses conntrack
/// (the kernel registers its conntrack hooks only for such users); on a
/// router where the proxy's table was the only one, a transfer in flight
/// would lose its NAT (and be reset) the moment that table goes. Every start
/// makes it (again) and no exit removes it: through a restart, an upgrade
/// and a crash (`kill -9`) the hooks never drop, as pf's states outlive
/// OpenBSD's proxy. It decides nothing; the package's removal deletes it.
pub const KEEPER: &str = "ftp-proxy_hooks";
/// The keeper's one chain.
pub const KEEPER_CHAIN: &str = "hold";

pub type TableName = heapless::String<{ TABLE_PREFIX.len() + NAME_MAX }>;

/// The table of instance `name` (see `config::Config::instance`).
pub fn table_name(name: &str) -> TableName {
    let mut t = TableName::new();
    // Cannot fail: the capacity is the prefix and the longest name.
    let _ = t.push_str(TABLE_PREFIX);
    let _ = t.push_str(name);
    t
}

/// A live instance's hold on its table name, for as long as the process
/// lives however it ends: a listening abstract unix socket named after
/// the table. Abstract names live in the network namespace, as tables do,
/// and go with the last descriptor. A stale table (from a crash where the
/// kernel has no owned tables) is only ever removed with the claim in
/// hand, so no instance removes another live instance's table.
///
/// Abstract names have no permissions: any local user can bind one. So a
/// name that is taken counts as a live instance's only when its holder
/// listens (instances do) and listened as root or as the user this
/// process runs as (SO_PEERCRED gives the credentials it had then, the
/// privileges an instance has before it drops them). Any other holder is
/// a squatter, which holds no table (it could not make one), so the start
/// goes on without the claim rather than letting it keep the instance
/// down. What is left: two starts of one name at once while a squatter
/// holds it may both go on; with owned tables the kernel still refuses
/// the second (Linux 5.12+).
pub struct Claim {
    _fd: OwnedFd,
}

/// The outcome of taking a claim.
pub enum Taken {
    Claimed(Claim),
    /// A live instance (pid, uid as it listened) holds the name.
    Instance {
        pid: i32,
        uid: u32,
    },
    /// Someone else holds it: `uid` when it listens, None when it only
    /// bound the name.
    Squatted {
        pid: i32,
        uid: Option<u32>,
    },
}

fn claim_address(table: &str) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: a zeroed sockaddr_un is valid.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // sun_path[0] = 0: the abstract namespace.
    let name = b"ftp-proxy/";
    let path = name.iter().chain(table.as_bytes());
    let room = sa.sun_path.len() - 1;
    for (dst, b) in sa.sun_path[1..].iter_mut().zip(path) {
        *dst = *b as libc::c_char;
    }
    let used = (name.len() + table.len()).min(room);
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + used;
    (sa, len as libc::socklen_t)
}

fn unix_socket() -> io::Result<OwnedFd> {
    let flags = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Who holds the claim address: connects (without blocking) and asks the
/// kernel for the listener's credentials.
fn holder(table: &str) -> io::Result<Taken> {
    let fd = unix_socket()?;
    let (sa, len) = claim_address(table);
    // SAFETY: sa is a valid sockaddr_un of length len.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if r != 0 {
        return match io::Error::last_os_error() {
            // Bound, not listening: no instance does that.
            e if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                Ok(Taken::Squatted { pid: 0, uid: None })
            }
            // A full backlog: a listener that takes no connections, as
            // instances do not; it cannot be told apart, so it stands.
            e if e.raw_os_error() == Some(libc::EAGAIN) => Ok(Taken::Instance { pid: 0, uid: 0 }),
            e => Err(e),
        };
    }
    // SAFETY: a zeroed ucred is valid.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut clen = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and clen describe a writable ucred.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut clen,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    Ok(match cred.uid == 0 || cred.uid == me {
        true => Taken::Instance {
            pid: cred.pid,
            uid: cred.uid,
        },
        false => Taken::Squatted {
            pid: cred.pid,
            uid: Some(cred.uid),
        },
    })
}

impl Claim {
    pub fn fd(&self) -> std::os::fd::RawFd {
        self._fd.as_raw_fd()
    }

    /// The claim a previous image of this process held (a handover).
    pub fn adopt(fd: OwnedFd) -> Claim {
        Claim { _fd: fd }
    }

    /// The claim on `table`, or who holds it.
    pub fn take(table: &str) -> io::Result<Taken> {
        let fd = unix_socket()?;
        let (sa, len) = claim_address(table);
        // SAFETY: sa is a valid sockaddr_un; len covers what was written.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if r == 0 {
            // Listening is what marks an instance's claim (see `holder`).
            // SAFETY: listen on a bound socket of ours.
            if unsafe { libc::listen(fd.as_raw_fd(), 8) } != 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(Taken::Claimed(Claim { _fd: fd }));
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EADDRINUSE) => holder(table),
            e => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(table_name("198.18.1.1-8021"), "ftp-proxy-198.18.1.1-8021");
        let longest = "a".repeat(NAME_MAX);
        assert_eq!(table_name(&longest).len(), TABLE_PREFIX.len() + NAME_MAX);
        assert!(!KEEPER.starts_with(TABLE_PREFIX));
    }

    #[test]
    fn a_claim_is_exclusive_until_dropped() {
        let name = format!("unit-test-{}", std::process::id());
        let Ok(Taken::Claimed(first)) = Claim::take(&name) else {
            panic!("free name not claimed");
        };
        // SAFETY: getpid and geteuid cannot fail.
        let (pid, uid) = unsafe { (libc::getpid(), libc::geteuid()) };
        match Claim::take(&name) {
            Ok(Taken::Instance { pid: p, uid: u }) => assert_eq!((p, u), (pid, uid)),
            _ => panic!("claimed twice"),
        }
        drop(first);
        assert!(
            matches!(Claim::take(&name), Ok(Taken::Claimed(_))),
            "not released"
        );
    }

    #[test]
    fn a_name_bound_but_not_listened_on_is_squatted() {
        let name = format!("unit-squat-{}", std::process::id());
        let fd = unix_socket().unwrap();
        let (sa, len) = claim_address(&name);
        // SAFETY: a valid sockaddr_un of length len.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        assert_eq!(r, 0);
        assert!(matches!(
            Claim::take(&name),
            Ok(Taken::Squatted { uid: None, .. })
        ));
    }
}
