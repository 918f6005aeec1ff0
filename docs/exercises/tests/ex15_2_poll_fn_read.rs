//! Exercise 15.2 (chapter "Graduating to tokio"): `read_unless_closed` without
//! `select!`, as one `std::future::poll_fn`, the way stroll's is written.
//!
//! `Closer` stands in for the port's `TaskOutbox`: it keeps only what `read_unless_closed`
//! needs, a "closing" flag and the reader's waker, with the same `poll_closed`. The function
//! below is the one to put in `on_tokio.rs` in place of the `select!` (with `self` for
//! `closer`); then run `cargo test -p chat-demo --test tokio_port`.
//!
//! Why `Pin::new(&mut *stream)` is enough: `AsyncRead::poll_read` takes `self: Pin<&mut Self>`,
//! and `Pin::new` builds one from a plain `&mut` only for a type that is `Unpin`.
//! `OwnedReadHalf` is: it holds an `Arc` of the socket, and nothing in it refers to itself, so
//! moving it between polls is harmless and pinning it promises nothing. (The `select!`
//! version pinned the future of `read` instead, a future that borrows the stream.) Nothing is
//! lost between polls either: a `poll_read` that returns `Pending` has consumed no bytes.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};

/// The part of `TaskOutbox` the reader waits on.
#[derive(Default)]
pub struct Closer {
    closing: Cell<bool>,
    reader: Cell<Option<Waker>>,
}

impl Closer {
    /// Ready once the connection is closing; otherwise keeps the reader's waker.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.closing.get() {
            Poll::Ready(())
        } else {
            self.reader.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }

    /// What the room does when it ends the connection: mark it and wake the reader.
    pub fn close(&self) {
        self.closing.set(true);
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }
}

/// Reads from the client into `buf`, unless the connection closes first (`None`). The close
/// is checked first on every poll, as `biased` did in the `select!` version.
pub async fn read_unless_closed(
    closer: &Closer,
    stream: &mut OwnedReadHalf,
    buf: &mut [u8],
) -> Option<io::Result<usize>> {
    std::future::poll_fn(|cx| {
        if closer.poll_closed(cx).is_ready() {
            return Poll::Ready(None);
        }
        let mut read_buf = ReadBuf::new(buf);
        match Pin::new(&mut *stream).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(read_buf.filled().len()))),
            Poll::Ready(Err(err)) => Poll::Ready(Some(Err(err))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// `Pin::new` compiles only for `Unpin` types; this says so for `OwnedReadHalf`.
const _: fn() = || {
    fn unpin<T: Unpin>() {}
    unpin::<OwnedReadHalf>();
};

/// Runs `test` on a single-threaded tokio runtime, with a connected pair: the server side's
/// read half (its write half is kept alive alongside) and the client's stream. At most 5 s.
fn with_pair<F, Fut>(test: F)
where
    F: FnOnce(OwnedReadHalf, TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (server, _) = accepted.unwrap();
        let (reader, _writer) = server.into_split();
        tokio::time::timeout(Duration::from_secs(5), test(reader, client.unwrap()))
            .await
            .expect("the test took more than 5 s");
    });
}

#[test]
fn reads_what_the_client_sends() {
    with_pair(|mut reader, mut client| async move {
        let closer = Closer::default();
        client.write_all(b"hello\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = read_unless_closed(&closer, &mut reader, &mut buf).await;
        let n = n.expect("not closed").unwrap();
        assert_eq!(&buf[..n], b"hello\n");
    });
}

#[test]
fn a_close_ends_a_read_that_waits() {
    with_pair(|mut reader, client| async move {
        // Keep the client connected (and silent) for the whole test.
        let _client = client;
        let closer = Closer::default();
        let mut buf = [0u8; 64];
        // The client sends nothing: the read waits until the close 50 ms later wakes it.
        let close_later = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            closer.close();
        };
        let ((), read) = tokio::join!(
            close_later,
            read_unless_closed(&closer, &mut reader, &mut buf)
        );
        assert!(read.is_none(), "the close should win: {read:?}");
    });
}

#[test]
fn the_close_comes_first_even_with_data_waiting() {
    with_pair(|mut reader, mut client| async move {
        let closer = Closer::default();
        client.write_all(b"too late\n").await.unwrap();
        // Let the bytes arrive, then close before reading.
        tokio::time::sleep(Duration::from_millis(20)).await;
        closer.close();
        let mut buf = [0u8; 64];
        let read = read_unless_closed(&closer, &mut reader, &mut buf).await;
        assert!(read.is_none(), "{read:?}");
        // Nothing was consumed: a plain read still finds the line.
        let n = read_unless_closed(&Closer::default(), &mut reader, &mut buf)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"too late\n");
    });
}

#[test]
fn end_of_file_reads_zero() {
    with_pair(|mut reader, client| async move {
        let closer = Closer::default();
        drop(client);
        let mut buf = [0u8; 64];
        let read = read_unless_closed(&closer, &mut reader, &mut buf).await;
        assert_eq!(read.map(|r| r.unwrap()), Some(0));
    });
}
