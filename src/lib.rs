//! ftp-proxy: an FTP proxy for firewalls. The control connection passes
//! through this process; data connections are NATed by the kernel.
//!
//! The data path reads top to bottom: `event_loop` → `session` → `ftp`
//! → `filter`.

#[cfg(target_os = "linux")]
pub mod addr_watch;
pub mod config;
#[cfg(target_os = "linux")]
pub mod conntrack;
pub mod daemon;
pub mod event_loop;
pub mod filter;
pub mod ftp;
#[cfg(target_os = "linux")]
pub mod ha;
pub mod handover;
pub mod intercept;
pub mod log;
pub mod net;
pub mod ports;
pub mod privs;
pub mod readiness;
#[cfg(target_os = "linux")]
pub mod route;
pub mod self_addrs;
pub mod session;
pub mod signals;
pub mod slab;
pub mod status;
pub mod syslog;
