//! Mode `callbacks`: directly on mio. No threads per client, no futures: one poll loop that
//! calls `on_readable` / `on_writable` for whichever socket the kernel says is ready.
//!
//! This is how event loops were written before async/await (and still are, in C). It is fast
//! and uses little memory, but look at what happened to the connection's state: in the thread
//! version it was the local variables of one function and the point that function had reached.
//! Here no function lives longer than one event, so that state is torn out into a struct,
//! [`Conn`], and "where we are" becomes flags in it (`reading`, `lingering`, a login deadline in
//! a separate table). The logic of one conversation is spread over several handlers that must
//! agree on those flags. That tearing-apart is called *stack ripping*.
//!
//! Two things the runtime did for us elsewhere are done by hand here:
//! - **Fairness**: a handler reads at most [`READS_PER_EVENT`] times, then parks the socket in
//!   a "read again" list, so one flooding client cannot keep the loop to itself.
//! - **Timers**: login deadlines, closing deadlines and the accept back-off decide the poll
//!   timeout.
//!
//! And a connection ends in more steps than it has handlers: the room closes its queue, the
//! writer flushes the last line and shuts down the write side, then the connection *lingers*,
//! reading and dropping what the client still sends until its end of file or a deadline
//! ([`LINGER`]), and only then is it closed (see `server.rs` for why).

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

use crate::protocol::{Frame, LineReader};
use crate::room::{ClientId, Flow, Limits, Line, OutQueue, Outbox, Overflow, Room};
use crate::server::{self, BackoffReport, LINGER, SHUTDOWN_FLUSH_LIMIT};

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

    fn cut_off(&self, farewell: &Line) {
        self.queue.borrow_mut().cut_off(farewell);
        self.needs_writing.borrow_mut().push(self.token);
    }
}

// ANCHOR: conn
/// Everything the server remembers about one connection between events: the ripped-out
/// stack of `handle_client`.
pub struct Conn {
    stream: TcpStream,
    /// Tells this connection apart from a later one with the same token, in the timer tables.
    serial: u64,
    /// Its id in the room; `None` if the room refused it (full, or shutting down).
    id: Option<ClientId>,
    lines: LineReader,
    queue: Rc<RefCell<OutQueue>>,
    /// Lines taken from the queue, being written.
    write_buf: Vec<u8>,
    /// Bytes of `write_buf` written. Invariant: `written <= write_buf.len()`.
    written: usize,
    /// Handing lines to the room: false once the client or the room ended the connection.
    reading: bool,
    /// Everything was written and the write side shut down: reading only to drop what comes,
    /// until end of file or `close_at`.
    lingering: bool,
    /// When to close the connection whatever happens: set once it was cut off, or once it
    /// started lingering.
    close_at: Option<Instant>,
}
// ANCHOR_END: conn

/// The two timer tables of [`Server`].
#[derive(Clone, Copy)]
enum Deadlines {
    Login,
    Close,
}

/// The whole server: one poll loop and the state of every connection.
struct Server {
    poll: Poll,
    /// `None` once the server is stopping: the listener is closed, so the kernel refuses
    /// connections.
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    room: Room<ListOutbox>,
    limits: Limits,
    /// Connections whose queue changed since they were last written to (may repeat).
    needs_writing: Rc<RefCell<Vec<usize>>>,
    /// Connections that used up their reads for one event and still have data.
    read_again: Vec<usize>,
    /// Login deadlines: (deadline, token, serial). The serial tells a reused token apart.
    login_deadlines: BTreeSet<(Instant, usize, u64)>,
    /// Closing deadlines (`Conn::close_at`): (deadline, token, serial).
    close_deadlines: BTreeSet<(Instant, usize, u64)>,
    /// The serial of the next connection.
    next_serial: u64,
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
        listener: Some(listener),
        conns: Slab::new(),
        room: Room::new(limits.clone()),
        limits,
        needs_writing: Rc::default(),
        read_again: Vec::new(),
        login_deadlines: BTreeSet::new(),
        close_deadlines: BTreeSet::new(),
        next_serial: 0,
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

    // ANCHOR: poll_timeout
    /// How long the poll may wait: until the next deadline, or not at all if reads are pending.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty() {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.login_deadlines.first().map(|d| d.0),
            self.close_deadlines.first().map(|d| d.0),
            self.accept_paused_until,
            self.stopping_at,
        ];
        let next = deadlines.into_iter().flatten().min()?;
        Some(next.saturating_duration_since(Instant::now()))
    }
    // ANCHOR_END: poll_timeout

    /// The listener is readable: accept every waiting connection.
    fn on_acceptable(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return; // Stopping.
            };
            match listener.accept() {
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
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut stream, Token(token), interest)
            .is_err()
        {
            return; // Dropped: closed before anything was said.
        }
        let queue = Rc::new(RefCell::new(OutQueue::new(self.limits.max_queue)));
        let outbox = ListOutbox {
            queue: queue.clone(),
            token,
            needs_writing: self.needs_writing.clone(),
        };
        // Refused (full, stopping): the room queued why, and the writer closes it like any
        // other connection.
        let id = self.room.connect(outbox);
        let serial = self.next_serial;
        self.next_serial += 1;
        // ANCHOR: login_deadline_insert
        if id.is_some() {
            self.login_deadlines.insert((
                Instant::now() + self.limits.login_timeout,
                token,
                serial,
            ));
        }
        // ANCHOR_END: login_deadline_insert
        entry.insert(Conn {
            stream,
            serial,
            id,
            lines: LineReader::new(self.limits.max_line),
            queue,
            write_buf: Vec::new(),
            written: 0,
            reading: id.is_some(),
            lingering: false,
            close_at: None,
        });
    }

    // ANCHOR: on_readable
    /// A connection is readable: read (up to the per-event limit) and hand lines to the room.
    fn on_readable(&mut self, token: usize) {
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(token) else {
                return;
            };
            if conn.lingering {
                return self.discard_input(token);
            }
            // Not lingering yet: what comes waits until the last line is written.
            let (true, Some(id)) = (conn.reading, conn.id) else {
                return;
            };
            let n = match conn.stream.read(&mut self.read_buf[..]) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0, // A reset: treat it like end of file.
            };
            if n == 0 {
                // The room closes the queue; the writer does the rest.
                conn.reading = false;
                self.room.disconnect(id);
                return;
            }
            let mut frames = Vec::new();
            conn.lines.feed(&self.read_buf[..n], &mut frames);
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
    }

    // ANCHOR: on_writable
    /// A connection is writable (or its queue changed): write until the queue is empty or the
    /// socket is full; once the room closed the queue and all is written, start lingering.
    fn on_writable(&mut self, token: usize) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        if conn.lingering {
            return;
        }
        // Cut off for reading too slowly: it has a grace to read its last line, no more.
        let give_up_at = conn.queue.borrow().give_up_at();
        if let Some(give_up_at) = give_up_at {
            self.close_by(token, give_up_at);
        }
        let conn = &mut self.conns[token];
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
                        self.start_lingering(token);
                    }
                    return;
                }
            }
            match conn.stream.write(&conn.write_buf[conn.written..]) {
                Ok(n) if n > 0 => conn.written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                _ => {
                    // The client is gone: nothing to linger for.
                    if let Some(id) = conn.id {
                        self.room.disconnect(id);
                    }
                    self.conns.remove(token);
                    return;
                }
            }
        }
    }
    // ANCHOR_END: on_writable

    // ANCHOR: lingering
    /// Everything was written: send end of file, then read and drop until the client's own
    /// end of file (or the deadline) before closing, so that unread bytes from the client
    /// cannot turn the close into a reset that loses the last line.
    fn start_lingering(&mut self, token: usize) {
        let conn = &mut self.conns[token];
        let _ = conn.stream.shutdown(Shutdown::Write);
        conn.reading = false;
        conn.lingering = true;
        self.close_by(token, Instant::now() + LINGER);
        // Edge-triggered: what arrived while the writer was busy raised no new event.
        self.discard_input(token);
    }

    /// Reads and drops what a lingering connection receives; closes it at end of file.
    fn discard_input(&mut self, token: usize) {
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(token) else {
                return;
            };
            match conn.stream.read(&mut self.read_buf[..]) {
                Ok(0) => {} // The client's end of file: it has read all it wanted.
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {} // A reset.
            }
            self.conns.remove(token); // Dropped: closed.
            return;
        }
        // Still more: come back after the others had their turn, as for reading.
        self.read_again.push(token);
    }
    // ANCHOR_END: lingering

    /// Closes the connection at `deadline` at the latest (the first deadline set stands).
    fn close_by(&mut self, token: usize, deadline: Instant) {
        let conn = &mut self.conns[token];
        if conn.close_at.is_none() {
            conn.close_at = Some(deadline);
            self.close_deadlines.insert((deadline, token, conn.serial));
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

    // ANCHOR: on_timers
    /// Login and closing deadlines that passed, and the end of an accept back-off.
    fn on_timers(&mut self) {
        let now = Instant::now();
        while let Some(token) = self.next_due(Deadlines::Login, now) {
            let Some(id) = self.conns[token].id else {
                continue;
            };
            if self.room.contains(id) && !self.room.is_logged_in(id) {
                self.room.login_timeout(id);
                self.stop_reading(token);
            }
        }
        while let Some(token) = self.next_due(Deadlines::Close, now) {
            self.conns.remove(token);
        }
        if self.accept_paused_until.is_some_and(|until| until <= now) {
            self.accept_paused_until = None;
            // Edge-triggered: no new event will say the listener is still readable; try now.
            self.on_acceptable();
        }
    }

    /// Takes the first deadline of `table` that is due and returns its connection's token.
    /// Deadlines of connections closed meanwhile are skipped.
    fn next_due(&mut self, table: Deadlines, now: Instant) -> Option<usize> {
        let table = match table {
            Deadlines::Login => &mut self.login_deadlines,
            Deadlines::Close => &mut self.close_deadlines,
        };
        while let Some(&(deadline, token, serial)) = table.first() {
            if deadline > now {
                return None;
            }
            table.pop_first();
            if self
                .conns
                .get(token)
                .is_some_and(|conn| conn.serial == serial)
            {
                return Some(token);
            } // Otherwise closed meanwhile (and maybe the token reused).
        }
        None
    }
    // ANCHOR_END: on_timers

    /// SIGINT/SIGTERM: close the door, say goodbye to everyone, then stop once every
    /// connection is closed.
    fn on_signal(&mut self) {
        // Closing the listener makes the kernel refuse new connections: nobody is greeted.
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.room.shutdown();
        self.stopping_at = Some(Instant::now() + SHUTDOWN_FLUSH_LIMIT);
    }

    fn finished_stopping(&self) -> bool {
        let Some(deadline) = self.stopping_at else {
            return false;
        };
        let all_closed = self.conns.is_empty();
        if !all_closed && Instant::now() >= deadline {
            eprintln!("chat-demo: some clients did not read their last lines; closing anyway");
        }
        all_closed || Instant::now() >= deadline
    }
}
