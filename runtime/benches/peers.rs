//! # peers: stroll next to tokio, smol and futures
//!
//! `cargo bench -p stroll --bench peers` runs seven workloads on each runtime and prints a
//! table per workload; the full run also writes `docs/benchmarks.md` and `docs/benchmarks.svg`.
//! `-- --quick` does fewer runs (under a minute or so); `-- --write-docs` writes the docs from a
//! quick run too; workload names (`-- --quick echo idle`) pick a subset.
//!
//! The peers, all single-threaded, are dev-dependencies: tokio's `current_thread` runtime
//! in a `LocalSet` (tasks spawned with `spawn_local`, as stroll's need not be `Send`), smol's
//! parts (`async_executor::LocalExecutor` run by `async_io::block_on`, `async_io::Async` and
//! `Timer`), and `futures::executor::LocalPool` (only for the workloads without I/O or timers).
//!
//! ## What is measured
//!
//! | workload | what runs | reported |
//! | --- | --- | --- |
//! | spawn_many | 1,000,000 empty tasks spawned from the `block_on` future, then all joined | ns per task |
//! | yield_many | 1,000 tasks × 1,000 `yield_now` | ns per poll |
//! | ping_pong | two tasks bounce a number 1,000,000 times over two unbounded `futures::channel::mpsc` channels | ns per round trip |
//! | chained_spawn | each task spawns the next, 100,000 deep; the last signals on a oneshot | ns per hop |
//! | timers | 100,000 tasks, each sleeping until `start + i*7919 % 50,000 µs` (0-50 ms), spawned and joined | wall time beyond 50 ms; loop thread CPU ns per timer |
//! | echo | echo server, 100 client connections each bouncing 64-byte messages for 2 s (quick) or 5 s | messages/s; server thread CPU ns and syscalls per message |
//! | idle | server holding 2,000 (quick) or 10,000 idle connections, each a task with a 4 KiB buffer parked in `read` | resident bytes per connection, and beyond the buffer |
//!
//! The scheduling workloads are written once, generic over a small trait ([`rt::Runtime`]);
//! timers, echo and idle have one function per runtime with the same shape, because stroll's
//! sockets and sleeps are not `Send` while tokio's `spawn` wants `Send`.
//!
//! ## How
//!
//! - Time is wall-clock time measured inside `block_on`, so building and dropping a runtime is
//!   not counted. CPU time is the loop thread's own on-CPU time, the first field of
//!   `/proc/thread-self/schedstat` (ns).
//! - Runtimes run interleaved (stroll, tokio, smol, futures, stroll, ...), after one unrecorded
//!   warm-up round for the in-process workloads; tables give the median of the runs, the
//!   min-max spread, and each runtime's cost divided by tokio's (< 1: cheaper than tokio).
//! - echo: the server runs on a dedicated thread of this process; the load generator is this
//!   binary started again with `PEERS_ROLE=echo-client` (blocking std sockets, one thread per
//!   connection). Syscalls are counted in one extra run per runtime, so the counter's overhead
//!   does not touch the other columns: `perf stat -e raw_syscalls:sys_enter -t <server tid>`,
//!   else `strace -c -p <tid>`, else "n/a" with the reason printed.
//! - idle: each run is a fresh server process (`PEERS_ROLE=idle-server`), so memory freed by
//!   earlier workloads cannot absorb the new allocations; it reads `VmRSS` from
//!   `/proc/self/status` before accepting and after every connection's task has parked. The
//!   clients are a third process (`idle-client`), as one process may hold 20,000 descriptors.
//! - Everything stays on 127.0.0.1. Every child process has its own deadline, exits when its
//!   stdin closes, and is killed when the benchmark is done with it.

// The crate root is benches/peers.rs, so its modules are found by path.
#[path = "peers/child.rs"]
mod child;
#[path = "peers/echo.rs"]
mod echo;
#[path = "peers/idle.rs"]
mod idle;
#[path = "peers/probe.rs"]
mod probe;
#[path = "peers/report.rs"]
mod report;
#[path = "peers/rt.rs"]
mod rt;
#[path = "peers/sched.rs"]
mod sched;
#[path = "peers/timers.rs"]
mod timers;

use std::io::Write;
use std::time::{Duration, Instant};

use echo::Server;
use probe::SyscallCounter;
use report::{Machine, Metric, MetricResult, RunInfo, Series, WorkloadResult};
use rt::{Futures, Runtime, Smol, Stroll, Tokio};

/// The environment variable that makes this binary a helper process instead of the benchmark.
pub const ROLE_ENV: &str = "PEERS_ROLE";

const USAGE: &str = "usage: cargo bench -p stroll --bench peers -- [--quick] [--write-docs] \
                     [WORKLOAD...]\n(run directly, the binary needs --bench as well)\n\
                     workloads: spawn_many yield_many ping_pong chained_spawn timers echo idle";

/// How much to run: quick or full.
struct Plan {
    mode: &'static str,
    /// Recorded runs per runtime of the in-process workloads, after `warmups` unrecorded ones.
    runs: usize,
    warmups: usize,
    echo_runs: usize,
    echo_duration: Duration,
    idle_runs: usize,
    idle_connections: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                mode: "quick",
                runs: 3,
                warmups: 1,
                echo_runs: 3,
                echo_duration: Duration::from_secs(2),
                idle_runs: 3,
                idle_connections: 2_000,
            }
        } else {
            Plan {
                mode: "full",
                runs: 10,
                warmups: 1,
                echo_runs: 7,
                echo_duration: Duration::from_secs(5),
                idle_runs: 5,
                idle_connections: 10_000,
            }
        }
    }
}

/// The command line.
struct Options {
    quick: bool,
    write_docs: bool,
    workloads: Vec<String>,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            quick: false,
            write_docs: false,
            workloads: Vec::new(),
        };
        for arg in args {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--write-docs" => options.write_docs = true,
                // cargo bench passes --bench to every benchmark binary.
                "--bench" => {}
                name if WORKLOADS.iter().any(|(known, _)| *known == name) => {
                    options.workloads.push(arg)
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }

    fn selects(&self, workload: &str) -> bool {
        self.workloads.is_empty() || self.workloads.iter().any(|name| name == workload)
    }

    /// Docs are written by a full run of every workload, or when asked for.
    fn writes_docs(&self) -> bool {
        self.write_docs || (!self.quick && self.workloads.is_empty())
    }
}

/// What every workload gets.
struct Context {
    plan: Plan,
    syscalls: SyscallCounter,
}

type Workload = fn(&Context) -> WorkloadResult;

const WORKLOADS: [(&str, Workload); 7] = [
    ("spawn_many", spawn_many),
    ("yield_many", yield_many),
    ("ping_pong", ping_pong),
    ("chained_spawn", chained_spawn),
    ("timers", timers),
    ("echo", echo),
    ("idle", idle),
];

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        return run_role(&role);
    }
    // `cargo bench` passes --bench; `cargo test --benches` does not, and should not start a
    // run of several minutes.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("peers: nothing to test; run it with `cargo bench -p stroll --bench peers`");
        return;
    }
    let options = Options::parse(std::env::args().skip(1)).unwrap_or_else(|err| {
        eprintln!("{err}\n{USAGE}");
        std::process::exit(2);
    });
    let started = Instant::now();
    let plan = Plan::new(options.quick);
    let machine = Machine::describe();
    let load_average = load_average();
    // Read before anything is written: the run rewrites docs/benchmarks.md itself.
    let commit = report::commit();
    println!(
        "peers: stroll next to tokio, smol, futures ({} mode)",
        plan.mode
    );
    println!("machine: {}", machine.summary());
    println!("load average at start: {load_average}");
    let syscalls = if options.selects("echo") {
        SyscallCounter::detect()
    } else {
        SyscallCounter::Unavailable("echo not run".into())
    };
    println!("echo syscalls: {}\n", syscalls.describe());

    let context = Context { plan, syscalls };
    let mut results = Vec::new();
    for (name, workload) in WORKLOADS {
        if options.selects(name) {
            let result = workload(&context);
            println!("{}", report::text_table(&result));
            results.push(result);
        }
    }
    if options.writes_docs() {
        let info = RunInfo {
            machine,
            mode: context.plan.mode,
            command: command(&options),
            load_average,
            commit,
            notes: notes(&context),
        };
        match report::write_docs(&results, &info) {
            Ok(page) => println!("wrote {} and benchmarks.svg beside it", page.display()),
            Err(err) => eprintln!("could not write the docs: {err}"),
        }
    }
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
}

/// Runs this process as one of the helpers (see [`ROLE_ENV`]).
fn run_role(role: &str) {
    match role {
        "echo-client" => echo::client_role(),
        "idle-server" => idle::server_role(),
        "idle-client" => idle::client_role(),
        "perf-window" => probe::window_role(),
        other => {
            eprintln!("unknown {ROLE_ENV}: {other}");
            std::process::exit(2);
        }
    }
}

/// Runs each runtime `warmups + runs` times, interleaved (A, B, C, A, B, C...): `run(i)` runs
/// `runtimes[i]` once. Prints a dot per run; returns each runtime's recorded results.
fn interleave<T>(
    name: &str,
    warmups: usize,
    runs: usize,
    runtimes: &[&'static str],
    run: impl Fn(usize) -> T,
) -> Vec<(&'static str, Vec<T>)> {
    print!("{name} ");
    let mut results: Vec<_> = runtimes.iter().map(|rt| (*rt, Vec::new())).collect();
    for round in 0..warmups + runs {
        for (i, (_, samples)) in results.iter_mut().enumerate() {
            let result = run(i);
            if round >= warmups {
                samples.push(result);
            }
            print!(".");
            let _ = std::io::stdout().flush();
        }
    }
    println!();
    results
}

/// The names of the runtimes with network I/O and timers.
const SERVERS: [&str; 3] = ["stroll", "tokio", "smol"];

/// One metric's series, taken from each runtime's results with `value`.
fn metric<T>(
    metric: Metric,
    results: &[(&'static str, Vec<T>)],
    value: impl Fn(&T) -> Option<f64>,
) -> MetricResult {
    let series = results
        .iter()
        .map(|(runtime, runs)| Series {
            runtime,
            samples: runs.iter().filter_map(&value).collect(),
        })
        .collect();
    MetricResult { metric, series }
}

/// A scheduling workload: one ns-per-unit number per run, on all four runtimes.
fn sched_workload(
    cx: &Context,
    name: &'static str,
    what: String,
    unit: &'static str,
    runs: [fn() -> f64; 4],
) -> WorkloadResult {
    let names = [Stroll::NAME, Tokio::NAME, Smol::NAME, Futures::NAME];
    let plan = &cx.plan;
    let results = interleave(name, plan.warmups, plan.runs, &names, |i| runs[i]());
    WorkloadResult {
        name,
        what: format!("{what}; {} runs + {} warm-up", plan.runs, plan.warmups),
        metrics: vec![metric(Metric::cost(unit).charted(), &results, |v| Some(*v))],
        notes: Vec::new(),
    }
}

fn spawn_many(cx: &Context) -> WorkloadResult {
    use sched::spawn_many as f;
    let what = format!(
        "{} empty tasks spawned, then joined",
        report::num(f64::from(sched::SPAWNS))
    );
    let runs = [f::<Stroll>, f::<Tokio>, f::<Smol>, f::<Futures>];
    sched_workload(cx, "spawn_many", what, "ns per task", runs)
}

fn yield_many(cx: &Context) -> WorkloadResult {
    use sched::yield_many as f;
    let what = format!(
        "{} tasks x {} yield_now",
        report::num(f64::from(sched::YIELD_TASKS)),
        report::num(f64::from(sched::YIELDS_PER_TASK))
    );
    let runs = [f::<Stroll>, f::<Tokio>, f::<Smol>, f::<Futures>];
    sched_workload(cx, "yield_many", what, "ns per poll", runs)
}

fn ping_pong(cx: &Context) -> WorkloadResult {
    use sched::ping_pong as f;
    let what = format!(
        "{} round trips between two tasks over unbounded futures mpsc channels",
        report::num(f64::from(sched::ROUND_TRIPS))
    );
    let runs = [f::<Stroll>, f::<Tokio>, f::<Smol>, f::<Futures>];
    sched_workload(cx, "ping_pong", what, "ns per round trip", runs)
}

fn chained_spawn(cx: &Context) -> WorkloadResult {
    use sched::chained_spawn as f;
    let what = format!(
        "each task spawns the next, {} deep",
        report::num(f64::from(sched::CHAIN))
    );
    let runs = [f::<Stroll>, f::<Tokio>, f::<Smol>, f::<Futures>];
    sched_workload(cx, "chained_spawn", what, "ns per hop", runs)
}

fn timers(cx: &Context) -> WorkloadResult {
    let runs = [timers::stroll, timers::tokio, timers::smol];
    let plan = &cx.plan;
    let results = interleave("timers", plan.warmups, plan.runs, &SERVERS, |i| runs[i]());
    WorkloadResult {
        name: "timers",
        what: format!(
            "{} concurrent sleeps, deadlines scattered over 0-50 ms, spawned and joined; {} runs + {} warm-up",
            report::num(f64::from(timers::TIMERS)),
            plan.runs,
            plan.warmups
        ),
        metrics: vec![
            metric(Metric::cost("late by (ms)"), &results, |r| Some(r.late_ms)),
            metric(Metric::cost("CPU ns per timer").charted(), &results, |r| {
                Some(r.cpu_ns_per_timer)
            }),
        ],
        notes: vec![
            "the deadlines are fixed from the start, before the tasks are spawned, so \"late \
             by\" includes spawning them and polling each once"
                .into(),
            "futures' LocalPool has no timers and does not run this workload".into(),
        ],
    }
}

fn echo(cx: &Context) -> WorkloadResult {
    let plan = &cx.plan;
    let duration = plan.echo_duration;
    let results = interleave("echo", 0, plan.echo_runs, &SERVERS, |i| {
        echo::run(Server::ALL[i], duration, None)
    });
    let mut metrics = vec![
        metric(Metric::rate("messages/s"), &results, |r| {
            Some(r.messages_per_sec)
        }),
        metric(
            Metric::cost("server CPU ns per message").charted(),
            &results,
            |r| Some(r.cpu_ns_per_message),
        ),
    ];
    let (syscalls, note) = echo_syscalls(cx, duration);
    metrics.push(syscalls);
    WorkloadResult {
        name: "echo",
        what: format!(
            "{} connections x {}-byte messages, {} s per run; {} runs",
            echo::CONNECTIONS,
            echo::MESSAGE,
            duration.as_secs(),
            plan.echo_runs
        ),
        metrics,
        notes: vec![note],
    }
}

/// echo's syscall column: one extra run per runtime with the counter attached, so that its
/// overhead stays out of the other columns; "n/a" if there is no counter. Also says how.
fn echo_syscalls(cx: &Context, duration: Duration) -> (MetricResult, String) {
    let syscalls = Metric::cost("syscalls per message");
    if let SyscallCounter::Unavailable(why) = &cx.syscalls {
        let none: Vec<(&str, Vec<f64>)> = SERVERS.iter().map(|rt| (*rt, vec![])).collect();
        let note = format!("syscalls not counted: {why}");
        return (metric(syscalls, &none, |_| None), note);
    }
    let counted = interleave("echo, counting syscalls", 0, 1, &SERVERS, |i| {
        echo::run(Server::ALL[i], duration, Some(&cx.syscalls))
    });
    let note = format!(
        "syscalls counted in one extra run per runtime with {}",
        cx.syscalls.describe()
    );
    (metric(syscalls, &counted, |r| r.syscalls_per_message), note)
}

fn idle(cx: &Context) -> WorkloadResult {
    let plan = &cx.plan;
    let conns = plan.idle_connections;
    let results = interleave("idle", 0, plan.idle_runs, &SERVERS, |i| {
        idle::run(Server::ALL[i], conns)
            .map_err(|err| eprintln!("\nidle run of {} failed: {err}", SERVERS[i]))
            .ok()
    });
    let buffer = idle::BUFFER as f64;
    WorkloadResult {
        name: "idle",
        what: format!(
            "{} idle connections, each a task with a {} B buffer parked in read; {} runs",
            report::num(conns as f64),
            idle::BUFFER,
            plan.idle_runs
        ),
        metrics: vec![
            metric(
                Metric::cost("RSS bytes per connection").charted(),
                &results,
                |r| *r,
            ),
            metric(
                Metric::cost("bytes beyond the 4 KiB buffer"),
                &results,
                |r| r.map(|bytes| bytes - buffer),
            ),
        ],
        notes: Vec::new(),
    }
}

/// The three load averages, from `/proc/loadavg`.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command that reproduces this run.
fn command(options: &Options) -> String {
    let mut args: Vec<&str> = Vec::new();
    if options.quick {
        args.push("--quick");
    }
    if options.write_docs && options.quick {
        args.push("--write-docs");
    }
    args.extend(options.workloads.iter().map(String::as_str));
    let base = "cargo bench -p stroll --bench peers";
    if args.is_empty() {
        base.to_string()
    } else {
        format!("{base} -- {}", args.join(" "))
    }
}

/// Caveats that apply to the whole run, for the docs page.
fn notes(cx: &Context) -> Vec<String> {
    vec![
        format!("echo syscalls: {}.", cx.syscalls.describe()),
        "The machine has few cores: in echo the load generator's 100 threads share them with \
         the server, so messages/s depends on the client too; the server's CPU time per \
         message is the cleaner cost."
            .into(),
        "smol's async-io may also run its reactor on a helper thread (`async-io`); the CPU \
         columns count only the loop thread, as for the other runtimes."
            .into(),
        "tokio's timer wheel has 1 ms resolution, so its sleeps end up to 1 ms after their \
         deadline by design."
            .into(),
    ]
}
