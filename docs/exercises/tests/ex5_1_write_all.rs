//! Exercise 5.1 (chapter "The Future trait"): a leaf future over `TcpStream::poll_write` that
//! writes a whole buffer, returning `Pending` whenever the kernel's send buffer is full.

use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};

/// Writes all of `buf` to `stream`.
struct WriteAll<'a> {
    stream: &'a TcpStream,
    buf: &'a [u8],
    /// How much of `buf` the kernel has taken: kept in the future, as it must outlive a poll.
    written: usize,
    polls: u32,
}

impl Future for WriteAll<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.polls += 1;
        while this.written < this.buf.len() {
            match this.stream.poll_write(cx, &this.buf[this.written..]) {
                // The send buffer is full: poll_write left our waker with the reactor.
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => this.written += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Writes `len` bytes to a peer that starts reading only after `delay`; returns the polls made
/// and what the peer read.
fn write_to_slow_reader(len: usize, delay: Duration) -> (u32, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let (polls, reader) = stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = thread::spawn(move || {
            let mut socket = std::net::TcpStream::connect(addr).unwrap();
            thread::sleep(delay);
            let mut got = Vec::new();
            socket.read_to_end(&mut got).unwrap();
            got
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut write = WriteAll {
            stream: &stream,
            buf: &data,
            written: 0,
            polls: 0,
        };
        (&mut write).await.unwrap();
        (write.polls, reader)
        // `stream` is dropped here: the peer reads end of file.
    });
    let got = reader.join().unwrap();
    assert_eq!(got, data, "the peer must read exactly what was written");
    (polls, got)
}

#[test]
fn a_small_buffer_is_written_in_one_poll() {
    let (polls, got) = write_to_slow_reader(100, Duration::ZERO);
    assert_eq!(got.len(), 100);
    assert_eq!(polls, 1);
}

#[test]
fn a_buffer_larger_than_the_kernel_s_takes_several_polls() {
    // 32 MiB cannot fit in the socket buffers while the peer is not reading: the future must
    // return Pending, be woken when the peer drains some, and carry on where it stopped.
    let (polls, got) = write_to_slow_reader(32 << 20, Duration::from_millis(100));
    assert_eq!(got.len(), 32 << 20);
    assert!(polls > 1, "{polls} polls: the send buffer never filled?");
}
