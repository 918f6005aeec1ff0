//! conn_cost: where the memory of one idle async connection goes. The book's chapter "When to
//! use it" runs it.
//!
//! Run it with `cargo run -q -p chat-demo --example conn_cost [CONNECTIONS] [--burst]`
//! (default 1000 connections, logged in one by one; `--burst`: all at once).
//!
//! It runs the real `async` server's connection handler (`chat-demo/src/async_fn.rs`) on one
//! thread, logs in CONNECTIONS clients from another thread, waits until the server is quiet,
//! and prints what the server's thread still holds on the heap, per connection: in all, and
//! allocation by allocation (size, and how many per connection). A global allocator counts
//! every allocation and free made on the server's thread; the clients' thread is not counted.
//!
//! What to watch for: the future of `handle_client` is one allocation among several; the
//! writer task, the outbox, the socket's reactor entry, the room's entry and the buffers the
//! writer keeps add up to more than the future, and RSS adds the allocator's own overhead.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../src/async_fn.rs"]
mod async_fn;
#[allow(dead_code)]
#[path = "../src/on_stroll.rs"]
mod on_stroll;
#[allow(dead_code)]
#[path = "../src/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../src/room.rs"]
mod room;
#[allow(dead_code)]
#[path = "../src/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../src/shared.rs"]
mod shared;
#[allow(dead_code)]
#[path = "../src/web.rs"]
mod web;

// ANCHOR: counter
/// Live allocations by size, in 16-byte classes up to 64 KiB (the last class holds the rest).
const CLASSES: usize = 4096;
static LIVE_BY_CLASS: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];
static LIVE_BYTES_BY_CLASS: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

thread_local! {
    /// Set on the server's thread only.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn class(size: usize) -> usize {
    (size.div_ceil(16)).min(CLASSES - 1)
}

/// The system allocator, counting what the server's thread allocates and frees.
///
/// This example holds the project's only `unsafe`: `GlobalAlloc` is an unsafe trait
/// (the compiler trusts the pointers it returns), so no allocator can be written without it.
/// This one only counts, then forwards each call unchanged to `System`, which keeps the
/// promises the trait asks for. The runtime itself forbids `unsafe` (`runtime/src/lib.rs`).
struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, a correct allocator; the
// counting touches only atomics and a thread-local flag, and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.try_with(Cell::get).unwrap_or(false) {
            LIVE_BY_CLASS[class(layout.size())].fetch_add(1, Relaxed);
            LIVE_BYTES_BY_CLASS[class(layout.size())].fetch_add(layout.size() as isize, Relaxed);
        }
        // SAFETY: the caller's promises about `layout` are passed on to `System` unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTED.try_with(Cell::get).unwrap_or(false) {
            LIVE_BY_CLASS[class(layout.size())].fetch_sub(1, Relaxed);
            LIVE_BYTES_BY_CLASS[class(layout.size())].fetch_sub(layout.size() as isize, Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` above with this `layout`, so from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;
// ANCHOR_END: counter

/// What the counters say at one moment.
struct Snapshot {
    by_class: Vec<isize>,
    bytes_by_class: Vec<isize>,
    rss_kib: u64,
}

fn snapshot() -> Snapshot {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Snapshot {
        by_class: LIVE_BY_CLASS.iter().map(|c| c.load(Relaxed)).collect(),
        bytes_by_class: LIVE_BYTES_BY_CLASS
            .iter()
            .map(|c| c.load(Relaxed))
            .collect(),
        rss_kib,
    }
}

/// Logs in `count` clients: one by one (each waits for its welcome before the next connects),
/// or, with `burst`, all at once as a crowd does (all connect, all send a nickname, then each
/// reads up to its welcome). Then they idle: what else the server sends waits in their sockets.
fn clients(addr: std::net::SocketAddr, count: usize, burst: bool) -> Vec<TcpStream> {
    let connect = || {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    };
    let send_nick = |i: usize, mut stream: &TcpStream| {
        stream.write_all(format!("c{i}\n").as_bytes()).unwrap();
    };
    let read_welcome = |stream: &TcpStream| {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while !line.starts_with("* hello") {
            line.clear();
            reader
                .read_line(&mut line)
                .expect("a line before the welcome");
        }
    };
    if !burst {
        return (0..count)
            .map(|i| {
                let stream = connect();
                send_nick(i, &stream);
                read_welcome(&stream);
                stream
            })
            .collect();
    }
    let streams: Vec<TcpStream> = (0..count).map(|_| connect()).collect();
    for (i, stream) in streams.iter().enumerate() {
        send_nick(i, stream);
    }
    for stream in &streams {
        read_welcome(stream);
    }
    streams
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let burst = args.iter().any(|a| a == "--burst");
    let count: usize = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or(1000, |n| n.parse().expect("a number"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let done = Arc::new(AtomicBool::new(false));
    let client_done = done.clone();
    let client_thread = std::thread::spawn(move || {
        let streams = clients(addr, count, burst);
        client_done.store(true, Relaxed);
        // Keep the connections open until the server has measured.
        std::thread::sleep(Duration::from_secs(2));
        drop(streams);
    });
    COUNTED.with(|c| c.set(true));
    let (before, after) = stroll::block_on(async move {
        let listener = stroll::net::TcpListener::from_std(listener)?;
        let shared = shared::Shared::new(room::Limits::default(), None);
        // Let the runtime make what it makes once (its reactor, timers...) before the baseline.
        stroll::time::sleep(Duration::from_millis(10)).await;
        let before = snapshot();
        let accept = stroll::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let live = shared::LiveGuard::new(&shared);
                let task = async_fn::handle_client(stream, shared.clone(), live);
                drop(stroll::spawn(task));
            }
        });
        while !done.load(Relaxed) {
            stroll::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the last broadcasts be written.
        stroll::time::sleep(Duration::from_millis(200)).await;
        let after = snapshot();
        accept.abort();
        Ok::<_, std::io::Error>((before, after))
    })?;
    COUNTED.with(|c| c.set(false));
    client_thread.join().unwrap();
    report(count, burst, &before, &after);
    Ok(())
}

/// Size bands of the report, in bytes (inclusive).
const BANDS: [(usize, usize); 6] = [
    (1, 64),
    (65, 256),
    (257, 4096),
    (4097, 8192),
    (8193, 16384),
    (16385, usize::MAX),
];

fn report(count: usize, burst: bool, before: &Snapshot, after: &Snapshot) {
    let n = count as f64;
    let how = if burst { "all at once" } else { "one by one" };
    println!(
        "{count} idle connections, logged in {how}; the server's thread holds, per connection:"
    );
    println!();
    println!(
        "  {:>20} {:>12} {:>8}",
        "allocations of", "how many", "bytes"
    );
    let mut total = 0.0;
    for (low, high) in BANDS {
        // Class `c` holds sizes up to `c * 16`; the last one, everything bigger too.
        let classes = (1..CLASSES).filter(|&c| (low..=high).contains(&(c * 16)));
        let (mut how_many, mut bytes) = (0.0, 0.0);
        for c in classes {
            how_many += (after.by_class[c] - before.by_class[c]) as f64 / n;
            bytes += (after.bytes_by_class[c] - before.bytes_by_class[c]) as f64 / n;
        }
        total += bytes;
        let label = if high == usize::MAX {
            format!("over {} B", low - 1)
        } else {
            format!("{low}-{high} B")
        };
        println!("  {label:>20} {how_many:>12.1} {bytes:>8.0}");
    }
    println!("  {:>20} {:>12} {total:>8.0}", "heap, in all", "");
    let rss = (after.rss_kib.saturating_sub(before.rss_kib)) as f64 * 1024.0 / n;
    println!("  {:>20} {:>12} {rss:>8.0}", "resident memory", "");
}
