//! Where an instance's status socket lives, and binding it so that no
//! other local user can take its place or read it.
//!
//! The socket is `RUN_DIR/NAME.sock` (or `-s PATH`), mode 0600: only root
//! and the user the daemon starts as can connect. It is made before the
//! chroot and the privilege drop; the daemon keeps the listening socket.
//! Its directory must be owned by root or that user and writable by no
//! one else, so nobody else can put a socket there first or swap it.

use mio::net::UnixListener;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub const RUN_DIR: &str = "/var/run/ftp-proxy";

/// The socket of instance `name`, or `name` itself when it is a path.
pub fn path_of(name: &str) -> PathBuf {
    match name.contains('/') {
        true => PathBuf::from(name),
        false => Path::new(RUN_DIR).join(format!("{name}.sock")),
    }
}

/// What binding found.
pub enum Bound {
    Listening(UnixListener),
    /// A running process answers on the path: another instance of this
    /// name (in another network namespace, where instance names do not
    /// clash). This one then runs without a status socket.
    Answered,
}

fn refuse<T>(what: String) -> io::Result<T> {
    Err(io::Error::new(io::ErrorKind::PermissionDenied, what))
}

/// The directory must be a real directory (not a link), owned by root or
/// by us, and writable by nobody else.
fn check_dir(dir: &Path, euid: u32) -> io::Result<()> {
    let m = std::fs::symlink_metadata(dir)?;
    if !m.file_type().is_dir() {
        return refuse(format!("{}: not a directory", dir.display()));
    }
    if m.uid() != 0 && m.uid() != euid {
        return refuse(format!(
            "{}: owned by uid {}, not by root or this user",
            dir.display(),
            m.uid()
        ));
    }
    if m.permissions().mode() & 0o022 != 0 {
        return refuse(format!(
            "{}: writable by group or others (mode {:o})",
            dir.display(),
            m.permissions().mode() & 0o7777
        ));
    }
    Ok(())
}

/// Binds the status socket at `path`, making `RUN_DIR` when it is missing.
pub fn bind(path: &Path) -> io::Result<Bound> {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir == Path::new(RUN_DIR) && std::fs::symlink_metadata(dir).is_err() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    check_dir(dir, euid)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Ok(Bound::Answered),
            // Left by an instance that ended: nobody answers.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => std::fs::remove_file(path)?,
            Err(e) => return Err(e),
        },
        Ok(_) => return refuse(format!("{}: exists and is not a socket", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The socket is born 0600: no moment at which others could connect.
    // SAFETY: umask only swaps the process's mask; single-threaded here.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Bound::Listening(listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str, mode: u32) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ftp-proxy-status-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        d
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(path_of("lan"), Path::new("/var/run/ftp-proxy/lan.sock"));
        assert_eq!(path_of("/tmp/x.sock"), Path::new("/tmp/x.sock"));
    }

    #[test]
    fn binds_0600_replaces_a_stale_socket_and_yields_to_a_live_one() {
        let d = dir("bind", 0o700);
        let p = d.join("t.sock");
        let Ok(Bound::Listening(l)) = bind(&p) else {
            panic!("not bound")
        };
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            matches!(bind(&p), Ok(Bound::Answered)),
            "a live socket was replaced"
        );
        drop(l);
        assert!(
            matches!(bind(&p), Ok(Bound::Listening(_))),
            "stale socket not replaced"
        );
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, b"x").unwrap();
        assert!(bind(&p).is_err(), "a plain file was removed");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        let d = dir("open", 0o777);
        let e = bind(&d.join("t.sock"))
            .err()
            .expect("bound in a 0777 directory");
        assert!(e.to_string().contains("writable"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
