//! thread_cost: what a parked thread costs. The book's chapter "Why async" runs it.
//!
//! Run it with `cargo run -q -p chat-demo --example thread_cost [THREADS] [STACK_KIB]`.
//!
//! What to watch for: each thread reserves a whole stack of address space (2 MiB by default)
//! but only the pages it touched become resident memory. The address space also grows by
//! glibc's malloc arenas (up to 8 per core, 64 MiB of address space each, made as threads
//! first call malloc): run it again with `MALLOC_ARENA_MAX=1` and that part goes. The kernel
//! keeps a kernel stack and page tables per thread, which this process's RSS does not show:
//! the last two lines read them from /proc/self/status (VmPTE) and /proc/meminfo (KernelStack,
//! for the whole machine, so other programs running at the same time blur it).

use std::sync::mpsc;
use std::thread;

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    file_kb("/proc/self/status", field)
}

/// A field of a /proc file of `Name: value kB` lines, in kB.
fn file_kb(path: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
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
    let tables_before = status_kb("VmPTE:");
    let kernel_stacks_before = file_kb("/proc/meminfo", "KernelStack:");
    let releases = park_threads(count, stack);
    thread::sleep(std::time::Duration::from_millis(200));
    let rss = status_kb("VmRSS:").saturating_sub(before);
    let virt = status_kb("VmSize:").saturating_sub(virtual_before);
    let tables = status_kb("VmPTE:").saturating_sub(tables_before);
    let kernel_stacks =
        file_kb("/proc/meminfo", "KernelStack:").saturating_sub(kernel_stacks_before);
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
    println!("  not in RSS:");
    println!(
        "    page tables added:      {} KiB ({} bytes per thread)",
        tables,
        tables * 1024 / count as u64
    );
    println!(
        "    kernel stacks added:    {} KiB ({} bytes per thread; machine-wide figure)",
        kernel_stacks,
        kernel_stacks * 1024 / count as u64
    );
    drop(releases); // every recv() returns; the threads end
}
