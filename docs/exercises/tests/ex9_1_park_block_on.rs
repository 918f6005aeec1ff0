//! Exercise 9.1 (chapter "Build an executor"): a `block_on` that parks its thread between polls
//! and whose waker unparks it, instead of polling in a loop.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use futures_task::{waker_ref, ArcWake};

/// Waking means: unpark the thread that runs `block_on`.
struct Unparker(Thread);

impl ArcWake for Unparker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.unpark();
    }
}

/// Runs `future` to completion, sleeping between polls; returns its output and the polls made.
fn block_on<F: Future>(future: F) -> (F::Output, u32) {
    let mut future = pin!(future);
    let unparker = Arc::new(Unparker(thread::current()));
    let waker = waker_ref(&unparker);
    let mut cx = Context::from_waker(&waker);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
        // Returns at once if `unpark` was called since the last `park`: no wake is lost.
        thread::park();
    }
}

/// Step 1's timer future: a thread sleeps, then wakes the latest waker.
struct Delay {
    duration: Duration,
    shared: Option<Arc<Mutex<(bool, Waker)>>>,
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let shared = self.shared.get_or_insert_with(|| {
            let shared = Arc::new(Mutex::new((false, cx.waker().clone())));
            let for_thread = shared.clone();
            thread::spawn(move || {
                thread::sleep(duration);
                let mut state = for_thread.lock().unwrap();
                state.0 = true;
                state.1.wake_by_ref();
            });
            shared
        });
        let mut state = shared.lock().unwrap();
        if state.0 {
            return Poll::Ready(());
        }
        if !state.1.will_wake(cx.waker()) {
            state.1 = cx.waker().clone();
        }
        Poll::Pending
    }
}

fn delay(ms: u64) -> Delay {
    Delay {
        duration: Duration::from_millis(ms),
        shared: None,
    }
}

#[test]
fn a_delay_takes_a_handful_of_polls_not_millions() {
    let started = Instant::now();
    let ((), polls) = block_on(delay(100));
    assert!(started.elapsed() >= Duration::from_millis(100));
    // Two polls, give or take a spurious return from `park`.
    assert!((2..10).contains(&polls), "{polls} polls");
}

#[test]
fn an_async_block_of_several_delays_completes() {
    let ((), polls) = block_on(async {
        delay(20).await;
        delay(20).await;
        delay(20).await;
    });
    assert!((4..20).contains(&polls), "{polls} polls");
}

#[test]
fn a_wake_before_park_is_not_lost() {
    // This future wakes itself and returns Pending: the unpark comes before `park`, which
    // must then return at once, or the test would hang.
    let mut first = true;
    let ((), polls) = block_on(std::future::poll_fn(move |cx| {
        if first {
            first = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
    }));
    assert_eq!(polls, 2);
}
