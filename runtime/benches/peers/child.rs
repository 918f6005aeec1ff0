//! Child processes: the load generators are this same binary, started again with
//! `PEERS_ROLE` set. Every child is killed when its [`Guard`] drops, and every child also
//! watches for its own deadline and for its stdin closing (the parent died), so none outlives
//! the benchmark.

use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::ROLE_ENV;

/// The environment variable that carries a child's deadline, in ms from its start.
const DEADLINE_ENV: &str = "PEERS_DEADLINE_MS";

/// A child process that is killed (and reaped) when this guard drops.
pub struct Guard(Child);

impl Guard {
    pub fn new(child: Child) -> Guard {
        Guard(child)
    }

    /// Waits up to `limit` for the child to exit on its own, then kills it.
    pub fn wait_until(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for Guard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Starts this binary again in `role`, with `env` and a deadline of `limit`. Its stdin and
/// stdout are pipes: closing stdin tells it to exit; stdout carries its result.
pub fn spawn_role(role: &str, env: &[(&str, String)], limit: Duration) -> Guard {
    let exe = std::env::current_exe().expect("current_exe");
    let mut command = Command::new(exe);
    command
        .env(ROLE_ENV, role)
        .env(DEADLINE_ENV, limit.as_millis().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    Guard::new(command.spawn().expect("start a child process"))
}

/// Runs `role` to completion and returns what it printed, or an error if it failed or did not
/// finish within `limit` (it is killed then; its own deadline is the same `limit`).
pub fn run_role(role: &str, env: &[(&str, String)], limit: Duration) -> Result<String, String> {
    let mut child = spawn_role(role, env, limit);
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (done, output) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = done.send(text);
    });
    // stdout closes when the child exits; a little slack beyond its own deadline.
    let text = output
        .recv_timeout(limit + Duration::from_secs(5))
        .map_err(|_| format!("{role} did not finish within {limit:?}"))?;
    child.wait_until(Duration::from_secs(5));
    match child.try_wait() {
        Ok(Some(status)) if status.success() => Ok(text),
        Ok(Some(status)) => Err(format!("{role} failed ({status}): {text}")),
        _ => Err(format!("{role} did not exit")),
    }
}

/// Inside a child: exit when the deadline passes or when stdin closes (the parent is done with
/// us, or died), whichever comes first.
pub fn watch_parent() {
    let limit: u64 = std::env::var(DEADLINE_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(60_000);
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(limit));
        eprintln!("peers child: deadline of {limit} ms passed, exiting");
        std::process::exit(3);
    });
    thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
}

/// An environment variable a role needs.
pub fn env_var<T: std::str::FromStr>(name: &str) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} is missing or malformed"))
}
