//! `chat-demo swarm`: a load generator for the chat, written on stroll itself.
//!
//! It logs in `--clients` chatting clients and `--idle` idle ones. Each chatting client sends
//! `--messages` messages at `--rate` per second; every message carries the sender's index, a
//! sequence number and the time it was sent. Every chatting client reads everything the room
//! sends and checks, per sender, that the sequence numbers arrive complete and in order, and
//! records each message's delivery latency (time received minus time sent, both read from
//! the system clock, which every process on the machine shares) in an HDR histogram.
//!
//! One process holds at most [`PER_PROCESS`] connections (a descriptor each); beyond that, the
//! swarm runs copies of this binary (`chat-demo swarm-worker`, hidden) that each take a share,
//! and talks to them over pipes, one JSON object a line:
//!
//! ```text
//! coordinator                                   worker (one per process)
//!      ── spawn with --plan {...} ─────────────▶ logs in its clients
//!      ◀──────────────── {"progress": {...}} ── every 200 ms
//!      ◀─────────────────── {"ready": {...}} ── all logged in (or failed)
//!      ── go [absent senders] ─────────────────▶ sends, reads, checks
//!      ◀────────────────── {"report": {...}} ── counts and latency histogram
//!      ── stop (or end of file) ───────────────▶ closes its connections, exits
//! ```
//!
//! With few enough connections for one process, the same worker code runs on a thread of the
//! coordinator, talking over channels instead of pipes. The last line of the output is
//! `swarm: {json}`, for `chat-demo compare` and other scripts.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use stroll::net::TcpStream;
use stroll::time::{interval, interval_at, sleep, timeout};

use crate::protocol::{say, validate_nick};

/// The word that starts every swarm message; the rest is `RUN SENDER SEQ SENT_US`. Lines
/// without it (notices, other people's messages, an older swarm's) are ignored.
const MARK: &str = "swarm-msg";

/// Most connections one process opens: each is a file descriptor, and a process here may hold
/// at most 20,000 (`ulimit -Hn`). Past this, the connections are spread over child processes.
pub const PER_PROCESS: usize = 14_000;

/// Descriptors a process keeps for itself (stdio, the runtime's epoll and pipes...).
const FD_RESERVE: usize = 200;

/// Logins in flight at once in one process: enough to keep a server busy, few enough not to
/// overflow its listen backlog (connections past it wait a second for a retried SYN).
const CONCURRENT_LOGINS: usize = 128;

/// How often a worker reports its counts.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// How long one login (connect, greeting, nickname, welcome) may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long past `--timeout` the coordinator waits for a worker's report before giving up on it.
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// `chat-demo swarm`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct SwarmArgs {
    /// The server to load.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub addr: SocketAddr,
    /// Logged-in clients that chat: each sends --messages messages and reads everyone's.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Connections that only log in and stay (they read what the room sends, and drop it).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// Messages each chatting client sends.
    #[arg(long, default_value_t = 100)]
    pub messages: u32,
    /// Messages per second per chatting client; 0 sends as fast as possible.
    #[arg(long, default_value_t = 10.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Start of every nickname; then the last 4 digits of the pid, `c` (chatting) or `i`
    /// (idle) and an index, e.g. swarm4711c0. Nicknames are at most 16 of A-Z a-z 0-9 _ -.
    #[arg(long, default_value = "swarm")]
    pub prefix: String,
    /// Seconds the whole run may take, logins included; messages still missing then are lost.
    #[arg(long, default_value_t = 60.0, value_parser = crate::parse_seconds)]
    pub timeout: f64,
    /// Most connections in one process (default: 14,000, or fewer if `ulimit -n` is lower);
    /// more are spread over child processes.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub per_process: Option<u64>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
    if rate.is_finite() && (0.0..=1e6).contains(&rate) {
        Ok(rate)
    } else {
        Err("must be from 0 (as fast as possible) to 1000000 messages per second".to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// What a worker is asked to do, and what it says back.

/// One worker's share of the swarm.
#[derive(Clone, Debug)]
pub struct Plan {
    pub addr: SocketAddr,
    /// Written in every message, so that lines from another run are ignored.
    pub run: u64,
    /// Nicknames are `{nick_base}c{index}` (chatting) and `{nick_base}i{index}` (idle).
    pub nick_base: String,
    /// How many chatting clients the whole swarm has (the senders every reader hears from).
    pub senders: usize,
    /// This worker's chatting clients, as a range of indices `[start, end)`.
    pub chatters: (usize, usize),
    /// This worker's idle connections, `[start, end)`.
    pub idle: (usize, usize),
    pub messages: u32,
    /// Messages per second per client; 0: as fast as possible.
    pub rate: f64,
    /// Times in messages are microseconds of the system clock since this one.
    pub base_us: u64,
    /// Everything stops at this time (microseconds since the Unix epoch).
    pub deadline_us: u64,
    /// How long one login may take, in seconds.
    pub login_timeout_s: f64,
}

impl Plan {
    /// A worker that only holds `idle` connections logged in, until told to stop (or until
    /// `hold` has passed): how `chat-demo compare` keeps idle clients on a server.
    pub fn idle_only(
        addr: SocketAddr,
        nick_base: &str,
        idle: (usize, usize),
        hold: Duration,
    ) -> Plan {
        let now = epoch_us();
        Plan {
            addr,
            run: u64::from(std::process::id()),
            nick_base: nick_base.to_string(),
            senders: 0,
            chatters: (0, 0),
            idle,
            messages: 0,
            rate: 0.0,
            base_us: now,
            deadline_us: now + hold.as_micros() as u64,
            login_timeout_s: 60.0,
        }
    }

    fn chatter_nick(&self, index: usize) -> String {
        format!("{}c{index}", self.nick_base)
    }

    fn idle_nick(&self, index: usize) -> String {
        format!("{}i{index}", self.nick_base)
    }

    fn to_json(&self) -> String {
        json!({
            "addr": self.addr.to_string(),
            "run": self.run,
            "nick_base": self.nick_base,
            "senders": self.senders,
            "chatters": [self.chatters.0, self.chatters.1],
            "idle": [self.idle.0, self.idle.1],
            "messages": self.messages,
            "rate": self.rate,
            "base_us": self.base_us,
            "deadline_us": self.deadline_us,
            "login_timeout_s": self.login_timeout_s,
        })
        .to_string()
    }

    fn from_json(text: &str) -> Result<Plan, String> {
        let v: Value = serde_json::from_str(text).map_err(|err| format!("bad plan: {err}"))?;
        let num = |key: &str| {
            v[key]
                .as_u64()
                .ok_or_else(|| format!("bad plan: no number {key}"))
        };
        let range = |key: &str| -> Result<(usize, usize), String> {
            let pair = v[key].as_array().filter(|a| a.len() == 2);
            match pair.map(|a| (a[0].as_u64(), a[1].as_u64())) {
                Some((Some(start), Some(end))) if start <= end => {
                    Ok((start as usize, end as usize))
                }
                _ => Err(format!("bad plan: no range {key}")),
            }
        };
        Ok(Plan {
            addr: v["addr"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .ok_or("bad plan: no addr")?,
            run: num("run")?,
            nick_base: v["nick_base"]
                .as_str()
                .ok_or("bad plan: no nick_base")?
                .to_string(),
            senders: num("senders")? as usize,
            chatters: range("chatters")?,
            idle: range("idle")?,
            messages: num("messages")? as u32,
            rate: v["rate"].as_f64().ok_or("bad plan: no rate")?,
            base_us: num("base_us")?,
            deadline_us: num("deadline_us")?,
            login_timeout_s: v["login_timeout_s"]
                .as_f64()
                .ok_or("bad plan: no login_timeout_s")?,
        })
    }
}

/// Why connections failed or were dropped, with how many each.
pub type Reasons = BTreeMap<String, u64>;

/// A worker's running counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Connections logged in.
    pub connected: u64,
    /// Connections that could not log in.
    pub failed: u64,
    /// Messages sent.
    pub sent: u64,
    /// Swarm messages received (by all chatting clients together).
    pub received: u64,
    /// Logged-in connections the server closed before the end.
    pub dropped: u64,
}

impl Progress {
    fn add(&mut self, other: &Progress) {
        self.connected += other.connected;
        self.failed += other.failed;
        self.sent += other.sent;
        self.received += other.received;
        self.dropped += other.dropped;
    }

    fn to_json(self) -> Value {
        json!({
            "connected": self.connected,
            "failed": self.failed,
            "sent": self.sent,
            "received": self.received,
            "dropped": self.dropped,
        })
    }

    fn from_json(v: &Value) -> Progress {
        let num = |key: &str| v[key].as_u64().unwrap_or(0);
        Progress {
            connected: num("connected"),
            failed: num("failed"),
            sent: num("sent"),
            received: num("received"),
            dropped: num("dropped"),
        }
    }
}

/// A worker's final word.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub progress: Progress,
    /// Messages that arrived out of order (after a later one from the same sender) or skipped
    /// over (a later one arrived first).
    pub out_of_order: u64,
    pub failures: Reasons,
    pub drops: Reasons,
    /// The latency histogram, as (microseconds, count) pairs.
    pub latency: Vec<(u64, u64)>,
}

/// What a worker tells the coordinator.
#[derive(Clone, Debug)]
pub enum Event {
    Progress(Progress),
    /// Every login is done (or failed). `absent` lists the chatting clients that failed.
    Ready {
        progress: Progress,
        absent: Vec<usize>,
        failures: Reasons,
    },
    Report(Report),
    /// The worker ended; the text says why if it did not end normally.
    Gone(String),
}

fn reasons_json(reasons: &Reasons) -> Value {
    Value::Object(
        reasons
            .iter()
            .map(|(why, n)| (why.clone(), json!(n)))
            .collect(),
    )
}

fn reasons_from(v: &Value) -> Reasons {
    v.as_object()
        .map(|map| {
            map.iter()
                .map(|(why, n)| (why.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

impl Event {
    fn to_json(&self) -> String {
        match self {
            Event::Progress(p) => json!({ "progress": p.to_json() }),
            Event::Ready {
                progress,
                absent,
                failures,
            } => json!({ "ready": {
                "progress": progress.to_json(),
                "absent": absent,
                "failures": reasons_json(failures),
            }}),
            Event::Report(r) => json!({ "report": {
                "progress": r.progress.to_json(),
                "out_of_order": r.out_of_order,
                "failures": reasons_json(&r.failures),
                "drops": reasons_json(&r.drops),
                "latency": r.latency,
            }}),
            Event::Gone(why) => json!({ "gone": why }),
        }
        .to_string()
    }

    /// Parses a line a worker printed; `None` if it is not an event.
    fn from_json(line: &str) -> Option<Event> {
        let v: Value = serde_json::from_str(line).ok()?;
        if let Some(p) = v.get("progress") {
            return Some(Event::Progress(Progress::from_json(p)));
        }
        if let Some(r) = v.get("ready") {
            return Some(Event::Ready {
                progress: Progress::from_json(&r["progress"]),
                absent: r["absent"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|i| i.as_u64()).map(|i| i as usize))
                    .into_iter()
                    .flatten()
                    .collect(),
                failures: reasons_from(&r["failures"]),
            });
        }
        if let Some(r) = v.get("report") {
            let latency = r["latency"]
                .as_array()
                .map(|pairs| {
                    pairs
                        .iter()
                        .filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                        .collect()
                })
                .unwrap_or_default();
            return Some(Event::Report(Report {
                progress: Progress::from_json(&r["progress"]),
                out_of_order: r["out_of_order"].as_u64().unwrap_or(0),
                failures: reasons_from(&r["failures"]),
                drops: reasons_from(&r["drops"]),
                latency,
            }));
        }
        v.get("gone")
            .map(|why| Event::Gone(why.as_str().unwrap_or_default().to_string()))
    }
}

/// What the coordinator tells a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Start chatting; the listed chatting clients failed to log in (nobody waits for them).
    Go(Vec<usize>),
    /// Close everything and end.
    Stop,
}

impl Control {
    fn to_line(&self) -> String {
        match self {
            Control::Go(absent) => format!("go {}\n", json!(absent)),
            Control::Stop => "stop\n".to_string(),
        }
    }

    fn from_line(line: &str) -> Option<Control> {
        let line = line.trim();
        if line == "stop" {
            return Some(Control::Stop);
        }
        let absent: Vec<usize> = serde_json::from_str(line.strip_prefix("go ")?).ok()?;
        Some(Control::Go(absent))
    }
}

/// Microseconds of the system clock since the Unix epoch: a clock every process on the machine
/// reads the same, so a message's send time (in one process) and receive time (in another)
/// can be subtracted.
fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// An `Instant` for a time given in microseconds since the epoch.
fn instant_at(epoch_micros: u64) -> Instant {
    Instant::now() + Duration::from_micros(epoch_micros.saturating_sub(epoch_us()))
}

// ---------------------------------------------------------------------------------------------
// The worker: the clients themselves, on stroll.

/// One chatting client's reader, as the worker's main loop sees it.
#[derive(Default)]
struct ReaderState {
    received: u64,
    /// The connection ended (the server closed it, or an error).
    closed: bool,
}

/// Everything one worker's tasks share.
struct Work {
    plan: Plan,
    progress: Cell<Progress>,
    out_of_order: Cell<u64>,
    failures: RefCell<Reasons>,
    drops: RefCell<Reasons>,
    latency: RefCell<Histogram<u64>>,
    /// Chatting clients of this worker that could not log in.
    absent: RefCell<Vec<usize>>,
    /// One per logged-in chatting client.
    readers: RefCell<Vec<ReaderState>>,
    senders_done: Cell<usize>,
    /// Set when the report is made: connections closing after that are not drops.
    finished: Cell<bool>,
    /// One buffer shared by every idle connection's reads: what they read is thrown away, and
    /// each read completes within one poll, so they never need it at the same time.
    scratch: RefCell<Vec<u8>>,
}

impl Work {
    fn new(plan: Plan) -> Work {
        // Latencies from 1 µs to an hour, 3 significant digits.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        Work {
            plan,
            progress: Cell::default(),
            out_of_order: Cell::new(0),
            failures: RefCell::default(),
            drops: RefCell::default(),
            latency: RefCell::new(latency),
            absent: RefCell::default(),
            readers: RefCell::default(),
            senders_done: Cell::new(0),
            finished: Cell::new(false),
            scratch: RefCell::new(vec![0; 64 * 1024]),
        }
    }

    fn count(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.get();
        change(&mut progress);
        self.progress.set(progress);
    }

    fn failed(&self, why: String) {
        self.count(|p| p.failed += 1);
        *self.failures.borrow_mut().entry(why).or_insert(0) += 1;
    }

    fn dropped(&self, why: String) {
        if self.finished.get() {
            return;
        }
        self.count(|p| p.dropped += 1);
        *self.drops.borrow_mut().entry(why).or_insert(0) += 1;
    }

    fn report(&self) -> Report {
        let latency = self.latency.borrow();
        Report {
            progress: self.progress.get(),
            out_of_order: self.out_of_order.get(),
            failures: self.failures.borrow().clone(),
            drops: self.drops.borrow().clone(),
            latency: latency
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }
}

/// Runs a worker in this thread until it is told to stop; `emit` carries its events out.
pub fn run_worker(plan: Plan, emit: Rc<dyn Fn(Event)>, control: Receiver<Control>) {
    stroll::block_on(work(plan, emit, control));
}

/// `chat-demo swarm-worker --plan JSON`: a worker process. Events go to stdout, one JSON object
/// a line; control lines come on stdin (its end means stop).
pub fn run_worker_process(plan: &str) -> io::Result<()> {
    let plan =
        Plan::from_json(plan).map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(control) = Control::from_line(&line) {
                if tx.send(control).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Control::Stop);
    });
    let emit = |event: Event| {
        // If the coordinator is gone, nobody reads this: stdin's end stops us soon after.
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{}", event.to_json());
        let _ = out.flush();
    };
    run_worker(plan, Rc::new(emit), rx);
    Ok(())
}

async fn work(plan: Plan, emit: Rc<dyn Fn(Event)>, control: Receiver<Control>) {
    let deadline = instant_at(plan.deadline_us);
    let work = Rc::new(Work::new(plan));
    let ticker = {
        let (work, emit) = (work.clone(), emit.clone());
        stroll::spawn(async move {
            let mut tick = interval(PROGRESS_EVERY);
            loop {
                tick.tick().await;
                emit(Event::Progress(work.progress.get()));
            }
        })
    };
    let chatters = connect_all(&work, deadline).await;
    emit(Event::Ready {
        progress: work.progress.get(),
        absent: work.absent.borrow().clone(),
        failures: work.failures.borrow().clone(),
    });
    let (control, first) = next_control(control, deadline).await;
    let control = match first {
        Some(Control::Go(absent)) => {
            chat(&work, chatters, absent, deadline).await;
            control
        }
        // Told to stop, or nobody said anything in time.
        _ => None,
    };
    work.finished.set(true);
    ticker.abort();
    emit(Event::Progress(work.progress.get()));
    emit(Event::Report(work.report()));
    // Stay connected until told to stop: a client that closes while the server still has
    // unread data from it, or it from the server, may reset the connection, and the server
    // would lose the last lines of a slower sender still on the way to someone else.
    if let Some(control) = control {
        let _ = next_control(control, deadline + REPORT_GRACE).await;
    }
}

/// The next control message, or `None` if none came before `until` or the sender is gone.
/// Gives the receiver back (unless the wait ended with it).
async fn next_control(
    control: Receiver<Control>,
    until: Instant,
) -> (Option<Receiver<Control>>, Option<Control>) {
    let wait = until.saturating_duration_since(Instant::now());
    let job = stroll::task::spawn_blocking(move || {
        let got = control.recv_timeout(wait);
        (control, got)
    });
    match job.await {
        Ok((control, Ok(message))) => (Some(control), Some(message)),
        Ok((_, Err(RecvTimeoutError::Timeout))) | Ok((_, Err(RecvTimeoutError::Disconnected))) => {
            (None, None)
        }
        Err(_) => (None, None),
    }
}

/// A task builder with a name, for the task table (`STROLL_DEBUG=1`, traces).
fn named(name: &str) -> stroll::task::Builder {
    stroll::task::Builder::new().name(name)
}

/// Logs in every connection of the plan, [`CONCURRENT_LOGINS`] at a time. Returns the chatting
/// clients that made it, with the slot of their reader in `work.readers`.
async fn connect_all(work: &Rc<Work>, deadline: Instant) -> Vec<(usize, usize, Rc<TcpStream>)> {
    let plan = &work.plan;
    let jobs: Vec<(bool, usize)> = (plan.chatters.0..plan.chatters.1)
        .map(|i| (true, i))
        .chain((plan.idle.0..plan.idle.1).map(|i| (false, i)))
        .collect();
    let jobs = Rc::new(jobs);
    let next = Rc::new(Cell::new(0));
    let chatters = Rc::new(RefCell::new(Vec::new()));
    let loops: Vec<_> = (0..CONCURRENT_LOGINS.min(jobs.len()))
        .map(|_| {
            let (work, jobs, next, chatters) =
                (work.clone(), jobs.clone(), next.clone(), chatters.clone());
            stroll::spawn(async move {
                while let Some(&(chatting, index)) = jobs.get(next.get()) {
                    next.set(next.get() + 1);
                    login_one(&work, chatting, index, deadline, &chatters).await;
                }
            })
        })
        .collect();
    for handle in loops {
        let _ = handle.await;
    }
    let mut chatters = chatters.take();
    chatters.sort_by_key(|&(index, _, _)| index);
    chatters
}

async fn login_one(
    work: &Rc<Work>,
    chatting: bool,
    index: usize,
    deadline: Instant,
    chatters: &RefCell<Vec<(usize, usize, Rc<TcpStream>)>>,
) {
    let plan = &work.plan;
    let nick = if chatting {
        plan.chatter_nick(index)
    } else {
        plan.idle_nick(index)
    };
    let limit = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_secs_f64(plan.login_timeout_s));
    let result = match timeout(limit, login(plan.addr, &nick)).await {
        Ok(result) => result,
        Err(_) => Err("timed out logging in".to_string()),
    };
    match result {
        Ok((stream, leftover)) => {
            work.count(|p| p.connected += 1);
            let stream = Rc::new(stream);
            if chatting {
                let slot = {
                    let mut readers = work.readers.borrow_mut();
                    readers.push(ReaderState::default());
                    readers.len() - 1
                };
                let reader = chat_reader(work.clone(), slot, stream.clone(), leftover);
                drop(named(&format!("reader {nick}")).spawn(reader));
                chatters.borrow_mut().push((index, slot, stream));
            } else {
                drop(named(&format!("idle {nick}")).spawn(drain(work.clone(), stream)));
            }
        }
        Err(why) => {
            work.failed(why);
            if chatting {
                work.absent.borrow_mut().push(index);
            }
        }
    }
}

/// Connects, reads the greeting, sends the nickname and reads the welcome. Returns the stream
/// and whatever was read past the welcome line. The error is a short reason, the same for
/// every connection that failed the same way (so they can be counted together).
async fn login(addr: SocketAddr, nick: &str) -> Result<(TcpStream, Vec<u8>), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|err| format!("connect: {}", err.kind()))?;
    let _ = stream.set_nodelay(true);
    let mut pending = Vec::new();
    let greeting = read_line(&stream, &mut pending).await?;
    if greeting != say::greeting().trim_end() {
        return Err(format!(
            "the server said {greeting:?} instead of a greeting"
        ));
    }
    stream
        .write_all(format!("{nick}\n").as_bytes())
        .await
        .map_err(|err| format!("sending the nickname: {}", err.kind()))?;
    let welcome = read_line(&stream, &mut pending).await?;
    // `* hello NICK, you are in; N online. ...`: compare up to the `;`.
    let expected = say::welcome(nick, 0);
    let expected = &expected[..expected.find(';').unwrap_or(expected.len())];
    if !welcome.starts_with(expected) {
        return Err(format!(
            "the server answered the nickname with {:?}",
            welcome.replace(nick, "NICK")
        ));
    }
    Ok((stream, pending))
}

/// Reads one line (for the login), keeping what follows it in `pending`.
async fn read_line(stream: &TcpStream, pending: &mut Vec<u8>) -> Result<String, String> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]);
            return Ok(text.trim_end_matches('\r').to_string());
        }
        if pending.len() > 64 * 1024 {
            return Err("no end of line during login".to_string());
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return Err("closed by the server during login".to_string()),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(format!("during login: {}", err.kind())),
        }
    }
}

/// An idle connection: reads what the room sends (joins, leaves, the others' messages) and
/// throws it away, so that it never fills up, until the connection ends.
async fn drain(work: Rc<Work>, stream: Rc<TcpStream>) {
    loop {
        let read = std::future::poll_fn(|cx| {
            let mut scratch = work.scratch.borrow_mut();
            stream.poll_read(cx, &mut scratch)
        })
        .await;
        match read {
            Ok(0) => return work.dropped("closed by the server".to_string()),
            Ok(_) => {}
            Err(err) => return work.dropped(format!("read: {}", err.kind())),
        }
    }
}

/// A chatting client's reader: checks every swarm message it receives and records its latency.
async fn chat_reader(work: Rc<Work>, slot: usize, stream: Rc<TcpStream>, leftover: Vec<u8>) {
    let plan = &work.plan;
    // The next sequence number expected from each sender.
    let mut next = vec![0u32; plan.senders];
    let mut pending = leftover;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let now = epoch_us().saturating_sub(plan.base_us);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + end];
            start += end + 1;
            let Some((sender, seq, sent)) = parse_message(line, plan.run) else {
                continue;
            };
            let Some(expected) = next.get_mut(sender) else {
                continue; // Not a sender of this swarm.
            };
            if seq != *expected {
                work.out_of_order.set(work.out_of_order.get() + 1);
            }
            *expected = (*expected).max(seq.saturating_add(1));
            work.readers.borrow_mut()[slot].received += 1;
            work.count(|p| p.received += 1);
            work.latency
                .borrow_mut()
                .saturating_record(now.saturating_sub(sent).max(1));
        }
        pending.drain(..start);
        match stream.read(&mut buf).await {
            Ok(0) => {
                work.readers.borrow_mut()[slot].closed = true;
                return work.dropped("closed by the server".to_string());
            }
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(err) => {
                work.readers.borrow_mut()[slot].closed = true;
                return work.dropped(format!("read: {}", err.kind()));
            }
        }
    }
}

/// `NICK: swarm-msg RUN SENDER SEQ SENT_US` from this run: (sender, seq, sent_us).
fn parse_message(line: &[u8], run: u64) -> Option<(usize, u32, u64)> {
    let colon = line.windows(2).position(|w| w == b": ")?;
    let text = std::str::from_utf8(&line[colon + 2..]).ok()?;
    let mut words = text.split(' ');
    if words.next()? != MARK || words.next()?.parse::<u64>().ok()? != run {
        return None;
    }
    let sender = words.next()?.parse().ok()?;
    let seq = words.next()?.parse().ok()?;
    let sent = words.next()?.trim_end_matches('\r').parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    Some((sender, seq, sent))
}

/// The chat itself: every logged-in chatting client of this worker sends its messages, and the
/// readers (already running) count what arrives. Returns when everything was sent and every
/// reader has everything it should get (or lost its connection), or at the deadline.
async fn chat(
    work: &Rc<Work>,
    chatters: Vec<(usize, usize, Rc<TcpStream>)>,
    mut absent: Vec<usize>,
    deadline: Instant,
) {
    absent.sort_unstable();
    absent.dedup();
    let live = work.plan.senders.saturating_sub(absent.len()) as u64;
    let expect_each = u64::from(work.plan.messages) * live.saturating_sub(1);
    let local = chatters.len();
    let slots: Vec<usize> = chatters.iter().map(|&(_, slot, _)| slot).collect();
    for (index, _, stream) in chatters {
        let nick = work.plan.chatter_nick(index);
        let sender = send_messages(work.clone(), index, stream);
        drop(named(&format!("sender {nick}")).spawn(sender));
    }
    loop {
        let sent = work.senders_done.get() >= local;
        let heard = slots.iter().all(|&slot| {
            let reader = &work.readers.borrow()[slot];
            reader.received >= expect_each || reader.closed
        });
        if (sent && heard) || Instant::now() >= deadline {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
}

/// One chatting client's messages: `--messages` of them, `--rate` per second.
async fn send_messages(work: Rc<Work>, index: usize, stream: Rc<TcpStream>) {
    let plan = &work.plan;
    // Senders start spread over one period, rather than all at the same instant.
    let mut ticker = (plan.rate > 0.0).then(|| {
        let period = Duration::from_secs_f64(1.0 / plan.rate);
        let offset = period.mul_f64(index as f64 / plan.senders.max(1) as f64);
        interval_at(Instant::now() + offset, period)
    });
    let mut line = String::new();
    for seq in 0..plan.messages {
        if let Some(ticker) = &mut ticker {
            ticker.tick().await;
        }
        line.clear();
        let sent = epoch_us().saturating_sub(plan.base_us);
        let _ = writeln!(line, "{MARK} {} {index} {seq} {sent}", plan.run);
        if stream.write_all(line.as_bytes()).await.is_err() {
            break; // The reader sees the connection end and counts it.
        }
        work.count(|p| p.sent += 1);
    }
    work.senders_done.set(work.senders_done.get() + 1);
}

// ---------------------------------------------------------------------------------------------
// The coordinator: splits the swarm, runs the workers, adds up their reports.

/// A worker as the coordinator sees it: a thread of this process, or a child process.
pub enum Worker {
    Thread {
        control: Sender<Control>,
        thread: Option<thread::JoinHandle<()>>,
    },
    Process {
        child: Child,
        stdin: Option<ChildStdin>,
    },
}

impl Worker {
    /// Runs a worker on a thread of this process. Its events come to `events`, tagged `id`.
    pub fn thread(id: usize, plan: Plan, events: Sender<(usize, Event)>) -> Worker {
        let (control, control_rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let tx = events.clone();
            let emit = move |event| {
                let _ = tx.send((id, event));
            };
            run_worker(plan, Rc::new(emit), control_rx);
            let _ = events.send((id, Event::Gone(String::new())));
        });
        Worker::Thread {
            control,
            thread: Some(thread),
        }
    }

    /// Starts `exe swarm-worker --plan ...` with its descriptor limit raised to the hard limit.
    /// Its events come to `events`, tagged `id`.
    pub fn process(
        exe: &Path,
        id: usize,
        plan: &Plan,
        events: Sender<(usize, Event)>,
    ) -> io::Result<Worker> {
        let mut child = with_raised_fd_limit(exe)
            .arg("swarm-worker")
            .arg("--plan")
            .arg(plan.to_json())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(event) = Event::from_json(&line) {
                    if events.send((id, event)).is_err() {
                        return;
                    }
                }
            }
            let _ = events.send((id, Event::Gone("the worker process ended".to_string())));
        });
        let stdin = child.stdin.take();
        Ok(Worker::Process { child, stdin })
    }

    pub fn send(&mut self, control: &Control) {
        match self {
            Worker::Thread { control: tx, .. } => {
                let _ = tx.send(control.clone());
            }
            Worker::Process { stdin, .. } => {
                if let Some(pipe) = stdin {
                    if pipe.write_all(control.to_line().as_bytes()).is_err() {
                        *stdin = None;
                    }
                }
            }
        }
    }

    /// Tells the worker to stop and waits for it, at most `wait` (then kills a process; a
    /// thread ends by itself at its deadline).
    pub fn finish(&mut self, wait: Duration) {
        self.send(&Control::Stop);
        let until = Instant::now() + wait;
        match self {
            Worker::Thread { thread, .. } => {
                while thread.as_ref().is_some_and(|t| !t.is_finished()) && Instant::now() < until {
                    thread::sleep(Duration::from_millis(10));
                }
                if thread.as_ref().is_some_and(|t| t.is_finished()) {
                    let _ = thread.take().map(|t| t.join());
                }
            }
            Worker::Process { child, stdin } => {
                *stdin = None; // End of file: stop, even if "stop" was not read.
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => return,
                        Ok(None) if Instant::now() < until => {
                            thread::sleep(Duration::from_millis(10));
                        }
                        Ok(None) => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Worker::Process { child, .. } = self {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `exe` run through `sh` that first raises its open-files limit to the hard limit (the
/// program then `exec`s, so the child's pid is the program's).
pub fn with_raised_fd_limit(exe: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#)
        .arg(exe);
    command
}

/// This process's open-files limits (soft, hard), from /proc/self/limits.
fn fd_limits() -> (usize, usize) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files"));
    let mut numbers = line
        .into_iter()
        .flat_map(|l| l["Max open files".len()..].split_whitespace())
        .map(|n| n.parse::<usize>().unwrap_or(usize::MAX));
    let soft = numbers.next().unwrap_or(1024);
    let hard = numbers.next().unwrap_or(soft);
    (soft, hard)
}

/// What each worker reported so far.
#[derive(Default)]
struct Tally {
    progress: Progress,
    ready: bool,
    report: Option<Report>,
    gone: Option<String>,
    absent: Vec<usize>,
    failures: Reasons,
}

/// Splits `0..total` into `parts` ranges of (nearly) equal size.
fn split(total: usize, parts: usize, part: usize) -> (usize, usize) {
    let start = total * part / parts;
    let end = total * (part + 1) / parts;
    (start, end)
}

/// `chat-demo swarm`.
pub fn run(args: SwarmArgs) -> io::Result<()> {
    let invalid = |text: String| io::Error::new(io::ErrorKind::InvalidInput, text);
    let total = args.clients + args.idle;
    if total == 0 {
        return Err(invalid(
            "nothing to do: --clients and --idle are both 0".into(),
        ));
    }
    let run = u64::from(std::process::id());
    let nick_base = format!("{}{}", args.prefix, run % 10_000);
    for (kind, count) in [('c', args.clients), ('i', args.idle)] {
        let nick = format!("{nick_base}{kind}{}", count.saturating_sub(1));
        if let Err(why) = validate_nick(&nick) {
            return Err(invalid(format!(
                "--prefix {:?} gives nicknames like {nick:?}, which the server refuses \
                 ({why:?}): a nickname is 1-16 of A-Z a-z 0-9 _ -",
                args.prefix
            )));
        }
    }
    let (soft, hard) = fd_limits();
    let in_one = PER_PROCESS.min(soft.saturating_sub(FD_RESERVE)).max(1);
    let per_child = PER_PROCESS.min(hard.saturating_sub(FD_RESERVE)).max(1);
    let per_process = match args.per_process {
        Some(n) => n as usize,
        None if total <= in_one => in_one,
        None => per_child,
    };
    let processes = total.div_ceil(per_process);

    let started = Instant::now();
    let base_us = epoch_us();
    let run_time = Duration::from_secs_f64(args.timeout);
    let plans: Vec<Plan> = (0..processes)
        .map(|part| Plan {
            addr: args.addr,
            run,
            nick_base: nick_base.clone(),
            senders: args.clients,
            chatters: split(args.clients, processes, part),
            idle: split(args.idle, processes, part),
            messages: args.messages,
            rate: args.rate,
            base_us,
            deadline_us: base_us + run_time.as_micros() as u64,
            login_timeout_s: LOGIN_TIMEOUT.as_secs_f64(),
        })
        .collect();
    let rate = if args.rate > 0.0 {
        format!("{}/s", args.rate)
    } else {
        "full speed".to_string()
    };
    println!(
        "chat-demo swarm: {} chatting + {} idle clients on {}, {} messages each at {rate}, \
         in {processes} process{}",
        args.clients,
        args.idle,
        args.addr,
        args.messages,
        if processes == 1 { "" } else { "es" }
    );

    let (tx, events) = mpsc::channel();
    let mut workers = Vec::new();
    if processes == 1 {
        workers.push(Worker::thread(0, plans[0].clone(), tx));
    } else {
        let exe = std::env::current_exe()?;
        for (id, plan) in plans.iter().enumerate() {
            workers.push(Worker::process(&exe, id, plan, tx.clone())?);
        }
        drop(tx);
    }
    let mut tally: Vec<Tally> = (0..workers.len()).map(|_| Tally::default()).collect();
    let bar = progress_bar(total as u64, "logging in");
    let give_up = started + run_time + REPORT_GRACE;

    // 1. Everyone logs in.
    collect(
        &events,
        &mut tally,
        give_up,
        &bar,
        |t| t.ready || t.gone.is_some(),
        |p| p.connected + p.failed,
    );
    let connected_at = started.elapsed();
    let mut absent: Vec<usize> = tally.iter().flat_map(|t| t.absent.clone()).collect();
    absent.sort_unstable();
    let live = (args.clients - absent.len()) as u64;
    let expected = u64::from(args.messages) * live * live.saturating_sub(1);

    // 2. Everyone chats.
    for worker in &mut workers {
        worker.send(&Control::Go(absent.clone()));
    }
    bar.set_prefix("chatting");
    bar.set_length(expected.max(1));
    bar.set_position(0);
    collect(
        &events,
        &mut tally,
        give_up,
        &bar,
        |t| t.report.is_some() || t.gone.is_some(),
        |p| p.received,
    );
    let chatted = started.elapsed() - connected_at;
    for worker in &mut workers {
        worker.finish(Duration::from_secs(5));
    }
    bar.finish_and_clear();

    let summary = Summary::new(&args, &tally, expected, processes, connected_at, chatted);
    summary.print();
    if summary.ok {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "swarm failed: {}",
            summary.verdict
        )))
    }
}

/// Reads worker events into `tally` until `done` holds for every worker (or `until`), moving
/// the bar to `position` of the summed counts.
fn collect(
    events: &Receiver<(usize, Event)>,
    tally: &mut [Tally],
    until: Instant,
    bar: &ProgressBar,
    done: impl Fn(&Tally) -> bool,
    position: impl Fn(&Progress) -> u64,
) {
    while !tally.iter().all(&done) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match events.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok((id, event)) => {
                let t = &mut tally[id];
                match event {
                    Event::Progress(p) => t.progress = p,
                    Event::Ready {
                        progress,
                        absent,
                        failures,
                    } => {
                        t.progress = progress;
                        t.ready = true;
                        t.absent = absent;
                        t.failures = failures;
                    }
                    Event::Report(report) => {
                        t.progress = report.progress;
                        t.report = Some(report);
                    }
                    Event::Gone(why) => t.gone = Some(why),
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let mut sum = Progress::default();
        for t in tally.iter() {
            sum.add(&t.progress);
        }
        bar.set_position(position(&sum));
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(length: u64, prefix: &'static str) -> ProgressBar {
    let target = if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(length), target);
    let style =
        ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len}")
            .expect("a valid template");
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar
}

/// The outcome of a run, added up over the workers.
struct Summary {
    ok: bool,
    verdict: String,
    lines: Vec<String>,
    json: Value,
}

impl Summary {
    fn new(
        args: &SwarmArgs,
        tally: &[Tally],
        expected: u64,
        processes: usize,
        connecting: Duration,
        chatting: Duration,
    ) -> Summary {
        let mut progress = Progress::default();
        let mut out_of_order = 0;
        let mut failures = Reasons::new();
        let mut drops = Reasons::new();
        let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        let mut missing_workers = 0;
        for t in tally {
            progress.add(&t.progress);
            let (fails, dropped) = match &t.report {
                Some(report) => {
                    out_of_order += report.out_of_order;
                    for &(value, count) in &report.latency {
                        let _ = latency.record_n(value, count);
                    }
                    (&report.failures, &report.drops)
                }
                None => {
                    missing_workers += 1;
                    (&t.failures, &Reasons::new())
                }
            };
            for (why, n) in fails {
                *failures.entry(why.clone()).or_insert(0) += n;
            }
            for (why, n) in dropped {
                *drops.entry(why.clone()).or_insert(0) += n;
            }
        }
        // Connections of a worker that never said how its logins went count as failed.
        let unaccounted = (args.clients + args.idle) as u64
            - (progress.connected + progress.failed).min((args.clients + args.idle) as u64);
        if unaccounted > 0 {
            progress.failed += unaccounted;
            *failures
                .entry("no answer from its worker in time".to_string())
                .or_insert(0) += unaccounted;
        }
        let lost = expected.saturating_sub(progress.received);
        let in_order = lost == 0 && out_of_order == 0 && progress.received == expected;
        let mut problems = Vec::new();
        if progress.failed > 0 {
            problems.push(format!("{} connections failed", progress.failed));
        }
        if progress.dropped > 0 {
            problems.push(format!("{} connections dropped", progress.dropped));
        }
        if lost > 0 {
            problems.push(format!("{lost} messages lost"));
        }
        if out_of_order > 0 {
            problems.push(format!("{out_of_order} messages out of order"));
        }
        if progress.received > expected {
            problems.push(format!(
                "{} messages more than expected",
                progress.received - expected
            ));
        }
        if missing_workers > 0 {
            problems.push(format!("{missing_workers} workers sent no report"));
        }
        let ok = problems.is_empty();
        let verdict = if ok {
            "every message arrived, in order".to_string()
        } else {
            problems.join(", ")
        };

        let live = args.clients - tally.iter().map(|t| t.absent.len()).sum::<usize>();
        let ms = |v: u64| v as f64 / 1000.0;
        let samples = latency.len();
        let quantile = |q: f64| (samples > 0).then(|| ms(latency.value_at_quantile(q)));
        let (p50, p99, max) = (
            quantile(0.5),
            quantile(0.99),
            (samples > 0).then(|| ms(latency.max())),
        );
        let mut lines = vec![
            format!(
                "connections  {} made, {} failed",
                progress.connected, progress.failed
            ),
            format!(
                "messages     {} sent, {} received of {expected} expected ({} x {live} x {})",
                progress.sent,
                progress.received,
                args.messages,
                live.saturating_sub(1),
            ),
        ];
        lines.push(match (p50, p99, max) {
            (Some(p50), Some(p99), Some(max)) => format!(
                "latency      p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({samples} messages)"
            ),
            _ => "latency      no messages received".to_string(),
        });
        for (why, n) in &failures {
            lines.push(format!("failed       {n} x {why}"));
        }
        for (why, n) in &drops {
            lines.push(format!("dropped      {n} x {why}"));
        }
        lines.push(format!(
            "order        {}",
            if lost == 0 && out_of_order == 0 {
                "no message lost, none out of order".to_string()
            } else {
                format!("{lost} messages lost, {out_of_order} out of order")
            }
        ));
        lines.push(format!(
            "took         {:.1} s (logging in {:.1} s, chatting {:.1} s)",
            (connecting + chatting).as_secs_f64(),
            connecting.as_secs_f64(),
            chatting.as_secs_f64()
        ));
        lines.push(if ok {
            format!("result       OK: {verdict}")
        } else {
            format!("result       FAILED: {verdict}")
        });
        let json = json!({
            "ok": ok,
            "clients": args.clients,
            "idle": args.idle,
            "messages_each": args.messages,
            "processes": processes,
            "connected": progress.connected,
            "failed": progress.failed,
            "dropped": progress.dropped,
            "sent": progress.sent,
            "received": progress.received,
            "expected": expected,
            "lost": lost,
            "out_of_order": out_of_order,
            "in_order": in_order,
            "p50_ms": p50,
            "p99_ms": p99,
            "max_ms": max,
            "login_s": connecting.as_secs_f64(),
            "chat_s": chatting.as_secs_f64(),
            "failures": reasons_json(&failures),
            "drops": reasons_json(&drops),
            "verdict": verdict,
        });
        Summary {
            ok,
            verdict,
            lines,
            json,
        }
    }

    fn print(&self) {
        let mut out = io::stdout().lock();
        for line in &self.lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "swarm: {}", self.json);
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_parses_back() {
        let line = format!("swarm12c3: {MARK} 77 3 41 123456");
        assert_eq!(parse_message(line.as_bytes(), 77), Some((3, 41, 123456)));
        assert_eq!(parse_message(line.as_bytes(), 78), None, "another run");
        assert_eq!(parse_message(b"* swarm12c3 joined", 77), None);
        assert_eq!(parse_message(b"alice: hello there", 77), None);
        let text = format!("bob: {MARK} 77 3 41");
        assert_eq!(parse_message(text.as_bytes(), 77), None, "too short");
    }

    #[test]
    fn plans_and_events_survive_json() {
        let plan = Plan::idle_only(
            "127.0.0.1:9".parse().unwrap(),
            "h12",
            (5, 10),
            Duration::from_secs(3),
        );
        let back = Plan::from_json(&plan.to_json()).unwrap();
        assert_eq!(back.idle, (5, 10));
        assert_eq!(back.nick_base, "h12");
        let report = Report {
            progress: Progress {
                connected: 3,
                received: 9,
                ..Progress::default()
            },
            out_of_order: 1,
            failures: Reasons::from([("connect: connection refused".to_string(), 2)]),
            drops: Reasons::new(),
            latency: vec![(100, 4), (250, 5)],
        };
        let Some(Event::Report(back)) = Event::from_json(&Event::Report(report).to_json()) else {
            panic!("not a report");
        };
        assert_eq!(back.progress.received, 9);
        assert_eq!(back.latency, vec![(100, 4), (250, 5)]);
        assert_eq!(back.failures["connect: connection refused"], 2);
        assert_eq!(
            Control::from_line(&Control::Go(vec![1, 4]).to_line()),
            Some(Control::Go(vec![1, 4]))
        );
        assert_eq!(Control::from_line("stop\n"), Some(Control::Stop));
    }

    #[test]
    fn split_covers_everything_once() {
        let parts: Vec<_> = (0..3).map(|p| split(10, 3, p)).collect();
        assert_eq!(parts, [(0, 3), (3, 6), (6, 10)]);
    }
}
