//! edge_trigger: what edge-triggered readiness means, by experiment. The book's chapter
//! "Non-blocking sockets and epoll" runs it.
//!
//! Run it with `cargo run -q -p book-listings --example edge_trigger -- one-byte` (read one
//! byte per readiness event), `-- drain` (read until `WouldBlock` on each event) or
//! `-- short-read` (read until a read returns fewer bytes than the buffer holds: stroll's
//! shortcut).
//!
//! What to watch for: mio registers sockets with `EPOLLET`, so an event says "something
//! arrived", once. With `one-byte`, the first event reads one byte of twelve and no second
//! event ever comes for the other eleven: the reader stalls with data waiting in the kernel.
//! When the client sends more, Linux reports a new event although the socket was never
//! drained (each arrival is an edge), and the reader gets one more byte. With `drain`, every
//! event empties the socket and nothing is left behind. With `short-read`, the same, in one
//! system call fewer whenever the last read came back short.

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

const CONN: Token = Token(0);
/// How long a wait for a further event may last before the reader calls itself stalled.
const PATIENCE: Duration = Duration::from_millis(300);

#[derive(Clone, Copy, PartialEq)]
enum Strategy {
    OneByte,
    Drain,
    ShortRead,
}

// ANCHOR: on_event
/// What the reader does with one readiness event; returns how many bytes it read and how
/// many `read` calls it made.
fn on_event(conn: &mut mio::net::TcpStream, strategy: Strategy) -> std::io::Result<(usize, u32)> {
    let (mut total, mut calls) = (0, 0);
    let mut buf = [0u8; 4];
    loop {
        let want = if strategy == Strategy::OneByte {
            1
        } else {
            buf.len()
        };
        calls += 1;
        match conn.read(&mut buf[..want]) {
            Ok(0) => break, // end of file
            Ok(n) => {
                total += n;
                match strategy {
                    // One read of one byte, then back to epoll_wait.
                    Strategy::OneByte => break,
                    // Keep going: only WouldBlock says "nothing more".
                    Strategy::Drain => {}
                    // A short read emptied the receive buffer: stop without asking again.
                    Strategy::ShortRead if n < want => break,
                    Strategy::ShortRead => {}
                }
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) => return Err(err),
        }
    }
    Ok((total, calls))
}
// ANCHOR_END: on_event

fn main() -> std::io::Result<()> {
    let strategy = match std::env::args().nth(1).as_deref() {
        Some("one-byte") => Strategy::OneByte,
        Some("drain") => Strategy::Drain,
        Some("short-read") => Strategy::ShortRead,
        _ => {
            eprintln!("usage: edge_trigger one-byte|drain|short-read");
            std::process::exit(2);
        }
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // The client sends one message each time the reader says `go`, then closes.
    let (go, go_rx) = mpsc::channel::<&'static [u8]>();
    let client = std::thread::spawn(move || -> std::io::Result<()> {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        for message in go_rx {
            stream.write_all(message)?;
        }
        Ok(())
    });
    let (conn, _) = listener.accept()?;
    conn.set_nonblocking(true)?;
    let mut conn = mio::net::TcpStream::from_std(conn);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut conn, CONN, Interest::READABLE)?;

    let mut events = Events::with_capacity(8);
    let (mut sent, mut received, mut count) = (0, 0, 0);
    for message in [&b"hello, edge\n"[..], &b"again\n"[..]] {
        go.send(message).expect("the client is running");
        sent += message.len();
        println!("client sends {} bytes ({sent} sent in all)", message.len());
        // ANCHOR: wait
        // The first wait after a send has no limit: the arrival is an edge, so an event comes.
        let mut patience = None;
        loop {
            poll.poll(&mut events, patience)?;
            patience = Some(PATIENCE); // after that, an event must come soon or never
            if events.is_empty() {
                println!(
                    "  no event for {PATIENCE:?}: {received} of {sent} bytes read, {} left in the kernel",
                    sent - received
                );
                break;
            }
            for _event in events.iter() {
                count += 1;
                let (n, calls) = on_event(&mut conn, strategy)?;
                received += n;
                println!("  event {count}: {calls} read call(s), {n} byte(s)");
            }
        }
        // ANCHOR_END: wait
    }
    drop(go);
    client.join().expect("the client thread")?;
    let verdict = if received < sent {
        "stalled: data is waiting and no event will come for it"
    } else {
        "all read"
    };
    println!("{verdict}");
    Ok(())
}
