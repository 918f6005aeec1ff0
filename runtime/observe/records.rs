//! The task table's records: what `stroll::task::dump()` shows of every live task, beyond the
//! core's own table (`runtime/src/task_table.rs`, which stores the tasks themselves).
//!
//! A backtrace of a waiting async program shows only `epoll_wait`. The task table answers
//! "where are my tasks?": every live task with its id, name, spawn location, state, what it
//! waits on, and how often it was polled and woken. [`crate::task::dump`] returns it; its
//! `Display` prints an aligned table.
//!
//! The observer keeps one [`TaskRecord`] per task: its name, spawn location and counters.
//! What a task waits on is not recorded at all: when `dump` is called, the runtime looks for
//! the task's waker among what its core holds (the reactor's waiters, the timer store, the
//! task table's join waiters), so a poll pays nothing for it.

use std::fmt;
use std::panic::Location;
use std::time::Instant;

use crate::ids::{Id, Source};

use super::debug::millis;

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
    /// What holds the task's waker now: its sockets, timers, the tasks whose handles it
    /// awaits, the `spawn_blocking` pool (empty while it runs, and for waits the runtime
    /// cannot see, such as a channel from another crate).
    pub waiting_on: Vec<Wait>,
    /// How many times it was polled.
    pub polls: u64,
    /// How many times it was woken.
    pub wakes: u64,
}

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Being polled right now: the task that called `dump` (or, if the `block_on` future
    /// called it, that future).
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

/// What the table keeps for one task (and for the `block_on` future).
pub(crate) struct TaskRecord {
    pub(crate) id: Id,
    /// Boxed twice, so that the pointer here is a thin one: 8 bytes for the common unnamed
    /// task rather than 16, with the record at 48 bytes (one per live task).
    pub(crate) name: Option<Box<Box<str>>>,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) polls: u64,
    /// Wakes that put the task in the run queue (a wake of a task already queued is not one,
    /// except in the rare race of a local and a remote wake at once: see `waker.rs`).
    pub(crate) wakes: u64,
    /// The task is the one `spawn_blocking` spawned to wait for its job: while it waits, it
    /// waits on the pool (whose threads hold its waker where the runtime cannot see it).
    pub(crate) blocking_job: bool,
}

impl TaskRecord {
    pub(crate) fn new(
        id: Id,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> TaskRecord {
        TaskRecord {
            id,
            name: name.map(Box::new),
            spawned_at,
            polls: 0,
            wakes: 0,
            blocking_job: false,
        }
    }

    /// "task 7 'name' (spawned at src/main.rs:10:5)".
    pub(crate) fn describe(&self) -> String {
        format!(
            "task {} '{}' (spawned at {})",
            self.id,
            self.name.as_deref().map_or("<unnamed>", |name| &**name),
            self.spawned_at
        )
    }

    /// The task's name, or "task N".
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(name) => name.to_string(),
            None => format!("task {}", self.id),
        }
    }

    /// This record as a row of [`TaskDump`]; `waits` are the registrations the runtime found
    /// for the task's waker.
    pub(crate) fn info(&self, state: TaskState, mut waits: Vec<Wait>) -> TaskInfo {
        if self.blocking_job && state == TaskState::Waiting {
            waits.push(Wait::Blocking);
        }
        TaskInfo {
            id: self.id,
            name: self.name.as_deref().map(|name| name.to_string()),
            spawned_at: self.spawned_at,
            state,
            waiting_on: waits,
            polls: self.polls,
            wakes: self.wakes,
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
