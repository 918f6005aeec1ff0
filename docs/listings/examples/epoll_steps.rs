//! epoll_steps: the three epoll system calls, one step at a time, for `strace` to show. The
//! book's chapter "Non-blocking sockets and epoll" runs it.
//!
//! Run it with
//! `cargo build -q -p book-listings --example epoll_steps && strace -e trace=epoll_create1,epoll_ctl,epoll_wait target/debug/examples/epoll_steps`
//! (strace follows only the main thread, which makes every epoll call; a client thread
//! connects, sends a line and closes, each step only when the main thread says so).
//!
//! What to watch for: `Poll::new` is `epoll_create1`; each `register` is an
//! `epoll_ctl(EPOLL_CTL_ADD)` with `EPOLLET` among the flags (mio is edge-triggered) and the
//! token as the event's data; each `poll` is an `epoll_wait` that returns the ready sockets'
//! tokens; dropping a registered socket's registration is `epoll_ctl(EPOLL_CTL_DEL)`.

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(7);
const CONN: Token = Token(8);

/// What the main thread lets the client do next.
enum Step {
    Send,
    Close,
}

fn main() -> std::io::Result<()> {
    // ANCHOR: steps
    let mut poll = Poll::new()?; // epoll_create1
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    poll.registry() // epoll_ctl(ADD) for the listener, data = 7
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("-- registered the listener; a client connects");
    let client = spawn_client(listener.local_addr()?);
    let mut events = Events::with_capacity(8);
    poll.poll(&mut events, None)?; // epoll_wait: returns the listener's token
    let (mut conn, _) = listener.accept()?;
    poll.registry() // epoll_ctl(ADD) for the connection, data = 8
        .register(&mut conn, CONN, Interest::READABLE)?;
    println!("-- accepted and registered the connection; the client sends a line");
    client.send(Step::Send).unwrap();
    poll.poll(&mut events, None)?; // epoll_wait: returns the connection's token
    println!("-- read {} bytes; the client closes", drain(&mut conn)?);
    client.send(Step::Close).unwrap();
    poll.poll(&mut events, None)?; // epoll_wait: readable again, and "read closed" (EPOLLRDHUP)
    println!("-- read {} bytes: end of file", drain(&mut conn)?);
    poll.registry().deregister(&mut conn)?; // epoll_ctl(DEL)
                                            // ANCHOR_END: steps
    Ok(())
}

/// Reads until `WouldBlock` or end of file; returns how many bytes came.
fn drain(conn: &mut mio::net::TcpStream) -> std::io::Result<usize> {
    let mut buf = [0u8; 64];
    let mut total = 0;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(total),
            Err(err) => return Err(err),
        }
    }
}

/// A blocking client on its own thread: connects at once, then does each step when told.
fn spawn_client(addr: std::net::SocketAddr) -> mpsc::Sender<Step> {
    let (steps, steps_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        for step in steps_rx {
            match step {
                Step::Send => stream.write_all(b"hello\n").expect("write"),
                Step::Close => return,
            }
        }
    });
    steps
}
