//! What the two servers on stroll share: the outbox a writer task waits on, the accept loop and
//! the orderly shutdown. They differ only in the connection handler: an `async fn`
//! (`async_fn.rs`) or a hand-written `Future` (`state_machine.rs`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use stroll::net::{TcpListener, TcpStream};
use stroll::time::{sleep, timeout};

use crate::protocol::say;
use crate::room::{Limits, Line, OutQueue, Outbox, Overflow, Room};
use crate::server::{self, BackoffReport, SHUTDOWN_FLUSH_LIMIT};

/// What every connection task of one server shares.
pub struct Shared {
    pub room: RefCell<Room<Rc<TaskOutbox>>>,
    pub limits: Limits,
    /// Writer tasks still running. Shutdown waits for this to reach zero.
    writers_live: Cell<usize>,
}

impl Shared {
    pub fn new(limits: Limits) -> Rc<Shared> {
        Rc::new(Shared {
            room: RefCell::new(Room::new(limits.clone()).with_task_table(task_table)),
            limits,
            writers_live: Cell::new(0),
        })
    }
}

/// The runtime's task table, for `/tasks`.
fn task_table() -> String {
    stroll::task::dump().to_string()
}

/// Counts a writer task as live while it exists.
pub struct WriterGuard(Rc<Shared>);

impl WriterGuard {
    pub fn new(shared: &Rc<Shared>) -> WriterGuard {
        shared.writers_live.set(shared.writers_live.get() + 1);
        WriterGuard(shared.clone())
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.0.writers_live.set(self.0.writers_live.get() - 1);
    }
}

/// A client's outgoing queue on stroll: the queue, plus the waker of the writer task that
/// sleeps until the queue has something.
pub struct TaskOutbox {
    queue: RefCell<OutQueue>,
    /// The writer task's waker while it waits for lines.
    writer: Cell<Option<Waker>>,
    /// The connection, so that cutting a client off can close it even while its writer is
    /// stuck in a write the client will never read.
    stream: Rc<TcpStream>,
}

impl TaskOutbox {
    pub fn new(stream: Rc<TcpStream>, max_queue: usize) -> Rc<TaskOutbox> {
        Rc::new(TaskOutbox {
            queue: RefCell::new(OutQueue::new(max_queue)),
            writer: Cell::new(None),
            stream,
        })
    }

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

    /// Moves the queued lines into `buf` (see [`OutQueue::take_into`]).
    pub fn take_into(&self, buf: &mut Vec<u8>) {
        self.queue.borrow_mut().take_into(buf);
    }

    /// `n` bytes were written.
    pub fn sent(&self, n: usize) {
        self.queue.borrow_mut().sent(n);
    }

    /// Should the writer stop: cut off, or closing with nothing left to write?
    pub fn finished(&self) -> bool {
        let queue = self.queue.borrow();
        queue.is_cut_off() || (queue.is_closing() && !queue.has_lines())
    }

    fn wake_writer(&self) {
        if let Some(waker) = self.writer.take() {
            waker.wake();
        }
    }
}

impl Outbox for Rc<TaskOutbox> {
    fn push(&self, line: &Line) -> Result<(), Overflow> {
        self.queue.borrow_mut().push(line)?;
        self.wake_writer();
        Ok(())
    }

    fn close(&self) {
        self.queue.borrow_mut().close();
        self.wake_writer();
    }

    fn cut_off(&self) {
        self.queue.borrow_mut().cut_off();
        // Wakes both of the connection's tasks: the reader sees end of file, a writer stuck
        // in a write gets an error.
        let _ = self.stream.shutdown(Shutdown::Both);
        self.wake_writer();
    }
}

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
    H: Fn(TcpStream, Rc<Shared>) -> F + 'static,
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
        acceptor.abort();
        if let Some(web_acceptor) = web_acceptor {
            web_acceptor.abort();
        }
        shared.room.borrow_mut().shutdown();
        let drained = timeout(SHUTDOWN_FLUSH_LIMIT, async {
            while shared.writers_live.get() > 0 {
                sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        if drained.await.is_err() {
            eprintln!("chat-demo: some clients did not read their last lines; closing anyway");
        }
        Ok(())
    })
}

/// Accepts connections forever, one task each; backs off after a persistent error.
async fn accept_loop<H, F>(listener: TcpListener, shared: Rc<Shared>, handler: H)
where
    H: Fn(TcpStream, Rc<Shared>) -> F,
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
                let task = handler(stream, shared.clone());
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

/// Tells a connection the room is full, best effort, and closes it.
pub async fn reject_full(stream: &TcpStream) {
    let _ = timeout(
        std::time::Duration::from_secs(1),
        stream.write_all(say::server_full().as_bytes()),
    )
    .await;
    let _ = stream.shutdown(Shutdown::Write);
}
