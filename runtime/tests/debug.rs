//! Seeing inside the loop: the task table, slow-poll warnings, pending tasks at exit, traces.
//!
//! Warnings go to stderr, so those scenarios run in a child process (this same test binary,
//! told which scenario by `STROLL_TEST_SCENARIO`) whose stderr the test reads.

use std::process::Command;
use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};
use stroll::task::{self, Builder, TaskState, Wait};
use stroll::time::sleep;
use stroll::{block_on, yield_now};

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
                assert_eq!(source.kind, "tcp listener");
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
    assert!(output.status.success(), "scenario {scenario} failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
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
