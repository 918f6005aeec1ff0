//! Workspace-wide test: one thread, one runtime, 1,000 TCP connections open at once.
//!
//! Both ends live in the same runtime: 1,000 client tasks and the 1,000 server tasks that
//! serve them, all interleaved by one event loop. Each client sends a line and waits for it to
//! come back upper-cased while every other connection stays open.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use stroll::net::{TcpListener, TcpStream};
use stroll::time::timeout;
use stroll::{block_on, spawn};

const CONNECTIONS: usize = 1_000;
/// Connections opened before waiting for the server to accept them: the listener's backlog is
/// 128, and a SYN beyond a full backlog is retried only a second later.
const CONNECT_WAVE: usize = 100;

/// Serves one connection: echo each chunk upper-cased until end of file.
async fn serve(stream: TcpStream) {
    let mut buf = [0; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf[..n].make_ascii_uppercase();
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads until `expected.len()` bytes have arrived.
async fn read_exactly(stream: &TcpStream, len: usize) -> Vec<u8> {
    let mut got = vec![0; len];
    let mut filled = 0;
    while filled < len {
        let n = stream.read(&mut got[filled..]).await.unwrap();
        assert!(n > 0, "connection closed early");
        filled += n;
    }
    got
}

#[test]
fn a_thousand_concurrent_connections_on_one_thread() {
    let served = block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Rc::new(Cell::new(0usize));
        let counter = accepted.clone();
        let _acceptor = spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.set(counter.get() + 1);
                drop(spawn(serve(stream)));
            }
        });

        // Open every connection first, in waves, and keep them all open.
        let mut streams = Vec::with_capacity(CONNECTIONS);
        while streams.len() < CONNECTIONS {
            let wave: Vec<_> = (0..CONNECT_WAVE)
                .map(|_| spawn(TcpStream::connect(addr)))
                .collect();
            for connect in wave {
                streams.push(connect.await.unwrap().unwrap());
            }
        }

        // Then every client talks at once, each in its own task.
        let clients: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, stream)| {
                spawn(async move {
                    let line = format!("client {i}\n");
                    stream.write_all(line.as_bytes()).await.unwrap();
                    let echoed = read_exactly(&stream, line.len()).await;
                    assert_eq!(echoed, line.to_uppercase().into_bytes());
                    stream // keep the connection open until every client is done
                })
            })
            .collect();
        let all = async {
            let mut open = Vec::new();
            for client in clients {
                open.push(client.await.unwrap());
            }
            open.len()
        };
        let finished = timeout(Duration::from_secs(60), all).await.unwrap();
        assert_eq!(accepted.get(), CONNECTIONS);
        finished
    });
    assert_eq!(served, CONNECTIONS);
}
