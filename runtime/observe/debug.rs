//! Debug mode: warnings on stderr about what a learner cannot see from outside.
//!
//! Debug mode (`STROLL_DEBUG=1`, or [`crate::runtime::Builder::debug`]) adds three warnings on
//! stderr, the first two after asyncio's debug mode:
//! - a poll that holds the loop longer than a threshold (100 ms, or `STROLL_SLOW_POLL_MS`):
//!   the worst sin of async code, blocking the loop;
//! - the tasks still pending when the runtime ends, which are then dropped;
//! - a lost wakeup: a task whose poll returned `Pending` while nothing but the runtime held
//!   its waker (see `Observer::poll_ended`).

use std::time::Duration;

/// The default slow-poll threshold, asyncio's `slow_callback_duration`.
const DEFAULT_SLOW_POLL: Duration = Duration::from_millis(100);

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
        enabled.then(DebugConfig::default_threshold)
    }

    /// Debug mode with the threshold of `STROLL_SLOW_POLL_MS`, or 100 ms.
    pub(crate) fn default_threshold() -> DebugConfig {
        DebugConfig {
            slow_poll: slow_poll_from_env().unwrap_or(DEFAULT_SLOW_POLL),
        }
    }
}

/// `STROLL_SLOW_POLL_MS`, if set to a number.
fn slow_poll_from_env() -> Option<Duration> {
    let millis = std::env::var("STROLL_SLOW_POLL_MS")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_millis(millis))
}

/// "152 ms" or "1.5 s".
pub(crate) fn millis(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
