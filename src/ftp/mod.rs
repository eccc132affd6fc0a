//! FTP control-channel protocol: pure functions over byte slices, no I/O.
//!
//! `line` frames the byte stream, `telnet` strips Telnet sequences,
//! `command` reads client commands, `inflight` pairs replies with them,
//! `reply` reads server replies, `relay` carries the whole server-to-client
//! stream (framing, padding, held refusals), `policy` decides what the
//! proxy does with them, `write` formats what it sends instead.

pub mod command;
pub mod inflight;
pub mod line;
pub mod policy;
pub mod relay;
pub mod reply;
pub mod telnet;
pub mod write;

/// Longest control line the proxy handles: OpenBSD's MAX_LINE 500 plus slack
/// for CRLF.
pub const MAX_LINE: usize = 512;

/// Lowest port a negotiated data connection may use (ftp-proxy(8), BUGS).
pub const MIN_DATA_PORT: u16 = 1024;
