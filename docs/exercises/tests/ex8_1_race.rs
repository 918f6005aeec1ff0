//! Exercise 8.1 (chapter "Pin: why a future must stay put"): `Race<A, B>`, a combinator that
//! polls two futures and returns the output of the first to finish, with `pin_project!` so
//! that it accepts `!Unpin` futures such as `async` blocks.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use stroll::time::sleep;

/// The output of whichever side finished first.
#[derive(Debug, PartialEq)]
enum Either<A, B> {
    Left(A),
    Right(B),
}

pin_project! {
    /// Both sides are structurally pinned: `project()` gives a `Pin<&mut _>` for each.
    struct Race<A, B> {
        #[pin]
        left: A,
        #[pin]
        right: B,
    }
}

fn race<A: Future, B: Future>(left: A, right: B) -> Race<A, B> {
    Race { left, right }
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Both are polled with the same context: whichever arranges a wake, the task wakes.
        if let Poll::Ready(output) = this.left.poll(cx) {
            return Poll::Ready(Either::Left(output));
        }
        if let Poll::Ready(output) = this.right.poll(cx) {
            return Poll::Ready(Either::Right(output));
        }
        Poll::Pending
    }
}

#[test]
fn the_faster_side_wins() {
    let started = Instant::now();
    let winner = stroll::block_on(race(
        async {
            sleep(Duration::from_millis(300)).await;
            "slow"
        },
        async {
            sleep(Duration::from_millis(20)).await;
            "fast"
        },
    ));
    assert_eq!(winner, Either::Right("fast"));
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[test]
fn async_blocks_that_borrow_across_await_are_accepted() {
    let output = stroll::block_on(race(
        async {
            let buf = [1u8; 8];
            let view = &buf[..]; // a borrow across .await: a !Unpin future
            stroll::yield_now().await;
            view.len()
        },
        std::future::pending::<()>(),
    ));
    assert_eq!(output, Either::Left(8));
}

#[test]
fn a_race_of_unpin_futures_is_unpin() {
    fn assert_unpin<T: Unpin>(_: &T) {}
    // pin_project! makes Race<A, B> Unpin exactly when A and B are.
    assert_unpin(&race(sleep(Duration::ZERO), std::future::ready(1)));
}
