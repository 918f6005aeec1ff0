//! Exercise 5.2 (chapter "The Future trait"): `ReadExact`, a future that fills its whole buffer
//! from a `TcpStream`, using `std::task::ready!`.

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::thread;
use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};

/// Fills `buf` completely, or fails with `UnexpectedEof` if the peer closes first.
struct ReadExact<'a> {
    stream: &'a TcpStream,
    buf: &'a mut [u8],
    filled: usize,
}

impl Future for ReadExact<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.filled < this.buf.len() {
            let n = ready!(this.stream.poll_read(cx, &mut this.buf[this.filled..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            this.filled += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// Runs `ReadExact` for `want` bytes against a peer that writes `pieces` 20 ms apart, then
/// closes.
fn read_exact_from(pieces: &'static [&'static [u8]], want: usize) -> io::Result<Vec<u8>> {
    stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let peer = thread::spawn(move || {
            let mut socket = std::net::TcpStream::connect(addr).unwrap();
            for piece in pieces {
                thread::sleep(Duration::from_millis(20));
                socket.write_all(piece).unwrap();
            }
        });
        let (stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; want];
        let read = ReadExact {
            stream: &stream,
            buf: &mut buf,
            filled: 0,
        };
        let result = read.await;
        drop(peer); // detached: it ends by itself
        result.map(|()| buf)
    })
}

#[test]
fn pieces_are_gathered_into_one_buffer() {
    let got = read_exact_from(&[b"he", b"llo, ", b"world"], 12).unwrap();
    assert_eq!(got, b"hello, world");
}

#[test]
fn stops_at_the_length_asked_for() {
    let got = read_exact_from(&[b"abcdef"], 3).unwrap();
    assert_eq!(got, b"abc");
}

#[test]
fn an_early_close_is_an_error() {
    let err = read_exact_from(&[b"short"], 10).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}
