//! Seeing inside the loop: the task table, slow-poll warnings, the list of tasks left pending.
//!
//! A backtrace of a waiting async program shows only `epoll_wait`. The task table answers
//! "where are my tasks?": every live task with its id, name, spawn location, state, what it
//! waits on, and how often it was polled and woken. [`crate::task::dump`] returns it; its
//! `Display` prints an aligned table.
//!
//! Debug mode (`STROLL_DEBUG=1`, or [`crate::runtime::Builder::debug`]) adds two warnings on
//! stderr, both after asyncio's debug mode:
//! - a poll that holds the loop longer than a threshold (100 ms, or `STROLL_SLOW_POLL_MS`):
//!   the worst sin of async code, blocking the loop;
//! - the tasks still pending when the runtime ends, which are then dropped.

use std::fmt;
use std::net::SocketAddr;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::task::Id;

/// The default slow-poll threshold, asyncio's `slow_callback_duration`.
pub(crate) const DEFAULT_SLOW_POLL: Duration = Duration::from_millis(100);

/// Debug-mode settings of one runtime.
#[derive(Clone, Debug)]
pub(crate) struct DebugConfig {
    /// A poll longer than this is reported.
    pub(crate) slow_poll: Duration,
}

impl DebugConfig {
    /// The settings the environment asks for: `None` unless `STROLL_DEBUG` is set (and not "0").
    pub(crate) fn from_env() -> Option<DebugConfig> {
        let enabled =
            std::env::var("STROLL_DEBUG").is_ok_and(|value| !value.is_empty() && value != "0");
        enabled.then(|| DebugConfig {
            slow_poll: slow_poll_from_env().unwrap_or(DEFAULT_SLOW_POLL),
        })
    }
}

/// `STROLL_SLOW_POLL_MS`, if set to a number.
pub(crate) fn slow_poll_from_env() -> Option<Duration> {
    let millis = std::env::var("STROLL_SLOW_POLL_MS")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_millis(millis))
}

/// A snapshot of every live task of the current runtime; see [`crate::task::dump`].
#[derive(Clone, Debug)]
pub struct TaskDump {
    /// The tasks, by id; the first is the future given to `block_on` (id 0).
    pub tasks: Vec<TaskInfo>,
}

/// One row of the task table.
#[derive(Clone, Debug)]
pub struct TaskInfo {
    /// The task's id (0 for the `block_on` future).
    pub id: Id,
    /// The name given with `task::Builder::name`, if any. The `block_on` future is "block_on".
    pub name: Option<String>,
    /// Where the task was spawned (for `block_on`'s future: where `block_on` was called).
    pub spawned_at: &'static Location<'static>,
    /// Running, ready or waiting.
    pub state: TaskState,
    /// What the task registered with at its last poll (empty while it runs or is queued, and
    /// for waits the runtime cannot see, such as a channel from another crate).
    pub waiting_on: Vec<Wait>,
    /// How many times it was polled.
    pub polls: u64,
    /// How many times it was woken.
    pub wakes: u64,
}

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Being polled right now (the task that called `dump`, or its caller).
    Running,
    /// Woken, in the run queue, to be polled on the next run phase.
    Ready,
    /// Returned `Pending` and waits for a wake.
    Waiting,
}

/// Something a task waits on, as far as the runtime can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A socket, to become readable.
    Readable(Source),
    /// A socket, to become writable.
    Writable(Source),
    /// A deadline (a `sleep`, `timeout` or `interval`).
    Timer(Instant),
    /// Another task to finish (awaiting its `JoinHandle`).
    Task(Id),
    /// A job on the `spawn_blocking` pool.
    Blocking,
}

/// What the runtime records when a task parks: a [`Wait`], with a socket named by its key in
/// the reactor rather than by its description, so that a task's record stays small (it is
/// kept for every idle connection). [`crate::task::dump`] turns it into a `Wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitNote {
    Readable(usize),
    Writable(usize),
    Timer(Instant),
    Task(Id),
    Blocking,
}

/// A [`WaitNote`] as the task table stores it: plain integers, so that a debugger prints it
/// (gdb 13 failed on a task record holding enums with data there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WaitRecord {
    pub(crate) kind: WaitKind,
    /// The socket's reactor key, the awaited task's id, or the timer's deadline in
    /// microseconds after the runtime started.
    pub(crate) value: u64,
}

/// What a [`WaitRecord`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum WaitKind {
    #[default]
    Nothing,
    Readable,
    Writable,
    Timer,
    Task,
    Blocking,
}

/// A registered socket, described for humans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// "tcp listener", "tcp" or "udp".
    pub kind: &'static str,
    /// The listener's or UDP socket's own address; a TCP stream's peer.
    pub addr: Option<SocketAddr>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(addr) => write!(f, "{} {addr}", self.kind),
            None => f.write_str(self.kind),
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::Readable(source) => write!(f, "{source} readable"),
            Wait::Writable(source) => write!(f, "{source} writable"),
            Wait::Timer(deadline) => {
                let now = Instant::now();
                if *deadline > now {
                    write!(f, "timer in {}", millis(*deadline - now))
                } else {
                    write!(f, "timer (due)")
                }
            }
            Wait::Task(id) => write!(f, "task {id}"),
            Wait::Blocking => f.write_str("spawn_blocking job"),
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Running => "running",
            TaskState::Ready => "ready",
            TaskState::Waiting => "waiting",
        })
    }
}

impl TaskInfo {
    /// "timer in 29.8 s, tcp 127.0.0.1:5000 readable", or "-".
    fn waiting_on_text(&self) -> String {
        if self.waiting_on.is_empty() {
            return "-".to_string();
        }
        let parts: Vec<String> = self.waiting_on.iter().map(Wait::to_string).collect();
        parts.join(", ")
    }
}

impl fmt::Display for TaskDump {
    /// An aligned table, one task per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "id",
            "name",
            "state",
            "polls",
            "wakes",
            "waiting on",
            "spawned at",
        ];
        let rows: Vec<[String; 7]> = self
            .tasks
            .iter()
            .map(|task| {
                [
                    task.id.to_string(),
                    task.name.clone().unwrap_or_else(|| "-".to_string()),
                    task.state.to_string(),
                    task.polls.to_string(),
                    task.wakes.to_string(),
                    task.waiting_on_text(),
                    task.spawned_at.to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        write_row(f, &header.map(String::from), &widths)?;
        for row in &rows {
            write_row(f, row, &widths)?;
        }
        Ok(())
    }
}

/// Writes one row: numbers right-aligned, text left-aligned, the last column unpadded.
fn write_row(f: &mut fmt::Formatter<'_>, row: &[String; 7], widths: &[usize; 7]) -> fmt::Result {
    let numeric = [true, false, false, true, true, false, false];
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        if i == row.len() - 1 {
            line.push_str(cell);
        } else if numeric[i] {
            line.push_str(&format!("{cell:>width$}", width = widths[i]));
        } else {
            line.push_str(&format!("{cell:<width$}", width = widths[i]));
        }
    }
    writeln!(f, "{}", line.trim_end())
}

/// "152 ms" or "1.5 s".
pub(crate) fn millis(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
