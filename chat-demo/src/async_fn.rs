//! Mode `async`: each connection is an `async fn` on stroll. The reference the others are
//! compared to.
//!
//! Read `handle_client` as you would the thread version: it reads, it loops, it keeps its
//! state in local variables. The difference is invisible in the text: at each `.await` the
//! function can stop, and the compiler has turned it into an enum whose variants are its
//! suspension points and whose fields are the locals alive there (`state_machine.rs` writes
//! that enum by hand). `chat-demo sizes` prints how big it is.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::Instant;

use stroll::net::TcpStream;
use stroll::time::timeout;

use crate::on_stroll::{self, reject_full, Shared, TaskOutbox, WriterGuard};
use crate::protocol::{Frame, LineReader};
use crate::room::{ClientId, Flow};

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
/// Serves one connection, from greeting to goodbye.
pub async fn handle_client(stream: TcpStream, shared: Rc<Shared>) {
    let stream = Rc::new(stream);
    let outbox = TaskOutbox::new(stream.clone(), shared.limits.max_queue);
    let connected = shared.room.borrow_mut().connect(outbox.clone());
    let Some(id) = connected else {
        reject_full(&stream).await;
        return;
    };
    // The writer is a task of its own, so a slow client never holds up this reader.
    let writer = write_outbox(stream.clone(), outbox, WriterGuard::new(&shared));
    let writer = on_stroll::spawn_writer(&stream, writer);
    read_lines(&stream, &shared, id).await;
    // Wait until everything queued for the client has been written.
    let _ = writer.await;
}
// ANCHOR_END: handle_client

// ANCHOR: read_lines
/// Reads lines until the client leaves, handing each to the room.
async fn read_lines(stream: &TcpStream, shared: &Shared, id: ClientId) {
    let mut buf = [0u8; READ_BUFFER];
    let mut lines = LineReader::new(shared.limits.max_line);
    let mut frames = Vec::new();
    let login_deadline = Instant::now() + shared.limits.login_timeout;
    loop {
        let read = if shared.room.borrow().is_logged_in(id) {
            stream.read(&mut buf).await
        } else {
            let left = login_deadline.saturating_duration_since(Instant::now());
            match timeout(left, stream.read(&mut buf)).await {
                Ok(read) => read,
                Err(_elapsed) => {
                    shared.room.borrow_mut().login_timeout(id);
                    return;
                }
            }
        };
        let n = match read {
            Ok(0) | Err(_) => {
                // End of file or reset: the client is gone.
                shared.room.borrow_mut().disconnect(id);
                return;
            }
            Ok(n) => n,
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
/// Writes whatever the room queues for the client, many lines per write, until the
/// connection closes.
async fn write_outbox(stream: Rc<TcpStream>, outbox: Rc<TaskOutbox>, _live: WriterGuard) {
    let mut buf = Vec::new();
    loop {
        std::future::poll_fn(|cx| outbox.poll_work(cx)).await;
        if outbox.finished() {
            break;
        }
        outbox.take_into(&mut buf);
        if stream.write_all(&buf).await.is_err() {
            break; // Reset, or cut off meanwhile.
        }
        outbox.sent(buf.len());
        buf.clear();
    }
    // Everything was written (or the client is gone): send end of file.
    let _ = stream.shutdown(Shutdown::Write);
}
// ANCHOR_END: write_outbox

/// The size of a `write_outbox` future, for `chat-demo sizes`. The future is created and
/// dropped without being polled.
pub fn writer_future_size(stream: Rc<TcpStream>, shared: &Rc<Shared>) -> usize {
    let outbox = TaskOutbox::new(stream.clone(), shared.limits.max_queue);
    let future = write_outbox(stream, outbox, WriterGuard::new(shared));
    std::mem::size_of_val(&future)
}
