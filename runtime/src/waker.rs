//! Wakers: how a future asks to be polled again, from this thread or any other.
//!
//! Every task gets one [`Waker`] when it is spawned. Inside, it is an `Arc<TaskWaker>` that names
//! the task (by its [`TaskKey`]) and the runtime it belongs to. Waking takes one of two paths:
//!
//! - **Local**: the waker is called on the thread that runs that runtime's loop (a socket became
//!   ready, a timer fired, one task woke another). The key goes straight onto the run queue: no
//!   lock, no system call.
//! - **Remote**: the waker is called from another thread (a `spawn_blocking` job finished, a
//!   user's `std::thread` sent something). The key goes into the runtime's [`Remote`] inbox
//!   behind a mutex, and a `mio::Waker` interrupts the loop if it is asleep in the reactor.
//!
//! A waker never holds the task itself, only its key, so a task that stores its own waker
//! creates no reference cycle. A key whose task is gone (finished, aborted, runtime dropped) is
//! ignored: waking a dead task is a harmless no-op.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::runtime;
use crate::task::Id;

/// Names one task of one runtime: the slot it occupies in the task table, and its id.
///
/// Slots are reused once a task ends; ids never are. A wake that arrives for an old task whose
/// slot now holds a new one carries the old id, so the runtime sees the mismatch and ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    /// Index into the runtime's task table.
    pub(crate) slot: usize,
    /// The id of the task the slot held when this key was made.
    pub(crate) id: Id,
}

impl TaskKey {
    /// The key of the future passed to `block_on`, which is not in the task table.
    pub(crate) const MAIN: TaskKey = TaskKey {
        slot: usize::MAX,
        id: Id::MAIN,
    };
}

/// Identifies one runtime. Every `block_on` call creates a runtime with a fresh id.
pub(crate) type RuntimeId = u64;

/// The part of a runtime that other threads may touch: the inbox of wakes from other threads.
pub(crate) struct Remote {
    /// `None` once the runtime has shut down: later wakes are dropped.
    inbox: Mutex<Option<Inbox>>,
    /// Set (under the lock, before interrupting the loop) when the inbox gets a key; cleared
    /// by the loop before it empties the inbox. Most turns find it unset and skip the lock.
    has_keys: AtomicBool,
    /// Interrupts the loop's `epoll_wait`, so a remote wake is seen at once.
    interrupt: mio::Waker,
}

/// Wakes from other threads, waiting for the loop to pick them up.
#[derive(Default)]
struct Inbox {
    keys: Vec<TaskKey>,
    /// The loop has been interrupted since it last emptied the inbox: later wakes need not
    /// interrupt it again, since it takes the whole inbox at once.
    interrupted: bool,
}

impl Remote {
    pub(crate) fn new(interrupt: mio::Waker) -> Remote {
        Remote {
            inbox: Mutex::new(Some(Inbox::default())),
            has_keys: AtomicBool::new(false),
            interrupt,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Inbox>> {
        self.inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `key` for the loop and interrupts the reactor's wait.
    fn push(&self, key: TaskKey) {
        let mut inbox = self.lock();
        let Some(inbox) = inbox.as_mut() else {
            return; // The runtime is gone: nothing to wake.
        };
        inbox.keys.push(key);
        self.has_keys.store(true, Ordering::SeqCst);
        if !inbox.interrupted {
            // If the interrupt fails, the next wake tries again.
            inbox.interrupted = self.interrupt.wake().is_ok();
        }
    }

    /// Takes every key woken from other threads since the last call.
    pub(crate) fn take(&self) -> Vec<TaskKey> {
        if !self.has_keys.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        match self.lock().as_mut() {
            Some(inbox) => {
                inbox.interrupted = false;
                std::mem::take(&mut inbox.keys)
            }
            None => Vec::new(),
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
/// same allocation to the next task ([`TaskWaker::reuse`]).
pub(crate) struct TaskWaker {
    runtime: RuntimeId,
    key: TaskKey,
    remote: Arc<Remote>,
}

impl TaskWaker {
    /// Points an unshared waker at another task of the same runtime. Returns the waker if
    /// someone else still holds a clone of it (it must then keep naming its old task).
    pub(crate) fn reuse(
        mut waker: Arc<TaskWaker>,
        key: TaskKey,
    ) -> Result<Arc<TaskWaker>, Arc<TaskWaker>> {
        match Arc::get_mut(&mut waker) {
            Some(unshared) => {
                unshared.key = key;
                Ok(waker)
            }
            None => Err(waker),
        }
    }
}

// ANCHOR: wake
impl futures_task::ArcWake for TaskWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        let woken_locally = runtime::schedule_if_current(arc_self.runtime, arc_self.key);
        if !woken_locally {
            arc_self.remote.push(arc_self.key);
        }
    }
}
// ANCHOR_END: wake

/// Makes the waker for the task `key` of runtime `runtime`.
pub(crate) fn task_waker(runtime: RuntimeId, key: TaskKey, remote: Arc<Remote>) -> Arc<TaskWaker> {
    Arc::new(TaskWaker {
        runtime,
        key,
        remote,
    })
}
