//! The room: who is connected, their nicknames, and a bounded outgoing queue per client.
//!
//! All four servers share this code. They differ only in how a connection's state is kept and
//! how a client's writer learns that its queue has something new: a condition variable
//! (threads), a "needs writing" list (callbacks), or a task's `Waker` (state machine, async).
//! That difference is the [`Outbox`] trait; the queue itself, [`OutQueue`], is the same for all.
//!
//! Broadcasting never writes to a socket. It appends one shared copy of the line ([`Line`], an
//! `Arc<[u8]>`) to each recipient's queue and pokes its writer. A recipient whose queue would
//! pass `max_queue` bytes is cut off ("* nick left" to the others) rather than allowed to grow
//! without bound or to make the room wait.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{self, parse_command, say, validate_nick, Command};

/// One line of output, shared by all the queues it was broadcast to.
pub type Line = Arc<[u8]>;

/// Identifies a connection for as long as it is in the room.
pub type ClientId = u64;

/// The limits every server enforces (command-line options of `chat-demo serve`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest line a client may send, in bytes.
    pub max_line: usize,
    /// The most bytes waiting to be written to one client.
    pub max_queue: usize,
    /// The most connections at once; one more is told `! server full`.
    pub max_clients: usize,
    /// How long a new connection has to send a valid nickname.
    pub login_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 4096,
            max_queue: 1 << 20,
            max_clients: 10_000,
            login_timeout: Duration::from_secs(30),
        }
    }
}

/// A client's queue would pass `max_queue`: it reads too slowly and must be cut off.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// The outgoing queue of one client: lines waiting to be written, in order.
#[derive(Debug)]
pub struct OutQueue {
    lines: VecDeque<Line>,
    /// Bytes queued or taken by the writer but not yet written.
    /// Invariant: `pending <= max`, but for the farewell of a client cut off.
    pending: usize,
    max: usize,
    /// No more lines will be queued: the writer flushes what is left, then closes.
    closing: bool,
    /// When the client was cut off for reading too slowly: what was queued was dropped for one
    /// last line saying why, which it has [`CUT_OFF_GRACE`](crate::server::CUT_OFF_GRACE) to
    /// read.
    cut_off_at: Option<Instant>,
}

impl OutQueue {
    pub fn new(max: usize) -> OutQueue {
        OutQueue {
            lines: VecDeque::new(),
            pending: 0,
            max,
            closing: false,
            cut_off_at: None,
        }
    }

    /// Appends a line, unless that would pass the bound.
    pub fn push(&mut self, line: &Line) -> Result<(), Overflow> {
        if self.closing {
            return Ok(()); // The connection is ending; nothing more goes out.
        }
        if self.pending + line.len() > self.max {
            return Err(Overflow);
        }
        self.pending += line.len();
        self.lines.push_back(line.clone());
        Ok(())
    }

    /// Moves every queued line into `buf`, so the writer can send them all in one write
    /// (coalescing: one system call for many lines). The bytes still count as pending until
    /// [`sent`](OutQueue::sent) says they were written.
    pub fn take_into(&mut self, buf: &mut Vec<u8>) {
        for line in self.lines.drain(..) {
            buf.extend_from_slice(&line);
        }
    }

    /// The writer wrote `n` bytes of what it took.
    pub fn sent(&mut self, n: usize) {
        self.pending -= n;
    }

    pub fn has_lines(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Asks the writer to flush what is queued and then close the connection.
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// Cuts the client off: drops what is queued for `farewell`, which goes in even though the
    /// queue is full (so the bound can be passed by that one line). The writer finishes the
    /// write it is in, sends the farewell, and closes.
    pub fn cut_off(&mut self, farewell: &Line) {
        let dropped: usize = self.lines.drain(..).map(|line| line.len()).sum();
        self.pending = self.pending - dropped + farewell.len();
        self.lines.push_back(farewell.clone());
        self.closing = true;
        self.cut_off_at = Some(Instant::now());
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Closing, and everything was written: the writer's work is over.
    pub fn is_finished(&self) -> bool {
        self.closing && self.lines.is_empty()
    }

    /// For a client cut off for reading too slowly, when to stop waiting for it to read.
    pub fn give_up_at(&self) -> Option<Instant> {
        self.cut_off_at.map(|at| at + crate::server::CUT_OFF_GRACE)
    }
}

/// A client's outgoing queue, as each server keeps it: an [`OutQueue`] plus the way to tell the
/// client's writer that the queue changed.
pub trait Outbox {
    /// Appends a line and wakes the writer; `Err(Overflow)` if the queue is full.
    fn push(&self, line: &Line) -> Result<(), Overflow>;
    /// The writer should flush what is queued, then close the connection.
    fn close(&self);
    /// The client read too slowly: drop what is queued, send `farewell` (though the queue is
    /// full), then close.
    fn cut_off(&self, farewell: &Line);
}

/// What the connection should do after the room handled its line.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Flow {
    Continue,
    /// The client said `/quit`: stop reading; the writer flushes and closes.
    Quit,
    /// The client said `/block MS`: the server should block its thread that long, outside
    /// the room's lock, then go on. On an event loop this stalls every client; with a thread
    /// per client only this one.
    Block(Duration),
}

/// The longest `/block` allowed, in milliseconds.
pub const MAX_BLOCK_MS: u64 = 5000;

impl Flow {
    /// Carries out a `Block`: the worst sin of async code, committed on purpose.
    pub fn block_if_asked(self) {
        if let Flow::Block(duration) = self {
            std::thread::sleep(duration);
        }
    }
}

/// One connection in the room.
struct Member<O> {
    /// `None` until the client has chosen a valid nickname.
    nick: Option<String>,
    outbox: O,
}

/// The room: all connections, logged in or not.
pub struct Room<O: Outbox> {
    limits: Limits,
    members: BTreeMap<ClientId, Member<O>>,
    /// Nickname to client. Invariant: holds exactly the nicknames of logged-in members.
    nicks: HashMap<String, ClientId>,
    next_id: ClientId,
    /// What `/tasks` shows: the runtime's task table, for the servers on stroll.
    task_table: Option<fn() -> String>,
    /// The server is stopping: nobody else gets in.
    shutting_down: bool,
}

impl<O: Outbox> Room<O> {
    pub fn new(limits: Limits) -> Room<O> {
        Room {
            limits,
            members: BTreeMap::new(),
            nicks: HashMap::new(),
            next_id: 1,
            task_table: None,
            shutting_down: false,
        }
    }

    /// Lets `/tasks` answer with `table()` (the servers running on stroll).
    pub fn with_task_table(mut self, table: fn() -> String) -> Room<O> {
        self.task_table = Some(table);
        self
    }

    /// A new connection. Greets it and returns its id; or, if the room is full or the server
    /// is stopping, queues why on `outbox`, closes it and returns `None`. Either way the
    /// caller's writer then does the rest, as for every connection.
    pub fn connect(&mut self, outbox: O) -> Option<ClientId> {
        let refusal = if self.shutting_down {
            Some(say::refused_shutting_down())
        } else if self.members.len() >= self.limits.max_clients {
            Some(say::server_full())
        } else {
            None
        };
        if let Some(why) = refusal {
            let _ = outbox.push(&why.into_bytes().into());
            outbox.close();
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.members.insert(id, Member { nick: None, outbox });
        self.send(id, say::greeting());
        Some(id)
    }

    /// Is `id` still in the room? Not once it left, was cut off, or the server stopped.
    pub fn contains(&self, id: ClientId) -> bool {
        self.members.contains_key(&id)
    }

    /// Is `id` logged in (has it chosen a nickname)?
    pub fn is_logged_in(&self, id: ClientId) -> bool {
        self.members.get(&id).is_some_and(|m| m.nick.is_some())
    }

    /// Handles one complete line from `id`.
    pub fn handle_line(&mut self, id: ClientId, raw: &[u8]) -> Flow {
        let Some(member) = self.members.get(&id) else {
            return Flow::Quit; // Cut off meanwhile.
        };
        let nick = member.nick.clone();
        let text = protocol::clean_text(raw);
        let command = parse_command(&text);
        match (nick, command) {
            (_, Command::Empty) => Flow::Continue,
            (_, Command::Quit) => {
                self.send(id, say::bye());
                self.disconnect(id);
                Flow::Quit
            }
            (None, _) => {
                self.try_login(id, &text);
                Flow::Continue
            }
            (Some(nick), Command::Message(text)) => {
                let line = say::message(&nick, text);
                self.broadcast(Some(id), line);
                Flow::Continue
            }
            (Some(_), Command::Who) => {
                let mut nicks: Vec<&str> = self.nicks.keys().map(String::as_str).collect();
                nicks.sort_unstable();
                let line = say::online(&nicks);
                self.send(id, line);
                Flow::Continue
            }
            (Some(_), Command::Nick(new)) => {
                self.rename(id, new);
                Flow::Continue
            }
            (Some(_), Command::Tasks) => {
                let reply = match self.task_table {
                    Some(table) => say::notice_lines(&table()),
                    None => say::tasks_unavailable(),
                };
                self.send(id, reply);
                Flow::Continue
            }
            (Some(_), Command::Block(argument)) => match argument.parse::<u64>() {
                Ok(millis @ 1..=MAX_BLOCK_MS) => {
                    self.send(id, say::blocking(millis));
                    Flow::Block(Duration::from_millis(millis))
                }
                _ => {
                    self.send(id, say::block_usage(MAX_BLOCK_MS));
                    Flow::Continue
                }
            },
            (Some(_), Command::Unknown(word)) => {
                let line = say::unknown_command(word);
                self.send(id, line);
                Flow::Continue
            }
        }
    }

    /// The client sent a line longer than `max_line`.
    pub fn line_too_long(&mut self, id: ClientId) {
        self.send(id, say::line_too_long(self.limits.max_line));
    }

    /// The client gave no nickname in time: tell it and close.
    pub fn login_timeout(&mut self, id: ClientId) {
        self.send(id, say::login_timeout(self.limits.login_timeout));
        self.disconnect(id);
    }

    /// The connection ended (end of file, reset, `/quit`, cut off). Announces the departure
    /// once, and asks the writer to flush and close. Calling it again does nothing.
    pub fn disconnect(&mut self, id: ClientId) {
        let Some(member) = self.members.remove(&id) else {
            return;
        };
        member.outbox.close();
        if let Some(nick) = member.nick {
            self.nicks.remove(&nick);
            self.broadcast(None, say::left(&nick));
        }
    }

    /// The server is stopping: tell everyone, have every writer flush and close, and let
    /// nobody in from now on.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
        let line: Line = say::shutting_down().into_bytes().into();
        for member in std::mem::take(&mut self.members).into_values() {
            let _ = member.outbox.push(&line);
            member.outbox.close();
        }
        self.nicks.clear();
    }

    /// How many connections are in the room.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    fn try_login(&mut self, id: ClientId, nick: &str) {
        if let Err(why) = validate_nick(nick) {
            self.send(id, say::invalid_nick(nick, &why));
            return;
        }
        if self.nicks.contains_key(nick) {
            self.send(id, say::nick_taken(nick));
            return;
        }
        self.nicks.insert(nick.to_string(), id);
        if let Some(member) = self.members.get_mut(&id) {
            member.nick = Some(nick.to_string());
        }
        self.send(id, say::welcome(nick, self.nicks.len()));
        self.broadcast(Some(id), say::joined(nick));
    }

    fn rename(&mut self, id: ClientId, new: &str) {
        let old = self.members[&id].nick.clone().unwrap_or_default();
        if old == new {
            self.send(id, say::you_are_now(new));
            return;
        }
        if let Err(why) = validate_nick(new) {
            self.send(id, say::invalid_nick(new, &why));
            return;
        }
        if self.nicks.contains_key(new) {
            self.send(id, say::nick_taken(new));
            return;
        }
        self.nicks.remove(&old);
        self.nicks.insert(new.to_string(), id);
        if let Some(member) = self.members.get_mut(&id) {
            member.nick = Some(new.to_string());
        }
        self.send(id, say::you_are_now(new));
        self.broadcast(Some(id), say::renamed(&old, new));
    }

    /// Queues `text` for one client; cuts it off if its queue is full.
    fn send(&mut self, id: ClientId, text: String) {
        let line: Line = text.into_bytes().into();
        let overflowed = match self.members.get(&id) {
            Some(member) => member.outbox.push(&line).is_err(),
            None => false,
        };
        if overflowed {
            self.cut_off(vec![id]);
        }
    }

    /// Queues `text` for every logged-in client except `from`, sharing one copy of it.
    fn broadcast(&mut self, from: Option<ClientId>, text: String) {
        let line: Line = text.into_bytes().into();
        let mut overflowed = Vec::new();
        for (&id, member) in &self.members {
            if Some(id) == from || member.nick.is_none() {
                continue;
            }
            if member.outbox.push(&line).is_err() {
                overflowed.push(id);
            }
        }
        if !overflowed.is_empty() {
            self.cut_off(overflowed);
        }
    }

    /// Disconnects clients whose queues overflowed, telling each why. Their departure notices
    /// may overflow others, so this works through a list until it is empty.
    fn cut_off(&mut self, mut slow: Vec<ClientId>) {
        let farewell: Line = say::too_slow(self.limits.max_queue).into_bytes().into();
        while let Some(id) = slow.pop() {
            let Some(member) = self.members.remove(&id) else {
                continue;
            };
            member.outbox.cut_off(&farewell);
            let Some(nick) = member.nick else {
                continue;
            };
            self.nicks.remove(&nick);
            let line: Line = say::left(&nick).into_bytes().into();
            for (&other, member) in &self.members {
                if member.nick.is_some() && member.outbox.push(&line).is_err() {
                    slow.push(other);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// An outbox that records what it was given.
    #[derive(Clone)]
    struct Recorder(Rc<RefCell<OutQueue>>);

    impl Outbox for Recorder {
        fn push(&self, line: &Line) -> Result<(), Overflow> {
            self.0.borrow_mut().push(line)
        }
        fn close(&self) {
            self.0.borrow_mut().close();
        }
        fn cut_off(&self, farewell: &Line) {
            self.0.borrow_mut().cut_off(farewell);
        }
    }

    impl Recorder {
        fn new(max: usize) -> Recorder {
            Recorder(Rc::new(RefCell::new(OutQueue::new(max))))
        }
        fn drain(&self) -> String {
            let mut buf = Vec::new();
            let mut queue = self.0.borrow_mut();
            queue.take_into(&mut buf);
            queue.sent(buf.len());
            String::from_utf8(buf).unwrap()
        }
    }

    fn room() -> Room<Recorder> {
        Room::new(Limits::default())
    }

    #[test]
    fn login_then_chat_without_echo() {
        let mut room = room();
        let (a, b) = (Recorder::new(1 << 20), Recorder::new(1 << 20));
        let ida = room.connect(a.clone()).unwrap();
        let idb = room.connect(b.clone()).unwrap();
        room.handle_line(ida, b"alice");
        room.handle_line(idb, b"bob");
        a.drain();
        b.drain();
        room.handle_line(ida, b"hi");
        assert_eq!(b.drain(), "alice: hi\n");
        assert_eq!(a.drain(), "");
    }

    #[test]
    fn a_full_queue_cuts_the_client_off_and_tells_the_others() {
        let mut room = room();
        let slow = Recorder::new(200);
        let fast = Recorder::new(1 << 20);
        let id_slow = room.connect(slow.clone()).unwrap();
        let id_fast = room.connect(fast.clone()).unwrap();
        room.handle_line(id_slow, b"slow");
        room.handle_line(id_fast, b"fast");
        fast.drain();
        for _ in 0..20 {
            room.handle_line(id_fast, b"0123456789");
        }
        assert!(slow.0.borrow().give_up_at().is_some());
        // What was queued is dropped for the line that says why (with the room's limit).
        assert_eq!(
            slow.drain(),
            "! disconnected: you read too slowly (more than 1 MiB waiting)\n"
        );
        assert_eq!(fast.drain(), "* slow left\n");
        assert_eq!(room.len(), 1);
    }

    #[test]
    fn disconnect_announces_once() {
        let mut room = room();
        let (a, b) = (Recorder::new(1 << 20), Recorder::new(1 << 20));
        let ida = room.connect(a.clone()).unwrap();
        let idb = room.connect(b.clone()).unwrap();
        room.handle_line(ida, b"alice");
        room.handle_line(idb, b"bob");
        b.drain();
        room.disconnect(ida);
        room.disconnect(ida);
        assert_eq!(b.drain(), "* alice left\n");
    }

    #[test]
    fn the_room_refuses_connections_past_max_clients() {
        let mut room = Room::new(Limits {
            max_clients: 1,
            ..Limits::default()
        });
        assert!(room.connect(Recorder::new(100)).is_some());
        let refused = Recorder::new(100);
        assert!(room.connect(refused.clone()).is_none());
        assert_eq!(refused.drain(), "! server full\n");
        assert!(refused.0.borrow().is_finished());
    }

    #[test]
    fn after_shutdown_nobody_gets_in() {
        let mut room = room();
        let alice = Recorder::new(1 << 20);
        let id = room.connect(alice.clone()).unwrap();
        room.handle_line(id, b"alice");
        alice.drain();
        room.shutdown();
        assert_eq!(alice.drain(), "* server shutting down\n");
        assert!(!room.contains(id));
        let late = Recorder::new(100);
        assert!(room.connect(late.clone()).is_none());
        assert_eq!(late.drain(), "! server shutting down\n");
    }
}
