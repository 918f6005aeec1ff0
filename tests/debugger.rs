//! The gdb walkthroughs of `docs/debugging/`, run in batch mode against debug builds: each
//! test checks that the output shows what the walkthrough promises.
//!
//! Needs `rust-gdb` (from the Rust toolchain) and `gdb`; without them each test prints why it
//! skipped. CI installs gdb.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `Some(reason)` if the walkthroughs cannot run here.
fn missing_debugger() -> Option<String> {
    for tool in ["gdb", "rust-gdb"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Builds the debug binaries the walkthroughs use (cargo does nothing if they are fresh).
fn build_binaries() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["build", "-p", "stroll", "--example", "walkthrough"])
        .args(["-p", "chat-demo", "--bin", "chat-demo"])
        .status()
        .unwrap();
    assert!(status.success(), "building the walkthrough binaries failed");
}

fn binary(relative: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("debug").join(relative)
}

/// A gdb command in batch mode, started from the workspace root (the scripts `source` the
/// helper by a relative path).
fn gdb(script: &str, program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("rust-gdb");
    command
        .current_dir(root())
        .args(["-batch", "-x", script, "--args"])
        .arg(program)
        .args(args);
    command
}

/// Builds what the walkthroughs need; `false` (after saying why) if they cannot run here.
fn debugger_ready() -> bool {
    if let Some(reason) = missing_debugger() {
        eprintln!("skipped: {reason}; the gdb walkthroughs cannot run");
        return false;
    }
    build_binaries();
    true
}

#[test]
fn walkthrough_1_a_task_moves_from_the_run_queue_to_the_reactor_and_back() {
    if !debugger_ready() {
        return;
    }
    let output = gdb(
        "docs/debugging/loop.gdb",
        &binary("examples/walkthrough"),
        &[],
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    // The reader's row in each printed table, in order: ready, waiting, ready again.
    let mut states: Vec<&str> = text
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some("reader"))
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    // How many turns it waits depends on timing; the order of its states does not.
    states.dedup();
    let ready_waiting_ready = states
        .windows(3)
        .any(|w| w == ["ready", "waiting", "ready"]);
    assert!(ready_waiting_ready, "reader states {states:?} in:\n{text}");
    assert!(text.contains("== phase 4: wait_for_io"), "{text}");
    assert!(
        text.contains("wake: task 1 goes to the run queue"),
        "{text}"
    );
    assert!(text.contains("the reader got 5 bytes"), "{text}");
}

/// Runs the chat server under gdb with `script`; a client logs in as alice and says hello.
/// Returns gdb's output.
fn chat_under_gdb(script: &str) -> String {
    let mut child = gdb(
        script,
        &binary("chat-demo"),
        &["serve", "--addr", "127.0.0.1:0"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let port = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("gdb ended before the server listened:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(addr) = line.trim().strip_prefix("chat-demo (async) listening on ") {
            break addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
    };
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    client.write_all(b"alice\n").unwrap();
    let mut welcome = String::new();
    // Under walkthrough 3 the server stops at the nickname, so the welcome may never come.
    let _ = reader.read_line(&mut welcome);
    let _ = client.write_all(b"hello there\n");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let _ = child.wait();
    seen + &rest
}

#[test]
fn walkthrough_2_the_connection_future_shows_its_state() {
    if !debugger_ready() {
        return;
    }
    let text = chat_under_gdb("docs/debugging/future.gdb");
    // The future, printed: an async fn's enum, suspended in a Suspend variant with its locals.
    assert!(
        text.contains("handle_client::{async_fn_env#0}::Suspend"),
        "{text}"
    );
    assert!(
        text.contains("__awaitee"),
        "the locals include the awaited future:\n{text}"
    );
    // The await trace: handle_client awaits read_lines.
    let trace: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.contains("== its await trace"))
        .skip(1)
        .take_while(|line| line.contains("::"))
        .collect();
    assert!(trace.len() >= 2, "{text}");
    assert!(trace[0].contains("handle_client"), "{trace:?}");
    assert!(trace[1].trim_start().contains("read_lines"), "{trace:?}");
    // A short path from the task down to the loop: count the frames between them.
    let frame_of = |needle: &str| {
        text.lines()
            .find(|line| line.starts_with('#') && line.contains(needle))
            .and_then(|line| line[1..].split_whitespace().next()?.parse::<usize>().ok())
    };
    let task = frame_of("handle_client::{async_fn#0}").expect("handle_client frame");
    let run_until = frame_of("stroll::runtime::Runtime::run_until").expect("run_until frame");
    assert!(
        run_until - task <= 12,
        "{} frames between the loop and the task",
        run_until - task
    );
}

#[test]
fn walkthrough_3_the_task_table_from_the_debugger() {
    if !debugger_ready() {
        return;
    }
    let text = chat_under_gdb("docs/debugging/tasks.gdb");
    let table: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("id  name"))
        .take_while(|line| !line.starts_with("run queue"))
        .collect();
    let row = |name: &str| table.iter().find(|line| line.contains(name)).copied();
    assert!(row("block_on").is_some(), "{text}");
    assert!(
        row("accept loop").is_some_and(|r| r.contains("waiting")),
        "{table:?}"
    );
    assert!(
        row("client 127.0.0.1:").is_some_and(|r| r.contains("running")),
        "{table:?}"
    );
    assert!(row("writer 127.0.0.1:").is_some(), "{table:?}");
    // The raw table, as the runtime keeps it.
    assert!(
        text.contains("slab::Entry<stroll::task_table::Entry>::Occupied"),
        "{text}"
    );
}
