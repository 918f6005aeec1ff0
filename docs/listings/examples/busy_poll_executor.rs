//! busy_poll_executor: step 1 of building an executor, a `block_on` whose waker does nothing,
//! so it can only poll the future again and again until it is ready.
//!
//! Run it with `cargo run -q -p book-listings --example busy_poll_executor`.
//!
//! What to watch for: the future waits 200 ms for a timer thread, and the executor cannot tell
//! when those 200 ms are over, so it asks millions of times. The last line compares the CPU
//! time the process used (user + system, from `/proc/self/stat`) with the wall time: close to
//! 100%, a whole core burnt on waiting.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

// ANCHOR: delay
/// A future that is ready once `duration` has passed, measured by a thread that sleeps and then
/// wakes the last waker it was given.
struct Delay {
    duration: Duration,
    /// Shared with the timer thread; `None` until the first poll starts the thread.
    shared: Option<Arc<Mutex<DelayState>>>,
}

struct DelayState {
    done: bool,
    waker: Waker,
}

impl Delay {
    fn new(duration: Duration) -> Delay {
        Delay {
            duration,
            shared: None,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
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

// ANCHOR: block_on
/// Runs `future` to completion on this thread by polling it until it is ready. The waker does
/// nothing, so there is nothing to wait for between polls: it never sleeps.
fn block_on<F: Future>(future: F) -> (F::Output, u64) {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(futures_task::noop_waker_ref());
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
    }
}
// ANCHOR_END: block_on

// ANCHOR: cpu_time
/// CPU time this process has used so far, user and system, from `/proc/self/stat` (fields 14
/// and 15, in clock ticks of 1/100 s: Linux's USER_HZ).
fn cpu_time() -> (Duration, Duration) {
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

// ANCHOR: main
fn main() {
    println!("waiting 200 ms for a timer thread, busy-polling");
    let (user0, system0) = cpu_time();
    let started = Instant::now();
    let ((), polls) = block_on(Delay::new(Duration::from_millis(200)));
    let wall = started.elapsed();
    let (user1, system1) = cpu_time();
    let (user, system) = (user1 - user0, system1 - system0);
    let cpu = user + system;
    println!("ready after {polls} polls");
    println!(
        "wall time {} ms, CPU time {} ms (user {} ms, system {} ms): {}% of a core",
        wall.as_millis(),
        cpu.as_millis(),
        user.as_millis(),
        system.as_millis(),
        (cpu.as_secs_f64() / wall.as_secs_f64() * 100.0).round()
    );
}
// ANCHOR_END: main
