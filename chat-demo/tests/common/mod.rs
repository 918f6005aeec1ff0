//! Helpers for the black-box tests of `chat-demo`: a [`Server`] guard that runs the real binary
//! as a child process (and kills it when dropped, even when a test fails), a line-oriented
//! [`Client`] over a plain `std::net::TcpStream`, and [`for_each_mode`], which runs one test body
//! against every server mode and reports all the modes that failed.
//!
//! Everything that waits is bounded: sockets have read and write timeouts ([`IO_TIMEOUT`]),
//! and waiting for the server's output or exit has a deadline, so no test can hang.

// Each test file compiles its own copy of this module and may use only part of it.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The four ways the server can run; every protocol test runs against each.
pub const MODES: [&str; 4] = ["threads", "callbacks", "state-machine", "async"];

/// The longest any single read, write or wait for the server may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `test` once per mode. A failing mode does not hide the others: each runs, and at the
/// end the test fails naming every mode that failed (each one's panic message is printed above
/// that summary).
pub fn for_each_mode(modes: &[&'static str], test: impl Fn(&'static str)) {
    let mut failed = Vec::new();
    for &mode in modes {
        let started = Instant::now();
        match panic::catch_unwind(AssertUnwindSafe(|| test(mode))) {
            Ok(()) => eprintln!("[{mode}] passed in {:.2?}", started.elapsed()),
            Err(_) => {
                eprintln!("[{mode}] FAILED after {:.2?}", started.elapsed());
                failed.push(mode);
            }
        }
    }
    assert!(
        failed.is_empty(),
        "failed in mode(s) {failed:?}; see each mode's panic message above"
    );
}

/// A running `chat-demo serve`. Dropping it kills the process.
pub struct Server {
    pub mode: &'static str,
    pub addr: SocketAddr,
    child: Child,
    /// Lines the server wrote on stderr, as a background thread reads them.
    stderr_lines: Receiver<String>,
    /// The stderr lines received so far.
    stderr_seen: Vec<String>,
    /// Stdout lines after the first, as a background thread reads them.
    stdout_lines: Option<Receiver<String>>,
}

impl Server {
    /// Starts `chat-demo serve --mode <mode> --addr 127.0.0.1:0 <extra...>` and waits until it
    /// says which port it listens on.
    pub fn start(mode: &'static str, extra: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat-demo"));
        command.args(serve_args(mode, extra));
        Server::spawn(mode, command)
    }

    /// Like [`Server::start`], but the server may open at most `max_files` file descriptors
    /// (`ulimit -n` in a shell that then `exec`s the server, so the pid is the server's).
    pub fn start_with_fd_limit(mode: &'static str, max_files: u32, extra: &[&str]) -> Server {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!("ulimit -n {max_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_chat-demo"))
            .args(serve_args(mode, extra));
        Server::spawn(mode, command)
    }

    fn spawn(mode: &'static str, mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("[{mode}] cannot start the server: {err}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_lines = forward_lines(BufReader::new(stderr));
        // Kill the child if anything below fails: build the guard first.
        let mut server = Server {
            mode,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            stderr_lines,
            stderr_seen: Vec::new(),
            stdout_lines: None,
        };
        server.addr = server.read_address(stdout);
        server
    }

    /// Reads `chat-demo (<mode>) listening on 127.0.0.1:PORT` from the first stdout line.
    fn read_address(&mut self, stdout: ChildStdout) -> SocketAddr {
        let mode = self.mode;
        let stdout_lines = forward_lines(BufReader::new(stdout));
        let first = match stdout_lines.recv_timeout(IO_TIMEOUT) {
            Ok(line) => line,
            Err(err) => panic!(
                "[{mode}] the server printed no address ({err:?}); stderr: {:?}",
                self.stderr_until_exit()
            ),
        };
        // The reading thread keeps draining stdout, so the server never blocks on it.
        self.stdout_lines = Some(stdout_lines);
        let prefix = format!("chat-demo ({mode}) listening on ");
        let addr = first
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("[{mode}] unexpected first line {first:?}"));
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|err| panic!("[{mode}] bad address in {first:?}: {err}"));
        assert!(
            addr.ip().is_loopback() && addr.port() != 0,
            "[{mode}] the server should listen on a loopback port: {first:?}"
        );
        addr
    }

    /// The web client's address, from the `or open http://ADDR/ in a browser` line.
    pub fn web_addr(&mut self) -> SocketAddr {
        let mode = self.mode;
        let lines = self.stdout_lines.as_ref().expect("stdout is read");
        loop {
            let line = lines
                .recv_timeout(IO_TIMEOUT)
                .unwrap_or_else(|err| panic!("[{mode}] no web address printed ({err:?})"));
            if let Some(rest) = line.strip_prefix("or open http://") {
                let addr = rest.trim_end_matches(" in a browser").trim_end_matches('/');
                return addr.parse().expect("a socket address");
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`INT`, `TERM`...) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|err| panic!("[{}] cannot run kill: {err}", self.mode));
        assert!(status.success(), "[{}] kill -{name} failed", self.mode);
    }

    /// Waits (at most [`IO_TIMEOUT`]) for the server to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10)); // polling the exit, bounded
                }
                Ok(None) => panic!("[{}] the server did not exit in time", self.mode),
                Err(err) => panic!("[{}] cannot wait for the server: {err}", self.mode),
            }
        }
    }

    /// Every line the server has written on stderr so far.
    pub fn stderr(&mut self) -> &[String] {
        while let Ok(line) = self.stderr_lines.try_recv() {
            self.stderr_seen.push(line);
        }
        &self.stderr_seen
    }

    /// How many stderr lines so far contain `needle` (ignoring case).
    pub fn stderr_count(&mut self, needle: &str) -> usize {
        let needle = needle.to_lowercase();
        self.stderr()
            .iter()
            .filter(|line| line.to_lowercase().contains(&needle))
            .count()
    }

    /// After the server died: whatever it said on stderr.
    fn stderr_until_exit(&mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => self.stderr_seen.push(line),
                Err(_) => break,
            }
        }
        self.stderr_seen.clone()
    }

    /// CPU time the server has used so far (user + system, all threads), from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .unwrap_or_else(|err| panic!("[{}] cannot read /proc/PID/stat: {err}", self.mode));
        // `pid (comm) state ppid ...`: comm may hold spaces, so count fields after the `)`.
        let after_comm = &stat[stat.rfind(')').expect("stat has (comm)") + 1..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        // Fields 14 and 15 of the whole line (utime, stime) are 11 and 12 after `)`.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            let mode = self.mode;
            for line in self.stderr() {
                eprintln!("[{mode}] server stderr: {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_args<'a>(mode: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["serve", "--mode", mode];
    if !extra.contains(&"--addr") {
        args.extend_from_slice(&["--addr", "127.0.0.1:0"]);
    }
    // Many servers run at once: none takes the web client's fixed default port unless asked.
    if !extra.contains(&"--web-addr") {
        args.extend_from_slice(&["--web-addr", "off"]);
    }
    args.extend_from_slice(extra);
    args
}

/// Reads lines on a background thread and sends them, so that waiting for one can time out.
fn forward_lines(reader: impl BufRead + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn clock_ticks_per_second() -> u64 {
    let output = Command::new("getconf").arg("CLK_TCK").output();
    output
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// Where a server listens, and in which mode: a `Copy` that threads can share (a [`Server`]
/// cannot be shared, it owns the child process).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub mode: &'static str,
    pub addr: SocketAddr,
}

/// Anything clients can connect to: a [`Server`] or its [`Target`].
pub trait Reach {
    fn target(&self) -> Target;
}

impl Reach for Server {
    fn target(&self) -> Target {
        Target {
            mode: self.mode,
            addr: self.addr,
        }
    }
}

impl Reach for Target {
    fn target(&self) -> Target {
        *self
    }
}

/// One chat client: a TCP connection read line by line.
///
/// Every method that expects something panics, with the mode and the client's name in the
/// message, if it does not arrive within [`IO_TIMEOUT`].
pub struct Client {
    /// `[mode] name`, the start of every assertion message.
    label: String,
    stream: TcpStream,
    /// Bytes received but not yet returned; `start` is where the unread part begins.
    pending: Vec<u8>,
    start: usize,
    /// Everything received, when recording (see [`Client::record`]).
    transcript: Option<Vec<u8>>,
}

impl Client {
    /// Connects without reading anything.
    pub fn connect(server: &impl Reach, name: &str) -> Client {
        let Target { mode, addr } = server.target();
        let label = format!("[{mode}] {name}");
        let stream =
            TcpStream::connect(addr).unwrap_or_else(|err| panic!("{label}: cannot connect: {err}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            label,
            stream,
            pending: Vec::new(),
            start: 0,
            transcript: None,
        }
    }

    /// Connects and reads the greeting: a notice asking for a nickname.
    pub fn greeted(server: &impl Reach, name: &str) -> Client {
        let mut client = Client::connect(server, name);
        client.expect_greeting();
        client
    }

    /// Connects, reads the greeting and logs in as `nick`.
    pub fn login(server: &impl Reach, nick: &str) -> Client {
        let mut client = Client::greeted(server, nick);
        client.send_line(nick);
        client.expect_welcome(nick);
        client
    }

    /// Logs `alice` in, then `bob`, and waits until alice has seen bob join: the start of most
    /// protocol tests.
    pub fn alice_and_bob(server: &Server) -> (Client, Client) {
        let mut alice = Client::login(server, "alice");
        let bob = Client::login(server, "bob");
        alice.expect_line("* bob joined");
        (alice, bob)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// From now on, keep a copy of every byte received.
    pub fn record(&mut self) {
        self.transcript.get_or_insert_with(Vec::new);
    }

    /// Everything received since [`Client::record`].
    pub fn transcript(&self) -> &[u8] {
        self.transcript.as_deref().unwrap_or_default()
    }

    /// A second handle on the connection, for writing from another thread.
    pub fn writer(&self) -> TcpStream {
        self.stream.try_clone().expect("clone the stream")
    }

    pub fn send_line(&mut self, text: &str) {
        self.send_raw(format!("{text}\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(err) = (&self.stream).write_all(bytes) {
            panic!("{}: cannot send {} bytes: {err}", self.label, bytes.len());
        }
    }

    /// Half-closes the connection: the server reads end of file.
    pub fn shutdown_write(&self) {
        if let Err(err) = self.stream.shutdown(Shutdown::Write) {
            panic!(
                "{}: cannot half-close ({err}): did the server reset the connection?",
                self.label
            );
        }
    }

    /// Closes the connection with a reset (RST) instead of a normal close (FIN).
    pub fn reset(self) {
        let socket = socket2::SockRef::from(&self.stream);
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        drop(self);
    }

    /// The next line, without its `\n`, as bytes.
    pub fn read_line_bytes(&mut self) -> Vec<u8> {
        self.read_line_bytes_for("a line")
    }

    /// The next line; `what` says in a failure message what was awaited.
    fn read_line_bytes_for(&mut self, what: &str) -> Vec<u8> {
        loop {
            if let Some(line) = self.next_buffered_line() {
                return line;
            }
            match self.fill() {
                Ok(0) => panic!(
                    "{}: connection closed while waiting for {what} (unterminated: {:?})",
                    self.label,
                    String::from_utf8_lossy(&self.pending[self.start..])
                ),
                Ok(_) => {}
                Err(err) => panic!(
                    "{}: no complete line within {IO_TIMEOUT:?} while waiting for {what} \
                     ({err}); unterminated: {:?}",
                    self.label,
                    String::from_utf8_lossy(&self.pending[self.start..])
                ),
            }
        }
    }

    /// The next line, without its `\n`. It must be valid UTF-8: the server never sends
    /// anything else.
    pub fn read_line(&mut self) -> String {
        self.read_line_for("a line")
    }

    fn read_line_for(&mut self, what: &str) -> String {
        let bytes = self.read_line_bytes_for(what);
        String::from_utf8(bytes).unwrap_or_else(|err| {
            panic!(
                "{}: the server sent invalid UTF-8: {:?}",
                self.label,
                String::from_utf8_lossy(err.as_bytes())
            )
        })
    }

    /// The next line if one arrives within `wait`, `None` otherwise. A short, bounded look
    /// for something that should (or should not) have arrived.
    pub fn read_line_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let result = loop {
            if let Some(line) = self.next_buffered_line() {
                break Some(String::from_utf8_lossy(&line).into_owned());
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break None;
            };
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.fill() {
                Ok(0) => panic!("{}: connection closed unexpectedly", self.label),
                Ok(_) => {}
                Err(err) if is_timeout(&err) => {}
                Err(err) => panic!("{}: read failed: {err}", self.label),
            }
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        result
    }

    /// The next line must be exactly `expected` (its `\n` aside).
    pub fn expect_line(&mut self, expected: &str) {
        let line = self.read_line_for(&format!("{expected:?}"));
        assert_eq!(line, expected, "{}: unexpected line", self.label);
    }

    /// The next line must start with `prefix`; returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self.read_line_for(&format!("a line starting {prefix:?}"));
        assert!(
            line.starts_with(prefix),
            "{}: expected a line starting {prefix:?}, got {line:?}",
            self.label
        );
        line
    }

    /// The greeting: a notice asking for a nickname.
    pub fn expect_greeting(&mut self) {
        let line = self.expect_prefix("* ");
        assert!(
            line.contains("nickname"),
            "{}: the greeting should ask for a nickname: {line:?}",
            self.label
        );
    }

    /// The answer to an accepted nickname: a notice containing it.
    pub fn expect_welcome(&mut self, nick: &str) {
        let line = self.expect_prefix("* ");
        assert!(
            line.contains(nick),
            "{}: the welcome should name {nick:?}: {line:?}",
            self.label
        );
    }

    /// The next line is `* online: ...`; returns the nicknames in it, sorted.
    pub fn expect_online(&mut self) -> Vec<String> {
        let line = self.expect_prefix("* online: ");
        let mut nicks: Vec<String> = line["* online: ".len()..]
            .split(", ")
            .map(str::to_string)
            .collect();
        nicks.sort();
        nicks
    }

    /// Sends `/who` and checks the answer lists exactly `nicks` (in any order).
    pub fn expect_who(&mut self, nicks: &[&str]) {
        self.send_line("/who");
        let online = self.expect_online();
        let mut expected: Vec<&str> = nicks.to_vec();
        expected.sort();
        assert_eq!(online, expected, "{}: /who", self.label);
    }

    /// The server must close the connection now: nothing more arrives, then end of file.
    pub fn expect_eof(&mut self) {
        let rest = self.read_until_eof();
        assert!(
            rest.is_empty(),
            "{}: expected end of file, got {:?}",
            self.label,
            String::from_utf8_lossy(&rest)
        );
    }

    /// Everything the server still sends, up to a clean end of file.
    pub fn read_until_eof(&mut self) -> Vec<u8> {
        match self.read_until_closed() {
            Ok(rest) => rest,
            Err(err) => panic!("{}: expected end of file, got {err}", self.label),
        }
    }

    /// Everything the server still sends until it closes the connection, by end of file
    /// (`Ok`) or by a reset (`Err`). Panics if the connection stays open.
    pub fn read_until_closed(&mut self) -> Result<Vec<u8>, io::Error> {
        let mut rest = self.pending.split_off(self.start);
        self.pending.clear();
        self.start = 0;
        let mut chunk = vec![0; 64 * 1024];
        loop {
            match (&self.stream).read(&mut chunk) {
                Ok(0) => return Ok(rest),
                Ok(n) => {
                    rest.extend_from_slice(&chunk[..n]);
                    if let Some(transcript) = &mut self.transcript {
                        transcript.extend_from_slice(&chunk[..n]);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_timeout(&err) => panic!(
                    "{}: the server did not close the connection within {IO_TIMEOUT:?}",
                    self.label
                ),
                Err(err) => return Err(err),
            }
        }
    }

    fn next_buffered_line(&mut self) -> Option<Vec<u8>> {
        let unread = &self.pending[self.start..];
        let newline = unread.iter().position(|&b| b == b'\n')?;
        let line = unread[..newline].to_vec();
        self.start += newline + 1;
        Some(line)
    }

    /// One read from the socket into `pending`.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.pending.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match (&self.stream).read(&mut chunk) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        self.pending.extend_from_slice(&chunk[..n]);
        if let Some(transcript) = &mut self.transcript {
            transcript.extend_from_slice(&chunk[..n]);
        }
        Ok(n)
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Joins a thread, passing its panic on to the caller.
pub fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    match handle.join() {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Waits for a message from a helper thread, at most [`IO_TIMEOUT`].
pub fn recv<T>(rx: &Receiver<T>, label: &str, what: &str) -> T {
    match rx.recv_timeout(IO_TIMEOUT) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("{label}: {what} did not happen in time"),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("{label}: the thread waiting for {what} stopped (see its panic above)")
        }
    }
}

/// Writes `chunk` to `stream` over and over until `stop` is set or the connection fails; a
/// client that is still sending when the server ends its connection. Each write waits at most
/// 50 ms, so a server that stopped reading does not keep this thread from seeing `stop`
/// (the timeout is the socket's: set the client's own timeout again if it writes later).
/// Returns how many bytes were sent.
pub fn keep_sending(mut stream: TcpStream, chunk: &[u8], stop: &AtomicBool) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut sent = 0;
    while !stop.load(Ordering::SeqCst) {
        match stream.write(chunk) {
            Ok(n) => sent += n,
            Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    sent
}

/// Sends `chunk` over and over for `how_long` (or until the connection fails).
pub fn send_for(stream: TcpStream, chunk: &[u8], how_long: Duration) -> usize {
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let sender = scope.spawn(|| keep_sending(stream, chunk, &stop));
        thread::sleep(how_long); // the duration is what is being tested: sending that long
        stop.store(true, Ordering::SeqCst);
        join(sender)
    })
}

/// Sets an `AtomicBool` when dropped: stops helper threads even when the test panics.
pub struct SetOnDrop<'a>(pub &'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Open descriptors and threads of a process, from /proc (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub fds: usize,
    pub threads: usize,
}

impl Footprint {
    pub fn of(pid: u32) -> Footprint {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| dir.count())
            .unwrap_or_else(|err| panic!("cannot list /proc/{pid}/fd: {err}"));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|err| panic!("cannot read /proc/{pid}/status: {err}"));
        let threads = status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a Threads: line");
        Footprint { fds, threads }
    }

    /// Polls the process until its footprint is `expected` again; panics after `limit`.
    pub fn wait_for(pid: u32, expected: Footprint, limit: Duration, label: &str) {
        let deadline = Instant::now() + limit;
        loop {
            let now = Footprint::of(pid);
            if now == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{label}: the server holds {now:?} {limit:?} after the churn, not {expected:?}"
            );
            thread::sleep(Duration::from_millis(20)); // polling /proc, bounded by `limit`
        }
    }
}
