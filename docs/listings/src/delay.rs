//! `Delay`, the timer future both steps of the chapter "Build an executor" run, and
//! `cpu_time`, how they measure what waiting cost.
//!
//! `Delay` spends a thread per timer so that someone calls its waker: good enough to drive a
//! toy executor, and the reason real runtimes keep their timers in the event loop instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

// ANCHOR: delay
/// A future that is ready once `duration` has passed, measured by a thread that sleeps and then
/// wakes the last waker it was given.
pub struct Delay {
    duration: Duration,
    /// Shared with the timer thread; `None` until the first poll starts the thread.
    shared: Option<Arc<Mutex<DelayState>>>,
}

struct DelayState {
    done: bool,
    waker: Waker,
}

impl Delay {
    pub fn new(duration: Duration) -> Delay {
        Delay {
            duration,
            shared: None,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let shared = self.shared.get_or_insert_with(|| {
            // First poll: start the timer thread, handing it this poll's waker.
            let shared = Arc::new(Mutex::new(DelayState {
                done: false,
                waker: cx.waker().clone(),
            }));
            let for_thread = shared.clone();
            thread::spawn(move || {
                thread::sleep(duration);
                let mut state = for_thread.lock().unwrap();
                state.done = true;
                state.waker.wake_by_ref();
            });
            shared
        });
        let mut state = shared.lock().unwrap();
        if state.done {
            return Poll::Ready(());
        }
        // Keep the latest waker: a later poll may come with a different one.
        if !state.waker.will_wake(cx.waker()) {
            state.waker = cx.waker().clone();
        }
        Poll::Pending
    }
}
// ANCHOR_END: delay

// ANCHOR: cpu_time
/// CPU time this process has used so far, user and system, from `/proc/self/stat` (fields 14
/// and 15, in clock ticks of 1/100 s: Linux's USER_HZ).
pub fn cpu_time() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux's /proc");
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // `fields[0]` is field 3 (the state), so field N is `fields[N - 3]`.
    let ticks = |n: usize| fields[n - 3].parse::<u64>().expect("a number of ticks");
    let tick = Duration::from_millis(10);
    (tick * ticks(14) as u32, tick * ticks(15) as u32)
}
// ANCHOR_END: cpu_time
