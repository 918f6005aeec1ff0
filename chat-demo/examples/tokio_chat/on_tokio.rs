//! What `on_stroll.rs` gives the stroll servers, on tokio: the outbox's read on a tokio
//! socket, the accept loop, the lingering close and the orderly shutdown.
//!
//! `Shared`, `LiveGuard` and the queue half of `TaskOutbox` are not here: they use only
//! `std::task::Waker`, which every runtime hands out, so the port compiles stroll's very file,
//! `chat-demo/src/shared.rs`. What differs is everything that touches a socket, a timer or a
//! task.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use crate::room::Limits;
use crate::server::{self, BackoffReport, LINGER, SHUTDOWN_FLUSH_LIMIT};
use crate::shared::{LiveGuard, Shared, TaskOutbox};

// The outbox's runtime half: reading from a tokio socket, unless the room ends the connection.
impl TaskOutbox {
    // ANCHOR: read_unless_closed
    /// Reads from the client into `buf`, unless the room ends the connection first (`None`).
    ///
    /// stroll's version calls `poll_read` inside one `poll_fn`; here `select!` polls both
    /// futures, the room's first (`biased`), and drops the loser. Dropping tokio's `read`
    /// future loses no data: it is cancel-safe.
    pub async fn read_unless_closed(
        &self,
        stream: &mut OwnedReadHalf,
        buf: &mut [u8],
    ) -> Option<io::Result<usize>> {
        tokio::select! {
            biased;
            () = std::future::poll_fn(|cx| self.poll_closed(cx)) => None,
            read = stream.read(buf) => Some(read),
        }
    }
    // ANCHOR_END: read_unless_closed
}

/// Waits for a connection's writer to finish, once the reader is done; a client cut off for
/// reading too slowly only until its grace is over, then its writer is aborted.
pub async fn finish_writer(mut writer: JoinHandle<()>, outbox: &TaskOutbox) {
    let Some(give_up_at) = outbox.give_up_at() else {
        let _ = writer.await;
        return;
    };
    let grace = give_up_at.saturating_duration_since(Instant::now());
    if timeout(grace, &mut writer).await.is_err() {
        writer.abort();
    }
}

// ANCHOR: linger
/// Closes a connection without losing the last line (see [`LINGER`]). The write half is gone
/// by now: the writer shut it down, or dropping it did (an `OwnedWriteHalf` shuts down the
/// write side when dropped). Read and drop what the client still sends until its end of file
/// or the deadline; dropping the read half then closes the socket.
pub async fn linger(mut reader: OwnedReadHalf) {
    let mut scratch = [0u8; 1024];
    let drain = async { while let Ok(1..) = reader.read(&mut scratch).await {} };
    let _ = timeout(LINGER, drain).await;
}
// ANCHOR_END: linger

// ANCHOR: serve
/// Runs a server on tokio: accepts connections, runs `handler` for each one as a local task,
/// and on SIGINT/SIGTERM says goodbye to everyone and returns. Must run inside a `LocalSet`.
pub async fn serve<H, F>(
    mode: &str,
    listener: std::net::TcpListener,
    limits: Limits,
    handler: H,
) -> io::Result<()>
where
    H: Fn(TcpStream, Rc<Shared>, LiveGuard) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    let signals = server::register_shutdown_signals()?;
    // tokio's `from_std` expects a socket already in non-blocking mode.
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    server::announce(mode, listener.local_addr()?);
    // No task table: tokio keeps none to show (`/tasks` says so).
    let shared = Shared::new(limits, None);
    let acceptor = tokio::task::spawn_local(accept_loop(listener, shared.clone(), handler));
    // A pool thread waits for the signal; its end wakes this future.
    tokio::task::spawn_blocking(move || server::wait_for_shutdown_signal(signals)).await?;
    acceptor.abort();
    shared.room.borrow_mut().shutdown();
    let none_left = std::future::poll_fn(|cx| shared.poll_none_left(cx));
    if timeout(SHUTDOWN_FLUSH_LIMIT, none_left).await.is_err() {
        eprintln!("chat-demo: some clients did not read their last lines; closing anyway");
    }
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: accept_loop
/// Accepts connections until aborted, one local task each; backs off after a persistent error.
async fn accept_loop<H, F>(listener: TcpListener, shared: Rc<Shared>, handler: H)
where
    H: Fn(TcpStream, Rc<Shared>, LiveGuard) -> F,
    F: Future<Output = ()> + 'static,
{
    let mut report = BackoffReport::default();
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                report.accepted();
                let _ = stream.set_nodelay(true);
                let live = LiveGuard::new(&shared);
                let task = handler(stream, shared.clone(), live);
                // The handle is dropped: the task runs on, detached.
                drop(tokio::task::spawn_local(task));
            }
            Err(err) => {
                if let Some(wait) = report.failed(&err) {
                    sleep(wait).await;
                }
            }
        }
    }
}
// ANCHOR_END: accept_loop
