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
//!
//! The room's lock is held for the room's bookkeeping only, never across a system call:
//! writers given lines are woken once it is released ([`with_room`]), and cutting a slow
//! client off only marks its queue. The writer thread also ends the connection
//! ([`lingering_close`]): the reader may be blocked in a `read` when the room ends it.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::{say, Frame, LineReader};
use crate::room::{ClientId, Flow, Limits, Line, OutQueue, Outbox, Overflow, Room};
use crate::server::{self, BackoffReport, LINGER, SHUTDOWN_FLUSH_LIMIT};

/// How many bytes one read may take from the socket.
const READ_BUFFER: usize = 4096;

/// The longest a writer stays blocked in one `write` before it looks whether it should give
/// up (a client cut off for reading too slowly, whose grace is over).
const WRITE_CHECK: Duration = Duration::from_millis(500);

type SharedRoom = Arc<Mutex<Room<Arc<ThreadOutbox>>>>;

/// Locks a mutex; a thread that panicked while holding it does not stop the others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

thread_local! {
    /// Writers this thread gave work to while it held the room's lock, to be woken once it
    /// has let go of it (see [`with_room`]).
    static TO_WAKE: RefCell<Vec<Arc<ThreadOutbox>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the room under its lock, then wakes the writers it gave work to. Waking a
/// thread is a system call (a futex); made inside the lock, one per recipient of a broadcast,
/// they would keep every other connection waiting for the room that much longer.
fn with_room<R>(room: &SharedRoom, f: impl FnOnce(&mut Room<Arc<ThreadOutbox>>) -> R) -> R {
    let result = f(&mut lock(room));
    for outbox in TO_WAKE.take() {
        outbox.changed.notify_one();
    }
    result
}

/// A client's outgoing queue here: the queue behind a mutex, and a condition variable its
/// writer thread sleeps on.
pub struct ThreadOutbox {
    queue: Mutex<OutQueue>,
    changed: Condvar,
}

impl ThreadOutbox {
    fn new(max_queue: usize) -> Arc<ThreadOutbox> {
        Arc::new(ThreadOutbox {
            queue: Mutex::new(OutQueue::new(max_queue)),
            changed: Condvar::new(),
        })
    }

    /// Has the writer waiting on this woken once the room's lock is released.
    fn wake_later(self: &Arc<Self>) {
        TO_WAKE.with_borrow_mut(|to_wake| to_wake.push(self.clone()));
    }
}

impl Outbox for Arc<ThreadOutbox> {
    fn push(&self, line: &Line) -> Result<(), Overflow> {
        let mut queue = lock(&self.queue);
        // The writer only sleeps on an empty queue: if lines were already waiting, it is awake
        // and will take this one too. (Each wake is a system call; a join announced to
        // thousands of clients would otherwise make thousands.)
        let writer_may_sleep = !queue.has_lines();
        queue.push(line)?;
        drop(queue);
        if writer_may_sleep {
            self.wake_later();
        }
        Ok(())
    }

    fn close(&self) {
        lock(&self.queue).close();
        self.wake_later();
    }

    fn cut_off(&self, farewell: &Line) {
        // No `shutdown` here: the writer still sends the farewell. It gives up by itself if
        // the client does not read it in time (see `write_all_or_give_up`).
        lock(&self.queue).cut_off(farewell);
        self.wake_later();
    }
}

/// Counts the connections still open, so that shutdown can wait for the last one to close.
#[derive(Default)]
struct Live {
    count: Mutex<usize>,
    none_left: Condvar,
}

/// One connection counted in [`Live`], for as long as this exists.
struct LiveGuard(Arc<Live>);

impl LiveGuard {
    fn new(live: &Arc<Live>) -> LiveGuard {
        *lock(&live.count) += 1;
        LiveGuard(live.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut count = lock(&self.0.count);
        *count -= 1;
        if *count == 0 {
            self.0.none_left.notify_all();
        }
    }
}

impl Live {
    /// Waits until no connection is left, at most `limit`; says whether none is.
    fn wait_until_none(&self, limit: Duration) -> bool {
        let count = lock(&self.count);
        let (count, _) = self
            .none_left
            .wait_timeout_while(count, limit, |count| *count > 0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *count == 0
    }
}

/// How this mode starts threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Threads {
    /// Each thread's stack (`None`: the standard library's default, 2 MiB).
    pub stack_size: Option<usize>,
    /// Most threads at once (`None`: what [`threads_the_kernel_allows`] finds).
    pub max_threads: Option<usize>,
}

/// Memory mappings one thread takes: its stack and the guard page under it, and the signal
/// stack (with its own guard page) the standard library gives every thread it starts.
/// Measured with `examples/thread_cost N 64` under vm.max_map_count = 65,530: 16,350 threads
/// start, 16,400 do not, and a thread whose signal stack cannot be mapped aborts the whole
/// process (it cannot even report it), so the limit must never be reached.
const MAPPINGS_PER_THREAD: usize = 4;

/// Four fifths of the threads the kernel's limit on memory mappings lets one process start
/// (the rest is for the program itself: its libraries, the allocator's arenas). `None` if
/// the limit cannot be read.
pub fn threads_the_kernel_allows() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?;
    let mappings: usize = text.trim().parse().ok()?;
    Some(mappings / MAPPINGS_PER_THREAD * 4 / 5)
}

/// Counts the threads this mode has started for connections and not yet finished.
struct ThreadBudget {
    /// Threads running, plus, for an instant, each one [`ThreadBudget::spawn`] is deciding
    /// about: a place is taken before the thread starts and given back if it may not start.
    /// Invariant: at most `max` threads run at once.
    live: AtomicUsize,
    /// The most threads at once.
    max: usize,
    /// Each thread's stack (`None`: the standard library's default, 2 MiB).
    stack_size: Option<usize>,
}

/// Gives a thread's place in the budget back when the thread ends (or never started).
struct BudgetSlot(Arc<ThreadBudget>);

impl Drop for BudgetSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ThreadBudget {
    /// Starts `body` on a new thread if the budget has room; `None` if it has not (or the
    /// system refused the thread).
    fn spawn(
        self: &Arc<Self>,
        body: impl FnOnce() + Send + 'static,
    ) -> Option<thread::JoinHandle<()>> {
        let taken = self.live.fetch_add(1, Ordering::SeqCst);
        let slot = BudgetSlot(self.clone());
        if taken >= self.max {
            return None; // `slot` gives the place back
        }
        let mut builder = thread::Builder::new();
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        match builder.spawn(move || {
            let _slot = slot;
            body();
        }) {
            Ok(handle) => Some(handle),
            Err(err) => {
                eprintln!("chat-demo: could not start a thread for a connection: {err}");
                None
            }
        }
    }
}

/// The most connections the room may hold with `max_threads` threads: two threads each, and
/// a tenth of the threads kept for the short-lived ones that tell a connection past that
/// number `! server full`.
fn connections_for(max_threads: usize) -> usize {
    (max_threads - (max_threads / 10).max(1)) / 2
}

/// Runs the server in this mode until SIGINT/SIGTERM.
pub fn serve(listener: TcpListener, limits: Limits, threads: Threads) -> io::Result<()> {
    let signals = server::register_shutdown_signals()?;
    server::announce("threads", listener.local_addr()?);
    let max_threads = threads
        .max_threads
        .or_else(threads_the_kernel_allows)
        .unwrap_or(usize::MAX);
    let mut limits = limits;
    if max_threads < usize::MAX && connections_for(max_threads) < limits.max_clients {
        limits.max_clients = connections_for(max_threads);
        eprintln!(
            "chat-demo: threads mode: at most {max_threads} threads here, so at most {} \
             connections (two threads each); one more is told \"! server full\"",
            limits.max_clients
        );
    }
    let budget = Arc::new(ThreadBudget {
        live: AtomicUsize::new(0),
        max: max_threads,
        stack_size: threads.stack_size,
    });
    let room: SharedRoom = Arc::new(Mutex::new(Room::new(limits.clone())));
    let live = Arc::new(Live::default());
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let (room, stopping) = (room.clone(), stopping.clone());
        let listener = listener.try_clone()?;
        thread::spawn(move || {
            server::wait_for_shutdown_signal(signals);
            stop(&listener, &room, &stopping);
        });
    }
    let mut report = BackoffReport::default();
    // ANCHOR: accept_loop
    loop {
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(_) if stopping.load(Ordering::SeqCst) => break,
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
        let stream = Arc::new(stream);
        let connection = Connection {
            stream: stream.clone(),
            room: room.clone(),
            limits: limits.clone(),
            budget: budget.clone(),
            _live: LiveGuard::new(&live),
        };
        if budget.spawn(move || connection.run()).is_none() {
            refuse_here(&stream);
        }
    }
    // ANCHOR_END: accept_loop
    // Every client was told; wait for the last one to close (or give up).
    if !live.wait_until_none(SHUTDOWN_FLUSH_LIMIT) {
        eprintln!("chat-demo: some clients did not read their last lines; closing anyway");
    }
    Ok(())
}

/// SIGINT/SIGTERM: close the door, then tell everyone goodbye.
fn stop(listener: &TcpListener, room: &SharedRoom, stopping: &AtomicBool) {
    stopping.store(true, Ordering::SeqCst);
    // Shutting down a listening socket (Linux) makes the blocked `accept` return an error, and
    // the kernel refuses connections from now on: nobody is greeted during the drain.
    let _ = socket2::SockRef::from(listener).shutdown(Shutdown::Read);
    with_room(room, |room| room.shutdown());
}

/// Tells a connection that no thread is free for it, from the accepting thread: one short
/// write and a close. The accept loop must not wait on one client, so instead of lingering it
/// reads away only what has already arrived (unread input would turn the close into a reset,
/// and the reset could destroy the line before the client reads it).
fn refuse_here(stream: &TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = (&*stream).write_all(say::server_full().as_bytes());
    let _ = stream.set_nonblocking(true);
    let mut scratch = [0u8; READ_BUFFER];
    for _ in 0..16 {
        if !matches!((&*stream).read(&mut scratch), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// What a connection's thread starts with.
struct Connection {
    stream: Arc<TcpStream>,
    room: SharedRoom,
    limits: Limits,
    budget: Arc<ThreadBudget>,
    /// Counts the connection as open until its thread is done.
    _live: LiveGuard,
}

// ANCHOR: connection_run
impl Connection {
    /// The connection's thread: join the room, start the writer, read until the client leaves.
    fn run(self) {
        let _ = self.stream.set_write_timeout(Some(WRITE_CHECK));
        let outbox = ThreadOutbox::new(self.limits.max_queue);
        let connected = with_room(&self.room, |room| room.connect(outbox.clone()));
        let Some(id) = connected else {
            // Refused: the room queued why. Say it and close, on this thread.
            write_outbox(&self.stream, &outbox);
            return;
        };
        let writer = {
            let (stream, outbox) = (self.stream.clone(), outbox.clone());
            self.budget.spawn(move || write_outbox(&stream, &outbox))
        };
        let Some(writer) = writer else {
            with_room(&self.room, |room| room.disconnect(id));
            write_outbox(&self.stream, &outbox);
            return;
        };
        handle_client(&self.stream, &self.room, &self.limits, id);
        // Wait until everything queued for the client has been written and the connection
        // closed; dropping the last `Arc<TcpStream>` then frees the descriptor.
        let _ = writer.join();
    }
}
// ANCHOR_END: connection_run

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
            let (inside, nick) = with_room(room, |room| (room.contains(id), room.is_logged_in(id)));
            if !inside {
                return; // The room ended the connection (shutdown); the writer closes it.
            }
            logged_in = nick;
            let left = login_deadline.saturating_duration_since(Instant::now());
            if !logged_in && left.is_zero() {
                // Checked here too, not only on a timed-out read: a client that keeps
                // sending (empty lines...) would never let a read time out.
                with_room(room, |room| room.login_timeout(id));
                return;
            }
            let wait = (!logged_in).then_some(left);
            let _ = stream.set_read_timeout(wait);
        }
        let n = match (&*stream).read(&mut buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(err) if is_timeout(&err) && !logged_in => continue, // the deadline, above
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => 0, // A reset: treat it like end of file.
        };
        if n == 0 {
            with_room(room, |room| room.disconnect(id));
            return;
        }
        lines.feed(&buf[..n], &mut frames);
        for frame in frames.drain(..) {
            let flow = with_room(room, |room| match frame {
                Frame::Line(line) => room.handle_line(id, &line),
                Frame::TooLong => {
                    room.line_too_long(id);
                    Flow::Continue
                }
            });
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
/// The writer thread: sleep until the queue has lines, write them all in one go, repeat; once
/// the room closed the queue and everything is written, close the connection.
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
            if queue.is_finished() {
                break;
            }
            queue.take_into(&mut buf);
        }
        if write_all_or_give_up(stream, &buf, outbox).is_err() {
            break; // Reset, or cut off and not reading.
        }
        lock(&outbox.queue).sent(buf.len());
        buf.clear();
    }
    lingering_close(stream);
}
// ANCHOR_END: write_outbox

/// Writes all of `buf`. Each `write` waits at most [`WRITE_CHECK`] (the socket's write
/// timeout), so that the writer of a client cut off for reading too slowly can give up once
/// its grace is over, instead of staying blocked forever.
fn write_all_or_give_up(stream: &TcpStream, buf: &[u8], outbox: &ThreadOutbox) -> io::Result<()> {
    let mut written = 0;
    while written < buf.len() {
        match (&*stream).write(&buf[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(err) if is_timeout(&err) => {
                let give_up_at = lock(&outbox.queue).give_up_at();
                if give_up_at.is_some_and(|at| Instant::now() >= at) {
                    return Err(err);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

// ANCHOR: lingering_close
/// Closes a connection without losing the last line (see [`LINGER`]): shut down the write
/// side (the client reads end of file after the last line), read and drop what the client
/// still sends until its end of file or the deadline, then shut down both sides.
///
/// The writer thread does this, not the reader: when the room ends a connection (shutdown,
/// cut off) the reader may be blocked in a `read` that nothing but the socket can end. The
/// final `shutdown(Both)` ends it: the reader sees end of file and returns.
///
/// Never inlined: in its callers' stack frames, its buffer would make the stacks of every idle
/// connection's threads deeper (`chat-demo compare`: 3.5 KiB more per idle connection).
#[inline(never)]
fn lingering_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; READ_BUFFER];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&*stream).read(&mut scratch) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break, // The deadline, or a reset.
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
// ANCHOR_END: lingering_close

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
    let outbox = ThreadOutbox::new(1 << 20);
    let id = with_room(&room, |room| room.connect(outbox)).expect("an empty room has space");
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
