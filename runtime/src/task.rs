//! Tasks: spawning, naming, joining, cancelling and yielding.
//!
//! A task is a future the runtime owns. [`spawn`] puts the future in a [`TaskCell`], the task's
//! one allocation, and adds the cell to the runtime's task table (`task_table.rs`); the caller
//! keeps a [`JoinHandle`] to await the output or [`abort`](JoinHandle::abort) the task.
//!
//! The cell holds the future while it runs and its output once it has completed; the handle
//! reads the output through the table. Dropping the handle never stops the task (it is
//! *detached*, as in tokio): the table then drops the output when the task ends.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::blocking;
use crate::ids::{TaskKey, TaskLabel};
use crate::runtime;
use crate::task_table::{BoxedCell, ErasedCell, TaskExit, TaskTable};

pub use crate::ids::{Id, Source, SourceKind};
pub use crate::join_error::JoinError;
pub use crate::observe::{TaskDump, TaskInfo, TaskState, Wait};

/// A snapshot of the current runtime's task table: every live task (and the `block_on` future,
/// as id 0) with its id, name, spawn location, state, what it waits on, and how many times it
/// was polled and woken. `Display` prints it as an aligned table:
///
/// ```
/// stroll::block_on(async {
///     let sleeper = stroll::task::Builder::new().name("sleeper").spawn(async {
///         stroll::time::sleep(std::time::Duration::from_secs(60)).await;
///     });
///     stroll::yield_now().await;
///     let table = stroll::task::dump();
///     print!("{table}");
///     assert!(table.to_string().contains("sleeper"));
///     sleeper.abort();
/// });
/// ```
///
/// # Panics
/// Outside [`crate::block_on`].
#[track_caller]
pub fn dump() -> TaskDump {
    runtime::with_current("stroll::task::dump", |runtime| runtime.dump())
}

/// Spawns `future` as a new task on the current runtime and returns a handle to its output.
///
/// The task does not run until the caller gives the loop a chance (its next `.await` that
/// returns `Pending`); then it runs concurrently with the caller. The future
/// need not be `Send`: tasks never leave the runtime's thread, so an `Rc` held across an
/// `.await` is fine.
///
/// # Panics
/// Outside [`crate::block_on`].
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().spawn(future)
}

/// Configures a task before spawning it: for now, its name.
///
/// ```
/// stroll::block_on(async {
///     let handle = stroll::task::Builder::new().name("greeter").spawn(async { "hi" });
///     assert_eq!(handle.await.unwrap(), "hi");
/// });
/// ```
///
/// Unlike tokio's (unstable) builder, `spawn` returns the handle directly: adding a task to
/// stroll's table cannot fail.
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<Box<str>>,
    /// The task is the one `spawn_blocking` spawns to wait for its job (the task table then
    /// says it waits on the pool).
    blocking_job: bool,
}

impl Builder {
    /// A builder for an unnamed task.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task. The name appears in the task table, traces and panic reports.
    pub fn name(mut self, name: &str) -> Builder {
        self.name = Some(name.into());
        self
    }

    // ANCHOR: spawn
    /// Spawns `future` as a task with this configuration; see [`spawn`].
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let spawned_at = Location::caller();
        // The task's one allocation: pinned in its box, the future never moves again.
        let cell: BoxedCell = Box::pin(TaskCell {
            future: Some(future),
            output: None,
        });
        runtime::with_current("stroll::spawn", |runtime| {
            let label = TaskLabel {
                name: self.name,
                spawned_at,
                blocking_job: self.blocking_job,
            };
            let key = runtime.spawn(label, cell);
            JoinHandle {
                table: runtime.tasks.clone(),
                key,
                done: false,
                output: PhantomData,
            }
        })
    }
    // ANCHOR_END: spawn
}

/// Runs `f` on a thread of the blocking pool (`blocking.rs`) and returns a handle to its result.
///
/// Awaiting the handle does not block the loop. A panic in `f` is caught and returned as a
/// [`JoinError`](crate::JoinError) whose `is_panic()` is true. Aborting the handle does not stop
/// `f` (a thread cannot be interrupted); it only drops the result.
///
/// ```
/// let sum = stroll::block_on(async {
///     stroll::task::spawn_blocking(|| (1..=100u64).sum::<u64>()).await.unwrap()
/// });
/// assert_eq!(sum, 5050);
/// ```
///
/// # Panics
/// Outside [`crate::block_on`].
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Checked before the job reaches the pool: outside a runtime the closure must not run.
    runtime::with_current("stroll::task::spawn_blocking", |_| ());
    Builder::new()
        .name("spawn_blocking")
        .spawn(blocking::run(f))
}

// ANCHOR: task_cell_struct
pin_project! {
    /// A task as the table stores it: the user's future while it runs, then its output until
    /// the handle takes it.
    pub(crate) struct TaskCell<F: Future> {
        // Invariant: `Some` until the future returns `Ready` (or panics); never polled after.
        #[pin]
        future: Option<F>,
        // Invariant: `Some` from the moment the future completed until the handle takes it.
        output: Option<F::Output>,
    }
}
// ANCHOR_END: task_cell_struct

// ANCHOR: task_cell
impl<F> ErasedCell for TaskCell<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskExit> {
        let mut this = self.project();
        // Catch a panic so that it ends only this task. AssertUnwindSafe: after a panic the
        // future is never polled again, only dropped.
        let polled = panic::catch_unwind(AssertUnwindSafe(|| {
            let future = this.future.as_mut().as_pin_mut();
            let poll = future
                .expect("a task is never polled after it ended")
                .poll(cx);
            if poll.is_ready() {
                this.future.set(None); // Drops the finished future in place.
            }
            poll
        }));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                *this.output = Some(output);
                Poll::Ready(TaskExit::Completed)
            }
            Err(payload) => Poll::Ready(TaskExit::Panicked(payload)),
        }
    }

    fn take_output(self: Pin<&mut Self>, out: &mut dyn Any) {
        let this = self.project();
        if let Some(out) = out.downcast_mut::<Option<F::Output>>() {
            *out = this.output.take();
        }
    }
}
// ANCHOR_END: task_cell

/// An owned permission to await a task's output, or to cancel it.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] if the task panicked or was cancelled.
/// Dropping it detaches the task: the task keeps running, and its output is dropped.
#[must_use = "dropping a JoinHandle detaches the task; await it to get the output"]
pub struct JoinHandle<T> {
    /// The table of the runtime the task runs on; the result waits there.
    table: Rc<TaskTable>,
    key: TaskKey,
    /// The handle has returned the result: it must not be polled again.
    done: bool,
    output: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    /// Cancels the task: its future is dropped (now, or when its current poll returns if the
    /// task aborts itself), and awaiting this handle gives an error whose
    /// [`is_cancelled`](JoinError::is_cancelled) is true. Does nothing if the task has already
    /// finished.
    pub fn abort(&self) {
        self.table.abort(self.key);
    }

    /// Has the task finished (completed, panicked or been cancelled)?
    pub fn is_finished(&self) -> bool {
        self.done || self.table.is_finished(self.key)
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.key.id
    }
}

impl<T: 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(
            !self.done,
            "JoinHandle polled again after it returned the task's result"
        );
        let poll = self.table.poll_join(self.key, cx.waker());
        self.done = poll.is_ready();
        poll
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if !self.done {
            self.table.detach(self.key);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.key.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Lets the other tasks run before the caller continues.
///
/// The first poll wakes the task and returns `Pending`, so the task goes to the back of the
/// run queue. Because the run phase only polls the tasks that were queued when it began, the
/// task runs again in the next turn's run phase, after the timers have been checked, and the
/// reactor too: a yield tells the loop to ask epoll for events in this turn (see `coop.rs`).
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[must_use = "futures do nothing unless you .await them"]
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

// ANCHOR: yield_now
impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        crate::coop::give_way(); // The loop checks the reactor before this task runs again.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
// ANCHOR_END: yield_now
