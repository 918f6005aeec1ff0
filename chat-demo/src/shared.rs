//! What the connection tasks of one async server share: the room, the count of open
//! connections, and each client's outbox with the wakers of the tasks waiting on it.
//!
//! Written against `std::task::Waker` alone, so any executor can drive it: the two servers on
//! stroll (through `on_stroll.rs`) and the tokio port (`examples/tokio_chat`) compile this same
//! file. What does touch a runtime (reading from a socket unless the room closes first,
//! spawning, timers) is in `on_stroll.rs` and the port's `on_tokio.rs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::room::{Limits, Line, OutQueue, Outbox, Overflow, Room};

/// What every connection task of one server shares.
pub struct Shared {
    pub room: RefCell<Room<Rc<TaskOutbox>>>,
    pub limits: Limits,
    /// Connections still open. Shutdown waits for this to reach zero.
    live: Cell<usize>,
    /// The waker of the shutdown, waiting for the last connection to close.
    none_left: Cell<Option<Waker>>,
}

impl Shared {
    /// `task_table`, when the runtime keeps one, is what `/tasks` answers with.
    pub fn new(limits: Limits, task_table: Option<fn() -> String>) -> Rc<Shared> {
        let mut room = Room::new(limits.clone());
        if let Some(table) = task_table {
            room = room.with_task_table(table);
        }
        Rc::new(Shared {
            room: RefCell::new(room),
            limits,
            live: Cell::new(0),
            none_left: Cell::new(None),
        })
    }

    /// Ready once no connection is left open.
    pub fn poll_none_left(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.live.get() == 0 {
            return Poll::Ready(());
        }
        self.none_left.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

/// Counts a connection as open while it exists; the last one to go wakes the shutdown. The
/// accept loop makes one per connection and hands it to the connection's handler.
pub struct LiveGuard(Rc<Shared>);

impl LiveGuard {
    pub fn new(shared: &Rc<Shared>) -> LiveGuard {
        shared.live.set(shared.live.get() + 1);
        LiveGuard(shared.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let live = self.0.live.get() - 1;
        self.0.live.set(live);
        if live == 0 {
            if let Some(waker) = self.0.none_left.take() {
                waker.wake();
            }
        }
    }
}

/// A client's outgoing queue: the queue, plus the wakers of the writer task that
/// sleeps until the queue has something, and of the reader, which must stop when the room
/// ends the connection.
pub struct TaskOutbox {
    queue: RefCell<OutQueue>,
    /// The writer task's waker while it waits for lines.
    writer: Cell<Option<Waker>>,
    /// The reader's waker while it waits for the client.
    reader: Cell<Option<Waker>>,
}

impl TaskOutbox {
    pub fn new(max_queue: usize) -> Rc<TaskOutbox> {
        Rc::new(TaskOutbox {
            queue: RefCell::new(OutQueue::new(max_queue)),
            writer: Cell::new(None),
            reader: Cell::new(None),
        })
    }

    // ANCHOR: poll_work
    /// Ready when there are lines to write or the connection is closing.
    pub fn poll_work(&self, cx: &mut Context<'_>) -> Poll<()> {
        let queue = self.queue.borrow();
        if queue.has_lines() || queue.is_closing() {
            Poll::Ready(())
        } else {
            self.writer.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }
    // ANCHOR_END: poll_work

    /// Ready once the room has ended the connection (the client left, was cut off, or the
    /// server is stopping): the reader stops reading for the room then.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.queue.borrow().is_closing() {
            Poll::Ready(())
        } else {
            self.reader.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }

    /// Moves the queued lines into `buf` (see [`OutQueue::take_into`]).
    pub fn take_into(&self, buf: &mut Vec<u8>) {
        self.queue.borrow_mut().take_into(buf);
    }

    /// `n` bytes were written.
    pub fn sent(&self, n: usize) {
        self.queue.borrow_mut().sent(n);
    }

    /// Should the writer stop: closing, with everything written?
    pub fn finished(&self) -> bool {
        self.queue.borrow().is_finished()
    }

    /// For a client cut off for reading too slowly, when to stop waiting for its writer.
    pub fn give_up_at(&self) -> Option<Instant> {
        self.queue.borrow().give_up_at()
    }

    fn wake(&self, slot: &Cell<Option<Waker>>) {
        if let Some(waker) = slot.take() {
            waker.wake();
        }
    }
}

// ANCHOR: outbox_push
impl Outbox for Rc<TaskOutbox> {
    fn push(&self, line: &Line) -> Result<(), Overflow> {
        self.queue.borrow_mut().push(line)?;
        self.wake(&self.writer);
        Ok(())
    }
    // ANCHOR_END: outbox_push

    fn close(&self) {
        self.queue.borrow_mut().close();
        self.wake(&self.writer);
        self.wake(&self.reader);
    }

    fn cut_off(&self, farewell: &Line) {
        self.queue.borrow_mut().cut_off(farewell);
        self.wake(&self.writer);
        self.wake(&self.reader);
    }
}
