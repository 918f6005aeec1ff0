//! Exercise 7.1 (chapter "async fn writes that enum for you"): a read loop with a 4 KiB buffer
//! whose future is still small, because the buffer lives on the heap.

use std::io::{self, Write};
use std::thread;

use stroll::net::{TcpListener, TcpStream};

/// Counts the bytes until end of file, with the buffer inside the future.
async fn count_bytes_inline(stream: &TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// The same, with the buffer on the heap: the future keeps only the `Vec`'s three words.
async fn count_bytes_boxed(stream: &TcpStream) -> io::Result<usize> {
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// Sends `len` bytes to the server side, in pieces, then closes; returns what each counter said.
fn count_with_both(len: usize) -> (usize, usize) {
    stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut counts = Vec::new();
        for _ in 0..2 {
            let peer = thread::spawn(move || {
                let mut socket = std::net::TcpStream::connect(addr).unwrap();
                let chunk = vec![b'x'; 1000];
                let mut left = len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    socket.write_all(&chunk[..n]).unwrap();
                    left -= n;
                }
            });
            let (stream, _) = listener.accept().await.unwrap();
            let count = if counts.is_empty() {
                count_bytes_inline(&stream).await
            } else {
                count_bytes_boxed(&stream).await
            };
            counts.push(count.unwrap());
            drop(peer);
        }
        (counts[0], counts[1])
    })
}

#[test]
fn both_count_the_same() {
    assert_eq!(count_with_both(100_000), (100_000, 100_000));
}

#[test]
fn only_the_inline_buffer_makes_the_future_big() {
    stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let inline = std::mem::size_of_val(&count_bytes_inline(&stream));
        let boxed = std::mem::size_of_val(&count_bytes_boxed(&stream));
        assert!(inline > 4096, "inline: {inline}");
        assert!(boxed < 256, "boxed: {boxed}");
    });
}
