//! one_line: follow one chat line through stroll's event loop, turn by turn.
//!
//! Run it with `cargo run -q -p chat-demo --example one_line`.
//!
//! It starts the async chat server (`chat-demo serve --mode async`, on a free port) as a child
//! process with `STROLL_LOG=turns` and `STROLL_TRACE` set, logs in two clients, alice and bob,
//! lets the server fall quiet, then has alice send one line and waits until bob receives it.
//! Then it stops the server (SIGTERM) and prints the turns the server logged from the moment
//! the line was sent until the turn that polled bob's writer.
//!
//! What to watch for: the line takes three turns. In the first, `epoll_wait` returns a
//! readable event for alice's socket and wakes her reader task; nothing is polled yet (what
//! that turn polled before it went to sleep came before the line and depends on timing, so it
//! is left out). In the
//! second, phase 2 polls that reader: it reads the line and hands it to the room, which queues
//! it for bob and wakes his writer task; the reactor is "not asked", since a task is ready. In
//! the third, phase 2 polls bob's writer, which writes the line to bob's socket; then the loop
//! sleeps in `epoll_wait` again, and that turn's line is printed only when the sleep ends.
//!
//! The trace is written to `target/one_line.trace.json` (or the path after `--trace`); the
//! program prints the window of the trace, in microseconds, that `chat-demo timeline
//! --from-us A --to-us B` needs to draw just this line.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The lines the server writes on stderr (its turn log), as they come.
type Log = Arc<Mutex<Vec<String>>>;

/// The line alice sends.
const LINE: &str = "hello, bob";

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut trace = PathBuf::from("target/one_line.trace.json");
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--trace", Some(path)) => trace = PathBuf::from(path),
            _ => return Err(io::Error::other("usage: one_line [--trace PATH]")),
        }
    }
    let exe = server_binary()?;
    let (mut server, port, turns) = start_server(&exe, &trace)?;
    println!("server: chat-demo serve --mode async, with STROLL_LOG=turns and STROLL_TRACE");

    let mut alice = Client::login(port, "alice")?;
    let mut bob = Client::login(port, "bob")?;
    alice.expect("* bob joined")?;
    println!("alice and bob are logged in");

    // Let the loop fall asleep, then remember where the log stands.
    settle(&turns);
    let mark = turns.lock().unwrap().len();
    let sent = Instant::now();
    alice.send(LINE)?;
    let received = bob.expect("alice: ")?;
    let took = sent.elapsed();
    println!(
        "alice sent {LINE:?}; bob received {:?} {} µs later",
        received.trim_end(),
        took.as_micros()
    );
    // Bob leaves, then alice: the turn that wrote the line ends with bob's end of file, and
    // the server has nobody left to say goodbye to when it stops.
    let (alice_port, bob_port) = (alice.port(), bob.port());
    drop(bob);
    settle(&turns);
    drop(alice);
    settle(&turns);
    stop(&mut server)?;

    let turns = turns.lock().unwrap().clone();
    println!("the server's turns from the moment the line was sent:");
    let bob_writer = format!("writer 127.0.0.1:{bob_port}");
    // The line's first turn is the one whose sleep alice's readable event ended. What that turn
    // polled before it slept depends on timing (the logins' last writes, or nothing if an
    // acknowledgement ended an earlier sleep), so it is left out.
    let alice_readable = format!("reactor: readable tcp 127.0.0.1:{alice_port}");
    let first = turns
        .iter()
        .skip(mark)
        .position(|line| line.contains(&alice_readable))
        .map_or(mark, |at| mark + at);
    for (i, line) in turns.iter().enumerate().skip(first) {
        if i == first {
            println!("  {}", without_polls(line));
        } else {
            println!("  {line}");
        }
        if i > first && line.contains(&bob_writer) {
            break;
        }
    }
    match line_window(&trace, alice_port, bob_port) {
        Some((from, to)) => println!(
            "trace: {}; the line's window: {from} to {to} µs after the server started",
            trace.display()
        ),
        None => println!(
            "trace: {} (the line's events were not found)",
            trace.display()
        ),
    }
    Ok(())
}

/// A turn's line with what it polled replaced by a note: "turn 11: polled (before the line,
/// left out); timeout ...".
fn without_polls(line: &str) -> String {
    match (line.split_once(": polled "), line.split_once("; timeout ")) {
        (Some((turn, _)), Some((_, rest))) => {
            format!("{turn}: polled (before the line, left out); timeout {rest}")
        }
        _ => line.to_string(),
    }
}

/// Builds the server (if needed) and returns its path, beside this example's directory.
fn server_binary() -> io::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "chat-demo", "--bin", "chat-demo"])
        .status()?;
    if !status.success() {
        return Err(io::Error::other("could not build chat-demo"));
    }
    let exe = std::env::current_exe()?;
    // target/debug/examples/one_line -> target/debug/chat-demo
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    Ok(dir.join("chat-demo"))
}

/// Starts the server with the turn log and the trace; returns it, its port and the lines it
/// writes on stderr (collected by a thread as they come).
fn start_server(exe: &Path, trace: &Path) -> io::Result<(Child, u16, Log)> {
    let mut server = Command::new(exe)
        .args(["serve", "--mode", "async", "--addr", "127.0.0.1:0"])
        .args(["--web-addr", "off"])
        .env("STROLL_LOG", "turns")
        .env("STROLL_TRACE", trace)
        .env_remove("STROLL_DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut first)?;
    // "chat-demo (async) listening on 127.0.0.1:PORT"
    let port = first.trim().rsplit(':').next().and_then(|p| p.parse().ok());
    let Some(port) = port else {
        let _ = server.kill();
        return Err(io::Error::other(format!(
            "no address from the server: {first:?}"
        )));
    };
    let turns = Arc::new(Mutex::new(Vec::new()));
    let collected = turns.clone();
    let stderr = server.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    Ok((server, port, turns))
}

/// Waits until the server has logged nothing new for 200 ms (at most 5 s).
fn settle(turns: &Mutex<Vec<String>>) {
    let start = Instant::now();
    let mut seen = turns.lock().unwrap().len();
    let mut quiet_since = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(20));
        let now = turns.lock().unwrap().len();
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_millis(200) {
            return;
        }
    }
}

/// Stops the server as Ctrl-C would (SIGTERM) and waits for it, at most 10 s.
fn stop(server: &mut Child) -> io::Result<()> {
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()?;
    let start = Instant::now();
    while server.try_wait()?.is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            server.kill()?;
            return Err(io::Error::other("the server did not stop"));
        }
        thread::sleep(Duration::from_millis(10));
    }
    // The stderr thread reads to the end of the pipe; give it a moment to finish.
    thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// A chat client over a plain blocking socket.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn login(port: u16, nick: &str) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut client = Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        client.expect("* welcome")?;
        client.send(nick)?;
        client.expect(&format!("* hello {nick}"))?;
        Ok(client)
    }

    /// The client's own port: the server names its tasks and socket after it.
    fn port(&self) -> u16 {
        self.writer.local_addr().map_or(0, |addr| addr.port())
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(format!("{line}\n").as_bytes())
    }

    /// Reads lines until one starts with `prefix`, and returns it.
    fn expect(&mut self, prefix: &str) -> io::Result<String> {
        for _ in 0..20 {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                break;
            }
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
        Err(io::Error::other(format!("no line starting {prefix:?}")))
    }
}

/// The events of the trace at `path` (a finished trace is a JSON array).
fn read_trace(path: &Path) -> Option<Vec<Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text).ok()? {
        Value::Array(events) => Some(events),
        _ => None,
    }
}

/// The window of the trace that holds the line: from 50 µs before the readable event that
/// woke alice's reader for it to 30 µs after bob's writer wrote it and the loop went back to
/// `epoll_wait`.
///
/// The line is found by its effect: the only wake of bob's writer caused by alice's reader.
fn line_window(path: &Path, alice_port: u16, bob_port: u16) -> Option<(u64, u64)> {
    let events = read_trace(path)?;
    let ts = |e: &Value| e["ts"].as_f64().unwrap_or(0.0);
    let end = |e: &Value| ts(e) + e["dur"].as_f64().unwrap_or(0.0);
    let lane = |name: &str| {
        events.iter().find_map(|e| {
            let named = e["ph"] == "M" && e["args"]["name"] == name;
            named.then(|| e["tid"].as_u64()).flatten()
        })
    };
    let reader = lane(&format!("client 127.0.0.1:{alice_port}"))?;
    let writer = lane(&format!("writer 127.0.0.1:{bob_port}"))?;
    let on = |e: &Value, tid: u64| e["tid"].as_u64() == Some(tid);
    let woken_by_reader = format!("task {reader}");
    let writer_wake = events.iter().find(|e| {
        on(e, writer) && e["name"] == "wake" && e["args"]["cause"] == woken_by_reader.as_str()
    })?;
    let readable = events.iter().rev().find(|e| {
        let cause = e["args"]["cause"].as_str().unwrap_or("");
        on(e, reader)
            && e["name"] == "wake"
            && ts(e) <= ts(writer_wake)
            && cause.starts_with("readable")
    })?;
    let write = events
        .iter()
        .find(|e| on(e, writer) && e["ph"] == "X" && ts(e) >= ts(writer_wake))?;
    let next_wait = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == "wait" && ts(e) >= end(write))
        .map(ts)
        .fold(f64::MAX, f64::min);
    let from = (ts(readable) - 50.0).max(0.0);
    let to = next_wait.min(end(write) + 100.0) + 30.0;
    Some((from as u64, to as u64))
}
