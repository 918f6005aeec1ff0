//! The wakers waiting on one direction of one socket; the reactor keeps two per socket.
//!
//! Almost always one task reads a socket and one writes it, so nobody and one waker are stored
//! inline, with no allocation; a list is made only for a second task waiting in the same
//! direction (two tasks accepting on one listener), so that neither can push the other out.

use std::task::Waker;

/// The tasks waiting for one direction of a socket to become ready.
#[derive(Default)]
pub(crate) enum Waiters {
    /// Nobody waits.
    #[default]
    None,
    /// One task waits: the common case.
    One(Waker),
    /// A second task came while one waited. Invariant: no two wakers wake the same task. Stays
    /// a list (even if its waiters leave) until the next event takes them all.
    Many(Vec<Waker>),
}

impl Waiters {
    /// Adds `waker`, unless a waker of the same task waits already.
    pub(crate) fn add(&mut self, waker: &Waker) {
        match self {
            Waiters::None => *self = Waiters::One(waker.clone()),
            Waiters::One(first) if first.will_wake(waker) => {}
            Waiters::One(first) => *self = Waiters::Many(vec![first.clone(), waker.clone()]),
            Waiters::Many(list) => {
                if !list.iter().any(|w| w.will_wake(waker)) {
                    list.push(waker.clone());
                }
            }
        }
    }

    /// Takes out the waker that wakes the same task as `waker`, if one waits.
    pub(crate) fn remove(&mut self, waker: &Waker) -> Option<Waker> {
        match self {
            Waiters::One(first) if first.will_wake(waker) => match std::mem::take(self) {
                Waiters::One(removed) => Some(removed),
                _ => unreachable!("matched as One just above"),
            },
            Waiters::Many(list) => {
                let at = list.iter().position(|w| w.will_wake(waker))?;
                Some(list.swap_remove(at))
            }
            _ => None,
        }
    }

    /// Takes every waker out and hands each to `f`: nobody waits any more.
    pub(crate) fn take_each(&mut self, mut f: impl FnMut(Waker)) {
        match std::mem::take(self) {
            Waiters::None => {}
            Waiters::One(waker) => f(waker),
            Waiters::Many(list) => list.into_iter().for_each(f),
        }
    }

    /// The wakers waiting now.
    pub(crate) fn as_slice(&self) -> &[Waker] {
        match self {
            Waiters::None => &[],
            Waiters::One(waker) => std::slice::from_ref(waker),
            Waiters::Many(list) => list,
        }
    }
}
