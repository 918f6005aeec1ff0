//! run_queue_executor: step 2 of building an executor, a run queue and a waker that puts its
//! task on it, so the executor polls a task only when something woke it.
//!
//! Run it with `cargo run -q -p book-listings --example run_queue_executor`.
//!
//! What to watch for: three tasks wait on timer threads, 300 ms in all. Each is polled once to
//! start and once per wake, seven polls in all, where the busy-polling `block_on` of step 1 made
//! millions; and the CPU time stays near zero, because while no task is queued the executor
//! sleeps in the channel's `recv`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::time::{Duration, Instant};

use book_listings::delay::{cpu_time, Delay};
use futures_task::{waker_ref, ArcWake};

// ANCHOR: task
/// A future the executor owns, boxed so that tasks of different types fit in one queue.
type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A task: its future (taken out, `None`, once it has completed), and the way back into the
/// run queue. The waker of the task is this very `Arc<Task>`.
struct Task {
    name: &'static str,
    future: Mutex<Option<BoxFuture>>,
    polls: AtomicU32,
    run_queue: Sender<Arc<Task>>,
}

impl ArcWake for Task {
    /// Waking a task is queueing it; the executor polls it when its turn comes.
    fn wake_by_ref(arc_self: &Arc<Task>) {
        // An error means the executor is gone: nobody will poll the task again anyway.
        let _ = arc_self.run_queue.send(arc_self.clone());
    }
}
// ANCHOR_END: task

// ANCHOR: executor
struct Executor {
    run_queue: Sender<Arc<Task>>,
    ready: Receiver<Arc<Task>>,
}

impl Executor {
    fn new() -> Executor {
        let (run_queue, ready) = channel();
        Executor { run_queue, ready }
    }

    /// A new task is queued at once: its first poll starts it.
    fn spawn(&self, name: &'static str, future: impl Future<Output = ()> + Send + 'static) {
        let task = Arc::new(Task {
            name,
            future: Mutex::new(Some(Box::pin(future))),
            polls: AtomicU32::new(0),
            run_queue: self.run_queue.clone(),
        });
        self.run_queue.send(task).expect("the receiver is ours");
    }

    /// Polls queued tasks until every task has completed; returns the number of polls.
    fn run(self) -> u32 {
        // From here on only tasks (and the wakers they gave out) hold a sender: when the last
        // task is dropped, `recv` fails and the loop ends.
        drop(self.run_queue);
        let mut polls = 0;
        while let Ok(task) = self.ready.recv() {
            let mut slot = task.future.lock().unwrap();
            let Some(future) = slot.as_mut() else {
                continue; // A late wake of a task that has completed.
            };
            let waker = waker_ref(&task); // A `Waker` borrowed from the Arc: no clone.
            let mut cx = Context::from_waker(&waker);
            polls += 1;
            let task_polls = task.polls.fetch_add(1, Ordering::Relaxed) + 1;
            if future.as_mut().poll(&mut cx).is_ready() {
                *slot = None; // Drops the future, and with it the wakers it kept.
                println!("  {:>8}: done after {task_polls} polls", task.name);
            }
        }
        polls
    }
}
// ANCHOR_END: executor

/// User plus system CPU time used so far.
fn cpu_used() -> Duration {
    let (user, system) = cpu_time();
    user + system
}

// ANCHOR: main
fn main() {
    let executor = Executor::new();
    executor.spawn("long", Delay::new(Duration::from_millis(200)));
    executor.spawn("twice", async {
        Delay::new(Duration::from_millis(150)).await;
        Delay::new(Duration::from_millis(150)).await;
    });
    executor.spawn("short", Delay::new(Duration::from_millis(100)));
    println!("3 tasks spawned; running them");
    let cpu_before = cpu_used();
    let started = Instant::now();
    let polls = executor.run();
    let wall = started.elapsed();
    let cpu = cpu_used() - cpu_before;
    println!(
        "all done: {polls} polls in {} ms of wall time, {} ms of CPU time",
        wall.as_millis(),
        cpu.as_millis()
    );
}
// ANCHOR_END: main
