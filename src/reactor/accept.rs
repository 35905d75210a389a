//! Listeners: accepting new connections in bounded batches, pausing when the reactor is full
//! or out of descriptors, and opening each accepted socket as a connection.
//!
//! ```text
//!   listener readable ──► accept() × up to accept_batch ──► open: register, factory(peer),
//!        ▲                    │                                     idle timer, on_open
//!        │                    ├─ at max_conns ──► Pause::AtCapacity ── a connection closes ──┐
//!        │                    ├─ EMFILE/ENFILE/ENOBUFS/ENOMEM ──► Pause::Backoff ── timer ───┤
//!        │                    └─ batch spent ──► Deferred::Accept (next turn)                 │
//!        └────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Edge-triggered: a listener's event is not repeated while clients wait in the backlog, so
//! every way out of the accept loop but `WouldBlock` must arrange its own way back in (the
//! three arrows above). This module does not tune sockets (`net.rs` does) or run the
//! connection afterwards (`conn_io.rs` does).

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};

use super::{Lifecycle, Reactor};
use crate::flags::Flags;
use crate::handler::Handler;
use crate::shared::{Deferred, Opening, Origin, TimerOwner};
use crate::stats::Reason;
use crate::stream::{PeerAddr, Stream};
use crate::timer::deadline_after;
use crate::token;

/// A listening socket of either kind.
pub(super) enum ListenSocket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ListenSocket {
    /// Accepts one connection, as a `Stream` and the peer's address.
    fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            ListenSocket::Tcp(listener) => {
                listener.accept().map(|(stream, peer)| (Stream::Tcp(stream), PeerAddr::Tcp(peer)))
            }
            ListenSocket::Unix(listener) => listener.accept().map(|(stream, peer)| {
                (Stream::Unix(stream), PeerAddr::Unix(peer.as_pathname().map(Into::into)))
            }),
        }
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(listener) => listener.register(registry, token, Interest::READABLE),
            ListenSocket::Unix(listener) => listener.register(registry, token, Interest::READABLE),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(listener) => listener.deregister(registry),
            ListenSocket::Unix(listener) => listener.deregister(registry),
        }
    }
}

/// A listening socket and the factory that makes a handler for each connection it accepts.
pub(super) struct Listener<H> {
    pub(super) socket: ListenSocket,
    /// Paused by request (`Reactor::pause_listener`): accepts nothing until resumed. Apart
    /// from `paused`, which the reactor sets and clears on its own.
    pub(super) held: bool,
    factory: Box<dyn FnMut(PeerAddr) -> H>,
    /// Why the listener is not accepting, if it is not.
    paused: Option<Pause>,
    /// When descriptor exhaustion was last logged (the warning is rate-limited).
    last_warning: Option<Instant>,
    /// The sockets it accepts start with `TCP_NODELAY` (set once on the listener, passed on
    /// by the kernel), so `install` sets nothing on them.
    nodelay_inherited: bool,
}

/// How long a connection must have sent nothing since it was accepted before, at the
/// connection cap, it may be closed to admit a new client. Long enough for an honest client
/// to send its first request; short enough that connections opened and left silent (an
/// idle-fill attack) hold new clients off for about this long at most.
pub(super) const SILENT_RECLAIM_AFTER: Duration = Duration::from_secs(1);

/// What a full reactor can do for a waiting client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reclaim {
    /// Close this idle connection to make room.
    Now(usize),
    /// Only connections too new to judge are reusable: try again next turn.
    NextTurn,
    /// Only silent connections not yet silent long enough: try again then.
    At(Instant),
    /// Nothing can be reclaimed: pause until a connection closes.
    Nothing,
}

/// Why a listener stopped accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    /// At `max_conns`: resume when a connection closes.
    AtCapacity,
    /// `accept` ran out of descriptors or memory: resume from a timer.
    Backoff,
}

impl<H: Handler> Reactor<H> {
    /// Registers a listening socket; returns its index in the listener table.
    pub(super) fn add_listen_socket(
        &mut self,
        mut socket: ListenSocket,
        factory: Box<dyn FnMut(PeerAddr) -> H>,
    ) -> io::Result<usize> {
        let index = self.listeners.len();
        let nodelay_inherited = match &socket {
            // One `setsockopt` here instead of one per accepted connection, where the kernel
            // passes the option on; if it fails, each connection is set on its own.
            ListenSocket::Tcp(listener) if self.shared.config.nodelay => {
                crate::net::set_listener_nodelay(listener).unwrap_or_else(|e| {
                    log::debug!("listener {index}: TCP_NODELAY failed ({e}); setting it per connection");
                    false
                })
            }
            _ => false,
        };
        socket.register(self.poll.registry(), token::listener(index))?;
        self.listeners.push(Some(Listener {
            socket,
            held: false,
            factory,
            paused: None,
            last_warning: None,
            nodelay_inherited,
        }));
        Ok(index)
    }

    /// Accepts up to a batch of connections from a listener.
    pub(super) fn accept(&mut self, index: usize) {
        let batch = self.shared.config.accept_batch;
        for _ in 0..batch {
            // Full: a client may still be admitted if an idle connection can make room.
            let full = self.shared.slots.len() >= self.shared.config.max_conns;
            let reclaim = if full { self.reclaimable() } else { Reclaim::Nothing };
            let Some(Some(listener)) = self.listeners.get_mut(index) else { return };
            if listener.paused.is_some() || listener.held {
                return;
            }
            if full && reclaim == Reclaim::NextTurn {
                // Reusable connections opened this very turn: too new to judge (their first
                // bytes may be waiting unread). Look again next turn rather than pause.
                self.shared.deferred.push_back(Deferred::Accept(index));
                return;
            }
            if let (true, Reclaim::At(when)) = (full, reclaim) {
                // Silent connections become reclaimable at `when`: come back then (the
                // backlog holds the new client meanwhile), so silent connections hold new
                // clients off for about `SILENT_RECLAIM_AFTER` at most.
                listener.paused = Some(Pause::Backoff);
                self.shared.stats.accept_pauses += 1;
                self.shared.timers.insert(when, TimerOwner::AcceptRetry(index));
                return;
            }
            if full && reclaim == Reclaim::Nothing {
                // New clients wait in the kernel's backlog until a connection closes
                // (`resume_at_capacity`). Edge-triggered: no event will repeat.
                listener.paused = Some(Pause::AtCapacity);
                self.shared.stats.accept_pauses += 1;
                log::debug!("listener {index}: at max_conns ({}), pausing accept", self.shared.slots.len());
                return;
            }
            match listener.socket.accept() {
                Ok((stream, peer)) => {
                    // Only now, with a client in hand, is the idle connection closed.
                    if let Reclaim::Now(slot) = reclaim {
                        log::debug!(
                            "conn slot={slot} peer={} reclaimed for a new client",
                            self.conns[slot].core.peer
                        );
                        self.close_now(slot, Reason::Reclaimed);
                    }
                    self.open_accepted(index, stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if crate::net::is_resource_exhaustion(&e) => {
                    self.shared.stats.accept_errors += 1;
                    self.shared.stats.accept_pauses += 1;
                    let now = self.shared.now;
                    let quiet =
                        listener.last_warning.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1));
                    if !quiet {
                        log::warn!(
                            "listener {index}: accept failed ({e}); retrying in {:?}",
                            self.shared.config.accept_backoff
                        );
                        listener.last_warning = Some(now);
                    }
                    listener.paused = Some(Pause::Backoff);
                    let deadline = deadline_after(now, self.shared.config.accept_backoff);
                    self.shared.timers.insert(deadline, TimerOwner::AcceptRetry(index));
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and friends concern one would-be connection only.
                    self.shared.stats.accept_errors += 1;
                    log::debug!("listener {index}: accept failed: {e}");
                }
            }
        }
        // The batch is spent and more may be waiting: come back after serving the others.
        self.shared.deferred.push_back(Deferred::Accept(index));
    }

    /// Which connection to close when full and a client waits, if any may be: one its handler
    /// marked reusable (between requests: an HTTP keep-alive connection, safe for its client
    /// to retry), or one silent since it was accepted for `SILENT_RECLAIM_AFTER` (it never sent
    /// a byte). Never a session that has talked: a client of a stream protocol is entitled to
    /// be quiet between requests, and reclaiming it would let anyone disconnect every quiet
    /// client by opening connections (nginx reclaims only keep-alive connections; redis
    /// refuses new clients instead). Among candidates, the one quiet longest; only those
    /// quiet since before this turn (one opened this turn is judged next turn) and with
    /// nothing waiting in the socket (a peek: its first bytes may sit behind an event not yet
    /// dispatched; regression: `http_hardening::idle_and_slow_clients_give_their_slots_back`
    /// under load). A scan of the table, only when full: the common accept never gets here.
    fn reclaimable(&self) -> Reclaim {
        let now = self.shared.now;
        let mut later = false;
        // The earliest moment a silent connection too young today becomes a candidate.
        let mut soonest: Option<Instant> = None;
        let mut candidates: Vec<(Instant, usize)> = Vec::new();
        for (slot, conn) in self.conns.iter() {
            let core = &conn.core;
            let quiet = !core.flags.has(Flags::READ_READY)
                && core.is_open()
                && core.pending_out() == 0
                && conn.input.is_empty();
            if !quiet {
                continue;
            }
            if core.flags.has(Flags::REUSABLE) {
                if core.last_active >= now {
                    later = true;
                } else {
                    candidates.push((core.last_active, slot));
                }
            } else if !core.flags.has(Flags::TALKED) {
                let ripe = core.opened_at + SILENT_RECLAIM_AFTER;
                if ripe <= now {
                    candidates.push((core.opened_at, slot));
                } else {
                    soonest = Some(soonest.map_or(ripe, |t| t.min(ripe)));
                }
            }
        }
        candidates.sort_unstable();
        for (_, slot) in candidates {
            // Bytes waiting behind an event this turn has not dispatched yet: not idle.
            if self.conns[slot].core.stream.has_input() {
                later = true;
                continue;
            }
            return Reclaim::Now(slot);
        }
        match (later, soonest) {
            (true, _) => Reclaim::NextTurn,
            (false, Some(when)) => Reclaim::At(when),
            (false, None) => Reclaim::Nothing,
        }
    }

    /// The backoff after descriptor exhaustion is over: try again.
    pub(super) fn accept_retry_due(&mut self, index: usize) {
        if let Some(Some(listener)) = self.listeners.get_mut(index) {
            listener.paused = None;
            self.accept(index);
        }
    }

    /// A connection closed: a listener that stopped at the connection cap can take one more.
    pub(super) fn resume_at_capacity(&mut self) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        for (index, listener) in self.listeners.iter_mut().enumerate() {
            if let Some(listener) = listener {
                if listener.paused == Some(Pause::AtCapacity) {
                    listener.paused = None;
                    self.shared.deferred.push_back(Deferred::Accept(index));
                }
            }
        }
    }

    /// Turns an accepted socket into a connection: asks the listener's factory for a
    /// handler, then installs it (`open.rs`).
    fn open_accepted(&mut self, index: usize, stream: Stream, peer: PeerAddr) {
        let listener = self.listeners[index].as_mut().expect("cannot fail: accepting from it");
        let factory = &mut listener.factory;
        let for_factory = peer.clone();
        let Ok(handler) = panic::catch_unwind(AssertUnwindSafe(|| factory(for_factory))) else {
            log::error!("peer={peer}: the handler factory panicked; dropping the connection");
            return;
        };
        let origin = Origin::Accepted { nodelay_inherited: listener.nodelay_inherited };
        let id = self.shared.slots.reserve();
        let opening = Opening { id, stream, peer, handler, origin };
        self.shared.stats.accepted += 1;
        if let Err(e) = self.install(opening) {
            log::warn!("conn {id}: could not register an accepted connection: {e}");
        }
    }

    /// Closes every listener (shutdown): clients still in the backlogs are refused by the
    /// kernel from now on.
    pub(super) fn close_listeners(&mut self) {
        for index in 0..self.listeners.len() {
            self.close_listener(index);
        }
    }

    /// Deregisters and closes one listener; its id names nothing from now on.
    pub(super) fn close_listener(&mut self, index: usize) {
        if let Some(mut listener) = self.listeners.get_mut(index).and_then(Option::take) {
            if let Err(e) = listener.socket.deregister(self.poll.registry()) {
                log::debug!("deregistering listener {index} failed: {e}");
            }
        }
    }

    /// Stops taking anything new: listeners and datagram endpoints close (shutdown, drain).
    pub(super) fn stop_accepting(&mut self) {
        self.close_listeners();
        self.close_endpoints();
    }
}
