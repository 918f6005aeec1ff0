//! Networking: TCP and UDP sockets whose operations are futures.
//!
//! Each socket wraps a non-blocking mio socket registered with the runtime's reactor (see
//! `reactor.rs`). An operation first checks the reactor's readiness cache: if the socket may be
//! ready (always, for a new socket) it tries the system call, and only if the kernel answers
//! `WouldBlock` does the task park until the reactor reports the socket ready.
//!
//! Methods take `&self`, so one task can read while another writes through an `Rc<TcpStream>`:
//! each socket keeps the wakers of the tasks waiting to read apart from those waiting to write,
//! and an event for one direction wakes all the waiters of that direction. Two tasks reading
//! the same socket at once both wake for every event and race for its bytes; don't do that.
//!
//! A socket belongs to the runtime it was created in; once that runtime's `block_on` has
//! returned, its operations fail with an error.
//!
//! Addresses are given as anything that implements [`ToSocketAddrs`]: a `SocketAddr`, a
//! `"127.0.0.1:8080"` string, an `(ip, port)` pair... A host name that needs DNS is resolved on
//! the `spawn_blocking` pool, because `getaddrinfo` blocks: the loop keeps turning meanwhile.

mod addr;
mod tcp;
mod udp;

pub use addr::ToSocketAddrs;
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
