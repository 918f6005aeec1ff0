//! [`ToSocketAddrs`]: the address types that `bind`, `connect` and `send_to` accept.
//!
//! It mirrors `std::net::ToSocketAddrs` with one difference: std's version may block the thread
//! in a DNS lookup. Here an address that is already numeric is used at once, and a host name is
//! looked up on the `spawn_blocking` pool, so the loop never blocks on DNS.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::task::spawn_blocking;

/// Types that name one or more socket addresses. Implemented for the same types as
/// `std::net::ToSocketAddrs`; it cannot be implemented outside stroll.
pub trait ToSocketAddrs: sealed::Sealed {}

mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// The private half of `ToSocketAddrs`.
    pub trait Sealed {
        /// Numeric addresses, or the host name to look up.
        fn lookup(&self) -> Lookup;
    }

    /// What an address value needs before it can be used.
    pub enum Lookup {
        /// The addresses are known (or invalid) without DNS.
        Known(io::Result<Vec<SocketAddr>>),
        /// A `host:port` string that needs a DNS lookup.
        Host(String),
    }
}

use sealed::{Lookup, Sealed};

/// Turns `addr` into socket addresses, looking host names up off the loop thread.
pub(crate) async fn resolve(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addr.lookup() {
        Lookup::Known(addrs) => addrs?,
        Lookup::Host(host) => {
            spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&host).map(Iterator::collect)
            })
            .await??
        }
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// Tries `op` on each address in turn; returns the first success or the last error.
pub(crate) async fn try_each<T, F, Fut>(addrs: Vec<SocketAddr>, mut op: F) -> io::Result<T>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last_error = None;
    for addr in addrs {
        match op(addr).await {
            Ok(value) => return Ok(value),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.expect("resolve never returns an empty list"))
}

fn known(addr: impl Into<SocketAddr>) -> Lookup {
    Lookup::Known(Ok(vec![addr.into()]))
}

// The numeric address types need no lookup; one impl each, written once.
macro_rules! known_address {
    ($($ty:ty),*) => {$(
        impl ToSocketAddrs for $ty {}
        impl Sealed for $ty {
            fn lookup(&self) -> Lookup {
                known(*self)
            }
        }
    )*};
}

known_address!(SocketAddr, SocketAddrV4, SocketAddrV6);
known_address!((IpAddr, u16), (Ipv4Addr, u16), (Ipv6Addr, u16));

impl ToSocketAddrs for [SocketAddr] {}
impl Sealed for [SocketAddr] {
    fn lookup(&self) -> Lookup {
        Lookup::Known(Ok(self.to_vec()))
    }
}

impl ToSocketAddrs for str {}
impl Sealed for str {
    fn lookup(&self) -> Lookup {
        match self.parse::<SocketAddr>() {
            Ok(addr) => known(addr),
            Err(_) => Lookup::Host(self.to_owned()),
        }
    }
}

impl ToSocketAddrs for String {}
impl Sealed for String {
    fn lookup(&self) -> Lookup {
        self.as_str().lookup()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Sealed for (&str, u16) {
    fn lookup(&self) -> Lookup {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => known((ip, port)),
            Err(_) => Lookup::Host(format!("{host}:{port}")),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Sealed for (String, u16) {
    fn lookup(&self) -> Lookup {
        (self.0.as_str(), self.1).lookup()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: Sealed + ?Sized> Sealed for &T {
    fn lookup(&self) -> Lookup {
        (**self).lookup()
    }
}
