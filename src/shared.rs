//! `Shared`: the part of the loop's state a handler's callback may touch, and the small set
//! of operations it offers — the way mio's `Registry` is all a source sees of a `Poll`.
//!
//! ```text
//!   Cx (handler.rs) ──stage / set_timer / defer_read / offload / send / open──► Shared ◄── reactor/
//!                                                                                 │
//!   clock · staging buffer · timers · deferred queue · stats · offload pool · config ·
//!   slot ids · connections to open · mail for other connections · forwarders waiting ·
//!   the registry (writable interest after a short write)
//!                                                                           │
//!   after every callback the reactor calls ──────────────────────► Shared::settle(core)
//!                         (write what was staged, apply watermarks, carry out a close)
//! ```
//!
//! During a callback the reactor is split in two borrows: the connection table (one
//! connection lent to the handler as `Core`) and this. So a handler can reach its own
//! connection and the loop's services, and nothing else — not the poll, the listeners or
//! other connections. What a callback asks of others (open a connection, send a message)
//! is queued here and carried out by the reactor when the callback returns. This module
//! knows nothing of handlers (it is generic over the handler value and the message type)
//! and nothing of the reactor that owns it: `handler.rs` and `reactor/` both depend on it,
//! never the other way round.
//!
//! `settle` is here, not in the reactor, because the hot path runs it inline right after
//! `on_data` with only these two borrows in hand; it reports a close for the reactor (which
//! owns the table) to carry out; the writing itself is `wire.rs`'s.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Waker};

use crate::config::{Config, Linger};
use crate::conn::Core;
use crate::flags::Flags;
use crate::life::Life;
use crate::offload::{Cancel, Job, OffloadError, OffloadPool};
use crate::slots::SlotIds;
use crate::stats::{Reason, Stats};
use crate::stream::{PeerAddr, Stream};
use crate::timer::{deadline_after, TimerId, Timers};
use crate::token::ConnId;
use crate::wire::{keep, keep_unsent, watch_writable, Flushed};

/// Who a timer belongs to: decides what happens when it fires (see the reactor's
/// `expire_timers`, which reads as this list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerOwner {
    /// Set by a handler: call its `on_timer` (if the connection still exists).
    Handler(ConnId),
    /// A connection's idle timeout.
    Idle(ConnId),
    /// A listener paused by descriptor exhaustion tries `accept` again.
    AcceptRetry(usize),
    /// A lingering close has waited long enough for the peer's EOF.
    Linger(ConnId),
    /// Shutdown's grace period is over: close whatever is left.
    ShutdownDeadline,
    /// An outbound connect has not completed within `Config::connect_timeout`.
    Connect(ConnId),
    /// A reactor-level timer (`Reactor::set_timer`): the key of its callback.
    Loop(usize),
}

/// How a connection came to the reactor: what `install` still has to do to its socket, and
/// whether the reactor owns its descriptor alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Accepted from a listener. `nodelay_inherited`: the listener has `TCP_NODELAY` and the
    /// kernel passes it on to accepted sockets (Linux), so there is no `setsockopt` to make.
    Accepted { nodelay_inherited: bool },
    /// An outbound connect in progress: `on_open` waits for its end, at most `timeout`
    /// (`None`: `Config::connect_timeout`).
    Connecting { timeout: Option<Duration> },
    /// Handed over by the embedder, already connected. Its descriptor may have copies the
    /// reactor does not own (a `try_clone`, a `dup`, a fork), so it is deregistered
    /// explicitly when it closes (`Flags::ADOPTED`).
    Adopted,
}

/// A connection waiting for its slot in the table: accepted (installed at once), or opened
/// by a callback (connect or adopt: its slot is reserved, and the reactor registers it and
/// puts it in the table when the callback returns).
#[derive(Debug)]
pub(crate) struct Opening<H> {
    pub(crate) id: ConnId,
    pub(crate) stream: Stream,
    pub(crate) peer: PeerAddr,
    pub(crate) handler: H,
    pub(crate) origin: Origin,
}

/// Work that could not finish in the turn it started (fairness budgets, resumed reads).
/// While any is queued the next poll does not block.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Deferred {
    /// Read (or re-offer held input to) this connection.
    Read(ConnId),
    /// Accept more from the listener at this index.
    Accept(usize),
}

/// The offload pool's life, which follows the loop's: started on first use, refusing new
/// jobs once shutdown begins (while running ones still report), gone once stopped.
#[derive(Debug)]
pub(crate) enum Offload<D> {
    /// No job was ever submitted: no threads exist.
    NotStarted,
    /// Taking jobs.
    Running(OffloadPool<D>),
    /// Shutdown has begun: new jobs are refused; results of running ones still arrive.
    Draining(OffloadPool<D>),
    /// Stopped (or never started before shutdown): jobs are refused.
    Closed,
}

impl<D: Send + 'static> Offload<D> {
    /// The pool, while it exists.
    pub(crate) fn pool(&self) -> Option<&OffloadPool<D>> {
        match self {
            Offload::Running(pool) | Offload::Draining(pool) => Some(pool),
            Offload::NotStarted | Offload::Closed => None,
        }
    }

    /// Refuses new jobs from now on; running ones still report.
    pub(crate) fn drain(&mut self) {
        *self = match std::mem::replace(self, Offload::Closed) {
            Offload::Running(pool) | Offload::Draining(pool) => Offload::Draining(pool),
            Offload::NotStarted | Offload::Closed => Offload::Closed,
        };
    }

    /// Stops the pool: discards queued jobs, waits for running ones, joins the threads.
    pub(crate) fn close(&mut self) {
        if let Offload::Running(pool) | Offload::Draining(pool) = std::mem::replace(self, Offload::Closed) {
            pool.shutdown();
        }
    }
}

/// Reactor state that handler callbacks may touch through [`Cx`](crate::Cx): everything but
/// the connection table, the listeners and the poll, which the dispatch loop is borrowing.
/// `H` is the handler type (for connections a callback opens), `M` its message type.
#[derive(Debug)]
pub(crate) struct Shared<H, M> {
    /// The loop's clock: the time the current turn started.
    pub(crate) now: Instant,
    /// The stall detector's latest clock reading (`Config::slow_callback`): where the next
    /// timed callback starts, so that each callback costs one clock read, its end, not two.
    pub(crate) clock_mark: Instant,
    /// Output written during the current callback, sent when it returns (see `settle`).
    pub(crate) staging: Vec<u8>,
    pub(crate) timers: Timers<TimerOwner>,
    pub(crate) stats: Stats,
    pub(crate) deferred: VecDeque<Deferred>,
    pub(crate) config: Config,
    pub(crate) waker: Arc<Waker>,
    /// The reactor's registry (a clone): to ask a socket for writable events once a write
    /// comes up short (`watch_writable`).
    pub(crate) registry: Registry,
    pub(crate) offload: Offload<Done<M>>,
    /// The slot whose `on_data` is running: if it panics, the turn's guard closes this one.
    pub(crate) in_handler: Option<usize>,
    /// Which connection slots are taken (see `slots.rs`).
    pub(crate) slots: SlotIds,
    /// Connections opened by callbacks, to register when the callback returns.
    pub(crate) opening: Vec<Opening<H>>,
    /// Messages for connections on this loop, in the order sent: (recipient, message).
    pub(crate) mail: VecDeque<(ConnId, M)>,
    /// Forwarders paused on a partner's full output: (partner, forwarder). Released when the
    /// partner drains or closes (`reactor/forward.rs`); as short as the number of such pairs.
    pub(crate) forward_waits: Vec<(ConnId, ConnId)>,
    /// Connections whose callbacks (other than `on_data`) wrote this turn: their output
    /// waits in `Core::out` and goes out in one write each at the turn's flush step
    /// (`Flags::FLUSH_QUEUED` marks the members).
    pub(crate) flushes: Vec<ConnId>,
    /// Work callbacks handed to the reactor itself (`Cx::defer`), run after the turn's mail
    /// with the whole reactor (`reactor/calls.rs`).
    pub(crate) calls: Vec<LoopCall>,
    /// A graceful drain has begun (`Reactor::drain`): `Cx::going_away` says so.
    pub(crate) going_away: bool,
}

/// What an offloaded job hands back: a connection's message for its `on_done`, or (for a
/// datagram endpoint, which has no message type) a closure to run with the reactor, which
/// finds the endpoint and gives it the result.
pub(crate) enum Done<M> {
    Msg(M),
    Call(Box<SendableCall>),
}

/// An `ErasedCall` that may cross threads (built on a worker, run on the loop).
pub(crate) type SendableCall = dyn FnOnce(&mut dyn std::any::Any) + Send;

impl<M> std::fmt::Debug for Done<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Done::Msg(_) => "Done::Msg",
            Done::Call(_) => "Done::Call",
        })
    }
}

/// A closure for the reactor, from `Cx::defer`. Typed over `dyn Any` because this module
/// cannot name the reactor (it depends on this one); `reactor/calls.rs` wraps the user's
/// closure in a downcast to its own type, so the erasure is invisible on both sides.
pub(crate) struct LoopCall(pub(crate) Box<ErasedCall>);

/// What a `LoopCall` holds: a closure given the reactor as `dyn Any`.
pub(crate) type ErasedCall = dyn FnOnce(&mut dyn std::any::Any);

impl std::fmt::Debug for LoopCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopCall")
    }
}

impl<H, M: Send + 'static> Shared<H, M> {
    pub(crate) fn new(config: Config, waker: Arc<Waker>, registry: Registry) -> Shared<H, M> {
        Shared {
            now: Instant::now(),
            clock_mark: Instant::now(),
            staging: Vec::new(),
            timers: Timers::default(),
            stats: Stats::default(),
            deferred: VecDeque::new(),
            config,
            waker,
            registry,
            offload: Offload::NotStarted,
            in_handler: None,
            slots: SlotIds::default(),
            opening: Vec::new(),
            mail: VecDeque::new(),
            forward_waits: Vec::new(),
            flushes: Vec::new(),
            calls: Vec::new(),
            going_away: false,
        }
    }

    /// Is the connection `id` open (or about to open)?
    #[inline]
    pub(crate) fn is_live(&self, id: ConnId) -> bool {
        self.slots.is_live(id)
    }

    /// Queues `message` for the connection `to`; gives it back if that connection is gone.
    pub(crate) fn post(&mut self, to: ConnId, message: M) -> Result<(), M> {
        if !self.is_live(to) {
            self.stats.messages_dropped += 1;
            return Err(message);
        }
        self.mail.push_back((to, message));
        Ok(())
    }

    /// Reserves a slot for a connection a callback opens and queues it; returns its id.
    pub(crate) fn open_later(
        &mut self,
        stream: Stream,
        peer: PeerAddr,
        handler: H,
        origin: Origin,
    ) -> ConnId {
        let id = self.slots.reserve();
        self.opening.push(Opening { id, stream, peer, handler, origin });
        id
    }

    /// The loop's clock: when the current turn started.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Stages `data` for the connection whose callback is running; `settle` sends it.
    #[inline]
    pub(crate) fn stage(&mut self, data: &[u8]) {
        self.staging.extend_from_slice(data);
    }

    /// Bytes staged by the running callback and not yet sent.
    pub(crate) fn staged_len(&self) -> usize {
        self.staging.len()
    }

    /// Drops what the running callback staged (an abort, or a panic).
    pub(crate) fn discard_staged(&mut self) {
        self.staging.clear();
    }

    /// The loop-stall detector (`Config::slow_callback`): a callback that held the loop
    /// longer than allowed is logged, naming it, its connection and peer, and counted —
    /// the way asyncio's debug mode reports "Executing <Task> took 4.0 seconds".
    #[cold]
    #[inline(never)]
    pub(crate) fn report_slow(
        &mut self,
        took: Duration,
        callback: &str,
        slot: usize,
        peer: Option<&PeerAddr>,
    ) {
        let Some(limit) = self.config.slow_callback else { return };
        if took > limit {
            self.stats.slow_callbacks += 1;
            let peer = peer.map_or_else(|| "(closed since)".to_string(), PeerAddr::to_string);
            log::warn!(
                "conn slot={slot} peer={peer}: {callback} held the loop for {took:?} (limit {limit:?})"
            );
        }
    }

    /// Queues a read (or a re-offer of held input) for the next turn, once per connection.
    pub(crate) fn defer_read(&mut self, core: &mut Core) {
        if !core.flags.has(Flags::READ_DEFERRED) {
            core.flags.insert(Flags::READ_DEFERRED);
            self.deferred.push_back(Deferred::Read(core.id));
        }
    }

    /// Queues `data` behind what the connection already has pending (the slow path of
    /// `Cx::write`; while a connect is in progress, everything queues), or discards it once
    /// the connection takes no more output (a close, abort or write shutdown was asked).
    pub(crate) fn queue_output(&mut self, core: &mut Core, data: &[u8]) -> bool {
        if !core.life.takes_output() {
            return false;
        }
        keep(core, data, &mut self.stats);
        true
    }

    /// Starts a connection's idle clock (`Config::idle_timeout`), when it opens or its
    /// connect completes.
    pub(crate) fn arm_idle_timer(&mut self, core: &mut Core) {
        if let Some(idle) = self.config.idle_timeout {
            let deadline = deadline_after(self.now, idle);
            core.idle_timer = Some(self.timers.insert(deadline, TimerOwner::Idle(core.id)));
        }
    }

    /// Arms a handler timer for the connection `conn`.
    pub(crate) fn set_conn_timer(&mut self, conn: ConnId, after: Duration) -> TimerId {
        self.timers.insert(deadline_after(self.now, after), TimerOwner::Handler(conn))
    }

    /// Cancels `id` if it is a handler timer of the connection `conn`.
    pub(crate) fn cancel_conn_timer(&mut self, conn: ConnId, id: TimerId) -> bool {
        self.timers.cancel_if(id, |owner| *owner == TimerOwner::Handler(conn))
    }

    /// Sends what the current callback staged, straight to the socket; keeps what the
    /// kernel refused in the connection's own output buffer. (What was staged was admitted
    /// by `Cx::write` when nothing was queued ahead; a close asked later in the callback
    /// does not take it back.)
    #[inline(always)]
    pub(crate) fn write_staged(&mut self, core: &mut Core) -> io::Result<()> {
        if self.staging.is_empty() {
            return Ok(());
        }
        // `send_or_keep`, spelled out: the common case tested on the staging buffer itself
        // (through a slice argument it measured 13 instructions more per echoed message).
        let result = match core.send(&self.staging) {
            Ok(n) if n == self.staging.len() => {
                self.stats.bytes_out += n as u64;
                Ok(())
            }
            sent => {
                let Shared { staging, stats, registry, .. } = self;
                keep_unsent(core, staging, sent, stats, registry)
            }
        };
        self.staging.clear();
        result
    }

    /// After a callback: sends what it wrote, applies the watermarks, and carries out the
    /// write shutdown or close it asked for, once the output it waits for is sent. Returns
    /// the reason when the connection must be closed now (the caller owns the table, so it
    /// does the closing).
    ///
    /// Inlined: the common case (a steady connection, everything sent) costs a compare or
    /// two after the `write`; the rest is in [`Shared::settle_rest`].
    #[inline(always)]
    pub(crate) fn settle(&mut self, core: &mut Core) -> Option<Reason> {
        // After `Cx::abort` nothing is staged (it cleared the staging buffer and refuses
        // later writes), so this writes nothing for an aborted connection.
        if let Err(e) = self.write_staged(core) {
            log::debug!("conn {} peer={} write failed: {e}", core.id, core.peer);
            return Some(Reason::Error(e.kind()));
        }
        self.settle_written(core)
    }

    /// [`Shared::settle`] for the callbacks that batch: messages, offload results, timers,
    /// and the connection's other events but `on_data`. What the callback wrote is not
    /// written now but kept in the connection's output, and the connection is queued for
    /// the turn's flush step, so that everything a turn's callbacks write to a connection —
    /// a hundred messages to one subscriber, say — leaves in one `write` (Redis's
    /// `clients_pending_write`, flushed before it sleeps). `on_data` keeps the immediate
    /// write of [`Shared::settle`]: a request's reply goes out in the same system call
    /// pattern as before, and the echo path stays as it was.
    pub(crate) fn settle_later(&mut self, core: &mut Core) -> Option<Reason> {
        if !self.staging.is_empty() {
            let Shared { staging, stats, .. } = self;
            keep(core, staging, stats);
            staging.clear();
        }
        let blocked = core.flags.any(Flags::WRITE_BLOCKED | Flags::FLUSH_QUEUED);
        if core.pending_out() > 0 && !blocked {
            // (A blocked socket's output goes out on its writable event instead.)
            core.flags.insert(Flags::FLUSH_QUEUED);
            self.flushes.push(core.id);
        }
        self.settle_written(core)
    }

    /// What `settle` and `settle_later` do once the output is written or kept: nothing for a
    /// steady connection with nothing pending (checked in debug builds), else the rest.
    #[inline(always)]
    fn settle_written(&mut self, core: &mut Core) -> Option<Reason> {
        if core.pending_out() == 0 && core.life.is_steady() {
            #[cfg(debug_assertions)]
            core.check_consistent();
            return None;
        }
        self.settle_rest(core)
    }

    /// Writes the connection's pending output (`Core::out`) as far as the kernel takes it,
    /// counted, asking for writable events if it came up short: on a writable event
    /// (`on_writable`), at the turn's flush step, and from `Cx::flush` when output of an
    /// earlier callback of the turn is queued ahead. Returns what happened and the bytes
    /// written.
    pub(crate) fn write_pending(&mut self, core: &mut Core) -> io::Result<(Flushed, usize)> {
        let done = core.write_out()?;
        watch_writable(core, &self.registry)?;
        let written = done.1;
        self.stats.out_buffered -= written as u64;
        self.stats.bytes_out += written as u64;
        if written > 0 {
            core.last_active = self.now;
        }
        Ok(done)
    }

    /// The uncommon part of [`Shared::settle`]: output is pending, or a shutdown or close
    /// waits for the flush, or the connection is to close now.
    #[cold]
    #[inline(never)]
    fn settle_rest(&mut self, core: &mut Core) -> Option<Reason> {
        let close = self.settle_state(core);
        #[cfg(debug_assertions)]
        if close.is_none() {
            core.check_consistent();
            let listed = self.forward_waits.iter().any(|&(partner, _)| partner == core.id);
            debug_assert_eq!(
                core.flags.has(Flags::HOLDS_FORWARDERS),
                listed,
                "HOLDS_FORWARDERS mirrors forward_waits"
            );
            let queued = self.flushes.contains(&core.id);
            debug_assert_eq!(core.flags.has(Flags::FLUSH_QUEUED), queued, "FLUSH_QUEUED mirrors flushes");
        }
        close
    }

    /// [`Shared::settle_rest`] without its debug checks.
    fn settle_state(&mut self, core: &mut Core) -> Option<Reason> {
        if let Life::Closing { reason } = core.life {
            return Some(reason);
        }
        let pending = core.pending_out();
        if pending >= self.config.out_high_watermark && !core.flags.has(Flags::PAUSED_BY_BACKPRESSURE) {
            core.flags.insert(Flags::PAUSED_BY_BACKPRESSURE);
            self.stats.backpressure_pauses += 1;
            log::trace!("conn {} peer={} paused: {pending} bytes pending", core.id, core.peer);
        }
        if pending > 0 {
            return None;
        }
        match core.life {
            // Closed before the connect ended, with nothing to send: nobody to say goodbye to.
            Life::Connecting { close: Some(reason), .. } => Some(reason),
            Life::WriteClosing | Life::ReadClosedWriteClosing => {
                core.send_fin();
                None
            }
            Life::Draining { reason, read_closed, write_closed } => {
                // Everything is sent. If the peer may still be sending, linger: FIN, then
                // read and discard until its EOF or a deadline, so unread input does not turn
                // our close into an RST that could destroy the reply in flight (nginx's
                // lingering close). Otherwise close at once: `close` sends the FIN itself.
                if read_closed || !self.should_linger(core, reason) {
                    return Some(reason);
                }
                if !write_closed {
                    core.send_fin();
                }
                core.life.linger();
                self.stats.lingered += 1;
                let deadline = deadline_after(self.now, self.config.linger_timeout);
                core.phase_timer = Some(self.timers.insert(deadline, TimerOwner::Linger(core.id)));
                if core.flags.has(Flags::READ_READY) {
                    self.defer_read(core);
                }
                None
            }
            _ => None,
        }
    }

    /// Does a connection closing for `reason`, with all its output sent and its peer not
    /// finished, linger first? By `Config::linger` (the policies and their risks are
    /// documented on `Linger`). A close the handler did not ask for (an error, a timeout,
    /// shutdown) has no reply to protect.
    fn should_linger(&self, core: &Core, reason: Reason) -> bool {
        match (self.config.linger, reason) {
            (Linger::Off, _) => false,
            (Linger::Always, Reason::Local | Reason::InputLimit) => true,
            // The peer sent more than the handler would keep: it is flooding, still sending.
            (Linger::WhenNeeded, Reason::InputLimit) => true,
            // Input left unconsumed, a socket that may hold more (the last read filled the
            // buffer, or readiness came while reading was paused), input after the close
            // was asked for, or the handler's word for it (`Cx::linger_on_close`).
            (Linger::WhenNeeded, Reason::Local) => {
                core.flags.any(Flags::READ_READY | Flags::INPUT_HELD | Flags::PEER_MAY_SEND)
            }
            _ => false,
        }
    }

    /// Submits a job tagged with the connection's id, cancelled by `cancel`; starts the
    /// pool on first use.
    pub(crate) fn offload(
        &mut self,
        conn: ConnId,
        cancel: Cancel,
        job: Job<Done<M>>,
    ) -> Result<(), OffloadError> {
        if let Offload::NotStarted = self.offload {
            let threads = match self.config.offload_threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            let pool = OffloadPool::new(threads, self.config.offload_queue, Arc::clone(&self.waker))
                .map_err(|e| {
                    log::error!("could not start the offload pool: {e}");
                    OffloadError::Closed
                })?;
            self.offload = Offload::Running(pool);
        }
        let Offload::Running(pool) = &self.offload else { return Err(OffloadError::Closed) };
        let result = pool.submit_cancellable(conn.to_bits(), cancel, job);
        match result {
            Ok(()) => self.stats.offload_submitted += 1,
            Err(_) => self.stats.offload_rejected += 1,
        }
        result
    }
}
