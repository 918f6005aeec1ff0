//! idle: what an idle connection costs the server in resident memory.
//!
//! Each run is a fresh process (role `idle-server`), so that memory freed by earlier workloads
//! cannot hide new allocations. It reads its `VmRSS`, accepts N connections (each a detached
//! task that allocates a 4 KiB read buffer and parks in `read`, as users write it), lets every
//! task park, and reads `VmRSS` again. The clients are yet another process (role
//! `idle-client`): a process may hold 20,000 descriptors here, and the server holds N already.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::child;
use crate::echo::Server;
use crate::probe::{self, vm_rss_bytes};
use crate::rt::{Runtime, Smol, Tokio};

/// The read buffer each connection allocates.
pub const BUFFER: usize = 4096;
/// How long the server waits after the last accept, for every task to park in `read`.
const SETTLE: Duration = Duration::from_millis(200);
/// The deadline of the server and client processes of one run.
const LIMIT: Duration = Duration::from_secs(30);

/// Resident memory per connection, in bytes, from one run.
pub fn run(server: Server, conns: usize) -> Result<f64, String> {
    let env = [
        ("PEERS_SERVER", server.name().to_string()),
        ("PEERS_CONNS", conns.to_string()),
    ];
    let output = child::run_role("idle-server", &env, LIMIT)?;
    let mut fields = output.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(before)), Some(Ok(after))) => Ok((after as f64 - before as f64) / conns as f64),
        _ => Err(format!("idle-server printed {output:?}")),
    }
}

/// The server's role: start the clients, hold their connections, print "before after".
pub fn server_role() {
    child::watch_parent();
    let server: String = child::env_var("PEERS_SERVER");
    let conns: usize = child::env_var("PEERS_CONNS");
    let (listener, addr) = probe::loopback_listener();
    let clients = start_clients(addr, conns);
    let (before, after) = match server.as_str() {
        "stroll" => stroll::block_on(hold_stroll(listener, conns)),
        "tokio" => Tokio::block_on(hold_tokio(listener, conns)),
        "smol" => Smol::block_on(hold_smol(listener, conns)),
        other => panic!("no idle server for {other}"),
    };
    println!("{before} {after}");
    drop(clients);
    // Exit at once: tearing down thousands of tasks is not what is measured.
    std::process::exit(0);
}

fn start_clients(addr: SocketAddr, conns: usize) -> child::Guard {
    let env = [
        ("PEERS_ADDR", addr.to_string()),
        ("PEERS_CONNS", conns.to_string()),
    ];
    child::spawn_role("idle-client", &env, LIMIT)
}

async fn hold_stroll(listener: std::net::TcpListener, conns: usize) -> (u64, u64) {
    let listener = stroll::net::TcpListener::from_std(listener).expect("register listener");
    let before = vm_rss_bytes();
    for _ in 0..conns {
        let (stream, _) = listener.accept().await.expect("accept");
        drop(stroll::spawn(async move {
            let mut buf = vec![0u8; BUFFER];
            let _ = stream.read(&mut buf).await;
        }));
    }
    stroll::time::sleep(SETTLE).await;
    (before, vm_rss_bytes())
}

async fn hold_tokio(listener: std::net::TcpListener, conns: usize) -> (u64, u64) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::from_std(listener).expect("register listener");
    let before = vm_rss_bytes();
    for _ in 0..conns {
        let (mut stream, _) = listener.accept().await.expect("accept");
        drop(tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; BUFFER];
            let _ = stream.read(&mut buf).await;
        }));
    }
    tokio::time::sleep(SETTLE).await;
    (before, vm_rss_bytes())
}

async fn hold_smol(listener: std::net::TcpListener, conns: usize) -> (u64, u64) {
    use futures_lite::AsyncReadExt;
    let listener = async_io::Async::new(listener).expect("register listener");
    let before = vm_rss_bytes();
    for _ in 0..conns {
        let (mut stream, _) = listener.accept().await.expect("accept");
        Smol::spawn_task(async move {
            let mut buf = vec![0u8; BUFFER];
            let _ = stream.read(&mut buf).await;
        })
        .detach();
    }
    async_io::Timer::after(SETTLE).await;
    (before, vm_rss_bytes())
}

/// The clients' role: open N connections and keep them until told to go.
pub fn client_role() {
    child::watch_parent();
    let addr: SocketAddr = child::env_var("PEERS_ADDR");
    let conns: usize = child::env_var("PEERS_CONNS");
    let _streams: Vec<TcpStream> = (0..conns)
        .map(|_| TcpStream::connect(addr).expect("connect to the idle server"))
        .collect();
    // `watch_parent` ends the process when the server closes our stdin (or at the deadline).
    loop {
        std::thread::park();
    }
}
