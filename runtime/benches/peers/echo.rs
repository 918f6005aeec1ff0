//! echo: a single-threaded echo server in each runtime, driven by a load generator in another
//! process.
//!
//! The server runs on a dedicated thread of this process: it accepts [`CONNECTIONS`]
//! connections, serves each in its own task (read into a 4 KiB buffer, `write_all` it back)
//! and ends when every client has hung up. Its thread reads its own CPU time
//! (`/proc/thread-self/schedstat`) before and after. The load generator is this binary again
//! (role `echo-client`): one blocking std thread per connection sends a 64-byte message, waits
//! for the echo, and repeats for the run's duration, then prints how many round trips it made.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::child;
use crate::probe::{self, SyscallCounter};
use crate::rt::{Runtime, Smol, Tokio};

/// Client connections, each with one message in flight.
pub const CONNECTIONS: usize = 100;
/// Bytes per message.
pub const MESSAGE: usize = 64;

/// The runtimes with network I/O.
#[derive(Clone, Copy)]
pub enum Server {
    Stroll,
    Tokio,
    Smol,
}

impl Server {
    pub const ALL: [Server; 3] = [Server::Stroll, Server::Tokio, Server::Smol];

    pub fn name(self) -> &'static str {
        match self {
            Server::Stroll => "stroll",
            Server::Tokio => "tokio",
            Server::Smol => "smol",
        }
    }
}

/// One run's result.
pub struct EchoRun {
    pub messages_per_sec: f64,
    /// The server thread's CPU time per echoed message, in ns.
    pub cpu_ns_per_message: f64,
    /// Only when the run counted syscalls (and the counter worked).
    pub syscalls_per_message: Option<f64>,
}

/// Runs the server and the load generator for `duration`; counts the server thread's syscalls
/// with `counter` if given.
pub fn run(server: Server, duration: Duration, counter: Option<&SyscallCounter>) -> EchoRun {
    let (listener, addr) = probe::loopback_listener();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        tid_tx.send(probe::thread_id()).unwrap();
        let cpu_start = probe::thread_cpu_ns();
        let echoed = serve(server, listener);
        let _ = done_tx.send((probe::thread_cpu_ns() - cpu_start, echoed));
    });
    let tid = tid_rx.recv().expect("the server thread started");
    let syscalls = counter.and_then(|counter| counter.attach(tid));

    let client = load(addr, duration);
    let (cpu_ns, echoed_bytes) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the echo server did not finish after its clients left");
    let messages = echoed_bytes as f64 / MESSAGE as f64;
    EchoRun {
        messages_per_sec: client as f64 / duration.as_secs_f64(),
        cpu_ns_per_message: cpu_ns as f64 / messages,
        syscalls_per_message: syscalls
            .and_then(|s| s.finish())
            .map(|n| n as f64 / messages),
    }
}

/// Starts the load generator and waits for its count of round trips.
fn load(addr: SocketAddr, duration: Duration) -> u64 {
    let env = [
        ("PEERS_ADDR", addr.to_string()),
        ("PEERS_CONNS", CONNECTIONS.to_string()),
        ("PEERS_MILLIS", duration.as_millis().to_string()),
    ];
    let limit = duration + Duration::from_secs(30);
    let output = child::run_role("echo-client", &env, limit).unwrap_or_else(|err| panic!("{err}"));
    output
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("echo-client printed {output:?}"))
}

/// Serves [`CONNECTIONS`] clients until they all leave; returns the bytes echoed.
fn serve(server: Server, listener: std::net::TcpListener) -> u64 {
    match server {
        Server::Stroll => stroll::block_on(serve_stroll(listener)),
        Server::Tokio => Tokio::block_on(serve_tokio(listener)),
        Server::Smol => Smol::block_on(serve_smol(listener)),
    }
}

async fn serve_stroll(listener: std::net::TcpListener) -> u64 {
    let listener = stroll::net::TcpListener::from_std(listener).expect("register listener");
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        connections.push(stroll::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut echoed = 0;
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return echoed,
                    Ok(n) => n,
                };
                if stream.write_all(&buf[..n]).await.is_err() {
                    return echoed;
                }
                echoed += n as u64;
            }
        }));
    }
    let mut total = 0;
    for connection in connections {
        total += connection.await.expect("connection task failed");
    }
    total
}

async fn serve_tokio(listener: std::net::TcpListener) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::from_std(listener).expect("register listener");
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        connections.push(tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 4096];
            let mut echoed = 0;
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return echoed,
                    Ok(n) => n,
                };
                if stream.write_all(&buf[..n]).await.is_err() {
                    return echoed;
                }
                echoed += n as u64;
            }
        }));
    }
    let mut total = 0;
    for connection in connections {
        total += connection.await.expect("connection task failed");
    }
    total
}

async fn serve_smol(listener: std::net::TcpListener) -> u64 {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let listener = async_io::Async::new(listener).expect("register listener");
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream.get_ref().set_nodelay(true).expect("TCP_NODELAY");
        connections.push(Smol::spawn_task(async move {
            let mut buf = vec![0u8; 4096];
            let mut echoed = 0;
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return echoed,
                    Ok(n) => n,
                };
                if stream.write_all(&buf[..n]).await.is_err() {
                    return echoed;
                }
                echoed += n as u64;
            }
        }));
    }
    let mut total = 0;
    for connection in connections {
        total += connection.await;
    }
    total
}

/// The load generator's role: connect, then ping from one thread per connection until the
/// time is up; print the number of round trips.
pub fn client_role() {
    child::watch_parent();
    let addr: SocketAddr = child::env_var("PEERS_ADDR");
    let conns: usize = child::env_var("PEERS_CONNS");
    let duration = Duration::from_millis(child::env_var("PEERS_MILLIS"));
    let start = Arc::new(Barrier::new(conns + 1));
    let pingers: Vec<_> = (0..conns)
        .map(|_| {
            let stream = TcpStream::connect(addr).expect("connect to the echo server");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let start = start.clone();
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    start.wait();
                    ping(stream, duration)
                })
                .expect("start a client thread")
        })
        .collect();
    start.wait();
    let round_trips: u64 = pingers.into_iter().map(|p| p.join().unwrap()).sum();
    println!("{round_trips}");
}

/// Round trips of one connection until `duration` has passed; the stream is closed after.
fn ping(mut stream: TcpStream, duration: Duration) -> u64 {
    let message = [0x5a; MESSAGE];
    let mut echo = [0; MESSAGE];
    let end = Instant::now() + duration;
    let mut round_trips = 0;
    while Instant::now() < end {
        if stream.write_all(&message).is_err() || stream.read_exact(&mut echo).is_err() {
            break;
        }
        round_trips += 1;
    }
    round_trips
}
