//! Least privilege. The proxy needs root (or CAP_NET_ADMIN) only to open
//! its listener and its netlink socket and to keep changing the packet
//! filter; everything else goes. As root: chroot to an empty directory,
//! become an unprivileged user, keep only CAP_NET_ADMIN, set no_new_privs.
//! Started as a user that holds CAP_NET_ADMIN (procd on OpenWrt): keep
//! only that capability.
//!
//! `prepare` does what can fail for a reason an admin must fix (the user,
//! the directory) while errors still reach the terminal; `apply` makes the
//! calls after daemonizing.

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};

/// The users `prepare` looks for, in order, without `-u`: OpenBSD's
/// `_ftp_proxy`; on FreeBSD `proxy`, which its own ftp-proxy runs as (and
/// pfSense and OPNsense ship); then `nobody`.
#[cfg(target_os = "freebsd")]
pub const DEFAULT_USERS: &[&str] = &["_ftp_proxy", "proxy", "nobody"];
#[cfg(not(target_os = "freebsd"))]
pub const DEFAULT_USERS: &[&str] = &["_ftp_proxy", "nobody"];
pub const DEFAULT_CHROOT: &str = "/var/empty";

#[cfg(target_os = "linux")]
const CAP_NET_ADMIN: u32 = 12;

/// What `apply` will do.
#[derive(Debug)]
pub enum Plan {
    /// Started as root: chroot, switch user, keep CAP_NET_ADMIN.
    Root {
        dir: CString,
        dir_name: String,
        user: String,
        uid: u32,
        gid: u32,
        /// From /etc/group, for the log; supplementary groups are dropped.
        group: String,
    },
    /// Started as a user holding CAP_NET_ADMIN: drop every other one.
    Capable,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Root {
                dir_name,
                user,
                uid,
                gid,
                group,
                ..
            } => write!(
                f,
                "user {user} ({uid}), group {group} ({gid}), chroot {dir_name}, only CAP_NET_ADMIN"
            ),
            Plan::Capable => f.write_str("not root: only CAP_NET_ADMIN kept, no chroot"),
        }
    }
}

#[derive(Debug)]
pub struct PrivError(pub String);

impl fmt::Display for PrivError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: String) -> Result<T, PrivError> {
    Err(PrivError(msg))
}

fn os(what: &str) -> PrivError {
    PrivError(format!("{what}: {}", io::Error::last_os_error()))
}

/// A user's uid and gid from passwd(5) text.
pub fn parse_passwd(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// The name of group `gid` from group(5) text.
pub fn parse_group(text: &str, gid: u32) -> Option<&str> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()?.parse::<u32>().ok()? == gid).then_some(name)
    })
}

/// Finds the user in /etc/passwd directly: the binary may be static, so
/// no NSS. `user` given: that one or an error; else the defaults.
fn lookup(user: Option<&str>) -> Result<(String, u32, u32), PrivError> {
    let text = fs::read_to_string("/etc/passwd")
        .map_err(|e| PrivError(format!("cannot read /etc/passwd: {e}")))?;
    match user {
        Some(u) => pick_user(&text, &[u]),
        None => pick_user(&text, DEFAULT_USERS),
    }
}

/// The first of `names` in passwd `text`, if it is unprivileged.
fn pick_user(text: &str, names: &[&str]) -> Result<(String, u32, u32), PrivError> {
    for name in names {
        if let Some((uid, gid)) = parse_passwd(text, name) {
            unprivileged(name, uid, gid)?;
            return Ok((name.to_string(), uid, gid));
        }
    }
    err(format!(
        "no user {} in /etc/passwd: create it or pick one with -u",
        names.join(" or ")
    ))
}

/// Refuses a user that keeps root's powers by its uid or its group (gid
/// 0 owns much of the system's files).
fn unprivileged(name: &str, uid: u32, gid: u32) -> Result<(), PrivError> {
    match (uid, gid) {
        (0, _) => err(format!(
            "user {name} is root: pick an unprivileged user (-u)"
        )),
        (_, 0) => err(format!(
            "user {name} has group 0 (root): pick an unprivileged user (-u)"
        )),
        _ => Ok(()),
    }
}

/// The chroot directory: created (root, 0755) if missing; refused if
/// others could write into it.
fn check_dir(dir: &str) -> Result<(), PrivError> {
    if fs::metadata(dir).is_err() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| PrivError(format!("cannot create chroot directory {dir}: {e}")))?;
    }
    let m = fs::metadata(dir).map_err(|e| PrivError(format!("{dir}: {e}")))?;
    if !m.is_dir() {
        return err(format!("chroot {dir}: not a directory"));
    }
    if m.uid() != 0 || m.mode() & 0o022 != 0 {
        return err(format!(
            "chroot {dir}: must be owned by root and writable only by root (is uid {}, mode {:o})",
            m.uid(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Checks that the proxy may run and decides how it will drop privileges.
pub fn prepare(user: Option<&str>, dir: Option<&str>) -> Result<Plan, PrivError> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let dir_name = dir.unwrap_or(DEFAULT_CHROOT).to_string();
        check_dir(&dir_name)?;
        let (user, uid, gid) = lookup(user)?;
        let groups = fs::read_to_string("/etc/group").unwrap_or_default();
        let group = parse_group(&groups, gid).unwrap_or("?").to_string();
        let dir = CString::new(dir_name.as_bytes())
            .map_err(|_| PrivError(format!("chroot {dir_name}: contains NUL")))?;
        return Ok(Plan::Root {
            dir,
            dir_name,
            user,
            uid,
            gid,
            group,
        });
    }
    if user.is_some() || dir.is_some() {
        return err("-u and -c need ftp-proxy to be started as root".into());
    }
    caps::require_net_admin()?;
    Ok(Plan::Capable)
}

/// Drops privileges as planned. Call after daemonizing, before serving.
pub fn apply(plan: &Plan) -> Result<(), PrivError> {
    if let Plan::Root {
        dir,
        dir_name,
        user,
        uid,
        gid,
        ..
    } = plan
    {
        caps::keep_across_setuid()?;
        // SAFETY: plain syscalls with valid, NUL-terminated arguments.
        unsafe {
            if libc::chroot(dir.as_ptr()) < 0 {
                return Err(os(&format!("chroot {dir_name}")));
            }
            if libc::chdir(c"/".as_ptr()) < 0 {
                return Err(os("chdir /"));
            }
            if libc::setgroups(1, gid) < 0 {
                return Err(os("setgroups"));
            }
            if libc::setresgid(*gid, *gid, *gid) < 0 {
                return Err(os("setresgid"));
            }
            if libc::setresuid(*uid, *uid, *uid) < 0 {
                return Err(os(&format!("setresuid {user}")));
            }
            // Paranoia: root must be gone for good.
            if libc::setuid(0) == 0 {
                return err("could regain root after dropping it".into());
            }
        }
    }
    caps::only_net_admin()?;
    caps::no_new_privs()
}

/// Descriptors the proxy may need: client and server per session, with
/// one spare each, plus the listener, poll, signals, netlink, syslog and
/// stdio.
pub fn fds_needed(max_sessions: u32) -> u64 {
    3 * u64::from(max_sessions) + 16
}

/// Raises RLIMIT_NOFILE to `need` (the hard limit too, if allowed).
pub fn raise_nofile(need: u64) -> Result<(), PrivError> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } < 0 {
        return Err(os("getrlimit"));
    }
    // rlim_t is 32 bits on some targets (32-bit glibc).
    #[allow(clippy::unnecessary_cast)]
    if r.rlim_cur as u64 >= need {
        return Ok(());
    }
    let want = libc::rlimit {
        rlim_cur: need as libc::rlim_t,
        rlim_max: r.rlim_max.max(need as libc::rlim_t),
    };
    // SAFETY: want is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } < 0 {
        return err(format!(
            "need {need} file descriptors for the session maximum, limit is {} (hard {}): {}",
            r.rlim_cur,
            r.rlim_max,
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
mod caps {
    //! Linux capabilities through capget/capset (version 3: two words).
    use super::{err, os, PrivError, CAP_NET_ADMIN};

    const VERSION_3: u32 = 0x2008_0522;
    const NET_ADMIN: u32 = 1 << CAP_NET_ADMIN;

    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    fn get() -> Result<[Data; 2], PrivError> {
        let mut h = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut d = [Data::default(); 2];
        // SAFETY: header and two data words, as version 3 requires.
        if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } < 0 {
            return Err(os("capget"));
        }
        Ok(d)
    }

    fn set(d: [Data; 2]) -> Result<(), PrivError> {
        let mut h = Header {
            version: VERSION_3,
            pid: 0,
        };
        // SAFETY: as in get.
        if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } < 0 {
            return Err(os("capset"));
        }
        Ok(())
    }

    /// A non-root start must hold CAP_NET_ADMIN (at least permitted).
    pub fn require_net_admin() -> Result<(), PrivError> {
        let d = get()?;
        if d[0].permitted & NET_ADMIN == 0 {
            return err(
                "ftp-proxy must be started as root or with CAP_NET_ADMIN (it programs nftables)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Root about to setuid: keep the permitted set, and take every
    /// capability but CAP_NET_ADMIN out of the bounding set for good.
    pub fn keep_across_setuid() -> Result<(), PrivError> {
        // SAFETY: prctl with integer arguments.
        unsafe {
            if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
                return Err(os("PR_SET_KEEPCAPS"));
            }
            for cap in 0..64 {
                if cap != CAP_NET_ADMIN
                    && libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0
                    && io_errno() != libc::EINVAL
                {
                    return Err(os("PR_CAPBSET_DROP"));
                }
            }
        }
        Ok(())
    }

    fn io_errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// CAP_NET_ADMIN alone, in every set, ambient too: a live handover
    /// execs the binary again as the unprivileged user, and the new
    /// image needs it (netlink checks the sender of every message). The
    /// proxy execs nothing else.
    pub fn only_net_admin() -> Result<(), PrivError> {
        let only = Data {
            effective: NET_ADMIN,
            permitted: NET_ADMIN,
            inheritable: NET_ADMIN,
        };
        set([only, Data::default()])?;
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
            if libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ) < 0
            {
                return Err(os("PR_CAP_AMBIENT_CLEAR_ALL"));
            }
            // Kernels before 4.3 have no ambient set: the handover then
            // finds the new image without the capability and says so.
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                CAP_NET_ADMIN as libc::c_ulong,
                0,
                0,
            );
        }
        let d = get()?;
        if d[0].effective != NET_ADMIN || d[1].effective != 0 || d[0].permitted != NET_ADMIN {
            return err("capabilities other than CAP_NET_ADMIN remain".into());
        }
        Ok(())
    }

    /// No exec can gain privileges again (setuid bits, file caps).
    pub fn no_new_privs() -> Result<(), PrivError> {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
            return Err(os("PR_SET_NO_NEW_PRIVS"));
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod caps {
    //! No capabilities: root is required and dropped by setuid alone; pf
    //! changes go through /dev/pf, opened before the drop.
    use super::{err, PrivError};

    pub fn require_net_admin() -> Result<(), PrivError> {
        err("ftp-proxy must be started as root".into())
    }

    pub fn keep_across_setuid() -> Result<(), PrivError> {
        Ok(())
    }

    pub fn only_net_admin() -> Result<(), PrivError> {
        Ok(())
    }

    /// The process never execs; pledge(2) would be the OpenBSD way.
    pub fn no_new_privs() -> Result<(), PrivError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let t = "root:x:0:0:root:/root:/bin/sh\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                 broken:x:abc:1::/:\n\
                 _ftp_proxy:*:77:77:ftp-proxy:/var/empty:/sbin/nologin\n";
        assert_eq!(parse_passwd(t, "nobody"), Some((65534, 65534)));
        assert_eq!(parse_passwd(t, "_ftp_proxy"), Some((77, 77)));
        assert_eq!(parse_passwd(t, "broken"), None);
        assert_eq!(parse_passwd(t, "nobod"), None);
        assert_eq!(parse_passwd(t, "missing"), None);
        let g = "root:x:0:\nnogroup:x:65534:\nbad:x:x:\n";
        assert_eq!(parse_group(g, 65534), Some("nogroup"));
        assert_eq!(parse_group(g, 7), None);
    }

    #[test]
    fn default_users_in_order() {
        // FreeBSD's base system has `proxy` (its ftp-proxy's user), and
        // pfSense and OPNsense keep it; no `_ftp_proxy` there.
        let freebsd = "root:*:0:0::/root:/bin/sh\n\
                       nobody:*:65534:65534::/nonexistent:/usr/sbin/nologin\n\
                       proxy:*:62:62:Packet Filter pseudo-user:/nonexistent:/usr/sbin/nologin\n";
        let want = if cfg!(target_os = "freebsd") {
            ("proxy", 62)
        } else {
            ("nobody", 65534)
        };
        let got = pick_user(freebsd, DEFAULT_USERS).unwrap();
        assert_eq!((got.0.as_str(), got.1), want);
        assert_eq!(
            pick_user(freebsd, &["_ftp_proxy", "proxy", "nobody"])
                .unwrap()
                .0,
            "proxy"
        );
        let openbsd = format!("{freebsd}_ftp_proxy:*:71:71::/nonexistent:/sbin/nologin\n");
        assert_eq!(pick_user(&openbsd, DEFAULT_USERS).unwrap().1, 71);
        let e = pick_user("root:*:0:0::/:/bin/sh\n", &["root"]).unwrap_err();
        assert!(e.0.contains("is root"), "{}", e.0);
        let e = pick_user("", DEFAULT_USERS).unwrap_err();
        assert!(e.0.contains("no user _ftp_proxy or"), "{}", e.0);
    }

    #[test]
    fn root_user_and_root_group_are_refused() {
        assert!(unprivileged("x", 0, 100).is_err());
        assert!(unprivileged("x", 100, 0).is_err());
        assert!(unprivileged("x", 65534, 65534).is_ok());
    }

    #[test]
    fn descriptors_fit_the_session_maximum() {
        assert_eq!(fds_needed(500), 1516);
        assert!(fds_needed(1) > 3);
    }
}
