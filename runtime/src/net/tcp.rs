//! TCP: [`TcpListener`] accepts connections, [`TcpStream`] carries bytes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::ids::{Direction, Source, SourceKind};
use crate::net::addr::{resolve, try_each};
use crate::net::ToSocketAddrs;
use crate::reactor::IoSource;
use crate::runtime::current_reactor;

/// A TCP socket that listens for connections.
///
/// ```no_run
/// # stroll::block_on(async {
/// let listener = stroll::net::TcpListener::bind("127.0.0.1:7878").await?;
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     stroll::spawn(async move {
///         let _ = stream.write_all(format!("hello, {peer}\n").as_bytes()).await;
///     });
/// }
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub struct TcpListener {
    io: IoSource<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works) and starts listening, with
    /// `SO_REUSEADDR` set and a backlog of 128 pending connections.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = resolve(&addr).await?;
        try_each(addrs, |addr| async move {
            TcpListener::from_mio(mio::net::TcpListener::bind(addr)?)
        })
        .await
    }

    /// Wraps a listener made with the standard library (or `socket2`, to choose the backlog).
    /// It is switched to non-blocking mode here.
    ///
    /// # Panics
    /// Outside [`crate::block_on`].
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::from_mio(mio::net::TcpListener::from_std(listener))
    }

    fn from_mio(listener: mio::net::TcpListener) -> io::Result<TcpListener> {
        let source = Source {
            kind: SourceKind::TcpListener,
            addr: listener.local_addr().ok(),
        };
        Ok(TcpListener {
            io: IoSource::new(listener, source, current_reactor())?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// Errors from `accept(2)` are returned as they are. Note `EMFILE` ("too many open files"):
    /// the listener stays readable while descriptors are exhausted, so a loop that retries at
    /// once spins; back off (sleep) before accepting again.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.io.op(Direction::Read, |cx| self.poll_accept(cx)).await
    }

    /// The polling form of [`accept`](TcpListener::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, peer) = match self.io.poll_io(cx, Direction::Read, |io| io.accept()) {
            Poll::Ready(Ok(accepted)) => accepted,
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(TcpStream::from_mio(stream, Some(peer)).map(|stream| (stream, peer)))
    }

    /// The address this listener is bound to (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A TCP connection.
///
/// Its async methods take `&self`, so a reader task and a writer task can share it through an
/// `Rc<TcpStream>`. It also implements `futures_io::AsyncRead` and `AsyncWrite` (for
/// `TcpStream` and `&TcpStream`), so the ecosystem's runtime-agnostic I/O helpers work on it.
pub struct TcpStream {
    io: IoSource<mio::net::TcpStream>,
}

impl TcpStream {
    /// Opens a connection to `addr`, trying each of its addresses in turn.
    ///
    /// A refused connection gives an error of kind `ConnectionRefused`.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = resolve(&addr).await?;
        try_each(addrs, connect_one).await
    }

    /// Wraps a connected stream made with the standard library; it is switched to non-blocking
    /// mode here.
    ///
    /// # Panics
    /// Outside [`crate::block_on`].
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        let peer = stream.peer_addr().ok();
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream), peer)
    }

    /// Registers a mio stream; `peer` names it in the task table and traces.
    fn from_mio(stream: mio::net::TcpStream, peer: Option<SocketAddr>) -> io::Result<TcpStream> {
        let source = Source {
            kind: SourceKind::Tcp,
            addr: peer,
        };
        Ok(TcpStream {
            io: IoSource::new(stream, source, current_reactor())?,
        })
    }

    /// Reads some bytes into `buf` and returns how many; `Ok(0)` means the peer closed its
    /// side (end of file), or `buf` is empty.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .op(Direction::Read, |cx| self.poll_read(cx, buf))
            .await
    }

    /// Writes some bytes from `buf` and returns how many were accepted by the kernel.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .op(Direction::Write, |cx| self.poll_write(cx, buf))
            .await
    }

    /// Writes all of `buf`, waiting for room in the kernel's buffer as often as needed.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    // ANCHOR: poll_read
    /// The polling form of [`read`](TcpStream::read).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let result = self.io.poll_io(cx, Direction::Read, |mut io| io.read(buf));
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 && n < buf.len() {
                self.io.short_transfer(Direction::Read);
            }
        }
        result
    }
    // ANCHOR_END: poll_read

    /// The polling form of [`write`](TcpStream::write).
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let result = self
            .io
            .poll_io(cx, Direction::Write, |mut io| io.write(buf));
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 && n < buf.len() {
                self.io.short_transfer(Direction::Write);
            }
        }
        result
    }

    /// Shuts down the reading side, the writing side, or both. Shutting down writing sends the
    /// peer an end of file once the queued bytes are sent.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The address of this end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY`: send small writes at once instead of waiting to batch them.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }
}

/// Connects to one address: start a non-blocking connect, wait until the socket is writable,
/// then ask the kernel how it went (the steps mio's `TcpStream::connect` documents).
async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?, Some(addr))?;
    stream
        .io
        .op(Direction::Write, |cx| {
            stream.io.poll_io(cx, Direction::Write, |io| {
                if let Some(err) = io.take_error()? {
                    return Err(err);
                }
                match io.peer_addr() {
                    Ok(_) => Ok(()),
                    // Still connecting: treat it like WouldBlock and wait for the next event.
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(err) => Err(err),
                }
            })
        })
        .await?;
    Ok(stream)
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl futures_io::AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_write(self.get_mut(), cx, buf)
    }

    /// Bytes go to the kernel on each write; there is nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts down the writing side.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_close(cx)
    }
}
