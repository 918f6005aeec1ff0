//! Wakers and the run queue: how a future asks to be polled again, from this thread or any
//! other.
//!
//! Every task has one [`TaskWaker`], behind an `Arc`, that names the task (by its [`TaskKey`])
//! and the runtime it belongs to (by that runtime's [`Remote`] inbox, which every waker of the
//! runtime shares). A wake first tells which thread it is on, then sets the task's `scheduled`
//! flag; if the flag was already set the task is queued already, and the wake does nothing
//! else. Otherwise it takes one of two paths:
//!
//! - **Local**: the waker is called on the thread that runs that runtime's loop (a socket became
//!   ready, a timer fired, one task woke another). The key goes straight onto the [`RunQueue`]:
//!   no lock, no system call.
//! - **Remote**: the waker is called from another thread (a `spawn_blocking` job finished, a
//!   user's `std::thread` sent something). The key goes into the runtime's [`Remote`] inbox
//!   behind a mutex, and a `mio::Waker` interrupts the loop if it is asleep in the reactor.
//!
//! The loop clears `scheduled` just before it polls the task, so a wake that comes during the
//! poll queues the task again for the next turn: no wake is ever lost.
//!
//! The remote path sets the flag with one atomic `swap`, so that two threads waking a task at
//! once queue it once. The local path reads the flag, then writes it: a `swap` is a locked
//! instruction, as dear as the rest of a local wake. If another thread wakes the task in
//! between, it is queued twice and polled once for nothing; no wake is lost.
//!
//! A waker never holds the task itself, only its key, so a task that stores its own waker
//! creates no reference cycle. A key whose task is gone (finished, aborted, runtime dropped) is
//! ignored: waking a dead task is a harmless no-op.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ids::{Id, TaskKey};
use crate::observe::Observer;

thread_local! {
    /// The run queue of the runtime whose loop runs on this thread, if any.
    static LOCAL: RefCell<Option<Rc<RunQueue>>> = const { RefCell::new(None) };
}

/// The tasks of one runtime that were woken and wait to be polled.
pub(crate) struct RunQueue {
    /// The inbox of this queue's runtime: a waker whose `remote` is this same allocation
    /// belongs to this runtime (see `with_local_queue`).
    remote: Arc<Remote>,
    /// Keys of woken tasks, in the order they were woken. Keys of tasks that ended since they
    /// were queued stay here and are skipped when they come up.
    keys: RefCell<VecDeque<TaskKey>>,
    /// The future given to `block_on` was woken and has not been polled since. It has no place
    /// in `keys`: it is polled first in every turn it was woken.
    main_woken: Cell<bool>,
    /// Told of every wake that queues a task.
    observer: Rc<Observer>,
}

impl RunQueue {
    pub(crate) fn new(remote: Arc<Remote>, observer: Rc<Observer>) -> RunQueue {
        RunQueue {
            remote,
            keys: RefCell::new(VecDeque::new()),
            // The `block_on` future's first poll.
            main_woken: Cell::new(true),
            observer,
        }
    }

    /// Makes `queue` the one local wakes on this thread go to; see [`RunQueue::uninstall`].
    pub(crate) fn install(queue: Rc<RunQueue>) {
        LOCAL.with(|local| *local.borrow_mut() = Some(queue));
    }

    /// Local wakes on this thread go nowhere from now on (the runtime is gone).
    pub(crate) fn uninstall() {
        let queue = LOCAL.with(|local| local.borrow_mut().take());
        drop(queue); // Dropped outside the thread-local's borrow.
    }

    /// Queues a woken task.
    #[inline]
    pub(crate) fn push(&self, key: TaskKey) {
        self.observer.woken(key);
        if key == TaskKey::MAIN {
            self.main_woken.set(true);
        } else {
            self.keys.borrow_mut().push_back(key);
        }
    }

    /// Queues a task that was just spawned (not a wake).
    pub(crate) fn push_spawned(&self, key: TaskKey) {
        self.keys.borrow_mut().push_back(key);
    }

    /// The next task key to poll, if any.
    #[inline]
    pub(crate) fn pop(&self) -> Option<TaskKey> {
        self.keys.borrow_mut().pop_front()
    }

    /// How many keys are queued.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.keys.borrow().len()
    }

    /// Takes the "the `block_on` future was woken" flag.
    #[inline]
    pub(crate) fn take_main_woken(&self) -> bool {
        self.main_woken.replace(false)
    }

    /// Is anything waiting to be polled?
    #[inline]
    pub(crate) fn has_work(&self) -> bool {
        self.main_woken.get() || !self.keys.borrow().is_empty()
    }

    /// Forgets every queued key (at shutdown).
    pub(crate) fn clear(&self) {
        self.keys.borrow_mut().clear();
    }
}

/// If the runtime whose inbox is `remote` runs its loop on this thread, calls `f` with its run
/// queue and returns `true`. (Each runtime has its own inbox, which lives as long as any of its
/// wakers: comparing the two pointers compares the runtimes.)
#[inline]
fn with_local_queue(remote: &Arc<Remote>, f: impl FnOnce(&RunQueue)) -> bool {
    LOCAL
        .try_with(|local| match local.borrow().as_deref() {
            Some(queue) if Arc::ptr_eq(&queue.remote, remote) => {
                f(queue);
                true
            }
            _ => false,
        })
        .unwrap_or(false)
}

/// The part of a runtime that other threads may touch: the inbox of wakes from other threads.
pub(crate) struct Remote {
    /// Keys woken from other threads; `None` once the runtime has shut down (later wakes are
    /// dropped). Invariant: only a wake that set the task's `scheduled` flag comes here, so a
    /// task woken any number of times is here once until it is polled; the race of the module
    /// docs can add one more entry (a poll for nothing, never a lost wake).
    inbox: Mutex<Option<Vec<TaskKey>>>,
    /// Set after a key is put in the inbox; cleared by the loop before it empties the inbox.
    /// Most turns find it unset and skip the lock.
    has_keys: AtomicBool,
    /// The loop has been interrupted since it last looked at the inbox: later wakes need not
    /// interrupt it again, since it takes the whole inbox at once.
    interrupted: AtomicBool,
    /// Interrupts the loop's `epoll_wait`, so a remote wake is seen at once.
    interrupt: mio::Waker,
}

impl Remote {
    pub(crate) fn new(interrupt: mio::Waker) -> Remote {
        Remote {
            inbox: Mutex::new(Some(Vec::new())),
            has_keys: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            interrupt,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<TaskKey>>> {
        self.inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `key` for the loop and interrupts the reactor's wait. The interrupt (a write to
    /// an eventfd) is made after the lock is released.
    fn push(&self, key: TaskKey) {
        match self.lock().as_mut() {
            Some(keys) => keys.push(key),
            None => return, // The runtime is gone: nothing to wake.
        }
        self.has_keys.store(true, Ordering::SeqCst);
        if !self.interrupted.swap(true, Ordering::SeqCst) && self.interrupt.wake().is_err() {
            // The next wake tries again.
            self.interrupted.store(false, Ordering::SeqCst);
        }
    }

    /// Has no other thread woken anything since the loop last looked? (Two plain loads: the
    /// loop asks every turn.)
    #[inline]
    pub(crate) fn is_quiet(&self) -> bool {
        !self.interrupted.load(Ordering::SeqCst) && !self.has_keys.load(Ordering::SeqCst)
    }

    /// Moves every key woken from other threads since the last call into `keys`.
    pub(crate) fn take(&self, keys: &mut Vec<TaskKey>) {
        if self.interrupted.load(Ordering::SeqCst) {
            // Cleared before the inbox is read: a wake after this interrupts again, so none
            // is slept through.
            self.interrupted.store(false, Ordering::SeqCst);
        }
        if !self.has_keys.swap(false, Ordering::SeqCst) {
            return;
        }
        if let Some(inbox) = self.lock().as_mut() {
            keys.append(inbox);
        }
    }

    /// Marks the runtime as gone: from now on, remote wakes are ignored.
    pub(crate) fn close(&self) {
        *self.lock() = None;
    }
}

/// What a stroll `Waker` points to.
///
/// The runtime keeps each task's `Arc<TaskWaker>` and polls with a borrowed `Waker` made from
/// it (`futures_task::waker_ref`), so a poll costs no reference counting; only a future that
/// keeps the waker clones it. When a task ends and nobody kept a clone, the runtime gives the
/// same allocation to the next task ([`TaskWaker::reuse`]). One per live task, so it is small:
/// 40 bytes with the `Arc`'s two counters (the key is kept in two parts to get there).
pub(crate) struct TaskWaker {
    /// The task's id (its key's `id`).
    id: Id,
    /// The task's slot in the task table (its key's `slot`, which always fits: see `TaskKey`).
    slot: u32,
    /// The task's key is in the run queue or the remote inbox, and the task has not been polled
    /// since. Set by a wake, cleared by the loop just before it polls the task.
    scheduled: AtomicBool,
    /// The inbox of the runtime the task belongs to: where a wake from another thread goes,
    /// and what tells a wake on the loop's thread that this is its runtime.
    remote: Arc<Remote>,
}

impl TaskWaker {
    /// The waker of task `key`, which is queued already: a task gets its waker at its first
    /// poll, just before the loop clears the flag, and the `block_on` future's first poll is
    /// queued from the start.
    pub(crate) fn new(key: TaskKey, remote: Arc<Remote>) -> Arc<TaskWaker> {
        Arc::new(TaskWaker {
            id: key.id,
            slot: slot_of(key),
            scheduled: AtomicBool::new(true),
            remote,
        })
    }

    /// The key of the task this waker wakes.
    #[inline]
    fn key(&self) -> TaskKey {
        TaskKey {
            slot: self.slot as usize,
            id: self.id,
        }
    }

    /// Points an unshared waker at another task of the same runtime, a queued one. Returns the
    /// waker if someone else still holds a clone of it (it must then keep naming its old task).
    pub(crate) fn reuse(
        mut waker: Arc<TaskWaker>,
        key: TaskKey,
    ) -> Result<Arc<TaskWaker>, Arc<TaskWaker>> {
        match Arc::get_mut(&mut waker) {
            Some(unshared) => {
                unshared.id = key.id;
                unshared.slot = slot_of(key);
                *unshared.scheduled.get_mut() = true;
                Ok(waker)
            }
            None => Err(waker),
        }
    }

    /// Called by the loop just before it polls the task: wakes from now on queue it again.
    #[inline]
    pub(crate) fn unschedule(&self) {
        self.scheduled.store(false, Ordering::Release);
    }

    // ANCHOR: is_unreachable
    /// Can nothing but the runtime wake this task? True when nobody else holds a clone of the
    /// waker and the task is not queued: the task will never be polled again. (The deadlock
    /// check, `TaskTable::nothing_can_wake`, also counts clones held as join waiters in the
    /// table as the runtime's own.)
    pub(crate) fn is_unreachable(waker: &Arc<TaskWaker>) -> bool {
        Arc::strong_count(waker) == 1 && !waker.is_scheduled()
    }
    // ANCHOR_END: is_unreachable

    /// Is the task queued (woken and not yet polled)?
    pub(crate) fn is_scheduled(&self) -> bool {
        self.scheduled.load(Ordering::Acquire)
    }
}

// ANCHOR: wake
impl futures_task::ArcWake for TaskWaker {
    #[inline]
    fn wake_by_ref(arc_self: &Arc<Self>) {
        let key = arc_self.key();
        let flag = &arc_self.scheduled;
        // On the loop's thread: read, then write (see the module docs for why not `swap`).
        let local = with_local_queue(&arc_self.remote, |queue| {
            if !flag.load(Ordering::Acquire) {
                flag.store(true, Ordering::Release);
                queue.push(key);
            }
        });
        // From another thread: the first to set the flag puts the key in the inbox.
        if !local && !flag.swap(true, Ordering::AcqRel) {
            arc_self.remote.push(key);
        }
    }
}
// ANCHOR_END: wake

/// `key`'s slot as a waker stores it.
fn slot_of(key: TaskKey) -> u32 {
    u32::try_from(key.slot).expect("a task table never has 2^32 slots")
}
