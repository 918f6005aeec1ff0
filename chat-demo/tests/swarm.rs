//! `chat-demo swarm` and `chat-demo compare`, run as a user would, against real servers.
//!
//! The swarm must report every message received, in order, from a healthy server, in one
//! process or spread over several; and must fail (exit non-zero, say why) when the server cuts
//! clients off or dies. `compare` gets a small smoke run: a row per mode and step in its
//! Markdown table, and a well-formed SVG chart.

mod common;

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_chat-demo");

/// What a finished command printed.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Output {
    /// The JSON of the `swarm: {...}` last line.
    fn summary(&self) -> Value {
        let last = self.stdout.lines().last().unwrap_or_default();
        let json = last
            .strip_prefix("swarm: ")
            .unwrap_or_else(|| panic!("no `swarm: ` last line in:\n{}", self.stdout));
        serde_json::from_str(json).unwrap_or_else(|err| panic!("bad JSON {json:?}: {err}"))
    }
}

/// Runs `chat-demo ARGS`, killing it if it is not done within `limit`.
fn run(args: &[&str], limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-demo");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-demo {args:?} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        took: started.elapsed(),
    }
}

fn swarm(server: &Server, extra: &[&str], limit: Duration) -> Output {
    let addr = server.addr.to_string();
    let mut args = vec!["swarm", "--addr", &addr];
    args.extend_from_slice(extra);
    run(&args, limit)
}

fn assert_all_in_order(output: &Output, clients: u64, idle: u64, messages: u64) {
    let summary = output.summary();
    assert!(
        output.status.success(),
        "the swarm failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    let expected = messages * clients * (clients - 1);
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["in_order"], true, "{summary}");
    assert_eq!(summary["connected"], clients + idle, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["dropped"], 0, "{summary}");
    assert_eq!(summary["sent"], messages * clients, "{summary}");
    assert_eq!(summary["expected"], expected, "{summary}");
    assert_eq!(summary["received"], expected, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["out_of_order"], 0, "{summary}");
    let p50 = summary["p50_ms"].as_f64().expect("a p50");
    let p99 = summary["p99_ms"].as_f64().expect("a p99");
    let max = summary["max_ms"].as_f64().expect("a max");
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{summary}");
    assert!(
        output
            .stdout
            .contains(&format!("connections  {} made, 0 failed", clients + idle)),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("result       OK"),
        "{}",
        output.stdout
    );
}

#[test]
fn a_swarm_gets_every_message_in_order_from_the_async_server() {
    let server = Server::start("async", &[]);
    let output = swarm(
        &server,
        &[
            "--clients",
            "5",
            "--idle",
            "3",
            "--messages",
            "20",
            "--rate",
            "50",
        ],
        Duration::from_secs(60),
    );
    assert_all_in_order(&output, 5, 3, 20);
    assert_eq!(output.summary()["processes"], 1);
    // Not a terminal: no progress bar.
    assert!(output.stderr.is_empty(), "stderr: {}", output.stderr);
}

#[test]
fn a_swarm_spread_over_processes_adds_up() {
    let server = Server::start("async", &[]);
    // At most 3 connections per process: 4 + 5 connections take 3 worker processes.
    let output = swarm(
        &server,
        &[
            "--clients",
            "4",
            "--idle",
            "5",
            "--messages",
            "30",
            "--rate",
            "0",
            "--per-process",
            "3",
        ],
        Duration::from_secs(60),
    );
    assert_all_in_order(&output, 4, 5, 30);
    assert_eq!(output.summary()["processes"], 3);
}

#[test]
fn a_swarm_works_against_the_threads_server_too() {
    let server = Server::start("threads", &[]);
    let output = swarm(
        &server,
        &["--clients", "4", "--messages", "10", "--rate", "100"],
        Duration::from_secs(60),
    );
    assert_all_in_order(&output, 4, 0, 10);
}

#[test]
fn a_swarm_fails_when_the_server_cuts_its_clients_off() {
    // A queue of 64 bytes cannot even hold the greeting: the server cuts every client off.
    let server = Server::start("async", &["--max-queue", "64"]);
    let output = swarm(
        &server,
        &["--clients", "3", "--messages", "5", "--timeout", "20"],
        Duration::from_secs(60),
    );
    assert!(!output.status.success(), "stdout:\n{}", output.stdout);
    let summary = output.summary();
    assert_eq!(summary["ok"], false, "{summary}");
    assert_eq!(summary["failed"], 3, "{summary}");
    assert!(output.stdout.contains("FAILED"), "{}", output.stdout);
    assert!(output.stderr.contains("swarm failed"), "{}", output.stderr);
}

#[test]
fn a_swarm_fails_when_the_server_dies_under_it() {
    let server = Server::start("async", &[]);
    let addr = server.addr.to_string();
    // 100 messages at 20 per second: 5 s of chat, but the server dies after 1 s.
    let swarm = thread::spawn(move || {
        run(
            &[
                "swarm",
                "--addr",
                &addr,
                "--clients",
                "4",
                "--messages",
                "100",
                "--rate",
                "20",
                "--timeout",
                "30",
            ],
            Duration::from_secs(60),
        )
    });
    thread::sleep(Duration::from_secs(1));
    server.signal("KILL");
    let output = swarm.join().unwrap();
    assert!(!output.status.success(), "stdout:\n{}", output.stdout);
    let summary = output.summary();
    assert_eq!(summary["ok"], false, "{summary}");
    assert!(summary["lost"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["dropped"], 4, "{summary}");
    // It notices at once rather than waiting for its timeout.
    assert!(
        output.took < Duration::from_secs(15),
        "took {:?}",
        output.took
    );
}

#[test]
fn a_prefix_that_makes_bad_nicknames_is_refused() {
    let output = run(
        &["swarm", "--prefix", "a-very-long-prefix", "--clients", "2"],
        Duration::from_secs(10),
    );
    assert!(!output.status.success());
    assert!(output.stderr.contains("--prefix"), "{}", output.stderr);
}

#[test]
fn compare_tables_and_charts_every_mode_and_step() {
    let dir = std::env::temp_dir().join(format!("chat-demo-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out_dir = dir.to_str().unwrap();
    let output = run(
        &[
            "compare",
            "--steps",
            "20,40",
            "--modes",
            "async,threads",
            "--clients",
            "3",
            "--messages",
            "3",
            "--out-dir",
            out_dir,
        ],
        Duration::from_secs(120),
    );
    assert!(
        output.status.success(),
        "compare failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    let page = std::fs::read_to_string(dir.join("compare.md")).unwrap();
    for text in [&output.stdout, &page] {
        let rows: Vec<Vec<&str>> = text
            .lines()
            .filter(|line| line.starts_with("| async ") || line.starts_with("| threads "))
            .map(|line| line.split('|').map(str::trim).collect())
            .collect();
        for mode in ["async", "threads"] {
            let steps: Vec<&str> = rows.iter().filter(|r| r[1] == mode).map(|r| r[2]).collect();
            assert_eq!(steps, ["0", "20", "40"], "rows of {mode} in:\n{text}");
        }
        for row in &rows {
            assert!(!row[9].contains("FAILED"), "a step failed: {row:?}");
            // RSS, threads, CPU, p50, p99 are all measured.
            for column in [3, 5, 6, 7, 8] {
                assert!(
                    row[column].parse::<f64>().is_ok(),
                    "column {column} of {row:?}"
                );
            }
        }
        // 20 idle connections in threads mode: two threads each, on top of the baseline.
        let threads_at_20: u64 = rows
            .iter()
            .find(|r| r[1] == "threads" && r[2] == "20")
            .map(|r| r[5].parse().unwrap())
            .unwrap();
        assert!(threads_at_20 >= 40, "{threads_at_20} threads");
    }
    let svg = std::fs::read_to_string(dir.join("compare.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for label in ["async", "threads", "idle connections"] {
        assert!(texts.contains(&label), "no {label:?} label in {texts:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
