//! Kernel state for data connections, behind one interface: sessions say
//! what to NAT, the backend chosen at compile time says how.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

mod mappings;
pub use mappings::Mappings;

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

    pub fn save(&self, w: &mut crate::handover::wire::Writer) {
        w.ip(self.src);
        w.ip(self.dst);
        w.u16(self.dport);
        w.ip(self.to);
        w.u16(self.to_port);
        w.ip(self.nat_src);
        w.u32(self.nat_sport.map_or(u32::MAX, u32::from));
        w.u64(self.session);
    }

    pub fn load(r: &mut crate::handover::wire::Reader) -> Option<DataMap> {
        Some(DataMap {
            src: r.ip()?,
            dst: r.ip()?,
            dport: r.u16()?,
            to: r.ip()?,
            to_port: r.u16()?,
            nat_src: r.ip()?,
            nat_sport: match r.u32()? {
                u32::MAX => None,
                p => Some(u16::try_from(p).ok()?),
            },
            session: r.u64()?,
        })
    }
}

/// How a kernel keeps a mapping to one connection (invariant 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OneShot {
    /// The kernel uses the mapping up with the first packet that takes
    /// it: nf_tables `dynset delete`, pf's `once` rule (OpenBSD).
    Kernel,
    /// The proxy removes the mapping once the kernel shows a state made
    /// by it, looking every `refresh_every`: a second connection within
    /// that window is still possible (FreeBSD's pf has no `once`).
    Polled,
    /// Nothing uses it up: it admits connections (one at a time, pf's
    /// `max-states 1`) until it expires or is replaced (kernels before
    /// nf_tables' dynset delete).
    Replaced,
}

impl OneShot {
    pub fn name(self) -> &'static str {
        match self {
            OneShot::Kernel => "kernel",
            OneShot::Polled => "polled",
            OneShot::Replaced => "replaced",
        }
    }
}

/// The contract between a session and the kernel: the one interface the
/// session and the event loop use, which each backend (nft on Linux, pf
/// on the BSDs) implements.
///
/// - A mapping admits the first packet of one connection from exactly
///   `src` to exactly `dst:dport`, and translates it; how it is kept to
///   one connection is `one_shot`.
/// - `install` replaces the session's previous mapping in the same kernel
///   transaction. Sessions reach it through `Mappings`, which knows the
///   keys sessions hold and never asks for one another session holds;
///   `PortInUse` is the kernel finding the key taken all the same (a
///   stale element of a table without the owner flag).
/// - A mapping lives until used, replaced or removed (`remove` at
///   session end); where elements carry a timeout, `refresh` keeps them.
/// - What a crash leaves: `owned` says whether the kernel drops the
///   state with the process; else the next start removes it.
pub trait DataPath {
    /// Installs `new`, removing `old` in the same transaction.
    fn install(&mut self, old: Option<&DataMap>, new: &DataMap) -> Result<Installed, FilterError>;
    /// Removes a mapping; one already used up is not an error.
    fn remove(&mut self, d: &DataMap) -> Result<(), FilterError>;
    /// How often a pending mapping wants `refresh`, if ever.
    fn refresh_every(&self) -> Option<Duration>;
    /// Keeps a pending mapping; false once it is used up (the session
    /// then forgets it).
    fn refresh(&mut self, d: &DataMap) -> Result<bool, FilterError>;
    /// Re-creates the instance's kernel objects if an admin removed
    /// them; true when it did.
    fn ensure(&mut self) -> Result<bool, FilterError>;
    /// Removes the instance's kernel objects at a clean exit.
    fn close(&mut self) -> Result<(), FilterError>;
    /// The kernel objects' name, for the log.
    fn table(&self) -> &str;
    /// Whether the kernel drops the instance's state with the process.
    fn owned(&self) -> bool;
    fn one_shot(&self) -> OneShot;
    /// Where a redirected connection was going, where the kernel keeps
    /// it away from the socket (FreeBSD's rdr); None: ask the socket.
    fn original_dst(&mut self, client: SocketAddr, local: SocketAddr) -> Option<SocketAddr>;
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
