//! hello: the smallest stroll program, explained line by line.
//!
//! Run it with `cargo run -p stroll --example hello`.
//!
//! What to watch for: the two tasks print in turn although there is only one thread. Each
//! `.await` on a sleep hands the thread back to the loop, which runs whichever task's timer
//! fires next.

use std::time::Duration;

fn main() {
    // `block_on` creates a runtime on this thread and runs the event loop until the future we
    // hand it (this `async` block) completes. Everything below runs on this one thread.
    let total = stroll::block_on(async {
        // `spawn` adds a task to the runtime's task table. It does not run yet: it sits in the
        // run queue until this future gives the loop a chance (at its first `.await`).
        let slow = stroll::spawn(async {
            for i in 1..=3 {
                // `sleep` registers a deadline with the loop's timers and returns `Pending`;
                // the task is parked until the loop sees the deadline pass and wakes it.
                stroll::time::sleep(Duration::from_millis(30)).await;
                println!("  slow task: tick {i}");
            }
            "slow done"
        });

        // A second task, named: names show up in panic reports.
        let fast = stroll::task::Builder::new().name("fast").spawn(async {
            for i in 1..=3 {
                stroll::time::sleep(Duration::from_millis(20)).await;
                println!("  fast task: tick {i}");
            }
            "fast done"
        });

        println!("main: spawned two tasks; waiting for both");
        // Awaiting a `JoinHandle` parks this future until the task finishes. The result is a
        // `Result`: `Err` if the task panicked or was aborted.
        let a = slow.await.expect("the slow task panicked");
        let b = fast.await.expect("the fast task panicked");
        println!("main: {a}, {b}");
        6
    });
    // `block_on` returns the async block's output once it completes.
    println!("block_on returned {total}");
}
