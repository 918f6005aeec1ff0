//! `spawn_blocking`: run code that blocks on other threads, so the loop keeps turning.
//!
//! The loop thread must never block: while it sits in a slow system call or a long computation,
//! no other task runs. Code that has to block (a synchronous library, a file read, a DNS lookup,
//! heavy computing) goes to this pool instead, as asyncio's `run_in_executor` does.
//!
//! The pool is shared by every runtime in the process. It starts a thread when a job arrives and
//! no thread is idle, up to [`MAX_THREADS`]; beyond that, jobs wait in a queue. A thread with no
//! work for [`IDLE_TIMEOUT`] exits. When a job finishes, its result goes into a [`Handoff`] and
//! the job wakes the task awaiting it: a wake from another thread, which interrupts the loop's
//! `epoll_wait` through the runtime's `mio::Waker`.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

/// The most threads the pool runs at once.
pub(crate) const MAX_THREADS: usize = 16;

/// How long an idle pool thread waits for work before it exits.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A job: the user's closure, wrapped so that it delivers its own result.
type Job = Box<dyn FnOnce() + Send>;

/// Starts `f` on a pool thread; the returned future is its result (`spawn_blocking` in
/// `task.rs` makes it a task).
///
/// # Panics
/// If no pool thread runs and none can be started: the job would never run.
pub(crate) fn run<F, T>(f: F) -> Receiver<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handoff = Arc::new(Mutex::new(Handoff {
        result: None,
        waiter: None,
    }));
    let receiver = Receiver {
        handoff: handoff.clone(),
    };
    let job: Job = Box::new(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let waiter = {
            let mut handoff = lock(&handoff);
            handoff.result = Some(result);
            handoff.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    });
    if let Err(err) = pool().submit(job) {
        panic!("stroll: spawn_blocking could not start a thread to run the job: {err}");
    }
    receiver
}

/// Where a pool thread leaves a job's result for the task awaiting it.
struct Handoff<T> {
    /// The closure's return value, or its panic.
    result: Option<thread::Result<T>>,
    /// The waker of the task awaiting the result.
    waiter: Option<Waker>,
}

/// The future of the task that `spawn_blocking` spawns: it waits for the [`Handoff`].
pub(crate) struct Receiver<T> {
    handoff: Arc<Mutex<Handoff<T>>>,
}

impl<T> Future for Receiver<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut handoff = lock(&self.handoff);
        match handoff.result.take() {
            Some(Ok(value)) => Poll::Ready(value),
            // Re-raise the job's panic inside the task, so its JoinHandle reports it.
            Some(Err(payload)) => {
                drop(handoff);
                panic::resume_unwind(payload)
            }
            None => {
                handoff.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The thread pool.
struct Pool {
    state: Mutex<PoolState>,
    /// Signalled when a job is queued for an idle thread.
    work_ready: Condvar,
}

struct PoolState {
    /// Jobs not yet taken by a thread.
    queue: VecDeque<Job>,
    /// Threads alive. Invariant: `threads <= MAX_THREADS`.
    threads: usize,
    /// Threads waiting for a job. Invariant: `idle <= threads`.
    idle: usize,
}

/// The process-wide pool, created on first use.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        work_ready: Condvar::new(),
    })
}

/// Locks a mutex, ignoring poisoning: jobs run outside the pool's locks, so a panicking job
/// cannot leave the pool's state half-changed.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    /// Queues `job`, then wakes an idle thread for it or starts a new one. Fails only if no
    /// thread runs and none can be started: the job would never run.
    fn submit(&'static self, job: Job) -> std::io::Result<()> {
        let mut state = lock(&self.state);
        if state.idle > state.queue.len() {
            // An idle thread is free for this job: wake one.
            state.queue.push_back(job);
            self.work_ready.notify_one();
            return Ok(());
        }
        if state.threads < MAX_THREADS {
            let started = thread::Builder::new()
                .name("stroll-blocking".into())
                .spawn(move || self.worker());
            match started {
                Ok(_) => state.threads += 1,
                Err(err) if state.threads == 0 => return Err(err),
                Err(_) => {} // A busy thread will take the job when it is done.
            }
        }
        // The job waits in the queue for the new thread or the next one to be free.
        state.queue.push_back(job);
        Ok(())
    }

    /// A pool thread: take jobs until none comes for `IDLE_TIMEOUT`.
    fn worker(&'static self) {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job(); // The job catches its closure's panic itself, so it cannot kill us.
                state = lock(&self.state);
                continue;
            }
            state.idle += 1;
            let (next, wait) = self
                .work_ready
                .wait_timeout(state, IDLE_TIMEOUT)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state = next;
            state.idle -= 1;
            if wait.timed_out() && state.queue.is_empty() {
                // Deciding to leave and counting ourselves out happen under one lock: a job
                // submitted after this sees one thread fewer and starts another.
                state.threads -= 1;
                return;
            }
        }
    }
}
