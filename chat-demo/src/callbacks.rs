//! Mode `callbacks`: directly on mio. No threads per client, no futures: one poll loop that
//! calls `on_readable` / `on_writable` for whichever socket the kernel says is ready.
//!
//! This is how event loops were written before async/await (and still are, in C). It is fast
//! and uses little memory, but look at what happened to the connection's state: in the thread
//! version it was the local variables of one function and the point that function had reached.
//! Here no function lives longer than one event, so that state is torn out into a struct,
//! [`Conn`], and "where we are" becomes flags in it (`reading`, `write_done`, a login deadline in
//! a separate table). The logic of one conversation is spread over several handlers that must
//! agree on those flags. That tearing-apart is called *stack ripping*.
//!
//! Two things the runtime did for us elsewhere are done by hand here:
//! - **Fairness**: a handler reads at most [`READS_PER_EVENT`] times, then parks the socket in
//!   a "read again" list, so one flooding client cannot keep the loop to itself.
//! - **Timers**: login deadlines and the accept back-off decide the poll timeout.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::protocol::{say, Frame, LineReader};
use crate::room::{ClientId, Flow, Limits, Line, OutQueue, Outbox, Overflow, Room};
use crate::server::{self, BackoffReport, SHUTDOWN_FLUSH_LIMIT};

/// The listening socket's token; connections use their index in `conns`.
const LISTENER: Token = Token(usize::MAX - 1);
/// The token of the `mio::Waker` the signal thread uses.
const SIGNAL: Token = Token(usize::MAX);
/// How many reads one readiness event may do before the socket waits for the next turn.
pub const READS_PER_EVENT: usize = 16;
/// How many bytes one read may take from a socket.
const READ_BUFFER: usize = 4096;

/// A client's outgoing queue here: the queue, plus the "needs writing" list where a push puts
/// the connection so that the loop tries to write to it before it polls again.
pub struct ListOutbox {
    queue: Rc<RefCell<OutQueue>>,
    token: usize,
    needs_writing: Rc<RefCell<Vec<usize>>>,
}

impl Outbox for ListOutbox {
    fn push(&self, line: &Line) -> Result<(), Overflow> {
        self.queue.borrow_mut().push(line)?;
        self.needs_writing.borrow_mut().push(self.token);
        Ok(())
    }

    fn close(&self) {
        self.queue.borrow_mut().close();
        self.needs_writing.borrow_mut().push(self.token);
    }

    fn cut_off(&self) {
        self.queue.borrow_mut().cut_off();
        self.needs_writing.borrow_mut().push(self.token);
    }
}

// ANCHOR: conn
/// Everything the server remembers about one connection between events: the ripped-out
/// stack of `handle_client`.
pub struct Conn {
    stream: TcpStream,
    id: ClientId,
    lines: LineReader,
    queue: Rc<RefCell<OutQueue>>,
    /// Lines taken from the queue, being written.
    write_buf: Vec<u8>,
    /// Bytes of `write_buf` written. Invariant: `written <= write_buf.len()`.
    written: usize,
    /// Still reading: false after end of file, `/quit` or the login timeout.
    reading: bool,
    /// Done writing: everything was flushed after `close`, or the client is gone.
    write_done: bool,
}
// ANCHOR_END: conn

/// The whole server: one poll loop and the state of every connection.
struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: Slab<Conn>,
    room: Room<ListOutbox>,
    limits: Limits,
    /// Connections whose queue changed since they were last written to (may repeat).
    needs_writing: Rc<RefCell<Vec<usize>>>,
    /// Connections that used up their reads for one event and still have data.
    read_again: Vec<usize>,
    /// Login deadlines: (deadline, token, client id). The id tells a reused token apart.
    login_deadlines: BTreeSet<(Instant, usize, ClientId)>,
    /// One read buffer for every connection: a handler never keeps it across events.
    read_buf: Box<[u8; READ_BUFFER]>,
    /// Accepting is paused until then (out of file descriptors).
    accept_paused_until: Option<Instant>,
    report: BackoffReport,
    /// Set when SIGINT/SIGTERM arrived: exit once flushed, or at this deadline.
    stopping_at: Option<Instant>,
    /// The signal thread's way to interrupt `poll`. Kept here too: if the thread's copy were
    /// the last, the thread's exit would close the waker's descriptor, and a wake not yet
    /// collected by `epoll_wait` would vanish with it.
    _signal_waker: Arc<mio::Waker>,
}

/// Runs the server in this mode until SIGINT/SIGTERM.
pub fn serve(listener: std::net::TcpListener, limits: Limits) -> io::Result<()> {
    let signals = server::register_shutdown_signals()?;
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), SIGNAL)?);
    let signal_waker = waker.clone();
    std::thread::spawn(move || {
        server::wait_for_shutdown_signal(signals);
        let _ = signal_waker.wake();
    });
    server::announce("callbacks", listener.local_addr()?);
    let mut server = Server {
        poll,
        listener,
        conns: Slab::new(),
        room: Room::new(limits.clone()),
        limits,
        needs_writing: Rc::default(),
        read_again: Vec::new(),
        login_deadlines: BTreeSet::new(),
        read_buf: Box::new([0; READ_BUFFER]),
        accept_paused_until: None,
        report: BackoffReport::default(),
        stopping_at: None,
        _signal_waker: waker,
    };
    server.run()
}

impl Server {
    // ANCHOR: run
    /// The event loop.
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.on_acceptable(),
                    SIGNAL => self.on_signal(),
                    Token(token) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.on_readable(token);
                        }
                        if event.is_writable() || event.is_write_closed() || event.is_error() {
                            self.on_writable(token);
                        }
                    }
                }
            }
            for token in std::mem::take(&mut self.read_again) {
                self.on_readable(token);
            }
            self.on_timers();
            self.write_queued();
            if self.finished_stopping() {
                return Ok(());
            }
        }
    }
    // ANCHOR_END: run

    /// How long the poll may wait: until the next deadline, or not at all if reads are pending.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty() {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.login_deadlines.first().map(|d| d.0),
            self.accept_paused_until,
            self.stopping_at,
        ];
        let next = deadlines.into_iter().flatten().min()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    /// The listener is readable: accept every waiting connection.
    fn on_acceptable(&mut self) {
        if self.accept_paused_until.is_some() || self.stopping_at.is_some() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, _peer)) => {
                    self.report.accepted();
                    // Chat lines are small and the writer already batches them: send at once
                    // rather than wait for the previous segment's acknowledgement (Nagle).
                    let _ = stream.set_nodelay(true);
                    self.add_connection(stream);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    if let Some(wait) = self.report.failed(&err) {
                        self.accept_paused_until = Some(Instant::now() + wait);
                        return;
                    }
                }
            }
        }
    }

    fn add_connection(&mut self, mut stream: TcpStream) {
        let entry = self.conns.vacant_entry();
        let token = entry.key();
        let queue = Rc::new(RefCell::new(OutQueue::new(self.limits.max_queue)));
        let outbox = ListOutbox {
            queue: queue.clone(),
            token,
            needs_writing: self.needs_writing.clone(),
        };
        let Some(id) = self.room.connect(outbox) else {
            // Best effort: a fresh socket has room for one short line.
            let _ = stream.write(say::server_full().as_bytes());
            return;
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut stream, Token(token), interest)
            .is_err()
        {
            self.room.disconnect(id);
            return;
        }
        self.login_deadlines
            .insert((Instant::now() + self.limits.login_timeout, token, id));
        entry.insert(Conn {
            stream,
            id,
            lines: LineReader::new(self.limits.max_line),
            queue,
            write_buf: Vec::new(),
            written: 0,
            reading: true,
            write_done: false,
        });
    }

    // ANCHOR: on_readable
    /// A connection is readable: read (up to the per-event limit) and hand lines to the room.
    fn on_readable(&mut self, token: usize) {
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(token) else {
                return;
            };
            if !conn.reading {
                return;
            }
            let n = match conn.stream.read(&mut self.read_buf[..]) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0, // A reset: treat it like end of file.
            };
            if n == 0 {
                conn.reading = false;
                let id = conn.id;
                self.room.disconnect(id);
                self.close_if_done(token);
                return;
            }
            let mut frames = Vec::new();
            conn.lines.feed(&self.read_buf[..n], &mut frames);
            let id = conn.id;
            for frame in frames {
                let flow = match frame {
                    Frame::Line(line) => self.room.handle_line(id, &line),
                    Frame::TooLong => {
                        self.room.line_too_long(id);
                        Flow::Continue
                    }
                };
                if flow == Flow::Quit {
                    self.stop_reading(token);
                    return;
                }
                // `/block`: sleeps in the poll loop itself, so every connection waits.
                flow.block_if_asked();
            }
        }
        // Still data after the per-event limit: come back after the others had their turn.
        self.read_again.push(token);
    }
    // ANCHOR_END: on_readable

    fn stop_reading(&mut self, token: usize) {
        if let Some(conn) = self.conns.get_mut(token) {
            conn.reading = false;
        }
        self.close_if_done(token);
    }

    /// A connection is writable (or its queue changed): write until the queue is empty or the
    /// socket is full.
    fn on_writable(&mut self, token: usize) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        if conn.write_done {
            return;
        }
        if conn.queue.borrow().is_cut_off() {
            let _ = conn.stream.shutdown(Shutdown::Both);
            self.conns.remove(token);
            return;
        }
        loop {
            if conn.written == conn.write_buf.len() {
                let mut queue = conn.queue.borrow_mut();
                queue.sent(conn.written);
                conn.write_buf.clear();
                conn.written = 0;
                queue.take_into(&mut conn.write_buf);
                if conn.write_buf.is_empty() {
                    if queue.is_closing() {
                        drop(queue);
                        conn.write_done = true;
                        let _ = conn.stream.shutdown(Shutdown::Write);
                        self.close_if_done(token);
                    }
                    return;
                }
            }
            match conn.stream.write(&conn.write_buf[conn.written..]) {
                Ok(n) if n > 0 => conn.written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                _ => {
                    // The client is gone.
                    conn.write_done = true;
                    let id = conn.id;
                    self.room.disconnect(id);
                    self.close_if_done(token);
                    return;
                }
            }
        }
    }

    /// Writes to every connection whose queue changed during this turn.
    fn write_queued(&mut self) {
        loop {
            let tokens = std::mem::take(&mut *self.needs_writing.borrow_mut());
            if tokens.is_empty() {
                return;
            }
            for token in tokens {
                self.on_writable(token);
            }
        }
    }

    /// Drops a connection once both its reading and its writing are over.
    fn close_if_done(&mut self, token: usize) {
        if let Some(conn) = self.conns.get(token) {
            if !conn.reading && conn.write_done {
                self.conns.remove(token);
            }
        }
    }

    /// Login deadlines that passed, and the end of an accept back-off.
    fn on_timers(&mut self) {
        let now = Instant::now();
        while let Some(&(deadline, token, id)) = self.login_deadlines.first() {
            if deadline > now {
                break;
            }
            self.login_deadlines.pop_first();
            let current = self.conns.get(token).is_some_and(|conn| conn.id == id);
            if current && !self.room.is_logged_in(id) {
                self.room.login_timeout(id);
                self.stop_reading(token);
            }
        }
        if self.accept_paused_until.is_some_and(|until| until <= now) {
            self.accept_paused_until = None;
            // Edge-triggered: no new event will say the listener is still readable; try now.
            self.on_acceptable();
        }
    }

    /// SIGINT/SIGTERM: say goodbye to everyone, then stop once the queues are flushed.
    fn on_signal(&mut self) {
        self.room.shutdown();
        self.stopping_at = Some(Instant::now() + SHUTDOWN_FLUSH_LIMIT);
        let _ = self.poll.registry().deregister(&mut self.listener);
    }

    fn finished_stopping(&self) -> bool {
        let Some(deadline) = self.stopping_at else {
            return false;
        };
        let flushed = self.conns.iter().all(|(_, conn)| conn.write_done);
        if !flushed && Instant::now() >= deadline {
            eprintln!("chat-demo: some clients did not read their last lines; closing anyway");
        }
        flushed || Instant::now() >= deadline
    }
}
