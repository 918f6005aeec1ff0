//! Exercise 14.2 (chapter "When to use it"): keep CPU-bound work off the loop.
//!
//! A heartbeat task wants to tick every 10 ms while a 300 ms computation runs. Run on the
//! loop's thread, the computation stops every other task for its whole length; handed to
//! `stroll::task::spawn_blocking`, it runs on a pool thread and the heartbeat keeps its pace.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// CPU-bound work: spins for `how_long` doing arithmetic, never waiting on anything.
fn crunch(how_long: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < how_long {
        for _ in 0..1000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
    }
    x
}

/// Runs `work` while a heartbeat ticks every 10 ms; returns the longest gap between ticks.
fn longest_heartbeat_gap(offload: bool) -> Duration {
    stroll::block_on(async move {
        let longest = Rc::new(Cell::new(Duration::ZERO));
        let done = Rc::new(Cell::new(false));
        let heartbeat = stroll::spawn({
            let (longest, done) = (longest.clone(), done.clone());
            async move {
                let mut last = Instant::now();
                while !done.get() {
                    stroll::time::sleep(Duration::from_millis(10)).await;
                    longest.set(longest.get().max(last.elapsed()));
                    last = Instant::now();
                }
            }
        });
        // Let the heartbeat start ticking.
        stroll::time::sleep(Duration::from_millis(30)).await;
        let work = Duration::from_millis(300);
        let result = if offload {
            stroll::task::spawn_blocking(move || crunch(work))
                .await
                .expect("the job did not panic")
        } else {
            crunch(work) // on the loop's thread: nothing else runs meanwhile
        };
        assert_ne!(result, 0);
        done.set(true);
        heartbeat.await.expect("the heartbeat ends");
        longest.get()
    })
}

#[test]
fn inline_work_stops_the_heartbeat() {
    let gap = longest_heartbeat_gap(false);
    assert!(gap >= Duration::from_millis(250), "longest gap {gap:?}");
}

#[test]
fn offloaded_work_lets_the_heartbeat_tick() {
    let gap = longest_heartbeat_gap(true);
    // Ticks every 10 ms; 100 ms leaves room for a loaded machine, far from the 300 ms stall.
    assert!(gap < Duration::from_millis(100), "longest gap {gap:?}");
}
