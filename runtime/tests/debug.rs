//! Seeing inside the loop: the task table, slow-poll warnings, pending tasks at exit, traces.
//!
//! Warnings go to stderr, so those scenarios run in a child process (this same test binary,
//! told which scenario by `STROLL_TEST_SCENARIO`) whose stderr the test reads.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};
use stroll::task::{self, Builder, TaskState, Wait};
use stroll::time::sleep;
use stroll::{block_on, spawn, yield_now};

#[test]
fn the_task_table_shows_states_and_what_tasks_wait_on() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sleeper = Builder::new().name("sleeper").spawn(async {
            sleep(Duration::from_secs(3600)).await;
        });
        let acceptor_task = Builder::new().name("acceptor").spawn(async move {
            listener.accept().await.unwrap();
        });
        let joiner_task = {
            let sleeper_id = sleeper.id();
            Builder::new().name("joiner").spawn(async move {
                sleeper.await.unwrap_err();
                sleeper_id
            })
        };
        yield_now().await; // every task has now run once and parked
        let queued = Builder::new().name("queued").spawn(async {});

        let table = task::dump();
        let row = |name: &str| {
            table
                .tasks
                .iter()
                .find(|t| t.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no task {name} in\n{table}"))
                .clone()
        };
        let main = &table.tasks[0];
        assert_eq!(main.id.to_string(), "0");
        assert_eq!(main.state, TaskState::Running);
        assert!(main.spawned_at.file().ends_with("debug.rs"));

        let sleeper = row("sleeper");
        assert_eq!(sleeper.state, TaskState::Waiting);
        assert!(
            matches!(sleeper.waiting_on[..], [Wait::Timer(_)]),
            "{table}"
        );
        assert_eq!(sleeper.polls, 1);

        let acceptor = row("acceptor");
        assert_eq!(acceptor.state, TaskState::Waiting);
        match &acceptor.waiting_on[..] {
            [Wait::Readable(source)] => {
                assert_eq!(source.kind, stroll::task::SourceKind::TcpListener);
                assert_eq!(source.addr, Some(addr));
            }
            other => panic!("acceptor waits on {other:?}"),
        }

        let joiner = row("joiner");
        assert!(matches!(joiner.waiting_on[..], [Wait::Task(id)] if id == sleeper.id));

        assert_eq!(row("queued").state, TaskState::Ready);
        assert_eq!(row("queued").polls, 0);

        // The printed table: a header, then one aligned line per task.
        let text = table.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), table.tasks.len() + 1, "{text}");
        let column = lines[0].find("state").unwrap();
        for line in &lines[1..] {
            let cell = &line[column..];
            assert!(
                ["running", "ready", "waiting"]
                    .iter()
                    .any(|s| cell.starts_with(s)),
                "misaligned row: {line}"
            );
        }
        assert!(
            text.contains(&format!("tcp listener {addr} readable")),
            "{text}"
        );

        // A connection wakes the acceptor, which then finishes and leaves the table.
        let _client = TcpStream::connect(addr).await.unwrap();
        wait_until_gone("acceptor").await;
        drop((queued, joiner_task, acceptor_task));
    });
}

/// Yields until the named task has left the table.
async fn wait_until_gone(name: &str) {
    for _ in 0..1000 {
        let now = task::dump();
        if !now.tasks.iter().any(|t| t.name.as_deref() == Some(name)) {
            return;
        }
        yield_now().await;
    }
    panic!("{name} never finished");
}

#[test]
fn wakes_are_counted() {
    block_on(async {
        let task = Builder::new().name("yielder").spawn(async {
            for _ in 0..3 {
                yield_now().await;
            }
            std::future::pending::<()>().await;
        });
        for _ in 0..6 {
            yield_now().await;
        }
        let table = task::dump();
        let row = table.tasks.iter().find(|t| t.id == task.id()).unwrap();
        assert_eq!(row.wakes, 3, "{table}");
        assert_eq!(row.polls, 4, "{table}");
        task.abort();
    });
}

/// Runs `scenario` in a child process and returns its stderr.
fn stderr_of(scenario: &str, env: &[(&str, &str)]) -> String {
    let (succeeded, stderr) = run_scenario(scenario, env);
    assert!(succeeded, "scenario {scenario} failed:\n{stderr}");
    stderr
}

/// Runs `scenario` in a child process: did it succeed, and its stderr.
fn run_scenario(scenario: &str, env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_scenarios",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("STROLL_TEST_SCENARIO", scenario)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

/// A leaf future over a shared flag; the broken one returns `Pending` without keeping the
/// waker (the lost-wakeup bug), the good one keeps it for `set_flag`.
struct Flag {
    shared: Rc<RefCell<(bool, Option<Waker>)>>,
    keep_waker: bool,
}

impl Future for Flag {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut shared = self.shared.borrow_mut();
        if shared.0 {
            return Poll::Ready(());
        }
        if self.keep_waker {
            shared.1 = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

fn set_flag(shared: &RefCell<(bool, Option<Waker>)>) {
    let waker = {
        let mut shared = shared.borrow_mut();
        shared.0 = true;
        shared.1.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Waits, holding its waker where another task, a timer, a thread or a handle will wake it:
/// none of these may be reported as a lost wakeup.
async fn waits_that_are_not_lost() {
    // Another task wakes it.
    let shared = Rc::new(RefCell::new((false, None)));
    let setter = spawn({
        let shared = shared.clone();
        async move {
            sleep(Duration::from_millis(5)).await;
            set_flag(&shared);
        }
    });
    Flag {
        shared,
        keep_waker: true,
    }
    .await;
    setter.await.unwrap();
    // A timer wakes it.
    sleep(Duration::from_millis(5)).await;
    // A JoinHandle wakes it.
    spawn(sleep(Duration::from_millis(5))).await.unwrap();
    // Another thread wakes it, later.
    let waker = Arc::new(Mutex::new(None::<Waker>));
    let thread = std::thread::spawn({
        let waker = waker.clone();
        move || loop {
            std::thread::sleep(Duration::from_millis(5));
            if let Some(waker) = waker.lock().unwrap().take() {
                waker.wake();
                return;
            }
        }
    });
    let mut polled = false;
    std::future::poll_fn(|cx| {
        if polled {
            return Poll::Ready(());
        }
        polled = true;
        *waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    thread.join().unwrap();
}

/// The child's side of the tests below; does nothing unless a scenario is named.
#[test]
fn child_scenarios() {
    let Ok(scenario) = std::env::var("STROLL_TEST_SCENARIO") else {
        return;
    };
    match scenario.as_str() {
        "blocking poll" => block_on(async {
            Builder::new()
                .name("sinner")
                .spawn(async { std::thread::sleep(Duration::from_millis(150)) })
                .await
                .unwrap();
            let offloaded = task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(150)));
            Builder::new()
                .name("saint")
                .spawn(offloaded)
                .await
                .unwrap()
                .unwrap();
        }),
        "left pending" => block_on(async {
            drop(
                Builder::new()
                    .name("forgotten")
                    .spawn(std::future::pending::<()>()),
            );
            yield_now().await;
        }),
        "lost wakeup" => block_on(async {
            let shared = Rc::new(RefCell::new((false, None)));
            let waiter = Builder::new().name("flag waiter").spawn(Flag {
                shared: shared.clone(),
                keep_waker: false,
            });
            sleep(Duration::from_millis(20)).await; // The loop sleeps: the report comes.
            set_flag(&shared);
            sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished(), "the lost task was polled again");
            waiter.abort();
        }),
        "not lost" => block_on(waits_that_are_not_lost()),
        "deadlock" => block_on(async {
            let shared = Rc::new(RefCell::new((false, None)));
            let waiter = Builder::new().name("flag waiter").spawn(Flag {
                shared,
                keep_waker: false,
            });
            waiter.await.unwrap(); // Nothing will ever finish it.
        }),
        "turns" => block_on(async {
            Builder::new()
                .name("napper")
                .spawn(sleep(Duration::from_millis(20)))
                .await
                .unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = Builder::new()
                .name("acceptor")
                .spawn(async move { listener.accept().await.unwrap().0 });
            yield_now().await; // The acceptor parks: no one has connected yet.
            let _client = std::net::TcpStream::connect(addr).unwrap();
            acceptor.await.unwrap();
        }),
        "builder turns" => stroll::runtime::Builder::new()
            .turn_log(true)
            .block_on(sleep(Duration::from_millis(5))),
        "builder threshold" => stroll::runtime::Builder::new()
            .slow_poll_threshold(Duration::from_millis(20))
            .block_on(async { std::thread::sleep(Duration::from_millis(60)) }),
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn debug_mode_names_a_task_that_blocks_the_loop() {
    let stderr = stderr_of("blocking poll", &[("STROLL_DEBUG", "1")]);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("slow poll")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "exactly the blocking task is reported:\n{stderr}"
    );
    let warning = warnings[0];
    assert!(warning.contains("'sinner'"), "{warning}");
    assert!(
        warning.contains("debug.rs"),
        "names the spawn location: {warning}"
    );
    assert!(warning.contains(" ms"), "says how long: {warning}");
}

#[test]
fn without_debug_mode_nothing_is_printed() {
    let stderr = stderr_of("blocking poll", &[]);
    assert!(!stderr.contains("slow poll"), "{stderr}");
}

#[test]
fn the_slow_poll_threshold_can_be_changed() {
    let stderr = stderr_of(
        "blocking poll",
        &[("STROLL_DEBUG", "1"), ("STROLL_SLOW_POLL_MS", "1000")],
    );
    assert!(
        !stderr.contains("slow poll"),
        "150 ms is under 1000 ms:\n{stderr}"
    );
    let stderr = stderr_of("builder threshold", &[]);
    assert!(stderr.contains("slow poll: task 0 'block_on'"), "{stderr}");
}

#[test]
fn debug_mode_lists_tasks_left_pending() {
    let stderr = stderr_of("left pending", &[("STROLL_DEBUG", "1")]);
    assert!(
        stderr.contains("'forgotten'") && stderr.contains("still pending"),
        "{stderr}"
    );
    let quiet = stderr_of("left pending", &[]);
    assert!(!quiet.contains("still pending"), "{quiet}");
}

#[test]
fn debug_mode_reports_a_lost_wakeup() {
    let stderr = stderr_of("lost wakeup", &[("STROLL_DEBUG", "1")]);
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("lost wakeup"))
        .collect();
    assert_eq!(reports.len(), 1, "reported once:\n{stderr}");
    let report = reports[0];
    assert!(report.contains("task 1 'flag waiter'"), "{report}");
    assert!(
        report.contains("debug.rs:"),
        "names the spawn location: {report}"
    );
    assert!(
        report.contains("cx.waker()"),
        "says how to fix it: {report}"
    );
    // Without debug mode, nothing is said (and nothing is checked).
    let quiet = stderr_of("lost wakeup", &[]);
    assert!(!quiet.contains("lost wakeup"), "{quiet}");
}

#[test]
fn a_waker_held_by_a_task_a_timer_a_handle_or_a_thread_is_not_a_lost_wakeup() {
    let stderr = stderr_of("not lost", &[("STROLL_DEBUG", "1")]);
    assert!(!stderr.contains("lost wakeup"), "a false alarm:\n{stderr}");
}

#[test]
fn a_certain_deadlock_panics_with_the_task_table() {
    // Always on: no debug mode.
    let (succeeded, stderr) = run_scenario("deadlock", &[]);
    assert!(!succeeded, "block_on returned from a deadlock:\n{stderr}");
    assert!(stderr.contains("deadlock"), "{stderr}");
    let table: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("id  name"))
        .collect();
    let row = |name: &str| table.iter().find(|line| line.contains(name)).copied();
    assert!(
        row("block_on").is_some_and(|r| r.contains("task 1")),
        "{stderr}"
    );
    assert!(
        row("flag waiter").is_some_and(|r| r.contains("debug.rs:")),
        "{stderr}"
    );
}

#[test]
fn the_turn_log_prints_one_line_per_turn_that_did_something() {
    let stderr = stderr_of("turns", &[("STROLL_LOG", "turns")]);
    let turns: Vec<&str> = stderr.lines().filter(|l| l.starts_with("turn ")).collect();
    assert!(turns.len() >= 3, "{stderr}");
    let numbers: Vec<u64> = turns
        .iter()
        .map(|line| line[5..line.find(':').unwrap()].parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let any = |text: &str| turns.iter().any(|line| line.contains(text));
    assert!(any("polled block_on"), "{stderr}");
    assert!(any("napper"), "tasks are named:\n{stderr}");
    assert!(any("timers fired: 1"), "the napper's timer:\n{stderr}");
    assert!(
        any("reactor: readable tcp listener"),
        "the accept's event:\n{stderr}"
    );
    assert!(
        any("timeout none (until an event)") || any("timeout 1"),
        "{stderr}"
    );
    // The 20 ms nap is one turn of sleep, not a line per idle wake-up.
    assert!(turns.len() < 20, "{} lines:\n{stderr}", turns.len());
    let from_code = stderr_of("builder turns", &[]);
    assert!(
        from_code
            .lines()
            .any(|l| l.starts_with("turn 1: polled block_on")),
        "{from_code}"
    );
    let off = stderr_of("turns", &[]);
    assert!(!off.lines().any(|l| l.starts_with("turn ")), "{off}");
}
