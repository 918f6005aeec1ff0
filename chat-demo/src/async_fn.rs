//! Mode `async`: each connection is an `async fn` on stroll. The reference the others are
//! compared to.
//!
//! Read `handle_client` as you would the thread version: it reads, it loops, it keeps its
//! state in local variables. The difference is invisible in the text: at each `.await` the
//! function can stop, and the compiler has turned it into an enum whose variants are its
//! suspension points and whose fields are the locals alive there (`state_machine.rs` writes
//! that enum by hand). `chat-demo sizes` prints how big it is.

use std::rc::Rc;
use std::time::Instant;

use stroll::net::TcpStream;
use stroll::time::timeout;

use crate::on_stroll::{self, finish_writer, LingeringClose};
use crate::protocol::{Frame, LineReader};
use crate::room::{ClientId, Flow};
use crate::shared::{LiveGuard, Shared, TaskOutbox};

/// How many bytes one read may take from the socket.
pub const READ_BUFFER: usize = 4096;

/// Runs the server in this mode until SIGINT/SIGTERM; with `web`, browsers can join too.
pub fn serve(
    listener: std::net::TcpListener,
    web: Option<std::net::TcpListener>,
    limits: crate::room::Limits,
) -> std::io::Result<()> {
    on_stroll::serve("async", listener, web, limits, handle_client)
}

// ANCHOR: handle_client
/// Serves one connection, from greeting to goodbye; `_live` counts it as open until then.
pub async fn handle_client(stream: TcpStream, shared: Rc<Shared>, _live: LiveGuard) {
    let stream = Rc::new(stream);
    let outbox = TaskOutbox::new(shared.limits.max_queue);
    // `None`: refused (full, stopping); the room queued why, the writer says it.
    let connected = shared.room.borrow_mut().connect(outbox.clone());
    // The writer is a task of its own, so a slow client never holds up this reader.
    let writer = write_outbox(stream.clone(), outbox.clone());
    let writer = on_stroll::spawn_writer(&stream, writer);
    if let Some(id) = connected {
        read_lines(&stream, &shared, &outbox, id).await;
    }
    // Wait until the last line has been written, then close without losing it.
    finish_writer(writer, &outbox).await;
    LingeringClose::new(stream).await;
}
// ANCHOR_END: handle_client

// ANCHOR: read_lines
/// Reads lines until the client leaves or the room ends the connection, handing each line to
/// the room.
async fn read_lines(stream: &TcpStream, shared: &Shared, outbox: &TaskOutbox, id: ClientId) {
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
            // `/block`: sleeps on the loop's thread, so every task waits. Debug mode reports it.
            flow.block_if_asked();
        }
    }
}
// ANCHOR_END: read_lines

// ANCHOR: write_outbox
/// Writes whatever the room queues for the client, many lines per write, until the room
/// closes the queue and everything is written.
async fn write_outbox(stream: Rc<TcpStream>, outbox: Rc<TaskOutbox>) {
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
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
// ANCHOR_END: write_outbox

/// The size of a `write_outbox` future, for `chat-demo sizes`. The future is created and
/// dropped without being polled.
pub fn writer_future_size(stream: Rc<TcpStream>, shared: &Rc<Shared>) -> usize {
    let outbox = TaskOutbox::new(shared.limits.max_queue);
    let future = write_outbox(stream, outbox);
    std::mem::size_of_val(&future)
}
