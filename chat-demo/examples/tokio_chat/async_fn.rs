//! Mode `async`, ported to tokio: each connection is an `async fn` on tokio's current-thread
//! runtime. Compare it with `chat-demo/src/async_fn.rs`, line by line (`diff -u`).
//!
//! Read `handle_client` as you would the stroll version: it reads, it loops, it keeps its
//! state in local variables. What changed is only what the runtime calls things: tokio's
//! reads and writes take `&mut self`, so the socket is split into a read half (kept here) and
//! a write half (moved into the writer task), and tasks that hold `Rc`s are spawned with
//! `spawn_local` on the `LocalSet` that `main.rs` runs.

use std::rc::Rc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::on_tokio::{self, finish_writer, linger};
use crate::protocol::{Frame, LineReader};
use crate::room::{ClientId, Flow};
use crate::shared::{LiveGuard, Shared, TaskOutbox};

/// How many bytes one read may take from the socket.
pub const READ_BUFFER: usize = 4096;

/// Runs the server in this mode until SIGINT/SIGTERM (no web client in this port).
pub async fn serve(
    listener: std::net::TcpListener,
    limits: crate::room::Limits,
) -> std::io::Result<()> {
    on_tokio::serve("tokio", listener, limits, handle_client).await
}

// ANCHOR: handle_client
/// Serves one connection, from greeting to goodbye; `_live` counts it as open until then.
pub async fn handle_client(stream: TcpStream, shared: Rc<Shared>, _live: LiveGuard) {
    let (mut reader, writer) = stream.into_split();
    let outbox = TaskOutbox::new(shared.limits.max_queue);
    // `None`: refused (full, stopping); the room queued why, the writer says it.
    let connected = shared.room.borrow_mut().connect(outbox.clone());
    // The writer is a task of its own, so a slow client never holds up this reader.
    let writer = write_outbox(writer, outbox.clone());
    let writer = tokio::task::spawn_local(writer);
    if let Some(id) = connected {
        read_lines(&mut reader, &shared, &outbox, id).await;
    }
    // Wait until the last line has been written, then close without losing it.
    finish_writer(writer, &outbox).await;
    linger(reader).await;
}
// ANCHOR_END: handle_client

// ANCHOR: read_lines
/// Reads lines until the client leaves or the room ends the connection, handing each line to
/// the room.
async fn read_lines(
    stream: &mut OwnedReadHalf,
    shared: &Shared,
    outbox: &TaskOutbox,
    id: ClientId,
) {
    let mut buf = [0u8; READ_BUFFER];
    let mut lines = LineReader::new(shared.limits.max_line);
    let mut frames = Vec::new();
    let login_deadline = Instant::now() + shared.limits.login_timeout;
    loop {
        let read = outbox.read_unless_closed(stream, &mut buf);
        let read = if shared.room.borrow().is_logged_in(id) {
            read.await
        } else {
            // Checked before each read, not only by `timeout`: a client that keeps sending
            // (empty lines...) would never let the read time out.
            let left = login_deadline.saturating_duration_since(Instant::now());
            match timeout(left, read).await {
                Ok(read) if !left.is_zero() => read,
                _elapsed => {
                    shared.room.borrow_mut().login_timeout(id);
                    return;
                }
            }
        };
        let n = match read {
            None => return, // The room ended the connection (cut off, shutdown).
            Some(Ok(0) | Err(_)) => {
                // End of file or reset: the client is gone.
                shared.room.borrow_mut().disconnect(id);
                return;
            }
            Some(Ok(n)) => n,
        };
        lines.feed(&buf[..n], &mut frames);
        for frame in frames.drain(..) {
            let flow = match frame {
                Frame::Line(line) => shared.room.borrow_mut().handle_line(id, &line),
                Frame::TooLong => {
                    shared.room.borrow_mut().line_too_long(id);
                    Flow::Continue
                }
            };
            if flow == Flow::Quit {
                return;
            }
            // `/block`: sleeps on the loop's thread, so every task waits.
            flow.block_if_asked();
        }
    }
}
// ANCHOR_END: read_lines

// ANCHOR: write_outbox
/// Writes whatever the room queues for the client, many lines per write, until the room
/// closes the queue and everything is written.
async fn write_outbox(mut stream: OwnedWriteHalf, outbox: Rc<TaskOutbox>) {
    let mut buf = Vec::new();
    loop {
        std::future::poll_fn(|cx| outbox.poll_work(cx)).await;
        if outbox.finished() {
            break;
        }
        outbox.take_into(&mut buf);
        if stream.write_all(&buf).await.is_err() {
            break; // Reset.
        }
        outbox.sent(buf.len());
        buf.clear();
    }
    // Everything was written (or the client is gone): send end of file.
    let _ = stream.shutdown().await;
}
// ANCHOR_END: write_outbox
