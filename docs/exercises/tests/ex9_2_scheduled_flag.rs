//! Exercise 9.2 (chapter "Build an executor"): step 2's run-queue executor with a `scheduled`
//! flag, so that a task woken many times before its next poll is queued once, and cleared
//! before the poll, so that a wake during the poll is not lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_task::{waker_ref, ArcWake};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the executor clears `scheduled` (the exercise's question; `Before` is the answer).
#[derive(Clone, Copy, PartialEq)]
enum Clear {
    Before,
    After,
    /// No flag at all: every wake queues the task.
    NoFlag,
}

struct Task {
    future: Mutex<Option<BoxFuture>>,
    /// Queued and not yet polled.
    scheduled: AtomicBool,
    use_flag: bool,
    run_queue: Sender<Arc<Task>>,
}

impl ArcWake for Task {
    fn wake_by_ref(arc_self: &Arc<Task>) {
        if arc_self.use_flag && arc_self.scheduled.swap(true, Ordering::AcqRel) {
            return; // Queued already.
        }
        let _ = arc_self.run_queue.send(arc_self.clone());
    }
}

/// What one run of the executor did.
#[derive(Debug, PartialEq)]
struct Run {
    /// Did the task complete? (`false`: the run queue ran dry first, a lost wakeup.)
    completed: bool,
    polls: u32,
    /// How many times the task was taken off the run queue, late copies included.
    dequeued: u32,
}

/// Runs `future` as the only task, clearing the flag as `clear` says, until the run queue is
/// empty.
fn run(clear: Clear, future: impl Future<Output = ()> + Send + 'static) -> Run {
    let (sender, ready): (Sender<Arc<Task>>, Receiver<Arc<Task>>) = channel();
    let task = Arc::new(Task {
        future: Mutex::new(Some(Box::pin(future))),
        scheduled: AtomicBool::new(true),
        use_flag: clear != Clear::NoFlag,
        run_queue: sender,
    });
    task.run_queue.send(task.clone()).unwrap();
    let mut done = Run {
        completed: false,
        polls: 0,
        dequeued: 0,
    };
    // `try_recv`: the test's futures wake only themselves, during their own polls, so an empty
    // queue means nothing will ever wake the task again.
    while let Ok(queued) = ready.try_recv() {
        done.dequeued += 1;
        let mut slot = queued.future.lock().unwrap();
        let Some(future) = slot.as_mut() else {
            continue; // A copy queued by a wake the task no longer needed.
        };
        if clear == Clear::Before {
            queued.scheduled.store(false, Ordering::Release);
        }
        let waker = waker_ref(&queued);
        done.polls += 1;
        let poll = future.as_mut().poll(&mut Context::from_waker(&waker));
        if clear == Clear::After {
            queued.scheduled.store(false, Ordering::Release);
        }
        if poll.is_ready() {
            *slot = None;
            done.completed = true;
        }
    }
    done
}

/// Wakes itself `wakes_per_poll` times in each of its first `pending_polls` polls, then is
/// ready.
fn restless(pending_polls: u32, wakes_per_poll: u32) -> impl Future<Output = ()> + Send {
    let mut polls = 0;
    std::future::poll_fn(move |cx| {
        polls += 1;
        if polls > pending_polls {
            return Poll::Ready(());
        }
        for _ in 0..wakes_per_poll {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
}

#[test]
fn with_the_flag_a_task_is_queued_once_per_poll() {
    let run = run(Clear::Before, restless(3, 3));
    assert_eq!(
        run,
        Run {
            completed: true,
            polls: 4,
            dequeued: 4
        }
    );
}

#[test]
fn without_the_flag_every_wake_is_a_queue_entry() {
    // Three pending polls, three wakes each: nine copies queued, plus the spawn's. The task
    // completes at its fourth poll; the six copies still queued then find its future gone.
    let run = run(Clear::NoFlag, restless(3, 3));
    assert_eq!(
        run,
        Run {
            completed: true,
            polls: 4,
            dequeued: 10
        }
    );
}

#[test]
fn clearing_after_the_poll_loses_a_wake_made_during_it() {
    // One self-wake per poll (what `yield_now` does): the wake finds the flag still set and
    // queues nothing; then the flag is cleared, with nothing queued. The task is stuck.
    let after = run(Clear::After, restless(1, 1));
    assert!(!after.completed);
    assert_eq!(after.polls, 1);
    let before = run(Clear::Before, restless(1, 1));
    assert!(before.completed);
    assert_eq!(before.polls, 2);
}
