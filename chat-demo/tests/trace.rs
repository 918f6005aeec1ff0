//! Traces of a real chat: `STROLL_TRACE` on the async server, a scripted conversation, then
//! checks that the file is valid Chrome Trace Event Format, that it shows the polls and wake
//! causes the conversation must produce, and that `chat-demo timeline` draws it as well-formed
//! SVG with one lane per task. Also debug mode: a handler that blocks the loop (`/block`) is
//! named on stderr.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_chat-demo");

/// A test client: a socket with a line reader and a generous read timeout.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client {
            writer: stream,
            reader,
        }
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Reads lines until one starts with `prefix`.
    fn expect(&mut self, prefix: &str) -> String {
        for _ in 0..20 {
            let line = self.line();
            if line.starts_with(prefix) {
                return line;
            }
        }
        panic!("never got a line starting {prefix:?}");
    }
}

/// Starts the async server with one environment variable set (stderr piped); returns it and
/// its port.
fn start_async_server(var: &str, value: &std::ffi::OsStr) -> (Child, u16) {
    let mut server: Child = Command::new(BIN)
        .args([
            "serve",
            "--mode",
            "async",
            "--addr",
            "127.0.0.1:0",
            "--web-addr",
            "off",
        ])
        .env(var, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port: u16 = first.trim().rsplit(':').next().unwrap().parse().unwrap();
    (server, port)
}

/// Connects and logs in as `nick`.
fn login(port: u16, nick: &str) -> Client {
    let mut client = Client::connect(port);
    client.expect("* welcome");
    client.send(nick);
    client.expect(&format!("* hello {nick}"));
    client
}

/// Runs the async server with a trace, plays a short conversation, stops the server with
/// SIGINT, and returns the trace's path.
fn record_conversation(dir: &Path) -> PathBuf {
    let trace = dir.join("trace.json");
    let (mut server, port) = start_async_server("STROLL_TRACE", trace.as_os_str());
    let mut alice = login(port, "alice");
    let mut bob = login(port, "bob");
    alice.expect("* bob joined");
    alice.send("hello bob");
    assert_eq!(bob.line(), "alice: hello bob\n");

    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(server.wait().unwrap().success(), "the server exits 0");
    trace
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-demo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_traced_conversation_is_valid_and_shows_its_wakes() {
    let dir = scratch_dir("trace");
    let trace = record_conversation(&dir);
    let text = std::fs::read_to_string(&trace).unwrap();
    let events: Vec<Value> = match serde_json::from_str(&text) {
        Ok(Value::Array(events)) => events,
        other => panic!("the trace is not a JSON array: {other:?}"),
    };

    // Valid Trace Event Format: every event has a phase, a process and a lane; timed events
    // have a timestamp, complete events a duration.
    for event in &events {
        let ph = event["ph"].as_str().expect("ph");
        assert!(["X", "i", "M"].contains(&ph), "unexpected phase {ph}");
        assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
        assert!(event["name"].is_string(), "{event}");
        if ph != "M" {
            assert!(event["ts"].as_f64().is_some_and(|ts| ts >= 0.0), "{event}");
        }
        if ph == "X" {
            assert!(event["dur"].as_f64().is_some_and(|d| d >= 0.0), "{event}");
        }
    }

    // Lanes by name.
    let lanes: HashMap<u64, String> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let lane = |prefix: &str| -> Vec<u64> {
        lanes
            .iter()
            .filter(|(_, name)| name.starts_with(prefix))
            .map(|(tid, _)| *tid)
            .collect()
    };
    let reactor = lane("reactor");
    let accept = lane("accept loop");
    let clients = lane("client ");
    let writers = lane("writer ");
    assert_eq!((reactor.len(), accept.len()), (1, 1), "{lanes:?}");
    assert_eq!(clients.len(), 2, "one reader task per client: {lanes:?}");
    assert_eq!(writers.len(), 2, "one writer task per client: {lanes:?}");

    let polls_on = |tid: u64| {
        events
            .iter()
            .filter(|e| e["ph"] == "X" && e["tid"].as_u64() == Some(tid))
            .count()
    };
    let causes_on = |tid: u64| -> HashSet<String> {
        events
            .iter()
            .filter(|e| e["name"] == "wake" && e["tid"].as_u64() == Some(tid))
            .map(|e| e["args"]["cause"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(polls_on(reactor[0]) > 0, "the reactor lane has its waits");
    // The accept loop is woken by the listener becoming readable, once per connection.
    assert!(
        causes_on(accept[0])
            .iter()
            .any(|c| c.starts_with("readable tcp listener 127.0.0.1:")),
        "{:?}",
        causes_on(accept[0])
    );
    // Bob connects only after Alice is logged in, so they are accepted in different polls.
    assert!(polls_on(accept[0]) >= 2, "at least one poll per client");
    // Each client's reader is woken by its socket.
    for &client in &clients {
        let causes = causes_on(client);
        assert!(
            causes
                .iter()
                .any(|c| c.starts_with("readable tcp 127.0.0.1:")),
            "{causes:?}"
        );
    }
    // A broadcast: a reader task wakes another client's writer task.
    let client_ids: HashSet<String> = clients.iter().map(|id| format!("task {id}")).collect();
    let woken_by_a_reader = writers
        .iter()
        .any(|&writer| causes_on(writer).iter().any(|c| client_ids.contains(c)));
    assert!(
        woken_by_a_reader,
        "a writer woken by a client's reader task"
    );
    // Every poll says how it ended.
    for event in events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "poll")
    {
        let result = event["args"]["result"].as_str();
        assert!(matches!(result, Some("Ready" | "Pending")), "{event}");
    }

    // The picture: well-formed XML, one lane per traced lane.
    let svg_path = dir.join("timeline.svg");
    let rendered = Command::new(BIN)
        .args(["timeline"])
        .arg(&trace)
        .arg("-o")
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let svg_lanes: Vec<String> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("lane"))
        .map(|n| n.attribute("data-name").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        svg_lanes.len(),
        lanes.len(),
        "one lane per task plus the reactor"
    );
    for name in lanes.values() {
        assert!(svg_lanes.contains(name), "lane {name} missing from the SVG");
    }
    let bars = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .count();
    assert!(bars >= events.iter().filter(|e| e["ph"] == "X").count());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debug_mode_names_a_handler_that_blocks_the_loop() {
    let (mut server, port) = start_async_server("STROLL_DEBUG", "1".as_ref());
    let mut alice = login(port, "alice");
    alice.send("/block 300");
    alice.expect("* blocking the server's thread for 300 ms");
    alice.send("/who");
    alice.expect("* online: alice");
    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(server.wait().unwrap().success());
    let warning = stderr
        .lines()
        .find(|line| line.contains("slow poll"))
        .unwrap_or_else(|| panic!("no slow-poll warning on stderr:\n{stderr}"));
    assert!(
        warning.contains("'client 127.0.0.1:"),
        "names the task: {warning}"
    );
    assert!(
        warning.contains("on_stroll.rs"),
        "names where it was spawned: {warning}"
    );
}
