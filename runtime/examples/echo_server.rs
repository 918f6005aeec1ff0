//! echo_server: every byte a client sends comes back, each client in its own task.
//!
//! Run it with `cargo run --release -p stroll --example echo_server [ADDR]` (default
//! 127.0.0.1:7878), then in another terminal `nc 127.0.0.1 7878` and type.
//!
//! What to watch for: open several `nc` sessions. One thread serves them all: each connection
//! is a task that spends its life parked in `read().await`, costing only its future's size and
//! its buffer, not a thread's stack. Ctrl-C stops the server.

use std::net::Shutdown;

use stroll::net::{TcpListener, TcpStream};

/// Serves one client: read a chunk, write it back, until the client closes.
async fn echo(stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // End of file: the client closed its side. Close ours and end the task.
            stream.shutdown(Shutdown::Write)?;
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".to_string());
    stroll::block_on(async move {
        let listener = TcpListener::bind(addr.as_str()).await?;
        let addr = listener.local_addr()?;
        println!("echo server listening on {addr}");
        println!("try it: nc {} {}", addr.ip(), addr.port());
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Most often EMFILE (out of file descriptors): wait before retrying, or
                    // this loop would spin on a listener that stays readable.
                    eprintln!("accept failed: {err}; retrying in 1 s");
                    stroll::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            println!("{peer} connected");
            // Detached task: the handle is dropped, the task keeps running.
            drop(stroll::spawn(async move {
                match echo(stream).await {
                    Ok(()) => println!("{peer} left"),
                    Err(err) => println!("{peer} dropped: {err}"),
                }
            }));
        }
    })
}
