//! timers: [`TIMERS`] tasks, each one sleep until `start + offset`, offsets scattered over
//! 0-50 ms; the time measured includes spawning and joining the tasks. One function per runtime (stroll's `Sleep` is not `Send`, so the generic
//! `Runtime::spawn` cannot take it); the three have the same shape. futures' `LocalPool` has
//! no timers and does not run this workload.

use std::time::{Duration, Instant};

use crate::probe::thread_cpu_ns;
use crate::rt::{Runtime, Smol, Tokio};

/// Concurrent sleeps.
pub const TIMERS: u32 = 100_000;
/// The span the deadlines are scattered over.
pub const SPAN: Duration = Duration::from_millis(50);

/// One run's result.
pub struct TimerRun {
    /// Wall time from the start until every sleep completed, beyond [`SPAN`], in ms.
    pub late_ms: f64,
    /// The loop thread's on-CPU time over the same interval, per timer, in ns.
    pub cpu_ns_per_timer: f64,
}

/// The deadlines, relative to the start: `i * 7919 % 50_000` µs. 7919 is prime, so this is
/// every whole microsecond in 0-50 ms exactly twice, in a scattered order.
fn offsets() -> impl Iterator<Item = Duration> {
    let span = SPAN.as_micros() as u64;
    (0..u64::from(TIMERS)).map(move |i| Duration::from_micros(i * 7919 % span))
}

/// The start of a run: wall clock and this thread's CPU time.
struct Clock {
    start: Instant,
    cpu_start: u64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            start: Instant::now(),
            cpu_start: thread_cpu_ns(),
        }
    }

    fn finish(self) -> TimerRun {
        let wall = self.start.elapsed().as_secs_f64() - SPAN.as_secs_f64();
        let cpu = thread_cpu_ns() - self.cpu_start;
        TimerRun {
            late_ms: wall * 1e3,
            cpu_ns_per_timer: cpu as f64 / f64::from(TIMERS),
        }
    }
}

pub fn stroll() -> TimerRun {
    stroll::block_on(async {
        let clock = Clock::start();
        let sleeps: Vec<_> = offsets()
            .map(|offset| stroll::spawn(stroll::time::sleep_until(clock.start + offset)))
            .collect();
        for sleep in sleeps {
            sleep.await.expect("sleep task failed");
        }
        clock.finish()
    })
}

pub fn tokio() -> TimerRun {
    Tokio::block_on(async {
        let clock = Clock::start();
        let sleeps: Vec<_> = offsets()
            .map(|offset| {
                tokio::task::spawn_local(tokio::time::sleep_until((clock.start + offset).into()))
            })
            .collect();
        for sleep in sleeps {
            sleep.await.expect("sleep task failed");
        }
        clock.finish()
    })
}

pub fn smol() -> TimerRun {
    Smol::block_on(async {
        let clock = Clock::start();
        let sleeps: Vec<_> = offsets()
            .map(|offset| Smol::spawn_task(async_io::Timer::at(clock.start + offset)))
            .collect();
        for sleep in sleeps {
            sleep.await;
        }
        clock.finish()
    })
}
