//! What every server mode needs besides the room: a listening socket, the shutdown signal, the
//! rule for errors from `accept`, and how long a closing connection may take.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// How long to stop accepting after `accept` fails for lack of file descriptors (asyncio and
/// hyper both wait about a second).
pub const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How long a stopping server waits for its connections to be told and closed before it exits
/// anyway (a client that never reads must not keep the server alive).
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(3);

/// How long a closing connection goes on reading (and dropping) what the client sends, after
/// its last line and its end of file went out, waiting for the client's own end of file.
///
/// Closing a socket that still has unread bytes from the client makes the kernel send a reset
/// instead of an end of file, and a reset throws away what the server sent last if the client
/// had not read it yet. So every mode closes the same way (nginx's `lingering_close`): write
/// the last line, shut down the write side, read and discard until end of file or this
/// deadline, then close.
pub const LINGER: Duration = Duration::from_secs(2);

/// How long a client cut off for reading too slowly has to read what is already on its way
/// and the line that says why, before its connection is closed anyway.
pub const CUT_OFF_GRACE: Duration = Duration::from_secs(2);

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

/// What a failed `accept` means for the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// Only that one connection failed (it was reset or aborted before we took it, a
    /// firewall refused it...): accept the next one at once.
    Transient,
    /// The process or the system is short of something (descriptors, buffers, memory): the
    /// listener stays readable, and retrying at once would only spin. Wait, then retry.
    Persistent,
}

/// Sorts an error from `accept`. Linux passes errors of the new connection on through
/// `accept` (accept(2): treat them like EAGAIN); everything else, and anything unknown, is
/// persistent, so that no error can make an accept loop spin.
pub fn classify_accept_error(err: &io::Error) -> AcceptError {
    use io::ErrorKind::*;
    // Linux errno values with no `ErrorKind` of their own.
    const EPROTO: i32 = 71;
    const ENONET: i32 = 64;
    const ENOPROTOOPT: i32 = 92;
    const EOPNOTSUPP: i32 = 95;
    const EHOSTDOWN: i32 = 112;
    match err.kind() {
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut
        | PermissionDenied | HostUnreachable | NetworkUnreachable | NetworkDown => {
            AcceptError::Transient
        }
        _ if matches!(
            err.raw_os_error(),
            Some(EPROTO | ENONET | ENOPROTOOPT | EOPNOTSUPP | EHOSTDOWN)
        ) =>
        {
            AcceptError::Transient
        }
        // EMFILE, ENFILE (out of descriptors), ENOBUFS, ENOMEM, and whatever else.
        _ => AcceptError::Persistent,
    }
}

/// The accept loops' one rule for errors, and what they say on stderr about it: once that
/// accepting is paused, once that it resumed.
#[derive(Debug, Default)]
pub struct BackoffReport {
    paused: bool,
}

impl BackoffReport {
    /// `accept` failed: returns how long to wait before the next try (`None`: try at once).
    pub fn failed(&mut self, err: &io::Error) -> Option<Duration> {
        if classify_accept_error(err) == AcceptError::Transient {
            return None;
        }
        if !self.paused {
            eprintln!(
                "chat-demo: accept failed ({err}); pausing accepts, retrying every {} s",
                ACCEPT_BACKOFF.as_secs()
            );
            self.paused = true;
        }
        Some(ACCEPT_BACKOFF)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(errno: i32) -> AcceptError {
        classify_accept_error(&io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn shortages_back_off_and_one_connections_errors_do_not() {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, and EINVAL (unknown here: also backs off).
        for errno in [24, 23, 105, 12, 22] {
            assert_eq!(classify(errno), AcceptError::Persistent, "errno {errno}");
        }
        // ECONNABORTED, ECONNRESET, EINTR, EPROTO, EPERM, ETIMEDOUT, EHOSTUNREACH.
        for errno in [103, 104, 4, 71, 1, 110, 113] {
            assert_eq!(classify(errno), AcceptError::Transient, "errno {errno}");
        }
    }

    #[test]
    fn a_pause_is_reported_once_and_always_waits() {
        let mut report = BackoffReport::default();
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(report.failed(&emfile), Some(ACCEPT_BACKOFF));
        assert_eq!(report.failed(&emfile), Some(ACCEPT_BACKOFF));
        assert!(report.paused);
        assert_eq!(report.failed(&io::Error::from_raw_os_error(103)), None);
        report.accepted();
        assert!(!report.paused);
    }
}
