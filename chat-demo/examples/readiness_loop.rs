//! readiness_loop: the same clients as `busy_poll`, served by a readiness loop on mio.
//! Chapter 2.
//!
//! Run it with `cargo run --release -p chat-demo --example readiness_loop`.
//!
//! What to watch for: the thread sleeps in `epoll_wait` until the kernel says which sockets
//! have data, then reads exactly those. Same lines received, almost no wasted reads, almost
//! no CPU. This loop is the seed of every event loop, stroll's included.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

#[path = "shared/clients.rs"]
mod clients;

use clients::{cpu_seconds, talk, CLIENTS, RUN_FOR};

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    let addr = listener.local_addr()?;
    let talkers = std::thread::spawn(move || talk(addr));
    let mut poll = Poll::new()?;
    let mut conns = Vec::new();
    while conns.len() < CLIENTS {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let token = Token(conns.len());
                poll.registry()
                    .register(&mut stream, token, Interest::READABLE)?;
                conns.push(stream);
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(err) => return Err(err),
        }
    }
    let cpu_before = cpu_seconds();
    let (mut empty, mut lines, mut waits) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    // ANCHOR: readiness
    let mut events = Events::with_capacity(64);
    let mut buf = [0u8; 4096];
    while start.elapsed() < RUN_FOR {
        // Sleep until some socket is readable (or the run is over).
        poll.poll(&mut events, Some(RUN_FOR.saturating_sub(start.elapsed())))?;
        waits += 1;
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            // Edge-triggered: read until the kernel says "nothing more" (WouldBlock).
            loop {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {
                        empty += 1;
                        break;
                    }
                    Err(err) => return Err(err),
                }
            }
        }
    }
    // ANCHOR_END: readiness
    println!("readiness loop, {CLIENTS} clients, {RUN_FOR:?}:");
    println!("  lines received:           {lines}");
    println!("  reads that found nothing: {empty}");
    println!("  waits in epoll_wait:      {waits}");
    println!(
        "  CPU time used:            {:.2} s",
        cpu_seconds() - cpu_before
    );
    drop(conns);
    talkers.join().unwrap()
}
