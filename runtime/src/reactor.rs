//! The reactor: one `mio::Poll` and what it knows about each registered socket.
//!
//! A socket ([`IoSource`]) registers once, for reading and writing, in mio's edge-triggered
//! mode: the kernel reports an event when something *happens* (data arrived, buffer space
//! freed, the peer closed), not for as long as the socket stays ready. So the reactor remembers
//! what it was told: each source has a *readiness* cache and a waker slot per direction.
//!
//! An operation (`read`, `write`, `accept`...) goes through [`IoSource::poll_io`]:
//!
//! 1. if the cache says "ready", try the system call;
//! 2. if it returns `WouldBlock`, clear the cache for that direction and go to 3; any other result
//!    is the answer;
//! 3. if the cache says "not ready", store the task's waker and return `Pending`.
//!
//! When [`Reactor::wait`] later gets an event for the source, it sets the cache and wakes the
//! stored waker; the task runs again and retries the system call.
//!
//! One shortcut (tokio's too): a read or write that moved *fewer* bytes than asked drained the
//! receive buffer or filled the send buffer, so the next attempt would return `WouldBlock`; the
//! cache is cleared without making that system call ([`IoSource::short_transfer`]). This is
//! safe because on Linux every new arrival of data (or of buffer space) is a new edge and brings
//! a new event, even if the socket was never drained to `WouldBlock`. End of file is kept apart
//! (the `closed` flags) and never cleared this way: only a `WouldBlock` clears it.
//!
//! A task that stops waiting before its event comes (the operation lost a `select`, or a
//! `timeout` fired) takes its waker back: the sockets' operation futures (`read`, `accept`,
//! `recv`...) are [`IoOp`]s, whose drop removes the waker they left, so a dropped operation
//! leaves no waker behind. (The `poll_*` methods, and so `AsyncRead`/`AsyncWrite`, have no
//! future to drop: their waker stays until the next event, as in tokio.) One task keeps one
//! waiter per direction of a socket, so two operations of one task pending in the same
//! direction share it, and dropping either takes it back: one reader per direction.
//!
//! A new source starts out "ready" in both directions, so the first operation always tries the
//! system call instead of waiting for an event that may have come before registration.
//!
//! Why there is no tick counter as in tokio: tokio's reactor runs on other threads, so an event
//! may land between a `WouldBlock` and the clearing of the cache. Here the reactor only runs
//! between polls, on the loop's own thread, so nothing can change the cache while a task is
//! between its system call and clearing it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::{Events, Interest, Token};
use slab::Slab;

use crate::coop;
use crate::ids::{Direction, IoEvent, Source};
use crate::waiters::Waiters;

/// The token of the `mio::Waker` that other threads use to interrupt [`Reactor::wait`].
pub(crate) const INTERRUPT_TOKEN: Token = Token(usize::MAX);

/// How many events one call to `epoll_wait` may return.
const EVENTS_PER_WAIT: usize = 1024;

// ANCHOR: source_state
/// What the reactor knows about one registered source.
pub(crate) struct SourceState {
    /// What the socket is, for the task table and traces.
    source: Source,
    /// `ready[d]`: the last event said direction `d` is ready, and no operation in that
    /// direction has returned `WouldBlock` since. Starts `true` (try the system call first).
    ready: [bool; 2],
    /// `closed[d]`: the kernel reported the direction shut down or in error. Survives short
    /// reads and writes (operations keep trying the system call, which returns the end of file
    /// or the error); cleared only when an operation in that direction returns `WouldBlock`.
    closed: [bool; 2],
    /// `waiters[d]`: the tasks that got `Pending` for direction `d`, all taken (and woken) by
    /// the next event for that direction. Normally one task reads and one writes, so each holds
    /// at most one waker, inline (`waiters.rs`).
    waiters: [Waiters; 2],
}
// ANCHOR_END: source_state

impl SourceState {
    fn is_ready(&self, dir: Direction) -> bool {
        self.ready[dir as usize] || self.closed[dir as usize]
    }
}

/// The reactor of one runtime.
pub(crate) struct Reactor {
    /// The OS selector (epoll). Borrowed mutably only inside [`Reactor::wait`].
    poll: RefCell<mio::Poll>,
    /// The buffer `epoll_wait` fills; kept to avoid an allocation per wait.
    events: RefCell<Events>,
    /// Registered sources; a source's index here is its mio `Token`.
    /// Invariant: an entry exists exactly while its `IoSource` is alive.
    sources: RefCell<Slab<SourceState>>,
    /// Set when the runtime has shut down: no event will ever be delivered again, so operations
    /// fail at once instead of waiting forever.
    closed: Cell<bool>,
}

impl Reactor {
    /// Creates the selector and the `mio::Waker` that lets other threads interrupt it.
    pub(crate) fn new() -> io::Result<(Reactor, mio::Waker)> {
        let poll = mio::Poll::new()?;
        let interrupt = mio::Waker::new(poll.registry(), INTERRUPT_TOKEN)?;
        let reactor = Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS_PER_WAIT)),
            sources: RefCell::new(Slab::new()),
            closed: Cell::new(false),
        };
        Ok((reactor, interrupt))
    }

    // ANCHOR: wait
    /// Blocks in `epoll_wait` for at most `timeout` (`None`: until an event comes), then records
    /// the readiness each event reports and collects the wakers of the tasks waiting for it,
    /// with the event, into `to_wake`. The caller wakes them, once no borrow is held.
    ///
    /// Returns how many events arrived.
    pub(crate) fn wait(
        &self,
        timeout: Option<Duration>,
        to_wake: &mut Vec<(Waker, IoEvent)>,
    ) -> usize {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            // A signal interrupted the wait: a turn with no events.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return 0,
            Err(err) => panic!("stroll: waiting for I/O events failed: {err}"),
        }
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            if event.token() != INTERRUPT_TOKEN {
                self.record_event(event, to_wake);
            }
            // The interrupt needs no handling: the loop drains the remote inbox every turn.
        }
        count
    }

    /// Updates one source's readiness from `event` and collects the wakers to call.
    fn record_event(&self, event: &mio::event::Event, to_wake: &mut Vec<(Waker, IoEvent)>) {
        let mut sources = self.sources.borrow_mut();
        // Defensive: a source is deregistered only by user code, which does not run during a
        // batch, but an unknown token is ignored rather than trusted.
        let Some(source) = sources.get_mut(event.token().0) else {
            return;
        };
        let error = event.is_error();
        let directions = [
            (Direction::Read, event.is_readable(), event.is_read_closed()),
            (
                Direction::Write,
                event.is_writable(),
                event.is_write_closed(),
            ),
        ];
        for (dir, ready, closed) in directions {
            let d = dir as usize;
            source.ready[d] |= ready;
            source.closed[d] |= closed || error;
            if source.is_ready(dir) {
                let happened = IoEvent {
                    source: source.source,
                    dir,
                };
                source.waiters[d].take_each(|waker| to_wake.push((waker, happened)));
            }
        }
    }
    // ANCHOR_END: wait

    /// Registers `io` for both directions and returns its key (also its mio token).
    fn register(&self, io: &mut impl mio::event::Source, source: Source) -> io::Result<usize> {
        let key = self.sources.borrow_mut().insert(SourceState {
            source,
            ready: [true, true],
            closed: [false, false],
            waiters: [Waiters::None, Waiters::None],
        });
        let registered = self.poll.borrow().registry().register(
            io,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(err) = registered {
            self.sources.borrow_mut().remove(key);
            return Err(err);
        }
        Ok(key)
    }

    /// Deregisters `io` and forgets its state.
    fn deregister(&self, io: &mut impl mio::event::Source, key: usize) {
        // Closing the socket would remove it from epoll too; deregistering is explicit.
        let _ = self.poll.borrow().registry().deregister(io);
        let state = self.sources.borrow_mut().try_remove(key);
        drop(state); // Its wakers are dropped after the borrow ends.
    }

    // ANCHOR: poll_ready
    /// Is `key` ready in `dir`? If not, stores `cx`'s waker to be woken by the next event.
    fn poll_ready(&self, key: usize, dir: Direction, cx: &mut Context<'_>) -> Poll<()> {
        let mut sources = self.sources.borrow_mut();
        let source = &mut sources[key];
        if source.is_ready(dir) {
            return Poll::Ready(());
        }
        source.waiters[dir as usize].add(cx.waker());
        // Re-check after storing the waker. On one thread nothing can have changed in between,
        // but this is the order that never loses a wakeup, so it is the order to learn.
        if source.is_ready(dir) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
    // ANCHOR_END: poll_ready

    /// Removes the waiter of `dir` that wakes the same task as `waker`, if there is one (its
    /// operation was dropped before the event came).
    fn forget_waiter(&self, key: usize, dir: Direction, waker: &Waker) {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return;
        };
        let forgotten = source.waiters[dir as usize].remove(waker);
        drop(sources);
        drop(forgotten); // Dropped outside the borrow.
    }

    /// Forgets that `key` was ready in `dir`.
    ///
    /// `including_closed` is set after `WouldBlock`, when the kernel has just said the direction
    /// is not ready; it is unset after a short read or write, which says the buffer was drained or
    /// filled but says nothing about end of file.
    fn clear_ready(&self, key: usize, dir: Direction, including_closed: bool) {
        let mut sources = self.sources.borrow_mut();
        let source = &mut sources[key];
        source.ready[dir as usize] = false;
        if including_closed {
            source.closed[dir as usize] = false;
        }
    }

    /// Calls `f` with every stored waker, the socket it waits on and the direction (for the
    /// task table, which finds there what each task waits on).
    pub(crate) fn each_waiter(&self, mut f: impl FnMut(&Waker, Source, Direction)) {
        for (_, state) in self.sources.borrow().iter() {
            for dir in [Direction::Read, Direction::Write] {
                for waker in state.waiters[dir as usize].as_slice() {
                    f(waker, state.source, dir);
                }
            }
        }
    }

    /// Does any task wait on a socket?
    pub(crate) fn has_waiters(&self) -> bool {
        let sources = self.sources.borrow();
        let mut lists = sources.iter().flat_map(|(_, state)| state.waiters.iter());
        lists.any(|waiters| !waiters.as_slice().is_empty())
    }

    /// Marks the reactor as shut down (see `closed`).
    pub(crate) fn close(&self) {
        self.closed.set(true);
    }

    /// How many sources are registered.
    #[cfg(test)]
    pub(crate) fn source_count(&self) -> usize {
        self.sources.borrow().len()
    }

    /// How many wakers the reactor holds, over every source and direction.
    #[cfg(test)]
    pub(crate) fn waiter_count(&self) -> usize {
        let sources = self.sources.borrow();
        let lists = sources.iter().flat_map(|(_, state)| state.waiters.iter());
        lists.map(|waiters| waiters.as_slice().len()).sum()
    }
}

/// A mio socket registered with the reactor of the runtime it was created in.
///
/// Deregisters itself when dropped.
pub(crate) struct IoSource<S: mio::event::Source> {
    io: S,
    reactor: Rc<Reactor>,
    /// This source's key in `reactor.sources`.
    key: usize,
}

impl<S: mio::event::Source> IoSource<S> {
    /// Registers `io` with `reactor`; `source` describes it.
    pub(crate) fn new(mut io: S, source: Source, reactor: Rc<Reactor>) -> io::Result<IoSource<S>> {
        let key = reactor.register(&mut io, source)?;
        Ok(IoSource { io, reactor, key })
    }

    /// The mio socket, for operations that never block (addresses, options).
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    // ANCHOR: poll_io
    /// Runs the non-blocking operation `op` once the source is ready in `dir`; see the module
    /// docs for the steps.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        if self.reactor.closed.get() {
            return Poll::Ready(Err(io::Error::other(
                "this socket belongs to a stroll runtime that has shut down \
                 (a socket can only be used inside the block_on that created it)",
            )));
        }
        if coop::poll_budget(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            if self.reactor.poll_ready(self.key, dir, cx).is_pending() {
                return Poll::Pending;
            }
            match op(&self.io) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.reactor.clear_ready(self.key, dir, true);
                }
                result => {
                    coop::spend();
                    return Poll::Ready(result);
                }
            }
        }
    }
    // ANCHOR_END: poll_io

    // ANCHOR: short_transfer
    /// Records that an operation in `dir` moved fewer bytes than it asked for.
    ///
    /// For a stream socket that means the kernel buffer was drained (read) or filled (write),
    /// so the next attempt would return `WouldBlock`: skipping it saves one system call per
    /// message. tokio does the same.
    pub(crate) fn short_transfer(&self, dir: Direction) {
        self.reactor.clear_ready(self.key, dir, false);
    }
    // ANCHOR_END: short_transfer

    /// An operation in `dir` as a future: `poll` is called until it is ready (it normally
    /// calls [`IoSource::poll_io`]). Dropping the future before then takes back the waker it
    /// left in the reactor.
    pub(crate) fn op<F, R>(&self, dir: Direction, poll: F) -> IoOp<'_, S, F>
    where
        F: FnMut(&mut Context<'_>) -> Poll<io::Result<R>>,
    {
        IoOp {
            source: self,
            dir,
            poll,
            parked: None,
        }
    }
}

/// A socket operation in progress; see [`IoSource::op`].
pub(crate) struct IoOp<'a, S: mio::event::Source, F> {
    source: &'a IoSource<S>,
    dir: Direction,
    poll: F,
    /// The waker of the last poll that returned `Pending`: the one the reactor may still hold.
    parked: Option<Waker>,
}

// The future holds no self-references: moving it is fine.
impl<S: mio::event::Source, F> Unpin for IoOp<'_, S, F> {}

impl<S, F, R> Future for IoOp<'_, S, F>
where
    S: mio::event::Source,
    F: FnMut(&mut Context<'_>) -> Poll<io::Result<R>>,
{
    type Output = io::Result<R>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let poll = (self.poll)(cx);
        match poll {
            Poll::Pending => {
                let same = self
                    .parked
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()));
                if !same {
                    self.parked = Some(cx.waker().clone());
                }
            }
            Poll::Ready(_) => self.parked = None,
        }
        poll
    }
}

impl<S: mio::event::Source, F> Drop for IoOp<'_, S, F> {
    fn drop(&mut self) {
        if let Some(waker) = self.parked.take() {
            let source = self.source;
            source.reactor.forget_waiter(source.key, self.dir, &waker);
        }
    }
}

impl<S: mio::event::Source> Drop for IoSource<S> {
    fn drop(&mut self) {
        self.reactor.deregister(&mut self.io, self.key);
    }
}
