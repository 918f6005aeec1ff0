//! Time: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! A [`Sleep`] is a deadline. Its first poll before the deadline registers the deadline and the
//! task's waker in the runtime's timer store; the loop sleeps in the reactor no longer than the
//! earliest deadline, and when it passes, wakes the task, whose next poll sees the time has come.
//! Dropping a `Sleep` removes its deadline, so a forgotten timer never wakes the loop.
//!
//! ```
//! use std::time::{Duration, Instant};
//! stroll::block_on(async {
//!     let start = Instant::now();
//!     stroll::time::sleep(Duration::from_millis(20)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(20));
//! });
//! ```

use std::fmt;
use std::future::{poll_fn, Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::runtime;
use crate::timers::{TimerKey, Timers};

/// Completes once `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(deadline_after(duration))
}

/// Completes once `deadline` has passed (at once if it already has).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registration: None,
    }
}

/// `now + duration`, or a deadline some decades away if that does not fit in an `Instant`.
fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless you .await them"]
pub struct Sleep {
    deadline: Instant,
    /// The timer store this sleep is registered in, and its key there. `None` until the first
    /// poll before the deadline (a `Sleep` that is never polled costs the runtime nothing).
    registration: Option<(Rc<Timers>, TimerKey)>,
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Has the deadline passed?
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline. The sleep completes at the new deadline, even if the old one passed.
    /// A task already waiting on this sleep keeps waiting, now for the new deadline.
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if let Some((timers, key)) = self.registration.take() {
            self.registration = timers
                .reschedule(key, deadline)
                .map(|new_key| (timers, new_key));
        }
    }

    fn unregister(&mut self) {
        if let Some((timers, key)) = self.registration.take() {
            timers.remove(key);
        }
    }
}

// ANCHOR: sleep
impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A timer the store has fired is due: no need to read the clock (one read per sleep).
        let fired = matches!(&self.registration, Some((timers, key)) if timers.has_fired(*key));
        if fired || self.is_elapsed() {
            self.unregister();
            return Poll::Ready(());
        }
        // Polled again, maybe by another task: keep the newest waker.
        if let Some((timers, key)) = &self.registration {
            if timers.update_waker(*key, cx.waker()) {
                return Poll::Pending;
            }
            // Not registered any more: its runtime ended (the sleep outlived a `block_on`).
        }
        let timers = runtime::with_current("polling a stroll::time::Sleep", |runtime| {
            runtime.timers.clone()
        });
        let key = timers.insert(self.deadline, cx.waker().clone());
        self.registration = Some((timers, key));
        Poll::Pending
    }
}
// ANCHOR_END: sleep

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.registration.is_some())
            .finish()
    }
}

/// Runs `future`, but gives up once `duration` has passed.
///
/// Gives `Ok(output)` if the future completes first, `Err(Elapsed)` otherwise (the future is
/// then dropped with the `Timeout`).
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: future.into_future(),
        sleep: sleep(duration),
    }
}

// ANCHOR: timeout
pin_project! {
    /// The future returned by [`timeout`].
    #[must_use = "futures do nothing unless you .await them"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The future goes first: if it is ready at the deadline, its output wins.
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        ready!(Pin::new(this.sleep).poll(cx));
        Poll::Ready(Err(Elapsed(())))
    }
}
// ANCHOR_END: timeout

/// Errors of this module, where tokio keeps them (`stroll::time::error::Elapsed`).
pub mod error {
    pub use super::Elapsed;
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}

/// A ticker: the first [`tick`](Interval::tick) completes at once, then one every `period`.
///
/// # Panics
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// A ticker whose first tick is at `start`, then one every `period`.
///
/// # Panics
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "interval period must be non-zero");
    Interval {
        period,
        sleep: sleep_until(start),
    }
}

/// The ticker returned by [`interval`].
///
/// Ticks are scheduled at `start + k * period`. If the program falls behind (a tick is awaited
/// late), the missed ticks complete at once, one per call, until it has caught up: tokio's
/// default "burst" behaviour.
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    /// Its deadline is the next tick's scheduled time.
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns the time it was scheduled for.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// The polling form of [`tick`](Interval::tick).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        ready!(Pin::new(&mut self.sleep).poll(cx));
        let tick = self.sleep.deadline();
        self.sleep.reset(tick + self.period);
        Poll::Ready(tick)
    }

    /// The time between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }
}
