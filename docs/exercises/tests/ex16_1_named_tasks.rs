//! Exercise 16.1 (chapter "Debugging stroll programs"): name your tasks, then find them in the
//! task table.
//!
//! Spawned with `stroll::task::Builder::new().name(..)`, a task carries its name into
//! `stroll::task::dump()` (what `/tasks` prints and what the gdb walkthrough reads), so a
//! program that waits shows *who* waits, not only `epoll_wait`.

use std::time::Duration;

/// Spawns a named sleeper and a named yielder, and returns the task table as text while both
/// are alive.
fn table_with_two_named_tasks() -> String {
    stroll::block_on(async {
        let sleeper = stroll::task::Builder::new()
            .name("heartbeat")
            .spawn(stroll::time::sleep(Duration::from_secs(60)));
        let reader = stroll::task::Builder::new()
            .name("reader of 127.0.0.1:9")
            .spawn(std::future::pending::<()>());
        // Give both a first poll, so that they are waiting, not just spawned.
        stroll::yield_now().await;
        let table = stroll::task::dump().to_string();
        sleeper.abort();
        reader.abort();
        table
    })
}

#[test]
fn the_table_names_each_task() {
    let table = table_with_two_named_tasks();
    println!("{table}");
    assert!(table.contains("heartbeat"), "{table}");
    assert!(table.contains("reader of 127.0.0.1:9"), "{table}");
}

#[test]
fn unnamed_tasks_are_listed_too_but_not_by_name() {
    let table = stroll::block_on(async {
        let task = stroll::spawn(std::future::pending::<()>());
        stroll::yield_now().await;
        let table = stroll::task::dump().to_string();
        task.abort();
        table
    });
    assert!(!table.contains("heartbeat"), "{table}");
    assert!(
        table.lines().count() >= 2,
        "a header and a row at least: {table}"
    );
}
