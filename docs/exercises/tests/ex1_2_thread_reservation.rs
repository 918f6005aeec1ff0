//! Exercise 1.2 ("Why async"): check, from inside a program, that a thread reserves its whole
//! stack as address space but makes only the pages it touches resident.
//!
//! The solution reads `Threads`, `VmSize` and `VmRSS` from /proc/self/status before and after
//! parking 100 threads with 256 KiB stacks.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A `Name:   value kB` field of /proc/self/status (the value alone for `Threads`).
pub fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no field {name}"))
}

/// Parks `count` threads with `stack` bytes of stack each; dropping the senders ends them.
pub fn park(count: usize, stack: usize) -> (Vec<mpsc::Sender<()>>, Vec<thread::JoinHandle<()>>) {
    (0..count)
        .map(|_| {
            let (release, parked) = mpsc::channel::<()>();
            let handle = thread::Builder::new()
                .stack_size(stack)
                .spawn(move || {
                    let _ = parked.recv();
                })
                .expect("spawn");
            (release, handle)
        })
        .unzip()
}

const COUNT: usize = 100;
const STACK: usize = 256 * 1024;

#[test]
fn parked_threads_reserve_their_stacks_but_touch_little() {
    let (threads, size, rss) = (
        status_field("Threads"),
        status_field("VmSize"),
        status_field("VmRSS"),
    );
    let (releases, handles) = park(COUNT, STACK);
    thread::sleep(Duration::from_millis(100)); // let each reach its recv()
    let more_threads = status_field("Threads") - threads;
    let reserved_kib = status_field("VmSize") - size;
    let resident_kib = status_field("VmRSS").saturating_sub(rss);
    drop(releases);
    for handle in handles {
        handle.join().unwrap();
    }
    // The test harness may start or end a thread of its own meanwhile.
    assert!(
        more_threads >= COUNT as u64 - 2,
        "{more_threads} new threads"
    );
    let stacks_kib = (COUNT * STACK / 1024) as u64;
    assert!(
        reserved_kib >= stacks_kib,
        "address space grew by {reserved_kib} KiB, less than {stacks_kib} KiB of stacks"
    );
    assert!(
        resident_kib < stacks_kib / 4,
        "resident memory grew by {resident_kib} KiB: the stacks were touched, not just reserved"
    );
}

#[test]
fn the_parser_reads_a_field() {
    assert!(status_field("Threads") >= 1);
    assert!(status_field("VmSize") > status_field("VmRSS"));
}
