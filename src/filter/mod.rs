//! Kernel state for data connections, behind one interface: sessions say
//! what to NAT, the backend chosen at compile time says how.

use std::fmt;
use std::io;
use std::net::IpAddr;

#[cfg(target_os = "linux")]
pub mod nft;
#[cfg(target_os = "linux")]
pub use nft::Nft as Backend;

#[cfg(any(target_os = "openbsd", target_os = "freebsd", test))]
pub mod pf;
#[cfg(any(target_os = "openbsd", target_os = "freebsd"))]
pub use pf::Pf as Backend;

/// One data connection as the kernel must translate it: its first packet
/// `src → dst:dport` is sent on to `to:to_port` with source `nat_src`
/// (and source port `nat_sport`, for `-r`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataMap {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: u16,
    pub to: IpAddr,
    pub to_port: u16,
    pub nat_src: IpAddr,
    pub nat_sport: Option<u16>,
    /// The session it belongs to (pf keeps each session's rules in an
    /// anchor of its own).
    pub session: u64,
}

impl DataMap {
    /// PASV/EPSV: client → orig_server:proxy_port becomes
    /// proxy → server:port (ftp-proxy(8)).
    pub fn passive(
        client: IpAddr,
        orig_server: IpAddr,
        proxy_port: u16,
        server: IpAddr,
        port: u16,
        proxy: IpAddr,
        session: u64,
    ) -> DataMap {
        DataMap {
            src: client,
            dst: orig_server,
            dport: proxy_port,
            to: server,
            to_port: port,
            nat_src: proxy,
            nat_sport: None,
            session,
        }
    }

    /// PORT/EPRT: server → proxy:proxy_port becomes
    /// orig_server(:20) → client:port.
    #[allow(clippy::too_many_arguments)]
    pub fn active(
        server: IpAddr,
        proxy: IpAddr,
        proxy_port: u16,
        client: IpAddr,
        port: u16,
        orig_server: IpAddr,
        port20: bool,
        session: u64,
    ) -> DataMap {
        DataMap {
            src: server,
            dst: proxy,
            dport: proxy_port,
            to: client,
            to_port: port,
            nat_src: orig_server,
            nat_sport: port20.then_some(20),
            session,
        }
    }
}

/// How an installation went, when the kernel took the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    Done,
    /// The proxy port is in use for this pair of hosts: pick another.
    PortInUse,
}

#[derive(Debug)]
pub enum FilterError {
    /// The kernel refused a request: what, and the errno.
    Kernel(&'static str, i32),
    Io(&'static str, io::Error),
    /// Another live proxy owns the table.
    InUse(String),
    /// A batch did not fit the message buffer (a bug, not an input).
    Overflow,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::Kernel(what, e) => {
                write!(f, "{what}: {}", io::Error::from_raw_os_error(*e))
            }
            FilterError::Io(what, e) => write!(f, "{what}: {e}"),
            FilterError::InUse(t) => {
                write!(f, "table inet {t} belongs to another running instance (give each its own -n NAME)")
            }
            FilterError::Overflow => f.write_str("netlink batch too large"),
        }
    }
}
