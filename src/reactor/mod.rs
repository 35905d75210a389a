//! The reactor: one thread, one `mio::Poll`, a table of connections, and the loop that
//! drives them. One turn of the loop, step by step, is written once, in `turn.rs`.
//!
//! The folder, one concept per file (read them in this order):
//!
//! - `mod.rs` (this file): the `Reactor` value and its fields, `Turn`, the loop's `Lifecycle`.
//! - `api.rs`: the API a newcomer reads first (`new`, listening, `register`, `handle`,
//!   `stats`, `run`, `run_once` and its panic guard); declared first so the docs list it first.
//! - `turn.rs`: one turn, as a numbered list and in code — dispatch, deferred work, timers,
//!   mail — and the loop's own lifecycle (`Running` → `Draining` → `Stopped`).
//! - `conn_io.rs`: one connection's readable and writable paths, its callbacks, its close.
//!   The hot path (`read_input` → `deliver` → `Shared::settle`) lives here.
//! - `accept.rs`: listeners (TCP and Unix), accepting in batches, pausing at the cap or on
//!   descriptor exhaustion.
//! - `listeners.rs`: listeners' lifecycle (ids, pause, resume, remove, their descriptors)
//!   and the graceful drain.
//! - `open.rs`: every way a connection enters the table (accepted, connected, adopted) and
//!   the end of an outbound connect.
//! - `forward.rs`: a connection's input written straight to another one (`Cx::forward_to`):
//!   the zero-copy data path of a proxy, with backpressure across the pair.
//! - `mail.rs`: messages between connections, and `Sender`, the way in from other threads.
//! - `calls.rs`: work a callback hands to the reactor itself (`Cx::defer`).
//! - `timers.rs`: reactor-level timers, not tied to a connection.
//! - `sources.rs`: the embedder's own mio sources.
//! - `datagram_io.rs`: a datagram endpoint's socket and queues (`DatagramAddr`,
//!   `DatagramOptions`, the bounded send queue), below its handler.
//! - `datagram.rs`: datagram endpoints as a handler sees them (`Datagrams`, `DatagramCx`).
//! - `endpoints.rs`: how the reactor drives an endpoint: the receive loop under its budget,
//!   the bounded send queue; endpoints live in the source table.
//! - `handle.rs`: `Handle`, what other threads may ask of a running reactor.
//! - `ready.rs`: `Ready`, an event's readiness converted once at the edge.
//!
//! What a handler's callback may touch is not here but in `shared.rs` (`Shared`), so that
//! `handler.rs` needs nothing from this folder. Sockets are tuned in `net.rs`, read and
//! written in `wire.rs`; a connection's data lives in `conn.rs`, its state in `life.rs`.
//!
//! Sockets are registered edge-triggered, for reading (and for writing while an outbound
//! connect is in progress); writable events are asked for once, after the first write the
//! kernel does not take whole (`shared.rs`, `watch_writable`), and kept. The reactor
//! remembers what each event said (`READ_READY` and `WRITE_BLOCKED` in the connection's
//! `Flags`) and acts on it when the connection can. After every handler callback,
//! `Shared::settle` writes what the callback produced, applies the watermarks, and carries
//! out the shutdown or close the connection's `Life` says is waiting for the flush.

use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;

use crate::config::Config;
use crate::conn::Conn;
use crate::handler::Handler;
use crate::net::{IntoTcpListener, IntoUnixListener};
use crate::offload::Completion;
use crate::shared::{Done, Shared};
use crate::slots::Table;
use crate::stats::Stats;
use crate::stream::PeerAddr;
use crate::timer::TimerId;
use crate::token;

// `api` first: rustdoc lists a type's methods module by module, in the order declared, and
// a reader of `Reactor`'s page should meet `new`, `listen` and `run` before the rest.
mod accept;
mod api;
mod calls;
mod conn_io;
mod datagram;
mod datagram_io;
mod endpoints;
mod forward;
mod handle;
mod listeners;
mod mail;
mod open;
mod ready;
mod sources;
mod timers;
mod turn;

use accept::{ListenSocket, Listener};
pub use datagram::{DatagramCx, Datagrams, EndpointId, NoStreams};
pub use datagram_io::{DatagramAddr, DatagramOptions};
pub use handle::Handle;
use handle::Remote;
pub use listeners::ListenerId;
use mail::Inbox;
pub use mail::Sender;
pub use ready::Ready;
pub use sources::SourceId;
use sources::SourceSlot;
use timers::LoopTimer;

/// A staging buffer grown past this by one big callback is freed at the end of the turn.
const STAGING_KEEP_BYTES: usize = 256 * 1024;

/// What [`Reactor::run_once`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Turn {
    /// The reactor is still running.
    Running,
    /// Shutdown completed: every connection is closed. Further turns do nothing.
    Stopped,
}

/// The loop's own life, as `Life` (`life.rs`) is a connection's.
///
/// ```text
///  Running ──Handle::shutdown──► Draining { deadline } ──last connection closed──► Stopped
///                                   (listeners closed, output flushing;
///                                    at the deadline the rest are closed)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Accepting and serving.
    Running,
    /// Shutdown has begun: no listeners, no new jobs; connections flush and close. The
    /// timer closes whatever is left at `Config::shutdown_timeout`.
    Draining { deadline: TimerId },
    /// Every connection is closed and the offload pool joined; `run_once` does nothing.
    Stopped,
}

/// A single-threaded event loop serving connections with one [`Handler`] type.
///
/// # Examples
///
/// ```
/// use evloop::{Config, Cx, Handler, Input, Reactor};
/// use std::io::{Read, Write};
///
/// struct Echo;
/// impl Handler for Echo {
///     type Msg = ();
///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
///         cx.write(input.bytes());
///         input.consume_all();
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new(Config::default())?;
/// let (_id, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
/// let handle = reactor.handle();
/// let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
///     let mut stream = std::net::TcpStream::connect(addr)?;
///     stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
///     stream.write_all(b"hello")?;
///     let mut reply = [0; 5];
///     stream.read_exact(&mut reply)?;
///     handle.shutdown();
///     Ok(reply.to_vec())
/// });
/// reactor.run()?;
/// assert_eq!(client.join().unwrap()?, b"hello");
/// # Ok(())
/// # }
/// ```
///
/// # Turn order
///
/// Each [`run_once`](Reactor::run_once) polls (without blocking while work is pending),
/// then runs every event's callbacks, then deferred reads and accepts, then due timers,
/// then messages, and publishes the stats. `EINTR` from poll is an empty turn, never an
/// error.
pub struct Reactor<H: Handler = NoStreams> {
    poll: Poll,
    events: Events,
    conns: Table<Conn<H>>,
    listeners: Vec<Option<Listener<H>>>,
    sources: Slab<SourceSlot<H>>,
    /// Reactor-level timers' callbacks, by the key their `TimerOwner::Loop` carries.
    loop_timers: Slab<Option<(TimerId, LoopTimer<H>)>>,
    /// What other threads send (`Sender`).
    inbox: Arc<Inbox<H>>,
    shared: Shared<H, H::Msg>,
    /// The one read buffer: every connection reads here first.
    scratch: Vec<u8>,
    remote: Arc<Remote>,
    /// Offload results taken from the pool, kept to reuse the allocation.
    completions: Vec<Completion<Done<H::Msg>>>,
    lifecycle: Lifecycle,
    /// A shutdown came during a drain and closed what was left (done once).
    shutdown_escalated: bool,
    /// The reactor belongs to the thread that runs it; handlers need not be `Send`.
    _not_send: PhantomData<*const ()>,
}

impl<H: Handler> std::fmt::Debug for Reactor<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("conns", &self.conn_count())
            .field("listeners", &self.listeners.iter().flatten().count())
            .field("timers", &self.shared.timers.len())
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

#[cfg(test)]
mod tests;

/// The reactor's poll descriptor (epoll or kqueue), so the reactor can be nested in another
/// event loop (GTK's, another epoll, a `mio::Poll` of the host's): register it for
/// readability there, and when it is readable, or when [`Reactor::next_timeout`] has passed,
/// call `run_once(Some(Duration::ZERO))`. (`AsFd` would need `unsafe` here: mio's `Poll`
/// offers only the raw descriptor.)
///
/// # Examples
///
/// ```
/// use evloop::{Config, Cx, Handler, Input, Reactor};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// struct Quiet;
/// impl Handler for Quiet {
///     type Msg = ();
///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
///         input.consume_all();
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::<Quiet>::new(Config::default())?;
/// reactor.set_timer(Duration::from_millis(5), |r| r.handle().shutdown());
/// // The host's own loop: a mio::Poll watching the reactor's descriptor.
/// let mut host = mio::Poll::new()?;
/// let fd = reactor.as_raw_fd();
/// host.registry().register(&mut mio::unix::SourceFd(&fd), mio::Token(0), mio::Interest::READABLE)?;
/// let mut events = mio::Events::with_capacity(8);
/// while reactor.run_once(Some(Duration::ZERO))? == evloop::Turn::Running {
///     host.poll(&mut events, reactor.next_timeout())?;
/// }
/// # Ok(())
/// # }
/// ```
impl<H: Handler> std::os::fd::AsRawFd for Reactor<H> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.poll.as_raw_fd()
    }
}
