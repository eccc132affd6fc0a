//! `TCP_REPAIR` as the HA takeover uses it, on loopback: one end of a
//! live connection is captured, closed without a word, rebuilt from the
//! capture, and the connection goes on, bytes queued at the capture
//! included, in both directions. Needs root (CAP_NET_ADMIN).

mod common;

use ftp_proxy::ha::repair::{self, TcpEnd};
use ftp_proxy::handover::wire::{Reader, Writer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).expect("read");
    b
}

#[test]
fn a_connection_end_moves_to_a_new_socket() {
    if !common::prerequisites("a_connection_end_moves_to_a_new_socket") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("listen");
    let mut client = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (mut server, _) = l.accept().expect("accept");
    client.write_all(b"USER anonymous\r\n").unwrap();
    assert_eq!(read_exactly(&mut server, 16), b"USER anonymous\r\n");
    server.write_all(b"331 ok\r\n").unwrap();
    assert_eq!(read_exactly(&mut client, 8), b"331 ok\r\n");
    // Unread at the capture: it must come out of the rebuilt socket.
    client.write_all(b"PASS x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let end = TcpEnd::capture(&server).expect("capture (needs CAP_NET_ADMIN)");
    assert_eq!(
        (end.local, end.peer),
        (server.local_addr().unwrap(), client.local_addr().unwrap())
    );
    // Across the wire format, as the sync link carries it.
    let mut buf = [0u8; 8192];
    let mut w = Writer::new(&mut buf);
    end.save(&mut w);
    let bytes = w.written().unwrap().to_vec();
    let end = TcpEnd::load(&mut Reader::new(&bytes)).expect("load");
    // The old end goes silently: no FIN, no reset reaches the client.
    repair::freeze(&server);
    drop(server);
    drop(l);
    let fd: OwnedFd = end.rebuild(100).expect("rebuild");
    repair::resume(&fd).expect("resume");
    let mut server = TcpStream::from(fd);
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(read_exactly(&mut server, 8), b"PASS x\r\n");
    server.write_all(b"230 in\r\n").unwrap();
    assert_eq!(read_exactly(&mut client, 8), b"230 in\r\n");
    client.write_all(b"NOOP\r\n").unwrap();
    assert_eq!(read_exactly(&mut server, 6), b"NOOP\r\n");
    // A damaged capture is refused.
    let mut bad = bytes.clone();
    // send_wscale: after two IPv4 addresses (7 bytes each), three u32
    // and the options byte.
    bad[7 + 7 + 12 + 1] = 15;
    assert!(TcpEnd::load(&mut Reader::new(&bad)).is_none());
    assert!(TcpEnd::load(&mut Reader::new(&bytes[..bytes.len() - 1])).is_none());
}
