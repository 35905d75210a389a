//! A datagram endpoint's socket and queues, below its handler: the addresses and options a
//! user names, one `recvfrom`, and the send path (at once while nothing waits, else a queue
//! bounded in bytes, flushed in order on writable edges). `endpoints.rs` drives it;
//! `datagram.rs` lends it to a handler through `DatagramCx`. Knows nothing of handlers or
//! of the reactor, so both can build on it.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mio::net::{UdpSocket, UnixDatagram};
use mio::{Interest, Registry};

use crate::stats::DatagramStats;

/// Where a datagram came from, or where one goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatagramAddr {
    /// A UDP peer (IPv4 or IPv6).
    Ip(SocketAddr),
    /// A Unix datagram socket bound to a path.
    Unix(PathBuf),
    /// A Unix datagram socket that bound no path: it can send, but cannot be answered.
    UnixUnnamed,
}

impl DatagramAddr {
    /// The IP address, if this is a UDP peer.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            DatagramAddr::Ip(addr) => Some(*addr),
            _ => None,
        }
    }
}

impl From<SocketAddr> for DatagramAddr {
    fn from(addr: SocketAddr) -> DatagramAddr {
        DatagramAddr::Ip(addr)
    }
}

impl From<&Path> for DatagramAddr {
    fn from(path: &Path) -> DatagramAddr {
        DatagramAddr::Unix(path.to_path_buf())
    }
}

impl fmt::Display for DatagramAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramAddr::Ip(addr) => write!(f, "{addr}"),
            DatagramAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            DatagramAddr::UnixUnnamed => f.write_str("unix:(unnamed)"),
        }
    }
}

/// How an endpoint receives and queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramOptions {
    /// The largest datagram delivered, in bytes. A longer one is dropped and counted in
    /// [`DatagramStats::truncated`](crate::DatagramStats::truncated), never delivered cut
    /// short. The default, 65,535, is more than any UDP datagram can carry (65,507 bytes
    /// over IPv4), so for UDP only a smaller setting drops anything.
    pub max_datagram: usize,
    /// Datagrams received per readiness event before the endpoint yields to the rest of the
    /// loop (the remainder is read later in the same turn, after the other events, and then
    /// in the next turn). Default 64.
    pub recv_budget: usize,
    /// Bytes the send queue may hold while the socket's buffer is full (each datagram counts
    /// its length plus 64 bytes of bookkeeping). A send that would pass it is dropped,
    /// counted in [`DatagramStats::dropped`](crate::DatagramStats::dropped), and refused
    /// with [`io::ErrorKind::WouldBlock`]. Default 1 MiB.
    pub send_queue: usize,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions { max_datagram: 65_535, recv_budget: 64, send_queue: 1 << 20 }
    }
}

impl DatagramOptions {
    /// The defaults with a different `max_datagram`.
    pub fn with_max_datagram(self, max_datagram: usize) -> Self {
        DatagramOptions { max_datagram, ..self }
    }
    /// The defaults with a different `send_queue`.
    pub fn with_send_queue(self, send_queue: usize) -> Self {
        DatagramOptions { send_queue, ..self }
    }
    /// The defaults with a different `recv_budget` (at least 1).
    pub fn with_recv_budget(self, recv_budget: usize) -> Self {
        DatagramOptions { recv_budget: recv_budget.max(1), ..self }
    }
}

/// Bookkeeping counted per queued datagram against `DatagramOptions::send_queue`, so a
/// flood of empty datagrams is bounded too.
pub(super) const QUEUE_OVERHEAD: usize = 64;

/// The socket, of either family.
pub(super) enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// An endpoint's socket and queues: everything but its handler.
pub(crate) struct EndpointIo {
    pub(super) socket: Socket,
    pub(super) options: DatagramOptions,
    /// One datagram long, plus one byte: a datagram that fills it was longer than the limit.
    pub(super) buffer: Vec<u8>,
    pub(super) queue: VecDeque<(Vec<u8>, Option<DatagramAddr>)>,
    pub(super) queued: usize,
    pub(super) watching_writable: bool,
    /// The token the socket is registered with (its source slot's).
    pub(super) token: mio::Token,
    /// The path a Unix endpoint bound, removed when it closes.
    pub(super) path: Option<std::path::PathBuf>,
    pub(super) close_requested: bool,
}

impl EndpointIo {
    pub(super) fn new(socket: Socket, options: DatagramOptions, token: mio::Token) -> EndpointIo {
        EndpointIo {
            socket,
            token,
            path: None,
            buffer: vec![0; options.max_datagram + 1],
            options,
            queue: VecDeque::new(),
            queued: 0,
            watching_writable: false,
            close_requested: false,
        }
    }

    pub(super) fn local_addr(&self) -> io::Result<DatagramAddr> {
        match &self.socket {
            Socket::Udp(s) => s.local_addr().map(DatagramAddr::Ip),
            Socket::Unix(s) => s.local_addr().map(|a| unix_addr(&a)),
        }
    }

    pub(super) fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// One `recvfrom` into `buffer` (the endpoint's own, lent out for the callback).
    pub(super) fn recv(&self, buffer: &mut [u8]) -> io::Result<(usize, DatagramAddr)> {
        match &self.socket {
            Socket::Udp(s) => s.recv_from(buffer).map(|(n, from)| (n, DatagramAddr::Ip(from))),
            Socket::Unix(s) => s.recv_from(buffer).map(|(n, from)| (n, unix_addr(&from))),
        }
    }

    /// One `sendto` (or `send`, connected: `to` is `None`).
    fn send_now(&self, datagram: &[u8], to: Option<&DatagramAddr>) -> io::Result<usize> {
        match (&self.socket, to) {
            (Socket::Udp(s), Some(DatagramAddr::Ip(addr))) => s.send_to(datagram, *addr),
            (Socket::Unix(s), Some(DatagramAddr::Unix(path))) => s.send_to(datagram, path),
            (Socket::Udp(s), None) => s.send(datagram),
            (Socket::Unix(s), None) => s.send(datagram),
            (_, Some(to)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send to {to} from this endpoint"),
            )),
        }
    }

    /// Sends now, or queues while earlier datagrams wait (order is kept) or the socket
    /// would block; refuses when the queue is full.
    pub(super) fn send(
        &mut self,
        datagram: &[u8],
        to: Option<&DatagramAddr>,
        stats: &mut DatagramStats,
        registry: &Registry,
    ) -> io::Result<()> {
        if self.queue.is_empty() {
            match self.send_now(datagram, to) {
                Ok(_) => {
                    stats.sent += 1;
                    stats.bytes_out += datagram.len() as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    stats.errors += 1;
                    return Err(e);
                }
            }
        }
        let cost = datagram.len() + QUEUE_OVERHEAD;
        if self.queued + cost > self.options.send_queue {
            stats.dropped += 1;
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "datagram send queue full: dropped"));
        }
        self.queue.push_back((datagram.to_vec(), to.cloned()));
        self.queued += cost;
        stats.queued_peak = stats.queued_peak.max(self.queued as u64);
        if !self.watching_writable {
            self.watching_writable = true;
            // The endpoint's own callback is running: its slot is lent out, so it is
            // reregistered here rather than through the source table.
            let token = self.token;
            let result = match &mut self.socket {
                Socket::Udp(s) => registry.reregister(s, token, Interest::READABLE | Interest::WRITABLE),
                Socket::Unix(s) => registry.reregister(s, token, Interest::READABLE | Interest::WRITABLE),
            };
            if let Err(e) = result {
                log::warn!("datagram endpoint: cannot watch for writability: {e}");
            }
        }
        Ok(())
    }

    /// Writes queued datagrams in order until the socket would block. Errors for one
    /// datagram drop that one and are returned for `on_error`; the rest go on.
    pub(super) fn flush(&mut self, stats: &mut DatagramStats, errors: &mut Vec<io::Error>) {
        while let Some((datagram, to)) = self.queue.front() {
            match self.send_now(datagram, to.as_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Ok(_) => {
                    stats.sent += 1;
                    stats.bytes_out += datagram.len() as u64;
                }
                Err(e) => {
                    stats.errors += 1;
                    errors.push(e);
                }
            }
            let cost = datagram.len() + QUEUE_OVERHEAD;
            self.queue.pop_front();
            self.queued -= cost;
        }
    }
}

pub(super) fn unix_addr(addr: &std::os::unix::net::SocketAddr) -> DatagramAddr {
    match addr.as_pathname() {
        Some(path) => DatagramAddr::Unix(path.to_path_buf()),
        None => DatagramAddr::UnixUnnamed,
    }
}
