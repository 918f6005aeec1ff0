//! `chat-demo compare`: runs each server mode under a growing crowd of idle connections and
//! records, at each step, what the server costs and how fast it still delivers.
//!
//! For each mode, `compare` starts the server as a child process on a free port, then ramps
//! idle connections through the steps (1,000 / 5,000 / 10,000 / 15,000; `--quick`: the first
//! two). The idle clients live in child processes of `compare` (`chat-demo swarm-worker`, each
//! holding at most [`swarm::PER_PROCESS`] connections); they log in and read whatever the room
//! sends. At each step, once the server has gone quiet again, it reads the server's resident
//! memory, thread count and CPU time from /proc, and runs `chat-demo swarm` with 20 chatting
//! clients against it for the latency of a conversation while the crowd sits there.
//!
//! A mode that cannot reach a step (the server dies, logins fail or time out, the system has
//! no room for its threads, messages get lost) gets a row saying why, and the ramp goes on
//! with the next mode. The table goes to stdout and `--out-dir`/compare.md, the chart (memory
//! per connection and p99 latency against connections, a line per mode) to compare.svg.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use plotters::prelude::*;
use serde_json::Value;

use crate::swarm::{self, Event, Plan, Progress, Reasons, Worker};

/// The server modes `compare` knows: the name in the table, `--mode`, and extra options.
const MODES: [ModeSpec; 5] = [
    ModeSpec {
        name: "threads",
        mode: "threads",
        extra: &[],
    },
    ModeSpec {
        name: "threads-64k",
        mode: "threads",
        extra: &["--stack-size", "65536"],
    },
    ModeSpec {
        name: "callbacks",
        mode: "callbacks",
        extra: &[],
    },
    ModeSpec {
        name: "state-machine",
        mode: "state-machine",
        extra: &[],
    },
    ModeSpec {
        name: "async",
        mode: "async",
        extra: &[],
    },
];

const STEPS: [usize; 4] = [1_000, 5_000, 10_000, 15_000];
const QUICK_STEPS: [usize; 2] = [1_000, 5_000];

/// Threads left free for the rest of the machine: a step that would leave fewer is not tried
/// (running the whole system out of pids breaks every other program on it, builds included).
const THREAD_RESERVE: u64 = 4_096;

/// A step is not tried with less memory than this available.
const MIN_AVAILABLE_MIB: u64 = 1_024;

/// How long the idle connections' processes may live: `compare` stops them long before.
const HOLD: Duration = Duration::from_secs(2 * 3600);

/// How long the logins of one step may take.
const LOGIN_LIMIT: Duration = Duration::from_secs(90);

/// After this long, a step whose logins are too slow to finish within [`LOGIN_LIMIT`] is given
/// up at once.
const LOGIN_GRACE: Duration = Duration::from_secs(10);

/// How long the conversation at each step may take (`swarm --timeout`).
const CHAT_TIMEOUT_S: u64 = 60;

/// `chat-demo compare`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Ramp through 1,000 and 5,000 idle connections only (a few minutes) instead of
    /// 1,000 / 5,000 / 10,000 / 15,000.
    #[arg(long)]
    pub quick: bool,
    /// Where to write compare.md and compare.svg.
    #[arg(long, default_value = "docs/compare")]
    pub out_dir: PathBuf,
    /// The steps, as idle connection counts, comma-separated (instead of the default ramp).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<Vec<u64>>,
    /// The modes to run, comma-separated, from: threads, threads-64k, callbacks, state-machine,
    /// async (default: all five).
    #[arg(long, value_delimiter = ',')]
    pub modes: Option<Vec<String>>,
    /// Chatting clients in the conversation timed at each step.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=1000))]
    pub clients: u64,
    /// Messages each of them sends (10 per second).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub messages: u32,
}

#[derive(Debug)]
struct ModeSpec {
    name: &'static str,
    mode: &'static str,
    extra: &'static [&'static str],
}

impl ModeSpec {
    fn uses_threads(&self) -> bool {
        self.mode == "threads"
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    mode: &'static str,
    connections: usize,
    rss_kib: Option<u64>,
    per_connection_kib: Option<f64>,
    threads: Option<u64>,
    cpu_s: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    ok: bool,
    note: String,
}

impl Row {
    fn new(mode: &'static str, connections: usize) -> Row {
        Row {
            mode,
            connections,
            rss_kib: None,
            per_connection_kib: None,
            threads: None,
            cpu_s: None,
            p50_ms: None,
            p99_ms: None,
            ok: false,
            note: String::new(),
        }
    }
}

/// `chat-demo compare`.
pub fn run(args: CompareArgs) -> io::Result<()> {
    let started = Instant::now();
    let steps: Vec<usize> = match &args.steps {
        Some(steps) => steps.iter().map(|&s| s as usize).collect(),
        None if args.quick => QUICK_STEPS.to_vec(),
        None => STEPS.to_vec(),
    };
    let modes: Vec<&'static ModeSpec> = match &args.modes {
        None => MODES.iter().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                MODES.iter().find(|m| m.name == name).ok_or_else(|| {
                    let known: Vec<&str> = MODES.iter().map(|m| m.name).collect();
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("unknown mode {name:?}; known: {}", known.join(", ")),
                    )
                })
            })
            .collect::<io::Result<_>>()?,
    };
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all(&args.out_dir)?;

    let mut rows = Vec::new();
    for spec in &modes {
        rows.extend(run_mode(&exe, spec, &steps, &args));
    }
    let elapsed = started.elapsed();

    let table = markdown_table(&rows);
    print!("{table}");
    let md_path = args.out_dir.join("compare.md");
    let svg_path = args.out_dir.join("compare.svg");
    std::fs::write(&md_path, markdown_page(&table, &args, elapsed))?;
    let mode_names: Vec<&str> = modes.iter().map(|m| m.name).collect();
    draw_chart(&rows, &mode_names, args.clients, &svg_path)
        .map_err(|err| io::Error::other(format!("cannot draw {}: {err}", svg_path.display())))?;
    println!(
        "\ncompare took {:.0} s; wrote {} and {}",
        elapsed.as_secs_f64(),
        md_path.display(),
        svg_path.display()
    );
    Ok(())
}

/// Runs one mode through the steps: a baseline row (no idle connections), then one per step
/// until the end or the first failure.
fn run_mode(exe: &Path, spec: &'static ModeSpec, steps: &[usize], args: &CompareArgs) -> Vec<Row> {
    eprintln!("compare: [{}] starting the server", spec.name);
    let mut rows = Vec::new();
    let server = match Server::start(exe, spec) {
        Ok(server) => server,
        Err(why) => {
            let mut row = Row::new(spec.name, 0);
            row.note = format!("FAILED: the server did not start: {why}");
            rows.push(row);
            return rows;
        }
    };
    // Let it finish starting up before taking its baseline.
    thread::sleep(Duration::from_millis(300));
    let (tx, events) = mpsc::channel();
    let mut run = ModeRun {
        exe,
        spec,
        args,
        base_rss_kib: proc_status(server.pid, "VmRSS:").unwrap_or(0),
        server,
        holders: Vec::new(),
        holder_state: Vec::new(),
        events,
        tx,
        connected: 0,
        nick_base: format!("h{}", std::process::id() % 10_000),
    };
    for target in std::iter::once(0).chain(steps.iter().copied()) {
        let mut row = Row::new(spec.name, target);
        let step_started = Instant::now();
        let outcome = run.step(target, &mut row);
        if let Err(why) = outcome {
            if row.rss_kib.is_none() && run.server.exit().is_none() {
                run.measure_memory(&mut row);
            }
            if row.cpu_s.is_none() {
                row.cpu_s = proc_cpu_seconds(run.server.pid);
            }
            row.per_connection_kib = None;
            row.ok = false;
            row.note = format!("FAILED: {why}");
            eprintln!(
                "compare: [{}] {target} connections: {}",
                spec.name, row.note
            );
            rows.push(row);
            break;
        }
        row.ok = true;
        eprintln!(
            "compare: [{}] {target} connections: RSS {:.1} MiB, {} threads, p99 {} ms ({:.1} s)",
            spec.name,
            row.rss_kib.unwrap_or(0) as f64 / 1024.0,
            row.threads.unwrap_or(0),
            fmt_opt(row.p99_ms, 2),
            step_started.elapsed().as_secs_f64()
        );
        rows.push(row);
    }
    run.stop();
    rows
}

/// What a process holding idle connections said so far.
#[derive(Default)]
struct HolderState {
    progress: Progress,
    ready: Option<(Progress, Reasons)>,
    gone: Option<String>,
}

/// One mode's run: its server, the processes holding idle connections, and their events.
struct ModeRun<'a> {
    exe: &'a Path,
    spec: &'static ModeSpec,
    args: &'a CompareArgs,
    server: Server,
    base_rss_kib: u64,
    holders: Vec<Worker>,
    holder_state: Vec<HolderState>,
    events: Receiver<(usize, Event)>,
    tx: Sender<(usize, Event)>,
    /// Idle connections logged in so far.
    connected: usize,
    nick_base: String,
}

impl ModeRun<'_> {
    /// Brings the idle connections up to `target`, measures, and times a conversation.
    fn step(&mut self, target: usize, row: &mut Row) -> Result<(), String> {
        self.check_server()?;
        if target > self.connected {
            self.preflight(target)?;
            let started = Instant::now();
            self.add_idle(target)?;
            row.note = format!("logins took {:.1} s", started.elapsed().as_secs_f64());
        } else {
            row.note = "baseline: no idle connections".to_string();
        }
        self.settle();
        self.check_server()?;
        self.measure_memory(row);
        if target > 0 {
            row.per_connection_kib = row
                .rss_kib
                .map(|rss| (rss as f64 - self.base_rss_kib as f64) / target as f64);
        }
        let chat = self.chat();
        row.cpu_s = proc_cpu_seconds(self.server.pid);
        self.check_server()?;
        self.pump(Duration::ZERO);
        let dropped: u64 = self.holder_state.iter().map(|h| h.progress.dropped).sum();
        if dropped > 0 {
            return Err(format!(
                "the server closed {dropped} idle connections{}",
                self.server.stderr_note()
            ));
        }
        let (p50, p99) = chat?;
        row.p50_ms = Some(p50);
        row.p99_ms = Some(p99);
        Ok(())
    }

    fn measure_memory(&self, row: &mut Row) {
        row.rss_kib = proc_status(self.server.pid, "VmRSS:");
        row.threads = proc_status(self.server.pid, "Threads:");
    }

    /// Refuses a step the machine cannot take without hurting everything else on it.
    fn preflight(&self, target: usize) -> Result<(), String> {
        let new = (target - self.connected) as u64;
        if let Some(limit) = proc_fd_limit(self.server.pid) {
            if target as u64 + self.args.clients + 64 > limit {
                return Err(format!(
                    "not tried: the server may open only {limit} files (ulimit -n), one per \
                     connection"
                ));
            }
        }
        if self.spec.uses_threads() {
            // A reader and a writer thread per connection.
            let needed = 2 * (new + self.args.clients) + 64;
            if let Some(room) = thread_room() {
                if needed + THREAD_RESERVE > room {
                    return Err(format!(
                        "not tried: needs ~{needed} more threads and the system has room \
                         for {room} (kernel.pid_max, threads-max, cgroup pids.max); taking \
                         them all would stop every other program from starting a thread"
                    ));
                }
            }
        }
        if let Some(available) = mem_available_mib() {
            if available < MIN_AVAILABLE_MIB {
                return Err(format!(
                    "not tried: only {available} MiB of memory available"
                ));
            }
        }
        Ok(())
    }

    /// Starts processes logging in idle connections `self.connected..target` and waits until
    /// all of them are in (or failed).
    fn add_idle(&mut self, target: usize) -> Result<(), String> {
        let first = self.holders.len();
        let wanted = target - self.connected;
        let mut start = self.connected;
        while start < target {
            let end = (start + swarm::PER_PROCESS).min(target);
            let plan = Plan::idle_only(self.server.addr, &self.nick_base, (start, end), HOLD);
            let id = self.holders.len();
            let worker = Worker::process(self.exe, id, &plan, self.tx.clone())
                .map_err(|err| format!("cannot start a process for idle connections: {err}"))?;
            self.holders.push(worker);
            self.holder_state.push(HolderState::default());
            start = end;
        }
        let started = Instant::now();
        loop {
            self.pump(Duration::from_millis(200));
            let new = &self.holder_state[first..];
            if new.iter().all(|h| h.ready.is_some() || h.gone.is_some()) {
                break;
            }
            let done: u64 = new
                .iter()
                .map(|h| h.progress.connected + h.progress.failed)
                .sum();
            self.check_server()?;
            let elapsed = started.elapsed().as_secs_f64();
            // Each login costs the server more than the one before (it is announced to
            // everyone already in), so a projection from the rate so far is optimistic: if
            // even that misses the limit, waiting longer only wastes time.
            let projected = elapsed * wanted as f64 / done.max(1) as f64;
            if elapsed > LOGIN_GRACE.as_secs_f64() && projected > LOGIN_LIMIT.as_secs_f64() {
                return Err(format!(
                    "timed out: logins too slow, {done} of {wanted} new connections in after \
                     {elapsed:.0} s ({:.0}/s), so the step would take over {} s{}",
                    done as f64 / elapsed,
                    LOGIN_LIMIT.as_secs(),
                    self.server.stderr_note()
                ));
            }
            if elapsed > LOGIN_LIMIT.as_secs_f64() {
                return Err(format!(
                    "timed out: {done} of {wanted} new connections in after {} s{}",
                    LOGIN_LIMIT.as_secs(),
                    self.server.stderr_note()
                ));
            }
        }
        let mut made = 0;
        let mut failed = 0;
        let mut reasons = Reasons::new();
        for h in &self.holder_state[first..] {
            match &h.ready {
                Some((progress, why)) => {
                    made += progress.connected;
                    failed += progress.failed;
                    for (text, n) in why {
                        *reasons.entry(text.clone()).or_insert(0) += n;
                    }
                }
                None => {
                    let why = h.gone.clone().unwrap_or_default();
                    *reasons.entry(why).or_insert(0) += 1;
                }
            }
        }
        self.connected += made as usize;
        self.check_server()?;
        if made as usize != wanted {
            let why: Vec<String> = reasons
                .iter()
                .take(3)
                .map(|(text, n)| format!("{text} (x{n})"))
                .collect();
            return Err(format!(
                "{made} of {wanted} new connections logged in, {failed} failed: {}{}",
                why.join("; "),
                self.server.stderr_note()
            ));
        }
        Ok(())
    }

    /// Reads the holders' events for `wait` (at least once).
    fn pump(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((id, event)) => {
                    let h = &mut self.holder_state[id];
                    match event {
                        Event::Progress(p) => h.progress = p,
                        Event::Ready {
                            progress, failures, ..
                        } => {
                            h.progress = progress;
                            h.ready = Some((progress, failures));
                        }
                        Event::Report(report) => h.progress = report.progress,
                        Event::Gone(why) => h.gone = Some(why),
                    }
                }
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Waits until the server has gone quiet (less than 5% of a core over half a second) after
    /// a wave of logins, at most 20 s.
    fn settle(&mut self) {
        let until = Instant::now() + Duration::from_secs(20);
        let mut before = proc_cpu_seconds(self.server.pid).unwrap_or(0.0);
        while Instant::now() < until {
            self.pump(Duration::from_millis(500));
            let now = proc_cpu_seconds(self.server.pid).unwrap_or(0.0);
            if now - before <= 0.025 {
                return;
            }
            before = now;
        }
    }

    /// Runs `chat-demo swarm` with the active clients; returns p50 and p99 in milliseconds.
    fn chat(&mut self) -> Result<(f64, f64), String> {
        let mut child = Command::new(self.exe)
            .args(["swarm", "--addr", &self.server.addr.to_string()])
            .args(["--clients", &self.args.clients.to_string()])
            .args(["--messages", &self.args.messages.to_string()])
            .args(["--rate", "10", "--prefix", "a"])
            .args(["--timeout", &CHAT_TIMEOUT_S.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot start the swarm: {err}"))?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let reader = thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let until = Instant::now() + Duration::from_secs(CHAT_TIMEOUT_S + 20);
        loop {
            // Keep the holders' pipes drained meanwhile.
            self.pump(Duration::from_millis(100));
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < until => {}
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("the conversation did not end in time".to_string());
                }
            }
        }
        let output = reader.join().unwrap_or_default();
        let summary = output
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("swarm: "))
            .and_then(|json| serde_json::from_str::<Value>(json).ok())
            .ok_or_else(|| "the swarm printed no summary".to_string())?;
        let p50 = summary["p50_ms"].as_f64();
        let p99 = summary["p99_ms"].as_f64();
        match (summary["ok"].as_bool(), p50, p99) {
            (Some(true), Some(p50), Some(p99)) => Ok((p50, p99)),
            _ => Err(format!(
                "the conversation failed: {}{}",
                summary["verdict"].as_str().unwrap_or("no verdict"),
                self.server.stderr_note()
            )),
        }
    }

    fn check_server(&mut self) -> Result<(), String> {
        match self.server.exit() {
            Some(status) => Err(format!(
                "the server died ({status}){}",
                self.server.stderr_note()
            )),
            None => Ok(()),
        }
    }

    /// Stops the idle connections' processes, then the server.
    fn stop(mut self) {
        for holder in &mut self.holders {
            holder.send(&swarm::Control::Stop);
        }
        for holder in &mut self.holders {
            holder.finish(Duration::from_secs(10));
        }
        self.server.stop();
    }
}

/// A running `chat-demo serve`.
struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    /// Distinct stderr lines with how often each came.
    stderr: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Server {
    fn start(exe: &Path, spec: &ModeSpec) -> Result<Server, String> {
        let mut child = swarm::with_raised_fd_limit(exe)
            .args(["serve", "--mode", spec.mode, "--addr", "127.0.0.1:0"])
            .args(["--web-addr", "off", "--max-clients", "1000000"])
            .args(["--login-timeout", "3600"])
            .args(spec.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| err.to_string())?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        {
            let seen = seen.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { return };
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    if seen.len() < 100 || seen.contains_key(&line) {
                        *seen.entry(line).or_insert(0u64) += 1;
                    }
                }
            });
        }
        let pid = child.id();
        let mut server = Server {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: seen,
        };
        let first = lines
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| format!("it printed no address{}", server.stderr_note()))?;
        server.addr = first
            .split(" listening on ")
            .nth(1)
            .and_then(|addr| addr.trim().parse().ok())
            .ok_or_else(|| format!("unexpected first line {first:?}"))?;
        Ok(server)
    }

    /// How the server ended, if it did.
    fn exit(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// `; the server said "..." (xN)`, for the most frequent stderr lines, or nothing.
    fn stderr_note(&self) -> String {
        let seen = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines: Vec<(&String, &u64)> = seen.iter().collect();
        lines.sort_by(|a, b| b.1.cmp(a.1));
        let said: Vec<String> = lines
            .iter()
            .take(2)
            .map(|(line, n)| format!("{line:?} (x{n})"))
            .collect();
        if said.is_empty() {
            String::new()
        } else {
            format!("; the server said {}", said.join(", "))
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Reading /proc.

/// A `Key:  number ...` line of /proc/PID/status (`VmRSS:` is in KiB).
fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// User plus system CPU time of all the process's threads so far, from /proc/PID/stat.
fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces, so count fields after the `)`.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the `)`.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The soft open-files limit of a process.
fn proc_fd_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// How many more threads the system can start: the least of kernel.pid_max and threads-max
/// (minus the threads that exist) and the cgroup's pids.max (minus pids.current).
fn thread_room() -> Option<u64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    // `0.00 0.01 0.05 1/234 5678`: 234 threads exist.
    let existing: u64 = loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .nth(1)?
        .parse()
        .ok()?;
    let system = read_number("/proc/sys/kernel/pid_max")?
        .min(read_number("/proc/sys/kernel/threads-max").unwrap_or(u64::MAX))
        .saturating_sub(existing);
    let cgroup = match (
        read_number("/sys/fs/cgroup/pids.max"),
        read_number("/sys/fs/cgroup/pids.current"),
    ) {
        (Some(max), Some(current)) => max.saturating_sub(current),
        _ => u64::MAX,
    };
    Some(system.min(cgroup))
}

fn mem_available_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line["MemAvailable:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024)
}

// ---------------------------------------------------------------------------------------------
// Output.

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".to_string(),
    }
}

fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| mode | connections | RSS MiB | RSS per connection KiB | threads | CPU s | p50 ms | p99 ms | note |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.mode,
            row.connections,
            fmt_opt(row.rss_kib.map(|k| k as f64 / 1024.0), 1),
            fmt_opt(row.per_connection_kib, 1),
            row.threads.map_or("-".to_string(), |t| t.to_string()),
            fmt_opt(row.cpu_s, 2),
            fmt_opt(row.p50_ms, 2),
            fmt_opt(row.p99_ms, 2),
            row.note.replace('|', "\\|").replace('\n', " "),
        );
    }
    out
}

/// The command line as run, less `--out-dir DIR` (where the page went says nothing about the
/// run, and may be a private path).
fn command_without_out_dir() -> String {
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--out-dir" {
            args.next();
        } else if !arg.starts_with("--out-dir=") {
            words.push(arg);
        }
    }
    words.join(" ")
}

fn markdown_page(table: &str, args: &CompareArgs, elapsed: Duration) -> String {
    let command = command_without_out_dir();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line["MemTotal:".len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(kib / 1024 / 1024)
        })
        .unwrap_or(0);
    format!(
        "# chat-demo compare\n\n\
         `chat-demo {}` at commit {commit} took {:.0} s on Linux {kernel}, {cpus} CPUs ({model}), {memory} GiB of \
         memory.\n\n\
         Each row: the server with that many idle logged-in connections (held by other \
         processes), measured once it had gone quiet: resident memory (VmRSS), RSS per \
         connection (minus the mode's baseline row, divided by the connections), threads, CPU \
         time used since it started (user + system), and the p50/p99 delivery latency of a \
         conversation among {} more clients ({} messages each, 10 per second, every message \
         broadcast to the whole crowd). See chat-demo/README.md, `chat-demo compare`.\n\n\
         <!-- ANCHOR: table -->\n\n{table}\n<!-- ANCHOR_END: table -->\n\n\
         ![memory per connection and p99 latency against connections](compare.svg)\n",
        command,
        elapsed.as_secs_f64(),
        args.clients,
        args.messages,
    )
}

/// Line colours, one per mode (in the order of [`MODES`]).
const COLORS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(31, 119, 180),
    RGBColor(148, 103, 189),
];

/// Two panels: RSS per connection and p99 latency (log scale) against connections, one line
/// per mode; a cross at the top of a panel marks a step that mode failed. Text is SVG `<text>` in the viewer's sans-serif: plotters needs no font file here.
fn draw_chart(rows: &[Row], modes: &[&str], clients: u64, path: &Path) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(600);
    let max_x = rows.iter().map(|r| r.connections).max().unwrap_or(0).max(1) as f64 * 1.05;
    let index_of = |mode: &str| modes.iter().position(|&m| m == mode).unwrap_or(0) as f64;
    let color_of = |mode: &str| {
        let i = MODES.iter().position(|m| m.name == mode).unwrap_or(0);
        COLORS[i % COLORS.len()]
    };
    let series = |mode: &str, value: fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.mode == mode && r.ok)
            .filter_map(|r| Some((r.connections as f64, value(r)?)))
            .collect()
    };

    let failures: Vec<(f64, &str)> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| (r.connections as f64, r.mode))
        .collect();
    let per_conn: fn(&Row) -> Option<f64> = |r| r.per_connection_kib;
    let max_kib = rows
        .iter()
        .filter(|r| r.ok)
        .filter_map(per_conn)
        .fold(1.0f64, f64::max)
        * 1.6; // Headroom for the legend, top left.
    let min_kib = rows
        .iter()
        .filter(|r| r.ok)
        .filter_map(per_conn)
        .fold(0.0f64, f64::min)
        * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "Server memory per idle connection (x: step failed)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0f64..max_x, min_kib..max_kib)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("idle connections")
        .y_desc("RSS per connection (KiB)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for &mode in modes {
        let color = color_of(mode);
        let points = series(mode, per_conn);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(mode)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    // A failed step: a cross at the top of the panel, at its connection count.
    chart
        .draw_series(failures.iter().map(|&(x, mode)| {
            let y = max_kib * (0.96 - 0.04 * index_of(mode));
            Cross::new((x, y), 6, color_of(mode).stroke_width(2))
        }))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;

    let p99: fn(&Row) -> Option<f64> = |r| r.p99_ms.map(|v| v.max(0.01));
    let values: Vec<f64> = rows.iter().filter(|r| r.ok).filter_map(p99).collect();
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0f64, f64::max);
    let (low, high) = if values.is_empty() {
        (0.1, 10.0)
    } else {
        (low / 2.0, high * 2.0)
    };
    let mut chart = ChartBuilder::on(&right)
        .caption(
            format!("p99 latency of a {clients}-client chat"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(
            0f64..max_x,
            (low..high)
                .log_scale()
                .with_key_points(ticks_1_2_5(low, high)),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("idle connections")
        .y_desc("p99 latency (ms, log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| short_number(*y))
        .draw()
        .map_err(err)?;
    for &mode in modes {
        let color = color_of(mode);
        let points = series(mode, p99);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(mode)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    chart
        .draw_series(failures.iter().map(|&(x, mode)| {
            let y = high / 1.25 / 1.15f64.powf(index_of(mode));
            Cross::new((x, y), 6, color_of(mode).stroke_width(2))
        }))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Axis ticks 1, 2, 5, 10, 20, 50... within `[low, high]`, for a log scale.
fn ticks_1_2_5(low: f64, high: f64) -> Vec<f64> {
    (-3..=7)
        .flat_map(|exp| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(exp)))
        .filter(|v| (low..=high).contains(v))
        .collect()
}

/// 0.005, 0.2, 5, 200...: a tick label without trailing zeros.
fn short_number(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: &'static str, connections: usize, per: f64, p99: f64) -> Row {
        Row {
            per_connection_kib: Some(per),
            p99_ms: Some(p99),
            p50_ms: Some(p99 / 2.0),
            rss_kib: Some(4096),
            threads: Some(3),
            cpu_s: Some(0.5),
            ok: true,
            ..Row::new(mode, connections)
        }
    }

    #[test]
    fn the_chart_is_well_formed_svg_with_its_labels() {
        let dir = std::env::temp_dir().join(format!("compare-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        let mut failed = Row::new("threads", 5000);
        failed.note = "FAILED: <no> & \"room\"".to_string();
        let rows = [
            row("async", 0, 0.0, 0.8),
            row("async", 1000, 6.5, 1.5),
            row("async", 5000, 6.1, 9.0),
            row("threads", 1000, 40.0, 2.0),
            failed,
        ];
        draw_chart(&rows, &["threads", "async"], 20, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<text"), "labels are SVG text");
        assert!(svg.contains("idle connections"));
        assert!(svg.contains("async"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_table_has_a_row_per_measurement() {
        let table = markdown_table(&[row("async", 1000, 6.5, 1.5)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("| async | 1000 | 4.0 | 6.5 | 3 | 0.50 | 0.75 | 1.50 |"));
    }
}
