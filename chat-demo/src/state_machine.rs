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

use stroll::net::TcpStream;
use stroll::task::JoinHandle;
use stroll::time::{sleep, sleep_until, Sleep};

use crate::async_fn::READ_BUFFER;
use crate::on_stroll::{self, LingeringClose};
use crate::protocol::{Frame, LineReader};
use crate::room::{ClientId, Flow};
use crate::shared::{LiveGuard, Shared, TaskOutbox};

/// Runs the server in this mode until SIGINT/SIGTERM.
pub fn serve(listener: std::net::TcpListener, limits: crate::room::Limits) -> std::io::Result<()> {
    on_stroll::serve("state-machine", listener, None, limits, HandleClient::new)
}

// ANCHOR: enum
/// `async fn handle_client(stream, shared, _live)`, by hand.
pub enum HandleClient {
    /// Called but not yet polled: only the arguments exist (the compiler calls this state
    /// `Unresumed`).
    Start {
        stream: TcpStream,
        shared: Rc<Shared>,
        /// Counts the connection as open; every state keeps it, to the end.
        live: LiveGuard,
    },
    /// `read_lines(&stream, &shared, &outbox, id).await`: the read loop, suspended in
    /// `outbox.read_unless_closed(..)`.
    Reading(Box<Reading>),
    /// `finish_writer(writer, &outbox).await`: the connection is over (or was refused);
    /// waiting for its last lines to be written.
    Flushing {
        writer: JoinHandle<()>,
        /// The `timeout` inside `finish_writer`: set if the client was cut off.
        give_up: Option<Sleep>,
        /// Kept alive until the writer is done, like `stream` in the async version.
        stream: Rc<TcpStream>,
        live: LiveGuard,
    },
    /// `LingeringClose::new(stream).await`: reading and dropping until the client's end of
    /// file (or the deadline), then closing.
    Lingering {
        closing: LingeringClose,
        live: LiveGuard,
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
    outbox: Rc<TaskOutbox>,
    id: ClientId,
    writer: JoinHandle<()>,
    live: LiveGuard,
    buf: [u8; READ_BUFFER],
    lines: LineReader,
    frames: Vec<Frame>,
    /// `timeout(left, ...)` around the read while the client has no nickname; `None` once it
    /// has one.
    login: Option<Sleep>,
}
// ANCHOR_END: reading

impl HandleClient {
    /// `handle_client(stream, shared, live)`: like calling an `async fn`, it only stores the
    /// arguments; nothing runs until the first poll.
    pub fn new(stream: TcpStream, shared: Rc<Shared>, live: LiveGuard) -> HandleClient {
        HandleClient::Start {
            stream,
            shared,
            live,
        }
    }

    // ANCHOR: start
    /// The code before the first `.await`: join the room, start the writer.
    fn start(stream: TcpStream, shared: Rc<Shared>, live: LiveGuard) -> HandleClient {
        let stream = Rc::new(stream);
        let outbox = TaskOutbox::new(shared.limits.max_queue);
        // `None`: refused (full, stopping); the room queued why, the writer says it.
        let connected = shared.room.borrow_mut().connect(outbox.clone());
        let writer = WriteOutbox::new(stream.clone(), outbox.clone());
        let writer = on_stroll::spawn_writer(&stream, writer);
        let Some(id) = connected else {
            return HandleClient::flushing(writer, &outbox, stream, live);
        };
        let login = Some(sleep(shared.limits.login_timeout));
        HandleClient::Reading(Box::new(Reading {
            lines: LineReader::new(shared.limits.max_line),
            stream,
            shared,
            outbox,
            id,
            writer,
            live,
            buf: [0; READ_BUFFER],
            frames: Vec::new(),
            login,
        }))
    }
    // ANCHOR_END: start

    /// The start of `finish_writer(writer, &outbox)`: how long it may wait.
    fn flushing(
        writer: JoinHandle<()>,
        outbox: &TaskOutbox,
        stream: Rc<TcpStream>,
        live: LiveGuard,
    ) -> HandleClient {
        HandleClient::Flushing {
            writer,
            give_up: outbox.give_up_at().map(sleep_until),
            stream,
            live,
        }
    }
}

// ANCHOR: unpin
// `HandleClient` keeps no reference into itself between polls (its fields are owned values,
// `Rc`s and a `Box`), so it is `Unpin`; this fails to compile the day that stops being true.
const _: () = {
    fn assert_unpin<T: Unpin>() {}
    let _ = assert_unpin::<HandleClient>;
};
// ANCHOR_END: unpin

// ANCHOR: poll
impl Future for HandleClient {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every field is `Unpin`, so the enum is too: no pin projection needed.
        let this = self.get_mut();
        loop {
            // Each arm runs from one suspension point to the next, then says where it stopped.
            let next = match std::mem::replace(this, HandleClient::Done) {
                HandleClient::Start {
                    stream,
                    shared,
                    live,
                } => HandleClient::start(stream, shared, live),
                HandleClient::Reading(mut reading) => {
                    if reading.poll_read_lines(cx).is_pending() {
                        *this = HandleClient::Reading(reading);
                        return Poll::Pending;
                    }
                    let Reading {
                        writer,
                        stream,
                        outbox,
                        live,
                        ..
                    } = *reading;
                    HandleClient::flushing(writer, &outbox, stream, live)
                }
                HandleClient::Flushing {
                    mut writer,
                    mut give_up,
                    stream,
                    live,
                } => {
                    let written = Pin::new(&mut writer).poll(cx).is_ready();
                    let late = match &mut give_up {
                        Some(give_up) if !written => Pin::new(give_up).poll(cx).is_ready(),
                        _ => false,
                    };
                    if !written && !late {
                        *this = HandleClient::Flushing {
                            writer,
                            give_up,
                            stream,
                            live,
                        };
                        return Poll::Pending;
                    }
                    if late {
                        writer.abort(); // cut off, and not reading: drop the pending write
                    }
                    let closing = LingeringClose::new(stream);
                    HandleClient::Lingering { closing, live }
                }
                HandleClient::Lingering { mut closing, live } => {
                    if Pin::new(&mut closing).poll(cx).is_pending() {
                        *this = HandleClient::Lingering { closing, live };
                        return Poll::Pending;
                    }
                    return Poll::Ready(()); // `live` is dropped: one connection fewer
                }
                HandleClient::Done => panic!("HandleClient polled after it completed"),
            };
            *this = next;
        }
    }
}
// ANCHOR_END: poll

// ANCHOR: poll_read_lines
impl Reading {
    /// The body of the read loop. Returns `Ready` when the client has left.
    fn poll_read_lines(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            // `if logged in { read } else { timeout(left, read) }`
            if self.shared.room.borrow().is_logged_in(self.id) {
                self.login = None;
            }
            // The deadline is checked before each read too, as `left.is_zero()` there.
            if self.login.as_ref().is_some_and(Sleep::is_elapsed) {
                self.shared.room.borrow_mut().login_timeout(self.id);
                return Poll::Ready(());
            }
            // `outbox.read_unless_closed(..)`: the room may end the connection first.
            if self.outbox.poll_closed(cx).is_ready() {
                return Poll::Ready(());
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

/// `async fn write_outbox(stream, outbox)`, by hand.
pub struct WriteOutbox {
    stream: Rc<TcpStream>,
    outbox: Rc<TaskOutbox>,
    /// Lines taken from the queue, being written.
    buf: Vec<u8>,
    /// Bytes of `buf` written so far. Invariant: `written <= buf.len()`; `buf` is empty while
    /// the writer waits for the queue (`poll_work(..).await` in the async version).
    written: usize,
}

impl WriteOutbox {
    fn new(stream: Rc<TcpStream>, outbox: Rc<TaskOutbox>) -> WriteOutbox {
        WriteOutbox {
            stream,
            outbox,
            buf: Vec::new(),
            written: 0,
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
                        // Reset.
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
