//! Mode `threads`: the classic style. `std::net`, blocking calls, one thread per connection
//! (and a second one to write to it), the room behind a `Mutex`.
//!
//! Each connection's state lives on its thread's stack: the read buffer, the line reader, the
//! login deadline are plain local variables of `handle_client`, and "where are we in the
//! conversation" is simply where the thread is in the code (its program counter). That is
//! what makes this style easy to read, and what makes it costly: every connection pays for
//! two stacks and two kernel threads, however idle it is.
//!
//! Why a writer thread per client: if the reader of one client wrote the broadcast to every
//! other client itself, one client that stops reading would block that write, and with it the
//! room. Instead, lines go into each client's bounded queue ([`OutQueue`]), and the client's
//! own writer thread, woken by a condition variable, writes them out.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::{say, Frame, LineReader};
use crate::room::{ClientId, Flow, Limits, Line, OutQueue, Outbox, Overflow, Room};
use crate::server::{self, BackoffReport, SHUTDOWN_FLUSH_LIMIT};

/// How many bytes one read may take from the socket.
const READ_BUFFER: usize = 4096;

type SharedRoom = Arc<Mutex<Room<Arc<ThreadOutbox>>>>;

/// Locks a mutex; a thread that panicked while holding it does not stop the others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A client's outgoing queue here: the queue behind a mutex, and a condition variable its
/// writer thread sleeps on.
pub struct ThreadOutbox {
    queue: Mutex<OutQueue>,
    changed: Condvar,
    /// The connection, so that cutting a client off can close it and unblock both threads.
    stream: Arc<TcpStream>,
}

impl Outbox for Arc<ThreadOutbox> {
    fn push(&self, line: &Line) -> Result<(), Overflow> {
        let mut queue = lock(&self.queue);
        // The writer only sleeps on an empty queue: if lines were already waiting, it is awake
        // and will take this one too. (Each notify is a system call; a join announced to
        // thousands of clients would otherwise make thousands.)
        let writer_may_sleep = !queue.has_lines();
        queue.push(line)?;
        drop(queue);
        if writer_may_sleep {
            self.changed.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        lock(&self.queue).close();
        self.changed.notify_one();
    }

    fn cut_off(&self) {
        lock(&self.queue).cut_off();
        // Unblocks the reader (end of file) and a writer stuck in `write` (an error).
        let _ = self.stream.shutdown(Shutdown::Both);
        self.changed.notify_one();
    }
}

/// Runs the server in this mode until SIGINT/SIGTERM. `stack_size` is each thread's stack
/// (`None`: the standard library's default, 2 MiB).
pub fn serve(listener: TcpListener, limits: Limits, stack_size: Option<usize>) -> io::Result<()> {
    let signals = server::register_shutdown_signals()?;
    server::announce("threads", listener.local_addr()?);
    let room: SharedRoom = Arc::new(Mutex::new(Room::new(limits.clone())));
    let writers_live = Arc::new(AtomicUsize::new(0));
    {
        let room = room.clone();
        let writers_live = writers_live.clone();
        thread::spawn(move || {
            server::wait_for_shutdown_signal(signals);
            shut_down(&room, &writers_live);
        });
    }
    let mut report = BackoffReport::default();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                if let Some(wait) = report.failed(&err) {
                    thread::sleep(wait);
                }
                continue;
            }
        };
        report.accepted();
        // Chat lines are small and the writer already batches them: send at once rather than
        // wait for the previous segment's acknowledgement (Nagle).
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            stream: Arc::new(stream),
            room: room.clone(),
            limits: limits.clone(),
            stack_size,
            writers_live: writers_live.clone(),
        };
        let started = spawn_thread(stack_size, move || connection.run());
        if let Err(err) = started {
            eprintln!("chat-demo: could not start a thread for a connection: {err}");
        }
    }
}

/// Tells every client goodbye, waits (a little) for their writers to flush, and exits.
fn shut_down(room: &SharedRoom, writers_live: &AtomicUsize) -> ! {
    lock(room).shutdown();
    let start = Instant::now();
    while writers_live.load(Ordering::SeqCst) > 0 && start.elapsed() < SHUTDOWN_FLUSH_LIMIT {
        thread::sleep(Duration::from_millis(5));
    }
    std::process::exit(0);
}

fn spawn_thread(
    stack_size: Option<usize>,
    body: impl FnOnce() + Send + 'static,
) -> io::Result<thread::JoinHandle<()>> {
    let mut builder = thread::Builder::new();
    if let Some(size) = stack_size {
        builder = builder.stack_size(size);
    }
    builder.spawn(body)
}

/// What a connection's thread starts with.
struct Connection {
    stream: Arc<TcpStream>,
    room: SharedRoom,
    limits: Limits,
    stack_size: Option<usize>,
    writers_live: Arc<AtomicUsize>,
}

impl Connection {
    /// The connection's thread: join the room, start the writer, read until the client leaves.
    fn run(self) {
        let outbox = Arc::new(ThreadOutbox {
            queue: Mutex::new(OutQueue::new(self.limits.max_queue)),
            changed: Condvar::new(),
            stream: self.stream.clone(),
        });
        let connected = lock(&self.room).connect(outbox.clone());
        let Some(id) = connected else {
            reject_full(&self.stream);
            return;
        };
        self.writers_live.fetch_add(1, Ordering::SeqCst);
        let writer = {
            let stream = self.stream.clone();
            let writers_live = self.writers_live.clone();
            spawn_thread(self.stack_size, move || {
                write_outbox(&stream, &outbox);
                writers_live.fetch_sub(1, Ordering::SeqCst);
            })
        };
        let Ok(writer) = writer else {
            self.writers_live.fetch_sub(1, Ordering::SeqCst);
            lock(&self.room).disconnect(id);
            return;
        };
        handle_client(&self.stream, &self.room, &self.limits, id);
        // Wait until everything queued for the client has been written.
        let _ = writer.join();
    }
}

// ANCHOR: handle_client
/// Reads lines until the client leaves, handing each to the room. All of the connection's
/// state is in this function's locals, on this thread's stack.
fn handle_client(stream: &TcpStream, room: &SharedRoom, limits: &Limits, id: ClientId) {
    let mut buf = [0u8; READ_BUFFER];
    let mut lines = LineReader::new(limits.max_line);
    let mut frames = Vec::new();
    let login_deadline = Instant::now() + limits.login_timeout;
    let mut logged_in = false;
    loop {
        // Until the client has a nickname, a read may only wait until the login deadline.
        if !logged_in {
            logged_in = lock(room).is_logged_in(id);
            let wait = if logged_in {
                None
            } else {
                let left = login_deadline.saturating_duration_since(Instant::now());
                Some(left.max(Duration::from_millis(1))) // zero would mean "no timeout"
            };
            let _ = stream.set_read_timeout(wait);
        }
        let n = match (&*stream).read(&mut buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(err) if is_timeout(&err) && !logged_in => {
                lock(room).login_timeout(id);
                return;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => 0, // A reset: treat it like end of file.
        };
        if n == 0 {
            lock(room).disconnect(id);
            return;
        }
        lines.feed(&buf[..n], &mut frames);
        for frame in frames.drain(..) {
            let mut room = lock(room);
            let flow = match frame {
                Frame::Line(line) => room.handle_line(id, &line),
                Frame::TooLong => {
                    room.line_too_long(id);
                    Flow::Continue
                }
            };
            drop(room);
            if flow == Flow::Quit {
                return;
            }
            // `/block`: sleeps on this connection's own thread; the others carry on.
            flow.block_if_asked();
        }
    }
}
// ANCHOR_END: handle_client

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

// ANCHOR: write_outbox
/// The writer thread: sleep until the queue has lines, write them all in one go, repeat.
fn write_outbox(stream: &TcpStream, outbox: &ThreadOutbox) {
    let mut buf = Vec::new();
    loop {
        {
            let mut queue = lock(&outbox.queue);
            while !queue.has_lines() && !queue.is_closing() {
                queue = outbox
                    .changed
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if queue.is_cut_off() || (queue.is_closing() && !queue.has_lines()) {
                break;
            }
            queue.take_into(&mut buf);
        }
        if (&*stream).write_all(&buf).is_err() {
            break; // Reset, or cut off meanwhile.
        }
        lock(&outbox.queue).sent(buf.len());
        buf.clear();
    }
    let _ = stream.shutdown(Shutdown::Write);
}
// ANCHOR_END: write_outbox

/// Tells a connection the room is full, best effort, and closes it.
fn reject_full(stream: &TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = (&*stream).write_all(say::server_full().as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// Measures the resident stack of a thread serving one idle connection: a thread runs the real
/// `handle_client` against a loopback client, and once it is blocked in `read`, the size of the
/// touched part of its stack is read from `/proc/self/smaps`.
///
/// Returns `(reserved, resident)` in bytes.
pub fn measure_idle_stack() -> io::Result<(usize, usize)> {
    const RESERVED: usize = 2 * 1024 * 1024; // the standard library's default
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (stream, _) = listener.accept()?;
    let room: SharedRoom = Arc::new(Mutex::new(Room::new(Limits::default())));
    let outbox = Arc::new(ThreadOutbox {
        queue: Mutex::new(OutQueue::new(1 << 20)),
        changed: Condvar::new(),
        stream: Arc::new(stream.try_clone()?),
    });
    let id = lock(&room)
        .connect(outbox)
        .expect("an empty room has space");
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let worker = thread::Builder::new().stack_size(RESERVED).spawn(move || {
        let marker = 0u8;
        let _ = address_tx.send(std::ptr::addr_of!(marker) as usize);
        handle_client(&stream, &room, &Limits::default(), id);
    })?;
    let address = address_rx
        .recv()
        .map_err(|_| io::Error::other("the measuring thread died"))?;
    // Give the thread time to reach its blocking read; then it touches no new stack.
    thread::sleep(Duration::from_millis(100));
    let resident = resident_bytes_of_mapping(address)?;
    drop(client); // end of file: the thread's handle_client returns
    let _ = worker.join();
    Ok((RESERVED, resident))
}

/// The `Rss` of the memory mapping of this process that contains `address`.
fn resident_bytes_of_mapping(address: usize) -> io::Result<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                inside = start <= address && address < end;
                continue;
            }
        }
        if inside {
            if let Some(kb) = line.strip_prefix("Rss:") {
                let kb: usize = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                return Ok(kb * 1024);
            }
        }
    }
    Err(io::Error::other("no mapping contains the thread's stack"))
}
