//! Mode `state-machine`: each connection is a `Future` written by hand, on stroll.
//!
//! This is `async_fn.rs` with the compiler's work done by hand. `handle_client` there becomes
//! the enum [`HandleClient`] here: one variant per place the function can be suspended (each
//! `.await`), holding exactly the locals that are alive at that point. `poll` is the function
//! body cut into pieces at the awaits; a `match` on the variant says where to resume, which is
//! what the program counter said in the thread version.
//!
//! The writer task, `write_outbox` there, is [`WriteOutbox`] here.
//!
//! Both versions produce the same bytes on the wire (a test checks it); compare the two files
//! side by side.

use std::future::Future;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use stroll::net::TcpStream;
use stroll::task::JoinHandle;
use stroll::time::{sleep, Sleep};

use crate::async_fn::READ_BUFFER;
use crate::on_stroll::{self, Shared, TaskOutbox, WriterGuard};
use crate::protocol::{say, Frame, LineReader};
use crate::room::{ClientId, Flow};

/// Runs the server in this mode until SIGINT/SIGTERM.
pub fn serve(listener: std::net::TcpListener, limits: crate::room::Limits) -> std::io::Result<()> {
    on_stroll::serve("state-machine", listener, None, limits, HandleClient::new)
}

// ANCHOR: enum
/// `async fn handle_client(stream, shared)`, by hand.
pub enum HandleClient {
    /// Called but not yet polled: only the arguments exist (the compiler calls this state
    /// `Unresumed`).
    Start {
        stream: TcpStream,
        shared: Rc<Shared>,
    },
    /// `reject_full(&stream).await`: the room was full; telling the client so.
    Rejecting {
        stream: Rc<TcpStream>,
        /// Bytes of the "server full" line written so far.
        written: usize,
        /// Give up on a client that does not read (the `timeout` inside `reject_full`).
        give_up: Sleep,
    },
    /// `read_lines(&stream, &shared, id).await`: the read loop, suspended in `stream.read`.
    Reading(Box<Reading>),
    /// `writer.await`: the client left; waiting for its last lines to be written.
    Flushing {
        writer: JoinHandle<()>,
        /// Kept alive until the writer is done, like `stream` in the async version.
        stream: Rc<TcpStream>,
    },
    /// Returned (`Returned`); polling again is a bug.
    Done,
}
// ANCHOR_END: enum

// ANCHOR: reading
/// The locals of the read loop (`read_lines` in the async version), alive across its `.await`.
///
/// Boxed so that the enum's other variants stay small; the compiler does not box, so its
/// future is as big as this struct (see `chat-demo sizes`).
pub struct Reading {
    stream: Rc<TcpStream>,
    shared: Rc<Shared>,
    id: ClientId,
    writer: JoinHandle<()>,
    buf: [u8; READ_BUFFER],
    lines: LineReader,
    frames: Vec<Frame>,
    /// `timeout(left, ...)` around the read while the client has no nickname; `None` once it
    /// has one.
    login: Option<Sleep>,
}
// ANCHOR_END: reading

impl HandleClient {
    /// `handle_client(stream, shared)`: like calling an `async fn`, it only stores the
    /// arguments; nothing runs until the first poll.
    pub fn new(stream: TcpStream, shared: Rc<Shared>) -> HandleClient {
        HandleClient::Start { stream, shared }
    }

    /// The code before the first `.await`: join the room, start the writer.
    fn start(stream: TcpStream, shared: Rc<Shared>) -> HandleClient {
        let stream = Rc::new(stream);
        let outbox = TaskOutbox::new(stream.clone(), shared.limits.max_queue);
        let connected = shared.room.borrow_mut().connect(outbox.clone());
        let Some(id) = connected else {
            return HandleClient::Rejecting {
                stream,
                written: 0,
                give_up: sleep(Duration::from_secs(1)),
            };
        };
        let writer = WriteOutbox::new(stream.clone(), outbox, WriterGuard::new(&shared));
        let writer = on_stroll::spawn_writer(&stream, writer);
        let login = Some(sleep(shared.limits.login_timeout));
        HandleClient::Reading(Box::new(Reading {
            lines: LineReader::new(shared.limits.max_line),
            stream,
            shared,
            id,
            writer,
            buf: [0; READ_BUFFER],
            frames: Vec::new(),
            login,
        }))
    }
}

// ANCHOR: poll
impl Future for HandleClient {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every field is `Unpin`, so the enum is too: no pin projection needed.
        let this = self.get_mut();
        loop {
            // Each arm runs from one suspension point to the next, then says where it stopped.
            let next = match std::mem::replace(this, HandleClient::Done) {
                HandleClient::Start { stream, shared } => HandleClient::start(stream, shared),
                HandleClient::Rejecting {
                    stream,
                    mut written,
                    mut give_up,
                } => {
                    if poll_reject(&stream, &mut written, &mut give_up, cx).is_pending() {
                        *this = HandleClient::Rejecting {
                            stream,
                            written,
                            give_up,
                        };
                        return Poll::Pending;
                    }
                    let _ = stream.shutdown(Shutdown::Write);
                    return Poll::Ready(());
                }
                HandleClient::Reading(mut reading) => {
                    if reading.poll_read_lines(cx).is_pending() {
                        *this = HandleClient::Reading(reading);
                        return Poll::Pending;
                    }
                    let Reading { writer, stream, .. } = *reading;
                    HandleClient::Flushing { writer, stream }
                }
                HandleClient::Flushing { mut writer, stream } => {
                    if Pin::new(&mut writer).poll(cx).is_pending() {
                        *this = HandleClient::Flushing { writer, stream };
                        return Poll::Pending;
                    }
                    return Poll::Ready(());
                }
                HandleClient::Done => panic!("HandleClient polled after it completed"),
            };
            *this = next;
        }
    }
}
// ANCHOR_END: poll

/// `reject_full`: write the "server full" line, giving up after a second.
fn poll_reject(
    stream: &TcpStream,
    written: &mut usize,
    give_up: &mut Sleep,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let line = say::server_full();
    while *written < line.len() {
        match stream.poll_write(cx, &line.as_bytes()[*written..]) {
            Poll::Ready(Ok(n)) if n > 0 => *written += n,
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => return Pin::new(give_up).poll(cx),
        }
    }
    Poll::Ready(())
}

// ANCHOR: poll_read_lines
impl Reading {
    /// The body of the read loop. Returns `Ready` when the client has left.
    fn poll_read_lines(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            // `if logged in { read } else { timeout(left, read) }`
            if self.shared.room.borrow().is_logged_in(self.id) {
                self.login = None;
            }
            let read = self.stream.poll_read(cx, &mut self.buf);
            let read = match (read, &mut self.login) {
                (Poll::Ready(read), _) => read,
                (Poll::Pending, None) => return Poll::Pending,
                (Poll::Pending, Some(login)) => {
                    ready!(Pin::new(login).poll(cx));
                    self.shared.room.borrow_mut().login_timeout(self.id);
                    return Poll::Ready(());
                }
            };
            let n = match read {
                Ok(0) | Err(_) => {
                    self.shared.room.borrow_mut().disconnect(self.id);
                    return Poll::Ready(());
                }
                Ok(n) => n,
            };
            self.lines.feed(&self.buf[..n], &mut self.frames);
            for frame in self.frames.drain(..) {
                let mut room = self.shared.room.borrow_mut();
                let flow = match frame {
                    Frame::Line(line) => room.handle_line(self.id, &line),
                    Frame::TooLong => {
                        room.line_too_long(self.id);
                        Flow::Continue
                    }
                };
                drop(room);
                if flow == Flow::Quit {
                    return Poll::Ready(());
                }
                // `/block`: sleeps on the loop's thread, so every task waits.
                flow.block_if_asked();
            }
        }
    }
}
// ANCHOR_END: poll_read_lines

/// `async fn write_outbox(stream, outbox, _live)`, by hand.
pub struct WriteOutbox {
    stream: Rc<TcpStream>,
    outbox: Rc<TaskOutbox>,
    /// Lines taken from the queue, being written.
    buf: Vec<u8>,
    /// Bytes of `buf` written so far. Invariant: `written <= buf.len()`; `buf` is empty while
    /// the writer waits for the queue (`poll_work(..).await` in the async version).
    written: usize,
    _live: WriterGuard,
}

impl WriteOutbox {
    fn new(stream: Rc<TcpStream>, outbox: Rc<TaskOutbox>, live: WriterGuard) -> WriteOutbox {
        WriteOutbox {
            stream,
            outbox,
            buf: Vec::new(),
            written: 0,
            _live: live,
        }
    }
}

impl Future for WriteOutbox {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if this.buf.is_empty() {
                // `poll_fn(|cx| outbox.poll_work(cx)).await`
                ready!(this.outbox.poll_work(cx));
                if this.outbox.finished() {
                    break;
                }
                this.outbox.take_into(&mut this.buf);
                this.written = 0;
            }
            // `stream.write_all(&buf).await`
            while this.written < this.buf.len() {
                match ready!(this.stream.poll_write(cx, &this.buf[this.written..])) {
                    Ok(n) if n > 0 => this.written += n,
                    _ => {
                        // Reset, or cut off meanwhile.
                        let _ = this.stream.shutdown(Shutdown::Write);
                        return Poll::Ready(());
                    }
                }
            }
            this.outbox.sent(this.buf.len());
            this.buf.clear();
        }
        let _ = this.stream.shutdown(Shutdown::Write);
        Poll::Ready(())
    }
}
