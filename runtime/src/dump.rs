//! `task::dump()`: the task table as a learner sees it, put together from the core and the
//! observer; and the deadlock check, which prints it when nothing can wake the loop.
//!
//! The core knows each task's state (running, queued, waiting) and holds every waker a task
//! left anywhere: among the reactor's waiters, in the timer store, as a join waiter in the
//! task table. The observer knows each task's name, spawn location and counters. A dump joins
//! the two: a task waits on whatever holds a clone of its waker. Nothing is recorded at poll
//! time for it, so the loop pays nothing until someone asks.

use std::collections::HashMap;
use std::task::Waker;

use crate::ids::{Direction, TaskKey};
use crate::observe::{TaskDump, TaskState, Wait};
use crate::runtime::Runtime;

impl Runtime {
    // ANCHOR: deadlock
    /// Panics if nothing can ever wake the loop, which is about to sleep until an event: no
    /// timer is set, no task waits on a socket, no wake from another thread is pending, and no
    /// pending task's waker (the `block_on` future's included) is held outside the runtime.
    /// A `spawn_blocking` job in flight, a user's thread, a channel or another task's future
    /// all hold a clone, so a deadlock among tasks that wake each other is not caught: this
    /// check never raises a false alarm, at the price of missing some.
    pub(crate) fn panic_if_deadlocked(&self) {
        if !self.timers.is_empty() || self.reactor.has_waiters() {
            return;
        }
        // Wakers first, then the inbox: a thread that drops its clone wakes it first, and
        // its key is in the inbox by the time the clone is gone.
        if !self.tasks.nothing_can_wake(&self.main_waker) || !self.remote.is_quiet() {
            return;
        }
        panic!(
            "stroll: deadlock: every task waits and nothing can wake any of them \
             (no timer, no socket, no waker held outside the runtime); the tasks:\n{}",
            self.dump()
        );
    }
    // ANCHOR_END: deadlock

    /// A snapshot of the task table; see [`crate::task::dump`].
    pub(crate) fn dump(&self) -> TaskDump {
        let main_state = if self.observer.polling() == Some(TaskKey::MAIN) {
            TaskState::Running
        } else if self.main_waker.is_scheduled() {
            TaskState::Ready
        } else {
            TaskState::Waiting
        };
        let states = std::iter::once((TaskKey::MAIN, main_state)).chain(self.tasks.states());
        let waits = self.registrations();
        let waits_of = |key: TaskKey| {
            let waker = match key {
                TaskKey::MAIN => Some(self.main_waker.clone()),
                key => self.tasks.waker_of(key),
            };
            let identity = waker.map(|waker| futures_task::waker_ref(&waker).data());
            identity
                .and_then(|data| waits.get(&data).cloned())
                .unwrap_or_default()
        };
        self.observer.dump(states, &waits_of)
    }

    /// What the core holds wakers for, by waker: the sockets' waiters, the timers, the
    /// tasks' join waiters. This is how the task table knows what each task waits on without
    /// any poll recording it.
    fn registrations(&self) -> HashMap<*const (), Vec<Wait>> {
        let mut waits: HashMap<*const (), Vec<Wait>> = HashMap::new();
        let mut add = |waker: &Waker, wait: Wait| waits.entry(waker.data()).or_default().push(wait);
        self.reactor.each_waiter(|waker, source, dir| match dir {
            Direction::Read => add(waker, Wait::Readable(source)),
            Direction::Write => add(waker, Wait::Writable(source)),
        });
        self.timers
            .each_timer(|waker, deadline| add(waker, Wait::Timer(deadline)));
        self.tasks
            .each_join_waiter(|waker, id| add(waker, Wait::Task(id)));
        waits
    }
}
