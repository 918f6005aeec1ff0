//! What the two servers on stroll share: the outbox a writer task waits on, the accept loop,
//! the lingering close and the orderly shutdown. They differ only in the connection handler: an
//! `async fn` (`async_fn.rs`) or a hand-written `Future` (`state_machine.rs`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use stroll::net::{TcpListener, TcpStream};
use stroll::time::{sleep, timeout, Sleep};

use crate::room::{Limits, Line, OutQueue, Outbox, Overflow, Room};
use crate::server::{self, BackoffReport, LINGER, SHUTDOWN_FLUSH_LIMIT};

/// What every connection task of one server shares.
pub struct Shared {
    pub room: RefCell<Room<Rc<TaskOutbox>>>,
    pub limits: Limits,
    /// Connections still open. Shutdown waits for this to reach zero.
    live: Cell<usize>,
    /// The waker of the shutdown, waiting for the last connection to close.
    none_left: Cell<Option<Waker>>,
}

impl Shared {
    pub fn new(limits: Limits) -> Rc<Shared> {
        Rc::new(Shared {
            room: RefCell::new(Room::new(limits.clone()).with_task_table(task_table)),
            limits,
            live: Cell::new(0),
            none_left: Cell::new(None),
        })
    }

    /// Ready once no connection is left open.
    fn poll_none_left(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.live.get() == 0 {
            return Poll::Ready(());
        }
        self.none_left.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

/// The runtime's task table, for `/tasks`.
fn task_table() -> String {
    stroll::task::dump().to_string()
}

/// Counts a connection as open while it exists; the last one to go wakes the shutdown. The
/// accept loop makes one per connection and hands it to the connection's handler.
pub struct LiveGuard(Rc<Shared>);

impl LiveGuard {
    pub fn new(shared: &Rc<Shared>) -> LiveGuard {
        shared.live.set(shared.live.get() + 1);
        LiveGuard(shared.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let live = self.0.live.get() - 1;
        self.0.live.set(live);
        if live == 0 {
            if let Some(waker) = self.0.none_left.take() {
                waker.wake();
            }
        }
    }
}

/// A client's outgoing queue on stroll: the queue, plus the wakers of the writer task that
/// sleeps until the queue has something, and of the reader, which must stop when the room
/// ends the connection.
pub struct TaskOutbox {
    queue: RefCell<OutQueue>,
    /// The writer task's waker while it waits for lines.
    writer: Cell<Option<Waker>>,
    /// The reader's waker while it waits for the client.
    reader: Cell<Option<Waker>>,
}

impl TaskOutbox {
    pub fn new(max_queue: usize) -> Rc<TaskOutbox> {
        Rc::new(TaskOutbox {
            queue: RefCell::new(OutQueue::new(max_queue)),
            writer: Cell::new(None),
            reader: Cell::new(None),
        })
    }

    // ANCHOR: poll_work
    /// Ready when there are lines to write or the connection is closing.
    pub fn poll_work(&self, cx: &mut Context<'_>) -> Poll<()> {
        let queue = self.queue.borrow();
        if queue.has_lines() || queue.is_closing() {
            Poll::Ready(())
        } else {
            self.writer.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }
    // ANCHOR_END: poll_work

    /// Ready once the room has ended the connection (the client left, was cut off, or the
    /// server is stopping): the reader stops reading for the room then.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.queue.borrow().is_closing() {
            Poll::Ready(())
        } else {
            self.reader.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }

    /// Reads from the client into `buf`, unless the room ends the connection first (`None`).
    pub async fn read_unless_closed(
        &self,
        stream: &TcpStream,
        buf: &mut [u8],
    ) -> Option<io::Result<usize>> {
        std::future::poll_fn(|cx| {
            if self.poll_closed(cx).is_ready() {
                return Poll::Ready(None);
            }
            stream.poll_read(cx, buf).map(Some)
        })
        .await
    }

    /// Moves the queued lines into `buf` (see [`OutQueue::take_into`]).
    pub fn take_into(&self, buf: &mut Vec<u8>) {
        self.queue.borrow_mut().take_into(buf);
    }

    /// `n` bytes were written.
    pub fn sent(&self, n: usize) {
        self.queue.borrow_mut().sent(n);
    }

    /// Should the writer stop: closing, with everything written?
    pub fn finished(&self) -> bool {
        self.queue.borrow().is_finished()
    }

    /// For a client cut off for reading too slowly, when to stop waiting for its writer.
    pub fn give_up_at(&self) -> Option<Instant> {
        self.queue.borrow().give_up_at()
    }

    fn wake(&self, slot: &Cell<Option<Waker>>) {
        if let Some(waker) = slot.take() {
            waker.wake();
        }
    }
}

// ANCHOR: outbox_push
impl Outbox for Rc<TaskOutbox> {
    fn push(&self, line: &Line) -> Result<(), Overflow> {
        self.queue.borrow_mut().push(line)?;
        self.wake(&self.writer);
        Ok(())
    }
    // ANCHOR_END: outbox_push

    fn close(&self) {
        self.queue.borrow_mut().close();
        self.wake(&self.writer);
        self.wake(&self.reader);
    }

    fn cut_off(&self, farewell: &Line) {
        self.queue.borrow_mut().cut_off(farewell);
        self.wake(&self.writer);
        self.wake(&self.reader);
    }
}

/// Waits for a connection's writer to finish, once the reader is done: a client cut off for
/// reading too slowly only until its grace is over; then its writer is cancelled, pending
/// write and all. (Whether it was cut off is settled by then: only clients still in the room
/// can be.)
pub async fn finish_writer(mut writer: stroll::JoinHandle<()>, outbox: &TaskOutbox) {
    let Some(give_up_at) = outbox.give_up_at() else {
        let _ = writer.await;
        return;
    };
    let grace = give_up_at.saturating_duration_since(Instant::now());
    if timeout(grace, &mut writer).await.is_err() {
        writer.abort();
    }
}

// ANCHOR: lingering_close
/// Closes a connection without losing the last line (see [`LINGER`]): shuts down the write
/// side (the client reads end of file after the last line), then reads and drops what the
/// client still sends until its end of file or the deadline. Dropping the stream afterwards
/// closes it.
///
/// Written by hand, not as an `async fn`, so that the state machine can keep it in one of its
/// variants; `async_fn.rs` simply awaits it.
pub struct LingeringClose {
    stream: Rc<TcpStream>,
    deadline: Sleep,
}

impl LingeringClose {
    pub fn new(stream: Rc<TcpStream>) -> LingeringClose {
        let _ = stream.shutdown(Shutdown::Write);
        LingeringClose {
            stream,
            deadline: sleep(LINGER),
        }
    }
}

impl Future for LingeringClose {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Not kept across polls: what it holds is dropped anyway.
        let mut scratch = [0u8; 1024];
        loop {
            match this.stream.poll_read(cx, &mut scratch) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(()), // end of file, or reset
                Poll::Ready(Ok(_)) => {}
                // Nothing more for now (or the I/O budget is spent): until the deadline.
                Poll::Pending => return Pin::new(&mut this.deadline).poll(cx),
            }
        }
    }
}
// ANCHOR_END: lingering_close

/// Runs a server on stroll: accepts connections, runs `handler` for each one as a task, and
/// on SIGINT/SIGTERM says goodbye to everyone and returns.
///
/// With `web`, the same room is also served to browsers over HTTP and WebSocket (`web.rs`).
pub fn serve<H, F>(
    mode: &str,
    listener: std::net::TcpListener,
    web: Option<std::net::TcpListener>,
    limits: Limits,
    handler: H,
) -> io::Result<()>
where
    H: Fn(TcpStream, Rc<Shared>, LiveGuard) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    let signals = server::register_shutdown_signals()?;
    stroll::block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        server::announce(mode, listener.local_addr()?);
        let shared = Shared::new(limits);
        let acceptor = stroll::task::Builder::new()
            .name("accept loop")
            .spawn(accept_loop(listener, shared.clone(), handler));
        let web_acceptor = match web {
            Some(web) => {
                let web = TcpListener::from_std(web)?;
                server::announce_web(web.local_addr()?);
                let web_loop = accept_loop(web, shared.clone(), crate::web::handle_http);
                Some(
                    stroll::task::Builder::new()
                        .name("web accept loop")
                        .spawn(web_loop),
                )
            }
            None => None,
        };
        // A pool thread waits for the signal; its end wakes this future.
        stroll::task::spawn_blocking(move || server::wait_for_shutdown_signal(signals))
            .await
            .map_err(io::Error::from)?;
        // Close the door first: dropping the listeners makes the kernel refuse connections.
        acceptor.abort();
        if let Some(web_acceptor) = web_acceptor {
            web_acceptor.abort();
        }
        shared.room.borrow_mut().shutdown();
        let none_left = std::future::poll_fn(|cx| shared.poll_none_left(cx));
        if timeout(SHUTDOWN_FLUSH_LIMIT, none_left).await.is_err() {
            eprintln!("chat-demo: some clients did not read their last lines; closing anyway");
        }
        Ok(())
    })
}

/// Accepts connections until aborted, one task each; backs off after a persistent error.
async fn accept_loop<H, F>(listener: TcpListener, shared: Rc<Shared>, handler: H)
where
    H: Fn(TcpStream, Rc<Shared>, LiveGuard) -> F,
    F: Future<Output = ()> + 'static,
{
    let mut report = BackoffReport::default();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                report.accepted();
                // Chat lines are small and the writer already batches them: send at once
                // rather than wait for the previous segment's acknowledgement (Nagle).
                let _ = stream.set_nodelay(true);
                let name = format!("client {peer}");
                // Counted from now, not from the task's first poll: a connection accepted
                // just before a shutdown is waited for, and told.
                let live = LiveGuard::new(&shared);
                let task = handler(stream, shared.clone(), live);
                drop(stroll::task::Builder::new().name(&name).spawn(task));
            }
            Err(err) => {
                if let Some(wait) = report.failed(&err) {
                    sleep(wait).await;
                }
            }
        }
    }
}

/// Spawns a connection's writer task, named after its peer for `/tasks` and traces.
pub fn spawn_writer(
    stream: &TcpStream,
    writer: impl Future<Output = ()> + 'static,
) -> stroll::JoinHandle<()> {
    let name = match stream.peer_addr() {
        Ok(peer) => format!("writer {peer}"),
        Err(_) => "writer".to_string(),
    };
    stroll::task::Builder::new().name(&name).spawn(writer)
}
