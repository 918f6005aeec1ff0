//! Cooperative scheduling: a budget of I/O operations per poll.
//!
//! A task only gives the loop back when it returns `Pending`. A task reading a socket that
//! always has data would never see `Pending`: every `read().await` completes at once, and the
//! task loops forever while timers and other sockets wait. tokio met exactly this in its own
//! chat example (tokio issue 192).
//!
//! The cure, also tokio's: before each poll the executor gives the task a budget of
//! [`BUDGET_PER_POLL`] operations. Every I/O operation that *completes* spends one unit (one that
//! only parks costs nothing, so a task may wait on any number of sockets). When the budget is
//! spent, the next operation wakes its own task and returns `Pending` although it could proceed:
//! the task goes to the back of the run queue, and the loop serves the reactor and the timers
//! before polling it again.
//!
//! "Serves the reactor" is a promise the loop must be told about: while tasks are ready it asks
//! epoll for events only every 61 polls. So a task that gives way (a spent budget, or
//! [`crate::yield_now`]) also calls [`give_way`], and the loop's next reactor phase asks epoll
//! even if fewer polls have passed (tokio defers a yielding task's wake past its driver for the
//! same reason).

use std::cell::Cell;
use std::task::{Context, Poll};

/// How many I/O operations one poll of a task may complete before it must yield.
pub(crate) const BUDGET_PER_POLL: u32 = 128;

thread_local! {
    /// The budget of the poll running on this thread. `None` outside a poll (for example while
    /// the loop itself runs), where operations are never throttled.
    static BUDGET: Cell<Option<u32>> = const { Cell::new(None) };

    /// A task gave way since the loop's last reactor phase: the next one must ask epoll.
    static GAVE_WAY: Cell<bool> = const { Cell::new(false) };
}

/// Gives the poll that is about to start a fresh budget.
#[inline]
pub(crate) fn start_poll() {
    BUDGET.with(|budget| budget.set(Some(BUDGET_PER_POLL)));
}

/// Called when a poll ends: operations outside a poll are not throttled.
#[inline]
pub(crate) fn end_poll() {
    BUDGET.with(|budget| budget.set(None));
}

// ANCHOR: budget
/// May an operation go ahead? `Pending` (after waking the task, so that it runs again on the
/// next turn of the loop) when the current poll's budget is spent.
#[inline]
pub(crate) fn poll_budget(cx: &mut Context<'_>) -> Poll<()> {
    if BUDGET.with(Cell::get) == Some(0) {
        give_way();
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(())
}

/// An operation completed: spends one unit of the current poll's budget.
#[inline]
pub(crate) fn spend() {
    BUDGET.with(|budget| {
        if let Some(left) = budget.get() {
            budget.set(Some(left.saturating_sub(1)));
        }
    });
}
// ANCHOR_END: budget

/// The task being polled gives the loop back so that others, and the reactor, get a turn.
pub(crate) fn give_way() {
    GAVE_WAY.with(|gave_way| gave_way.set(true));
}

/// Did a task give way since the last call? (Asked by the loop's reactor phase.)
#[inline]
pub(crate) fn take_gave_way() -> bool {
    GAVE_WAY.with(|gave_way| gave_way.replace(false))
}
