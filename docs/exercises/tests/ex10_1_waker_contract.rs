//! Exercise 10.1 (chapter "Futures, wakers, tasks: stroll's executor"): check four clauses of
//! the waker contract against stroll: many wakes during a poll queue the task once, a wake
//! from another thread during the poll is not lost, the waker a task is polled with is the
//! same one at every poll (`will_wake`), and waking a task that has ended does nothing.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::thread;

/// A future that, at its first poll, wakes itself `wakes` times and returns `Pending`; at its
/// second, keeps its waker in `kept` and stays pending (so that it is not a lost wakeup);
/// never ready.
fn wake_then_wait(
    wakes: u32,
    kept: Rc<RefCell<Vec<Waker>>>,
) -> impl std::future::Future<Output = ()> {
    let mut polls = 0;
    std::future::poll_fn(move |cx| {
        polls += 1;
        if polls == 1 {
            for _ in 0..wakes {
                cx.waker().wake_by_ref();
            }
        }
        kept.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    })
}

/// The polls and wakes the task table counted for the task named `name`.
fn counts(name: &str) -> (u64, u64) {
    let dump = stroll::task::dump();
    let task = dump
        .tasks
        .iter()
        .find(|task| task.name.as_deref() == Some(name))
        .expect("the task is live");
    (task.polls, task.wakes)
}

#[test]
fn many_wakes_during_a_poll_queue_the_task_once() {
    stroll::block_on(async {
        let kept = Rc::new(RefCell::new(Vec::new()));
        let task = stroll::task::Builder::new()
            .name("restless")
            .spawn(wake_then_wait(5, kept.clone()));
        for _ in 0..5 {
            stroll::yield_now().await;
        }
        // Five wakes in the first poll: one wake queued it, one more poll followed.
        assert_eq!(counts("restless"), (2, 1));
        task.abort();
    });
}

#[test]
fn the_waker_is_the_same_at_every_poll() {
    stroll::block_on(async {
        let kept = Rc::new(RefCell::new(Vec::new()));
        let task = stroll::task::Builder::new()
            .name("keeper")
            .spawn(wake_then_wait(1, kept.clone()));
        for _ in 0..5 {
            stroll::yield_now().await;
        }
        let kept = kept.borrow();
        assert_eq!(kept.len(), 2, "polled twice");
        assert!(kept[0].will_wake(&kept[1]));
        task.abort();
    });
}

#[test]
fn a_wake_from_another_thread_during_the_poll_is_not_lost() {
    // The poll hands a clone of its waker to a thread and waits for the thread to wake it and
    // finish, all before returning Pending. If that wake were lost, nothing would hold the
    // waker any more and stroll's deadlock check would panic instead of letting this hang.
    let polls = stroll::block_on(async {
        let mut polls = 0;
        std::future::poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                let waker = cx.waker().clone();
                thread::spawn(move || waker.wake()).join().unwrap();
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        polls
    });
    assert_eq!(polls, 2);
}

#[test]
fn waking_a_task_that_has_ended_does_nothing() {
    stroll::block_on(async {
        let kept = Rc::new(RefCell::new(Vec::new()));
        let task = stroll::spawn(wake_then_wait(0, kept.clone()));
        stroll::yield_now().await;
        task.abort();
        // The kept waker names a task that is gone: waking it is a no-op, not a crash.
        kept.borrow()[0].wake_by_ref();
        stroll::yield_now().await;
        assert_eq!(stroll::task::dump().tasks.len(), 1, "only block_on is left");
    });
}
