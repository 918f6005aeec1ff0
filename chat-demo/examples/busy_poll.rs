//! busy_poll: serving sockets without blocking and without a readiness API. The book's
//! chapter "Non-blocking sockets and epoll" runs it.
//!
//! Run it with `cargo run -q -p chat-demo --example busy_poll`.
//!
//! What to watch for: non-blocking sockets never make the thread wait, so the only way to
//! find data is to ask every socket, again and again. The program serves 10 clients for two
//! seconds; a client thread sends one line per 100 ms on each. Count the read attempts that
//! found nothing, and the CPU time burned: a whole core, to move a few hundred lines.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

#[path = "shared/clients.rs"]
mod clients;

use clients::{cpu_seconds, talk, CLIENTS, RUN_FOR};

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let talkers = std::thread::spawn(move || talk(addr));
    let mut conns: Vec<TcpStream> = Vec::new();
    for _ in 0..CLIENTS {
        let (stream, _) = listener.accept()?;
        stream.set_nonblocking(true)?;
        conns.push(stream);
    }
    let cpu_before = cpu_seconds();
    let (mut tries, mut empty, mut lines) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    // ANCHOR: busy
    let mut buf = [0u8; 4096];
    while start.elapsed() < RUN_FOR {
        for conn in &mut conns {
            tries += 1;
            match conn.read(&mut buf) {
                Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
                Err(err) if err.kind() == ErrorKind::WouldBlock => empty += 1, // nothing yet: ask again
                Err(err) => return Err(err),
            }
        }
    }
    // ANCHOR_END: busy
    let wall = start.elapsed();
    println!("busy polling, {CLIENTS} clients, {RUN_FOR:?}:");
    println!("  lines received:           {lines}");
    println!("  reads tried:              {tries}");
    println!("  reads that found nothing: {empty}");
    println!(
        "  CPU time used:            {:.2} s of {:.2} s",
        cpu_seconds() - cpu_before,
        wall.as_secs_f64()
    );
    drop(conns);
    talkers.join().unwrap()
}
