//! Traces: the loop's life, written as it happens in the Chrome Trace Event Format.
//!
//! With `STROLL_TRACE=trace.json` (or [`crate::runtime::Builder::trace`]), the runtime writes
//! one JSON event per line to that file:
//!
//! - a *complete* event (`"ph":"X"`) per poll, on the task's lane, named after the task, with
//!   `"result":"Ready"` or `"Pending"`;
//! - a complete event per reactor wait, on the `reactor` lane, with the timeout asked for and the
//!   number of events returned;
//! - an *instant* event (`"ph":"i"`) per wake, on the woken task's lane, with its cause:
//!   `readable`/`writable` (and the socket), `timer`, `cross-thread`, `self` (the task woke
//!   itself, as `yield_now` does) or `task N` (another task woke it);
//! - instant events for each spawn and each end (completed, panicked, aborted, dropped at
//!   shutdown), and metadata events naming each lane.
//!
//! The file loads in Perfetto (ui.perfetto.dev) and chrome://tracing; `chat-demo timeline`
//! draws it as an SVG. Events are streamed to the file through a buffer, so memory stays
//! constant however long the program runs; the file grows instead (roughly 150 bytes per
//! event). Lane ids (`tid`) are task ids; the `block_on` future is 0 and the reactor is
//! [`REACTOR_LANE`].
//!
//! One file belongs to one runtime at a time: when runtimes on two threads are both told to
//! trace to `trace.json`, the second writes `trace.2.json` (its runtime id) and says so.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::{Id, RuntimeId};

use super::WakeCause;

/// The lane (`tid`) of the reactor's waits.
pub(crate) const REACTOR_LANE: u64 = u32::MAX as u64;

/// The trace files that runtimes of this process are writing now.
static IN_USE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Writes the trace of one runtime.
pub(crate) struct Tracer {
    /// The file's path, registered in `IN_USE` while `claimed` is set.
    path: PathBuf,
    /// The path is registered in `IN_USE`: cleared when the trace is finished (or dropped), so
    /// that a later runtime may write the same path again.
    claimed: Cell<bool>,
    out: RefCell<BufWriter<File>>,
    /// Time zero of the trace's timestamps.
    start: Instant,
    /// A write failed (reported once), or the trace was finished: write nothing more.
    stopped: Cell<bool>,
}

impl Tracer {
    /// Creates the file (beside `path` if another runtime is writing that one) and writes the
    /// opening of the JSON array and the lane names.
    pub(crate) fn create(path: &Path, runtime: RuntimeId) -> io::Result<Tracer> {
        let path = claim(path, runtime);
        let file = match File::create(&path) {
            Ok(file) => file,
            Err(err) => {
                release(&path);
                return Err(err);
            }
        };
        // From here on, dropping the tracer (on an error too) releases the path.
        let tracer = Tracer {
            path,
            claimed: Cell::new(true),
            out: RefCell::new(BufWriter::new(file)),
            start: Instant::now(),
            stopped: Cell::new(false),
        };
        tracer.out.borrow_mut().write_all(b"[\n")?;
        tracer.line(
            r#"{"ph":"M","pid":1,"tid":0,"name":"process_name","args":{"name":"stroll"}}"#
                .to_string(),
        );
        tracer.lane(REACTOR_LANE, "reactor", -1);
        tracer.lane(Id::MAIN.0, "block_on", 0);
        Ok(tracer)
    }

    /// Names lane `tid` and sets its place in the viewer.
    pub(crate) fn lane(&self, tid: u64, name: &str, sort_index: i64) {
        self.line(format!(
            r#"{{"ph":"M","pid":1,"tid":{tid},"name":"thread_name","args":{{"name":{}}}}}"#,
            json_string(name)
        ));
        self.line(format!(
            r#"{{"ph":"M","pid":1,"tid":{tid},"name":"thread_sort_index","args":{{"sort_index":{sort_index}}}}}"#
        ));
    }

    /// One poll of a task.
    pub(crate) fn poll(&self, task: Id, name: &str, start: Instant, end: Instant, ready: bool) {
        let result = if ready { "Ready" } else { "Pending" };
        self.line(format!(
            r#"{{"ph":"X","pid":1,"tid":{},"ts":{},"dur":{},"name":{},"cat":"poll","args":{{"result":"{result}"}}}}"#,
            task.0,
            self.micros(start),
            micros(end.saturating_duration_since(start)),
            json_string(name)
        ));
    }

    /// One wait in the reactor.
    pub(crate) fn reactor_wait(
        &self,
        start: Instant,
        end: Instant,
        timeout: Option<Duration>,
        events: usize,
    ) {
        let timeout = match timeout {
            Some(timeout) => micros(timeout),
            None => "null".to_string(),
        };
        self.line(format!(
            r#"{{"ph":"X","pid":1,"tid":{REACTOR_LANE},"ts":{},"dur":{},"name":"wait","cat":"reactor","args":{{"timeout_us":{timeout},"events":{events}}}}}"#,
            self.micros(start),
            micros(end.saturating_duration_since(start)),
        ));
    }

    /// A task was woken.
    pub(crate) fn wake(&self, task: Id, cause: &WakeCause) {
        self.instant(
            task,
            "wake",
            &format!(r#""cause":{}"#, json_string(&cause.describe())),
        );
    }

    /// A task was spawned; `by` is the task that spawned it.
    pub(crate) fn spawn(&self, task: Id, name: &str, at: &Location<'_>, by: Option<Id>) {
        self.lane(task.0, name, task.0 as i64);
        let by = by.map_or("null".to_string(), |id| id.0.to_string());
        let args = format!(r#""at":{},"by":{by}"#, json_string(&at.to_string()));
        self.instant(task, "spawn", &args);
    }

    /// A task ended: "completed", "panicked", "aborted" or "dropped at shutdown".
    pub(crate) fn exit(&self, task: Id, how: &str) {
        self.instant(task, "exit", &format!(r#""how":{}"#, json_string(how)));
    }

    /// Closes the JSON array, flushes the file and releases its path. Events after this (a
    /// `JoinHandle` that outlived its runtime, say) are not written.
    pub(crate) fn finish(&self) {
        if self.stopped.replace(true) {
            return;
        }
        self.unclaim();
        let mut out = self.out.borrow_mut();
        // A last event without a trailing comma, then the closing bracket.
        let closing = writeln!(
            out,
            r#"{{"ph":"i","pid":1,"tid":{REACTOR_LANE},"ts":{},"s":"t","name":"end"}}]"#,
            self.micros(Instant::now())
        );
        if closing.and_then(|()| out.flush()).is_err() {
            self.report_failure();
        }
    }

    fn instant(&self, task: Id, name: &str, args: &str) {
        self.line(format!(
            r#"{{"ph":"i","pid":1,"tid":{},"ts":{},"s":"t","name":"{name}","args":{{{args}}}}}"#,
            task.0,
            self.micros(Instant::now())
        ));
    }

    /// Writes one event followed by a comma: every event but the final one ends with one.
    fn line(&self, mut event: String) {
        if self.stopped.get() {
            return;
        }
        event.push_str(",\n");
        if self.out.borrow_mut().write_all(event.as_bytes()).is_err() {
            self.report_failure();
        }
    }

    fn report_failure(&self) {
        self.stopped.set(true);
        eprintln!("stroll: writing the trace failed; tracing stops here");
    }

    /// Microseconds since the trace began.
    fn micros(&self, at: Instant) -> String {
        micros(at.saturating_duration_since(self.start))
    }
}

impl Tracer {
    /// Releases the path, once.
    fn unclaim(&self) {
        if self.claimed.replace(false) {
            release(&self.path);
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.unclaim();
    }
}

/// Registers `path` as being written, or, if it already is, a path beside it named after
/// `runtime` ("trace.json" becomes "trace.7.json").
fn claim(path: &Path, runtime: RuntimeId) -> PathBuf {
    let mut in_use = IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut chosen = path.to_path_buf();
    if in_use.contains(&chosen) {
        chosen = path.with_extension(match path.extension() {
            Some(ext) => format!("{runtime}.{}", ext.to_string_lossy()),
            None => runtime.to_string(),
        });
        eprintln!(
            "stroll: {} is being written by another runtime; this one traces to {}",
            path.display(),
            chosen.display()
        );
    }
    in_use.push(chosen.clone());
    chosen
}

fn release(path: &Path) {
    let mut in_use = IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    in_use.retain(|p| p != path);
}

/// A duration in microseconds, with three decimals (the format's unit is the microsecond).
fn micros(duration: Duration) -> String {
    format!("{:.3}", duration.as_nanos() as f64 / 1000.0)
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(
            super::json_string("a\"b\\c\nd\u{1}"),
            r#""a\"b\\c\nd\u0001""#
        );
    }
}
