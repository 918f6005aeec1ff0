//! worst_sin: blocking the loop, caught by debug mode.
//!
//! Run it with `STROLL_DEBUG=1 cargo run -q -p stroll --example worst_sin`.
//!
//! What to watch for: a tiny server whose handler calls `std::thread::sleep`, the classic way
//! to block an event loop. While one handler sleeps, nothing else runs: not the other
//! clients, not the timers. Debug mode prints a "slow poll" line naming the task, its spawn
//! location and how long it held the loop. Two witnesses measure the damage in each round: a
//! heartbeat task that should tick every 10 ms (how late was its worst tick?) and a second
//! client, on a thread of its own, that pings an echo task on the same loop every 10 ms (how
//! long did its slowest answer take?). In round 1 both wait as long as the blocking call.
//! Round 2 does the same wait through `spawn_blocking`, on a pool thread: the loop keeps
//! turning, both witnesses stay on time, and no warning appears.
//!
//! The program plays every client itself and exits, so it can run unattended.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

/// Echoes every byte back: the service the pinging client uses.
async fn echo(stream: TcpStream) {
    let mut buf = [0; 64];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        if stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// A client on its own thread: pings the echo server every 10 ms and keeps the slowest
/// round trip (in µs) in `worst` until `stop` is set.
fn pinger(addr: std::net::SocketAddr, worst: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut byte = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        if stream
            .write_all(b"p")
            .and_then(|()| stream.read_exact(&mut byte))
            .is_err()
        {
            return;
        }
        let took = start.elapsed().as_micros() as u64;
        worst.fetch_max(took, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() {
    stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();

        // Witness 1: a heartbeat that should tick every 10 ms; it keeps its worst lateness.
        let late = Rc::new(Cell::new(Duration::ZERO));
        let worst_late = late.clone();
        let heartbeat = Builder::new().name("heartbeat").spawn(async move {
            let mut ticks = stroll::time::interval(Duration::from_millis(10));
            loop {
                let tick = ticks.tick().await;
                worst_late.set(worst_late.get().max(tick.elapsed()));
            }
        });

        // Witness 2: another client, served by an echo task on this same loop.
        let echo_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo_listener.local_addr().unwrap();
        let (worst_ping, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let pinging = {
            let (worst, stop) = (worst_ping.clone(), stop.clone());
            std::thread::spawn(move || pinger(echo_addr, worst, stop))
        };
        let (echo_stream, _) = echo_listener.accept().await.unwrap();
        let echoing = Builder::new().name("echo").spawn(echo(echo_stream));
        stroll::time::sleep(Duration::from_millis(50)).await; // Let both witnesses settle.

        for (round, offload) in [(1, false), (2, true)] {
            late.set(Duration::ZERO);
            worst_ping.store(0, Ordering::Relaxed);
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
            // Give the witnesses a few more ticks, to see the loop recover.
            stroll::time::sleep(Duration::from_millis(30)).await;
            let how = if offload {
                "spawn_blocking"
            } else {
                "std::thread::sleep on the loop"
            };
            println!("round {round} ({how}):");
            println!("  the slow client's answer took {} ms", took.as_millis());
            println!(
                "  the pinging client's slowest answer took {:.1} ms",
                worst_ping.load(Ordering::Relaxed) as f64 / 1000.0
            );
            println!(
                "  the heartbeat's worst tick was {:.1} ms late",
                late.get().as_secs_f64() * 1000.0
            );
        }
        stop.store(true, Ordering::Relaxed);
        heartbeat.abort();
        // Joining a thread blocks: on the loop's thread it could wait for a ping that only the
        // loop can answer. So the join, too, goes to the pool.
        let _ = spawn_blocking(move || pinging.join()).await;
        echoing.abort();
    });
}
