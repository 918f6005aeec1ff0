//! walkthrough: one task's round trip through the event loop, small enough to follow in a
//! debugger (`docs/debugging/loop.gdb` steps through it).
//!
//! Run it with `cargo run -p stroll --example walkthrough`, or under gdb:
//! `rust-gdb -x docs/debugging/loop.gdb target/debug/examples/walkthrough`.
//!
//! What to watch for: the task named "reader" is spawned into the run queue, polled once,
//! parks on its socket (the task table says it waits on "tcp ... readable"), and leaves the
//! run queue. When the main future writes to the other end, the reactor's wait returns an
//! event, the reader is woken back into the run queue, polled again, and finishes.

use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};
use stroll::task::Builder;

// ANCHOR: main
fn main() {
    let got = stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server_side, _) = listener.accept().await.unwrap();
        let reader = Builder::new().name("reader").spawn(async move {
            let mut buf = [0; 16];
            // Nothing to read yet: this parks the task until the reactor says "readable".
            server_side.read(&mut buf).await.unwrap()
        });
        // Give the reader time to park on its socket.
        stroll::time::sleep(Duration::from_millis(10)).await;
        // Bytes arrive on the reader's socket: the reactor will wake it.
        client.write_all(b"hello").await.unwrap();
        reader.await.unwrap()
    });
    println!("the reader got {got} bytes");
}
// ANCHOR_END: main
