//! Tests that look inside the runtime (its timer store, its reactor, its task table), which the
//! integration tests beside this folder cannot see. This file is not one of them: `lib.rs`
//! compiles it into the crate, under `#[cfg(test)]`, as the module `tests` (`#[path]`), which
//! nothing imports, so that the modules it inspects keep their one-way dependencies.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use crate::time::{sleep, timeout};

#[test]
fn tasks_are_removed_from_the_table_when_they_finish() {
    crate::block_on(async {
        let handle = crate::spawn(async { 1 });
        assert_eq!(handle.await.unwrap(), 1);
        let runtime = crate::runtime::try_current().unwrap();
        assert_eq!(runtime.tasks.states().len(), 0);
    });
}

#[test]
fn dropping_a_socket_deregisters_it() {
    crate::block_on(async {
        let reactor = crate::runtime::current_reactor();
        let before = reactor.source_count();
        let listener = crate::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(reactor.source_count(), before + 1);
        drop(listener);
        assert_eq!(reactor.source_count(), before);
    });
}

#[test]
fn a_read_that_lost_to_a_timeout_leaves_no_waker_behind() {
    crate::block_on(async {
        let reactor = crate::runtime::current_reactor();
        let listener = crate::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut buf = [0; 1];
        let read = server.read(&mut buf);
        let result = crate::time::timeout(std::time::Duration::from_millis(5), read).await;
        assert!(
            result.is_err(),
            "nothing was sent, so the read cannot complete"
        );
        assert_eq!(reactor.waiter_count(), 0);
    });
}

fn registered_timers() -> usize {
    crate::runtime::try_current().unwrap().timers.len()
}

#[test]
fn a_dropped_sleep_leaves_no_timer_behind() {
    crate::block_on(async {
        let mut long = sleep(Duration::from_secs(3600));
        // Poll once so that the sleep registers its deadline.
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut long).poll(cx))).await;
        assert!(first.is_pending());
        assert_eq!(registered_timers(), 1);
        drop(long);
        assert_eq!(registered_timers(), 0);
    });
}

#[test]
fn a_completed_timeout_leaves_no_timer_behind() {
    crate::block_on(async {
        let result = timeout(Duration::from_secs(3600), crate::yield_now()).await;
        assert!(result.is_ok());
        assert_eq!(registered_timers(), 0);
    });
}

/// The structures kept per task and per socket are as small as their docs say: an idle
/// connection costs each of them once (see the idle workload in `benches/peers.rs`).
#[test]
fn per_task_and_per_socket_structures_stay_small() {
    use std::mem::size_of;
    // The waker's data; with the `Arc`'s two counters, 40 bytes: malloc's 48-byte chunk.
    assert_eq!(size_of::<crate::waker::TaskWaker>(), 24);
    // Nobody or one waiter inline, in the space of a `Vec`.
    assert_eq!(size_of::<crate::waiters::Waiters>(), 24);
    assert_eq!(size_of::<crate::ids::Source>(), 36);
    // A socket's entry in the reactor: its description, caches and two `Waiters`.
    assert_eq!(size_of::<crate::reactor::SourceState>(), 88);
    // The task table's record of a task: a thin pointer to its name, if it has one.
    assert_eq!(crate::observe::record_size(), 48);
}
