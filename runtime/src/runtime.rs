//! The executor and the event loop: [`block_on`], the run queue and the loop's six phases.
//!
//! A runtime lives exactly as long as one call to [`block_on`], on the thread that called it.
//! While it runs, a thread-local (`CURRENT`) points to it, which is how [`crate::spawn`], sockets
//! and timers find it without being handed a handle.
//!
//! The loop is `Runtime::run_until`. Each turn has six phases, each a method you can set a
//! breakpoint on:
//!
//! 1. `poll_main`: poll the future given to `block_on`, if something woke it (it goes first,
//!    whatever the order of the wakes);
//! 2. `run_ready_tasks`: poll the tasks that were in the run queue when this phase began (tasks
//!    woken meanwhile wait for the next turn, as in asyncio's `_run_once`, so that I/O and timers
//!    are checked between batches);
//! 3. `compute_timeout`: zero if work is waiting, else until the next timer, else forever;
//! 4. `wait_for_io`: sleep in `epoll_wait`; wake the tasks whose sockets became ready (while
//!    tasks are ready to run, this happens only every 61 polls, or sooner if a task gave way:
//!    a system call per turn would cost more than the polls between them);
//! 5. `fire_timers`: wake the tasks whose deadlines have passed;
//! 6. `take_remote_wakes`: queue the tasks that other threads woke.
//!
//! Waking a task (phase 4, 5, 6, or one task waking another) only puts its key on the run queue;
//! nothing is polled until phase 2 of a turn. Phases 4-6 test, then call their work; they and
//! the helpers of a poll are `#[inline]`, merged into this loop (see the book's executor chapter).
//!
//! The instruments (the task table's records, debug mode, the trace, the turn log) are not
//! here: the loop tells its [`Observer`] at a few hooks (`runtime/observe/mod.rs`), which does
//! the rest. [`Builder`] switches them on from code; [`block_on`] from the environment
//! (`STROLL_DEBUG`, `STROLL_SLOW_POLL_MS`, `STROLL_TRACE`, `STROLL_LOG`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::coop;
use crate::ids::{IoEvent, TaskKey, TaskLabel};
use crate::observe::{DebugConfig, Observer, Settings, WakeCause};
use crate::reactor::Reactor;
use crate::task_table::{BoxedCell, TaskTable};
use crate::timers::Timers;
use crate::waker::{Remote, RunQueue, TaskWaker};

thread_local! {
    /// The runtime whose `block_on` is running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
}

// ANCHOR: io_check_interval
/// While tasks are ready to run, the loop asks the reactor for events only once every this
/// many polls (tokio checks every 61), unless a task gave way: the system call costs more than
/// many polls.
const IO_CHECK_INTERVAL: u32 = 61;
// ANCHOR_END: io_check_interval

/// Source of runtime ids; each runtime takes the next one.
static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// One runtime: an executor, a reactor and a timer store, all on one thread.
pub(crate) struct Runtime {
    /// Every task that has not ended, and the results their handles have not read yet. Shared
    /// with every `JoinHandle`, which reads its task's result there.
    pub(crate) tasks: Rc<TaskTable>,
    /// The tasks woken since they were last polled.
    run_queue: Rc<RunQueue>,
    pub(crate) reactor: Rc<Reactor>,
    pub(crate) timers: Rc<Timers>,
    /// Wakes from other threads.
    pub(crate) remote: Arc<Remote>,
    /// The waker of the future given to `block_on` (its key is `TaskKey::MAIN`).
    pub(crate) main_waker: Arc<TaskWaker>,
    /// Tasks polled since the reactor was last asked for events (see `wait_for_io`).
    polls_since_io: Cell<u32>,
    /// Buffers the phases fill and empty every turn, kept to avoid an allocation per turn:
    /// the wakers of ready sockets (phase 4), of fired timers (5), the remote keys (6).
    io_ready: RefCell<Vec<(Waker, IoEvent)>>,
    fired: RefCell<Vec<Waker>>,
    remote_keys: RefCell<Vec<TaskKey>>,
    /// The instruments, told what happens at the hooks.
    pub(crate) observer: Rc<Observer>,
}

/// Runs `future` to completion on the current thread, and with it every task it spawns.
///
/// This creates a runtime, runs its event loop until `future` completes, then drops every task
/// that is still pending (their destructors run before `block_on` returns) and returns the
/// future's output.
///
/// # Panics
///
/// - When called from inside another `block_on` on the same thread: the inner call could never
///   give the outer loop a chance to run. Use [`crate::spawn`] (or `.await`) instead.
/// - When `future` panics: the panic passes through, after the runtime has been cleaned up, so
///   `block_on` can be called again.
/// - When nothing can ever wake the loop again (a certain deadlock: see `panic_if_deadlocked`
///   in dump.rs): the message contains `deadlock` and the task table, instead of a program that
///   hangs.
///
/// Debug mode and tracing are taken from the environment (see [`Builder::new`]).
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    Builder::new().block_on(future)
}

/// Configures a runtime, then runs a future on it with [`Builder::block_on`].
///
/// ```
/// use std::time::Duration;
/// let value = stroll::runtime::Builder::new()
///     .debug(true)
///     .slow_poll_threshold(Duration::from_millis(50))
///     .block_on(async { 7 });
/// assert_eq!(value, 7);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    /// What the observer switches on.
    settings: Settings,
}

impl Builder {
    /// Starts from the environment: debug mode if `STROLL_DEBUG` is set (and not `0`), its
    /// slow-poll threshold from `STROLL_SLOW_POLL_MS` (default 100), a trace written to the
    /// path in `STROLL_TRACE`, if set, and the turn log if `STROLL_LOG` is `turns`.
    pub fn new() -> Builder {
        Builder {
            settings: Settings::from_env(),
        }
    }

    /// Switches debug mode on or off: slow-poll warnings, lost-wakeup reports, and the list of
    /// tasks left pending when the runtime ends.
    pub fn debug(mut self, on: bool) -> Builder {
        self.settings.debug = on.then(DebugConfig::default_threshold);
        self
    }

    /// Switches debug mode on, warning about polls longer than `threshold`.
    pub fn slow_poll_threshold(mut self, threshold: Duration) -> Builder {
        self.settings.debug = Some(DebugConfig {
            slow_poll: threshold,
        });
        self
    }

    /// Prints one line per turn of the loop on stderr, as `STROLL_LOG=turns` does (see
    /// `runtime/observe/turns.rs`).
    pub fn turn_log(mut self, on: bool) -> Builder {
        self.settings.turns = on;
        self
    }

    /// Records a trace of the loop to `path` (see `runtime/observe/trace.rs`).
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Builder {
        self.settings.trace = Some(path.into());
        self
    }

    /// Runs `future` to completion on a runtime with these settings; see [`block_on`].
    #[track_caller]
    pub fn block_on<F: Future>(self, future: F) -> F::Output {
        // Checked before the runtime exists, so that a refused nested call touches nothing
        // (not even the trace file of the runtime it is nested in).
        refuse_nesting();
        let runtime = Runtime::new(self, Location::caller());
        let _entered = Entered::enter(runtime.clone());
        // Declared after `_entered`, so it is dropped first, while the runtime is still current.
        let future = pin!(future);
        runtime.run_until(future)
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

/// Panics if a runtime is running on this thread already.
#[track_caller]
fn refuse_nesting() {
    if try_current().is_some() {
        panic!(
            "stroll::block_on was called inside a running stroll runtime; \
             a nested loop would stop the outer one: spawn the future or .await it instead"
        );
    }
}

/// Keeps `CURRENT` set for the duration of `block_on`, and tears the runtime down at the end,
/// also when a panic unwinds through `block_on`.
struct Entered {
    runtime: Rc<Runtime>,
}

impl Entered {
    fn enter(runtime: Rc<Runtime>) -> Entered {
        CURRENT.with(|current| *current.borrow_mut() = Some(runtime.clone()));
        RunQueue::install(runtime.run_queue.clone());
        Entered { runtime }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        // Tasks' destructors run during shutdown and may use the runtime, so `CURRENT` is
        // cleared after it: by this guard, which runs even if shutdown panics.
        struct ClearCurrent;
        impl Drop for ClearCurrent {
            fn drop(&mut self) {
                RunQueue::uninstall();
                let runtime = CURRENT.with(|current| current.borrow_mut().take());
                drop(runtime); // Released outside the thread-local's borrow.
            }
        }
        let _clear = ClearCurrent;
        self.runtime.shutdown();
    }
}

impl Runtime {
    fn new(config: Builder, main_spawned_at: &'static Location<'static>) -> Rc<Runtime> {
        let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
        let (reactor, interrupt) = match Reactor::new() {
            Ok(parts) => parts,
            Err(err) => panic!("stroll: could not create the reactor (epoll): {err}"),
        };
        let observer = Rc::new(Observer::new(config.settings, id, main_spawned_at));
        let remote = Arc::new(Remote::new(interrupt));
        Rc::new(Runtime {
            tasks: Rc::new(TaskTable::new(remote.clone(), observer.clone())),
            run_queue: Rc::new(RunQueue::new(remote.clone(), observer.clone())),
            reactor: Rc::new(reactor),
            timers: Rc::new(Timers::default()),
            main_waker: TaskWaker::new(TaskKey::MAIN, remote.clone()),
            remote,
            polls_since_io: Cell::new(0),
            io_ready: RefCell::new(Vec::new()),
            fired: RefCell::new(Vec::new()),
            remote_keys: RefCell::new(Vec::new()),
            observer,
        })
    }

    // ANCHOR: run_until
    /// The event loop: one turn per iteration, six phases per turn (see the module docs).
    fn run_until<F: Future>(&self, mut main: Pin<&mut F>) -> F::Output {
        loop {
            // Phase 1: the future given to block_on.
            if let Poll::Ready(output) = self.poll_main(main.as_mut()) {
                return output;
            }
            // Phase 2: the tasks that were ready when this turn began.
            self.run_ready_tasks();
            // Phase 3: how long may the reactor sleep?
            let timeout = self.compute_timeout();
            // Phase 4: wait for I/O events, wake the tasks waiting on them.
            self.wait_for_io(timeout);
            // Phase 5: wake the tasks whose deadlines have passed.
            self.fire_timers();
            // Phase 6: queue the tasks woken from other threads.
            self.take_remote_wakes();
            self.observer.turn_ended(timeout);
        }
    }
    // ANCHOR_END: run_until

    /// Phase 1: polls the `block_on` future if it was woken since its last poll.
    fn poll_main<F: Future>(&self, main: Pin<&mut F>) -> Poll<F::Output> {
        if !self.run_queue.take_main_woken() {
            return Poll::Pending;
        }
        self.main_waker.unschedule();
        let waker = futures_task::waker_ref(&self.main_waker);
        let mut cx = Context::from_waker(&waker);
        self.start_poll(TaskKey::MAIN);
        // A panic passes through `block_on`, but only after the poll has been closed: the
        // shutdown that follows must not see the future as still being polled.
        let poll = panic::catch_unwind(AssertUnwindSafe(|| main.poll(&mut cx)));
        let ready = matches!(poll, Ok(Poll::Ready(_)));
        self.end_poll(TaskKey::MAIN, ready, &self.main_waker);
        match poll {
            Ok(poll) => poll,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Before a poll: give it a fresh I/O budget and tell the observer.
    #[inline]
    fn start_poll(&self, key: TaskKey) {
        self.observer.poll_started(key);
        coop::start_poll();
    }

    /// After a poll of the task whose waker is `waker`.
    #[inline]
    fn end_poll(&self, key: TaskKey, ready: bool, waker: &Arc<TaskWaker>) {
        coop::end_poll();
        self.polls_since_io.set(self.polls_since_io.get() + 1);
        self.observer
            .poll_ended(key, ready, || TaskWaker::is_unreachable(waker));
    }

    /// Phase 2: polls each task that was queued when the turn began, once.
    #[inline]
    fn run_ready_tasks(&self) {
        let ready_at_start = self.run_queue.len();
        for _ in 0..ready_at_start {
            let Some(key) = self.run_queue.pop() else {
                break;
            };
            self.run_task(key);
        }
    }

    // ANCHOR: run_task
    /// Polls one task in place, then parks it again or records its end.
    #[inline]
    fn run_task(&self, key: TaskKey) {
        // The cell and waker leave the table for the poll; `scheduled` is cleared.
        let Some((mut cell, waker)) = self.tasks.take_for_poll(key) else {
            return; // The task ended after it was queued.
        };
        // A `Waker` borrowed from the task's `Arc`: no reference counting for the poll.
        let waker_ref = futures_task::waker_ref(&waker);
        let mut cx = Context::from_waker(&waker_ref);
        self.start_poll(key);
        let poll = cell.as_mut().poll_task(&mut cx);
        self.end_poll(key, poll.is_ready(), &waker);
        match poll {
            Poll::Pending => self.tasks.park(key, cell, waker),
            Poll::Ready(exit) => self.tasks.finish(key, cell, waker, exit),
        }
    }
    // ANCHOR_END: run_task

    // ANCHOR: compute_timeout
    /// Phase 3: zero if something is ready to run, else the time to the next timer, else
    /// `None` (sleep until an I/O event or a wake from another thread).
    #[inline]
    fn compute_timeout(&self) -> Option<Duration> {
        if self.run_queue.has_work() {
            return Some(Duration::ZERO);
        }
        let next = self.timers.next_deadline()?;
        Some(next.saturating_duration_since(Instant::now()))
    }
    // ANCHOR_END: compute_timeout

    // ANCHOR: wait_for_io
    /// Phase 4: waits in the reactor, then wakes the tasks whose sockets became ready.
    ///
    /// With tasks ready to run (a zero timeout), the reactor is asked only once every
    /// `IO_CHECK_INTERVAL` polls, or when a task gave way (`yield_now`, a spent I/O budget):
    /// `epoll_wait` is a system call, dearer than dozens of polls, and a turn that runs one
    /// task (two tasks passing messages back and forth) would otherwise pay one per message.
    #[inline]
    fn wait_for_io(&self, timeout: Option<Duration>) {
        let gave_way = coop::take_gave_way();
        let busy = timeout == Some(Duration::ZERO);
        if busy && !gave_way && self.polls_since_io.get() < IO_CHECK_INTERVAL {
            return;
        }
        self.polls_since_io.set(0);
        self.wait_and_wake(timeout);
    }

    /// Phase 4's work: `epoll_wait`, then the wakes.
    fn wait_and_wake(&self, timeout: Option<Duration>) {
        self.observer.io_wait_started(timeout);
        if timeout.is_none() {
            self.panic_if_deadlocked(); // About to sleep until an event: can one come? (dump.rs)
        }
        let mut io_ready = self.io_ready.take();
        let events = self.reactor.wait(timeout, &mut io_ready);
        self.observer.io_wait_ended(timeout, events);
        for (waker, event) in io_ready.drain(..) {
            self.observer.waking_because(WakeCause::Io(event));
            waker.wake();
        }
        self.observer.waking_because(WakeCause::Other);
        *self.io_ready.borrow_mut() = io_ready;
    }
    // ANCHOR_END: wait_for_io

    // ANCHOR: fire_timers
    /// Phase 5: wakes every sleeper whose deadline has passed, earliest first.
    #[inline]
    fn fire_timers(&self) {
        if self.timers.is_empty() {
            return; // No timers: not even a clock reading.
        }
        self.wake_due_timers();
    }

    /// Phase 5's work, when there are timers.
    fn wake_due_timers(&self) {
        let mut fired = self.fired.take();
        self.timers.fire_due(Instant::now(), &mut fired);
        self.observer.waking_because(WakeCause::Timer);
        for waker in fired.drain(..) {
            waker.wake();
        }
        self.observer.waking_because(WakeCause::Other);
        *self.fired.borrow_mut() = fired;
    }
    // ANCHOR_END: fire_timers

    /// Phase 6: queues the tasks that other threads woke since the last turn.
    #[inline]
    fn take_remote_wakes(&self) {
        if self.remote.is_quiet() {
            return; // The common case: no other thread woke anything.
        }
        self.queue_remote_wakes();
    }

    /// Phase 6's work, when another thread woke something.
    fn queue_remote_wakes(&self) {
        let mut keys = self.remote_keys.take();
        self.remote.take(&mut keys);
        self.observer.waking_because(WakeCause::CrossThread);
        for key in keys.drain(..) {
            self.run_queue.push(key);
        }
        self.observer.waking_because(WakeCause::Other);
        *self.remote_keys.borrow_mut() = keys;
    }

    // ANCHOR: queue_spawned
    /// Adds a task to the table and queues it for its first poll.
    pub(crate) fn spawn(&self, label: TaskLabel, cell: BoxedCell) -> TaskKey {
        let key = self.tasks.insert(cell);
        self.observer.spawned(key, label);
        self.run_queue.push_spawned(key);
        key
    }
    // ANCHOR_END: queue_spawned

    /// Ends the runtime: drops every task still pending, forgets timers and closes the inbox
    /// of remote wakes.
    fn shutdown(&self) {
        self.tasks.shut_down();
        self.run_queue.clear();
        self.timers.clear();
        self.reactor.close();
        self.remote.close();
        self.observer.finish();
    }
}

/// Calls `f` with the runtime running on this thread.
///
/// # Panics
/// Outside `block_on`, with a message naming `what` was attempted.
#[track_caller]
pub(crate) fn with_current<R>(what: &str, f: impl FnOnce(&Rc<Runtime>) -> R) -> R {
    // `f` runs while the thread-local is borrowed (no clone of the `Rc`): callers only add
    // to the runtime, they never run user code or enter another runtime.
    CURRENT.with(|current| match &*current.borrow() {
        Some(runtime) => f(runtime),
        None => panic!(
            "{what} must be called from inside a stroll runtime: \
             run your async code with stroll::block_on"
        ),
    })
}

/// The runtime running on this thread, if any.
pub(crate) fn try_current() -> Option<Rc<Runtime>> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// The reactor of the runtime running on this thread.
#[track_caller]
pub(crate) fn current_reactor() -> Rc<Reactor> {
    with_current("creating a stroll socket", |runtime| {
        runtime.reactor.clone()
    })
}
