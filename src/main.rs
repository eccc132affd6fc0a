//! ftp-proxy: options → checks → listener and kernel table → daemon →
//! privilege drop → loop.

use ftp_proxy::config::{Config, ConfigError, USAGE};
use ftp_proxy::event_loop::Proxy;
use ftp_proxy::filter::{Backend, DataPath, FilterError};
use ftp_proxy::intercept::Destinations;
use ftp_proxy::{daemon, net, privs};
use std::net::SocketAddr;
use std::process::ExitCode;

fn fail(msg: std::fmt::Arguments<'_>) -> ExitCode {
    log::error!("{msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cfg = match Config::parse(std::env::args().skip(1)) {
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
    // Errors before daemonizing go to stderr, where the admin sees them.
    ftp_proxy::log::init(cfg.debug_level, false);
    let plan = match privs::prepare(cfg.user.as_deref(), cfg.chroot.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(format_args!("{e}")),
    };
    if let Err(e) = privs::raise_nofile(privs::fds_needed(cfg.max_sessions)) {
        return fail(format_args!("{e}"));
    }

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
    log::info!(target: "notice", "listening on {addr}, table inet {}{owned}, max {} sessions", filter.table(), cfg.max_sessions);
    let mut proxy = match Proxy::new(cfg, listener, filter, destinations) {
        Ok(p) => p,
        Err(e) => return fail(format_args!("start-up: {e}")),
    };
    if let Some(d) = detached {
        ftp_proxy::log::use_syslog();
        d.ready();
    }
    match proxy.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format_args!("poll: {e}")),
    }
}
