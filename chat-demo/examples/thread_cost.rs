//! thread_cost: what a parked thread costs. The book's chapter 1 runs it.
//!
//! Run it with `cargo run --release -p chat-demo --example thread_cost [THREADS] [STACK_KIB]`.
//!
//! What to watch for: each thread reserves a whole stack of address space (2 MiB by default)
//! but only the pages it touched become resident memory; the kernel also keeps a task
//! structure and a kernel stack per thread, which this process's RSS does not show. Compare
//! the resident bytes per thread with the size of a connection's future (`chat-demo sizes`).

use std::sync::mpsc;
use std::thread;

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ANCHOR: park
/// Starts `count` threads that each wait on a channel, like a thread per idle connection
/// waits in `read`. Returns the senders that release them.
fn park_threads(count: usize, stack: Option<usize>) -> Vec<mpsc::Sender<()>> {
    let mut releases = Vec::with_capacity(count);
    for _ in 0..count {
        let (release, parked) = mpsc::channel::<()>();
        let mut builder = thread::Builder::new();
        if let Some(bytes) = stack {
            builder = builder.stack_size(bytes);
        }
        builder
            .spawn(move || {
                let _ = parked.recv(); // blocked, like a connection waiting for its client
            })
            .expect("cannot start a thread");
        releases.push(release);
    }
    releases
}
// ANCHOR_END: park

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let stack = args
        .next()
        .and_then(|a| a.parse::<usize>().ok())
        .map(|kib| kib * 1024);
    let before = status_kb("VmRSS:");
    let virtual_before = status_kb("VmSize:");
    let releases = park_threads(count, stack);
    thread::sleep(std::time::Duration::from_millis(200));
    let rss = status_kb("VmRSS:").saturating_sub(before);
    let virt = status_kb("VmSize:").saturating_sub(virtual_before);
    println!(
        "{count} parked threads (stack: {}):",
        match stack {
            Some(bytes) => format!("{} KiB", bytes / 1024),
            None => "default".to_string(),
        }
    );
    println!("  threads in this process:  {}", status_kb("Threads:"));
    println!(
        "  address space reserved:   {} KiB ({} KiB per thread)",
        virt,
        virt / count as u64
    );
    println!(
        "  resident memory added:    {} KiB ({} bytes per thread)",
        rss,
        rss * 1024 / count as u64
    );
    drop(releases); // every recv() returns; the threads end
}
