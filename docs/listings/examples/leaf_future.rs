//! leaf_future: futures written by hand over stroll's `TcpStream::poll_read`, run under
//! `stroll::block_on` against a peer on the loopback interface.
//!
//! Run it with `cargo run -q -p book-listings --example leaf_future`.
//!
//! What to watch for: `ReadSome` prints every call of its `poll` and what `poll_read` answered.
//! The peer (a plain thread with a blocking socket) waits 100 ms before it writes, so the first
//! poll finds no data and returns `Pending`; nothing polls the future again until the reactor
//! sees the data arrive and wakes the task, and the second poll returns `Ready`. `ReadLine`
//! uses `std::task::ready!` to read until a newline over several polls. The last part polls a
//! finished `async` block again, which the `Future` contract forbids: it panics.

use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};
use std::thread;
use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};

// ANCHOR: read_some
/// One read from `stream` into `buf`: a leaf future over `TcpStream::poll_read`.
struct ReadSome<'a> {
    stream: &'a TcpStream,
    buf: &'a mut [u8],
    /// How many times `poll` was called, for the printout.
    polls: u32,
}

impl Future for ReadSome<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut(); // allowed because ReadSome is `Unpin` (see the Pin chapter)
        this.polls += 1;
        // Ready: the bytes are in `buf`. Pending: the reactor now holds `cx.waker()`.
        let result = this.stream.poll_read(cx, this.buf);
        match &result {
            Poll::Pending => println!("  poll {}: Pending", this.polls),
            Poll::Ready(read) => println!("  poll {}: Ready({read:?})", this.polls),
        }
        result
    }
}
// ANCHOR_END: read_some

// ANCHOR: read_line
/// Reads until what has arrived ends with a newline: as many `poll_read`s as that takes,
/// spread over as many polls as the peer makes necessary.
struct ReadLine<'a> {
    stream: &'a TcpStream,
    /// What has arrived so far: kept in the future, because it must outlive one poll.
    line: Vec<u8>,
    polls: u32,
}

impl Future for ReadLine<'_> {
    type Output = io::Result<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.polls += 1;
        let mut chunk = [0u8; 64];
        while !this.line.ends_with(b"\n") {
            // `ready!`: if `poll_read` is Pending, return Pending from here; else unwrap it.
            let n = ready!(this.stream.poll_read(cx, &mut chunk))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            this.line.extend_from_slice(&chunk[..n]);
        }
        Poll::Ready(Ok(std::mem::take(&mut this.line)))
    }
}
// ANCHOR_END: read_line

/// The peer: connects, then writes `hello\n`, `wor` and `ld\n`, 100 ms apart.
fn slow_peer(addr: SocketAddr) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        let mut socket = std::net::TcpStream::connect(addr)?;
        for piece in [&b"hello\n"[..], b"wor", b"ld\n"] {
            thread::sleep(Duration::from_millis(100));
            socket.write_all(piece)?;
        }
        Ok(())
    })
}

// ANCHOR: main
fn main() -> io::Result<()> {
    let peer = stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let peer = slow_peer(listener.local_addr()?);
        let (stream, _) = listener.accept().await?;

        println!("ReadSome, the peer writes after 100 ms:");
        let mut buf = [0u8; 64];
        let read = ReadSome {
            stream: &stream,
            buf: &mut buf,
            polls: 0,
        };
        let n = read.await?;
        println!("  got {:?}", String::from_utf8_lossy(&buf[..n]));

        println!("ReadLine, the peer writes \"wor\", then \"ld\\n\" 100 ms later:");
        let mut read_line = ReadLine {
            stream: &stream,
            line: Vec::new(),
            polls: 0,
        };
        let line = (&mut read_line).await?;
        let polls = read_line.polls;
        println!(
            "  got {:?} after {polls} polls",
            String::from_utf8_lossy(&line)
        );
        io::Result::Ok(peer)
    })?;
    peer.join().expect("the peer thread panicked")?;
    poll_after_ready();
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: after_ready
/// Polls a finished future once more, by hand, with a waker that does nothing.
fn poll_after_ready() {
    println!("An async block polled after it returned Ready:");
    let mut future = pin!(async { 42 });
    let mut cx = Context::from_waker(futures_task::noop_waker_ref());
    println!("  poll 1: {:?}", future.as_mut().poll(&mut cx));
    panic::set_hook(Box::new(|_| {})); // quiet: the message is printed below
    let again = panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
    let _ = panic::take_hook();
    match again {
        Ok(poll) => println!("  poll 2: {poll:?}"),
        Err(payload) => {
            let message = payload.downcast_ref::<&str>().copied().unwrap_or("?");
            println!("  poll 2 panicked: {message}");
        }
    }
}
// ANCHOR_END: after_ready
