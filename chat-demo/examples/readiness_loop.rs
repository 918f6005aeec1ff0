//! readiness_loop: the same clients as `busy_poll`, served by a readiness loop on mio. The
//! book's chapter "Non-blocking sockets and epoll" runs it.
//!
//! Run it with `cargo run -q -p chat-demo --example readiness_loop`.
//!
//! What to watch for: the thread sleeps in `epoll_wait` until the kernel says which sockets
//! have data, then reads exactly those. Same lines received, almost no wasted reads, almost
//! no CPU. This loop is the seed of every event loop, stroll's included.

use std::io::{ErrorKind, Read};
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

#[path = "shared/clients.rs"]
mod clients;

use clients::{cpu_seconds, talk, CLIENTS, RUN_FOR};

/// The listener's token; connections use their index in `conns`.
const LISTENER: Token = Token(usize::MAX);

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    let addr = listener.local_addr()?;
    let talkers = std::thread::spawn(move || talk(addr));
    // ANCHOR: register
    let mut poll = Poll::new()?; // epoll_create1: an empty interest list in the kernel
    let mut listener = listener;
    // epoll_ctl(ADD): watch the listener; its events come back with the token LISTENER.
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(64);
    let mut conns = Vec::new();
    while conns.len() < CLIENTS {
        poll.poll(&mut events, None)?; // epoll_wait: sleep until a client connects
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    // Watch the new socket too; its token is its index in `conns`.
                    let token = Token(conns.len());
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    conns.push(stream);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => break, // none left: wait
                Err(err) => return Err(err),
            }
        }
    }
    // ANCHOR_END: register
    let cpu_before = cpu_seconds();
    let (mut tries, mut empty, mut lines, mut waits) = (0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    // ANCHOR: readiness
    let mut buf = [0u8; 4096];
    while start.elapsed() < RUN_FOR {
        // Sleep until some socket is readable (or the run is over).
        poll.poll(&mut events, Some(RUN_FOR.saturating_sub(start.elapsed())))?;
        waits += 1;
        for event in events.iter() {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue; // the listener: nobody else will connect
            };
            // Edge-triggered: read until the kernel says "nothing more" (WouldBlock).
            loop {
                tries += 1;
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
    let wall = start.elapsed();
    println!("readiness loop, {CLIENTS} clients, {RUN_FOR:?}:");
    println!("  lines received:           {lines}");
    println!("  reads tried:              {tries}");
    println!("  reads that found nothing: {empty}");
    println!("  waits in epoll_wait:      {waits}");
    println!(
        "  CPU time used:            {:.2} s of {:.2} s",
        cpu_seconds() - cpu_before,
        wall.as_secs_f64()
    );
    drop(conns);
    talkers.join().unwrap()
}
