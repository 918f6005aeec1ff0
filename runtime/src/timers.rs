//! The timer store: every pending deadline of one runtime, in deadline order.
//!
//! A [`Sleep`](crate::time::Sleep) that is polled before its deadline registers here with its
//! waker. Each turn, the event loop asks [`Timers::next_deadline`] how long it may wait in the
//! reactor, and after the wait it calls [`Timers::fire_due`] to wake every sleeper whose deadline
//! has passed.
//!
//! The store is an ordered map keyed by `(deadline, sequence number)`. Inserting, removing and
//! finding the earliest deadline each cost `O(log n)`, so many thousands of timers stay cheap,
//! and a `Sleep` that is dropped removes its entry at once: a forgotten deadline never wakes the
//! loop for nothing. (tokio uses a hierarchical timing wheel, which is faster still but much
//! longer to read.)

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

/// Identifies one registered deadline. The sequence number makes keys unique and keeps timers
/// with equal deadlines in registration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    pub(crate) deadline: Instant,
    seq: u64,
}

/// All registered deadlines of one runtime.
#[derive(Default)]
pub(crate) struct Timers {
    /// Registered deadlines and the waker to call when each passes.
    /// Invariant: while the runtime runs, holds exactly the timers of `Sleep`s that are alive,
    /// were polled before their deadline, and have not fired yet. Emptied at shutdown.
    entries: RefCell<BTreeMap<TimerKey, Waker>>,
    /// The next sequence number to hand out; only grows.
    next_seq: Cell<u64>,
    /// The greatest key fired so far. Timers fire in key order and a new timer almost always
    /// has a later deadline than any fired one, so every key up to this one is gone: forgetting
    /// it needs no search of the map (a fired `Sleep` forgets its key once it completes).
    /// Invariant: no registered key is `<=` this one (`insert` clears it otherwise).
    fired_through: Cell<Option<TimerKey>>,
}

impl Timers {
    /// Registers a deadline; `waker` is called once it has passed.
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        let key = TimerKey { deadline, seq };
        if self.has_fired(key) {
            // A deadline already past (a `Sleep` reset into the past): the shortcut of
            // `fired_through` no longer holds, so stop using it.
            self.fired_through.set(None);
        }
        self.entries.borrow_mut().insert(key, waker);
        key
    }

    /// Replaces the waker of a registered timer (the `Sleep` was polled by another task).
    /// Returns `false` if the timer is not registered (any more).
    pub(crate) fn update_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        if self.has_fired(key) {
            return false;
        }
        let mut entries = self.entries.borrow_mut();
        let Some(stored) = entries.get_mut(&key) else {
            return false;
        };
        if !stored.will_wake(waker) {
            let old = std::mem::replace(stored, waker.clone());
            drop(entries);
            drop(old); // Dropped outside the borrow.
        }
        true
    }

    /// Moves a registered timer to a new deadline, keeping its waker; returns its new key.
    /// `None` if it was not registered (any more).
    pub(crate) fn reschedule(&self, key: TimerKey, deadline: Instant) -> Option<TimerKey> {
        let waker = self.entries.borrow_mut().remove(&key)?;
        Some(self.insert(deadline, waker))
    }

    /// Forgets a timer (its `Sleep` was dropped or reset). Does nothing if it already fired.
    pub(crate) fn remove(&self, key: TimerKey) {
        if self.has_fired(key) {
            return;
        }
        let removed = self.entries.borrow_mut().remove(&key);
        drop(removed); // The waker is dropped after the borrow ends.
    }

    /// The earliest registered deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.borrow().keys().next().map(|key| key.deadline)
    }

    /// Removes every timer whose deadline is at or before `now` and returns their wakers, in
    /// deadline order. The caller wakes them once no borrow is held.
    ///
    /// The due timers leave the map in one `split_off`, rather than one removal each: a turn
    /// under load fires dozens at once.
    pub(crate) fn fire_due(&self, now: Instant, fired: &mut Vec<Waker>) {
        let mut entries = self.entries.borrow_mut();
        match entries.first_key_value() {
            Some((first, _)) if first.deadline <= now => {}
            _ => return, // Nothing is due.
        }
        // Every key after this one is later than `now` (no timer has this sequence number).
        let first_later = TimerKey {
            deadline: now,
            seq: u64::MAX,
        };
        let later = entries.split_off(&first_later);
        let due = std::mem::replace(&mut *entries, later);
        drop(entries);
        if let Some((last, _)) = due.last_key_value() {
            self.fired_through.set(Some(*last));
        }
        fired.extend(due.into_values());
    }

    /// Was `key` surely fired already (see `fired_through`)? `true` means its deadline has
    /// passed; `false` may also be a fired key, once `insert` has set the shortcut aside.
    pub(crate) fn has_fired(&self, key: TimerKey) -> bool {
        self.fired_through.get().is_some_and(|last| key <= last)
    }

    /// Calls `f` with every registered timer's waker and deadline (for the task table).
    pub(crate) fn each_timer(&self, mut f: impl FnMut(&Waker, Instant)) {
        for (key, waker) in self.entries.borrow().iter() {
            f(waker, key.deadline);
        }
    }

    /// Is no timer registered?
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    /// How many timers are registered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Forgets every timer (used when the runtime shuts down).
    pub(crate) fn clear(&self) {
        let entries = std::mem::take(&mut *self.entries.borrow_mut());
        drop(entries);
    }
}
