//! Three workloads of the peers benchmark, alone in a small program, to count what the
//! runtime's hot paths cost with a profiler rather than a clock:
//!
//! ```text
//! cargo build --release -p stroll --example hot_paths
//! valgrind --tool=callgrind target/release/examples/hot_paths ping_pong 100000
//! perf record -g target/release/examples/hot_paths timers 100000
//! ```
//!
//! Workloads (the second argument is the count): `spawn` (spawn that many empty tasks, then
//! join them), `ping_pong` (that many round trips between two tasks over futures' unbounded
//! channels), `timers` (that many tasks sleeping until a deadline spread over 0-50 ms, spawned
//! and joined). Each prints its cost: ns per task, ns per round trip, or the milliseconds the
//! last timer was late and the loop's CPU ns per timer.

use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::StreamExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hot_paths spawn|ping_pong|timers COUNT";
    let workload = args.next().expect(usage);
    let count: u32 = args.next().and_then(|n| n.parse().ok()).expect(usage);
    match workload.as_str() {
        "spawn" => println!("{:.1} ns per task", spawn(count)),
        "ping_pong" => println!("{:.1} ns per round trip", ping_pong(count)),
        "timers" => {
            let (late_ms, cpu_ns) = timers(count);
            println!("late by {late_ms:.1} ms, {cpu_ns:.0} CPU ns per timer");
        }
        _ => panic!("{usage}"),
    }
}

/// Spawns `count` empty tasks, then joins them; ns per task.
fn spawn(count: u32) -> f64 {
    stroll::block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..count).map(|_| stroll::spawn(async {})).collect();
        for handle in handles {
            handle.await.expect("an empty task cannot fail");
        }
        start.elapsed().as_nanos() as f64 / f64::from(count)
    })
}

/// Two tasks bounce a number `count` times; ns per round trip.
fn ping_pong(count: u32) -> f64 {
    stroll::block_on(async move {
        let start = Instant::now();
        let (ping_tx, mut ping_rx) = mpsc::unbounded::<u32>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded::<u32>();
        let ponger = stroll::spawn(async move {
            while let Some(n) = ping_rx.next().await {
                pong_tx.unbounded_send(n).expect("the pinger hung up");
            }
        });
        let pinger = stroll::spawn(async move {
            for n in 0..count {
                ping_tx.unbounded_send(n).expect("the ponger hung up");
                assert_eq!(pong_rx.next().await, Some(n));
            }
        });
        pinger.await.expect("the pinger failed");
        ponger.await.expect("the ponger failed");
        start.elapsed().as_nanos() as f64 / f64::from(count)
    })
}

/// `count` sleeping tasks, deadlines over 0-50 ms; (ms the last one ended after the last
/// deadline, loop CPU ns per timer).
fn timers(count: u32) -> (f64, f64) {
    stroll::block_on(async move {
        let offset_us = |i: u64| i * 7919 % 50_000;
        let last_us = (0..u64::from(count)).map(offset_us).max().unwrap_or(0);
        let start = Instant::now();
        let cpu_before = thread_cpu_ns();
        let handles: Vec<_> = (0..u64::from(count))
            .map(|i| {
                let deadline = start + Duration::from_micros(offset_us(i));
                stroll::spawn(stroll::time::sleep_until(deadline))
            })
            .collect();
        for handle in handles {
            handle.await.expect("a sleep cannot fail");
        }
        // Beyond the last deadline (49.99 ms for 100,000 timers).
        let late_ms = (start.elapsed().as_secs_f64() - last_us as f64 / 1e6) * 1e3;
        let cpu_ns = (thread_cpu_ns() - cpu_before) as f64 / f64::from(count);
        (late_ms, cpu_ns)
    })
}

/// This thread's time on a CPU so far, in ns (Linux: the first field of its schedstat).
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let first = stat.split_whitespace().next().expect("an empty schedstat");
    first.parse().expect("schedstat's first field is a number")
}
