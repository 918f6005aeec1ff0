//! Tasks: spawning, naming, joining, cancelling and yielding.
//!
//! A task is a future the runtime owns. [`spawn`] boxes it, wraps it in a `TaskBody` (which
//! catches panics and delivers the output) and adds it to the runtime's task table; the caller
//! keeps a [`JoinHandle`] to await the output or [`abort`](JoinHandle::abort) the task.
//!
//! The task and its handle share one small cell, `JoinCell`: the task writes the result into
//! it, the handle reads it out. Neither holds the other, so dropping the handle never stops the
//! task (it is *detached*, as in tokio), and a finished task leaves nothing behind but the cell.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use crate::runtime::{self, TaskExit};
use crate::waker::{RuntimeId, TaskKey};

pub use crate::blocking::spawn_blocking;
pub use crate::debug::{Source, TaskDump, TaskInfo, TaskState, Wait};

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

/// A task's id: unique within its runtime, never reused, counting up from 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub(crate) u64);

impl Id {
    /// The id used for the future given to `block_on`, which is not a spawned task.
    pub(crate) const MAIN: Id = Id(0);
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
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
    name: Option<String>,
}

impl Builder {
    /// A builder for an unnamed task.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task. The name appears in panic reports.
    pub fn name(mut self, name: &str) -> Builder {
        self.name = Some(name.to_owned());
        self
    }

    /// Spawns `future` as a task with this configuration; see [`spawn`].
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let spawned_at = Location::caller();
        runtime::with_current("stroll::spawn", |runtime| {
            let id = runtime.next_task_id();
            let cell = Rc::new(RefCell::new(JoinCell {
                stage: Stage::Running,
                waiter: None,
                detached: false,
            }));
            let body = TaskBody {
                future,
                result: ResultSender {
                    id,
                    cell: cell.clone(),
                },
            };
            let key = runtime.spawn(id, self.name, spawned_at, Box::pin(body));
            JoinHandle {
                cell,
                key,
                runtime: runtime::id_of(runtime),
            }
        })
    }
}

/// What the task and its handle share.
struct JoinCell<T> {
    stage: Stage<T>,
    /// The waker of the task awaiting the handle, woken when `stage` becomes `Finished`.
    waiter: Option<Waker>,
    /// The handle was dropped: nobody will read the result.
    detached: bool,
}

/// Where a task is in its life, as its handle sees it.
enum Stage<T> {
    Running,
    Finished(Result<T, JoinError>),
    /// The handle has returned the result.
    Taken,
}

pin_project! {
    /// What the task table actually stores for a task: the user's future, plus the means to
    /// deliver its output. Catches a panic in the future so that it ends only this task.
    struct TaskBody<F: Future> {
        #[pin]
        future: F,
        // Declared after `future`, so it is dropped after it: a cancelled task's destructors have
        // run by the time its handle hears of the cancellation.
        result: ResultSender<F::Output>,
    }
}

// ANCHOR: task_body
impl<F: Future> Future for TaskBody<F> {
    type Output = TaskExit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskExit> {
        let this = self.project();
        let future = this.future;
        // AssertUnwindSafe: after a panic the future is never polled again, only dropped.
        match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                this.result.send(Ok(output));
                Poll::Ready(TaskExit::Done)
            }
            Err(payload) => Poll::Ready(this.result.send_panic(payload)),
        }
    }
}
// ANCHOR_END: task_body

/// The task's end of the [`JoinCell`].
struct ResultSender<T> {
    id: Id,
    cell: Rc<RefCell<JoinCell<T>>>,
}

impl<T> ResultSender<T> {
    /// Stores the task's result and wakes whoever awaits the handle.
    fn send(&self, result: Result<T, JoinError>) {
        let waiter = {
            let mut cell = self.cell.borrow_mut();
            cell.stage = Stage::Finished(result);
            cell.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// Hands a panic to the handle, or back to the loop to report if the handle is gone.
    fn send_panic(&self, payload: Box<dyn Any + Send>) -> TaskExit {
        if self.cell.borrow().detached {
            return TaskExit::Panicked(Some(payload));
        }
        self.send(Err(JoinError::panic(self.id, payload)));
        TaskExit::Panicked(None)
    }
}

impl<T> Drop for ResultSender<T> {
    /// A task dropped before it finished (aborted, or pending when the runtime ended) tells its
    /// handle it was cancelled.
    fn drop(&mut self) {
        let running = matches!(self.cell.borrow().stage, Stage::Running);
        if running {
            self.send(Err(JoinError::cancelled(self.id)));
        }
    }
}

/// An owned permission to await a task's output, or to cancel it.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] if the task panicked or was cancelled.
/// Dropping it detaches the task: the task keeps running, and its output is dropped.
#[must_use = "dropping a JoinHandle detaches the task; await it to get the output"]
pub struct JoinHandle<T> {
    cell: Rc<RefCell<JoinCell<T>>>,
    key: TaskKey,
    runtime: RuntimeId,
}

impl<T> JoinHandle<T> {
    /// Cancels the task: its future is dropped (now, or when its current poll returns if the
    /// task aborts itself), and awaiting this handle gives an error whose
    /// [`is_cancelled`](JoinError::is_cancelled) is true. Does nothing if the task has already
    /// finished.
    pub fn abort(&self) {
        if let Some(runtime) = runtime::try_current() {
            if runtime::id_of(&runtime) == self.runtime {
                runtime.abort(self.key);
            }
        }
    }

    /// Has the task finished (completed, panicked or been cancelled)?
    pub fn is_finished(&self) -> bool {
        !matches!(self.cell.borrow().stage, Stage::Running)
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.key.id
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut cell = self.cell.borrow_mut();
        match std::mem::replace(&mut cell.stage, Stage::Taken) {
            Stage::Finished(result) => Poll::Ready(result),
            Stage::Running => {
                cell.stage = Stage::Running;
                cell.waiter = Some(cx.waker().clone());
                drop(cell);
                runtime::note_wait(crate::debug::WaitNote::Task(self.key.id));
                Poll::Pending
            }
            Stage::Taken => panic!("JoinHandle polled again after it returned the task's result"),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let mut cell = self.cell.borrow_mut();
        cell.detached = true;
        // A panic that nobody looked at is reported rather than silently lost.
        if let Stage::Finished(Err(err)) = &cell.stage {
            if err.is_panic() {
                eprintln!("stroll: a JoinHandle was dropped without looking at its result: {err}");
            }
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

/// Why a task produced no output: it panicked, or it was cancelled.
pub struct JoinError {
    id: Id,
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Box<dyn Any + Send>),
}

impl JoinError {
    fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    fn panic(id: Id, payload: Box<dyn Any + Send>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(payload),
        }
    }

    /// The task was aborted, or was still pending when its runtime ended.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic's payload, to inspect or to pass on with `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the task did not panic (see [`try_into_panic`](JoinError::try_into_panic)).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(err) => {
                panic!("JoinError::into_panic called on an error that is not a panic: {err}")
            }
        }
    }

    /// The panic's payload, or the error itself if the task did not panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }

    /// The id of the task that failed.
    pub fn id(&self) -> Id {
        self.id
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
            Repr::Panic(payload) => write!(
                f,
                "task {} panicked: {}",
                self.id,
                panic_message(payload.as_ref())
            ),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "JoinError::Cancelled({:?})", self.id),
            Repr::Panic(payload) => write!(
                f,
                "JoinError::Panic({:?}, {:?})",
                self.id,
                panic_message(payload.as_ref())
            ),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(err: JoinError) -> io::Error {
        io::Error::other(err.to_string())
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "<a panic payload that is not a string>"
    }
}

/// Lets the other tasks run before the caller continues.
///
/// The first poll wakes the task and returns `Pending`, so the task goes to the back of the
/// run queue. Because the run phase only polls the tasks that were queued when it began, the
/// task runs again in the next turn's run phase, after the reactor and the timers have been
/// checked.
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
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
// ANCHOR_END: yield_now
