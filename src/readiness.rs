//! What the poll loop said about a socket's input, and what the reads
//! since have used up. mio's events are edge-triggered: nothing more is
//! said until something new arrives, so a session must know by itself
//! whether another read can find anything. Knowing it saves the read that
//! would only say EAGAIN, and the SIOCATMARK question before every read.

use mio::event::Event;

/// BSD kqueue reports no urgent data: there every read asks for the mark
/// (as every read did before EPOLLPRI was used on Linux).
const URGENT_UNREPORTED: bool = !cfg!(any(target_os = "linux", target_os = "android"));

/// How far a socket's input may be read before its next event; later
/// states read more carefully than earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Readable {
    /// The last read found the socket empty: wait for an event.
    Drained,
    /// Data arrived. A read that gets less than it asked for took all of
    /// it: TCP hands over everything queued, and whatever arrives after
    /// brings a new event.
    Data,
    /// The peer's FIN or an error was reported, and no event follows it:
    /// read until a read returns it, short reads notwithstanding.
    ToEnd,
    /// Urgent data was reported (EPOLLPRI). Reads stop short just before
    /// the urgent byte, so ask for the mark before every read and read
    /// until the socket is empty: by then the urgent byte has been read.
    Urgent,
    /// An error was reported (a reset): the connection is gone, whether
    /// or not its input is being read. Seen even while reads are paused,
    /// so a peer that vanishes does not hold its session until `-t`.
    Broken,
}

impl Readable {
    /// Folds in one event of the socket.
    pub fn on_event(self, ev: &Event) -> Readable {
        let now = if ev.is_error() {
            Readable::Broken
        } else if ev.is_priority() || (URGENT_UNREPORTED && ev.is_readable()) {
            Readable::Urgent
        } else if ev.is_read_closed() {
            Readable::ToEnd
        } else if ev.is_readable() {
            Readable::Data
        } else {
            Readable::Drained
        };
        self.max(now)
    }

    /// After a read that asked for `room` bytes and got `got` (not 0).
    pub fn after_read(self, got: usize, room: usize) -> Readable {
        match self {
            Readable::Data if got < room => Readable::Drained,
            s => s,
        }
    }

    pub fn from_u8(v: u8) -> Option<Readable> {
        [
            Readable::Drained,
            Readable::Data,
            Readable::ToEnd,
            Readable::Urgent,
            Readable::Broken,
        ]
        .get(usize::from(v))
        .copied()
    }

    /// Whether a read may find anything.
    pub fn may_read(self) -> bool {
        self != Readable::Drained
    }

    pub fn is_broken(self) -> bool {
        self == Readable::Broken
    }

    /// Whether the next read must first ask for the urgent mark.
    pub fn ask_mark(self) -> bool {
        self == Readable::Urgent
    }
}

#[cfg(test)]
mod tests {
    use super::Readable::*;

    #[test]
    fn only_a_short_read_of_plain_data_drains() {
        assert_eq!(Data.after_read(10, 512), Drained);
        assert_eq!(
            Data.after_read(512, 512),
            Data,
            "a full read may have left more"
        );
        assert_eq!(
            ToEnd.after_read(10, 512),
            ToEnd,
            "the FIN is still to be read"
        );
        assert_eq!(Urgent.after_read(10, 512), Urgent, "stopped at the mark");
        assert!(!Drained.may_read() && Data.may_read() && Urgent.ask_mark());
        assert!(!Data.ask_mark() && !ToEnd.ask_mark());
        // An event never lowers what an earlier one said.
        assert_eq!(Urgent.max(Data), Urgent);
        assert_eq!(ToEnd.max(Data), ToEnd);
        assert_eq!(Broken.max(Urgent), Broken, "an error outranks everything");
        assert!(Broken.may_read() && !Broken.ask_mark() && Broken.is_broken());
    }

    /// What real sockets report: the events `on_event` is written for.
    #[cfg(target_os = "linux")]
    #[test]
    fn events_of_a_real_connection() {
        use mio::net::TcpListener;
        use mio::{Events, Interest, Poll, Token};
        use std::io::{Read, Write};
        use std::time::Duration;

        let mut poll = Poll::new().unwrap();
        let l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let (mut s, _) = l.accept().unwrap();
        crate::net::set_oob_inline(&s).unwrap();
        let all = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
        poll.registry().register(&mut s, Token(0), all).unwrap();
        let mut events = Events::with_capacity(8);
        let mut next = |poll: &mut Poll| {
            let mut r = Drained;
            poll.poll(&mut events, Some(Duration::from_secs(2)))
                .unwrap();
            for ev in events.iter() {
                r = r.on_event(ev);
            }
            r
        };
        assert_eq!(next(&mut poll), Drained, "writable only, nothing to read");
        peer.write_all(b"NOOP\r\n").unwrap();
        assert_eq!(next(&mut poll), Data);
        let mut buf = [0u8; 64];
        assert_eq!(s.read(&mut buf).unwrap(), 6);
        // An urgent byte after plain bytes: reads stop short at the mark.
        peer.write_all(b"ab").unwrap();
        crate::net::send_urgent(&peer, b"!").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(next(&mut poll), Urgent);
        assert_eq!(s.read(&mut buf).unwrap(), 2, "short of the mark");
        assert!(crate::net::at_mark(&s).unwrap());
        assert_eq!(s.read(&mut buf).unwrap(), 1);
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(next(&mut poll), ToEnd);
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        // A reset is an error, after a FIN too.
        set_linger_zero(&peer);
        drop(peer);
        assert_eq!(next(&mut poll), Broken);
        assert!(s.take_error().unwrap().is_some());
    }

    #[cfg(target_os = "linux")]
    fn set_linger_zero(s: &std::net::TcpStream) {
        use std::os::fd::AsRawFd;
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid linger struct for SO_LINGER.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
    }
}
