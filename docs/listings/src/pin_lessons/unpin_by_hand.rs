use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Finds the first zero in `buf`, looking at one byte per poll.
struct FindZero {
    buf: [u8; 16],
    /// Where the search is: an index, where an async block would keep a reference.
    at: usize,
}

impl Future for FindZero {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let this = self.get_mut(); // allowed: FindZero is Unpin
        if this.buf[this.at] == 0 {
            return Poll::Ready(this.at);
        }
        this.at += 1;
        cx.waker().wake_by_ref(); // more to do: ask to be polled again
        Poll::Pending
    }
}

fn assert_unpin<T: Unpin>(_: &T) {}
let mut future = FindZero { buf: *b"abc\0............", at: 0 };
assert_unpin(&future); // every field is Unpin, so the struct is
let mut cx = Context::from_waker(futures_task::noop_waker_ref());
let mut polls = 1;
while Pin::new(&mut future).poll(&mut cx).is_pending() {
    polls += 1;
}
assert_eq!(polls, 4);
