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
//! 4. `Reactor::wait`: sleep in `epoll_wait`; wake the tasks whose sockets became ready;
//! 5. `fire_timers`: wake the tasks whose deadlines have passed;
//! 6. `take_remote_wakes`: queue the tasks that other threads woke.
//!
//! Waking a task (phase 4, 5, 6, or one task waking another) only puts its key on the run queue;
//! nothing is polled until phase 2 of a turn.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::coop;
use crate::reactor::Reactor;
use crate::task::Id;
use crate::timers::Timers;
use crate::waker::{task_waker, Remote, RuntimeId, TaskKey};

thread_local! {
    /// The runtime whose `block_on` is running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
}

/// Source of runtime ids; each runtime takes the next one.
static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// A task's future as the task table stores it: boxed, pinned, its output type erased.
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = TaskExit>>>;

/// How a task's future ended, as far as the loop needs to know.
pub(crate) enum TaskExit {
    /// The result went to the task's `JoinHandle` (or was dropped with no one to read it).
    Done,
    /// The task panicked and its `JoinHandle` had been dropped: the loop reports the panic.
    PanickedDetached(Box<dyn Any + Send>),
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
    /// The waker given to every poll of this task (made once, at spawn).
    waker: Waker,
    /// Set when the task's key is pushed on the run queue, cleared when it is popped to be
    /// polled. Invariant: a task has at most one key in the queue, so a task woken twice is
    /// polled once. (Keys of tasks that ended stay in the queue and are skipped when popped.)
    scheduled: bool,
    /// The task aborted itself while being polled; the loop drops it when the poll returns.
    abort_requested: bool,
    /// How many times the task was polled.
    pub(crate) polls: u64,
    /// How many times the task was woken.
    pub(crate) wakes: u64,
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
        format!(
            "task {} '{}' (spawned at {})",
            self.id,
            self.name.as_deref().unwrap_or("<unnamed>"),
            self.spawned_at
        )
    }
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
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = Runtime::new();
    let _entered = Entered::enter(runtime.clone());
    // Declared after `_entered`, so it is dropped first, while the runtime is still current.
    let future = pin!(future);
    runtime.run_until(future)
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
    fn new() -> Rc<Runtime> {
        let (reactor, interrupt) = match Reactor::new() {
            Ok(parts) => parts,
            Err(err) => panic!("stroll: could not create the reactor (epoll): {err}"),
        };
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
        })
    }

    /// The event loop: one turn per iteration, six phases per turn (see the module docs).
    fn run_until<F: Future>(&self, mut main: Pin<&mut F>) -> F::Output {
        let main_waker = task_waker(self.id, TaskKey::MAIN, self.remote.clone());
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
            self.reactor.wait(timeout);
            // Phase 5: wake the tasks whose deadlines have passed.
            self.fire_timers();
            // Phase 6: queue the tasks woken from other threads.
            self.take_remote_wakes();
        }
    }

    /// Phase 1: polls the `block_on` future if it was woken since its last poll.
    fn poll_main<F: Future>(&self, main: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
        if !self.main_woken.replace(false) {
            return Poll::Pending;
        }
        let mut cx = Context::from_waker(waker);
        coop::start_poll();
        let poll = main.poll(&mut cx);
        coop::end_poll();
        poll
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

    /// Polls one task, then puts its future back in the table or removes the finished task.
    fn run_task(&self, key: TaskKey) {
        let Some((mut future, waker)) = self.take_for_poll(key) else {
            return; // The task ended after it was queued.
        };
        let mut cx = Context::from_waker(&waker);
        coop::start_poll();
        let poll = future.as_mut().poll(&mut cx);
        coop::end_poll();
        match poll {
            Poll::Pending => self.park(key, future),
            Poll::Ready(exit) => {
                let mut task = self.tasks.borrow_mut().remove(key.slot);
                if let TaskExit::PanickedDetached(payload) = exit {
                    report_detached_panic(&task, payload.as_ref());
                }
                task.future = Some(future);
                task.dispose(); // Outside the borrow: destructors may use the runtime.
            }
        }
    }

    /// Moves a queued task's future out of the table for polling, with its waker.
    fn take_for_poll(&self, key: TaskKey) -> Option<(TaskFuture, Waker)> {
        let mut tasks = self.tasks.borrow_mut();
        let task = tasks.get_mut(key.slot).filter(|task| task.id == key.id)?;
        task.scheduled = false;
        task.polls += 1;
        let future = task.future.take()?;
        Some((future, task.waker.clone()))
    }

    /// Puts back the future of a task that returned `Pending`, unless it aborted itself.
    fn park(&self, key: TaskKey, future: TaskFuture) {
        let mut tasks = self.tasks.borrow_mut();
        let task = &mut tasks[key.slot];
        if !task.abort_requested {
            task.future = Some(future);
            return;
        }
        let mut task = tasks.remove(key.slot);
        drop(tasks);
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

    /// Phase 5: wakes every sleeper whose deadline has passed, earliest first.
    fn fire_timers(&self) {
        let mut fired = self.fired.take();
        self.timers.fire_due(Instant::now(), &mut fired);
        for waker in fired.drain(..) {
            waker.wake();
        }
        *self.fired.borrow_mut() = fired;
    }

    /// Phase 6: queues the tasks that other threads woke since the last turn.
    fn take_remote_wakes(&self) {
        for key in self.remote.take() {
            self.schedule(key);
        }
    }

    /// Puts a woken task on the run queue, unless it is already there or has ended.
    fn schedule(&self, key: TaskKey) {
        if key == TaskKey::MAIN {
            self.main_woken.set(true);
            return;
        }
        let mut tasks = self.tasks.borrow_mut();
        let Some(task) = tasks.get_mut(key.slot).filter(|task| task.id == key.id) else {
            return; // A late wake for a task that has ended: ignore it.
        };
        task.wakes += 1;
        if !task.scheduled {
            task.scheduled = true;
            self.run_queue.borrow_mut().push_back(key);
        }
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
        entry.insert(Task {
            id,
            name,
            spawned_at,
            future: Some(future),
            waker: task_waker(self.id, key, self.remote.clone()),
            scheduled: true,
            abort_requested: false,
            polls: 0,
            wakes: 0,
        });
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
        task.dispose(); // Runs the future's destructors outside the borrow.
    }

    /// Ends the runtime: drops every task still pending, forgets timers and closes the inbox
    /// of remote wakes. Destructors of dropped tasks may spawn or wake; those are dropped too.
    fn shutdown(&self) {
        loop {
            let pending: Vec<Task> = self.tasks.borrow_mut().drain().collect();
            if pending.is_empty() {
                break;
            }
            for task in pending {
                task.dispose();
            }
        }
        self.run_queue.borrow_mut().clear();
        self.timers.clear();
        self.reactor.close();
        self.remote.close();
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
