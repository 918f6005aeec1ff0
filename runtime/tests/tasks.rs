//! Tasks through the public API: spawning, joining, panics, abort, shutdown, wakes.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::panic::catch_unwind;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use stroll::task::{self, Builder};
use stroll::{block_on, spawn, yield_now};

/// Sets a flag when dropped: shows that a future's destructor ran.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A future that never completes.
fn forever() -> impl Future<Output = ()> {
    std::future::pending()
}

#[test]
fn block_on_returns_the_future_output() {
    assert_eq!(block_on(async { 40 + 2 }), 42);
}

#[test]
fn join_handles_return_task_values() {
    let sum = block_on(async {
        let handles: Vec<_> = (0..10u64).map(|i| spawn(async move { i * i })).collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..10u64).map(|i| i * i).sum::<u64>());
}

#[test]
fn tasks_need_not_be_send() {
    let shared = Rc::new(RefCell::new(Vec::new()));
    block_on(async {
        let shared2 = shared.clone();
        spawn(async move {
            yield_now().await; // Rc held across an .await
            shared2.borrow_mut().push("from the task");
        })
        .await
        .unwrap();
    });
    assert_eq!(*shared.borrow(), ["from the task"]);
}

#[test]
fn yield_now_interleaves_tasks() {
    let log = Rc::new(RefCell::new(Vec::new()));
    block_on(async {
        let mut handles = Vec::new();
        for name in ["a", "b"] {
            let log = log.clone();
            handles.push(spawn(async move {
                for i in 0..3 {
                    log.borrow_mut().push(format!("{name}{i}"));
                    yield_now().await;
                }
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn a_panicking_task_does_not_stop_the_others() {
    block_on(async {
        let bad = spawn(async {
            yield_now().await;
            panic!("boom");
        });
        let good = spawn(async {
            for _ in 0..5 {
                yield_now().await;
            }
            "still here"
        });
        let err = bad.await.unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert!(err.to_string().contains("boom"), "{err}");
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(good.await.unwrap(), "still here");
    });
}

#[test]
fn a_detached_task_may_panic_without_harm() {
    let result = block_on(async {
        drop(
            Builder::new()
                .name("doomed")
                .spawn(async { panic!("nobody is listening") }),
        );
        for _ in 0..3 {
            yield_now().await;
        }
        spawn(async { 7 }).await.unwrap()
    });
    assert_eq!(result, 7);
}

#[test]
fn a_detached_panic_is_reported_on_stderr_with_the_task_name() {
    // The scenario runs in a child process (this same test binary) so that its stderr can be
    // read; `STROLL_TEST_CHILD` tells the child to run it.
    if std::env::var_os("STROLL_TEST_CHILD").is_some() {
        block_on(async {
            drop(
                Builder::new()
                    .name("doomed-task")
                    .spawn(async { panic!("lost panic") }),
            );
            yield_now().await;
            yield_now().await;
        });
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_detached_panic_is_reported_on_stderr_with_the_task_name",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env("STROLL_TEST_CHILD", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "the child test failed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = stderr
        .lines()
        .find(|line| line.starts_with("stroll: task"))
        .unwrap_or_else(|| panic!("no report on stderr:\n{stderr}"));
    assert!(report.contains("'doomed-task'"), "{report}");
    assert!(report.contains("lost panic"), "{report}");
    assert!(
        report.contains("tasks.rs"),
        "the report names the spawn location: {report}"
    );
}

#[test]
fn abort_drops_the_future_and_reports_cancellation() {
    let dropped = Rc::new(Cell::new(false));
    block_on(async {
        let flag = DropFlag(dropped.clone());
        let handle = spawn(async move {
            let _flag = flag;
            forever().await;
        });
        yield_now().await; // let it start
        assert!(!handle.is_finished());
        handle.abort();
        assert!(dropped.get(), "abort must drop the task's future");
        let err = handle.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(!err.is_panic());
    });
}

#[test]
fn a_task_can_abort_itself() {
    block_on(async {
        let slot: Rc<RefCell<Option<stroll::JoinHandle<()>>>> = Rc::default();
        let slot2 = slot.clone();
        let reached_end = Rc::new(Cell::new(false));
        let reached_end2 = reached_end.clone();
        let watcher = spawn(async move {
            yield_now().await;
            slot2.borrow().as_ref().unwrap().abort();
            yield_now().await; // the task is dropped when this poll returns
            reached_end2.set(true);
        });
        // Keep a second way to watch the task: the handle itself sits in the slot.
        *slot.borrow_mut() = Some(watcher);
        for _ in 0..5 {
            yield_now().await;
        }
        let handle = slot.borrow_mut().take().unwrap();
        assert!(handle.is_finished());
        assert!(handle.await.unwrap_err().is_cancelled());
        assert!(!reached_end.get());
    });
}

#[test]
fn aborting_a_finished_task_keeps_its_result() {
    block_on(async {
        let handle = spawn(async { 5 });
        yield_now().await;
        yield_now().await;
        assert!(handle.is_finished());
        handle.abort();
        assert_eq!(handle.await.unwrap(), 5);
    });
}

#[test]
fn pending_tasks_are_dropped_when_block_on_returns() {
    let dropped = Rc::new(Cell::new(false));
    let flag = DropFlag(dropped.clone());
    block_on(async move {
        let _detached = spawn(async move {
            let _flag = flag;
            forever().await;
        });
        yield_now().await;
    });
    assert!(dropped.get(), "a pending task must be dropped by block_on");
}

#[test]
#[allow(clippy::async_yields_async)] // returning the handle un-awaited is the point
fn a_handle_outliving_its_runtime_reports_cancellation() {
    let handle = block_on(async {
        let handle = spawn(forever());
        yield_now().await;
        handle
    });
    assert!(handle.is_finished());
    let err = block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
}

#[test]
fn spawn_outside_a_runtime_panics_clearly() {
    let err = catch_unwind(|| drop(spawn(async {}))).unwrap_err();
    let message = err.downcast_ref::<String>().unwrap();
    assert!(message.contains("inside a stroll runtime"), "{message}");
}

#[test]
fn nested_block_on_panics_clearly_and_the_runtime_stays_usable() {
    let err = catch_unwind(|| block_on(async { block_on(async {}) })).unwrap_err();
    let message = err.downcast_ref::<&str>().unwrap();
    assert!(
        message.contains("inside a running stroll runtime"),
        "{message}"
    );
    // The thread can run a runtime again afterwards.
    assert_eq!(block_on(async { spawn(async { 1 }).await.unwrap() }), 1);
}

#[test]
fn block_on_can_run_again_after_its_future_panicked() {
    let err = catch_unwind(|| block_on(async { panic!("main failed") })).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"main failed"));
    assert_eq!(block_on(async { 3 }), 3);
}

#[test]
fn one_hundred_thousand_tiny_tasks() {
    const N: u64 = 100_000;
    let total = block_on(async {
        let handles: Vec<_> = (0..N).map(|i| spawn(async move { i })).collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        total
    });
    assert_eq!(total, N * (N - 1) / 2);
}

#[test]
fn task_ids_are_unique_and_growing() {
    block_on(async {
        let a = spawn(async {});
        let b = spawn(async {});
        assert!(b.id() > a.id());
        let (ida, idb) = (a.id(), b.id());
        a.await.unwrap();
        b.await.unwrap();
        let c = spawn(async {});
        assert!(c.id() > idb && c.id() > ida, "ids are never reused");
    });
}

#[test]
fn named_tasks_run() {
    let value = block_on(async {
        Builder::new()
            .name("worker")
            .spawn(async { "named" })
            .await
            .unwrap()
    });
    assert_eq!(value, "named");
}

/// A future that hands its waker to another thread on its first poll, and completes on the
/// next poll, which only a wake can cause.
struct WaitForThread {
    waker_out: Option<mpsc::Sender<Waker>>,
}

impl Future for WaitForThread {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.waker_out.take() {
            Some(sender) => {
                sender.send(cx.waker().clone()).unwrap();
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }
}

/// Starts a thread that wakes whatever waker it receives.
fn waking_thread() -> (mpsc::Sender<Waker>, thread::JoinHandle<()>) {
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let thread = thread::spawn(move || waker_rx.recv().unwrap().wake());
    (waker_tx, thread)
}

/// Generous bound so that a lost wake fails the test instead of hanging it.
const LOST_WAKE: Duration = Duration::from_secs(20);

#[test]
fn a_wake_from_another_thread_interrupts_the_wait() {
    let (waker_out, thread) = waking_thread();
    block_on(async move {
        // Only the thread can wake this future: the timeout is only a guard against a hang.
        let waited = stroll::time::timeout(
            LOST_WAKE,
            WaitForThread {
                waker_out: Some(waker_out),
            },
        );
        waited.await.expect("the cross-thread wake was lost");
    });
    thread.join().unwrap();
}

#[test]
fn a_wake_from_another_thread_reaches_a_spawned_task() {
    let (waker_out, thread) = waking_thread();
    block_on(async move {
        let task = spawn(WaitForThread {
            waker_out: Some(waker_out),
        });
        let joined = stroll::time::timeout(LOST_WAKE, task).await;
        joined.expect("the cross-thread wake was lost").unwrap();
    });
    thread.join().unwrap();
}

#[test]
fn wakers_outliving_their_runtime_are_harmless() {
    let waker = block_on(poll_fn(|cx| Poll::Ready(cx.waker().clone())));
    waker.wake_by_ref(); // same thread, runtime gone
    thread::spawn(move || waker.wake()).join().unwrap(); // other thread
    assert_eq!(block_on(async { 1 }), 1);
}

#[test]
fn spawn_blocking_does_not_block_the_loop() {
    block_on(async {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let blocking = task::spawn_blocking(move || {
            release_rx.recv().unwrap(); // blocks this pool thread until the loop releases it
            "unblocked"
        });
        // The loop keeps running tasks while the job blocks.
        let ticks = spawn(async {
            for _ in 0..100 {
                yield_now().await;
            }
            100
        });
        assert_eq!(ticks.await.unwrap(), 100);
        assert!(!blocking.is_finished());
        release_tx.send(()).unwrap();
        assert_eq!(blocking.await.unwrap(), "unblocked");
    });
}

#[test]
fn spawn_blocking_panics_reach_the_handle() {
    block_on(async {
        let err = task::spawn_blocking(|| panic!("blocking boom"))
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("blocking boom"), "{err}");
    });
}

#[test]
fn many_blocking_jobs_all_complete() {
    let start = Instant::now();
    let total: u32 = block_on(async {
        let handles: Vec<_> = (0..64u32)
            .map(|i| task::spawn_blocking(move || i))
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        total
    });
    assert_eq!(total, (0..64).sum::<u32>());
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn task_yield_now_is_the_same_as_the_root_one() {
    block_on(async {
        task::yield_now().await;
        stroll::task::yield_now().await;
    });
}

#[test]
fn a_destructor_that_panics_during_abort_harms_no_one() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("destructor panicked");
        }
    }
    let value = block_on(async {
        let victim = spawn(async {
            let _bomb = PanicOnDrop;
            forever().await;
        });
        yield_now().await;
        victim.abort(); // the destructor's panic is caught and reported, not raised here
        assert!(victim.await.unwrap_err().is_cancelled());
        let survivor = spawn(async {
            let _bomb = PanicOnDrop;
            forever().await;
        });
        yield_now().await;
        drop(survivor); // still pending: dropped when block_on ends
        9
    });
    assert_eq!(value, 9);
    // The runtime was cleaned up properly: another one can run on this thread.
    assert_eq!(block_on(async { spawn(async { 1 }).await.unwrap() }), 1);
}
