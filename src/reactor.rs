//! The reactor: one thread, one `mio::Poll`, a slab of connections, and the loop that drives
//! them.
//!
//! ```text
//!            ┌───────────────────────────── one turn (run_once) ───────────────────────────┐
//!  timeout = │ 0 if work was deferred, else min(nearest timer, caller's)                   │
//!  poll ────►│ for each event: listener ─► accept (bounded batch) ─► Conn + on_open        │
//!            │                 conn     ─► generation check ─► write pending, read (budget)│
//!            │                 waker    ─► shutdown request, offload results ─► on_done    │
//!            │                 source   ─► the embedder's callback                         │
//!            │ deferred work: reads cut off by the budget or resumed, accepts cut off      │
//!            │ expired timers: handler timers, idle, linger, accept retry, shutdown cap    │
//!            └─────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Sockets are registered once, edge-triggered, for both directions, and never
//! re-registered: the reactor remembers what each event said (`READ_READY` and
//! `WRITE_BLOCKED` in the connection's `Flags`) and acts on it when the connection can.
//! After every handler callback, `Shared::settle` writes what the callback produced, applies
//! the watermarks, and carries out a requested close — the one place where a connection
//! changes state.
//!
//! The common event — a connection readable, nothing pending — runs as one inlined path:
//! `conn_ready` → `read_input` → `deliver` (the handler's `on_data`) → `Shared::settle` →
//! `Shared::write_staged`; everything rarer is out of line (ARCHITECTURE.md, "Design
//! decisions", says why and what it saved).
//!
//! This module owns the loop and the lifecycle; sockets are tuned in `net.rs`, buffers live
//! in `conn.rs`, and the handler API in `handler.rs`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::event::{Event, Source};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::Config;
use crate::conn::{Conn, Core, Flushed, Phase, KEEP_BUFFER_BYTES};
use crate::flags::Flags;
use crate::handler::{Cx, Handler, Input};
use crate::offload::{Completion, Job, OffloadError, OffloadPool};
use crate::stats::{Reason, Stats};
use crate::timer::{deadline_after, TimerId, Timers};
use crate::token::{self, Target};

/// A staging buffer grown past this by one big callback is freed at the end of the turn.
const STAGING_KEEP_BYTES: usize = 256 * 1024;

/// Who a timer belongs to: decides what happens when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerOwner {
    /// Set by a handler: call its `on_timer` (if the connection still exists).
    Handler(Token),
    /// A connection's idle timeout.
    Idle(Token),
    /// A listener paused by descriptor exhaustion tries `accept` again.
    AcceptRetry(usize),
    /// A lingering close has waited long enough for the peer's EOF.
    Linger(Token),
    /// Shutdown's grace period is over: close whatever is left.
    ShutdownDeadline,
}

/// Work that could not finish in the turn it started (fairness budgets, resumed reads).
/// While any is queued the next poll does not block.
#[derive(Debug, Clone, Copy)]
enum Deferred {
    Read(Token),
    Accept(usize),
}

/// What [`Reactor::run_once`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The reactor is still running.
    Running,
    /// Shutdown completed: every connection is closed. Further turns do nothing.
    Stopped,
}

/// Reactor state that handler callbacks may touch through [`Cx`]: everything but the
/// connection slab, the listeners and the poll, which the dispatch loop is borrowing.
#[derive(Debug)]
pub(crate) struct Shared<D> {
    /// The loop's clock: the time the current turn started.
    pub(crate) now: Instant,
    /// Output written during the current callback, sent when it returns (see `settle`).
    pub(crate) staging: Vec<u8>,
    pub(crate) timers: Timers<TimerOwner>,
    pub(crate) stats: Stats,
    deferred: VecDeque<Deferred>,
    config: Config,
    waker: Arc<Waker>,
    /// Started on the first `offload`, so servers that never offload spawn no threads.
    offload: Option<OffloadPool<D>>,
    /// Set once shutdown begins: no new jobs are accepted.
    offload_closed: bool,
    /// The slot whose `on_data` is running: if it panics, the turn's guard closes this one.
    in_handler: Option<usize>,
}

impl<D: Send + 'static> Shared<D> {
    /// Queues a read (or a re-offer of held input) for the next turn, once per connection.
    pub(crate) fn defer_read(&mut self, core: &mut Core, slot: usize) {
        if !core.flags.has(Flags::READ_DEFERRED) {
            core.flags.insert(Flags::READ_DEFERRED);
            self.deferred.push_back(Deferred::Read(token::conn(slot, core.generation)));
        }
    }

    /// Sends what the current callback staged, straight to the socket; copies what the
    /// kernel refused into the connection's own output buffer.
    ///
    /// The common case (the kernel takes everything in one `write`) is inlined into the hot
    /// path; anything else goes through [`Shared::write_staged_rest`].
    #[inline]
    pub(crate) fn write_staged(&mut self, core: &mut Core) -> io::Result<()> {
        if self.staging.is_empty() {
            return Ok(());
        }
        match (&core.stream).write(&self.staging) {
            Ok(n) if n == self.staging.len() => {
                // No `last_active` stamp here: a callback's output counts as activity
                // through its input (`read_input` stamps it) or through `callback`.
                self.stats.bytes_out += n as u64;
                self.staging.clear();
                Ok(())
            }
            first => self.write_staged_rest(core, first),
        }
    }

    /// The rest of [`Shared::write_staged`], given what the first `write` returned: retries
    /// after `Interrupted`, keeps what the kernel refused.
    #[cold]
    #[inline(never)]
    fn write_staged_rest(&mut self, core: &mut Core, first: io::Result<usize>) -> io::Result<()> {
        let result = match first {
            Ok(n) => {
                // A short (or zero-length) write means the send buffer is full: wait for
                // the writable edge (see `Core::write_some`).
                if n < self.staging.len() {
                    core.flags.insert(Flags::WRITE_BLOCKED);
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                core.flags.insert(Flags::WRITE_BLOCKED);
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => core.write_some(&self.staging),
            Err(e) => Err(e),
        };
        if let Ok(written) = result {
            self.stats.bytes_out += written as u64;
            if written < self.staging.len() {
                core.out.extend_from_slice(&self.staging[written..]);
                self.stats.out_buffered += (self.staging.len() - written) as u64;
                core.flags.insert(Flags::DRAINED_PENDING);
            }
        }
        self.staging.clear();
        result.map(|_| ())
    }

    /// After a callback: sends what it wrote, applies the watermarks, and carries out the
    /// write shutdown or graceful close it asked for. Returns the reason when the connection
    /// must be closed now (the caller owns the slab, so it does the closing).
    ///
    /// Inlined: the common case (nothing asked, everything sent) costs a few flag tests
    /// after the `write`; the rest is in [`Shared::settle_rest`].
    #[inline(always)]
    fn settle(&mut self, core: &mut Core, slot: usize) -> Option<Reason> {
        // After `Cx::abort` nothing is staged (it cleared the staging buffer and refuses
        // later writes), so this writes nothing for an aborted connection.
        if let Err(e) = self.write_staged(core) {
            log::debug!("conn slot={slot} peer={} write failed: {e}", core.peer);
            return Some(Reason::Error(e.kind()));
        }
        // The common case, checked first: everything sent, nothing requested.
        if core.pending_out() == 0
            && core.is_open()
            && !core.flags.any(Flags::SHUTDOWN_WRITE_REQUESTED | Flags::ABORT_REQUESTED | Flags::WRITE_FAILED)
        {
            return None;
        }
        self.settle_rest(core, slot)
    }

    /// The uncommon part of [`Shared::settle`]: output is pending, or the handler asked for a
    /// shutdown or close, or a write inside the callback failed.
    #[cold]
    #[inline(never)]
    fn settle_rest(&mut self, core: &mut Core, slot: usize) -> Option<Reason> {
        if core.flags.has(Flags::ABORT_REQUESTED) {
            return Some(if core.flags.has(Flags::PEER_EOF) { Reason::PeerClosed } else { Reason::Local });
        }
        let pending = core.pending_out();
        if let Some(kind) = core.failed {
            return Some(Reason::Error(kind));
        }
        if pending as u64 > self.stats.out_buffered_peak {
            self.stats.out_buffered_peak = pending as u64;
        }
        if pending >= self.config.out_high_watermark && !core.flags.has(Flags::PAUSED_BY_BACKPRESSURE) {
            core.flags.insert(Flags::PAUSED_BY_BACKPRESSURE);
            self.stats.backpressure_pauses += 1;
            log::trace!("conn slot={slot} peer={} paused: {pending} bytes pending", core.peer);
        }
        if pending > 0 {
            return None;
        }
        if core.flags.has(Flags::SHUTDOWN_WRITE_REQUESTED) {
            shut_write(core, slot);
        }
        let Phase::Closing { reason } = core.phase else { return None };
        // Everything is sent. If the peer may still be sending, linger: send FIN and
        // read-and-discard until its EOF or a deadline, so unread input does not turn our
        // close into an RST that could destroy the reply in flight (nginx's lingering
        // close). A finished peer, or shutdown, closes at once.
        let linger = !core.flags.has(Flags::PEER_EOF) && matches!(reason, Reason::Local | Reason::InputLimit);
        if !linger {
            return Some(reason);
        }
        core.phase = Phase::Lingering { reason };
        shut_write(core, slot);
        let token = token::conn(slot, core.generation);
        let deadline = deadline_after(self.now, self.config.linger_timeout);
        core.linger_timer = Some(self.timers.insert(deadline, TimerOwner::Linger(token)));
        if core.flags.has(Flags::READ_READY) {
            self.defer_read(core, slot);
        }
        None
    }

    pub(crate) fn offload(&mut self, token: Token, job: Job<D>) -> Result<(), OffloadError> {
        if self.offload_closed {
            return Err(OffloadError::Closed);
        }
        if self.offload.is_none() {
            let threads = match self.config.offload_threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            let pool = OffloadPool::new(threads, self.config.offload_queue, Arc::clone(&self.waker))
                .map_err(|e| {
                    log::error!("could not start the offload pool: {e}");
                    OffloadError::Closed
                })?;
            self.offload = Some(pool);
        }
        let pool = self.offload.as_ref().expect("cannot fail: started just above");
        let result = pool.submit(token.0 as u64, job);
        match result {
            Ok(()) => self.stats.offload_submitted += 1,
            Err(_) => self.stats.offload_rejected += 1,
        }
        result
    }
}

/// What other threads can see and ask for.
#[derive(Debug, Default)]
struct Remote {
    shutdown: AtomicBool,
    stats: Mutex<Stats>,
}

/// A thread-safe handle to a running [`Reactor`]: ask it to shut down, read its stats.
#[derive(Debug, Clone)]
pub struct Handle {
    waker: Arc<Waker>,
    remote: Arc<Remote>,
}

impl Handle {
    /// Asks the reactor to shut down gracefully: it stops accepting, flushes pending output
    /// for up to [`Config::shutdown_timeout`], closes every connection, stops the offload
    /// pool, and `run()` returns. Safe to call from any thread, any number of times.
    pub fn shutdown(&self) {
        self.remote.shutdown.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::error!("shutdown could not wake the reactor: {e}");
        }
    }

    /// The reactor's counters as of the end of its latest turn.
    pub fn stats(&self) -> Stats {
        *self.remote.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Listener<H> {
    socket: TcpListener,
    factory: Box<dyn FnMut(SocketAddr) -> H>,
    /// Why the listener is not accepting, if it is not.
    paused: Option<Pause>,
    /// When descriptor exhaustion was last logged (the warning is rate-limited).
    last_warning: Option<Instant>,
}

/// Why a listener stopped accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    /// At `max_conns`: resume when a connection closes.
    AtCapacity,
    /// `accept` ran out of descriptors or memory: resume from a timer.
    Backoff,
}

/// An embedder's own registered source and what to do when it is ready.
trait UserSource {
    fn ready(&mut self, event: &Event);
    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()>;
}

struct SourceEntry<S, F> {
    source: S,
    on_ready: F,
}

impl<S: Source, F: FnMut(&mut S, &Event)> UserSource for SourceEntry<S, F> {
    fn ready(&mut self, event: &Event) {
        (self.on_ready)(&mut self.source, event);
    }
    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut self.source)
    }
}

/// Names a source registered with [`Reactor::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(usize);

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
///     type Done = ();
///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
///         cx.write(input.bytes());
///         input.consume_all();
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new(Config::default())?;
/// let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
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
/// Each [`run_once`](Reactor::run_once): compute the poll timeout (zero if work was
/// deferred, else until the nearest timer), poll, dispatch every event, serve deferred work,
/// fire expired timers, publish stats. `EINTR` from poll is an empty turn, never an error.
pub struct Reactor<H: Handler> {
    poll: Poll,
    events: Events,
    conns: Slab<Conn<H>>,
    listeners: Vec<Option<Listener<H>>>,
    sources: Slab<Box<dyn UserSource>>,
    shared: Shared<H::Done>,
    /// The one read buffer: every connection reads here first.
    scratch: Vec<u8>,
    /// Generation for the next connection's token.
    generation: u32,
    remote: Arc<Remote>,
    /// Offload results taken from the pool, kept to reuse the allocation.
    completions: Vec<Completion<H::Done>>,
    /// Shutdown has begun.
    shutting_down: bool,
    /// The deadline after which shutdown closes connections regardless.
    shutdown_timer: Option<TimerId>,
    /// Shutdown has finished.
    stopped: bool,
    /// The reactor belongs to the thread that runs it; handlers need not be `Send`.
    _not_send: PhantomData<*const ()>,
}

impl<H: Handler> std::fmt::Debug for Reactor<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("conns", &self.conns.len())
            .field("listeners", &self.listeners.iter().flatten().count())
            .field("timers", &self.shared.timers.len())
            .field("shutting_down", &self.shutting_down)
            .finish()
    }
}

impl<H: Handler> Reactor<H> {
    /// Builds a reactor with its own `mio::Poll`.
    ///
    /// # Errors
    ///
    /// An invalid `config` (`InvalidInput`), or the OS refusing an epoll instance or waker.
    pub fn new(config: Config) -> io::Result<Reactor<H>> {
        config.validate()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), token::WAKER)?);
        Ok(Reactor {
            events: Events::with_capacity(config.events_capacity),
            conns: Slab::new(),
            listeners: Vec::new(),
            sources: Slab::new(),
            // No bigger than one read may be: a handler may hold at most `max_input`, and an
            // echo-like handler should not be handed more than the output headroom.
            scratch: vec![0; config.read_chunk.min(config.max_input).min(config.out_high_watermark)],
            generation: 0,
            remote: Arc::new(Remote::default()),
            completions: Vec::new(),
            shutting_down: false,
            shutdown_timer: None,
            stopped: false,
            shared: Shared {
                now: Instant::now(),
                staging: Vec::new(),
                timers: Timers::default(),
                stats: Stats::default(),
                deferred: VecDeque::new(),
                config,
                waker,
                offload: None,
                offload_closed: false,
                in_handler: None,
            },
            poll,
            _not_send: PhantomData,
        })
    }

    /// Listens on `addr`; every accepted connection gets a handler from `factory(peer)`.
    /// Returns the bound address (useful with port 0).
    ///
    /// # Errors
    ///
    /// Binding or listening failed (address in use, permission denied, ...).
    pub fn listen<F>(&mut self, addr: SocketAddr, factory: F) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> H + 'static,
    {
        let options = crate::net::ListenOptions { backlog: self.shared.config.backlog, reuse_port: false };
        self.add_listener(crate::net::listen(addr, options)?, factory)
    }

    /// Serves connections from a listener built elsewhere (for example with
    /// `SO_REUSEPORT` through [`net::listen`](crate::net::listen)).
    ///
    /// # Errors
    ///
    /// Registering the listener with the poll failed.
    pub fn add_listener<F>(&mut self, mut socket: TcpListener, factory: F) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> H + 'static,
    {
        let index = self.listeners.len();
        self.poll.registry().register(&mut socket, token::listener(index), Interest::READABLE)?;
        let addr = socket.local_addr()?;
        let factory = Box::new(factory);
        self.listeners.push(Some(Listener { socket, factory, paused: None, last_warning: None }));
        Ok(addr)
    }

    /// Registers an embedder's own `mio` source (a signal pipe, a channel's waker, a UDP
    /// socket, ...); `on_ready` runs on the loop thread for each of its events.
    ///
    /// # Errors
    ///
    /// Registering with the poll failed.
    pub fn register<S, F>(&mut self, mut source: S, interest: Interest, on_ready: F) -> io::Result<SourceId>
    where
        S: Source + 'static,
        F: FnMut(&mut S, &Event) + 'static,
    {
        let entry = self.sources.vacant_entry();
        let index = entry.key();
        self.poll.registry().register(&mut source, token::source(index), interest)?;
        entry.insert(Box::new(SourceEntry { source, on_ready }));
        Ok(SourceId(index))
    }

    /// Deregisters and drops a source added with [`register`](Reactor::register).
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; otherwise whatever deregistering returned.
    pub fn deregister(&mut self, id: SourceId) -> io::Result<()> {
        let mut entry = self.sources.try_remove(id.0).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no source registered as {id:?}"))
        })?;
        entry.deregister(self.poll.registry())
    }

    /// A handle other threads can use to stop this reactor or read its stats.
    pub fn handle(&self) -> Handle {
        Handle { waker: Arc::clone(&self.shared.waker), remote: Arc::clone(&self.remote) }
    }

    /// The counters, as of now.
    pub fn stats(&self) -> Stats {
        self.shared.stats
    }

    /// Runs turns until shutdown completes.
    ///
    /// # Errors
    ///
    /// Only if polling itself fails — errors on single connections close those
    /// connections and are never returned.
    pub fn run(&mut self) -> io::Result<()> {
        while self.run_once(None)? == Turn::Running {}
        Ok(())
    }

    /// Runs one turn, blocking for at most `timeout` (`None`: until something happens), for
    /// embedding in a host's own loop.
    ///
    /// # Errors
    ///
    /// Only if polling itself fails.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<Turn> {
        if self.stopped {
            return Ok(Turn::Stopped);
        }
        let timeout = self.poll_timeout(timeout);
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            // A signal interrupted the wait: an empty turn, not a failure.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.shared.now = Instant::now();
        self.shared.stats.turns += 1;

        // The events are taken out of `self` so dispatch can borrow `self` mutably;
        // `Events::with_capacity(0)` does not allocate.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let mut next_event = 0;
        // `on_data` runs without a guard of its own: a `catch_unwind` per message would stop
        // the handler from being inlined and cost more than the rest of the dispatch. A
        // panic in it unwinds to here instead; the guard closes the connection whose handler
        // panicked and resumes the turn at the next event.
        loop {
            let turn = panic::catch_unwind(AssertUnwindSafe(|| self.turn(&events, &mut next_event)));
            let Err(payload) = turn else { break };
            match self.shared.in_handler.take() {
                Some(slot) => self.handler_panicked(slot),
                None => {
                    // Not a handler's panic but the reactor's own: a bug, not to be hidden.
                    self.events = events;
                    panic::resume_unwind(payload);
                }
            }
        }
        self.events = events;
        if self.shared.staging.capacity() > STAGING_KEEP_BYTES {
            // A callback wrote a lot at once; don't keep the peak allocation forever.
            self.shared.staging = Vec::new();
        }
        self.shared.stats.timers = self.shared.timers.len() as u64;
        *self.remote.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.shared.stats;
        Ok(if self.stopped { Turn::Stopped } else { Turn::Running })
    }

    /// The work of one turn after the poll: the events from `next_event` on, then deferred
    /// work, timers and the end of a shutdown. Resumable: after a handler's panic,
    /// `run_once` calls it again and it carries on with the next event. (Deferred work and
    /// timers queued earlier in a turn that panicked may then be served in the same turn;
    /// that only shifts fairness, never correctness.)
    fn turn(&mut self, events: &Events, next_event: &mut usize) {
        let mut events = events.iter();
        for _ in 0..*next_event {
            events.next();
        }
        for event in events {
            *next_event += 1;
            // Nearly every event is a connection's: test for that first.
            if let Some((slot, generation)) = token::as_conn(event.token()) {
                self.conn_ready(slot, generation, event);
                continue;
            }
            match token::decode(event.token()) {
                Target::Source(index) => {
                    if let Some(source) = self.sources.get_mut(index) {
                        source.ready(event);
                    }
                }
                target => self.dispatch(target, event),
            }
        }
        self.serve_deferred();
        self.expire_timers();
        if self.shutting_down && self.conns.is_empty() {
            self.finish_shutdown();
        }
    }

    fn poll_timeout(&mut self, caller: Option<Duration>) -> Option<Duration> {
        if !self.shared.deferred.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self
            .shared
            .timers
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match (timer, caller) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Routes one readiness event.
    #[inline]
    fn dispatch<R: Readiness>(&mut self, target: Target, ready: &R) {
        match target {
            Target::Conn { slot, generation } => self.conn_ready(slot, generation, ready),
            Target::Listener(index) => self.accept(index),
            Target::Waker => self.woken(),
            Target::Source(_) => unreachable!("sources are dispatched with their mio event"),
        }
    }

    /// Acts on a connection's readiness: records what the event says, writes pending output
    /// if the socket took some, then reads. The connection is looked up once, and the
    /// common event (readable, perhaps writable, no output pending) goes straight to the
    /// read; errors and hang-ups take the general path, `conn_trouble`.
    #[inline]
    fn conn_ready<R: Readiness>(&mut self, slot: usize, generation: u32, ready: &R) {
        if ready.is_error() || ready.is_read_closed() {
            self.conn_trouble(slot, generation, ready);
            return;
        }
        let Reactor { conns, shared, scratch, .. } = self;
        let conn = match conns.get_mut(slot) {
            Some(conn) if conn.core.generation == generation => conn,
            // The connection this event was for has closed; the slot may already hold a
            // new one. Never deliver it there.
            _ => {
                shared.stats.stale_events += 1;
                return;
            }
        };
        if ready.is_readable() {
            conn.core.flags.insert(Flags::READ_READY);
        }
        let core = &conn.core;
        if ready.is_writable() && (core.pending_out() > 0 || core.flags.has(Flags::WRITE_BLOCKED)) {
            // Write first: it may free room below the low watermark and let reading resume.
            self.flush(slot);
            self.read(slot);
        } else if let Some(end) = read_input(conn, shared, scratch, slot) {
            self.finish_read(slot, end);
        }
    }

    /// `conn_ready` for an event that reports an error or the peer's FIN or hang-up: the
    /// socket is marked readable to the end (so the read surfaces the EOF or the error),
    /// pending output is tried (a write surfaces the error too), and after an error or a
    /// hang-up a connection that is not reading is probed, so a dead one does not keep its
    /// slot.
    #[cold]
    #[inline(never)]
    fn conn_trouble<R: Readiness>(&mut self, slot: usize, generation: u32, ready: &R) {
        let Some(conn) = self.conns.get_mut(slot).filter(|conn| conn.core.generation == generation) else {
            self.shared.stats.stale_events += 1;
            return;
        };
        let core = &mut conn.core;
        core.flags.insert(Flags::READ_READY | Flags::READ_HANGUP);
        if core.pending_out() > 0 || core.flags.has(Flags::WRITE_BLOCKED) {
            self.flush(slot);
        }
        self.read(slot);
        // Both directions closed (`EPOLLHUP`): the connection is dead. A plain FIN (read
        // side closed only) is a half-close, left to the read.
        let hangup = ready.is_read_closed() && ready.is_write_closed();
        if hangup || ready.is_error() {
            self.probe_failure(slot, hangup);
        }
    }

    /// After an error or hang-up event, closes a connection that is not reading (the handler
    /// or backpressure paused it, perhaps just now with the error still unread behind the
    /// data): the read that would surface a reset is not coming, and a dead connection must
    /// not hold its slot until some timer fires. A plain FIN is only a half-close and is
    /// handled when reading resumes.
    #[cold]
    fn probe_failure(&mut self, slot: usize, hangup: bool) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        if conn.core.wants_read() {
            return;
        }
        let reason = match conn.core.stream.take_error() {
            Ok(Some(e)) | Err(e) => Reason::Error(e.kind()),
            Ok(None) if hangup => Reason::Error(io::ErrorKind::ConnectionReset),
            Ok(None) => return,
        };
        log::debug!("conn slot={slot} peer={} failed while paused: {reason}", conn.core.peer);
        self.close_now(slot, reason);
    }

    /// Reads from a connection until the socket is drained, the handler or backpressure
    /// pauses it, or the per-turn budget is spent (then the rest waits for the next turn).
    /// (The event path, `conn_ready`, calls `read_input` itself, on the connection it has
    /// already looked up.)
    fn read(&mut self, slot: usize) {
        let Reactor { conns, shared, scratch, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        if let Some(end) = read_input(conn, shared, scratch, slot) {
            self.finish_read(slot, end);
        }
    }

    /// Acts on how a read loop ended, when it did not simply drain the socket.
    fn finish_read(&mut self, slot: usize, end: ReadEnd) {
        match end {
            ReadEnd::Close(reason) => self.close_now(slot, reason),
            ReadEnd::Settle => self.settle(slot),
            ReadEnd::Eof(Phase::Open) => self.callback(slot, |handler, cx| handler.on_eof(cx)),
            ReadEnd::Eof(Phase::Closing { .. }) => self.settle(slot),
            ReadEnd::Eof(Phase::Lingering { reason }) => self.close_now(slot, reason),
        }
    }

    /// Offers input already held by a connection to its handler again (after a pause).
    fn redeliver(&mut self, slot: usize) {
        let Reactor { conns, shared, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        if let Some(reason) = deliver(conn, shared, &[], slot) {
            self.close_now(slot, reason);
        }
    }

    /// Runs a handler callback for `slot`, then settles the connection.
    fn callback<F>(&mut self, slot: usize, f: F)
    where
        F: FnOnce(&mut H, &mut Cx<'_, H>),
    {
        let Reactor { conns, shared, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        let mut cx = Cx { core: &mut conn.core, shared, slot };
        let handler = &mut conn.handler;
        // Don't let one handler's panic take down every other connection. (`on_data`,
        // the per-message callback, is guarded per turn instead: see `run_once`.)
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(handler, &mut cx)));
        if outcome.is_err() {
            self.handler_panicked(slot);
            return;
        }
        // Output the kernel took counts as activity (a server that only pushes, on timers
        // or offload results, is not idle). `write_staged` leaves this stamp to its callers.
        let sent_before = self.shared.stats.bytes_out;
        self.settle(slot);
        if self.shared.stats.bytes_out != sent_before {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.core.last_active = self.shared.now;
            }
        }
    }

    fn handler_panicked(&mut self, slot: usize) {
        self.shared.staging.clear();
        log::error!("conn slot={slot}: handler panicked; closing the connection");
        self.close_now(slot, Reason::Error(io::ErrorKind::Other));
    }

    /// Settles a connection after a callback (see `Shared::settle`), closing it if asked.
    fn settle(&mut self, slot: usize) {
        let Reactor { conns, shared, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        if let Some(reason) = shared.settle(&mut conn.core, slot) {
            self.close_now(slot, reason);
        }
    }

    /// Writes pending output after a writable event; resumes reading below the low
    /// watermark; tells the handler when everything has gone out.
    fn flush(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        let before = conn.core.pending_out();
        match conn.core.flush_out() {
            Ok((flushed, written)) => {
                self.shared.stats.out_buffered -= written as u64;
                self.shared.stats.bytes_out += written as u64;
                if written > 0 {
                    conn.core.last_active = self.shared.now;
                }
                let pending = before - written;
                if conn.core.flags.has(Flags::PAUSED_BY_BACKPRESSURE)
                    && pending <= self.shared.config.out_low_watermark
                {
                    conn.core.flags.remove(Flags::PAUSED_BY_BACKPRESSURE);
                    // Readiness seen while paused was left unread, and input held from before
                    // the pause was never offered: no event will announce either, so go back
                    // for them (regression: `resume_read_during_backpressure_serves_held_input`).
                    if conn.core.flags.has(Flags::READ_READY) || !conn.input.is_empty() {
                        self.shared.defer_read(&mut conn.core, slot);
                    }
                }
                if flushed == Flushed::All && conn.core.flags.has(Flags::DRAINED_PENDING) {
                    conn.core.flags.remove(Flags::DRAINED_PENDING);
                    if conn.core.is_open() {
                        self.callback(slot, |handler, cx| handler.on_drained(cx));
                        return;
                    }
                }
                self.settle(slot);
            }
            Err(e) => {
                log::debug!("conn slot={slot} peer={} write failed: {e}", conn.core.peer);
                self.close_now(slot, Reason::Error(e.kind()));
            }
        }
    }

    /// Closes a connection now: deregister, drop the socket, free the slot, tell the handler.
    fn close_now(&mut self, slot: usize, reason: Reason) {
        let mut conn = self.conns.remove(slot);
        let core = &mut conn.core;
        if let Err(e) = self.poll.registry().deregister(&mut core.stream) {
            log::debug!("conn slot={slot} deregister failed: {e}");
        }
        // A closed connection's timers would otherwise sit in the heap until their
        // deadlines (perhaps minutes away) only to be dropped as stale.
        for id in
            core.idle_timer.take().into_iter().chain(core.linger_timer.take()).chain(core.timers.drain(..))
        {
            self.shared.timers.cancel(id);
        }
        self.shared.stats.out_buffered -= core.pending_out() as u64;
        self.shared.stats.closed.count(reason);
        self.shared.stats.active -= 1;
        log::debug!("conn slot={slot} peer={} closed: {reason}", core.peer);
        let handler = &mut conn.handler;
        if panic::catch_unwind(AssertUnwindSafe(|| handler.on_close(reason))).is_err() {
            log::error!("conn slot={slot}: handler panicked in on_close");
        }
        // A listener that stopped at the connection cap can take one more now.
        if !self.shutting_down {
            for (index, listener) in self.listeners.iter_mut().enumerate() {
                if let Some(listener) = listener {
                    if listener.paused == Some(Pause::AtCapacity) {
                        listener.paused = None;
                        self.shared.deferred.push_back(Deferred::Accept(index));
                    }
                }
            }
        }
    }

    /// Accepts up to a batch of connections from a listener.
    fn accept(&mut self, index: usize) {
        let batch = self.shared.config.accept_batch;
        for _ in 0..batch {
            let Some(Some(listener)) = self.listeners.get_mut(index) else { return };
            if listener.paused.is_some() {
                return;
            }
            if self.conns.len() >= self.shared.config.max_conns {
                // New clients wait in the kernel's backlog until a connection closes
                // (`close_now` resumes accepting). Edge-triggered: no event will repeat.
                listener.paused = Some(Pause::AtCapacity);
                self.shared.stats.accept_pauses += 1;
                log::debug!("listener {index}: at max_conns ({}), pausing accept", self.conns.len());
                return;
            }
            match listener.socket.accept() {
                Ok((stream, peer)) => self.open(index, stream, peer),
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
                    }
                    if !quiet {
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

    fn open(&mut self, index: usize, mut stream: TcpStream, peer: SocketAddr) {
        if self.shared.config.nodelay {
            if let Err(e) = stream.set_nodelay(true) {
                log::debug!("peer={peer}: TCP_NODELAY failed: {e}");
            }
        }
        self.generation = token::next_generation(self.generation);
        let generation = self.generation;
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        let token = token::conn(slot, generation);
        if let Err(e) =
            self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("peer={peer}: could not register the connection: {e}");
            return;
        }
        let listener = self.listeners[index].as_mut().expect("cannot fail: accepting from it");
        let factory = &mut listener.factory;
        let Ok(handler) = panic::catch_unwind(AssertUnwindSafe(|| factory(peer))) else {
            log::error!("peer={peer}: the handler factory panicked; dropping the connection");
            let _ = self.poll.registry().deregister(&mut stream);
            return;
        };
        let now = self.shared.now;
        let mut core = Core::new(stream, peer, generation, now);
        if let Some(idle) = self.shared.config.idle_timeout {
            core.idle_timer =
                Some(self.shared.timers.insert(deadline_after(now, idle), TimerOwner::Idle(token)));
        }
        entry.insert(Conn { handler, input: Vec::new(), core });
        self.shared.stats.accepted += 1;
        self.shared.stats.active += 1;
        log::debug!("conn slot={slot} peer={peer} accepted");
        self.callback(slot, |handler, cx| handler.on_open(cx));
    }

    fn serve_deferred(&mut self) {
        // Only what was deferred before this point: work deferred while serving waits for
        // the next turn, after a poll, so nothing can monopolise the loop.
        for _ in 0..self.shared.deferred.len() {
            let Some(work) = self.shared.deferred.pop_front() else { break };
            match work {
                Deferred::Read(token) => {
                    let Some(slot) = self.live_slot(token) else { continue };
                    let core = &mut self.conns[slot].core;
                    core.flags.remove(Flags::READ_DEFERRED);
                    core.flags.remove(Flags::YIELDED);
                    // Input left over from before a pause is offered again first: no
                    // readiness event will announce bytes the reactor already holds.
                    let conn = &self.conns[slot];
                    let throttled =
                        conn.core.flags.any(Flags::PAUSED_BY_HANDLER | Flags::PAUSED_BY_BACKPRESSURE);
                    if !conn.input.is_empty() && conn.core.is_open() && !throttled {
                        self.redeliver(slot);
                    }
                    if self.conns.contains(slot) {
                        self.read(slot);
                    }
                }
                Deferred::Accept(index) => self.accept(index),
            }
        }
    }

    fn expire_timers(&mut self) {
        let now = self.shared.now;
        let fence = self.shared.timers.sequence();
        while let Some((id, owner)) = self.shared.timers.pop_expired(now, fence) {
            match owner {
                TimerOwner::Handler(token) => match self.live_slot(token) {
                    Some(slot) => {
                        self.conns[slot].core.forget_timer(id);
                        self.shared.stats.timers_fired += 1;
                        self.callback(slot, |handler, cx| handler.on_timer(id, cx));
                    }
                    None => self.shared.stats.stale_events += 1,
                },
                TimerOwner::Idle(token) => {
                    let Some(slot) = self.live_slot(token) else { continue };
                    let idle = self.shared.config.idle_timeout.expect("cannot fail: idle timers need it");
                    let core = &mut self.conns[slot].core;
                    let quiet_since = core.last_active;
                    if now.duration_since(quiet_since) >= idle {
                        core.idle_timer = None;
                        log::debug!("conn slot={slot} peer={} idle for {idle:?}", core.peer);
                        self.close_now(slot, Reason::IdleTimeout);
                    } else {
                        // Activity since the timer was armed: re-arm for the remainder rather
                        // than touching the heap on every read or write.
                        let deadline = deadline_after(quiet_since, idle);
                        core.idle_timer = Some(self.shared.timers.insert(deadline, TimerOwner::Idle(token)));
                    }
                }
                TimerOwner::Linger(token) => {
                    let Some(slot) = self.live_slot(token) else { continue };
                    if let Phase::Lingering { reason } = self.conns[slot].core.phase {
                        self.close_now(slot, reason);
                    }
                }
                TimerOwner::AcceptRetry(index) => {
                    if let Some(Some(listener)) = self.listeners.get_mut(index) {
                        listener.paused = None;
                        self.accept(index);
                    }
                }
                TimerOwner::ShutdownDeadline => {
                    let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
                    if !slots.is_empty() {
                        log::warn!("shutdown: closing {} connections with unsent output", slots.len());
                    }
                    for slot in slots {
                        self.close_now(slot, Reason::Shutdown);
                    }
                }
            }
        }
    }

    fn live_slot(&self, token: Token) -> Option<usize> {
        match token::decode(token) {
            Target::Conn { slot, generation } => {
                self.conns.get(slot).filter(|c| c.core.generation == generation).map(|_| slot)
            }
            _ => None,
        }
    }

    /// The waker fired: another thread asked for shutdown, or offload jobs finished.
    fn woken(&mut self) {
        if self.remote.shutdown.load(Ordering::SeqCst) && !self.shutting_down {
            self.begin_shutdown();
        }
        let Some(pool) = &self.shared.offload else { return };
        let mut completions = std::mem::take(&mut self.completions);
        pool.drain(&mut completions);
        for (tag, result) in completions.drain(..) {
            match self.live_slot(Token(tag as usize)) {
                Some(slot) => {
                    if result.is_err() {
                        self.shared.stats.offload_panics += 1;
                    }
                    self.shared.stats.offload_completed += 1;
                    self.callback(slot, |handler, cx| handler.on_done(result, cx));
                }
                None => {
                    // The connection closed while its job ran: drop the result.
                    self.shared.stats.stale_events += 1;
                }
            }
        }
        self.completions = completions;
    }

    fn begin_shutdown(&mut self) {
        log::info!("shutting down: {} connections open", self.conns.len());
        self.shutting_down = true;
        self.shared.offload_closed = true;
        for listener in self.listeners.iter_mut() {
            if let Some(mut listener) = listener.take() {
                if let Err(e) = self.poll.registry().deregister(&mut listener.socket) {
                    log::debug!("deregistering a listener failed: {e}");
                }
            }
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let core = &mut self.conns[slot].core;
            if core.is_open() {
                core.phase = Phase::Closing { reason: Reason::Shutdown };
            }
            self.settle(slot);
        }
        let deadline = deadline_after(self.shared.now, self.shared.config.shutdown_timeout);
        self.shutdown_timer = Some(self.shared.timers.insert(deadline, TimerOwner::ShutdownDeadline));
    }

    fn finish_shutdown(&mut self) {
        if let Some(id) = self.shutdown_timer.take() {
            self.shared.timers.cancel(id);
        }
        if let Some(pool) = self.shared.offload.take() {
            pool.shutdown();
        }
        self.stopped = true;
        log::info!("shut down");
    }
}

/// How a read loop ended, when it did not simply drain the socket.
enum ReadEnd {
    /// The peer sent EOF; the phase the connection was in.
    Eof(Phase),
    /// The connection changed phase: settle it.
    Settle,
    /// The connection must close.
    Close(Reason),
}

/// Reads from a connection until the socket is drained, the handler or backpressure
/// pauses it, or the per-turn budget is spent (then the rest waits for the next turn).
/// A closing connection's input is read and discarded, so the final close sends a FIN
/// rather than the RST that unread data would cause. Returns how the loop ended when the
/// caller has more to do (`Reactor::finish_read`).
///
/// This is the hot path: each read is handed to the handler and settled in place. A free
/// function over the parts of the reactor it needs, so the event path can call it on the
/// connection it has already looked up; always inlined into its two callers.
#[inline(always)]
fn read_input<H: Handler>(
    conn: &mut Conn<H>,
    shared: &mut Shared<H::Done>,
    scratch: &mut [u8],
    slot: usize,
) -> Option<ReadEnd> {
    let mut budget = shared.config.read_budget;
    loop {
        if !conn.core.wants_read() {
            return None;
        }
        let open = conn.core.is_open();
        // The scratch buffer is never larger than one read may be (see `Reactor::new`), so
        // the common case (nothing held, nothing pending) reads all of it.
        let room = if !open || (conn.input.is_empty() && conn.core.pending_out() == 0) {
            scratch.len()
        } else {
            let held = conn.input.len();
            let max_input = shared.config.max_input;
            if held >= max_input {
                log::debug!("conn slot={slot} peer={} left {held} bytes unconsumed", conn.core.peer);
                // Close gracefully: flush what is pending, then linger, so the peer sees
                // our last bytes and a FIN rather than a reset.
                conn.input = Vec::new();
                conn.core.phase = Phase::Closing { reason: Reason::InputLimit };
                return Some(ReadEnd::Settle);
            }
            // Read no more than the handler may keep, and no more than the output
            // headroom: an echo-like handler then never buffers past the high watermark.
            let headroom = shared.config.out_high_watermark.saturating_sub(conn.core.pending_out()).max(1);
            scratch.len().min(max_input - held).min(headroom)
        };
        // A zero-length read would return Ok(0) and look like EOF.
        debug_assert!(room > 0);
        match conn.core.stream.read(&mut scratch[..room]) {
            Ok(0) => {
                conn.core.flags.remove(Flags::READ_READY);
                conn.core.flags.insert(Flags::PEER_EOF);
                log::trace!("conn slot={slot} peer={} sent EOF", conn.core.peer);
                return Some(ReadEnd::Eof(conn.core.phase));
            }
            Ok(n) => {
                shared.stats.bytes_in += n as u64;
                if open {
                    // Only input the handler sees counts as activity: a closing
                    // connection's discarded input must not keep it (and its pending
                    // output) alive past the idle timeout.
                    conn.core.last_active = shared.now;
                    if let Some(reason) = deliver(conn, shared, &scratch[..n], slot) {
                        return Some(ReadEnd::Close(reason));
                    }
                }
                // A short read drained the socket: the kernel reports the next arrival
                // as a new edge, so the read that would only say `WouldBlock` is skipped
                // (unless a hang-up was signalled: then the EOF is read now).
                if n < room && !conn.core.flags.has(Flags::READ_HANGUP) {
                    conn.core.flags.remove(Flags::READ_READY);
                    return None;
                }
                budget = budget.saturating_sub(n);
                if budget == 0 {
                    if conn.core.wants_read() {
                        shared.stats.read_budget_yields += 1;
                        shared.defer_read(&mut conn.core, slot);
                    }
                    return None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.core.flags.remove(Flags::READ_READY);
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("conn slot={slot} peer={} read failed: {e}", conn.core.peer);
                return Some(ReadEnd::Close(Reason::Error(e.kind())));
            }
        }
    }
}

/// Hands `fresh` bytes to the handler, after any input it left unconsumed earlier; keeps
/// what it does not consume; settles the connection. Returns the reason when the connection
/// must close now.
///
/// Always inlined: this is the middle of the per-message hot path (`read` → `deliver` →
/// `settle`), and a call boundary here costs more than the rest of the function. A panic
/// in `on_data` unwinds to the turn's guard in `run_once`, which closes this connection;
/// `in_handler` tells it which one.
#[inline(always)]
fn deliver<H: Handler>(
    conn: &mut Conn<H>,
    shared: &mut Shared<H::Done>,
    fresh: &[u8],
    slot: usize,
) -> Option<Reason> {
    // Remembered rather than asked again after the handler ran: the compiler cannot see
    // that the handler leaves `conn.input` alone, and would reload it.
    let held = !conn.input.is_empty();
    let data: &[u8] = if held {
        conn.input.extend_from_slice(fresh);
        &conn.input
    } else {
        fresh
    };
    let mut input = Input::new(data);
    shared.in_handler = Some(slot);
    conn.handler.on_data(&mut input, &mut Cx { core: &mut conn.core, shared, slot });
    shared.in_handler = None;
    let consumed = input.consumed();
    // Keep what the handler did not consume, and only that.
    if !held {
        if consumed < fresh.len() {
            conn.input.extend_from_slice(&fresh[consumed..]);
        }
    } else {
        conn.input.drain(..consumed);
        if conn.input.is_empty() && conn.input.capacity() > KEEP_BUFFER_BYTES {
            conn.input = Vec::new();
        }
    }
    shared.settle(&mut conn.core, slot)
}

/// Sends FIN (`shutdown(Write)`) once.
fn shut_write(core: &mut Core, slot: usize) {
    if !core.flags.has(Flags::WRITE_SHUT) {
        core.flags.insert(Flags::WRITE_SHUT);
        if let Err(e) = core.stream.shutdown(std::net::Shutdown::Write) {
            log::debug!("conn slot={slot} peer={} shutdown(Write) failed: {e}", core.peer);
        }
    }
}

/// The questions the reactor asks of a readiness event: answered by mio's events, and by
/// `Ready`, the synthetic events of the unit tests.
pub(crate) trait Readiness {
    fn is_readable(&self) -> bool;
    fn is_writable(&self) -> bool;
    /// The peer finished sending (`EPOLLRDHUP`), or the connection hung up.
    fn is_read_closed(&self) -> bool;
    fn is_write_closed(&self) -> bool;
    fn is_error(&self) -> bool;
}

impl Readiness for Event {
    #[inline]
    fn is_readable(&self) -> bool {
        Event::is_readable(self)
    }
    #[inline]
    fn is_writable(&self) -> bool {
        Event::is_writable(self)
    }
    #[inline]
    fn is_read_closed(&self) -> bool {
        Event::is_read_closed(self)
    }
    #[inline]
    fn is_write_closed(&self) -> bool {
        Event::is_write_closed(self)
    }
    #[inline]
    fn is_error(&self) -> bool {
        Event::is_error(self)
    }
}

/// A synthetic readiness event, for tests that feed the reactor events the kernel would
/// not produce on demand (stale tokens, spurious wake-ups).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

#[cfg(test)]
impl Readiness for Ready {
    fn is_readable(&self) -> bool {
        self.readable
    }
    fn is_writable(&self) -> bool {
        self.writable
    }
    fn is_read_closed(&self) -> bool {
        false
    }
    fn is_write_closed(&self) -> bool {
        false
    }
    fn is_error(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
