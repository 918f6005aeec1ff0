//! The loop's edges: fairness between a busy task and a ready socket, wakes from other threads,
//! `spawn_blocking` outside a runtime, nested runtimes and traces, stale names in the task table.
//!
//! Each test here failed on the first edition of the runtime (see the second edition's notes):
//! they guard the fixes.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};
use stroll::task::{self, TaskState, Wait};
use stroll::{block_on, spawn, yield_now};

/// A connected pair: a std client and the stroll server side of it.
async fn connected_pair() -> (std::net::TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn a_yielding_task_lets_a_ready_socket_through_within_a_turn_or_two() {
    block_on(async {
        let (mut client, server) = connected_pair().await;
        let got_data = Rc::new(Cell::new(false));
        let reader = spawn({
            let got_data = got_data.clone();
            async move {
                let mut buf = [0; 1];
                server.read(&mut buf).await.unwrap();
                got_data.set(true);
            }
        });
        yield_now().await; // The reader parks on its empty socket.
        client.write_all(b"x").unwrap(); // Now its event waits in the kernel.
        let mut yields = 0;
        while !got_data.get() {
            yields += 1;
            assert!(yields < 1000, "the reader never got its byte");
            yield_now().await;
        }
        reader.await.unwrap();
        // The first edition asked epoll only every 61 polls: the reader waited ~62 yields.
        assert!(yields <= 3, "a ready socket waited {yields} yields");
    });
}

#[test]
fn a_flooding_socket_does_not_hold_back_another_sockets_event() {
    block_on(async {
        let (mut flood_client, flood_server) = connected_pair().await;
        let (mut quiet_client, quiet_server) = connected_pair().await;
        // Far more bytes than the flooder reads per poll (its budget is 128 reads).
        flood_client.write_all(&vec![7u8; 256 * 1024]).unwrap();
        let flood_reads = Rc::new(Cell::new(0u32));
        let flooder = spawn({
            let flood_reads = flood_reads.clone();
            async move {
                let mut byte = [0; 1];
                loop {
                    // One byte at a time: every read completes, none ever parks.
                    if flood_server.read(&mut byte).await.unwrap() == 0 {
                        break;
                    }
                    flood_reads.set(flood_reads.get() + 1);
                }
            }
        });
        let quiet = spawn(async move {
            let mut byte = [0; 1];
            quiet_server.read(&mut byte).await.unwrap();
        });
        yield_now().await; // Both tasks have run once; the quiet one parks.
        let before = flood_reads.get();
        quiet_client.write_all(b"q").unwrap();
        quiet.await.unwrap();
        let during = flood_reads.get() - before;
        flooder.abort();
        // A turn or two of the flooder is 128 to 256 reads; the first edition let it run
        // 61 polls (7,800 reads) before it looked at the reactor again.
        assert!(during <= 3 * 128, "the flooder read {during} bytes first");
    });
}

#[test]
fn a_thread_waking_one_task_a_million_times_queues_it_once() {
    block_on(async {
        let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
        let woken_once = Rc::new(Cell::new(false));
        let sleeper = task::Builder::new().name("sleeper").spawn({
            let waker = waker.clone();
            let woken_once = woken_once.clone();
            poll_fn(move |cx| {
                if woken_once.get() {
                    return Poll::Ready(());
                }
                *waker.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            })
        });
        yield_now().await; // The sleeper parks and leaves its waker.
        let waker = waker.lock().unwrap().take().unwrap();
        // The loop thread is held here (blocking on purpose), so every wake is remote and
        // lands in the inbox before the loop looks at it.
        std::thread::spawn(move || {
            for _ in 0..1_000_000 {
                waker.wake_by_ref();
            }
        })
        .join()
        .unwrap();
        let row = || {
            let table = task::dump();
            let row = table
                .tasks
                .iter()
                .find(|t| t.name.as_deref() == Some("sleeper"));
            row.map(|row| (row.polls, row.wakes))
        };
        yield_now().await; // The loop takes the inbox and queues the sleeper.
        assert_eq!(row(), Some((1, 1)), "one wake, not a million");
        woken_once.set(true);
        sleeper.await.unwrap();
    });
}

#[test]
fn spawn_blocking_outside_a_runtime_panics_before_the_closure_runs() {
    let ran = Arc::new(AtomicBool::new(false));
    let result = panic::catch_unwind({
        let ran = ran.clone();
        move || {
            drop(task::spawn_blocking(move || {
                ran.store(true, Ordering::SeqCst)
            }))
        }
    });
    let payload = result.unwrap_err();
    let message = match payload.downcast_ref::<&str>() {
        Some(message) => message.to_string(),
        None => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(message.contains("inside a stroll runtime"), "{message}");
    // A pool thread would have run it at once; give it ample time to show up.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!ran.load(Ordering::SeqCst), "the closure ran anyway");
}

#[test]
fn a_panicking_block_on_future_is_not_left_running() {
    // A task's destructor runs at shutdown, after the block_on future panicked: what does the
    // task table say about that future then?
    struct LookAtMain(Rc<Cell<Option<TaskState>>>);
    impl Drop for LookAtMain {
        fn drop(&mut self) {
            let table = task::dump();
            self.0.set(Some(table.tasks[0].state));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(async {
            let guard = LookAtMain(seen.clone());
            drop(spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }));
            yield_now().await;
            panic!("the block_on future fails");
        })
    }));
    assert!(result.is_err());
    assert_eq!(seen.get(), Some(TaskState::Waiting));
}

#[test]
fn the_task_table_does_not_name_a_socket_that_took_a_closed_ones_place() {
    block_on(async {
        let (_client, first) = connected_pair().await;
        let done = Rc::new(Cell::new(false));
        let waiter = task::Builder::new().name("waiter").spawn({
            let done = done.clone();
            async move {
                // Park on a read once, then drop the read and its socket in the same poll:
                // the task's record still says what this poll reported.
                let mut buf = [0; 1];
                let mut read = Box::pin(first.read(&mut buf));
                poll_fn(|cx| {
                    assert!(read.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
                drop(read);
                drop(first);
                poll_fn(|_| {
                    if done.get() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
            }
        });
        yield_now().await;
        // A new socket now takes the closed one's slot in the reactor.
        let _newcomer = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let table = task::dump();
        let row = table
            .tasks
            .iter()
            .find(|t| t.name.as_deref() == Some("waiter"));
        let waits = &row.unwrap().waiting_on;
        // The socket it waited on is closed: no socket may be named, least of all a new one
        // (the first edition named whichever socket had taken the slot).
        assert!(
            waits.iter().all(|w| !matches!(w, Wait::Readable(_))),
            "{waits:?}"
        );
        done.set(true);
        waiter.abort();
    });
}

#[test]
fn a_refused_nested_block_on_leaves_the_outer_trace_whole() {
    let dir = std::env::temp_dir().join(format!("stroll-nested-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.json");
    stroll::runtime::Builder::new()
        .trace(&path)
        .block_on(async {
            // Enough events that the trace's buffer has gone to the file already.
            for _ in 0..200 {
                spawn(async {}).await.unwrap();
            }
            let nested = panic::catch_unwind(|| {
                stroll::runtime::Builder::new()
                    .trace(&path)
                    .block_on(async {})
            });
            assert!(nested.is_err());
            spawn(async {}).await.unwrap();
        });
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains('\0'),
        "the trace was truncated under the outer runtime"
    );
    let spawns = text.matches(r#""name":"spawn""#).count();
    assert_eq!(spawns, 201, "the trace lost events");
    assert!(text.trim_end().ends_with(']'), "the trace was not closed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_runtimes_on_two_threads_trace_to_two_files() {
    let dir = std::env::temp_dir().join(format!("stroll-two-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.json");
    let both_running = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (path, both_running) = (path.clone(), both_running.clone());
            std::thread::spawn(move || {
                stroll::runtime::Builder::new()
                    .trace(&path)
                    .block_on(async move {
                        spawn(async {}).await.unwrap();
                        both_running.wait(); // Both runtimes are alive at once.
                    });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with('[') && text.trim_end().ends_with(']'),
            "{file:?}"
        );
        assert_eq!(text.matches(r#""name":"spawn""#).count(), 1, "{file:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
