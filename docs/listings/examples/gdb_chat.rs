//! gdb_chat: run one of the debugging chapter's gdb command files against the chat server,
//! with a client that logs in and talks, so that the walkthrough runs without a second
//! terminal and stops by itself.
//!
//! Run it from the repository root, after building the server's debug binary:
//!
//! ```text
//! cargo build -q -p chat-demo
//! cargo run -q -p book-listings --example gdb_chat -- docs/debugging/future.gdb
//! cargo run -q -p book-listings --example gdb_chat -- docs/debugging/tasks.gdb
//! ```
//!
//! It starts `rust-gdb -batch -x SCRIPT --args target/debug/chat-demo serve --addr
//! 127.0.0.1:0 --web-addr off` (a free port on the loopback interface, and no web client, whose
//! fixed port another server may hold) and prints what gdb and the server write on stdout,
//! line by line. gdb's stderr (warnings about its symbol tables) is dropped.
//! As soon as the server says where it listens, a client connects, reads the greeting, sends
//! the nickname `alice`, waits for the welcome and sends the line `hello there`: the same two
//! lines you would type into `nc`. The command file stops the server at a breakpoint, prints
//! what it prints, kills the server and quits; then the program says what the client got.
//!
//! What to watch for: everything between `run` and `kill` is the command file's output; the
//! chapter explains it.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

const SERVER: &str = "target/debug/chat-demo";

fn main() -> io::Result<()> {
    let script = match std::env::args().nth(1) {
        Some(script) => script,
        None => return Err(io::Error::other("usage: gdb_chat SCRIPT.gdb")),
    };
    if !Path::new(SERVER).exists() {
        return Err(io::Error::other(format!(
            "{SERVER} is missing: run `cargo build -p chat-demo` from the repository root"
        )));
    }
    let args = ["serve", "--addr", "127.0.0.1:0", "--web-addr", "off"];
    println!(
        "gdb_chat: rust-gdb -batch -x {script} --args {SERVER} {}",
        args.join(" ")
    );
    let mut gdb = Command::new("rust-gdb")
        .args(["-batch", "-x", &script, "--args", SERVER])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| io::Error::other(format!("cannot start rust-gdb: {err}")))?;
    let gdb_out = BufReader::new(gdb.stdout.take().expect("stdout is piped"));
    let mut client = None;
    let stdout = io::stdout();
    for line in gdb_out.lines() {
        let line = line?;
        writeln!(stdout.lock(), "{line}")?;
        if let Some(addr) = line.trim().strip_prefix("chat-demo (async) listening on ") {
            let addr = addr.to_string();
            client = Some(thread::spawn(move || talk(&addr)));
        }
    }
    gdb.wait()?;
    match client {
        None => println!("gdb_chat: the server never said where it listens"),
        Some(client) => match client.join().expect("the client thread panicked") {
            Ok(lines) => println!(
                "gdb_chat: the client got {} line(s): {lines:?}",
                lines.len()
            ),
            Err(err) => println!("gdb_chat: the client failed: {err}"),
        },
    }
    Ok(())
}

/// Logs in as alice and says hello; returns the lines the server sent before it went away.
fn talk(addr: &str) -> io::Result<Vec<String>> {
    let mut stream = TcpStream::connect(addr)?;
    // Bounded: if a command file never kills the server, the client gives up.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut got = Vec::new();
    let mut read = |got: &mut Vec<String>| -> bool {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => {
                got.push(line.trim_end().to_string());
                true
            }
            _ => false,
        }
    };
    // The greeting, which asks for a nickname.
    if !read(&mut got) {
        return Ok(got);
    }
    stream.write_all(b"alice\n")?;
    // The welcome; a command file that stops at the nickname never lets it come.
    if !read(&mut got) {
        return Ok(got);
    }
    // The server may already be stopped, or gone: a failed write is not the client's error.
    let _ = stream.write_all(b"hello there\n");
    while read(&mut got) {}
    Ok(got)
}
