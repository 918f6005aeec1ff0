//! Sockets through the public API: TCP echo, EOF, refused connections, UDP, the futures-io
//! traits, and fairness under a flood. Everything runs over loopback and stops by itself.

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use stroll::net::{TcpListener, TcpStream, UdpSocket};
use stroll::time::{sleep, timeout};
use stroll::{block_on, spawn};

/// Generous bound so that a broken wake fails a test instead of hanging it.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Starts an echo server task on a fresh port; returns its address.
async fn start_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            drop(spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        stream.shutdown(Shutdown::Write).unwrap();
                        return;
                    }
                    stream.write_all(&buf[..n]).await.unwrap();
                }
            }));
        }
    }));
    addr
}

#[test]
fn one_mebibyte_echoes_over_loopback() {
    const LEN: usize = 1 << 20;
    let sent: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let expected = sent.clone();
    let received = block_on(async move {
        let addr = start_echo_server().await;
        let stream = Rc::new(TcpStream::connect(addr).await.unwrap());
        // Write and read at the same time, from two tasks sharing the stream: writing all of it
        // first would deadlock once both sides' buffers are full.
        let writer = {
            let stream = stream.clone();
            spawn(async move {
                stream.write_all(&sent).await.unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut received = Vec::with_capacity(LEN);
        let mut buf = [0; 8192];
        let read_all = async {
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
        };
        timeout(HANG_GUARD, read_all).await.unwrap();
        writer.await.unwrap();
        received
    });
    assert_eq!(received.len(), LEN);
    assert!(received == expected, "echoed bytes differ");
}

#[test]
fn read_returns_zero_at_end_of_file() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
        client.write_all(b"bye").await.unwrap();
        drop(client);
        let mut buf = [0; 16];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"bye");
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        assert_eq!(server.read(&mut buf).await.unwrap(), 0, "EOF stays EOF");
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    block_on(async {
        // Find a free port, then close it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn a_reset_connection_gives_an_error_not_a_hang() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A std client that sends a byte and closes its socket.
        let client = thread::spawn(move || {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.write_all(b"x").unwrap();
        });
        let (server, _) = listener.accept().await.unwrap();
        client.join().unwrap();
        let mut buf = [0; 1];
        assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        // The client's socket is gone: its kernel answers the server's first write with a reset,
        // and a later write fails.
        let outcome = timeout(HANG_GUARD, async {
            loop {
                if let Err(err) = server.write_all(&[0; 4096]).await {
                    return err.kind();
                }
                sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("writing to a reset connection must fail, not hang");
        assert!(
            matches!(outcome, ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{outcome:?}"
        );
    });
}

#[test]
fn a_stream_can_be_read_and_written_through_shared_references() {
    block_on(async {
        let addr = start_echo_server().await;
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        assert!(stream.nodelay().unwrap());
        let (reader, writer) = (&stream, &stream);
        writer.write_all(b"hello").await.unwrap();
        let mut buf = [0; 5];
        let mut got = 0;
        while got < 5 {
            got += reader.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"hello");
    });
}

#[test]
fn futures_io_traits_work_with_futures_util() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Server: futures_util::io::copy from the stream to itself, an echo in one call.
        let server = spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (mut reader, mut writer) = (&stream, &stream);
            futures_util::io::copy(&mut reader, &mut writer)
                .await
                .unwrap()
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"through futures-io").await.unwrap();
        client.close().await.unwrap(); // AsyncWrite::poll_close shuts down writing
        let mut echoed = String::new();
        client.read_to_string(&mut echoed).await.unwrap();
        assert_eq!(echoed, "through futures-io");
        assert_eq!(server.await.unwrap(), echoed.len() as u64);
    });
}

#[test]
fn udp_round_trip() {
    block_on(async {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        let echo = spawn(async move {
            let mut buf = [0; 64];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            server.send_to(&buf[..n], from).await.unwrap();
        });
        client.send_to(b"ping", server_addr).await.unwrap();
        let mut buf = [0; 64];
        let (n, from) = timeout(HANG_GUARD, client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from, server_addr);
        echo.await.unwrap();
    });
}

#[test]
fn connected_udp_sockets_send_and_recv() {
    block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"one").await.unwrap();
        let mut buf = [0; 8];
        let n = timeout(HANG_GUARD, b.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"one");
        b.send(b"two").await.unwrap();
        let n = timeout(HANG_GUARD, a.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"two");
    });
}

#[test]
fn host_names_are_resolved_off_the_loop() {
    block_on(async {
        let listener = TcpListener::bind(("localhost", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = TcpStream::connect(format!("localhost:{port}"))
            .await
            .unwrap();
        assert!(stream.peer_addr().unwrap().ip().is_loopback());
    });
}

#[test]
fn an_unresolvable_address_is_an_error() {
    block_on(async {
        let err = TcpStream::connect("not an address").await.unwrap_err();
        assert_ne!(err.kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn a_socket_used_after_its_runtime_ended_fails_clearly() {
    let listener = block_on(async { TcpListener::bind("127.0.0.1:0").await.unwrap() });
    let err = block_on(async { listener.accept().await.unwrap_err() });
    assert!(err.to_string().contains("shut down"), "{err}");
}

#[test]
fn a_flooding_socket_does_not_starve_a_timer() {
    // A std thread writes as fast as it can, for at most FLOOD_LIMIT. A task reads with a tiny
    // buffer, so every read is full and the socket never looks drained: without the I/O budget,
    // that task would never return Pending and the timer below would wait for the flood to end.
    const FLOOD_LIMIT: Duration = Duration::from_secs(30);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flood = stop.clone();
    let (timer_delay, read_while_waiting) = block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let flooder = thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let chunk = [7u8; 64 * 1024];
            let start = Instant::now();
            while !stop_flood.load(Ordering::Relaxed) && start.elapsed() < FLOOD_LIMIT {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let (stream, _) = listener.accept().await.unwrap();
        let bytes_read = Rc::new(std::cell::Cell::new(0u64));
        let counter = bytes_read.clone();
        let reader = spawn(async move {
            let mut buf = [0u8; 16];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                counter.set(counter.get() + n as u64);
            }
        });
        sleep(Duration::from_millis(20)).await; // let the flood build up
        let before = bytes_read.get();
        let start = Instant::now();
        sleep(Duration::from_millis(20)).await;
        let delay = start.elapsed();
        let read_while_waiting = bytes_read.get() - before;
        reader.abort(); // closes the stream, which ends the flooder's writes
        stop.store(true, Ordering::Relaxed);
        flooder.join().unwrap();
        (delay, read_while_waiting)
    });
    assert!(read_while_waiting > 0, "the reader should have been busy");
    assert!(
        timer_delay < FLOOD_LIMIT / 3,
        "a 20 ms sleep took {timer_delay:?} while a socket flooded the loop"
    );
}

#[test]
fn two_tasks_accepting_on_one_listener_both_get_a_connection() {
    block_on(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let acceptors: Vec<_> = (0..2)
            .map(|_| {
                let listener = listener.clone();
                spawn(async move { listener.accept().await.unwrap().1 })
            })
            .collect();
        stroll::yield_now().await; // both acceptors are now waiting on the listener
        let a = TcpStream::connect(addr).await.unwrap();
        let b = TcpStream::connect(addr).await.unwrap();
        let mut peers = Vec::new();
        for acceptor in acceptors {
            let peer = timeout(HANG_GUARD, acceptor).await;
            peers.push(peer.expect("an acceptor was never woken").unwrap());
        }
        peers.sort();
        let mut expected = vec![a.local_addr().unwrap(), b.local_addr().unwrap()];
        expected.sort();
        assert_eq!(peers, expected);
    });
}

#[test]
fn an_acceptor_that_gives_up_leaves_the_other_one_waiting() {
    // Three tasks wait on one listener (the reactor keeps a list of them); the second gives up
    // (its accept loses to a timeout). Its waker must leave the list, and only its own: the
    // first and third still get the next two connections, and the task table shows nobody
    // else waiting on the listener.
    block_on(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let acceptor = |patience: Duration| {
            let listener = listener.clone();
            spawn(async move { timeout(patience, listener.accept()).await.is_ok() })
        };
        let first = acceptor(HANG_GUARD);
        let quitter = acceptor(Duration::from_millis(20));
        let third = acceptor(HANG_GUARD);
        assert!(
            !quitter.await.unwrap(),
            "nobody connected, yet the quitter accepted"
        );
        let waiting_on_listener = stroll::task::dump()
            .tasks
            .iter()
            .filter(|task| {
                task.waiting_on
                    .iter()
                    .any(|w| w.to_string().contains("listener"))
            })
            .count();
        assert_eq!(waiting_on_listener, 2, "{}", stroll::task::dump());
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        for acceptor in [first, third] {
            let accepted = timeout(HANG_GUARD, acceptor).await;
            assert!(accepted.expect("an acceptor was never woken").unwrap());
        }
    });
}

#[test]
fn one_task_can_wait_on_more_sockets_than_its_io_budget() {
    // One poll that parks 300 reads: parking must not spend the per-poll I/O budget (128), or
    // the reads past it would never register and their data would never be read.
    const SOCKETS: usize = 300;
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..SOCKETS {
            clients.push(TcpStream::connect(addr).await.unwrap());
            servers.push(listener.accept().await.unwrap().0);
        }
        let last = SOCKETS - 1;
        let writer = spawn(async move {
            stroll::yield_now().await; // let the reader park on every socket first
            clients[last].write_all(b"!").await.unwrap();
            clients
        });
        // Poll all reads in one poll, until one of them has data.
        let mut buffers = vec![[0u8; 1]; SOCKETS];
        let first_ready = std::future::poll_fn(|cx| {
            for (i, (stream, buf)) in servers.iter().zip(buffers.iter_mut()).enumerate() {
                if let std::task::Poll::Ready(result) = stream.poll_read(cx, buf) {
                    return std::task::Poll::Ready((i, result.unwrap()));
                }
            }
            std::task::Poll::Pending
        });
        let (index, n) = timeout(HANG_GUARD, first_ready)
            .await
            .expect("the read past the budget was never woken");
        assert_eq!((index, n), (last, 1));
        drop(writer.await.unwrap());
    });
}

#[test]
fn a_task_that_keeps_yielding_does_not_starve_sockets() {
    // The loop skips the reactor while tasks are ready, but only for a bounded number of polls:
    // a task that yields forever must not keep a socket's data from being read.
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Rc::new(std::cell::Cell::new(false));
        let spinner = {
            let stop = stop.clone();
            spawn(async move {
                while !stop.get() {
                    stroll::yield_now().await;
                }
            })
        };
        let writer = thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.write_all(b"through").unwrap();
        });
        let read = timeout(HANG_GUARD, async {
            let (stream, _) = listener.accept().await.unwrap();
            let mut buf = [0; 16];
            stream.read(&mut buf).await.unwrap()
        });
        let n = read.await.expect("a spinning task starved the socket");
        assert!(n > 0);
        stop.set(true);
        spinner.await.unwrap();
        writer.join().unwrap();
    });
}
