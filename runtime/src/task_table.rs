//! The task table: where every task lives between its polls, and where its result waits for
//! its `JoinHandle`.
//!
//! A task is one allocation, its *cell* (`task::TaskCell<F>`): the future while it runs, its
//! output once it has completed. The table stores the cell type-erased, as a
//! `Pin<Box<dyn ErasedCell>>`, in a slab: a task's slot there is the `slot` of its [`TaskKey`]. Beside
//! the cell, each entry keeps the task's waker and the waker of whoever awaits its handle.
//!
//! An entry goes through two stages. `Live` while the task runs; then, when it ends, either it
//! leaves the table (nobody holds its handle) or it becomes `Finished`, holding the result until
//! the handle takes it. The handle talks to the table directly ([`TaskTable::poll_join`],
//! [`TaskTable::detach`], [`TaskTable::abort`]), so a task and its handle share no other memory.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::ids::{Id, TaskKey};
use crate::join_error::{panic_message, JoinError};
use crate::observe::{Exit, Observer, TaskState};
use crate::waker::{Remote, TaskWaker};

/// How many wakers of finished tasks the table keeps for reuse.
const SPARE_WAKERS: usize = 1024;

/// How a poll ended a task's future. (The observer's `Exit` tells the instruments how a task
/// left the table, polls or not.)
pub(crate) enum TaskExit {
    /// The output is in the cell.
    Completed,
    /// The future panicked; here is the payload.
    Panicked(Box<dyn Any + Send>),
}

/// What the table can do with a task's cell without knowing its future's type. Implemented by
/// `task::TaskCell<F>`.
pub(crate) trait ErasedCell {
    /// Polls the future in place (the cell is pinned in its box, so the future never moves).
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskExit>;

    /// Moves the output of a completed task into `out`, which is an `Option<F::Output>`.
    fn take_output(self: Pin<&mut Self>, out: &mut dyn Any);
}

/// A task's cell as the table stores it.
pub(crate) type BoxedCell = Pin<Box<dyn ErasedCell>>;

/// One slot of the table.
enum Entry {
    Live(Task),
    /// The task ended and its handle has not read the result yet. `Ok`: the output waits in
    /// the cell; `Err`: it panicked or was cancelled.
    Finished(Id, Result<BoxedCell, JoinError>),
}

/// A task that has not ended.
struct Task {
    id: Id,
    /// `None` exactly while the loop polls the task: the cell is moved out of the table so that
    /// no borrow of the table is held while user code runs.
    cell: Option<BoxedCell>,
    /// The waker behind every poll of this task: made (or recycled) at its first poll, then
    /// kept; moved out with `cell` while the task is polled. A task that completes at its first
    /// poll leaves its waker to the next task, so it costs no allocation of its own.
    waker: Option<Arc<TaskWaker>>,
    /// The waker of the task awaiting the handle, woken when this task ends.
    join_waiter: Option<Waker>,
    /// The handle was dropped: nobody will read the result, so the entry goes when the task
    /// ends.
    detached: bool,
    /// The task aborted itself while being polled; it is cancelled when the poll returns.
    abort_requested: bool,
}

/// The tasks of one runtime.
pub(crate) struct TaskTable {
    /// Every task that is live, or finished with a result not yet read.
    slab: RefCell<Slab<Entry>>,
    /// The id the next spawned task gets. Ids are never reused within a runtime.
    next_id: Cell<u64>,
    /// Wakers of finished tasks that nobody else held, ready for new tasks.
    /// Invariant: every one has a strong count of 1. At most `SPARE_WAKERS`.
    spare_wakers: RefCell<Vec<Arc<TaskWaker>>>,
    /// Where wakes from other threads go; every waker holds it.
    remote: Arc<Remote>,
    /// Told of spawns and exits.
    observer: Rc<Observer>,
}

impl TaskTable {
    pub(crate) fn new(remote: Arc<Remote>, observer: Rc<Observer>) -> Self {
        TaskTable {
            slab: RefCell::new(Slab::new()),
            next_id: Cell::new(1),
            spare_wakers: RefCell::new(Vec::new()),
            remote,
            observer,
        }
    }

    /// Adds a task; the caller queues its key for the first poll.
    pub(crate) fn insert(&self, cell: BoxedCell) -> TaskKey {
        let id = Id(self.next_id.get());
        self.next_id.set(id.0 + 1);
        let mut slab = self.slab.borrow_mut();
        let entry = slab.vacant_entry();
        assert!(
            entry.key() < u32::MAX as usize,
            "a task table never has 2^32 slots"
        );
        let key = TaskKey {
            slot: entry.key(),
            id,
        };
        entry.insert(Entry::Live(Task {
            id,
            cell: Some(cell),
            waker: None,
            join_waiter: None,
            detached: false,
            abort_requested: false,
        }));
        key
    }

    /// A waker for task `key`: a spare one if there is one, else a new one.
    fn new_waker(&self, key: TaskKey) -> Arc<TaskWaker> {
        let spare = self.spare_wakers.borrow_mut().pop();
        match spare.map(|spare| TaskWaker::reuse(spare, key)) {
            Some(Ok(waker)) => waker,
            _ => TaskWaker::new(key, self.remote.clone()),
        }
    }

    /// The live task `key` names, if it is still live.
    #[inline]
    fn live(slab: &mut Slab<Entry>, key: TaskKey) -> Option<&mut Task> {
        match slab.get_mut(key.slot) {
            Some(Entry::Live(task)) if task.id == key.id => Some(task),
            _ => None,
        }
    }

    // ANCHOR: take_for_poll
    /// Moves a queued task's cell and waker out of the table for polling, and clears the
    /// waker's `scheduled` flag: a wake from now on queues the task again.
    #[inline]
    pub(crate) fn take_for_poll(&self, key: TaskKey) -> Option<(BoxedCell, Arc<TaskWaker>)> {
        let mut slab = self.slab.borrow_mut();
        let task = Self::live(&mut slab, key)?;
        let cell = task.cell.take()?;
        let waker = match task.waker.take() {
            Some(waker) => waker,
            None => self.new_waker(key),
        };
        waker.unschedule();
        Some((cell, waker))
    }
    // ANCHOR_END: take_for_poll

    /// Puts back the cell of a task that returned `Pending`, unless it aborted itself.
    #[inline]
    pub(crate) fn park(&self, key: TaskKey, cell: BoxedCell, waker: Arc<TaskWaker>) {
        let mut slab = self.slab.borrow_mut();
        let task = Self::live(&mut slab, key).expect("a polled task stays in the table");
        task.waker = Some(waker);
        task.cell = Some(cell);
        if task.abort_requested {
            drop(slab);
            self.abort(key);
        }
    }

    /// Records the end of a task whose poll returned `Ready`.
    pub(crate) fn finish(
        &self,
        key: TaskKey,
        cell: BoxedCell,
        waker: Arc<TaskWaker>,
        exit: TaskExit,
    ) {
        self.recycle_waker(waker);
        let (result, how) = match exit {
            TaskExit::Completed => (Ok(cell), Exit::Completed),
            TaskExit::Panicked(payload) => {
                self.dispose(key, cell);
                (Err(JoinError::panic(key.id, payload)), Exit::Panicked)
            }
        };
        self.end(key, result, how);
    }

    /// Keeps a finished task's waker for the next task, if nobody else holds a clone of it
    /// (a clone must keep naming the finished task, whose wakes are then ignored).
    fn recycle_waker(&self, waker: Arc<TaskWaker>) {
        let mut spares = self.spare_wakers.borrow_mut();
        if Arc::strong_count(&waker) == 1 && spares.len() < SPARE_WAKERS {
            spares.push(waker);
        }
    }

    /// A live task ended with `result`: keep it for the handle, or, if the handle is gone,
    /// drop it (reporting a panic nobody will read).
    fn end(&self, key: TaskKey, result: Result<BoxedCell, JoinError>, how: Exit) {
        let mut slab = self.slab.borrow_mut();
        let task = Self::live(&mut slab, key).expect("an ending task is live");
        let join_waiter = task.join_waiter.take();
        let waker = task.waker.take();
        if task.detached {
            slab.remove(key.slot);
            drop(slab);
            self.drop_unread(key, result);
        } else {
            // What the live entry still held was taken above: replacing it runs no destructor.
            slab[key.slot] = Entry::Finished(key.id, result);
            drop(slab);
        }
        if let Some(waker) = waker {
            self.recycle_waker(waker); // A task cancelled between polls still held it.
        }
        self.observer.exited(key, how);
        if let Some(waiter) = join_waiter {
            waiter.wake();
        }
    }

    /// Drops the result of a task whose handle is gone; a panic is reported, since nobody
    /// else will see it.
    fn drop_unread(&self, key: TaskKey, result: Result<BoxedCell, JoinError>) {
        match result {
            Ok(cell) => self.dispose(key, cell),
            Err(err) if err.is_panic() => {
                let payload = err.into_panic();
                let message = panic_message(payload.as_ref());
                eprintln!(
                    "stroll: {} panicked: {message}",
                    self.observer.describe(key)
                );
            }
            Err(_) => {}
        }
    }

    /// Drops what is left of task `key` (its cell, or an unread result), outside any borrow. A
    /// panic in a destructor is caught and reported, so that it cannot escape into whatever
    /// code happened to drop the task (another task calling `abort`, a handle being dropped,
    /// the shutdown of the runtime).
    fn dispose<T>(&self, key: TaskKey, value: T) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
            eprintln!(
                "stroll: {} panicked while being dropped: {}",
                self.observer.describe(key),
                panic_message(payload.as_ref())
            );
        }
    }

    /// Cancels a task: its future is dropped now, or, if the task is aborting itself from inside
    /// its own poll, as soon as that poll returns. Does nothing to a task that has ended.
    pub(crate) fn abort(&self, key: TaskKey) {
        self.cancel(key, Exit::Aborted);
    }

    fn cancel(&self, key: TaskKey, how: Exit) {
        let mut slab = self.slab.borrow_mut();
        let Some(task) = Self::live(&mut slab, key) else {
            return; // Already ended.
        };
        let Some(cell) = task.cell.take() else {
            task.abort_requested = true; // Being polled: cancelled when the poll returns.
            return;
        };
        drop(slab);
        self.dispose(key, cell);
        self.end(key, Err(JoinError::cancelled(key.id)), how);
    }

    // ANCHOR: poll_join
    /// The handle of task `key` asks for its result: `Ready` once the task has ended (and the
    /// entry leaves the table), else `Pending` with `waker` stored to be woken at the end.
    pub(crate) fn poll_join<T: 'static>(
        &self,
        key: TaskKey,
        waker: &Waker,
    ) -> Poll<Result<T, JoinError>> {
        let mut slab = self.slab.borrow_mut();
        if let Some(task) = Self::live(&mut slab, key) {
            if !task
                .join_waiter
                .as_ref()
                .is_some_and(|w| w.will_wake(waker))
            {
                task.join_waiter = Some(waker.clone());
            }
            return Poll::Pending;
        }
        let entry = match slab.get(key.slot) {
            Some(Entry::Finished(id, _)) if *id == key.id => slab.remove(key.slot),
            // Not in the table: the runtime shut down and dropped it.
            _ => return Poll::Ready(Err(JoinError::cancelled(key.id))),
        };
        drop(slab);
        let Entry::Finished(_, result) = entry else {
            unreachable!("the entry was just matched as finished")
        };
        Poll::Ready(result.map(|mut cell| {
            let mut output: Option<T> = None;
            cell.as_mut().take_output(&mut output);
            output.expect("a completed task's cell holds its output")
        }))
    }
    // ANCHOR_END: poll_join

    /// The handle of task `key` was dropped: a finished task's result is dropped now, a live
    /// task's when it ends.
    pub(crate) fn detach(&self, key: TaskKey) {
        let mut slab = self.slab.borrow_mut();
        if let Some(task) = Self::live(&mut slab, key) {
            task.detached = true;
            return;
        }
        let finished = matches!(slab.get(key.slot), Some(Entry::Finished(id, _)) if *id == key.id);
        if finished {
            let entry = slab.remove(key.slot);
            drop(slab);
            if let Entry::Finished(_, Err(err)) = &entry {
                if err.is_panic() {
                    eprintln!(
                        "stroll: a JoinHandle was dropped without looking at its result: {err}"
                    );
                }
            }
            self.dispose(key, entry); // The output's destructor runs outside the borrow.
        }
    }

    /// The waker of live task `key`, if it has one (not before its first poll, nor while it is
    /// being polled).
    pub(crate) fn waker_of(&self, key: TaskKey) -> Option<Arc<TaskWaker>> {
        Self::live(&mut self.slab.borrow_mut(), key)?.waker.clone()
    }

    /// Calls `f` with the waker of every task awaiting a handle, and the id of the task the
    /// handle is for (for the task table: "waits on task N").
    pub(crate) fn each_join_waiter(&self, mut f: impl FnMut(&Waker, Id)) {
        for (_, entry) in self.slab.borrow().iter() {
            if let Entry::Live(task) = entry {
                if let Some(waiter) = &task.join_waiter {
                    f(waiter, task.id);
                }
            }
        }
    }

    /// Has task `key` ended?
    pub(crate) fn is_finished(&self, key: TaskKey) -> bool {
        Self::live(&mut self.slab.borrow_mut(), key).is_none()
    }

    /// The state of every live task, for the task table.
    pub(crate) fn states(&self) -> Vec<(TaskKey, TaskState)> {
        let slab = self.slab.borrow();
        let live = slab.iter().filter_map(|(slot, entry)| match entry {
            Entry::Live(task) => Some((slot, task)),
            Entry::Finished(..) => None,
        });
        live.map(|(slot, task)| {
            let state = match (&task.cell, &task.waker) {
                (None, _) => TaskState::Running,
                // Never polled yet: queued since its spawn.
                (Some(_), None) => TaskState::Ready,
                (Some(_), Some(waker)) if waker.is_scheduled() => TaskState::Ready,
                (Some(_), Some(_)) => TaskState::Waiting,
            };
            (TaskKey { slot, id: task.id }, state)
        })
        .collect()
    }

    // ANCHOR: nothing_can_wake
    /// Can no live task, nor the `block_on` future (`main`), ever be woken? True when none is
    /// queued and each one's waker is held by nobody but this table: by the task itself, or as
    /// the join waiter of another task (which waits too).
    pub(crate) fn nothing_can_wake(&self, main: &Arc<TaskWaker>) -> bool {
        let slab = self.slab.borrow();
        let live: Vec<&Task> = slab
            .iter()
            .filter_map(|(_, entry)| match entry {
                Entry::Live(task) => Some(task),
                Entry::Finished(..) => None,
            })
            .collect();
        let join_waiters: Vec<&Waker> =
            live.iter().filter_map(|t| t.join_waiter.as_ref()).collect();
        let held_here = |waker: &Arc<TaskWaker>| {
            let as_waker = futures_task::waker_ref(waker);
            1 + join_waiters
                .iter()
                .filter(|w| w.will_wake(&as_waker))
                .count()
        };
        let held_only_here = |waker: &Arc<TaskWaker>| {
            !waker.is_scheduled() && Arc::strong_count(waker) == held_here(waker)
        };
        // A task never polled has no waker yet: it is queued, so something will happen.
        let stuck = held_only_here(main)
            && live
                .iter()
                .all(|task| task.waker.as_ref().is_some_and(held_only_here));
        // `strong_count` reads relaxed: a thread that dropped its clone after waking must have
        // its wake (in the remote inbox) seen by the caller's next read, which this orders.
        fence(Ordering::Acquire);
        stuck
    }
    // ANCHOR_END: nothing_can_wake

    /// Drops every live task, in id order, and every result not yet read. Destructors of
    /// dropped tasks may spawn or wake; what they spawn is dropped too.
    pub(crate) fn shut_down(&self) {
        loop {
            let mut live: Vec<TaskKey> = self.states().into_iter().map(|(key, _)| key).collect();
            if live.is_empty() {
                break;
            }
            live.sort_by_key(|key| key.id);
            for key in live {
                self.cancel(key, Exit::DroppedAtShutdown);
            }
            // A task whose cell never came back (a panic unwound through the loop while it
            // was being polled) cannot be cancelled; forget what is left of it.
            let mut slab = self.slab.borrow_mut();
            slab.retain(|_, entry| !matches!(entry, Entry::Live(task) if task.cell.is_none()));
        }
        // The results nobody read, each dropped outside the borrow.
        let slots: Vec<usize> = self.slab.borrow().iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let entry = self.slab.borrow_mut().remove(slot);
            let id = match &entry {
                Entry::Live(task) => task.id,
                Entry::Finished(id, _) => *id,
            };
            self.dispose(TaskKey { slot, id }, entry);
        }
    }
}
