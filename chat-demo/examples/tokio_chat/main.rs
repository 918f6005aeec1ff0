//! tokio_chat: the `async` chat server ported from stroll to tokio, for the book's chapter
//! "Graduating to tokio".
//!
//! Run it with `cargo run -p chat-demo --example tokio_chat [ADDR]` (default 127.0.0.1:7878),
//! then join with `nc 127.0.0.1 7878` from two terminals. Stop it with Ctrl-C.
//!
//! What to watch for: it speaks exactly the protocol of `chat-demo serve --mode async`,
//! because it is the same room (`room.rs`, `protocol.rs` and `server.rs` are compiled in
//! from `chat-demo/src/` unchanged) driven by the same `async fn`s. Only the runtime's names
//! differ: compare `async_fn.rs` here with `chat-demo/src/async_fn.rs`, and `on_tokio.rs`
//! with `chat-demo/src/on_stroll.rs`. No web client and no `/tasks` table in this port.

use std::net::SocketAddr;

// The room, the protocol and what the connection tasks share know nothing of any runtime:
// they are compiled in from chat-demo/src, not copied.
// (Not every item of them is used by this port.)
#[allow(dead_code)]
#[path = "../../src/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../../src/room.rs"]
mod room;
#[allow(dead_code)]
#[path = "../../src/server.rs"]
mod server;
#[path = "../../src/shared.rs"]
mod shared;

mod async_fn;
mod on_tokio;

// ANCHOR: main
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(addr) => addr.parse().map_err(std::io::Error::other)?,
        None => SocketAddr::from(([127, 0, 0, 1], 7878)),
    };
    let listener = server::bind_listener(addr)?;
    // `spawn_local` needs a `LocalSet`: the tasks hold `Rc`s, so they must stay on this thread.
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async_fn::serve(listener, room::Limits::default()))
        .await
}
// ANCHOR_END: main
