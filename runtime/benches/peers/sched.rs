//! The scheduling workloads, written once against [`Runtime`]: no I/O, no timers, so every
//! runtime runs them, futures' `LocalPool` included. Each returns ns per unit of work, timed
//! inside `block_on` (creating and dropping the runtime is not counted).

use std::time::Instant;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;

use crate::rt::Runtime;

/// spawn_many: tasks spawned.
pub const SPAWNS: u32 = 1_000_000;
/// yield_many: tasks, and yields per task.
pub const YIELD_TASKS: u32 = 1_000;
pub const YIELDS_PER_TASK: u32 = 1_000;
/// ping_pong: round trips.
pub const ROUND_TRIPS: u32 = 1_000_000;
/// chained_spawn: tasks in the chain.
pub const CHAIN: u32 = 100_000;

/// Nanoseconds per unit of work since `start`.
fn ns_per(start: Instant, units: u32) -> f64 {
    start.elapsed().as_nanos() as f64 / f64::from(units)
}

/// Spawns [`SPAWNS`] empty tasks from the `block_on` future, then awaits every handle in
/// order. ns per task.
pub fn spawn_many<R: Runtime>() -> f64 {
    R::block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..SPAWNS).map(|_| R::spawn(async {})).collect();
        for handle in handles {
            handle.await;
        }
        ns_per(start, SPAWNS)
    })
}

/// [`YIELD_TASKS`] tasks that each yield [`YIELDS_PER_TASK`] times. ns per poll.
pub fn yield_many<R: Runtime>() -> f64 {
    R::block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                R::spawn(async {
                    for _ in 0..YIELDS_PER_TASK {
                        R::yield_now().await;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await;
        }
        ns_per(start, YIELD_TASKS * YIELDS_PER_TASK)
    })
}

/// Two tasks bounce a number [`ROUND_TRIPS`] times over two unbounded
/// `futures::channel::mpsc` channels. ns per round trip.
pub fn ping_pong<R: Runtime>() -> f64 {
    R::block_on(async {
        let start = Instant::now();
        let (ping_tx, mut ping_rx) = mpsc::unbounded::<u32>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded::<u32>();
        let ponger = R::spawn(async move {
            while let Some(n) = ping_rx.next().await {
                pong_tx.unbounded_send(n).expect("pinger hung up");
            }
        });
        let pinger = R::spawn(async move {
            for n in 0..ROUND_TRIPS {
                ping_tx.unbounded_send(n).expect("ponger hung up");
                assert_eq!(pong_rx.next().await, Some(n));
            }
            // Dropping `ping_tx` here ends the ponger's loop.
        });
        pinger.await;
        ponger.await;
        ns_per(start, ROUND_TRIPS)
    })
}

/// Each task spawns the next, [`CHAIN`] deep; the last one sends on a oneshot channel that
/// the `block_on` future awaits. ns per hop.
pub fn chained_spawn<R: Runtime>() -> f64 {
    R::block_on(async {
        let start = Instant::now();
        let (done_tx, done_rx) = oneshot::channel();
        hop::<R>(CHAIN, done_tx);
        done_rx.await.expect("the chain broke");
        ns_per(start, CHAIN)
    })
}

/// One link: spawn a task for the next hop, or signal the end.
fn hop<R: Runtime>(left: u32, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        R::spawn_detached(async move { hop::<R>(left - 1, done) });
    }
}
