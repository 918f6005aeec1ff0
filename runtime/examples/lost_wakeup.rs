//! lost_wakeup: the classic async bug, a future that returns `Pending` without arranging a
//! wakeup, caught by debug mode.
//!
//! Run it with `STROLL_DEBUG=1 cargo run -p stroll --example lost_wakeup`.
//!
//! What to watch for: `Flag` is a hand-written leaf future over a shared flag. Its broken
//! version checks the flag and returns `Pending` when it is not set, but never keeps
//! `cx.waker()`: when the setter sets the flag a moment later, nobody knows whom to tell, and
//! the waiting task is never polled again. On other runtimes the program just hangs. Debug mode
//! sees that nothing but the runtime holds the task's waker after that poll and prints a line
//! with `lost wakeup`, the task's id, name and spawn location. Then, because nothing at all can
//! wake the program any more (no timer, no socket, no waker held elsewhere), `block_on` panics
//! with `deadlock` and the task table instead of hanging; that part needs no debug mode.
//!
//! The fix is one line, in `Flag::poll`: store `cx.waker().clone()` where the setter will find
//! it, and have the setter wake it. Run with `-- fixed` to see the fixed future finish.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use stroll::task::Builder;

/// A flag one task sets and another waits for.
#[derive(Default)]
struct Shared {
    set: bool,
    /// The waker of the task waiting for the flag. The broken future never fills it in.
    waiter: Option<Waker>,
}

/// Waits until the flag is set.
struct Flag {
    shared: Rc<RefCell<Shared>>,
    /// Keep the waker (the fix) or not (the bug).
    keep_waker: bool,
}

// ANCHOR: flag_poll
impl Future for Flag {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut shared = self.shared.borrow_mut();
        if shared.set {
            return Poll::Ready(());
        }
        if self.keep_waker {
            shared.waiter = Some(cx.waker().clone()); // The fix: someone can now wake us.
        }
        Poll::Pending // Broken version: a Pending that nobody will ever follow up.
    }
}
// ANCHOR_END: flag_poll

// ANCHOR: set
/// Sets the flag and wakes whoever waits for it (if they left a waker).
fn set(shared: &RefCell<Shared>) {
    let waiter = {
        let mut shared = shared.borrow_mut();
        shared.set = true;
        shared.waiter.take()
    };
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}
// ANCHOR_END: set

// ANCHOR: main
fn main() {
    let keep_waker = std::env::args().any(|arg| arg == "fixed");
    stroll::block_on(async move {
        let shared = Rc::new(RefCell::new(Shared::default()));
        let waiter = Builder::new().name("flag waiter").spawn(Flag {
            shared: shared.clone(),
            keep_waker,
        });
        stroll::time::sleep(Duration::from_millis(10)).await;
        set(&shared);
        println!("the flag is set; waiting for the waiter...");
        waiter.await.unwrap();
        println!("the waiter saw the flag: done");
    });
}
// ANCHOR_END: main
