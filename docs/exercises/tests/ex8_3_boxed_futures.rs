//! Exercise 8.3 (chapter "Pin: why a future must stay put"): keep futures of different types in
//! one `Vec` with `Box::pin`, and poll them in turn with a tiny round-robin loop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future of any type with output `u32`, pinned on the heap.
type BoxedFuture = Pin<Box<dyn Future<Output = u32>>>;

/// Polls every future in turn until all are done; returns the outputs in completion order and
/// how many rounds it took. The waker does nothing: each round simply polls whatever is left.
fn round_robin(mut futures: Vec<BoxedFuture>) -> (Vec<u32>, u32) {
    let mut cx = Context::from_waker(futures_task::noop_waker_ref());
    let mut done = Vec::new();
    let mut rounds = 0;
    while !futures.is_empty() {
        rounds += 1;
        // `as_mut()` reborrows the Pin<Box<..>> as Pin<&mut dyn Future>: the future stays put,
        // even when `retain_mut` moves the boxes around in the Vec.
        futures.retain_mut(|future| match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => {
                done.push(output);
                false
            }
            Poll::Pending => true,
        });
    }
    (done, rounds)
}

/// Yields `n` times (each yield wakes itself and returns `Pending` once), then returns `n`.
async fn after_yields(n: u32) -> u32 {
    for _ in 0..n {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }
    n
}

#[test]
fn futures_of_different_types_share_one_vec() {
    let local = 10;
    let futures: Vec<BoxedFuture> = vec![
        Box::pin(after_yields(3)),
        Box::pin(std::future::ready(7)),
        Box::pin(async move {
            let buf = [local; 4];
            let view = &buf; // borrowed across .await: !Unpin, fine once boxed
            after_yields(1).await;
            view.iter().sum()
        }),
    ];
    let (done, rounds) = round_robin(futures);
    assert_eq!(done, vec![7, 40, 3]);
    assert_eq!(rounds, 4);
}
