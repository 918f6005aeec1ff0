//! Names for the runtime's things: task ids and keys, runtime ids, sockets and directions.
//!
//! A leaf module: it uses nothing else from the crate, so every other module may use it without
//! making a circle. (See "How the pieces fit" in the README for the whole graph.)

use std::fmt;
use std::net::SocketAddr;
use std::panic::Location;

/// A task's id: unique within its runtime, never reused, counting up from 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub(crate) u64);

impl Id {
    /// The id used for the future given to `block_on`, which is not a spawned task.
    pub(crate) const MAIN: Id = Id(0);
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

/// Names one task of one runtime: the slot it occupies in the task table, and its id.
///
/// Slots are reused once a task ends; ids never are. A wake that arrives for an old task whose
/// slot now holds a new one carries the old id, so the runtime sees the mismatch and ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    /// Index into the runtime's task table. Invariant: below `u32::MAX` (checked when a task
    /// is added), so that a waker can store it in 4 bytes.
    pub(crate) slot: usize,
    /// The id of the task the slot held when this key was made.
    pub(crate) id: Id,
}

impl TaskKey {
    /// The key of the future passed to `block_on`, which is not in the task table: its id is
    /// 0, which no task has, and its slot is past every real one.
    pub(crate) const MAIN: TaskKey = TaskKey {
        slot: u32::MAX as usize,
        id: Id::MAIN,
    };
}

/// What the task table shows of a new task besides its id; `task.rs` makes it at spawn, the
/// observer keeps it.
pub(crate) struct TaskLabel {
    pub(crate) name: Option<Box<str>>,
    /// Where `spawn` was called.
    pub(crate) spawned_at: &'static Location<'static>,
    /// The task is the one `spawn_blocking` spawns to wait for its job (the task table then
    /// says it waits on the pool, whose threads hold its waker out of the runtime's sight).
    pub(crate) blocking_job: bool,
}

/// Identifies one runtime. Every `block_on` call creates a runtime with a fresh id.
pub(crate) type RuntimeId = u64;

/// A direction of I/O. Each socket has one readiness flag and one set of waiters per direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

/// One readiness event, as the reactor hands it to the loop: which socket, which direction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IoEvent {
    pub(crate) source: Source,
    pub(crate) dir: Direction,
}

/// A registered socket, described for humans: "tcp 127.0.0.1:50312".
///
/// The reactor keeps one per socket, so it is small: 36 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// What kind of socket it is.
    pub kind: SourceKind,
    /// The listener's or UDP socket's own address; a TCP stream's peer.
    pub addr: Option<SocketAddr>,
}

/// The kinds of socket stroll registers (more may come: a `match` on it needs a `_` arm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceKind {
    /// A [`TcpListener`](crate::net::TcpListener).
    TcpListener,
    /// A [`TcpStream`](crate::net::TcpStream).
    Tcp,
    /// A [`UdpSocket`](crate::net::UdpSocket).
    Udp,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::TcpListener => "tcp listener",
            SourceKind::Tcp => "tcp",
            SourceKind::Udp => "udp",
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(addr) => write!(f, "{} {addr}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}
