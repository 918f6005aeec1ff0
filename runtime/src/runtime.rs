//! The executor and the event loop: [`block_on`], the task table, the run queue.
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
//!    tasks are ready to run, this happens only every 61 polls: a system call per turn would
//!    cost more than the polls between them);
//! 5. `fire_timers`: wake the tasks whose deadlines have passed;
//! 6. `take_remote_wakes`: queue the tasks that other threads woke.
//!
//! Waking a task (phase 4, 5, 6, or one task waking another) only puts its key on the run queue;
//! nothing is polled until phase 2 of a turn.
//!
//! [`Builder`] creates a runtime with debug mode or tracing switched on from code; [`block_on`]
//! takes both settings from the environment (`STROLL_DEBUG`, `STROLL_SLOW_POLL_MS`,
//! `STROLL_TRACE`; see `debug.rs` and `trace.rs`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::coop;
use crate::debug::{
    self, DebugConfig, TaskDump, TaskInfo, TaskState, Wait, WaitKind, WaitNote, WaitRecord,
};
use crate::reactor::Reactor;
use crate::task::Id;
use crate::timers::Timers;
use crate::trace::{Tracer, WakeCause};
use crate::waker::{task_waker, Remote, RuntimeId, TaskKey, TaskWaker};

thread_local! {
    /// The runtime whose `block_on` is running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
}

/// How many wakers of finished tasks a runtime keeps for reuse.
const SPARE_WAKERS: usize = 1024;

/// While tasks are ready to run, the loop asks the reactor for events only once every this
/// many polls (tokio checks every 61): the system call costs more than many polls.
const IO_CHECK_INTERVAL: u32 = 61;

/// Source of runtime ids; each runtime takes the next one.
static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// A task's future as the task table stores it: boxed, pinned, its output type erased.
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = TaskExit>>>;

/// How a task's future ended, as far as the loop needs to know.
pub(crate) enum TaskExit {
    /// The result went to the task's `JoinHandle` (or was dropped with no one to read it).
    Done,
    /// The task panicked. The payload is here only if the `JoinHandle` had been dropped: the
    /// loop then reports the panic; otherwise the handle has it.
    Panicked(Option<Box<dyn Any + Send>>),
}

/// One entry of the task table.
pub(crate) struct Task {
    pub(crate) id: Id,
    pub(crate) name: Option<String>,
    /// Where `spawn` was called.
    pub(crate) spawned_at: &'static Location<'static>,
    /// The task's future. `None` exactly while the loop is polling it: the future is moved out
    /// of the table so that no borrow of the table is held while user code runs.
    future: Option<TaskFuture>,
    /// The waker behind every poll of this task: made (or recycled) at its first poll, then
    /// kept. Like `future`, moved out of the table while the task is polled.
    waker: Option<Arc<TaskWaker>>,
    /// Set when the task's key is pushed on the run queue, cleared when it is popped to be
    /// polled. Invariant: a task has at most one key in the queue, so a task woken twice is
    /// polled once. (Keys of tasks that ended stay in the queue and are skipped when popped.)
    scheduled: bool,
    /// The task aborted itself while being polled; the loop drops it when the poll returns.
    abort_requested: bool,
    stats: Stats,
}

/// What the task table counts for each task, and for the `block_on` future.
#[derive(Default)]
struct Stats {
    polls: u64,
    wakes: u64,
    /// What the task registered with during its last poll (the first two things: a socket
    /// and a timer, for a read under a timeout); cleared when a poll starts. Kept inline
    /// rather than in a `Vec`, whose first push would allocate room for four, for every idle
    /// connection.
    waiting_on: [WaitRecord; 2],
}

impl Task {
    /// Drops the task and its future. A panic in the future's destructor is caught and
    /// reported, so that it cannot escape into whatever code happened to drop the task (another
    /// task calling `abort`, or the shutdown of the runtime).
    fn dispose(mut self) {
        let future = self.future.take();
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(future))) {
            eprintln!(
                "stroll: {} panicked while being dropped: {}",
                self.describe(),
                crate::task::panic_message(payload.as_ref())
            );
        }
    }

    /// "task 7 'name' (spawned at src/main.rs:10:5)", for messages on stderr.
    fn describe(&self) -> String {
        describe(self.id, self.name.as_deref(), self.spawned_at)
    }

    /// The name shown in traces: the task's name, or "task N".
    fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("task {}", self.id),
        }
    }
}

/// "task 7 'name' (spawned at src/main.rs:10:5)".
fn describe(id: Id, name: Option<&str>, spawned_at: &Location<'_>) -> String {
    format!(
        "task {id} '{}' (spawned at {spawned_at})",
        name.unwrap_or("<unnamed>")
    )
}

/// One runtime: an executor, a reactor and a timer store, all on one thread.
pub(crate) struct Runtime {
    id: RuntimeId,
    /// Every task that has not finished. A task's index here is its `TaskKey::slot`.
    tasks: RefCell<Slab<Task>>,
    /// Keys of the tasks to poll, in the order they were woken. Keys of tasks that ended since
    /// they were queued are skipped when they come up.
    run_queue: RefCell<VecDeque<TaskKey>>,
    /// The future given to `block_on` was woken and has not been polled since.
    main_woken: Cell<bool>,
    /// The id the next spawned task gets. Ids are never reused within a runtime.
    next_task_id: Cell<u64>,
    pub(crate) reactor: Rc<Reactor>,
    pub(crate) timers: Rc<Timers>,
    /// Wakes from other threads.
    remote: Arc<Remote>,
    /// Wakers of fired timers, reused from turn to turn to avoid an allocation per turn.
    fired: RefCell<Vec<Waker>>,
    /// Wakers of finished tasks that nobody else held, ready for new tasks: most tasks then
    /// cost no allocation for their waker. At most `SPARE_WAKERS`.
    spare_wakers: RefCell<Vec<Arc<TaskWaker>>>,
    /// Tasks polled since the reactor was last asked for events (see `wait_for_io`).
    polls_since_io: Cell<u32>,
    /// Wakers of tasks whose sockets became ready, with why; reused like `fired`.
    io_ready: RefCell<Vec<(Waker, WakeCause)>>,
    /// The task being polled right now (`TaskKey::MAIN` for the `block_on` future), if any.
    polling: Cell<Option<TaskKey>>,
    /// Why tasks are being woken when no task is being polled; set by each phase.
    waking_because: Cell<WakeCause>,
    /// Where `block_on` was called, and the task-table counters of its future.
    main_spawned_at: &'static Location<'static>,
    main_stats: RefCell<Stats>,
    /// `Some` in debug mode.
    debug: Option<DebugConfig>,
    /// `Some` while tracing.
    tracer: Option<Tracer>,
    /// When the runtime was created: timer deadlines in the task table count from here.
    started: Instant,
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
    debug: Option<DebugConfig>,
    trace: Option<PathBuf>,
}

impl Builder {
    /// Starts from the environment: debug mode if `STROLL_DEBUG` is set (and not `0`), its
    /// slow-poll threshold from `STROLL_SLOW_POLL_MS` (default 100), and a trace written to
    /// the path in `STROLL_TRACE`, if set.
    pub fn new() -> Builder {
        Builder {
            debug: DebugConfig::from_env(),
            trace: std::env::var_os("STROLL_TRACE")
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
        }
    }

    /// Switches debug mode on or off: slow-poll warnings, and the list of tasks left pending
    /// when the runtime ends (see `debug.rs`).
    pub fn debug(mut self, on: bool) -> Builder {
        self.debug = on.then(|| DebugConfig {
            slow_poll: debug::slow_poll_from_env().unwrap_or(debug::DEFAULT_SLOW_POLL),
        });
        self
    }

    /// Switches debug mode on, warning about polls longer than `threshold`.
    pub fn slow_poll_threshold(mut self, threshold: Duration) -> Builder {
        self.debug = Some(DebugConfig {
            slow_poll: threshold,
        });
        self
    }

    /// Records a trace of the loop to `path` (see `trace.rs`).
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Builder {
        self.trace = Some(path.into());
        self
    }

    /// Runs `future` to completion on a runtime with these settings; see [`block_on`].
    #[track_caller]
    pub fn block_on<F: Future>(self, future: F) -> F::Output {
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

/// Keeps `CURRENT` set for the duration of `block_on`, and tears the runtime down at the end,
/// also when a panic unwinds through `block_on`.
struct Entered {
    runtime: Rc<Runtime>,
}

impl Entered {
    #[track_caller]
    fn enter(runtime: Rc<Runtime>) -> Entered {
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            if current.is_some() {
                panic!(
                    "stroll::block_on was called inside a running stroll runtime; \
                     a nested loop would stop the outer one: spawn the future or .await it instead"
                );
            }
            *current = Some(runtime.clone());
        });
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
                let runtime = CURRENT.with(|current| current.borrow_mut().take());
                drop(runtime); // Released outside the thread-local's borrow.
            }
        }
        let _clear = ClearCurrent;
        self.runtime.shutdown();
    }
}

impl Runtime {
    #[track_caller]
    fn new(config: Builder, main_spawned_at: &'static Location<'static>) -> Rc<Runtime> {
        let (reactor, interrupt) = match Reactor::new() {
            Ok(parts) => parts,
            Err(err) => panic!("stroll: could not create the reactor (epoll): {err}"),
        };
        let tracer = config.trace.and_then(|path| match Tracer::create(&path) {
            Ok(tracer) => Some(tracer),
            Err(err) => {
                eprintln!("stroll: cannot write a trace to {}: {err}", path.display());
                None
            }
        });
        Rc::new(Runtime {
            id: NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed),
            tasks: RefCell::new(Slab::new()),
            run_queue: RefCell::new(VecDeque::new()),
            main_woken: Cell::new(true),
            next_task_id: Cell::new(1),
            reactor: Rc::new(reactor),
            timers: Rc::new(Timers::default()),
            remote: Arc::new(Remote::new(interrupt)),
            fired: RefCell::new(Vec::new()),
            spare_wakers: RefCell::new(Vec::new()),
            polls_since_io: Cell::new(0),
            io_ready: RefCell::new(Vec::new()),
            polling: Cell::new(None),
            waking_because: Cell::new(WakeCause::Other),
            main_spawned_at,
            main_stats: RefCell::default(),
            debug: config.debug,
            tracer,
            started: Instant::now(),
        })
    }

    // ANCHOR: run_until
    /// The event loop: one turn per iteration, six phases per turn (see the module docs).
    fn run_until<F: Future>(&self, mut main: Pin<&mut F>) -> F::Output {
        let main_waker = task_waker(self.id, TaskKey::MAIN, self.remote.clone());
        let main_waker = futures_task::waker_ref(&main_waker);
        loop {
            // Phase 1: the future given to block_on.
            if let Poll::Ready(output) = self.poll_main(main.as_mut(), &main_waker) {
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
        }
    }
    // ANCHOR_END: run_until

    /// Phase 1: polls the `block_on` future if it was woken since its last poll.
    fn poll_main<F: Future>(&self, main: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
        if !self.main_woken.replace(false) {
            return Poll::Pending;
        }
        let mut cx = Context::from_waker(waker);
        self.start_poll(TaskKey::MAIN, &mut self.main_stats.borrow_mut());
        let started = self.clock();
        let poll = main.poll(&mut cx);
        self.end_poll();
        if let Some(started) = started {
            let name = "block_on";
            self.observe_poll(
                Id::MAIN,
                name,
                Some(name),
                self.main_spawned_at,
                started,
                poll.is_ready(),
            );
        }
        poll
    }

    /// `Some(now)` when something (debug mode, a trace) wants polls timed.
    fn clock(&self) -> Option<Instant> {
        (self.debug.is_some() || self.tracer.is_some()).then(Instant::now)
    }

    /// Before a poll: note who is being polled, give it a fresh I/O budget, forget what it
    /// waited on last time.
    fn start_poll(&self, key: TaskKey, stats: &mut Stats) {
        stats.polls += 1;
        stats.waiting_on = Default::default();
        self.polling.set(Some(key));
        coop::start_poll();
    }

    fn end_poll(&self) {
        coop::end_poll();
        self.polling.set(None);
        self.polls_since_io.set(self.polls_since_io.get() + 1);
    }

    /// After a timed poll: the slow-poll warning (debug mode) and the trace event.
    fn observe_poll(
        &self,
        id: Id,
        label: &str,
        name: Option<&str>,
        spawned_at: &Location<'_>,
        started: Instant,
        ready: bool,
    ) {
        let ended = Instant::now();
        let took = ended - started;
        if let Some(debug) = &self.debug {
            if took > debug.slow_poll {
                eprintln!(
                    "stroll: slow poll: {} held the loop for {} (threshold {}); \
                     is it blocking? move blocking work to spawn_blocking",
                    describe(id, name, spawned_at),
                    debug::millis(took),
                    debug::millis(debug.slow_poll)
                );
            }
        }
        if let Some(tracer) = &self.tracer {
            tracer.poll(id, label, started, ended, ready);
        }
    }

    /// Phase 2: polls each task that was queued when the turn began, once.
    fn run_ready_tasks(&self) {
        let ready_at_start = self.run_queue.borrow().len();
        for _ in 0..ready_at_start {
            let Some(key) = self.run_queue.borrow_mut().pop_front() else {
                break;
            };
            self.run_task(key);
        }
    }

    // ANCHOR: run_task
    /// Polls one task, then puts its future back in the table or removes the finished task.
    fn run_task(&self, key: TaskKey) {
        let Some((mut future, waker)) = self.take_for_poll(key) else {
            return; // The task ended after it was queued.
        };
        // A `Waker` borrowed from the task's `Arc`: no reference counting for the poll.
        let waker_ref = futures_task::waker_ref(&waker);
        let mut cx = Context::from_waker(&waker_ref);
        let started = self.clock();
        let poll = future.as_mut().poll(&mut cx);
        self.end_poll();
        if let Some(started) = started {
            let tasks = self.tasks.borrow();
            let task = &tasks[key.slot];
            let (name, at) = (task.name.as_deref(), task.spawned_at);
            self.observe_poll(key.id, &task.label(), name, at, started, poll.is_ready());
        }
        match poll {
            Poll::Pending => self.park(key, future, waker),
            Poll::Ready(exit) => {
                self.recycle_waker(waker);
                let mut task = self.tasks.borrow_mut().remove(key.slot);
                let how = match exit {
                    TaskExit::Done => "completed",
                    TaskExit::Panicked(None) => "panicked",
                    TaskExit::Panicked(Some(payload)) => {
                        report_detached_panic(&task, payload.as_ref());
                        "panicked"
                    }
                };
                self.trace_exit(key.id, how);
                task.future = Some(future);
                task.dispose(); // Outside the borrow: destructors may use the runtime.
            }
        }
    }
    // ANCHOR_END: run_task

    fn trace_exit(&self, id: Id, how: &str) {
        if let Some(tracer) = &self.tracer {
            tracer.exit(id, how);
        }
    }

    /// Moves a queued task's future out of the table for polling, with its waker.
    fn take_for_poll(&self, key: TaskKey) -> Option<(TaskFuture, Arc<TaskWaker>)> {
        let mut tasks = self.tasks.borrow_mut();
        let task = tasks.get_mut(key.slot).filter(|task| task.id == key.id)?;
        task.scheduled = false;
        let future = task.future.take()?;
        let waker = match task.waker.take() {
            Some(waker) => waker,
            None => self.new_waker(key),
        };
        self.start_poll(key, &mut task.stats);
        Some((future, waker))
    }

    /// A waker for task `key`: a spare one if there is one, else a new one.
    fn new_waker(&self, key: TaskKey) -> Arc<TaskWaker> {
        match self.spare_wakers.borrow_mut().pop() {
            Some(spare) => TaskWaker::reuse(spare, key)
                .unwrap_or_else(|_| task_waker(self.id, key, self.remote.clone())),
            None => task_waker(self.id, key, self.remote.clone()),
        }
    }

    /// Keeps a finished task's waker for the next task, if nobody else holds a clone of it
    /// (a clone must keep naming the finished task, whose wakes are then ignored).
    fn recycle_waker(&self, waker: Arc<TaskWaker>) {
        let mut spares = self.spare_wakers.borrow_mut();
        if Arc::strong_count(&waker) == 1 && spares.len() < SPARE_WAKERS {
            spares.push(waker);
        }
    }

    /// Puts back the future of a task that returned `Pending`, unless it aborted itself.
    fn park(&self, key: TaskKey, future: TaskFuture, waker: Arc<TaskWaker>) {
        let mut tasks = self.tasks.borrow_mut();
        let task = &mut tasks[key.slot];
        task.waker = Some(waker);
        if !task.abort_requested {
            task.future = Some(future);
            return;
        }
        let mut task = tasks.remove(key.slot);
        drop(tasks);
        self.trace_exit(key.id, "aborted");
        task.future = Some(future);
        task.dispose();
    }

    /// Phase 3: zero if something is ready to run, else the time to the next timer, else
    /// `None` (sleep until an I/O event or a wake from another thread).
    fn compute_timeout(&self) -> Option<Duration> {
        if self.main_woken.get() || !self.run_queue.borrow().is_empty() {
            return Some(Duration::ZERO);
        }
        let next = self.timers.next_deadline()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    // ANCHOR: wait_for_io
    /// Phase 4: waits in the reactor, then wakes the tasks whose sockets became ready.
    ///
    /// With tasks ready to run (a zero timeout), the reactor is asked only once every
    /// `IO_CHECK_INTERVAL` polls: `epoll_wait` is a system call, dearer than dozens of polls,
    /// and a turn that runs one task (two tasks passing messages back and forth) would
    /// otherwise pay one per message. Sockets still get their turn within 61 polls.
    fn wait_for_io(&self, timeout: Option<Duration>) {
        if timeout == Some(Duration::ZERO) && self.polls_since_io.get() < IO_CHECK_INTERVAL {
            return;
        }
        self.polls_since_io.set(0);
        let mut io_ready = self.io_ready.take();
        let started = self.tracer.as_ref().map(|_| Instant::now());
        let events = self.reactor.wait(timeout, &mut io_ready);
        if let (Some(tracer), Some(started)) = (&self.tracer, started) {
            tracer.reactor_wait(started, Instant::now(), timeout, events);
        }
        for (waker, cause) in io_ready.drain(..) {
            self.waking_because.set(cause);
            waker.wake();
        }
        self.waking_because.set(WakeCause::Other);
        *self.io_ready.borrow_mut() = io_ready;
    }
    // ANCHOR_END: wait_for_io

    /// Phase 5: wakes every sleeper whose deadline has passed, earliest first.
    fn fire_timers(&self) {
        if self.timers.next_deadline().is_none() {
            return; // No timers: not even a clock reading.
        }
        let mut fired = self.fired.take();
        self.timers.fire_due(Instant::now(), &mut fired);
        self.waking_because.set(WakeCause::Timer);
        for waker in fired.drain(..) {
            waker.wake();
        }
        self.waking_because.set(WakeCause::Other);
        *self.fired.borrow_mut() = fired;
    }

    /// Phase 6: queues the tasks that other threads woke since the last turn.
    fn take_remote_wakes(&self) {
        self.waking_because.set(WakeCause::CrossThread);
        for key in self.remote.take() {
            self.schedule(key);
        }
        self.waking_because.set(WakeCause::Other);
    }

    /// Why a wake happening now happens: the task being polled woke it (or itself), or the
    /// phase that is running says.
    fn wake_cause(&self, woken: TaskKey) -> WakeCause {
        match self.polling.get() {
            Some(polling) if polling == woken => WakeCause::SelfWake,
            Some(polling) => WakeCause::Task(polling.id),
            None => self.waking_because.get(),
        }
    }

    // ANCHOR: schedule
    /// Puts a woken task on the run queue, unless it is already there or has ended.
    fn schedule(&self, key: TaskKey) {
        if let Some(tracer) = &self.tracer {
            tracer.wake(key.id, &self.wake_cause(key));
        }
        if key == TaskKey::MAIN {
            self.main_stats.borrow_mut().wakes += 1;
            self.main_woken.set(true);
            return;
        }
        let mut tasks = self.tasks.borrow_mut();
        let Some(task) = tasks.get_mut(key.slot).filter(|task| task.id == key.id) else {
            return; // A late wake for a task that has ended: ignore it.
        };
        task.stats.wakes += 1;
        if !task.scheduled {
            task.scheduled = true;
            self.run_queue.borrow_mut().push_back(key);
        }
    }
    // ANCHOR_END: schedule

    /// Records that the task being polled now waits on `wait` (for the task table).
    fn note_wait(&self, wait: WaitNote) {
        let Some(key) = self.polling.get() else {
            return;
        };
        let mut main_stats;
        let mut tasks;
        let stats = if key == TaskKey::MAIN {
            main_stats = self.main_stats.borrow_mut();
            &mut *main_stats
        } else {
            tasks = self.tasks.borrow_mut();
            match tasks.get_mut(key.slot) {
                Some(task) => &mut task.stats,
                None => return,
            }
        };
        let record = self.record_of(wait);
        if stats.waiting_on.contains(&record) {
            return;
        }
        if let Some(free) = stats
            .waiting_on
            .iter_mut()
            .find(|r| r.kind == WaitKind::Nothing)
        {
            *free = record;
        }
    }

    /// A wait as the task table stores it.
    fn record_of(&self, wait: WaitNote) -> WaitRecord {
        let (kind, value) = match wait {
            WaitNote::Readable(key) => (WaitKind::Readable, key as u64),
            WaitNote::Writable(key) => (WaitKind::Writable, key as u64),
            WaitNote::Timer(deadline) => {
                let after_start = deadline.saturating_duration_since(self.started);
                (WaitKind::Timer, after_start.as_micros() as u64)
            }
            WaitNote::Task(id) => (WaitKind::Task, id.0),
            WaitNote::Blocking => (WaitKind::Blocking, 0),
        };
        WaitRecord { kind, value }
    }

    /// Turns recorded waits into the task table's `Wait`s (a socket closed since is left out).
    fn describe_waits(&self, records: &[WaitRecord; 2]) -> Vec<Wait> {
        let source = |key: u64| self.reactor.source(key as usize);
        records
            .iter()
            .filter_map(|record| match record.kind {
                WaitKind::Nothing => None,
                WaitKind::Readable => source(record.value).map(Wait::Readable),
                WaitKind::Writable => source(record.value).map(Wait::Writable),
                WaitKind::Timer => Some(Wait::Timer(
                    self.started + Duration::from_micros(record.value),
                )),
                WaitKind::Task => Some(Wait::Task(Id(record.value))),
                WaitKind::Blocking => Some(Wait::Blocking),
            })
            .collect()
    }

    /// A snapshot of the task table; see [`crate::task::dump`].
    pub(crate) fn dump(&self) -> TaskDump {
        let polling = self.polling.get();
        let main = self.main_stats.borrow();
        let main_state = if polling == Some(TaskKey::MAIN) {
            TaskState::Running
        } else if self.main_woken.get() {
            TaskState::Ready
        } else {
            TaskState::Waiting
        };
        let mut tasks = vec![TaskInfo {
            id: Id::MAIN,
            name: Some("block_on".to_string()),
            spawned_at: self.main_spawned_at,
            state: main_state,
            waiting_on: self.describe_waits(&main.waiting_on),
            polls: main.polls,
            wakes: main.wakes,
        }];
        for (_, task) in self.tasks.borrow().iter() {
            let state = if task.future.is_none() {
                TaskState::Running
            } else if task.scheduled {
                TaskState::Ready
            } else {
                TaskState::Waiting
            };
            tasks.push(TaskInfo {
                id: task.id,
                name: task.name.clone(),
                spawned_at: task.spawned_at,
                state,
                waiting_on: self.describe_waits(&task.stats.waiting_on),
                polls: task.stats.polls,
                wakes: task.stats.wakes,
            });
        }
        tasks.sort_by_key(|task| task.id);
        TaskDump { tasks }
    }

    /// Takes the next task id.
    pub(crate) fn next_task_id(&self) -> Id {
        let id = self.next_task_id.get();
        self.next_task_id.set(id + 1);
        Id(id)
    }

    /// Adds a task to the table and queues it for its first poll.
    pub(crate) fn spawn(
        &self,
        id: Id,
        name: Option<String>,
        spawned_at: &'static Location<'static>,
        future: TaskFuture,
    ) -> TaskKey {
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let key = TaskKey {
            slot: entry.key(),
            id,
        };
        let task = entry.insert(Task {
            id,
            name,
            spawned_at,
            future: Some(future),
            waker: None,
            scheduled: true,
            abort_requested: false,
            stats: Stats::default(),
        });
        if let Some(tracer) = &self.tracer {
            let by = self.polling.get().map(|polling| polling.id);
            tracer.spawn(id, &task.label(), spawned_at, by);
        }
        self.run_queue.borrow_mut().push_back(key);
        key
    }

    /// Cancels a task: its future is dropped now, or, if the task is aborting itself from inside
    /// its own poll, as soon as that poll returns.
    pub(crate) fn abort(&self, key: TaskKey) {
        let mut tasks = self.tasks.borrow_mut();
        let running = match tasks.get(key.slot) {
            Some(task) if task.id == key.id => task.future.is_none(),
            _ => return, // Already finished.
        };
        if running {
            tasks[key.slot].abort_requested = true;
            return;
        }
        let task = tasks.remove(key.slot);
        drop(tasks);
        self.trace_exit(key.id, "aborted");
        task.dispose(); // Runs the future's destructors outside the borrow.
    }

    /// Ends the runtime: drops every task still pending, forgets timers and closes the inbox
    /// of remote wakes. Destructors of dropped tasks may spawn or wake; those are dropped too.
    fn shutdown(&self) {
        loop {
            let mut pending: Vec<Task> = self.tasks.borrow_mut().drain().collect();
            if pending.is_empty() {
                break;
            }
            pending.sort_by_key(|task| task.id);
            for task in pending {
                if self.debug.is_some() {
                    eprintln!(
                        "stroll: {} was still pending when the runtime ended; dropping it",
                        task.describe()
                    );
                }
                self.trace_exit(task.id, "dropped at shutdown");
                task.dispose();
            }
        }
        self.run_queue.borrow_mut().clear();
        self.timers.clear();
        self.reactor.close();
        self.remote.close();
        if let Some(tracer) = &self.tracer {
            tracer.finish();
        }
    }
}

/// Prints the panic of a task that nobody will `.await`.
fn report_detached_panic(task: &Task, payload: &(dyn Any + Send)) {
    eprintln!(
        "stroll: {} panicked: {}",
        task.describe(),
        crate::task::panic_message(payload)
    );
}

/// Calls `f` with the runtime running on this thread.
///
/// # Panics
/// Outside `block_on`, with a message naming `what` was attempted.
#[track_caller]
pub(crate) fn with_current<R>(what: &str, f: impl FnOnce(&Rc<Runtime>) -> R) -> R {
    let runtime = CURRENT.with(|current| current.borrow().clone());
    match runtime {
        Some(runtime) => f(&runtime),
        None => panic!(
            "{what} must be called from inside a stroll runtime: \
             run your async code with stroll::block_on"
        ),
    }
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

/// The id of a runtime.
pub(crate) fn id_of(runtime: &Runtime) -> RuntimeId {
    runtime.id
}

/// Records, for the task table, that the task being polled waits on `wait`. Does nothing
/// outside a runtime.
pub(crate) fn note_wait(wait: WaitNote) {
    if let Some(runtime) = try_current() {
        runtime.note_wait(wait);
    }
}

/// The local path of a wake: if runtime `runtime` is the one running on this thread, queues
/// `key` and returns `true`. Returns `false` otherwise (the waker then takes the remote path).
pub(crate) fn schedule_if_current(runtime: RuntimeId, key: TaskKey) -> bool {
    CURRENT
        .try_with(|current| match current.borrow().as_deref() {
            Some(current) if current.id == runtime => {
                current.schedule(key);
                true
            }
            _ => false,
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tasks_are_removed_from_the_table_when_they_finish() {
        crate::block_on(async {
            let handle = crate::spawn(async { 1 });
            assert_eq!(handle.await.unwrap(), 1);
            let runtime = super::try_current().unwrap();
            assert_eq!(runtime.tasks.borrow().len(), 0);
        });
    }
}
