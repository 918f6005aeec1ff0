//! Exercise 11.1 (chapter "The lost wakeup"): a flag set by another thread and awaited by a
//! stroll task, written twice: check-then-store (loses a wakeup when the setter runs between the
//! check and the store) and store-then-recheck (never does).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use stroll::time::timeout;

/// The state a setter thread and the waiting task share.
#[derive(Default)]
struct Inner {
    set: AtomicBool,
    waiter: Mutex<Option<Waker>>,
}

/// The setter's side: set the flag, then wake whoever left a waker.
#[derive(Clone, Default)]
struct Flag(Arc<Inner>);

impl Flag {
    fn set(&self) {
        self.0.set.store(true, Ordering::SeqCst);
        let waiter = self.0.waiter.lock().unwrap().take();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    fn is_set(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
    }

    fn store_waker(&self, cx: &Context<'_>) {
        let mut waiter = self.0.waiter.lock().unwrap();
        if !waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waiter = Some(cx.waker().clone());
        }
    }
}

/// Waits for the flag. `between` runs between the first check and storing the waker: the
/// test puts the other thread's `set` there, the interleaving that is otherwise rare.
struct Wait<F: FnMut()> {
    flag: Flag,
    recheck: bool,
    between: F,
}

impl<F: FnMut() + Unpin> Future for Wait<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.is_set() {
            return Poll::Ready(());
        }
        (self.between)();
        self.flag.store_waker(cx);
        // The fix: look again now that a setter is sure to find the waker.
        if self.recheck && self.flag.is_set() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// Waits for `flag` the right way.
fn wait(flag: &Flag) -> Wait<impl FnMut() + Unpin> {
    Wait {
        flag: flag.clone(),
        recheck: true,
        between: || {},
    }
}

/// Sets `flag` from a new thread, at the worst moment: between the waiter's check and its
/// store. Returns whether the waiting task saw the flag within 200 ms. (The waiter is a task of
/// its own: awaited directly under `timeout`, it would be polled again when the timer fires,
/// and that extra poll would hide the lost wakeup.)
fn set_between_check_and_store(recheck: bool) -> bool {
    stroll::block_on(async {
        let flag = Flag::default();
        let setter = flag.clone();
        let waiter = stroll::spawn(Wait {
            flag: flag.clone(),
            recheck,
            between: move || {
                let setter = setter.clone();
                thread::spawn(move || setter.set()).join().unwrap();
            },
        });
        stroll::time::sleep(Duration::from_millis(200)).await;
        let seen = waiter.is_finished();
        waiter.abort();
        seen
    })
}

#[test]
fn check_then_store_loses_the_wakeup() {
    assert!(!set_between_check_and_store(false));
}

#[test]
fn store_then_recheck_does_not() {
    assert!(set_between_check_and_store(true));
}

#[test]
fn a_setter_thread_at_any_moment_is_always_seen() {
    for round in 0..200u64 {
        let seen = stroll::block_on(async {
            let flag = Flag::default();
            let setter = flag.clone();
            let thread = thread::spawn(move || {
                // Spin a little, a different while each round, to land anywhere in the poll.
                for _ in 0..(round % 20) * 50 {
                    std::hint::spin_loop();
                }
                setter.set();
            });
            // A task of its own, for the reason given above: `timeout` re-polls the handle,
            // not the waiter.
            let waiter = stroll::spawn(wait(&flag));
            let seen = timeout(Duration::from_secs(2), waiter).await.is_ok();
            thread.join().unwrap();
            seen
        });
        assert!(seen, "round {round}: the wakeup was lost");
    }
}
