//! worst_sin: blocking the loop, caught by debug mode.
//!
//! Run it with `STROLL_DEBUG=1 cargo run -p stroll --example worst_sin`.
//!
//! What to watch for: a tiny server whose handler calls `std::thread::sleep`, the classic way
//! to block an event loop. While one handler sleeps, nothing else runs: not the other
//! clients, not the timers. Debug mode prints a "slow poll" line naming the task, its spawn
//! location and how long it held the loop. A heartbeat task that ticks every 50 ms shows the
//! damage: its ticks come late, then the missed ones all at once as the interval catches up.
//! The second handler does the same wait through `spawn_blocking`, on a pool thread: the loop
//! keeps turning, the heartbeat stays on time, and no warning appears.
//!
//! The program plays both clients itself and exits, so it can run unattended.

use std::time::{Duration, Instant};

use stroll::net::{TcpListener, TcpStream};
use stroll::task::{spawn_blocking, Builder};

/// Pretends to call a slow synchronous library: 300 ms of blocking.
fn slow_lookup() -> &'static str {
    std::thread::sleep(Duration::from_millis(300));
    "answer"
}

// ANCHOR: sin
/// The sin: the blocking call runs on the loop thread, inside a poll.
async fn blocking_handler(stream: TcpStream) {
    let answer = slow_lookup();
    let _ = stream.write_all(format!("{answer}\n").as_bytes()).await;
}

/// The cure: the blocking call runs on the spawn_blocking pool; this task just waits.
async fn offloaded_handler(stream: TcpStream) {
    let answer = spawn_blocking(slow_lookup).await.unwrap();
    let _ = stream.write_all(format!("{answer}\n").as_bytes()).await;
}
// ANCHOR_END: sin

/// Connects and returns how long the answer took.
async fn ask(addr: std::net::SocketAddr) -> Duration {
    let start = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0; 64];
    let _ = stream.read(&mut buf).await;
    start.elapsed()
}

fn main() {
    stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A heartbeat that should tick every 50 ms; watch it stall during the blocking call.
        let heartbeat = Builder::new().name("heartbeat").spawn(async {
            let mut ticks = stroll::time::interval(Duration::from_millis(50));
            loop {
                let tick = ticks.tick().await;
                let late = tick.elapsed();
                if late > Duration::from_millis(20) {
                    println!("heartbeat: tick {} ms late", late.as_millis());
                }
            }
        });
        for (round, offload) in [(1, false), (2, true)] {
            let client = stroll::spawn(ask(addr));
            let (stream, _) = listener.accept().await.unwrap();
            let handler = if offload {
                Builder::new()
                    .name("offloaded handler")
                    .spawn(offloaded_handler(stream))
            } else {
                Builder::new()
                    .name("blocking handler")
                    .spawn(blocking_handler(stream))
            };
            handler.await.unwrap();
            let took = client.await.unwrap();
            let how = if offload {
                "spawn_blocking"
            } else {
                "std::thread::sleep on the loop"
            };
            println!("round {round} ({how}): answered in {} ms", took.as_millis());
        }
        heartbeat.abort();
    });
}
