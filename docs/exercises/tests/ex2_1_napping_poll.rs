//! Exercise 2.1 ("Non-blocking sockets and epoll"): the price of a nap. `busy_poll`'s loop,
//! with a 1 ms sleep after every pass over the sockets that found nothing.
//!
//! `serve` below is `chat-demo/examples/busy_poll.rs`'s loop with the nap as an option, and it
//! measures what the exercise asks about: the reads tried, the CPU time of the serving thread,
//! and how long each line waited between the client's `write` and the server's `read` (each
//! line carries the time it was sent, in microseconds since a shared start).
//!
//! The answers. With the nap, a pass costs a few system calls per millisecond instead of
//! millions per second, so the reads tried drop by orders of magnitude and the CPU time to
//! near nothing; every line still arrives. The latency is what was traded: a line that
//! arrives just after a pass waits out the nap, so up to 1 ms (plus the time `sleep`
//! oversleeps, and a pass). A shorter nap shortens the wait and burns more CPU again, with no
//! setting that gives both: to get both, the thread must sleep *until a socket has data*, and
//! only the kernel knows when that is. That is a readiness API, epoll, the rest of the chapter.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// What one run of the server measured.
#[derive(Debug)]
pub struct Report {
    pub lines: usize,
    pub tries: u64,
    pub empty: u64,
    /// CPU time of the serving thread (user + system, in 10 ms clock ticks).
    pub cpu: Duration,
    pub wall: Duration,
    /// The longest time a line waited between its `write` and the `read` that found it.
    pub max_wait: Duration,
}

/// Serves `conns` (non-blocking) for `run_for`, polling them in turn like `busy_poll`; with
/// `nap`, sleeps that long after every pass in which no read found anything. Lines are decimal
/// microseconds since `epoch`, when the client sent them.
pub fn serve(
    conns: &mut [TcpStream],
    run_for: Duration,
    nap: Option<Duration>,
    epoch: Instant,
) -> std::io::Result<Report> {
    let cpu_before = thread_cpu();
    let (mut tries, mut empty) = (0u64, 0u64);
    let mut max_wait = Duration::ZERO;
    let mut lines = 0;
    let mut partial: Vec<Vec<u8>> = vec![Vec::new(); conns.len()];
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while start.elapsed() < run_for {
        let mut found = false;
        for (conn, partial) in conns.iter_mut().zip(&mut partial) {
            tries += 1;
            match conn.read(&mut buf) {
                Ok(n) => {
                    found = true;
                    let now = epoch.elapsed();
                    partial.extend_from_slice(&buf[..n]);
                    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=end).collect();
                        let sent: u64 = std::str::from_utf8(&line[..end])
                            .ok()
                            .and_then(|text| text.parse().ok())
                            .expect("a line is a number of microseconds");
                        max_wait = max_wait.max(now.saturating_sub(Duration::from_micros(sent)));
                        lines += 1;
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => empty += 1,
                Err(err) => return Err(err),
            }
        }
        // The change the exercise asks for: a pass that found nothing is followed by a nap.
        if let (Some(nap), false) = (nap, found) {
            thread::sleep(nap);
        }
    }
    Ok(Report {
        lines,
        tries,
        empty,
        cpu: thread_cpu().saturating_sub(cpu_before),
        wall: start.elapsed(),
        max_wait,
    })
}

/// The calling thread's CPU time, from /proc/thread-self/stat (tests run on several threads,
/// so the process's total would count the others).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after_name = stat.rsplit(") ").next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11..13]
        .iter()
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10) // 100 clock ticks per second on Linux
}

const CLIENTS: usize = 5;
const RUN_FOR: Duration = Duration::from_millis(600);
/// Each client sends a line this often, for `RUN_FOR` minus a margin (so the last lines are
/// read before the server stops).
const EVERY: Duration = Duration::from_millis(20);

/// Connects `CLIENTS` clients that send timestamped lines, serves them, and returns the report
/// and how many lines the clients sent.
fn run(nap: Option<Duration>) -> (Report, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let epoch = Instant::now();
    let clients = thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..CLIENTS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let mut sent = 0;
        let start = Instant::now();
        while start.elapsed() < RUN_FOR - Duration::from_millis(100) {
            for stream in &mut streams {
                let line = format!("{}\n", epoch.elapsed().as_micros());
                stream.write_all(line.as_bytes()).unwrap();
                sent += 1;
            }
            thread::sleep(EVERY);
        }
        // Keep the connections open until the server is done.
        (streams, sent)
    });
    let mut conns: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let (stream, _) = listener.accept().unwrap();
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect();
    let report = serve(&mut conns, RUN_FOR, nap, epoch).unwrap();
    let (_streams, sent) = clients.join().unwrap();
    println!("nap {nap:?}: {report:?}, {sent} lines sent");
    (report, sent)
}

#[test]
fn a_nap_keeps_every_line_and_saves_reads_and_cpu() {
    let (busy, busy_sent) = run(None);
    let (napping, napping_sent) = run(Some(Duration::from_millis(1)));
    assert_eq!(busy.lines, busy_sent);
    assert_eq!(napping.lines, napping_sent);
    // At most one pass per millisecond of nap, plus the passes that found data.
    let passes = (napping.wall.as_millis() as u64) + napping.lines as u64;
    assert!(
        napping.tries <= passes * CLIENTS as u64,
        "{} tries in {:?}",
        napping.tries,
        napping.wall
    );
    assert!(
        busy.tries > 10 * napping.tries,
        "busy {} tries, napping {}",
        busy.tries,
        napping.tries
    );
    assert!(
        napping.cpu < napping.wall / 4,
        "napping used {:?} of CPU in {:?}",
        napping.cpu,
        napping.wall
    );
    assert!(
        busy.cpu > napping.cpu,
        "busy {:?}, napping {:?}",
        busy.cpu,
        napping.cpu
    );
}

#[test]
fn with_the_nap_a_line_waits_about_a_millisecond_at_most() {
    let (napping, _) = run(Some(Duration::from_millis(1)));
    // 1 ms of nap, plus what `sleep` oversleeps and a pass; generous for a loaded machine.
    assert!(
        napping.max_wait < Duration::from_millis(30),
        "a line waited {:?}",
        napping.max_wait
    );
}
