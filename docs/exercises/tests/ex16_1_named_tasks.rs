//! Exercise 16.1 (chapter "Debugging stroll programs"): name your tasks, then find them in the
//! task table, and read what it says each one waits on.
//!
//! Spawned with `stroll::task::Builder::new().name(..)`, a task carries its name into
//! `stroll::task::dump()` (what `/tasks` prints and what the gdb walkthrough reads), so a
//! program that waits shows *who* waits, not only `epoll_wait`.
//!
//! The answer to the "waiting on" question: the runtime records nothing about waits. When you
//! call `dump`, it looks for each task's waker among what the runtime itself holds: the
//! reactor's waiter lists, the timer store, the join waiters. The sleeper's `sleep` registered
//! its waker in the timer store, so its row says `timer in 60.0 s` (the `Wait::Timer` of its
//! deadline). `std::future::pending` returns `Pending` without keeping the waker anywhere, so
//! nothing the runtime can see holds it: the row says `-`. The same `-` would show for a task
//! waiting on a channel from another crate, or on any future that keeps its waker to itself;
//! the task table can only name waits that go through the runtime.

use std::time::{Duration, Instant};

use stroll::task::{TaskDump, TaskInfo, TaskState, Wait};

/// Spawns a named sleeper and a named task that waits forever, gives both a first poll, and
/// returns the task table while both are alive.
fn table_with_two_named_tasks() -> TaskDump {
    stroll::block_on(async {
        let sleeper = stroll::task::Builder::new()
            .name("sleeper")
            .spawn(stroll::time::sleep(Duration::from_secs(60)));
        let forever = stroll::task::Builder::new()
            .name("forever")
            .spawn(std::future::pending::<()>());
        // Give both a first poll, so that they are waiting, not just spawned.
        stroll::yield_now().await;
        let table = stroll::task::dump();
        println!("{table}");
        sleeper.abort();
        forever.abort();
        table
    })
}

/// The row of the task named `name`.
fn row<'a>(table: &'a TaskDump, name: &str) -> &'a TaskInfo {
    table
        .tasks
        .iter()
        .find(|task| task.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no task named {name:?} in\n{table}"))
}

#[test]
fn the_table_names_each_task() {
    let text = table_with_two_named_tasks().to_string();
    assert!(text.contains("sleeper"), "{text}");
    assert!(text.contains("forever"), "{text}");
}

#[test]
fn the_sleeper_waits_on_its_timer() {
    let before = Instant::now();
    let table = table_with_two_named_tasks();
    let sleeper = row(&table, "sleeper");
    assert_eq!(sleeper.state, TaskState::Waiting, "{table}");
    assert_eq!(sleeper.polls, 1, "{table}");
    // Exactly one wait: the timer store holds its waker, with the deadline of its sleep.
    match sleeper.waiting_on.as_slice() {
        [Wait::Timer(deadline)] => {
            let left = deadline.saturating_duration_since(before);
            assert!(
                left > Duration::from_secs(59) && left <= Duration::from_secs(61),
                "the deadline is the sleep's, 60 s on: {left:?}"
            );
        }
        other => panic!("the sleeper should wait on one timer, not {other:?}\n{table}"),
    }
    // And the table says so in words.
    let line = table
        .to_string()
        .lines()
        .find(|line| line.contains("sleeper"))
        .map(str::to_string)
        .unwrap();
    assert!(line.contains("timer in"), "{line}");
}

#[test]
fn the_forever_task_waits_on_nothing_the_runtime_can_see() {
    let table = table_with_two_named_tasks();
    let forever = row(&table, "forever");
    // It was polled and is waiting, like the sleeper...
    assert_eq!(forever.state, TaskState::Waiting, "{table}");
    assert_eq!(forever.polls, 1, "{table}");
    // ...but `pending` dropped the waker it was given, so no socket, timer or join handle
    // holds it, and the "waiting on" column is "-".
    assert!(forever.waiting_on.is_empty(), "{table}");
    let text = table.to_string();
    let line = text.lines().find(|line| line.contains("forever")).unwrap();
    let header = text.lines().next().unwrap();
    let column = header.find("waiting on").unwrap();
    assert!(
        line[column..].starts_with("- "),
        "the waiting-on column should be '-':\n{text}"
    );
}

#[test]
fn unnamed_tasks_are_listed_too_but_not_by_name() {
    let table = stroll::block_on(async {
        let task = stroll::spawn(std::future::pending::<()>());
        stroll::yield_now().await;
        let table = stroll::task::dump();
        task.abort();
        table
    });
    // The `block_on` future (id 0) and the task, which has no name.
    assert_eq!(table.tasks.len(), 2, "{table}");
    assert_eq!(table.tasks[1].name, None, "{table}");
    assert!(!table.to_string().contains("sleeper"), "{table}");
}
