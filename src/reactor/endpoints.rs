//! How the reactor drives a datagram endpoint: binding, the receive loop under its budget,
//! the bounded send queue, and closing. The handler's side is in `datagram.rs`.
//!
//! ```text
//!   bind_udp / bind_unix_datagram / add_udp_socket / connect_udp
//!       ──► EndpointEntry { handler, io } registered as a source (token::source(index))
//!   readable event ─► pump: recv_from × recv_budget ─► on_datagram ... budget spent? defer the rest
//!   writable event ─► flush the queue in order until the socket would block
//!   close / shutdown ─► on_close, deregister, drop (queued datagrams dropped)
//! ```
//!
//! An endpoint lives in the source table (`sources.rs`): the slot is taken out for the
//! length of a callback, so the callback can hold the reactor. Its `EndpointId` carries a
//! serial number besides the slot, so a timer or a call for an endpoint that has closed
//! never reaches one that reuses the slot.
//!
//! Edge-triggered: a readable edge is drained to `WouldBlock`, or the endpoint defers its
//! next pump (a `LoopCall`, run after the turn's events) and so is never stranded with
//! datagrams queued in the kernel and no edge to come. Writable interest is asked for the
//! first time a datagram is queued and kept (edges come only when the buffer drains).

use std::any::Any;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use mio::net::UdpSocket;
use mio::{Interest, Registry};

use super::datagram::{DatagramCx, Datagrams, EndpointId};
use super::datagram_io::{DatagramOptions, EndpointIo, Socket};
use super::sources::{SourceSlot, UserSource};
use super::{Reactor, Ready};
use crate::handler::Handler;
use crate::net;
use crate::token;

/// Serial numbers for endpoint ids: unique in the process, so an id never names a later
/// endpoint in the same slot.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// An endpoint in the source table: its handler and its socket.
struct EndpointEntry<D, H> {
    handler: D,
    io: EndpointIo,
    id: EndpointId,
    _reactor: PhantomData<fn(&mut H)>,
}

impl<D: Datagrams<H>, H: Handler> EndpointEntry<D, H> {
    /// Runs `f` with the handler and a context, then carries out a close it asked for.
    fn call<R>(
        &mut self,
        reactor: &mut Reactor<H>,
        f: impl FnOnce(&mut D, &mut DatagramCx<'_, D, H>) -> R,
    ) -> R {
        let mut cx = DatagramCx { id: self.id, io: &mut self.io, reactor, _handler: PhantomData };
        let result = f(&mut self.handler, &mut cx);
        if self.io.close_requested {
            self.finish(reactor);
        }
        result
    }

    /// `on_close`, then the slot is marked removed: `lend_source` deregisters and drops it.
    fn finish(&mut self, reactor: &mut Reactor<H>) {
        let mut cx = DatagramCx { id: self.id, io: &mut self.io, reactor, _handler: PhantomData };
        self.handler.on_close(&mut cx);
        if let Some(path) = self.io.path.take() {
            if let Err(e) = std::fs::remove_file(&path) {
                log::debug!("cannot remove {}: {e}", path.display());
            }
        }
        let stats = &mut reactor.shared.stats.datagrams;
        stats.endpoints -= 1;
        stats.dropped += self.io.queue.len() as u64;
        reactor.sources[self.id.index] = SourceSlot::Removed;
    }

    /// Receives up to the budget, each datagram to `on_datagram`; if the budget ran out
    /// before the socket was empty, the rest is read after this turn's events.
    fn pump(&mut self, reactor: &mut Reactor<H>) {
        let mut buffer = std::mem::take(&mut self.io.buffer);
        let limit = self.io.options.max_datagram;
        let mut drained = false;
        for _ in 0..self.io.options.recv_budget {
            match self.io.recv(&mut buffer) {
                Ok((n, _)) if n > limit => reactor.shared.stats.datagrams.truncated += 1,
                Ok((n, from)) => {
                    let stats = &mut reactor.shared.stats.datagrams;
                    stats.received += 1;
                    stats.bytes_in += n as u64;
                    let datagram = &buffer[..n];
                    // A datagram that makes the handler panic is dropped, not the endpoint:
                    // one bad packet must not take the service down for everyone.
                    let delivered = panic::catch_unwind(AssertUnwindSafe(|| {
                        self.call(reactor, |handler, cx| handler.on_datagram(datagram, &from, cx));
                    }));
                    if delivered.is_err() {
                        reactor.shared.stats.datagrams.panics += 1;
                        log::error!(
                            "{}: on_datagram panicked on a datagram from {from}; dropped it",
                            self.id
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    reactor.shared.stats.datagrams.errors += 1;
                    self.call(reactor, |handler, cx| handler.on_error(&e, cx));
                }
            }
            if self.io.close_requested {
                break;
            }
        }
        self.io.buffer = buffer;
        if !drained && !self.io.close_requested {
            let id = self.id;
            reactor.defer_call(move |reactor| {
                reactor.lend_source(id.index, Some(id.serial), |entry, reactor| entry.resume(reactor));
            });
        }
    }

    /// Writes the queue; each datagram `sendto` refused goes to `on_error`.
    fn flush(&mut self, reactor: &mut Reactor<H>) {
        let mut errors = Vec::new();
        self.io.flush(&mut reactor.shared.stats.datagrams, &mut errors);
        for error in errors {
            self.call(reactor, |handler, cx| handler.on_error(&error, cx));
        }
    }
}

impl<D: Datagrams<H>, H: Handler> UserSource<H> for EndpointEntry<D, H> {
    fn ready(&mut self, ready: Ready<'_>, reactor: &mut Reactor<H>) {
        if ready.is_writable() && !self.io.queue.is_empty() {
            self.flush(reactor);
        }
        if (ready.is_readable() || ready.is_error()) && !self.io.close_requested {
            self.pump(reactor);
        }
    }
    fn resume(&mut self, reactor: &mut Reactor<H>) {
        if !self.io.close_requested {
            self.pump(reactor);
        }
    }
    fn close(&mut self, reactor: &mut Reactor<H>) {
        if !self.io.close_requested {
            self.io.close_requested = true;
            self.finish(reactor);
        }
    }
    fn endpoint_serial(&self) -> Option<u64> {
        Some(self.id.serial)
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match &mut self.io.socket {
            Socket::Udp(s) => registry.deregister(s),
            Socket::Unix(s) => registry.deregister(s),
        }
    }
    fn reregister(&mut self, registry: &Registry, token: mio::Token, interest: Interest) -> io::Result<()> {
        match &mut self.io.socket {
            Socket::Udp(s) => registry.reregister(s, token, interest),
            Socket::Unix(s) => registry.reregister(s, token, interest),
        }
    }
}

impl<H: Handler> Reactor<H> {
    /// Serves UDP datagrams on `addr` (IPv4 or IPv6; port 0 picks one) with `handler`.
    /// Returns the endpoint's id and the address it is bound to.
    ///
    /// # Errors
    ///
    /// What `socket` or `bind` say, with the address in the message.
    pub fn bind_udp<D: Datagrams<H>>(
        &mut self,
        addr: SocketAddr,
        handler: D,
    ) -> io::Result<(EndpointId, SocketAddr)> {
        self.bind_udp_with(addr, DatagramOptions::default(), handler)
    }

    /// [`bind_udp`](Reactor::bind_udp) with options other than the defaults.
    ///
    /// # Errors
    ///
    /// As for `bind_udp`.
    pub fn bind_udp_with<D: Datagrams<H>>(
        &mut self,
        addr: SocketAddr,
        options: DatagramOptions,
        handler: D,
    ) -> io::Result<(EndpointId, SocketAddr)> {
        let socket = net::bind_udp(addr)?;
        let local = socket.local_addr()?;
        Ok((self.add_endpoint(Socket::Udp(socket), options, handler, None)?, local))
    }

    /// Serves a UDP socket made elsewhere (inherited, or bound with options of the caller's
    /// own); the reactor makes it non-blocking.
    ///
    /// # Errors
    ///
    /// What `fcntl` or the poll registration say.
    pub fn add_udp_socket<D: Datagrams<H>>(
        &mut self,
        socket: std::net::UdpSocket,
        options: DatagramOptions,
        handler: D,
    ) -> io::Result<EndpointId> {
        socket.set_nonblocking(true)?;
        self.add_endpoint(Socket::Udp(UdpSocket::from_std(socket)), options, handler, None)
    }

    /// A UDP endpoint connected to `peer`: it sends with [`DatagramCx::send`], receives only
    /// from `peer`, and learns of an ICMP refusal (`ConnectionRefused` in
    /// [`Datagrams::on_error`]). Bound to the unspecified address of `peer`'s family.
    ///
    /// # Errors
    ///
    /// What `bind` or `connect` say.
    pub fn connect_udp<D: Datagrams<H>>(&mut self, peer: SocketAddr, handler: D) -> io::Result<EndpointId> {
        let any: SocketAddr = match peer {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = net::bind_udp(any)?;
        socket.connect(peer)?;
        self.add_endpoint(Socket::Udp(socket), DatagramOptions::default(), handler, None)
    }

    /// Serves Unix datagrams at `path`. A stale socket file is taken over as for
    /// [`listen_unix`](Reactor::listen_unix); the file is removed when the endpoint closes.
    ///
    /// # Errors
    ///
    /// As for `listen_unix`.
    pub fn bind_unix_datagram<D: Datagrams<H>>(&mut self, path: &Path, handler: D) -> io::Result<EndpointId> {
        let socket = net::bind_unix_datagram(path)?;
        self.add_endpoint(Socket::Unix(socket), DatagramOptions::default(), handler, Some(path))
    }

    /// Registers an endpoint; `path` is the Unix path it bound, removed when it closes.
    fn add_endpoint<D: Datagrams<H>>(
        &mut self,
        mut socket: Socket,
        options: DatagramOptions,
        handler: D,
        path: Option<&Path>,
    ) -> io::Result<EndpointId> {
        let entry = self.sources.vacant_entry();
        let index = entry.key();
        let token = token::source(index);
        // Registered readable only; writable is asked for once something is queued. A
        // socket that already holds datagrams (adopted) reports readable at once.
        match &mut socket {
            Socket::Udp(s) => self.poll.registry().register(s, token, Interest::READABLE)?,
            Socket::Unix(s) => self.poll.registry().register(s, token, Interest::READABLE)?,
        }
        let id = EndpointId { index, serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed) };
        let mut io = EndpointIo::new(socket, options, token);
        io.path = path.map(Path::to_path_buf);
        entry.insert(SourceSlot::Idle(Box::new(EndpointEntry { handler, io, id, _reactor: PhantomData })));
        self.shared.stats.datagrams.endpoints += 1;
        Ok(id)
    }

    /// Runs `f` with the endpoint `id`'s handler (of type `D`) and a context for it: how
    /// messages reach an endpoint, from a connection's callback (through
    /// [`Cx::defer`](crate::Cx::defer)), a reactor timer, or another thread
    /// ([`Sender::call`](crate::Sender::call)). `None` if `id` is closed, is not a `D`, or
    /// is the endpoint whose callback is running now.
    pub fn with_endpoint<D: Datagrams<H>, R>(
        &mut self,
        id: EndpointId,
        f: impl FnOnce(&mut D, &mut DatagramCx<'_, D, H>) -> R,
    ) -> Option<R> {
        let mut result = None;
        self.lend_source(id.index, Some(id.serial), |entry, reactor| {
            if let Some(endpoint) = entry.as_any().downcast_mut::<EndpointEntry<D, H>>() {
                result = Some(endpoint.call(reactor, f));
            }
        });
        result
    }

    /// Closes endpoint `id`: [`Datagrams::on_close`] runs, queued datagrams are dropped, a
    /// Unix path is removed. `false` if it was not open.
    pub fn close_endpoint(&mut self, id: EndpointId) -> bool {
        self.lend_source(id.index, Some(id.serial), |entry, reactor| entry.close(reactor))
    }

    /// Closes every endpoint (the reactor is shutting down).
    pub(super) fn close_endpoints(&mut self) {
        let open: Vec<(usize, u64)> = self
            .sources
            .iter_mut()
            .filter_map(|(index, slot)| match slot {
                SourceSlot::Idle(entry) => entry.endpoint_serial().map(|serial| (index, serial)),
                _ => None,
            })
            .collect();
        for (index, serial) in open {
            self.lend_source(index, Some(serial), |entry, reactor| entry.close(reactor));
        }
    }
}
