//! Exercise 4.1 ("The chat server on callbacks"): rip a thread's stack into a struct.
//!
//! `serve_on_a_thread` is the thread-per-connection version the exercise starts from: ask for a
//! name (the client has `LOGIN_TIMEOUT` to give it), then answer each line with `name: line`,
//! until `bye`. `serve_with_callbacks` is the solution: the same conversation for every client
//! from one thread on mio, the locals of `serve_on_a_thread` turned into the fields of `Conn`,
//! and where the thread stood in its code turned into `State`.

// ANCHOR: solution
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LOGIN_TIMEOUT: Duration = Duration::from_millis(300);

/// Where the conversation stands: what was the thread's position in its code.
enum State {
    /// Waiting for the name, until `deadline` (was: the read with a timeout).
    Naming { deadline: Instant },
    /// Echoing lines (was: the `while` loop, with `name` a local).
    Chatting { name: String },
    /// The last answer is being written; close once it is out (was: `return`).
    Closing,
}

/// What the thread's stack held, kept between events.
struct Conn {
    stream: TcpStream,
    state: State,
    /// Bytes received that do not yet make a whole line (was: inside the `BufReader`).
    inbox: Vec<u8>,
    /// Bytes to send that the socket has not taken yet (was: inside a blocked `write_all`).
    outbox: Vec<u8>,
}

const LISTENER: Token = Token(usize::MAX);

/// Serves every client from this thread until `connections` of them have been closed.
pub fn serve_with_callbacks(listener: std::net::TcpListener, connections: usize) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let (mut next_token, mut closed) = (0, 0);
    let mut events = Events::with_capacity(64);
    while closed < connections {
        // The earliest login deadline bounds the wait.
        let next_deadline = conns
            .values()
            .filter_map(|c| match c.state {
                State::Naming { deadline } => Some(deadline),
                _ => None,
            })
            .min();
        let timeout = next_deadline.map(|d| d.saturating_duration_since(Instant::now()));
        poll.poll(&mut events, timeout)?;
        let mut touched = Vec::new();
        for event in events.iter() {
            if event.token() == LISTENER {
                // Accept every waiting client (edge-triggered: until WouldBlock).
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = next_token;
                            next_token += 1;
                            poll.registry().register(
                                &mut stream,
                                Token(token),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            let deadline = Instant::now() + LOGIN_TIMEOUT;
                            conns.insert(
                                token,
                                Conn {
                                    stream,
                                    state: State::Naming { deadline },
                                    inbox: Vec::new(),
                                    outbox: b"name?\n".to_vec(),
                                },
                            );
                            touched.push(token);
                        }
                        Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                        Err(err) => return Err(err),
                    }
                }
            } else if let Some(conn) = conns.get_mut(&event.token().0) {
                if event.is_readable() || event.is_read_closed() {
                    on_readable(conn)?;
                }
                touched.push(event.token().0);
            }
        }
        // Timers: a client that gave no name in time is told so.
        let now = Instant::now();
        for (token, conn) in conns.iter_mut() {
            if matches!(conn.state, State::Naming { deadline } if deadline <= now) {
                conn.outbox.extend_from_slice(b"too slow\n");
                conn.state = State::Closing;
                touched.push(*token);
            }
        }
        // Write what is queued; close the connections that are done.
        for token in touched {
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            if on_writable(conn)? {
                let mut conn = conns.remove(&token).unwrap();
                let _ = conn.stream.shutdown(Shutdown::Write);
                poll.registry().deregister(&mut conn.stream)?;
                closed += 1;
            }
        }
    }
    Ok(())
}

/// Reads until `WouldBlock`, then runs the conversation over every whole line: the `match` on
/// `state` does what the thread's position in its code did.
fn on_readable(conn: &mut Conn) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                conn.state = State::Closing; // the client left
                return Ok(());
            }
            Ok(n) => conn.inbox.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    while let Some(end) = conn.inbox.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = conn.inbox.drain(..=end).collect();
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        match &conn.state {
            State::Naming { .. } => conn.state = State::Chatting { name: line },
            State::Chatting { name } if line == "bye" => {
                conn.outbox
                    .extend_from_slice(format!("bye, {name}\n").as_bytes());
                conn.state = State::Closing;
            }
            State::Chatting { name } => conn
                .outbox
                .extend_from_slice(format!("{name}: {line}\n").as_bytes()),
            State::Closing => {} // what comes after `bye` is dropped
        }
    }
    Ok(())
}

/// Writes the outbox until it is empty or the socket is full; says whether the connection is
/// finished (closing, and everything written).
fn on_writable(conn: &mut Conn) -> io::Result<bool> {
    while !conn.outbox.is_empty() {
        match conn.stream.write(&conn.outbox) {
            Ok(n) => {
                conn.outbox.drain(..n);
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ok(true), // the client is gone
        }
    }
    Ok(matches!(conn.state, State::Closing))
}

/// A client: connects, sends `say` (each after the previous answer), returns all it read.
fn client(addr: std::net::SocketAddr, say: &[&str]) -> String {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut lines = BufReader::new(&stream);
    let mut heard = String::new();
    lines.read_line(&mut heard).unwrap(); // name?
    for (i, line) in say.iter().enumerate() {
        (&stream).write_all(format!("{line}\n").as_bytes()).unwrap();
        if i > 0 {
            lines.read_line(&mut heard).unwrap(); // the answer (the name gets none)
        }
    }
    lines.read_to_string(&mut heard).unwrap(); // until the server closes
    heard
}

fn start(threads: bool, connections: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        if threads {
            let workers: Vec<_> = (0..connections)
                .map(|_| listener.accept().unwrap().0)
                .map(|s| std::thread::spawn(move || serve_on_a_thread(s).unwrap()))
                .collect();
            workers.into_iter().for_each(|w| w.join().unwrap());
        } else {
            serve_with_callbacks(listener, connections).unwrap();
        }
    });
    (addr, server)
}

const TALK: [&str; 3] = ["ann", "hi", "bye"];
const HEARD: &str = "name?\nann: hi\nbye, ann\n";

#[test]
fn both_versions_hold_the_same_conversation() {
    for threads in [true, false] {
        let (addr, server) = start(threads, 1);
        assert_eq!(client(addr, &TALK), HEARD, "threads: {threads}");
        server.join().unwrap();
    }
}

#[test]
fn both_versions_cut_off_a_client_that_gives_no_name() {
    for threads in [true, false] {
        let (addr, server) = start(threads, 1);
        let started = Instant::now();
        assert_eq!(client(addr, &[]), "name?\ntoo slow\n", "threads: {threads}");
        assert!(started.elapsed() >= LOGIN_TIMEOUT);
        server.join().unwrap();
    }
}

#[test]
fn one_thread_serves_a_silent_client_and_a_talking_one_at_once() {
    let (addr, server) = start(false, 2);
    let silent = std::thread::spawn(move || client(addr, &[]));
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    assert_eq!(client(addr, &TALK), HEARD);
    assert!(
        started.elapsed() < LOGIN_TIMEOUT,
        "the talking client waited behind the silent one"
    );
    assert_eq!(silent.join().unwrap(), "name?\ntoo slow\n");
    server.join().unwrap();
}
// ANCHOR_END: solution

// ANCHOR: thread_version
/// One connection, on its own thread, with blocking calls.
pub fn serve_on_a_thread(stream: std::net::TcpStream) -> io::Result<()> {
    let mut out = &stream;
    let mut lines = BufReader::new(&stream);
    out.write_all(b"name?\n")?;
    stream.set_read_timeout(Some(LOGIN_TIMEOUT))?;
    let mut name = String::new();
    match lines.read_line(&mut name) {
        Ok(0) => return Ok(()),
        Ok(_) => {}
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return out.write_all(b"too slow\n");
        }
        Err(err) => return Err(err),
    }
    let name = name.trim_end().to_string();
    stream.set_read_timeout(None)?;
    let mut line = String::new();
    while lines.read_line(&mut line)? > 0 {
        if line.trim_end() == "bye" {
            return out.write_all(format!("bye, {name}\n").as_bytes());
        }
        out.write_all(format!("{name}: {line}").as_bytes())?;
        line.clear();
    }
    Ok(())
}
// ANCHOR_END: thread_version
