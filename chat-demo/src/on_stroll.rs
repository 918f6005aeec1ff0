//! What the two servers on stroll share beyond `shared.rs`: the outbox's read on a stroll
//! socket, the accept loop, the writer's spawn, the lingering close and the orderly shutdown.
//! They differ only in the connection handler: an `async fn` (`async_fn.rs`) or a hand-written
//! `Future` (`state_machine.rs`).

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use stroll::net::{TcpListener, TcpStream};
use stroll::time::{sleep, timeout, Sleep};

use crate::room::Limits;
use crate::server::{self, BackoffReport, LINGER, SHUTDOWN_FLUSH_LIMIT};
use crate::shared::{LiveGuard, Shared, TaskOutbox};

/// The runtime's task table, for `/tasks`.
fn task_table() -> String {
    stroll::task::dump().to_string()
}

// The outbox's runtime half: reading from a stroll socket, unless the room ends the connection.
impl TaskOutbox {
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
        let shared = Shared::new(limits, Some(task_table));
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
