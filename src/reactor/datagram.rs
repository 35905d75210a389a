//! Datagram endpoints, as a handler sees them: the [`Datagrams`] trait a UDP or Unix
//! datagram service implements, the [`DatagramCx`] its callbacks get, and the
//! [`EndpointId`] that names it. How the reactor drives an endpoint is in `endpoints.rs`.
//!
//! ```text
//!   readable ──► recv_from (up to the per-turn budget) ──► on_datagram(bytes, from, cx)
//!                      ▲ budget spent: the rest next turn        │
//!                      └──────────── (deferred) ◄────────────────┤
//!   cx.send_to(bytes, to) ──► sendto now ── would block ──► bounded queue ──(writable)──► sendto
//!                                              full? dropped, counted, Err to the caller
//! ```
//!
//! A datagram is a message, not a stream: each one arrives whole or not at all, in any order,
//! possibly never. So an endpoint has no `Life` (`life.rs`), no half-close, no input buffer
//! and no watermarks; it has a receive buffer one datagram long, and a send queue bounded in
//! bytes. Its callbacks hold the whole reactor (`DatagramCx::reactor`), as a source's do
//! (`sources.rs`): an endpoint is a kind of source, with the datagram loop written once.

use std::any::Any;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::datagram_io::{DatagramAddr, EndpointIo};
use super::Reactor;

use crate::handler::{Cx, Handler, Input};
use crate::offload::{run_catching, Cancel, JobError, OffloadError};
use crate::shared::Done;
use crate::timer::TimerId;
use crate::token::ConnId;

/// Names a datagram endpoint of a reactor for as long as it is open. An id of a closed
/// endpoint never names a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointId {
    pub(super) index: usize,
    pub(super) serial: u64,
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "endpoint {}.{}", self.index, self.serial)
    }
}

/// A datagram service on a reactor: UDP (IPv4, IPv6, connected or not) or Unix datagram.
///
/// `H` is the reactor's stream handler; a reactor that serves only datagrams uses the
/// default, [`NoStreams`](NoStreams), and needs no stream handler at all.
///
/// # Examples
///
/// A UDP echo:
///
/// ```
/// use evloop::{Config, DatagramAddr, DatagramCx, Datagrams, Reactor};
///
/// struct Echo;
/// impl Datagrams for Echo {
///     fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self>) {
///         let _ = cx.send_to(datagram, from); // a full queue drops it, as UDP may
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor: Reactor = Reactor::new(Config::default())?;
/// let (_id, addr) = reactor.bind_udp("127.0.0.1:0".parse().unwrap(), Echo)?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// client.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
/// client.send_to(b"ping", addr)?;
/// let mut reply = [0; 16];
/// while reactor.stats().datagrams.sent == 0 {
///     reactor.run_once(Some(std::time::Duration::from_millis(10)))?;
/// }
/// let (n, _) = client.recv_from(&mut reply)?;
/// assert_eq!(&reply[..n], b"ping");
/// # Ok(())
/// # }
/// ```
pub trait Datagrams<H: Handler = NoStreams>: Sized + 'static {
    /// A datagram arrived, whole, from `from`.
    fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self, H>);

    /// A timer set with [`DatagramCx::set_timer`] is due.
    fn on_timer(&mut self, _id: TimerId, _cx: &mut DatagramCx<'_, Self, H>) {}

    /// The socket reported an error: for a connected endpoint most often
    /// `ConnectionRefused` (an ICMP port-unreachable for something sent earlier), and for a
    /// queued datagram whatever `sendto` said. Counted in
    /// [`DatagramStats::errors`](crate::DatagramStats::errors); the endpoint keeps serving.
    /// The default logs it at debug level.
    fn on_error(&mut self, error: &io::Error, _cx: &mut DatagramCx<'_, Self, H>) {
        log::debug!("datagram endpoint: {error}");
    }

    /// The endpoint is closing ([`DatagramCx::close`], [`Reactor::close_endpoint`] or the
    /// reactor's shutdown). Queued datagrams not yet sent are dropped.
    fn on_close(&mut self, _cx: &mut DatagramCx<'_, Self, H>) {}
}

/// What a datagram callback may do: send, set timers, offload, close, and reach the whole
/// reactor.
pub struct DatagramCx<'a, D: Datagrams<H>, H: Handler = NoStreams> {
    pub(super) id: EndpointId,
    pub(super) io: &'a mut EndpointIo,
    pub(super) reactor: &'a mut Reactor<H>,
    pub(super) _handler: std::marker::PhantomData<fn(&mut D)>,
}

impl<D: Datagrams<H>, H: Handler> fmt::Debug for DatagramCx<'_, D, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramCx").field("id", &self.id).field("queued", &self.io.queued_bytes()).finish()
    }
}

impl<D: Datagrams<H>, H: Handler> DatagramCx<'_, D, H> {
    /// This endpoint's id.
    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// The loop's clock for this turn.
    pub fn now(&self) -> Instant {
        self.reactor.shared.now
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    ///
    /// Whatever `getsockname` returns.
    pub fn local_addr(&self) -> io::Result<DatagramAddr> {
        self.io.local_addr()
    }

    /// Sends one datagram to `to`: at once if the socket takes it, else into the send
    /// queue, written as the socket drains.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when the send queue is full (the datagram is dropped
    /// and counted), or what `sendto` said at once (`EMSGSIZE` for a datagram too long,
    /// `ConnectionRefused` on a connected endpoint whose peer refused an earlier one, ...).
    pub fn send_to(&mut self, datagram: &[u8], to: &DatagramAddr) -> io::Result<()> {
        let stats = &mut self.reactor.shared.stats.datagrams;
        self.io.send(datagram, Some(to), stats, self.reactor.poll.registry())
    }

    /// Sends one datagram to the peer a connected endpoint
    /// ([`Reactor::connect_udp`]) is connected to; see [`send_to`](DatagramCx::send_to).
    ///
    /// # Errors
    ///
    /// As for `send_to`; `NotConnected` on an endpoint that is not connected.
    pub fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        let stats = &mut self.reactor.shared.stats.datagrams;
        self.io.send(datagram, None, stats, self.reactor.poll.registry())
    }

    /// Bytes waiting in the send queue.
    pub fn queued(&self) -> usize {
        self.io.queued_bytes()
    }

    /// Calls [`Datagrams::on_timer`] once, `after` from now. Timers of a closed endpoint
    /// never fire.
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        let id = self.id;
        self.reactor.set_timer_with_id(after, move |reactor, timer| {
            reactor.with_endpoint(id, |endpoint: &mut D, cx| endpoint.on_timer(timer, cx));
        })
    }

    /// Runs `job` on the reactor's offload pool; `then` gets its result (or its panic) on
    /// the loop thread with this endpoint's handler, as [`Handler::on_done`] does for a
    /// connection. If the endpoint has closed meanwhile, `then` is dropped unrun.
    ///
    /// # Errors
    ///
    /// As for [`Cx::offload`]: the queue is full, or the reactor is shutting down.
    pub fn offload<R, J, T>(&mut self, job: J, then: T) -> Result<(), OffloadError>
    where
        R: Send + 'static,
        J: FnOnce() -> R + Send + 'static,
        T: FnOnce(&mut D, Result<R, JobError>, &mut DatagramCx<'_, D, H>) + Send + 'static,
    {
        let id = self.id;
        let job = move || {
            let result = run_catching(job);
            Done::Call(Box::new(move |reactor: &mut dyn Any| {
                if let Some(reactor) = reactor.downcast_mut::<Reactor<H>>() {
                    let delivered =
                        reactor.with_endpoint(id, move |endpoint: &mut D, cx| then(endpoint, result, cx));
                    if delivered.is_none() {
                        log::debug!("{id} closed before its job finished; result dropped");
                    }
                }
            }))
        };
        // Tagged with no connection: the result finds its endpoint by `id`, not by tag.
        self.reactor.shared.offload(ConnId::NONE, Cancel::new(), Box::new(job))
    }

    /// Cancels a timer; `false` if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.reactor.cancel_timer(id)
    }

    /// Closes the endpoint once this callback returns: [`Datagrams::on_close`] runs, the
    /// socket is closed, queued datagrams are dropped.
    pub fn close(&mut self) {
        self.io.close_requested = true;
    }

    /// The reactor itself: connect, send messages to connections, set reactor timers,
    /// bind more endpoints, or reach another endpoint ([`Reactor::with_endpoint`]; this
    /// one is busy in its own callback and is not found there).
    pub fn reactor(&mut self) -> &mut Reactor<H> {
        self.reactor
    }
}

/// The stream handler of a reactor that serves no streams, only datagram endpoints
/// ([`Reactor::bind_udp`](crate::Reactor::bind_udp)): it is the default type of
/// [`Reactor`](crate::Reactor), so `let reactor: Reactor = Reactor::new(config)?` needs no
/// handler of the caller's. No value of it can exist (an enum with no variants), so no
/// connection can be opened with it.
#[derive(Debug)]
pub enum NoStreams {}

impl Handler for NoStreams {
    type Msg = ();
    fn on_data(&mut self, _input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
        match *self {}
    }
}
