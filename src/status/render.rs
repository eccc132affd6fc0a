//! The status as text for people or JSON for scripts, written piece by
//! piece into a fixed buffer: the instance and totals, then one row per
//! session. Pure code: what to write comes in plain structs.

use super::totals::{Moved, Totals};
use crate::ports::Range;
use core::fmt::{self, Write};
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Whether data connection records carry byte counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Records {
    /// Conntrack events with accounting: duration and bytes.
    Bytes,
    /// Events, but accounting is off: duration only.
    NoBytes,
    /// No records (no conntrack events here, or not on this system).
    Off,
}

impl Records {
    pub fn name(self) -> &'static str {
        match self {
            Records::Bytes => "bytes",
            Records::NoBytes => "no-bytes",
            Records::Off => "off",
        }
    }
}

/// The instance: what it is and what it can do.
pub struct Instance<'a> {
    pub name: &'a str,
    pub pid: u32,
    pub listen: SocketAddr,
    pub table: &'a str,
    pub owned: bool,
    pub one_shot: &'static str,
    /// `-R`: the one server; None: transparent.
    pub reverse: Option<SocketAddr>,
    pub intercept: &'a [heapless::String<16>],
    pub tag: Option<u32>,
    /// `-E`, and how many of its ports pending mappings hold.
    pub ports: Range,
    pub ports_held: usize,
    /// `-e`: what passive replies name instead of the listen address.
    pub advertised: Option<IpAddr>,
    pub max_sessions: u32,
    pub max_per_client: u32,
    pub timeout: u32,
    pub uptime: u64,
    pub sessions: usize,
    pub records: Records,
    /// Records lost: events the kernel dropped, transfers not tracked.
    pub records_lost: u64,
    pub kernel_errors: u64,
    /// Status queries dropped for reading too slowly.
    pub slow_readers: u64,
}

/// One session, as the status shows it.
pub struct Row {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// "passive" or "active" (the last negotiation), or "-".
    pub mode: &'static str,
    /// The proxy port of the pending mapping, 0 when none.
    pub proxy_port: u16,
    pub phase: &'static str,
    pub age: u64,
    pub idle: u64,
    pub commands: u32,
    pub negotiated: u32,
    pub moved: Moved,
}

/// A string as a JSON string, escaped.
pub struct Json<'a>(pub &'a str);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// What a JSON string of a `Display` value needs: addresses have no
/// character to escape.
struct Quoted<T>(T);

impl<T: fmt::Display> fmt::Display for Quoted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// Seconds as `1d2h`, `3h4m`, `5m6s`, `7s`.
struct Span(u64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        // Written whole first, so that widths (`{:>6}`) pad it.
        let mut t = heapless::String::<32>::new();
        let _ = match s {
            0..=59 => write!(t, "{s}s"),
            60..=3599 => write!(t, "{}m{}s", s / 60, s % 60),
            3600..=86399 => write!(t, "{}h{}m", s / 3600, s % 3600 / 60),
            _ => write!(t, "{}d{}h", s / 86400, s % 86400 / 3600),
        };
        f.pad(&t)
    }
}

/// The instance and the totals: everything before the first row.
pub fn head(w: &mut impl Write, f: Format, i: &Instance, t: &Totals) -> fmt::Result {
    match f {
        Format::Text => head_text(w, i, t),
        Format::Json => head_json(w, i, t),
    }
}

fn head_text(w: &mut impl Write, i: &Instance, t: &Totals) -> fmt::Result {
    writeln!(
        w,
        "instance {} (pid {}), up {}",
        i.name,
        i.pid,
        Span(i.uptime)
    )?;
    write!(w, "  listening {}, table inet {}", i.listen, i.table)?;
    writeln!(w, "{}", if i.owned { " (owned)" } else { "" })?;
    match i.reverse {
        Some(s) => write!(w, "  reverse mode to {s}")?,
        None => w.write_str("  transparent")?,
    }
    if let Some(a) = i.advertised {
        write!(w, ", passive replies name {a}")?;
    }
    for (k, n) in i.intercept.iter().enumerate() {
        w.write_str(if k == 0 { ", intercepting " } else { " " })?;
        w.write_str(n)?;
    }
    if let Some(tag) = i.tag {
        write!(w, ", mark {tag:#x}")?;
    }
    writeln!(
        w,
        ", one-shot mappings: {}, data records: {}",
        i.one_shot,
        i.records.name()
    )?;
    writeln!(
        w,
        "  sessions {} of {} ({} per client), idle timeout {}s, proxy ports {} ({} held)",
        i.sessions, i.max_sessions, i.max_per_client, i.timeout, i.ports, i.ports_held
    )?;
    writeln!(
        w,
        "totals: {} sessions, {} data connections negotiated, {} made, {} bytes to clients, {} to servers, {} kernel errors, {} slow status readers",
        t.sessions, t.negotiated, t.moved.connections, t.moved.to_client, t.moved.to_server,
        i.kernel_errors, i.slow_readers
    )?;
    w.write_str("refused connections:")?;
    for (k, n) in t.refused() {
        write!(w, " {k} {n}")?;
    }
    w.write_str("\nrefused commands:")?;
    let mut any = false;
    for (k, n) in t.commands_refused() {
        write!(w, " {k} {n}")?;
        any = true;
    }
    if !any {
        w.write_str(" none")?;
    }
    writeln!(
        w,
        "\n{:>6} {:<41} {:<41} {:<7} {:>5} {:<10} {:>6} {:>6} {:>5} {:>4} {:>12} {:>12}",
        "ID",
        "CLIENT",
        "SERVER",
        "MODE",
        "PPORT",
        "PHASE",
        "AGE",
        "IDLE",
        "CMDS",
        "DATA",
        "TO-CLIENT",
        "TO-SERVER"
    )
}

fn head_json(w: &mut impl Write, i: &Instance, t: &Totals) -> fmt::Result {
    write!(
        w,
        "{{\"instance\":{{\"name\":{},\"pid\":{},\"listen\":{},\"table\":{},\"owned\":{},\"mode\":{},",
        Json(i.name),
        i.pid,
        Quoted(i.listen),
        Json(i.table),
        i.owned,
        if i.reverse.is_some() { "\"reverse\"" } else { "\"transparent\"" }
    )?;
    match i.reverse {
        Some(s) => write!(w, "\"server\":{},", Quoted(s))?,
        None => w.write_str("\"server\":null,")?,
    }
    w.write_str("\"intercept\":[")?;
    for (k, n) in i.intercept.iter().enumerate() {
        write!(w, "{}{}", if k == 0 { "" } else { "," }, Json(n))?;
    }
    w.write_str("],")?;
    match i.tag {
        Some(t) => write!(w, "\"mark\":{t},")?,
        None => w.write_str("\"mark\":null,")?,
    }
    match i.advertised {
        Some(a) => write!(w, "\"advertised\":{},", Quoted(a))?,
        None => w.write_str("\"advertised\":null,")?,
    }
    write!(
        w,
        "\"proxy_ports\":[{},{}],\"ports_held\":{},",
        i.ports.low(),
        i.ports.high(),
        i.ports_held
    )?;
    write!(
        w,
        "\"one_shot\":{},\"records\":{},\"records_lost\":{},\"max_sessions\":{},\"max_per_client\":{},\"timeout\":{},\"uptime\":{},\"sessions\":{}}},",
        Json(i.one_shot),
        Json(i.records.name()),
        i.records_lost,
        i.max_sessions,
        i.max_per_client,
        i.timeout,
        i.uptime,
        i.sessions
    )?;
    write!(
        w,
        "\"totals\":{{\"sessions\":{},\"negotiated\":{},\"data_connections\":{},\"bytes_to_clients\":{},\"bytes_to_servers\":{},\"kernel_errors\":{},\"slow_readers\":{},\"refused\":{{",
        t.sessions, t.negotiated, t.moved.connections, t.moved.to_client, t.moved.to_server,
        i.kernel_errors, i.slow_readers
    )?;
    for (k, (key, n)) in t.refused().enumerate() {
        write!(w, "{}{}:{n}", if k == 0 { "" } else { "," }, Json(key))?;
    }
    w.write_str("},\"refused_commands\":{")?;
    for (k, (key, n)) in t.commands_refused().enumerate() {
        write!(w, "{}{}:{n}", if k == 0 { "" } else { "," }, Json(key))?;
    }
    w.write_str("}},\"sessions\":[")
}

/// One session; `first` tells whether a row came before (JSON commas).
pub fn row(w: &mut impl Write, f: Format, first: bool, r: &Row) -> fmt::Result {
    match f {
        Format::Text => writeln!(
            w,
            "{:>6} {:<41} {:<41} {:<7} {:>5} {:<10} {:>6} {:>6} {:>5} {:>4} {:>12} {:>12}",
            r.id,
            r.client,
            r.server,
            r.mode,
            r.proxy_port,
            r.phase,
            Span(r.age),
            Span(r.idle),
            r.commands,
            r.moved.connections,
            r.moved.to_client,
            r.moved.to_server
        ),
        Format::Json => write!(
            w,
            "{}{{\"id\":{},\"client\":{},\"server\":{},\"mode\":{},\"proxy_port\":{},\"phase\":{},\"age\":{},\"idle\":{},\"commands\":{},\"negotiated\":{},\"data_connections\":{},\"bytes_to_client\":{},\"bytes_to_server\":{}}}",
            if first { "" } else { "," },
            r.id,
            Quoted(r.client),
            Quoted(r.server),
            Json(r.mode),
            r.proxy_port,
            Json(r.phase),
            r.age,
            r.idle,
            r.commands,
            r.negotiated,
            r.moved.connections,
            r.moved.to_client,
            r.moved.to_server
        ),
    }
}

/// What closes the status.
pub fn tail(w: &mut impl Write, f: Format) -> fmt::Result {
    match f {
        Format::Text => Ok(()),
        Format::Json => w.write_str("]}\n"),
    }
}

/// The longest row: a row never needs more room than this.
pub const ROW_MAX: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftp::write::Cursor;

    fn instance() -> Instance<'static> {
        Instance {
            name: "lan",
            pid: 42,
            listen: "198.18.0.1:8021".parse().unwrap(),
            table: "ftp-proxy-lan",
            owned: true,
            one_shot: "kernel",
            reverse: None,
            intercept: &[],
            tag: Some(7),
            ports: Range::default(),
            ports_held: 0,
            advertised: None,
            max_sessions: 100,
            max_per_client: 32,
            timeout: 86400,
            uptime: 3725,
            sessions: 1,
            records: Records::Bytes,
            records_lost: 0,
            kernel_errors: 0,
            slow_readers: 0,
        }
    }

    fn longest_row() -> Row {
        let v6: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
            .parse()
            .unwrap();
        Row {
            id: u64::MAX,
            client: v6,
            server: v6,
            mode: "passive",
            proxy_port: 65535,
            phase: "connecting",
            age: u64::MAX,
            idle: u64::MAX,
            commands: u32::MAX,
            negotiated: u32::MAX,
            moved: Moved {
                connections: u64::MAX,
                to_client: u64::MAX,
                to_server: u64::MAX,
            },
        }
    }

    #[test]
    fn the_longest_row_fits_row_max() {
        for f in [Format::Text, Format::Json] {
            let mut buf = [0u8; ROW_MAX];
            let mut c = Cursor::new(&mut buf);
            row(&mut c, f, false, &longest_row()).expect("row longer than ROW_MAX");
        }
    }

    #[test]
    fn json_is_one_document_and_escapes_names() {
        let mut t = Totals::default();
        t.refuse_command("low-port");
        let names = [heapless::String::<16>::try_from("a\"b\\c").unwrap()];
        let i = Instance {
            intercept: &names,
            ..instance()
        };
        let mut buf = vec![0u8; 8192];
        let mut c = Cursor::new(&mut buf);
        head(&mut c, Format::Json, &i, &t).unwrap();
        row(&mut c, Format::Json, true, &longest_row()).unwrap();
        row(&mut c, Format::Json, false, &longest_row()).unwrap();
        tail(&mut c, Format::Json).unwrap();
        let n = c.len();
        let s = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(s.contains(r#""intercept":["a\"b\\c"]"#), "{s}");
        assert!(s.contains(r#""refused_commands":{"low-port":1}"#), "{s}");
        assert!(s.contains(r#"},{"id":"#), "{s}");
        assert!(s.ends_with("]}\n"));
    }

    #[test]
    fn the_largest_head_fits_half_a_chunk() {
        let mut t = Totals::default();
        for k in 0..30 {
            t.refuse_command(
                [
                    "control-chars",
                    "bad-telnet",
                    "unsolicited-passive",
                    "low-server-port",
                ][k % 4],
            );
            t.refuse(crate::status::totals::Refused::Unreachable);
        }
        let name = heapless::String::<16>::try_from("\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"").unwrap();
        let names = [
            name.clone(),
            name.clone(),
            name.clone(),
            name.clone(),
            name.clone(),
            name.clone(),
            name.clone(),
            name,
        ];
        let i = Instance {
            name: "a-very-long-instance-name-32-chr",
            intercept: &names,
            kernel_errors: u64::MAX,
            slow_readers: u64::MAX,
            uptime: u64::MAX,
            ..instance()
        };
        for f in [Format::Text, Format::Json] {
            let mut buf = [0u8; 4096];
            let mut c = Cursor::new(&mut buf);
            head(&mut c, f, &i, &t).expect("head longer than 4096 bytes");
        }
    }

    #[test]
    fn spans() {
        assert_eq!(Span(59).to_string(), "59s");
        assert_eq!(Span(3725).to_string(), "1h2m");
        assert_eq!(Span(90061).to_string(), "1d1h");
        assert_eq!(format!("{:>6}", Span(7)), "    7s");
    }
}
