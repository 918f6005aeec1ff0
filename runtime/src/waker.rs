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

use std::sync::{Arc, Mutex};
use std::task::Waker;

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
    /// Keys woken from other threads, waiting for the loop to pick them up.
    /// `None` once the runtime has shut down: later wakes are dropped.
    inbox: Mutex<Option<Vec<TaskKey>>>,
    /// Interrupts the loop's `epoll_wait`, so a remote wake is seen at once.
    interrupt: mio::Waker,
}

impl Remote {
    pub(crate) fn new(interrupt: mio::Waker) -> Remote {
        Remote {
            inbox: Mutex::new(Some(Vec::new())),
            interrupt,
        }
    }

    /// Queues `key` for the loop and interrupts the reactor's wait.
    fn push(&self, key: TaskKey) {
        let mut inbox = self
            .inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(keys) = inbox.as_mut() else {
            return; // The runtime is gone: nothing to wake.
        };
        keys.push(key);
        // Only the first key since the loop last emptied the inbox needs to interrupt it; the
        // loop takes the whole inbox at once.
        if keys.len() == 1 {
            // If this fails the loop still finds the key on its next turn.
            let _ = self.interrupt.wake();
        }
    }

    /// Takes every key woken from other threads since the last call.
    pub(crate) fn take(&self) -> Vec<TaskKey> {
        let mut inbox = self
            .inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inbox.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Marks the runtime as gone: from now on, remote wakes are ignored.
    pub(crate) fn close(&self) {
        let mut inbox = self
            .inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *inbox = None;
    }
}

/// What a stroll `Waker` points to.
pub(crate) struct TaskWaker {
    runtime: RuntimeId,
    key: TaskKey,
    remote: Arc<Remote>,
}

impl futures_task::ArcWake for TaskWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        let woken_locally = runtime::schedule_if_current(arc_self.runtime, arc_self.key);
        if !woken_locally {
            arc_self.remote.push(arc_self.key);
        }
    }
}

/// Makes the waker for the task `key` of runtime `runtime`.
pub(crate) fn task_waker(runtime: RuntimeId, key: TaskKey, remote: Arc<Remote>) -> Waker {
    futures_task::waker(Arc::new(TaskWaker {
        runtime,
        key,
        remote,
    }))
}
