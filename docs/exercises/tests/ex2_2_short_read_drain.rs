//! Exercise 2.2 ("Non-blocking sockets and epoll"): a reader for edge-triggered events that
//! takes a short read as "drained", as stroll's reactor does, and never stalls.
//!
//! `read_available` reads until a read returns `WouldBlock`, end of file, or fewer bytes than
//! the buffer holds. The tests serve a client on mio (edge-triggered) and check that every byte
//! arrives, including a message exactly as long as the buffer (where only `WouldBlock` ends
//! the event) and one much longer.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// What one readiness event yielded.
#[derive(Debug, Default, PartialEq)]
pub struct Drained {
    /// `read` calls made, the one that ended the event included.
    pub calls: usize,
    /// The peer closed its side.
    pub eof: bool,
}

/// Reads what the socket has into `out`, stopping at `WouldBlock`, end of file, or a short read
/// (for a stream socket on Linux, a short read emptied the receive buffer, and anything that
/// arrives later raises a new event).
pub fn read_available(
    stream: &mut TcpStream,
    buf: &mut [u8],
    out: &mut Vec<u8>,
) -> std::io::Result<Drained> {
    let mut drained = Drained::default();
    loop {
        drained.calls += 1;
        match stream.read(buf) {
            Ok(0) => {
                drained.eof = true;
                return Ok(drained);
            }
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    return Ok(drained); // short: drained, no need to ask again
                }
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(drained),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Serves one client that sends `messages` (pausing between them) and closes; returns the bytes
/// received and each event's `Drained`.
fn serve(messages: Vec<Vec<u8>>, buf_len: usize) -> (Vec<u8>, Vec<Drained>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        for message in messages {
            stream.write_all(&message).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (stream, _) = listener.accept().unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut stream = TcpStream::from_std(stream);
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut stream, Token(0), Interest::READABLE)
        .unwrap();
    let mut events = Events::with_capacity(8);
    let (mut out, mut log) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; buf_len];
    let deadline = Instant::now() + Duration::from_secs(5);
    'serve: while Instant::now() < deadline {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for _ in events.iter() {
            let drained = read_available(&mut stream, &mut buf, &mut out).unwrap();
            let eof = drained.eof;
            log.push(drained);
            if eof {
                break 'serve;
            }
        }
    }
    client.join().unwrap();
    (out, log)
}

#[test]
fn every_byte_arrives_and_the_peer_close_is_seen() {
    let messages = vec![b"hello\n".to_vec(), vec![b'x'; 64], vec![b'y'; 10_000]];
    let expected: Vec<u8> = messages.concat();
    let (out, log) = serve(messages, 64);
    assert_eq!(out.len(), expected.len(), "stalled: bytes were left unread");
    assert_eq!(out, expected);
    assert!(log.last().unwrap().eof, "the end of file was never read");
}

#[test]
fn a_short_read_saves_the_call_that_would_block() {
    let (_, log) = serve(vec![b"hello\n".to_vec()], 64);
    // The first event: one read of 6 bytes into 64, and no second call.
    assert_eq!(
        log[0],
        Drained {
            calls: 1,
            eof: false
        }
    );
}

#[test]
fn a_full_buffer_reads_again() {
    let (_, log) = serve(vec![vec![b'x'; 64]], 64);
    // 64 bytes fill the buffer: the reader cannot know it drained the socket and asks again.
    assert_eq!(
        log[0],
        Drained {
            calls: 2,
            eof: false
        }
    );
}
