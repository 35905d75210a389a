//! One connection type for every kind of byte stream the reactor serves: TCP and
//! Unix-domain, accepted, connected out, or adopted.
//!
//! ```text
//!   TcpListener / UnixListener ──accept──┐
//!   Reactor::connect / connect_unix ─────┼──► Stream::{Tcp, Unix} + PeerAddr ──► Core (conn.rs) ──► one I/O path
//!   Reactor::adopt (std or mio stream) ──┘
//! ```
//!
//! The reactor reads, writes, shuts down and registers a `Stream` without asking which kind
//! it is: the match happens here, once per system call (a compare and a branch the hot path
//! measured as free against the echo budget, BENCHMARKS.md). Both kinds are mio's, so both
//! write with `MSG_NOSIGNAL` / `SO_NOSIGPIPE`: a reset peer is `EPIPE`, never `SIGPIPE`.
//! This module does not open or tune sockets (`net.rs` does) and keeps no state.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

/// Where a connection's other end is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-domain peer: the socket path when it has one (the path a connection was made
    /// to, or a peer that bound one); accepted clients are usually unnamed.
    Unix(Option<PathBuf>),
}

impl PeerAddr {
    /// The TCP address, if this is a TCP peer.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Tcp(addr) => Some(*addr),
            PeerAddr::Unix(_) => None,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(addr) => write!(f, "{addr}"),
            PeerAddr::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> PeerAddr {
        PeerAddr::Tcp(addr)
    }
}

/// A non-blocking byte stream the reactor can serve.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream connection.
    Unix(UnixStream),
}

impl Stream {
    /// The peer's address as the kernel reports it (`NotConnected` while a connect is still
    /// in progress: how the reactor tells a finished connect from a spurious event).
    pub(crate) fn peer_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(PeerAddr::Tcp),
            Stream::Unix(s) => s.peer_addr().map(|a| PeerAddr::Unix(a.as_pathname().map(Into::into))),
        }
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }

    /// `shutdown(2)` one or both directions.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// Is input waiting in the socket (a TCP peek; `false` for Unix streams, which std cannot
    /// peek on stable)? Asked only when choosing a connection to reclaim: one that looks
    /// idle may have its first bytes waiting behind an event not yet dispatched.
    pub(crate) fn has_input(&self) -> bool {
        match self {
            Stream::Tcp(s) => matches!(s.peek(&mut [0; 1]), Ok(n) if n > 0),
            Stream::Unix(_) => false,
        }
    }

    /// `TCP_NODELAY` on TCP streams; nothing to do on Unix ones.
    pub(crate) fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(true),
            Stream::Unix(_) => Ok(()),
        }
    }
}

impl Read for &Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(stream: TcpStream) -> Stream {
        Stream::Tcp(stream)
    }
}

impl From<UnixStream> for Stream {
    fn from(stream: UnixStream) -> Stream {
        Stream::Unix(stream)
    }
}

impl From<std::net::TcpStream> for Stream {
    /// Takes a connected std stream; the reactor makes it non-blocking when it adopts it.
    fn from(stream: std::net::TcpStream) -> Stream {
        Stream::Tcp(TcpStream::from_std(stream))
    }
}

impl From<std::os::unix::net::UnixStream> for Stream {
    /// Takes a connected std stream; the reactor makes it non-blocking when it adopts it.
    fn from(stream: std::os::unix::net::UnixStream) -> Stream {
        Stream::Unix(UnixStream::from_std(stream))
    }
}

impl Stream {
    /// Makes the socket non-blocking (an adopted std stream may not be).
    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        use std::os::fd::AsFd;
        match self {
            Stream::Tcp(s) => crate::net::set_nonblocking(s.as_fd()),
            Stream::Unix(s) => crate::net::set_nonblocking(s.as_fd()),
        }
    }
}
