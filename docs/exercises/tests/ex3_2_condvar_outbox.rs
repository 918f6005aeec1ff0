//! Exercise 3.2 ("The chat server, thread style"): a writer thread that sleeps on a condition
//! variable until its queue has lines, as `write_outbox` in the threads server does.
//!
//! `Outbox::push` and `Outbox::close` may be called from any thread; `write_outbox` runs on
//! the writer thread: it waits while the queue is empty and open, takes every queued line in
//! one go, writes them with the lock released, and shuts down the write side once the queue
//! is closed and empty.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Queue {
    lines: VecDeque<Vec<u8>>,
    closed: bool,
}

/// A client's outgoing lines and the condition variable its writer sleeps on.
#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Outbox {
    pub fn push(&self, line: &[u8]) {
        self.queue.lock().unwrap().lines.push_back(line.to_vec());
        // After the lock is released (the guard was a temporary): wake the writer.
        self.changed.notify_one();
    }

    pub fn close(&self) {
        self.queue.lock().unwrap().closed = true;
        self.changed.notify_one();
    }
}

/// The writer thread's body.
pub fn write_outbox(mut stream: &TcpStream, outbox: &Outbox) -> std::io::Result<()> {
    let mut batch = Vec::new();
    loop {
        {
            let mut queue = outbox.queue.lock().unwrap();
            // A loop, not an `if`: a condition variable may wake without a notify, and the
            // condition is checked under the lock, so a push cannot slip in between.
            while queue.lines.is_empty() && !queue.closed {
                queue = outbox.changed.wait(queue).unwrap();
            }
            if queue.lines.is_empty() {
                break; // closed, and everything written
            }
            for line in queue.lines.drain(..) {
                batch.extend_from_slice(&line);
            }
        } // the lock is released before the write, which may block
        stream.write_all(&batch)?;
        batch.clear();
    }
    stream.shutdown(Shutdown::Write)
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (server, client)
}

#[test]
fn lines_pushed_from_another_thread_arrive_in_order_then_end_of_file() {
    let (server, mut client) = pair();
    let outbox = Arc::new(Outbox::default());
    let writer = {
        let outbox = outbox.clone();
        std::thread::spawn(move || write_outbox(&server, &outbox))
    };
    let pusher = {
        let outbox = outbox.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                outbox.push(format!("line {i}\n").as_bytes());
            }
            outbox.close();
        })
    };
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap(); // returns at the writer's end of file
    pusher.join().unwrap();
    writer.join().unwrap().unwrap();
    let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_push_wakes_a_sleeping_writer_at_once() {
    let (server, mut client) = pair();
    let outbox = Arc::new(Outbox::default());
    let writer = {
        let outbox = outbox.clone();
        std::thread::spawn(move || write_outbox(&server, &outbox))
    };
    std::thread::sleep(Duration::from_millis(100)); // the writer is asleep on the condvar
    let pushed = Instant::now();
    outbox.push(b"hello\n");
    let mut line = [0u8; 6];
    client.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"hello\n");
    assert!(
        pushed.elapsed() < Duration::from_secs(1),
        "the writer slept on"
    );
    outbox.close();
    writer.join().unwrap().unwrap();
}
