//! `chat-demo`: one chat protocol served four ways, and the tools to compare them.
//!
//! - `chat-demo serve --mode <threads|callbacks|state-machine|async>`: run a server.
//!   With no arguments at all, `chat-demo` serves `--mode async` on 127.0.0.1:7878.
//! - `chat-demo sizes`: how much memory one connection's state takes in each style.
//! - `chat-demo timeline trace.json -o timeline.svg`: draws a trace recorded with
//!   `STROLL_TRACE=trace.json` as an SVG timeline (`--from-us A --to-us B`: only that window).
//! - `chat-demo swarm`: a load generator on stroll: many clients chat, every message is
//!   checked (complete, in order) and timed.
//! - `chat-demo compare`: runs every server mode under a growing crowd of idle connections and
//!   tables (and charts) their memory, threads, CPU time and latency.
//!
//! The four servers live side by side in `threads.rs`, `callbacks.rs`, `state_machine.rs` and
//! `async_fn.rs`; what they share is in `protocol.rs` (the rules), `room.rs` (the room and its
//! bounded queues) and `server.rs` (listening, signals, running out of descriptors).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

mod async_fn;
mod callbacks;
mod compare;
mod on_stroll;
mod protocol;
mod room;
mod server;
mod shared;
mod sizes;
mod state_machine;
mod swarm;
mod threads;
mod timeline;
mod web;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "One chat protocol served four ways, on threads, callbacks and stroll."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a chat server (the default, with --mode async on 127.0.0.1:7878).
    Serve(ServeArgs),
    /// Print the memory one connection's state takes in each style.
    Sizes,
    /// Draw a trace (recorded with STROLL_TRACE=trace.json) as an SVG timeline.
    Timeline {
        /// The trace file.
        trace: std::path::PathBuf,
        /// Where to write the SVG.
        #[arg(short, long, default_value = "timeline.svg")]
        output: std::path::PathBuf,
        /// Zoom in: draw from this many microseconds after the trace began (with --to-us).
        #[arg(long, requires = "to_us")]
        from_us: Option<f64>,
        /// Zoom in: draw up to this many microseconds after the trace began.
        #[arg(long, requires = "from_us")]
        to_us: Option<f64>,
    },
    /// Load a server: many clients log in and chat; every message is checked and timed.
    Swarm(swarm::SwarmArgs),
    /// Run every server mode under a growing crowd of idle connections; table and chart
    /// their memory, threads, CPU time and latency.
    Compare(compare::CompareArgs),
    /// One process of a swarm spread over several (started by `swarm` and `compare`).
    #[command(hide = true)]
    SwarmWorker {
        /// What to do, as JSON.
        #[arg(long)]
        plan: String,
    },
}

/// How the server keeps each connection's state.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One thread per connection (plus a writer thread), std::net, blocking calls.
    Threads,
    /// One mio poll loop calling on_readable / on_writable; no futures.
    Callbacks,
    /// A hand-written Future per connection, on stroll.
    StateMachine,
    /// An `async fn` per connection, on stroll.
    Async,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Which server to run.
    #[arg(long, value_enum, default_value = "async")]
    mode: Mode,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// Address of the web client (page and WebSocket), --mode async only; "off" disables it.
    #[arg(long, default_value = "127.0.0.1:7879", value_parser = parse_web_addr)]
    web_addr: WebAddr,
    /// Longest line a client may send, in bytes.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    max_line: u64,
    /// Most bytes waiting to be written to one client before it is cut off.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(64..))]
    max_queue: u64,
    /// Most connections at once; one more gets "! server full".
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_clients: u64,
    /// Seconds a new connection has to choose a nickname (fractions allowed).
    #[arg(long, default_value_t = 30.0, value_parser = parse_seconds)]
    login_timeout: f64,
    /// Stack size of each thread, in bytes (threads mode only; default: the std default).
    #[arg(long)]
    stack_size: Option<usize>,
    /// Most threads at once (threads mode only; each connection takes two). Default: what
    /// the kernel's limit on memory mappings (vm.max_map_count) lets this process start, with
    /// a fifth kept spare.
    #[arg(long, value_parser = clap::value_parser!(u64).range(3..))]
    max_threads: Option<u64>,
}

/// `serve` with every option at its default: what `chat-demo` with no arguments runs.
fn default_serve_args() -> ServeArgs {
    match Cli::parse_from(["chat-demo", "serve"]).command {
        Some(Command::Serve(args)) => args,
        _ => unreachable!("`chat-demo serve` parses as the serve command"),
    }
}

/// `--web-addr`: an address, or off.
#[derive(Clone, Copy, Debug)]
enum WebAddr {
    Off,
    At(SocketAddr),
}

fn parse_web_addr(text: &str) -> Result<WebAddr, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(WebAddr::Off);
    }
    text.parse()
        .map(WebAddr::At)
        .map_err(|_| format!("not an address (ip:port) or \"off\": {text}"))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
    if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 {
        Ok(seconds)
    } else {
        Err("must be a positive number of seconds".to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli
        .command
        .unwrap_or_else(|| Command::Serve(default_serve_args()))
    {
        Command::Serve(args) => serve(args),
        Command::Sizes => sizes::print(),
        Command::Timeline {
            trace,
            output,
            from_us,
            to_us,
        } => timeline::render_file(&trace, &output, from_us.zip(to_us)),
        Command::Swarm(args) => swarm::run(args),
        Command::Compare(args) => compare::run(args),
        Command::SwarmWorker { plan } => swarm::run_worker_process(&plan),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat-demo: {err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> std::io::Result<()> {
    let limits = room::Limits {
        max_line: args.max_line as usize,
        max_queue: args.max_queue as usize,
        max_clients: args.max_clients as usize,
        login_timeout: Duration::from_secs_f64(args.login_timeout),
    };
    if args.stack_size.is_some() && args.mode != Mode::Threads {
        eprintln!("chat-demo: --stack-size only applies to --mode threads; ignoring it");
    }
    if args.max_threads.is_some() && args.mode != Mode::Threads {
        eprintln!("chat-demo: --max-threads only applies to --mode threads; ignoring it");
    }
    let listener = server::bind_listener(args.addr).map_err(|err| {
        std::io::Error::new(err.kind(), format!("cannot listen on {}: {err}", args.addr))
    })?;
    let web = match (args.mode, args.web_addr) {
        (_, WebAddr::Off) => None,
        (Mode::Async, WebAddr::At(addr)) => web_listener(addr),
        (mode, WebAddr::At(_)) => {
            eprintln!("chat-demo: no web client in --mode {mode:?}: it needs --mode async");
            None
        }
    };
    match args.mode {
        Mode::Threads => {
            let threads = threads::Threads {
                stack_size: args.stack_size,
                max_threads: args.max_threads.map(|n| n as usize),
            };
            threads::serve(listener, limits, threads)
        }
        Mode::Callbacks => callbacks::serve(listener, limits),
        Mode::StateMachine => state_machine::serve(listener, limits),
        Mode::Async => async_fn::serve(listener, web, limits),
    }
}

/// The web client's listener. If its address is taken (another server runs), the chat goes on
/// without it: the web client is an extra, not a reason to refuse to start.
fn web_listener(addr: SocketAddr) -> Option<std::net::TcpListener> {
    match server::bind_listener(addr) {
        Ok(listener) => Some(listener),
        Err(err) => {
            eprintln!("chat-demo: web client off: cannot listen on {addr}: {err}");
            None
        }
    }
}
