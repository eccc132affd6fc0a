//! ftp-proxy: options → checks → listener and kernel table → daemon →
//! privilege drop → loop.

use ftp_proxy::config::{Config, ConfigError, LogTo, DEV_LOG, USAGE};
use ftp_proxy::event_loop::{Ending, Observers, Proxy};
use ftp_proxy::filter::{Backend, DataPath, FilterError};
use ftp_proxy::intercept::Destinations;
use ftp_proxy::status::query;
use ftp_proxy::status::socket::{self, Bound};
use ftp_proxy::{daemon, net, privs};
use mio::net::UnixListener;
use std::net::SocketAddr;
use std::process::ExitCode;

fn fail(msg: std::fmt::Arguments<'_>) -> ExitCode {
    log::error!("{msg}");
    ExitCode::FAILURE
}

/// The status socket, made before the chroot; None (logged) when it
/// cannot be: the proxy still runs.
fn status_socket(cfg: &Config) -> Option<UnixListener> {
    let path = match &cfg.status_path {
        Some(p) => std::path::PathBuf::from(p),
        None => socket::path_of(&cfg.instance),
    };
    match socket::bind(&path) {
        Ok(Bound::Listening(l)) => {
            let ask = cfg.status_path.as_deref().unwrap_or(&cfg.instance);
            log::info!("status on {} (ftp-proxy -S {ask})", path.display());
            Some(l)
        }
        Ok(Bound::Answered) => {
            log::error!(
                "status socket {}: another running instance answers on it \
                 (one of this name in another network namespace?): no status \
                 for this one; give it its own -n or -s",
                path.display()
            );
            None
        }
        Err(e) => {
            log::error!("status socket {}: {e}: running without one", path.display());
            None
        }
    }
}

/// Conntrack events of the data connections, for their records; None
/// (said at start) where the kernel gives none.
#[cfg(target_os = "linux")]
fn conntrack(cfg: &Config) -> Option<ftp_proxy::conntrack::Conntrack> {
    use ftp_proxy::status::render::Records;
    match ftp_proxy::conntrack::Conntrack::open(cfg.tag, cfg.ports, cfg.max_sessions) {
        Ok(ct) => {
            match ct.records {
                Records::Bytes => {
                    log::info!("data connection records: conntrack events, with byte counts")
                }
                _ => log::info!(target: "notice",
                    "conntrack accounting is off (sysctl net.netfilter.nf_conntrack_acct=0): data connection records carry no byte counts"),
            }
            Some(ct)
        }
        Err(e) => {
            log::info!(target: "notice", "no data connection records: conntrack events: {e}");
            None
        }
    }
}

/// `-l`, or the default: syslog for a daemon, stderr with -d. Connects
/// now, before the chroot; true when lines go to syslog from the start.
fn open_log(cfg: &Config) -> bool {
    let path = match (&cfg.log_to, cfg.foreground) {
        (Some(LogTo::Stderr), _) | (None, true) => return false,
        (Some(LogTo::Syslog(p)), _) => p.as_str(),
        (None, false) => DEV_LOG,
    };
    let tag = format!("ftp-proxy/{}", cfg.instance);
    match ftp_proxy::log::open_syslog(path, &tag) {
        Ok(true) => {}
        Ok(false) => {
            log::warn!("syslog at {path} does not answer yet: lines go to stderr until it does")
        }
        Err(e) => log::warn!("syslog at {path}: {e}"),
    }
    cfg.foreground
}

/// Serves until the end; after a clean restart (a handover the new
/// binary cannot take), starts it afresh in place where that can work.
fn serve(mut proxy: Proxy) -> ExitCode {
    match proxy.run() {
        Ok(Ending::Stopped) => ExitCode::SUCCESS,
        Ok(Ending::Restart) => restart(&proxy),
        Err(e) => fail(format_args!("poll: {e}")),
    }
}

#[cfg(target_os = "linux")]
fn restart(proxy: &Proxy) -> ExitCode {
    match (&proxy.exec, proxy.confined) {
        (Some(exec), false) => {
            let e = exec.exec_keeping(std::iter::empty(), None);
            fail(format_args!(
                "clean restart: cannot start the new binary: {e}"
            ))
        }
        _ => {
            log::warn!(target: "notice", "clean restart: this process runs chrooted without root and cannot start the new binary itself: exiting for the service manager to start it (procd respawns it; rc.d's upgrade starts it)");
            ExitCode::SUCCESS
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn restart(_proxy: &Proxy) -> ExitCode {
    log::warn!(target: "notice", "clean restart: exiting for the service manager to start the new binary");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if query::wanted(&args) {
        return ExitCode::from(query::main(&args));
    }
    let cfg = match Config::parse(args) {
        Ok(c) => c,
        Err(ConfigError::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Bad(why)) => {
            eprintln!("ftp-proxy: {why}");
            eprint!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    // The probe of a live handover: the options are good, and this is
    // the state format this binary reads.
    if std::env::var_os(ftp_proxy::handover::PROBE_ENV).is_some() {
        println!(
            "{}{}",
            ftp_proxy::handover::PROBE_ANSWER,
            ftp_proxy::handover::FORMAT
        );
        return ExitCode::SUCCESS;
    }
    // Errors before daemonizing go to stderr, where the admin sees them.
    ftp_proxy::log::init(cfg.debug_level);
    // The new image of a live handover: everything is in the state.
    #[cfg(target_os = "linux")]
    if let Some(incoming) = ftp_proxy::handover::Incoming::take() {
        return match incoming
            .map_err(|e| e.to_string())
            .and_then(|i| Proxy::resume(cfg, i))
        {
            Ok(proxy) => serve(proxy),
            Err(e) => fail(format_args!(
                "live handover: {e}: exiting (the service manager starts a fresh instance)"
            )),
        };
    }
    if open_log(&cfg) {
        // -d -l syslog: under a service manager, lines go to syslog now.
        ftp_proxy::log::use_syslog();
    }
    let plan = match privs::prepare(cfg.user.as_deref(), cfg.chroot.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(format_args!("{e}")),
    };
    if let Err(e) = privs::raise_nofile(privs::fds_needed(cfg.max_sessions)) {
        return fail(format_args!("{e}"));
    }

    // The binary's directory, opened before any chroot: a handover runs
    // the file of that name in it again.
    #[cfg(target_os = "linux")]
    let exec = match ftp_proxy::handover::Exec::at_start() {
        Ok(e) => Some(e),
        Err(e) => {
            log::warn!("cannot find this binary again ({e}): SIGUSR2 will not hand over");
            None
        }
    };
    let confined = matches!(plan, privs::Plan::Root { .. });

    let addr = SocketAddr::new(cfg.listen_addr, cfg.listen_port);
    let listener = match net::listen(addr) {
        Ok(l) => l,
        Err(e) => return fail(format_args!("cannot listen on {addr}: {e}")),
    };
    // For nft `tproxy` interception; redirect works without it.
    if let Err(e) = ftp_proxy::net::set_transparent(&listener, cfg.ipv6) {
        log::debug!("listener not transparent (tproxy unavailable): {e}");
    }
    let filter = match Backend::open(&cfg) {
        Ok(f) => f,
        Err(FilterError::Kernel(what, libc::EPERM)) => {
            return fail(format_args!(
                "nftables {what}: permission denied: run as root or with CAP_NET_ADMIN"
            ))
        }
        Err(e) => return fail(format_args!("nftables: {e}")),
    };
    let destinations = match Destinations::open(&cfg) {
        Ok(d) => d,
        Err(e) => return fail(format_args!("route lookups: {e}")),
    };
    let observers = Observers {
        status: status_socket(&cfg),
        #[cfg(target_os = "linux")]
        conntrack: conntrack(&cfg),
    };
    // From here on a failure still reaches the terminal and exit status:
    // the parent waits for `ready`.
    let detached = match cfg.foreground {
        true => None,
        false => match daemon::detach() {
            Ok(d) => Some(d),
            Err(e) => return fail(format_args!("daemon: {e}")),
        },
    };
    if let Err(e) = privs::apply(&plan) {
        return fail(format_args!("dropping privileges: {e}"));
    }
    log::info!(target: "notice", "dropped privileges: {plan}");
    let owned = if filter.owned() {
        " (owned: the kernel drops it with the process)"
    } else {
        ""
    };
    log::info!(target: "notice", "listening on {addr}, table inet {}{owned}, max {} sessions, proxy ports {}", filter.table(), cfg.max_sessions, cfg.ports);
    if let Some(a) = cfg.advertised {
        log::info!(target: "notice", "passive replies name {a} (-e), not {}", cfg.listen_addr);
    }
    if cfg.ports.ports() < cfg.max_sessions {
        log::warn!("-E {}: {} ports for up to {} sessions; sessions of one client to one server beyond that get 425", cfg.ports, cfg.ports.ports(), cfg.max_sessions);
    }
    let mut proxy = match Proxy::new(cfg, listener, filter, destinations, observers) {
        Ok(p) => p,
        Err(e) => return fail(format_args!("start-up: {e}")),
    };
    proxy.confined = confined;
    #[cfg(target_os = "linux")]
    {
        proxy.exec = exec;
    }
    if let Some(d) = detached {
        ftp_proxy::log::use_syslog();
        d.ready();
    }
    serve(proxy)
}
