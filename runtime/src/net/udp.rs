//! UDP: [`UdpSocket`] sends and receives datagrams.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::ids::{Direction, Source, SourceKind};
use crate::net::addr::{resolve, try_each};
use crate::net::ToSocketAddrs;
use crate::reactor::IoSource;
use crate::runtime::current_reactor;

/// A UDP socket.
///
/// ```
/// # stroll::block_on(async {
/// use stroll::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").await?;
/// let b = UdpSocket::bind("127.0.0.1:0").await?;
/// a.send_to(b"ping", b.local_addr()?).await?;
/// let mut buf = [0; 16];
/// let (n, from) = b.recv_from(&mut buf).await?;
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub struct UdpSocket {
    io: IoSource<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (the first of its addresses that works).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addrs = resolve(&addr).await?;
        try_each(addrs, |addr| async move {
            let socket = mio::net::UdpSocket::bind(addr)?;
            let source = Source {
                kind: SourceKind::Udp,
                addr: socket.local_addr().ok(),
            };
            Ok(UdpSocket {
                io: IoSource::new(socket, source, current_reactor())?,
            })
        })
        .await
    }

    /// Sends one datagram to `target` (its first address); returns the bytes sent.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = resolve(&target).await?[0];
        self.io
            .op(Direction::Write, |cx| {
                self.io
                    .poll_io(cx, Direction::Write, |io| io.send_to(buf, target))
            })
            .await
    }

    /// Receives one datagram into `buf`; returns its length and sender. A datagram longer than
    /// `buf` is cut to fit.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .op(Direction::Read, |cx| {
                self.io.poll_io(cx, Direction::Read, |io| io.recv_from(buf))
            })
            .await
    }

    /// Sets the default destination for [`send`](UdpSocket::send) and the only source
    /// [`recv`](UdpSocket::recv) accepts datagrams from.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = resolve(&addr).await?;
        try_each(addrs, |addr| async move { self.io.get_ref().connect(addr) }).await
    }

    /// Sends one datagram to the connected address; returns the bytes sent.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .op(Direction::Write, |cx| {
                self.io.poll_io(cx, Direction::Write, |io| io.send(buf))
            })
            .await
    }

    /// Receives one datagram from the connected address into `buf`; returns its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .op(Direction::Read, |cx| {
                self.io.poll_io(cx, Direction::Read, |io| io.recv(buf))
            })
            .await
    }

    /// The address this socket is connected to.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The address this socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}
