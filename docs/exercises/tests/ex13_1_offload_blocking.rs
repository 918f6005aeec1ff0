//! Exercise 13.1 (worst-sin.md), "take the blocking call off the loop": a handler that calls
//! a blocking function (here a 150 ms `std::thread::sleep` standing in for a synchronous
//! library or a big file read) makes a heartbeat on the same loop late by about as much; the
//! same call through `spawn_blocking` leaves the heartbeat on time. Each test measures it.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use stroll::task::spawn_blocking;

/// The blocking call: 150 ms on whichever thread calls it.
fn checksum_of_a_big_file() -> u64 {
    std::thread::sleep(Duration::from_millis(150));
    42
}

/// Before: the call runs inside the poll, on the loop's thread.
async fn handler_blocking() -> u64 {
    checksum_of_a_big_file()
}

/// After: the call runs on the pool; the task waits without holding the loop.
async fn handler_offloaded() -> u64 {
    spawn_blocking(checksum_of_a_big_file).await.unwrap()
}

/// Runs `work` as a task beside a heartbeat that should tick every 5 ms; returns the work's
/// result and how late the heartbeat's worst tick was.
fn with_heartbeat<F: Future<Output = u64> + 'static>(work: F) -> (u64, Duration) {
    stroll::block_on(async move {
        let late = Rc::new(Cell::new(Duration::ZERO));
        let beating = {
            let late = late.clone();
            stroll::spawn(async move {
                let mut ticks = stroll::time::interval(Duration::from_millis(5));
                loop {
                    let tick = ticks.tick().await;
                    late.set(late.get().max(tick.elapsed()));
                }
            })
        };
        stroll::time::sleep(Duration::from_millis(20)).await;
        late.set(Duration::ZERO);
        let answer = stroll::spawn(work).await.unwrap();
        stroll::time::sleep(Duration::from_millis(10)).await;
        beating.abort();
        (answer, late.get())
    })
}

#[test]
fn the_blocking_handler_makes_the_heartbeat_late() {
    let (answer, late) = with_heartbeat(handler_blocking());
    assert_eq!(answer, 42);
    assert!(late >= Duration::from_millis(100), "only {late:?} late");
}

#[test]
fn the_offloaded_handler_leaves_the_heartbeat_on_time() {
    let (answer, late) = with_heartbeat(handler_offloaded());
    assert_eq!(answer, 42);
    assert!(late < Duration::from_millis(50), "{late:?} late");
}
