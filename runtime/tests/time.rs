//! Timers through the public API: sleep, deadline order, timeout, interval.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use stroll::time::{interval, sleep, sleep_until, timeout};
use stroll::{block_on, spawn};

#[test]
fn sleep_waits_at_least_its_duration() {
    let start = Instant::now();
    block_on(sleep(Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn sleep_until_a_past_instant_completes_at_once() {
    block_on(async {
        let before = Instant::now();
        sleep_until(before).await;
        sleep(Duration::ZERO).await;
        assert!(before.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn thousands_of_timers_fire_in_deadline_order() {
    const TIMERS: u64 = 5_000;
    // (slot, registered before its deadline) in the order the sleeps completed.
    let fired = Rc::new(RefCell::new(Vec::new()));
    let start = Instant::now();
    block_on(async {
        // Spawning does not poll, so every task registers its sleep in the loop's next turn;
        // the margin keeps all deadlines in the future by then, even on a slow machine.
        let base = Instant::now() + Duration::from_millis(100);
        let mut handles = Vec::new();
        // Spawn in a scrambled order so that spawn order and deadline order differ.
        for i in 0..TIMERS {
            let slot = (i * 7_919) % TIMERS; // 7919 is prime: a permutation of 0..TIMERS
            let deadline = base + Duration::from_micros(slot * 20);
            let fired = fired.clone();
            handles.push(spawn(async move {
                let in_time = Instant::now() < deadline;
                sleep_until(deadline).await;
                fired.borrow_mut().push((slot, in_time));
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
    });
    let fired = fired.borrow();
    assert_eq!(fired.len() as u64, TIMERS);
    // A sleep first polled after its deadline completes at once, before earlier timers fire:
    // only the ones registered in time can be held to deadline order.
    let in_time: Vec<u64> = fired.iter().filter(|f| f.1).map(|f| f.0).collect();
    assert!(
        in_time.len() as u64 > TIMERS / 2,
        "only {} of {TIMERS} timers registered before their deadline",
        in_time.len()
    );
    assert!(
        in_time.windows(2).all(|pair| pair[0] < pair[1]),
        "timers fired out of deadline order"
    );
    // The last deadline is 100 ms + 100 ms away; allow a very slow machine plenty.
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn timeout_gives_the_output_when_the_future_is_fast() {
    let result = block_on(timeout(Duration::from_secs(10), async { 5 }));
    assert_eq!(result, Ok(5));
}

#[test]
fn timeout_elapses_when_the_future_is_slow() {
    let start = Instant::now();
    let result = block_on(timeout(
        Duration::from_millis(20),
        std::future::pending::<()>(),
    ));
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), "deadline has elapsed");
    assert!(start.elapsed() >= Duration::from_millis(20));
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn timeout_drops_the_slow_future() {
    struct Flag(Rc<RefCell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }
    let dropped = Rc::new(RefCell::new(false));
    let flag = Flag(dropped.clone());
    block_on(async move {
        let slow = async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        };
        assert!(timeout(Duration::from_millis(5), slow).await.is_err());
    });
    assert!(*dropped.borrow());
}

#[test]
fn interval_ticks_on_schedule() {
    let period = Duration::from_millis(10);
    let ticks = block_on(async move {
        let mut ticker = interval(period);
        let mut ticks = Vec::new();
        for _ in 0..5 {
            ticks.push(ticker.tick().await);
        }
        ticks
    });
    // Scheduled times are exactly one period apart, whatever the loop's delays.
    for pair in ticks.windows(2) {
        assert_eq!(pair[1] - pair[0], period);
    }
    // The last tick completed no earlier than it was scheduled.
    assert!(Instant::now() >= ticks[4]);
}

#[test]
fn interval_first_tick_is_immediate() {
    block_on(async {
        let start = Instant::now();
        let mut ticker = interval(Duration::from_secs(3600));
        let first = ticker.tick().await;
        assert!(first <= Instant::now());
        assert!(start.elapsed() < Duration::from_secs(60));
    });
}

#[test]
#[should_panic(expected = "interval period must be non-zero")]
fn interval_rejects_a_zero_period() {
    let _ = interval(Duration::ZERO);
}

#[test]
fn a_sleeping_main_future_and_sleeping_tasks_all_wake() {
    let order = block_on(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let log2 = log.clone();
        let task = spawn(async move {
            sleep(Duration::from_millis(10)).await;
            log2.borrow_mut().push("task");
        });
        sleep(Duration::from_millis(30)).await;
        log.borrow_mut().push("main");
        task.await.unwrap();
        let order = log.borrow().clone();
        order
    });
    assert_eq!(order, ["task", "main"]);
}

#[test]
fn resetting_a_sleep_keeps_its_waiting_task() {
    use std::future::{poll_fn, Future};
    use std::pin::Pin;
    block_on(async {
        let shared = Rc::new(RefCell::new(sleep(Duration::from_secs(3600))));
        let waiting = {
            let shared = shared.clone();
            spawn(poll_fn(move |cx| {
                Pin::new(&mut *shared.borrow_mut()).poll(cx)
            }))
        };
        stroll::yield_now().await; // the task now waits on the hour-long sleep
        stroll::yield_now().await;
        shared
            .borrow_mut()
            .reset(Instant::now() + Duration::from_millis(10));
        timeout(Duration::from_secs(20), waiting)
            .await
            .expect("the task waiting on a reset sleep was never woken")
            .unwrap();
    });
}

#[test]
#[allow(clippy::async_yields_async)] // returning the sleep un-awaited is the point
fn a_sleep_can_outlive_the_runtime_that_registered_it() {
    use std::future::{poll_fn, Future};
    use std::pin::Pin;
    use std::task::Poll;
    let mut pending = block_on(async {
        let mut short = sleep(Duration::from_millis(20));
        // Poll once, so that it registers with this runtime's timers.
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut short).poll(cx))).await;
        assert!(first.is_pending());
        short
    });
    // A new runtime: the sleep must register again instead of waiting forever.
    block_on(async move {
        timeout(Duration::from_secs(20), &mut pending)
            .await
            .expect("a sleep from an ended runtime never completed");
    });
}
