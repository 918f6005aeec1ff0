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
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use book_listings::delay::{cpu_time, Delay};

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
