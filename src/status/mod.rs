//! The status interface: each instance answers on a unix socket with its
//! state (the instance, totals since start, one row per session), as text
//! or JSON. `query` is the other end (`ftp-proxy -S`).
//!
//! A query is one request line, `text` or `json`, then the answer until
//! the daemon closes. Serving is part of the fair loop: each turn writes
//! at most one buffer per query, rendered just then, and a reader that
//! has not taken the whole answer within `QUERY_TIME` is dropped. The
//! buffers are allocated at start; nothing grows while serving.

pub mod query;
pub mod render;
pub mod socket;
pub mod totals;

use crate::session::Turn;
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use render::{Format, Instance, Row, ROW_MAX};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};
pub use totals::Totals;

/// Queries served at once; more wait in the listen backlog.
pub const MAX_QUERIES: usize = 4;
/// How long a query may take, request and answer, before it is dropped.
pub const QUERY_TIME: Duration = Duration::from_secs(5);
/// One turn's output per query: the head, or a few rows.
const CHUNK: usize = 4096;
/// The kernel's send queue of a query socket.
const SNDBUF: libc::c_int = 16384;
/// The listener's token (mio keeps usize::MAX for itself); queries
/// count down from below it.
pub const LISTENER: Token = Token(usize::MAX - 1);

pub fn token_of(k: usize) -> Token {
    Token(LISTENER.0 - 1 - k)
}

/// The query a token names, if it names one.
pub fn query_of(Token(t): Token) -> Option<usize> {
    let k = LISTENER.0.checked_sub(t)?.checked_sub(1)?;
    (k < MAX_QUERIES).then_some(k)
}

/// What a query waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Its request line.
    Request,
    /// Its answer, from this session slot on (0: the head comes first).
    Answer { next_slot: usize, head: bool },
    /// All rendered: the rest of the buffer, then close.
    Last,
}

struct Query {
    stream: UnixStream,
    stage: Stage,
    format: Format,
    rows_written: usize,
    buf: Box<[u8]>,
    len: usize,
    sent: usize,
    deadline: Instant,
}

/// What rendering needs from the daemon: the instance and the sessions.
pub trait Source {
    fn instance(&self) -> Instance<'_>;
    fn totals(&self) -> &Totals;
    /// How many session slots there are.
    fn slots(&self) -> usize;
    /// The session in slot `i`, if one is there.
    fn row(&self, i: usize, now: Instant) -> Option<Row>;
}

pub struct Status {
    listener: UnixListener,
    queries: [Option<Query>; MAX_QUERIES],
    /// Buffers for queries, taken and given back: no allocation per query.
    spare: Vec<Box<[u8]>>,
    /// The listener may have more connections waiting.
    accept_more: bool,
    /// Queries dropped for reading too slowly, since start.
    slow_readers: u64,
}

impl Status {
    /// The listening socket, for a handover (queries under way are not
    /// handed over: their clients see the connection close).
    pub fn listener_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.listener.as_raw_fd()
    }

    pub fn new(mut listener: UnixListener, registry: &Registry) -> io::Result<Status> {
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Status {
            listener,
            queries: Default::default(),
            spare: (0..MAX_QUERIES)
                .map(|_| vec![0u8; CHUNK].into_boxed_slice())
                .collect(),
            accept_more: true,
            slow_readers: 0,
        })
    }

    pub fn on_listener(&mut self) {
        self.accept_more = true;
    }

    /// Accepts into free slots, serves every query one step, drops the
    /// late ones; `Turn::More` when a query wants another turn at once.
    pub fn serve(&mut self, src: &dyn Source, registry: &Registry, now: Instant) -> Turn {
        if self.accept_more {
            self.accept(registry, now);
        }
        let mut pending = match self.accept_more {
            true => Turn::More,
            false => Turn::Idle,
        };
        for k in 0..MAX_QUERIES {
            let Some(q) = self.queries[k].as_mut() else {
                continue;
            };
            let outcome = if now >= q.deadline {
                self.slow_readers += 1;
                log::info!(target: crate::log::NOTICE, "status query dropped: not read within {}s", QUERY_TIME.as_secs());
                Step::Done
            } else {
                q.step(src, now, self.slow_readers)
            };
            match outcome {
                Step::Wait => {}
                Step::More => pending = Turn::More,
                Step::Done => self.finish(k, registry),
            }
        }
        pending
    }

    fn finish(&mut self, k: usize, registry: &Registry) {
        if let Some(mut q) = self.queries[k].take() {
            let _ = registry.deregister(&mut q.stream);
            // Cannot grow: a buffer goes back where it came from.
            self.spare.push(q.buf);
        }
    }

    fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            let Some(k) = self.queries.iter().position(Option::is_none) else {
                // Full: the rest wait in the backlog until a slot frees.
                return;
            };
            let Some(buf) = self.spare.pop() else { return };
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    // A small send queue: a reader that stops reading
                    // stalls its query (then dropped), not the kernel's
                    // memory.
                    let _ =
                        crate::net::set_int_opt(&stream, libc::SOL_SOCKET, libc::SO_SNDBUF, SNDBUF);
                    let both = Interest::READABLE | Interest::WRITABLE;
                    if registry.register(&mut stream, token_of(k), both).is_err() {
                        self.spare.push(buf);
                        continue;
                    }
                    self.queries[k] = Some(Query {
                        stream,
                        stage: Stage::Request,
                        format: Format::Text,
                        rows_written: 0,
                        buf,
                        len: 0,
                        sent: 0,
                        deadline: now + QUERY_TIME,
                    });
                }
                Err(e) => {
                    self.spare.push(buf);
                    if e.kind() != io::ErrorKind::Interrupted {
                        self.accept_more = false;
                        if e.kind() != io::ErrorKind::WouldBlock {
                            log::warn!("status socket: accept: {e}");
                        }
                        return;
                    }
                }
            }
        }
    }
}

enum Step {
    /// Waiting on the peer (its request, or room to write).
    Wait,
    /// More to do, which the peer allows now.
    More,
    Done,
}

impl Query {
    fn step(&mut self, src: &dyn Source, now: Instant, slow_readers: u64) -> Step {
        if self.stage == Stage::Request {
            match self.read_request() {
                Ok(true) => {}
                Ok(false) => return Step::Wait,
                Err(_) => return Step::Done,
            }
        }
        if self.sent == self.len {
            if self.stage == Stage::Last {
                return Step::Done;
            }
            self.render(src, now, slow_readers);
        }
        match self.stream.write(&self.buf[self.sent..self.len]) {
            Ok(n) => {
                self.sent += n;
                match self.sent == self.len {
                    true => Step::More,
                    // A short write: the socket is full; its writable
                    // event brings the next turn.
                    false => Step::Wait,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::More,
            Err(_) => Step::Done,
        }
    }

    /// True once the request line is in; an unknown one is answered with
    /// an error line.
    fn read_request(&mut self) -> io::Result<bool> {
        let mut line = [0u8; 16];
        let n = match self.stream.read(&mut line) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        let req = line[..n].split(|&b| b == b'\n').next().unwrap_or(&[]);
        let req = req.strip_suffix(b"\r").unwrap_or(req);
        self.format = match req {
            b"json" => Format::Json,
            b"text" | b"" => Format::Text,
            _ => {
                let msg = b"error: unknown request (text or json)\n";
                self.buf[..msg.len()].copy_from_slice(msg);
                self.len = msg.len();
                self.stage = Stage::Last;
                return Ok(true);
            }
        };
        self.stage = Stage::Answer {
            next_slot: 0,
            head: true,
        };
        Ok(true)
    }

    /// Fills the empty buffer with what comes next.
    fn render(&mut self, src: &dyn Source, now: Instant, slow_readers: u64) {
        let Stage::Answer {
            mut next_slot,
            head,
        } = self.stage
        else {
            return;
        };
        let mut c = crate::ftp::write::Cursor::new(&mut self.buf);
        // The head always fits an empty buffer (tested): its few lines
        // are bounded by the options' own limits.
        if head {
            let mut i = src.instance();
            i.slow_readers = slow_readers;
            let _ = render::head(&mut c, self.format, &i, src.totals());
        }
        while next_slot < src.slots() && CHUNK - c.len() >= ROW_MAX {
            if let Some(r) = src.row(next_slot, now) {
                let _ = render::row(&mut c, self.format, self.rows_written == 0, &r);
                self.rows_written += 1;
            }
            next_slot += 1;
        }
        self.stage = Stage::Answer {
            next_slot,
            head: false,
        };
        if next_slot >= src.slots() && render::tail(&mut c, self.format).is_ok() {
            self.stage = Stage::Last;
        }
        self.len = c.len();
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_apart_from_sessions_and_mio() {
        for k in 0..MAX_QUERIES {
            assert_eq!(query_of(token_of(k)), Some(k));
        }
        assert_eq!(query_of(LISTENER), None);
        assert_eq!(query_of(Token(usize::MAX)), None);
        assert_eq!(query_of(Token(2 + 2 * 500)), None);
    }
}
