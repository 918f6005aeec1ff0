//! Exercise 11.2 (chapter "The lost wakeup"): two tasks that each wait for the other, each
//! keeping its waker where the other can reach it. Nobody will ever wake either, but stroll's
//! deadlock check cannot tell: each waker is held outside the task table.
//!
//! What the tests show: both tasks stay `waiting` forever, and the task table says so. What
//! they argue rather than test: that debug mode prints no lost-wakeup line and the deadlock
//! check would not fire. Both look only at whether something outside the table holds a clone
//! of a waker, and here each `Event` does; a timer keeps the loop awake for the test anyway.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use stroll::task::{Builder, TaskState};

/// A one-shot event: `done`, and the waker of whoever waits for it.
#[derive(Default)]
struct Event {
    done: bool,
    waiter: Option<Waker>,
}

type Shared = Rc<RefCell<Event>>;

/// Waits for `event` (keeping the waker, so this is no lost wakeup), then sets `mine`.
async fn wait_then_set(event: Shared, mine: Shared) {
    std::future::poll_fn(|cx| {
        let mut event = event.borrow_mut();
        if event.done {
            return Poll::Ready(());
        }
        event.waiter = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    let waiter = {
        let mut mine = mine.borrow_mut();
        mine.done = true;
        mine.waiter.take()
    };
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}

#[test]
fn a_cycle_of_waits_is_stuck_but_not_reported() {
    stroll::runtime::Builder::new().debug(true).block_on(async {
        let a_done = Shared::default();
        let b_done = Shared::default();
        // A waits for B to finish, B for A: neither ever will.
        let a = Builder::new()
            .name("a")
            .spawn(wait_then_set(b_done.clone(), a_done.clone()));
        let b = Builder::new()
            .name("b")
            .spawn(wait_then_set(a_done.clone(), b_done.clone()));
        // `a` and `b` are stuck; a timer keeps the loop from the deadlock check, but the check
        // would find nothing either: each task's waker is held in an `Event`, outside the table.
        stroll::time::sleep(Duration::from_millis(50)).await;
        let dump = stroll::task::dump();
        for name in ["a", "b"] {
            let task = dump
                .tasks
                .iter()
                .find(|t| t.name.as_deref() == Some(name))
                .unwrap();
            assert_eq!(task.state, TaskState::Waiting, "{name}");
            assert_eq!(task.polls, 1, "{name}");
            // The runtime cannot see what the task waits on: no socket, timer or task.
            assert!(task.waiting_on.is_empty(), "{name}");
        }
        // Breaking the cycle from outside: setting either event frees both.
        let waiter = {
            let mut a_done = a_done.borrow_mut();
            a_done.done = true;
            a_done.waiter.take()
        };
        waiter.expect("b left its waker").wake();
        b.await.unwrap();
        assert!(a.is_finished() || a.await.is_ok());
    });
}
