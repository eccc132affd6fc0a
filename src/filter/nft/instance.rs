//! Several proxies on one host: each instance has a table of its own,
//! claims its name while it lives, and between two instances a tiny table
//! keeps the kernel's NAT hooks registered so that restarts do not cut
//! data connections already translated.

use crate::config::NAME_MAX;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Every instance's table starts with this; the keeper does not.
pub const TABLE_PREFIX: &str = "ftp-proxy-";

/// Holds one nat chain with one rule that reads conntrack and decides
/// nothing. Connections set up earlier stay translated only while some
/// nat chain of their family is registered *and* some rule uses conntrack
/// (the kernel registers its conntrack hooks only for such users); on a
/// router where the proxy's table was the only one, a transfer in flight
/// would lose its NAT (and be reset) the moment that table goes. It is created in
/// the batch that removes a table at a clean exit and removed once the next
/// instance's table (its own nat chains) is in place: through a restart
/// the hooks never drop, as pf's states outlive OpenBSD's proxy.
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
/// lives however it ends: an abstract unix socket named after the table.
/// Abstract names live in the network namespace, as tables do, and go
/// with the last descriptor. A stale table (from a crash where the kernel
/// has no owned tables) is only ever removed with the claim in hand, so
/// no instance removes another live instance's table.
pub struct Claim {
    _fd: OwnedFd,
}

impl Claim {
    /// The claim on `table`; None when a live instance holds it.
    pub fn take(table: &str) -> io::Result<Option<Claim>> {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
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
        use std::os::fd::AsRawFd;
        // SAFETY: sa is a valid sockaddr_un; len covers what was written.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(Some(Claim { _fd: fd }));
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(None),
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
        let first = Claim::take(&name).unwrap().expect("free name");
        assert!(Claim::take(&name).unwrap().is_none(), "claimed twice");
        drop(first);
        assert!(Claim::take(&name).unwrap().is_some(), "not released");
    }
}
