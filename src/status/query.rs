//! `ftp-proxy -S [-j] [NAME|PATH ...]`: asks running instances for their
//! status and prints it. Without names, every instance in `RUN_DIR`.

use super::socket::{path_of, RUN_DIR};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const USAGE: &str = "usage: ftp-proxy -S [-j] [name | socket-path ...]\n";
/// A daemon drops a query it cannot answer within 5 s; wait a bit longer.
const WAIT: Duration = Duration::from_secs(8);

/// Whether a command line asks for the status (rather than a daemon).
pub fn wanted(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-S" || a == "-jS" || a == "-Sj")
}

fn ask(path: &Path, json: bool) -> io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(WAIT))?;
    s.set_write_timeout(Some(WAIT))?;
    s.write_all(if json { b"json\n" } else { b"text\n" })?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// Every socket in `RUN_DIR`, by name.
fn running() -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(RUN_DIR)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    v.sort();
    Ok(v)
}

fn name_of(p: &Path) -> String {
    p.file_stem().map_or_else(
        || p.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// Runs the query; the process's exit code.
pub fn main(args: &[String]) -> u8 {
    let mut o = getopts::Options::new();
    o.optflag("S", "", "status");
    o.optflag("j", "", "json");
    o.optflag("h", "", "help");
    let m = match o.parse(args) {
        Ok(m) if !m.opt_present("h") => m,
        Ok(_) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprint!("ftp-proxy: {e}\n{USAGE}");
            return 1;
        }
    };
    let json = m.opt_present("j");
    let all = m.free.is_empty();
    let paths: Vec<PathBuf> = match all {
        true => match running() {
            Ok(v) => v,
            // No run directory: nothing ever ran; for scripts, no instance.
            Err(e) if json && e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                eprintln!("ftp-proxy: {RUN_DIR}: {e}: no instance is running");
                return 1;
            }
        },
        false => m.free.iter().map(|n| path_of(n)).collect(),
    };

    let mut failed = false;
    let mut out = io::stdout().lock();
    if json {
        let _ = out.write_all(b"{\"instances\":[");
    }
    let mut k = 0;
    for p in &paths {
        let answer = ask(p, json);
        // Listing all: a socket nobody answers on is left by an instance
        // that ended (its socket cannot be removed from inside a chroot).
        if all && matches!(&answer, Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED)) {
            continue;
        }
        k += 1;
        match answer {
            Ok(answer) if json => {
                let doc = answer.strip_suffix(b"\n").unwrap_or(&answer);
                let _ = out.write_all(if k == 1 { b"" } else { b"," });
                let _ = out.write_all(doc);
            }
            Ok(answer) => {
                let _ = out.write_all(if k == 1 { b"" } else { b"\n" });
                let _ = out.write_all(&answer);
            }
            Err(e) => {
                failed = true;
                let why = match e.raw_os_error() {
                    Some(libc::ECONNREFUSED | libc::ENOENT) => "not running".to_string(),
                    _ => e.to_string(),
                };
                if json {
                    let _ = write!(
                        out,
                        "{}{{\"instance\":{{\"name\":{}}},\"error\":{}}}",
                        if k == 1 { "" } else { "," },
                        super::render::Json(&name_of(p)),
                        super::render::Json(&why)
                    );
                }
                eprintln!("ftp-proxy: {}: {why}", p.display());
            }
        }
    }
    if json {
        let _ = out.write_all(b"]}\n");
    }
    let _ = out.flush();
    if all && k == 0 && !json {
        eprintln!("ftp-proxy: no instance is running (none answers in {RUN_DIR})");
        return 1;
    }
    u8::from(failed)
}
