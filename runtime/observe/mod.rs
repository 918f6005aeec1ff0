//! The observer: everything the runtime shows about itself, behind one struct.
//!
//! These files sit beside the core, in `runtime/observe/` rather than `runtime/src/`: a reader
//! of the core meets the observer only as the hook calls below, and can read the core without
//! reading this.
//!
//! The core (executor, run queue, wakers, reactor, timers) never formats, times or records
//! anything for an instrument. It calls the [`Observer`] it owns at a few named hooks, and the
//! observer feeds the instruments that are switched on:
//!
//! - the task table's records (`records.rs`): always on, so that `task::dump()` needs no
//!   setup; their hooks count and store a few integers;
//! - debug mode (`debug.rs`): slow polls, lost wakeups, tasks left pending at shutdown;
//! - the trace (`trace.rs`): `STROLL_TRACE`, one event per poll, wake, spawn, exit and wait;
//! - the turn log (`turns.rs`): `STROLL_LOG=turns`, one line per turn of the loop.
//!
//! The hooks, in the order a task meets them:
//!
//! | hook | called by | when |
//! | --- | --- | --- |
//! | `spawned` | the loop's `spawn` | a task entered the table |
//! | `poll_started`, `poll_ended` | `poll_main`, `run_task` | around every poll |
//! | `woken` | the run queue's `push` | a wake put a task in the run queue |
//! | `waking_because` | each phase of the loop | why the wakes that follow happen |
//! | `exited` | the task table's `end` | a task left the table (completed, panicked, aborted, dropped) |
//! | `io_wait_started`, `io_wait_ended` | `wait_for_io` | around `epoll_wait` |
//! | `turn_ended` | `run_until` | the end of each turn |
//!
//! A hook whose instruments are all off returns after one branch.

mod debug;
mod records;
mod trace;
mod turns;

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(crate) use debug::DebugConfig;
pub use records::{TaskDump, TaskInfo, TaskState, Wait};

use crate::ids::{Id, IoEvent, RuntimeId, TaskKey, TaskLabel};
use records::TaskRecord;
use trace::Tracer;
use turns::TurnLog;

/// Why a task is being woken.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WakeCause {
    /// Its socket became ready.
    Io(IoEvent),
    Timer,
    /// From another thread (a `spawn_blocking` job, a user's thread).
    CrossThread,
    /// The task woke itself during its own poll (`yield_now`, the I/O budget).
    SelfWake,
    /// Another task woke it during that task's poll.
    Task(Id),
    /// Anything else (a destructor run by the loop, a wake between phases).
    Other,
}

impl WakeCause {
    /// "readable tcp 127.0.0.1:5000", "timer", "task 3"...
    pub(crate) fn describe(&self) -> String {
        match self {
            WakeCause::Io(event) => match event.dir {
                crate::ids::Direction::Read => format!("readable {}", event.source),
                crate::ids::Direction::Write => format!("writable {}", event.source),
            },
            WakeCause::Timer => "timer".to_string(),
            WakeCause::CrossThread => "cross-thread".to_string(),
            WakeCause::SelfWake => "self".to_string(),
            WakeCause::Task(id) => format!("task {id}"),
            WakeCause::Other => "other".to_string(),
        }
    }
}

/// How a task left the table, as the instruments tell it. (The core's `TaskExit` is how a
/// poll ended; this adds the ends that are not polls: aborted, dropped at shutdown.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Completed,
    Panicked,
    Aborted,
    DroppedAtShutdown,
}

impl Exit {
    fn as_str(self) -> &'static str {
        match self {
            Exit::Completed => "completed",
            Exit::Panicked => "panicked",
            Exit::Aborted => "aborted",
            Exit::DroppedAtShutdown => "dropped at shutdown",
        }
    }
}

/// What the instruments of one runtime need to be told; see the module docs for the hooks.
pub(crate) struct Observer {
    /// `tasks[slot]`: the record of the task in that slot of the core's table.
    /// Invariant: `Some` exactly while the slot holds a live task (from `spawned` to `exited`).
    tasks: RefCell<Vec<Option<TaskRecord>>>,
    /// The record of the `block_on` future.
    main: RefCell<TaskRecord>,
    /// The task being polled right now (`TaskKey::MAIN` for the `block_on` future), if any.
    polling: Cell<Option<TaskKey>>,
    /// Why wakes happen now, when no task is being polled; set by the loop's phases.
    cause: Cell<WakeCause>,
    /// When the poll in progress began: set only while something times polls.
    poll_began: Cell<Option<Instant>>,
    /// When the reactor wait in progress began: set only while tracing.
    wait_began: Cell<Option<Instant>>,
    /// `Some` in debug mode.
    debug: Option<DebugConfig>,
    /// `Some` while tracing.
    tracer: Option<Tracer>,
    /// `Some` while the turn log is on.
    turns: Option<TurnLog>,
    /// Debug mode: tasks whose last poll returned `Pending` while nothing but the runtime held
    /// their waker, to report before the loop next sleeps.
    lost: RefCell<Vec<TaskKey>>,
    /// Debug mode, the trace or the turn log is on: the hooks have more to do than the
    /// records' counting. Set once, at creation.
    instruments_on: bool,
}

/// The instruments a runtime is built with (see `runtime::Builder`).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// `Some` for debug mode.
    pub(crate) debug: Option<DebugConfig>,
    /// Where to write a trace, if anywhere.
    pub(crate) trace: Option<PathBuf>,
    /// Print the turn log.
    pub(crate) turns: bool,
}

impl Settings {
    /// What the environment asks for: `STROLL_DEBUG`, `STROLL_SLOW_POLL_MS`, `STROLL_TRACE`,
    /// `STROLL_LOG`.
    pub(crate) fn from_env() -> Settings {
        Settings {
            debug: DebugConfig::from_env(),
            trace: std::env::var_os("STROLL_TRACE")
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
            turns: std::env::var("STROLL_LOG")
                .is_ok_and(|log| log.split(',').any(|part| part.trim() == "turns")),
        }
    }
}

impl Observer {
    pub(crate) fn new(
        settings: Settings,
        runtime: RuntimeId,
        main_spawned_at: &'static Location<'static>,
    ) -> Observer {
        let tracer = settings
            .trace
            .and_then(|path| match Tracer::create(&path, runtime) {
                Ok(tracer) => Some(tracer),
                Err(err) => {
                    eprintln!("stroll: cannot write a trace to {}: {err}", path.display());
                    None
                }
            });
        let instruments_on = settings.debug.is_some() || tracer.is_some() || settings.turns;
        Observer {
            tasks: RefCell::new(Vec::new()),
            main: RefCell::new(TaskRecord::new(
                Id::MAIN,
                Some("block_on".into()),
                main_spawned_at,
            )),
            polling: Cell::new(None),
            cause: Cell::new(WakeCause::Other),
            poll_began: Cell::new(None),
            wait_began: Cell::new(None),
            debug: settings.debug,
            tracer,
            turns: settings.turns.then(TurnLog::default),
            lost: RefCell::new(Vec::new()),
            instruments_on,
        }
    }

    /// Calls `f` with the record of `key`'s task (`None` if the table has none).
    #[inline]
    fn with_record<R>(&self, key: TaskKey, f: impl FnOnce(&mut TaskRecord) -> R) -> Option<R> {
        if key == TaskKey::MAIN {
            return Some(f(&mut self.main.borrow_mut()));
        }
        let mut tasks = self.tasks.borrow_mut();
        let record = tasks.get_mut(key.slot)?.as_mut()?;
        (record.id == key.id).then(|| f(record))
    }

    /// Hook: task `key`, described by `label`, entered the table.
    pub(crate) fn spawned(&self, key: TaskKey, label: TaskLabel) {
        let spawned_at = label.spawned_at;
        let mut record = TaskRecord::new(key.id, label.name, spawned_at);
        record.blocking_job = label.blocking_job;
        if let Some(tracer) = &self.tracer {
            let by = self.polling.get().map(|polling| polling.id);
            tracer.spawn(key.id, &record.label(), spawned_at, by);
        }
        let mut tasks = self.tasks.borrow_mut();
        match tasks.get_mut(key.slot) {
            Some(slot) => *slot = Some(record),
            None => {
                tasks.resize_with(key.slot, || None); // Normally the slot is the next one.
                tasks.push(Some(record));
            }
        }
    }

    /// Hook: a poll of `key` begins.
    #[inline]
    pub(crate) fn poll_started(&self, key: TaskKey) {
        self.polling.set(Some(key));
        if self.instruments_on {
            self.instrument_poll_start(key);
        }
    }

    /// `poll_started`, for the instruments that are on.
    fn instrument_poll_start(&self, key: TaskKey) {
        if let Some(turns) = &self.turns {
            self.with_record(key, |record| turns.polled(&record.label()));
        }
        if self.debug.is_some() || self.tracer.is_some() {
            self.poll_began.set(Some(Instant::now()));
        }
    }

    /// Hook: the poll of `key` returned (`ready`: it completed). `unreachable` says whether
    /// nothing but the runtime holds the task's waker; it is asked only in debug mode.
    #[inline]
    pub(crate) fn poll_ended(&self, key: TaskKey, ready: bool, unreachable: impl FnOnce() -> bool) {
        self.polling.set(None);
        self.with_record(key, |record| record.polls += 1);
        if self.instruments_on {
            let lost = self.debug.is_some() && !ready && unreachable();
            self.instrument_poll_end(key, ready, lost);
        }
    }

    /// `poll_ended`, for the instruments that are on; `lost`: debug mode found a lost wakeup.
    fn instrument_poll_end(&self, key: TaskKey, ready: bool, lost: bool) {
        if lost {
            self.lost.borrow_mut().push(key);
        }
        let Some(began) = self.poll_began.take() else {
            return;
        };
        let ended = Instant::now();
        if let Some(debug) = &self.debug {
            if ended - began > debug.slow_poll {
                self.report_slow_poll(key, ended - began, debug.slow_poll);
            }
        }
        if let Some(tracer) = &self.tracer {
            let label = self.with_record(key, |record| record.label());
            let label = label.unwrap_or_default();
            tracer.poll(key.id, &label, began, ended, ready);
        }
    }

    fn report_slow_poll(&self, key: TaskKey, took: Duration, threshold: Duration) {
        eprintln!(
            "stroll: slow poll: {} held the loop for {} (threshold {}); \
             is it blocking? move blocking work to spawn_blocking",
            self.describe(key),
            debug::millis(took),
            debug::millis(threshold)
        );
    }

    /// Hook: why the wakes from now on happen (until the next call).
    #[inline]
    pub(crate) fn waking_because(&self, cause: WakeCause) {
        self.cause.set(cause);
        if let (Some(turns), WakeCause::Io(event)) = (&self.turns, cause) {
            turns.io_event(&event);
        }
    }

    /// Hook: a wake put `key` in the run queue.
    #[inline]
    pub(crate) fn woken(&self, key: TaskKey) {
        self.with_record(key, |record| record.wakes += 1);
        if self.instruments_on {
            self.instrument_wake(key);
        }
    }

    /// `woken`, for the instruments that are on.
    fn instrument_wake(&self, key: TaskKey) {
        if let (Some(turns), None) = (&self.turns, self.polling.get()) {
            match self.cause.get() {
                WakeCause::Timer => turns.timer_wake(),
                WakeCause::CrossThread => turns.remote_wake(),
                _ => {}
            }
        }
        if let Some(tracer) = &self.tracer {
            let cause = match self.polling.get() {
                Some(polling) if polling == key => WakeCause::SelfWake,
                Some(polling) => WakeCause::Task(polling.id),
                None => self.cause.get(),
            };
            tracer.wake(key.id, &cause);
        }
    }

    /// Hook: task `key` left the table.
    pub(crate) fn exited(&self, key: TaskKey, how: Exit) {
        if how == Exit::DroppedAtShutdown && self.debug.is_some() {
            eprintln!(
                "stroll: {} was still pending when the runtime ended; dropping it",
                self.describe(key)
            );
        }
        if let Some(tracer) = &self.tracer {
            tracer.exit(key.id, how.as_str());
        }
        if let Some(slot) = self.tasks.borrow_mut().get_mut(key.slot) {
            *slot = None;
        }
        if self.debug.is_some() {
            self.lost.borrow_mut().retain(|lost| *lost != key);
        }
    }

    /// Hook: the loop is about to wait in the reactor for at most `timeout`.
    #[inline]
    pub(crate) fn io_wait_started(&self, timeout: Option<Duration>) {
        if timeout != Some(Duration::ZERO) {
            self.report_lost_wakeups(); // Before the loop sleeps.
        }
        if let Some(turns) = &self.turns {
            turns.asked_reactor();
        }
        if self.tracer.is_some() {
            self.wait_began.set(Some(Instant::now()));
        }
    }

    /// Debug mode: says, once, which tasks can never be woken.
    fn report_lost_wakeups(&self) {
        let lost = std::mem::take(&mut *self.lost.borrow_mut());
        for key in lost {
            eprintln!(
                "stroll: lost wakeup: {} returned Pending, but nothing holds its waker, so it \
                 will never be polled again. A future that returns Pending must keep \
                 cx.waker() (a clone) where something will wake it, or wake it itself",
                self.describe(key)
            );
        }
    }

    /// Hook: a turn of the loop ended; `timeout` is what phase 3 computed.
    #[inline]
    pub(crate) fn turn_ended(&self, timeout: Option<Duration>) {
        if let Some(turns) = &self.turns {
            turns.turn_ended(timeout);
        }
    }

    /// Hook: the reactor's wait returned `events` events.
    #[inline]
    pub(crate) fn io_wait_ended(&self, timeout: Option<Duration>, events: usize) {
        if let (Some(tracer), Some(began)) = (&self.tracer, self.wait_began.take()) {
            tracer.reactor_wait(began, Instant::now(), timeout, events);
        }
    }

    /// The runtime is ending: close the trace.
    pub(crate) fn finish(&self) {
        if let Some(tracer) = &self.tracer {
            tracer.finish();
        }
    }

    /// The task being polled right now, if any.
    pub(crate) fn polling(&self) -> Option<TaskKey> {
        self.polling.get()
    }

    /// "task 7 'name' (spawned at src/main.rs:10:5)", for messages on stderr.
    pub(crate) fn describe(&self, key: TaskKey) -> String {
        self.with_record(key, |record| record.describe())
            .unwrap_or_else(|| format!("task {}", key.id))
    }

    /// The task table; `states` gives each live task's state, `waits` what it waits on.
    pub(crate) fn dump(
        &self,
        states: impl Iterator<Item = (TaskKey, TaskState)>,
        waits: &dyn Fn(TaskKey) -> Vec<Wait>,
    ) -> TaskDump {
        let mut tasks: Vec<TaskInfo> = states
            .filter_map(|(key, state)| {
                self.with_record(key, |record| record.info(state, waits(key)))
            })
            .collect();
        tasks.sort_by_key(|task| task.id);
        TaskDump { tasks }
    }
}

/// The size of one task's record, for the runtime's test that it stays small.
#[cfg(test)]
pub(crate) fn record_size() -> usize {
    std::mem::size_of::<Option<TaskRecord>>()
}
