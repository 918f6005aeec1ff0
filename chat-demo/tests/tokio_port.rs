//! The tokio port of the async server (`examples/tokio_chat/`, the book's chapter "Graduating
//! to tokio") really serves the protocol: two clients log in and exchange a line, and it stops
//! on SIGINT, saying goodbye.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Client, Target, IO_TIMEOUT};

/// The example's binary, built if need be (`cargo test` builds examples, but a run of this
/// test alone does not).
fn example_binary() -> PathBuf {
    // target/debug/deps/tokio_port-HASH -> target/debug/examples/tokio_chat
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir.join("examples").join("tokio_chat");
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "chat-demo", "--example", "tokio_chat"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cannot build the tokio_chat example");
    }
    binary
}

/// The running example; killed when dropped, even if the test fails.
struct Port(Child);

impl Drop for Port {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Port {
    /// Starts the port on a free loopback port and reads the address it announces.
    fn start() -> (Port, SocketAddr) {
        let mut child = Command::new(example_binary())
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let port = Port(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(IO_TIMEOUT)
            .expect("the port prints its address");
        let addr = first
            .strip_prefix("chat-demo (tokio) listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .expect("a socket address");
        (port, addr)
    }

    /// Sends SIGINT, as Ctrl-C would.
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits, bounded, for the exit.
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait works") {
                return status;
            }
            assert!(Instant::now() < deadline, "the port did not exit in time");
            std::thread::sleep(Duration::from_millis(10)); // polling the exit, bounded
        }
    }
}

#[test]
fn two_clients_chat_through_the_tokio_port() {
    let (mut port, addr) = Port::start();
    let target = Target {
        mode: "tokio",
        addr,
    };
    let mut alice = Client::login(&target, "alice");
    let mut bob = Client::login(&target, "bob");
    alice.expect_line("* bob joined");
    alice.send_line("hello bob");
    bob.expect_line("alice: hello bob");
    bob.send_line("hi alice");
    alice.expect_line("bob: hi alice");
    bob.send_line("/quit");
    bob.expect_line("* bye");
    bob.expect_eof();
    drop(bob);
    alice.expect_line("* bob left");
    // Shutdown: alice is told, then sees end of file, and the server exits cleanly.
    port.interrupt();
    alice.expect_line("* server shutting down");
    alice.expect_eof();
    drop(alice);
    let status = port.wait();
    assert!(status.success(), "the port exited with {status}");
}
