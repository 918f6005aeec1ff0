//! What every server mode needs besides the room: a listening socket, the shutdown signal, and
//! the rule for running out of file descriptors.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// How long to stop accepting after `accept` fails for lack of file descriptors (asyncio and
/// hyper both wait about a second).
pub const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How long a stopping server waits for its clients' queues to drain before it exits anyway
/// (a client that never reads must not keep the server alive).
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(3);

/// Pending connections the kernel may hold for us. The standard library uses 128, which makes
/// clients that connect in a burst wait a second for a retried SYN.
const BACKLOG: i32 = 4096;

/// Binds a listening socket with `SO_REUSEADDR` and a large backlog.
pub fn bind_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Prints how to join; tests read the address from the first line. A closed stdout is not
/// a reason for a server to stop, so write errors are ignored (`println!` would panic).
pub fn announce(mode: &str, addr: SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "chat-demo ({mode}) listening on {addr}");
    let _ = writeln!(out, "join with: nc {} {}", addr.ip(), addr.port());
    let _ = out.flush();
}

/// Prints the address of the web client.
pub fn announce_web(addr: SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "or open http://{addr}/ in a browser");
    let _ = out.flush();
}

/// Did `accept` fail because this process (EMFILE) or the system (ENFILE) is out of file
/// descriptors?
pub fn is_out_of_descriptors(err: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(err.raw_os_error(), Some(ENFILE | EMFILE))
}

/// Says once on stderr that accepting is paused, and once that it resumed.
#[derive(Debug, Default)]
pub struct BackoffReport {
    paused: bool,
}

impl BackoffReport {
    /// `accept` failed for lack of descriptors.
    pub fn out_of_descriptors(&mut self, err: &io::Error) {
        if !self.paused {
            eprintln!(
                "chat-demo: accept failed ({err}); pausing accepts, retrying every {} s",
                ACCEPT_BACKOFF.as_secs()
            );
            self.paused = true;
        }
    }

    /// `accept` worked.
    pub fn accepted(&mut self) {
        if self.paused {
            eprintln!("chat-demo: accepting connections again");
            self.paused = false;
        }
    }
}

/// Blocks the calling thread until SIGINT or SIGTERM arrives.
///
/// Call [`register_shutdown_signals`] first (before any other thread starts), then run this on
/// a thread of its own.
pub fn wait_for_shutdown_signal(mut signals: signal_hook::iterator::Signals) {
    let _ = signals.forever().next();
}

/// Replaces the default action of SIGINT and SIGTERM (die at once) with delivery to the
/// returned iterator, so the server can say goodbye to its clients.
pub fn register_shutdown_signals() -> io::Result<signal_hook::iterator::Signals> {
    signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
}
