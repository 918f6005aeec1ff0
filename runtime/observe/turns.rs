//! The turn log: `STROLL_LOG=turns` (or `runtime::Builder::turn_log`) prints one line per turn
//! of the loop on stderr, so a learner can watch the loop turn without a debugger:
//!
//! ```text
//! turn 7: polled reader, task 3; timeout 0.00 ms; reactor: readable tcp 127.0.0.1:5000; timers fired: 0; remote wakes: 0
//! ```
//!
//! It says which tasks were polled (by name, or `task N`), the timeout phase 3 computed, what
//! the reactor returned (which socket woke a task, for which direction; `not asked` on a busy
//! turn that skipped `epoll_wait`), how many tasks fired timers woke and how many wakes came
//! from other threads. A turn in which nothing happened is not printed. Each line is written
//! when its turn ends and nothing is kept: memory stays flat however long the program runs.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::time::Duration;

use crate::ids::IoEvent;

/// What the turn in progress has done so far.
#[derive(Default)]
pub(crate) struct TurnLog {
    /// Turns since the runtime started, printed or not.
    turn: Cell<u64>,
    /// The labels of the tasks polled this turn, comma-separated.
    polled: RefCell<String>,
    /// The reactor was asked for events this turn.
    asked_reactor: Cell<bool>,
    /// The events that woke a task this turn, as text.
    events: RefCell<String>,
    timer_wakes: Cell<u32>,
    remote_wakes: Cell<u32>,
}

impl TurnLog {
    /// A task (labelled `label`) was polled.
    pub(crate) fn polled(&self, label: &str) {
        let mut polled = self.polled.borrow_mut();
        if !polled.is_empty() {
            polled.push_str(", ");
        }
        polled.push_str(label);
    }

    /// The loop asked the reactor for events.
    pub(crate) fn asked_reactor(&self) {
        self.asked_reactor.set(true);
    }

    /// `event` woke a task.
    pub(crate) fn io_event(&self, event: &IoEvent) {
        let mut events = self.events.borrow_mut();
        if !events.is_empty() {
            events.push_str(", ");
        }
        let _ = write!(events, "{}", super::WakeCause::Io(*event).describe());
    }

    /// A fired timer woke a task.
    pub(crate) fn timer_wake(&self) {
        self.timer_wakes.set(self.timer_wakes.get() + 1);
    }

    /// A wake from another thread queued a task.
    pub(crate) fn remote_wake(&self) {
        self.remote_wakes.set(self.remote_wakes.get() + 1);
    }

    /// The turn is over: print it, unless nothing happened, and start the next.
    pub(crate) fn turn_ended(&self, timeout: Option<Duration>) {
        let turn = self.turn.get() + 1;
        self.turn.set(turn);
        let mut polled = self.polled.borrow_mut();
        let mut events = self.events.borrow_mut();
        let (timers, remote) = (self.timer_wakes.take(), self.remote_wakes.take());
        let asked = self.asked_reactor.take();
        if polled.is_empty() && events.is_empty() && timers == 0 && remote == 0 {
            return; // A turn in which nothing happened.
        }
        let timeout = match timeout {
            Some(timeout) => format!("{:.2} ms", timeout.as_secs_f64() * 1e3),
            None => "none (until an event)".to_string(),
        };
        let reactor = match (asked, events.is_empty()) {
            (false, _) => "not asked",
            (true, true) => "nothing",
            (true, false) => events.as_str(),
        };
        let polled_text = if polled.is_empty() {
            "nothing"
        } else {
            polled.as_str()
        };
        eprintln!(
            "turn {turn}: polled {polled_text}; timeout {timeout}; reactor: {reactor}; \
             timers fired: {timers}; remote wakes: {remote}"
        );
        polled.clear();
        events.clear();
    }
}
