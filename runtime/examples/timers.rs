//! timers: sleep, interval and timeout on one thread.
//!
//! Run it with `cargo run -p stroll --example timers`.
//!
//! What to watch for: the interval keeps its schedule (each tick is exactly 100 ms after the
//! previous one) even though other tasks run in between; ten thousand sleepers cost little
//! and wake in deadline order; the timeout gives up on a future that is too slow, and dropping
//! that future removes its timer from the loop.

use std::time::{Duration, Instant};

use stroll::time::{interval, sleep, timeout};

fn main() {
    stroll::block_on(async {
        let start = Instant::now();

        // An interval: the first tick completes at once, then one every 100 ms.
        let ticker = stroll::spawn(async move {
            let mut ticks = interval(Duration::from_millis(100));
            for _ in 0..4 {
                let tick = ticks.tick().await;
                println!("tick scheduled at +{:?}", tick - start);
            }
        });

        // Ten thousand sleepers with scattered deadlines, all on one thread.
        let sleepers: Vec<_> = (0..10_000u64)
            .map(|i| {
                stroll::spawn(async move { sleep(Duration::from_micros((i * 37) % 300_000)).await })
            })
            .collect();
        for sleeper in sleepers {
            sleeper.await.unwrap();
        }
        println!("10,000 sleepers done at +{:?}", start.elapsed());

        // A timeout around a future that takes too long.
        match timeout(Duration::from_millis(50), sleep(Duration::from_secs(5))).await {
            Ok(()) => println!("the slow sleep finished first?"),
            Err(elapsed) => println!("timeout: {elapsed} at +{:?}", start.elapsed()),
        }

        ticker.await.unwrap();
        println!("all done at +{:?}", start.elapsed());
    });
}
