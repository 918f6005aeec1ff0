//! never_pending: a task that never returns `Pending` hogs the loop as surely as a blocking call.
//!
//! Run it with `STROLL_DEBUG=1 cargo run -q -p book-listings --example never_pending`
//! (debug mode names the task that held the loop too long).
//!
//! A heartbeat task should tick every 5 ms; each scenario reports how late its worst tick was,
//! while another task does 200 ms of work:
//!
//! 1. a loop whose every `.await` completes at once (an `async fn` that never waits): the task
//!    never returns `Pending`, so the heartbeat waits the whole 200 ms;
//! 2. the same loop with `yield_now().await` every 1,000 items: the heartbeat stays on time;
//! 3. a task reading a socket that always has data (a thread floods it): every `read().await`
//!    completes at once too, but stroll's I/O budget sends the task to the back of the queue
//!    after 128 reads in one poll, so the heartbeat stays on time without any change to the code.
//!
//! What to watch for: the first heartbeat figure is about the length of the work; the others
//! are a millisecond or so. In scenario 3, the most reads in one poll is the budget, 128.

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use stroll::net::{TcpListener, TcpStream};
use stroll::task::Builder;
use stroll::yield_now;

/// How long each scenario's busy task works.
const WORK: Duration = Duration::from_millis(200);

// ANCHOR: never_waits
/// One item of work. An `async fn` with no `.await` inside: awaiting it never waits.
async fn next_item(i: u64) -> u64 {
    i.wrapping_mul(2_654_435_761) % 1_000
}

/// Works for `WORK`, awaiting every item; with `yield_every`, gives the loop back that often.
async fn crunch(yield_every: Option<u64>) -> u64 {
    let start = Instant::now();
    let mut sum = 0;
    let mut i = 0;
    while start.elapsed() < WORK {
        sum += next_item(i).await; // Ready at once: the task goes on, the loop waits.
        i += 1;
        if yield_every.is_some_and(|n| i % n == 0) {
            yield_now().await; // Pending once: everyone else gets a turn.
        }
    }
    sum
}
// ANCHOR_END: never_waits

// ANCHOR: read_flood
/// Reads a socket that always has data, for `WORK`; counts the reads in `reads`.
async fn drain(stream: TcpStream, reads: Rc<Cell<u64>>) {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    while start.elapsed() < WORK {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => reads.set(reads.get() + 1),
        }
    }
}
// ANCHOR_END: read_flood

/// Wraps a future and records how many times it was polled and the most `reads` that went up
/// during one poll.
struct Counted<F> {
    inner: Pin<Box<F>>,
    reads: Rc<Cell<u64>>,
    polls: Rc<Cell<u64>>,
    most_per_poll: Rc<Cell<u64>>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = self.reads.get();
        let poll = self.inner.as_mut().poll(cx);
        let during = self.reads.get() - before;
        self.polls.set(self.polls.get() + 1);
        self.most_per_poll.set(self.most_per_poll.get().max(during));
        poll
    }
}

/// Spawns a heartbeat that should tick every 5 ms; it keeps its worst lateness in `late`.
fn heartbeat(late: Rc<Cell<Duration>>) -> stroll::JoinHandle<()> {
    Builder::new().name("heartbeat").spawn(async move {
        let mut ticks = stroll::time::interval(Duration::from_millis(5));
        loop {
            let tick = ticks.tick().await;
            late.set(late.get().max(tick.elapsed()));
        }
    })
}

fn main() {
    stroll::block_on(async {
        let late = Rc::new(Cell::new(Duration::ZERO));
        let beating = heartbeat(late.clone());
        stroll::time::sleep(Duration::from_millis(20)).await; // Let it settle.
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;

        for (scenario, yield_every) in [(1, None), (2, Some(1_000))] {
            late.set(Duration::ZERO);
            let busy = Builder::new().name("crunch").spawn(crunch(yield_every));
            busy.await.unwrap();
            stroll::time::sleep(Duration::from_millis(10)).await;
            match yield_every {
                None => println!("1. a loop whose .await never waits, for 200 ms:"),
                Some(n) => {
                    println!("{scenario}. the same loop with yield_now().await every {n} items:")
                }
            }
            println!(
                "   the heartbeat's worst tick was {:.1} ms late",
                ms(late.get())
            );
        }

        // Scenario 3: a thread writes as fast as it can; a task reads.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flooding = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                let chunk = [b'x'; 16 * 1024];
                while !stop.load(Ordering::Relaxed) && stream.write_all(&chunk).is_ok() {}
            })
        };
        let (stream, _) = listener.accept().await.unwrap();
        late.set(Duration::ZERO);
        let (reads, polls, most) = (Rc::default(), Rc::default(), Rc::default());
        let counted = Counted {
            inner: Box::pin(drain(stream, Rc::clone(&reads))),
            reads: Rc::clone(&reads),
            polls: Rc::clone(&polls),
            most_per_poll: Rc::clone(&most),
        };
        Builder::new().name("drain").spawn(counted).await.unwrap();
        stop.store(true, Ordering::Relaxed);
        println!("3. a task reading a socket that always has data, for 200 ms:");
        println!(
            "   {} reads in {} polls, at most {} reads in one poll",
            reads.get(),
            polls.get(),
            most.get()
        );
        println!(
            "   the heartbeat's worst tick was {:.1} ms late",
            ms(late.get())
        );
        beating.abort();
        // The flooder stops at its next write: the socket was closed with the task.
        let _ = stroll::task::spawn_blocking(move || flooding.join()).await;
    });
}
