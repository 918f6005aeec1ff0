//! Cooperative scheduling: a budget of I/O operations per poll.
//!
//! A task only gives the loop back when it returns `Pending`. A task reading a socket that
//! always has data would never see `Pending`: every `read().await` completes at once, and the
//! task loops forever while timers and other sockets wait. tokio met exactly this in its own
//! chat example (tokio issue 192).
//!
//! The cure, also tokio's: before each poll the executor gives the task a budget of
//! [`BUDGET_PER_POLL`] operations. Every I/O operation spends one unit. When the budget is
//! spent, the operation wakes its own task and returns `Pending` although it could proceed: the
//! task goes to the back of the run queue, and the loop serves the reactor and the timers before
//! polling it again.

use std::cell::Cell;
use std::task::{Context, Poll};

/// How many I/O operations one poll of a task may complete before it must yield.
pub(crate) const BUDGET_PER_POLL: u32 = 128;

thread_local! {
    /// The budget of the poll running on this thread. `None` outside a poll (for example while
    /// the loop itself runs), where operations are never throttled.
    static BUDGET: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Gives the poll that is about to start a fresh budget.
pub(crate) fn start_poll() {
    BUDGET.with(|budget| budget.set(Some(BUDGET_PER_POLL)));
}

/// Called when a poll ends: operations outside a poll are not throttled.
pub(crate) fn end_poll() {
    BUDGET.with(|budget| budget.set(None));
}

/// Spends one unit of the current poll's budget.
///
/// Returns `Pending` (after waking the task, so it runs again on the next turn of the loop)
/// when the budget is already spent.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    BUDGET.with(|budget| match budget.get() {
        None => Poll::Ready(()),
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(left) => {
            budget.set(Some(left - 1));
            Poll::Ready(())
        }
    })
}
