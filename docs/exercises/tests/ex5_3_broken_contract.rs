//! Exercise 5.3 (chapter "The Future trait"): break the first clause of the contract (return
//! `Pending` without arranging a wake) and see what stroll does about it.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use stroll::net::{TcpListener, TcpStream};

/// `ReadSome`, broken: on its first poll it returns `Pending` without calling `poll_read`, so
/// nobody holds its waker and nothing will ever poll it again.
struct Broken<'a> {
    stream: &'a TcpStream,
    buf: &'a mut [u8],
    /// How many times it has been polled, kept outside so the test can read it afterwards.
    polls: &'a Cell<u32>,
}

impl Future for Broken<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.polls.set(this.polls.get() + 1);
        if this.polls.get() == 1 {
            return Poll::Pending; // the bug: no wake arranged
        }
        this.stream.poll_read(cx, this.buf)
    }
}

/// Awaits a `Broken` on a connection whose peer never writes; with `under_timeout`, inside a
/// 50 ms `timeout`. Returns how many times `Broken` was polled.
fn run(under_timeout: bool) -> u32 {
    let polls = Cell::new(0);
    stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 16];
        let future = Broken {
            stream: &stream,
            buf: &mut buf,
            polls: &polls,
        };
        if under_timeout {
            // The timeout's timer holds the task's waker: its wake comes 50 ms later and polls
            // `Broken` again by luck, not by design. Then it gives up (the peer never writes).
            let timed = stroll::time::timeout(std::time::Duration::from_millis(50), future);
            assert!(timed.await.is_err());
        } else {
            let _ = future.await;
        }
    });
    polls.get()
}

#[test]
#[should_panic(expected = "deadlock")]
fn pending_without_a_wake_is_a_certain_deadlock() {
    // No timer, no socket waiter, no waker clone anywhere: stroll panics instead of hanging.
    run(false);
}

#[test]
fn a_timer_that_holds_the_waker_hides_the_bug() {
    // Polled once (the bug), then once more when the timeout's timer woke the task.
    assert_eq!(run(true), 2);
}
