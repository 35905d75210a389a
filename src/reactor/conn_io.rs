//! One connection's life in the loop: its readable and writable paths, the callbacks that
//! reach its handler, and its close.
//!
//! ```text
//!   event ──► conn_ready ──(error / hang-up)──► conn_trouble ──► on_writable, read, probe_failure
//!                │
//!                ├─(writable, output waiting)──► on_writable ──► then read
//!                └─(readable) ──► read_input ──► deliver ──► on_data ──► Shared::settle ──► write
//!                                     │                                     │
//!                                     └── EOF / close / limit ──► on_read_end       └── close asked ──► close_now
//!   timers: handler_timer_due ──► on_timer   idle_timer_due ──► close or re-arm   linger_timer_due ──► close_now
//!   jobs:   job_done ──► on_done
//! ```
//!
//! The hot path — a readable event, nothing pending — is `conn_ready` → `read_input` →
//! `deliver` (the handler's `on_data`, inlined) → `Shared::settle` → `Shared::write_staged`,
//! one inlined function; everything rarer is out of line (`#[cold]` where rare).
//! ARCHITECTURE.md ("Design decisions") says why and what it saved.
//!
//! Every callback goes through `callback` (or, for `on_data`, `deliver`) and is followed by
//! a settle, which carries out what the callback asked of the connection's `Life` (whose
//! transitions are all in `life.rs`). This module does not accept
//! connections (`accept.rs`) or decide the order of work in a turn (`turn.rs`).

use std::io;
use std::panic::{self, AssertUnwindSafe};

use super::{Reactor, Ready};
use crate::conn::{Conn, KEEP_BUFFER_BYTES};
use crate::flags::Flags;
use crate::handler::{Cx, Handler, Input};
use crate::life::Life;
use crate::offload::JobError;
use crate::shared::{Shared, TimerOwner};
use crate::stats::Reason;
use crate::timer::{deadline_after, TimerId};
use crate::token::ConnId;
use crate::wire::{Flushed, Recv};

/// How a read loop ended, when it did not simply drain the socket.
pub(super) enum ReadEnd {
    /// The peer sent EOF (the connection's life says so now).
    Eof,
    /// The connection's life changed (a close for the input limit): settle it.
    Settle,
    /// The connection must close.
    Close(Reason),
    /// The connection forwards its input to another one (`forward.rs`).
    Forward,
}

impl<H: Handler> Reactor<H> {
    /// Acts on a connection's readiness: records what the event says, writes pending output
    /// if the socket took some, then reads. The connection is looked up once, and the
    /// common event (readable, perhaps writable, no output pending) goes straight to the
    /// read; errors and hang-ups take the general path, `conn_trouble`.
    #[inline(always)]
    pub(super) fn conn_ready(&mut self, id: ConnId, ready: Ready<'_>) {
        if ready.is_trouble() {
            self.conn_trouble(id, ready);
            return;
        }
        let Reactor { conns, shared, scratch, .. } = self;
        let slot = id.slot();
        let conn = match conns.get_mut(slot) {
            Some(conn) if conn.core.id == id => conn,
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
            self.on_writable(slot);
            self.readable(slot);
        } else if let Some(end) = read_input(conn, shared, scratch, slot) {
            self.on_read_end(slot, end);
        }
    }

    /// `conn_ready` for an event that reports an error or the peer's FIN or hang-up: the
    /// socket is marked readable to the end (so the read surfaces the EOF or the error),
    /// pending output is tried (a write surfaces the error too), and after an error or a
    /// hang-up a connection that is not reading is probed, so a dead one does not keep its
    /// slot.
    #[cold]
    #[inline(never)]
    fn conn_trouble(&mut self, id: ConnId, ready: Ready<'_>) {
        let slot = id.slot();
        let Some(conn) = self.conns.get_mut(slot).filter(|conn| conn.core.id == id) else {
            self.shared.stats.stale_events += 1;
            return;
        };
        let core = &mut conn.core;
        core.flags.insert(Flags::READ_READY | Flags::READ_HANGUP);
        if core.pending_out() > 0 || core.flags.has(Flags::WRITE_BLOCKED) {
            self.on_writable(slot);
        }
        self.readable(slot);
        // An error: a connection that is not reading would never see it (the read that
        // would surface it is not coming), so it is probed now. A hang-up (`EPOLLHUP`) is
        // not an error: once both sides have sent FIN the kernel reports it, with the input
        // before the peer's FIN still in the socket for the read to deliver when reading
        // resumes; a reset leaves an error behind, which the probe finds.
        if ready.is_error() || (ready.is_read_closed() && ready.is_write_closed()) {
            self.probe_failure(slot);
        }
    }

    /// After an error or hang-up event, closes a connection that is not reading (the handler
    /// or backpressure paused it, perhaps just now with the error still unread behind the
    /// data) if its socket holds an error: the read that would surface a reset is not
    /// coming, and a dead connection must not hold its slot until some timer fires. No
    /// error means a half-close or both (the peer's FIN, and ours after `shutdown_write`):
    /// the input still in the socket is read, then `on_eof`, when reading resumes
    /// (regression: `tests/it/half_close.rs`).
    #[cold]
    fn probe_failure(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        if conn.core.wants_read() || conn.core.wants_forward(!conn.input.is_empty()) {
            return;
        }
        let reason = match conn.core.stream.take_error() {
            Ok(Some(e)) | Err(e) => Reason::Error(e.kind()),
            Ok(None) => return,
        };
        log::debug!("conn slot={slot} peer={} failed while paused: {reason}", conn.core.peer);
        self.close_now(slot, reason);
    }

    /// The socket may hold input: reads until it is drained, the handler or backpressure
    /// pauses it, or the per-turn budget is spent (then the rest waits for the next turn).
    /// (The event path, `conn_ready`, calls `read_input` itself, on the connection it has
    /// already looked up.)
    fn readable(&mut self, slot: usize) {
        let Reactor { conns, shared, scratch, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        if let Some(end) = read_input(conn, shared, scratch, slot) {
            self.on_read_end(slot, end);
        }
    }

    /// Deferred work for a connection whose reading was paused, yielded or cut off: input
    /// it already holds is offered first (no readiness event will announce bytes the
    /// reactor already has), then the socket is read.
    pub(super) fn resume_read(&mut self, slot: usize) {
        let conn = &self.conns[slot];
        // (A forwarding connection's held input goes to its partner, through the read.)
        let throttled = conn.core.flags.any(
            Flags::PAUSED_BY_HANDLER
                | Flags::PAUSED_BY_BACKPRESSURE
                | Flags::FORWARDING
                | Flags::PAUSED_BY_PARTNER,
        );
        if !conn.input.is_empty() && conn.core.is_open() && !throttled {
            let Reactor { conns, shared, .. } = self;
            if let Some(reason) = deliver(&mut conns[slot], shared, &[], slot) {
                self.close_now(slot, reason);
            }
        }
        if self.conns.contains(slot) {
            self.readable(slot);
        }
    }

    /// Acts on how a read loop ended, when it did not simply drain the socket.
    pub(super) fn on_read_end(&mut self, slot: usize, end: ReadEnd) {
        match end {
            ReadEnd::Close(reason) => self.close_now(slot, reason),
            ReadEnd::Settle => self.settle_or_close(slot),
            ReadEnd::Eof => match self.conns[slot].core.life {
                life if life.is_open() => self.callback(slot, "on_eof", |handler, cx| handler.on_eof(cx)),
                Life::Lingering { reason } => self.close_now(slot, reason),
                _ => self.settle_or_close(slot),
            },
            ReadEnd::Forward => self.forward_input(slot),
        }
    }

    /// Runs a handler callback for `slot`, then settles the connection.
    pub(super) fn callback<F>(&mut self, slot: usize, name: &'static str, f: F)
    where
        F: FnOnce(&mut H, &mut Cx<'_, H>),
    {
        let Reactor { conns, shared, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        let limit = shared.config.slow_callback;
        let mut cx = Cx::new(&mut conn.core, shared);
        let handler = &mut conn.handler;
        // Don't let one handler's panic take down every other connection. (`on_data`,
        // the per-message callback, is guarded per turn instead: see `run_once`.)
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(handler, &mut cx)));
        if let Some(limit) = limit {
            // One clock read: the callback began at the detector's last reading (the end
            // of the event or callback before it; nothing else runs in between for long).
            let ended = std::time::Instant::now();
            let took = ended.saturating_duration_since(std::mem::replace(&mut shared.clock_mark, ended));
            if took > limit {
                shared.report_slow(took, name, slot, Some(&conn.core.peer));
            }
        }
        if outcome.is_err() {
            self.handler_panicked(slot);
            return;
        }
        // What it wrote goes out at the turn's flush, with everything else written to this
        // connection this turn (`Shared::settle_later`); the write there stamps the activity.
        if let Some(reason) = shared.settle_later(&mut conn.core) {
            self.close_now(slot, reason);
        }
    }

    /// The turn's flush step: writes, once per connection, what the turn's callbacks other
    /// than `on_data` left in its output (`Shared::settle_later`), then settles it (a
    /// shutdown or close may have waited for this). What the kernel does not take waits for
    /// the writable event, and the handler hears of it (`on_drained`) once it has gone.
    pub(super) fn flush_queued(&mut self) {
        let mut queued = std::mem::take(&mut self.shared.flushes);
        for &id in &queued {
            let Some(slot) = self.live_slot(id) else { continue };
            let core = &mut self.conns[slot].core;
            core.flags.remove(Flags::FLUSH_QUEUED);
            if core.pending_out() == 0 || core.flags.has(Flags::WRITE_BLOCKED) {
                // Sent already (a writable event this turn), or waiting for one.
                continue;
            }
            self.shared.stats.batched_writes += 1;
            self.on_writable(slot);
            if let Some(conn) = self.conns.get_mut(slot).filter(|conn| conn.core.id == id) {
                if conn.core.pending_out() > 0 {
                    conn.core.flags.insert(Flags::DRAINED_PENDING);
                }
            }
        }
        // Keep the allocation for the next turn (callbacks run here may have queued more).
        queued.clear();
        if self.shared.flushes.is_empty() {
            self.shared.flushes = queued;
        }
    }

    /// A handler callback panicked: what it staged is dropped and its connection closed.
    pub(super) fn handler_panicked(&mut self, slot: usize) {
        self.shared.discard_staged();
        log::error!("conn slot={slot}: handler panicked; closing the connection");
        self.close_now(slot, Reason::Error(io::ErrorKind::Other));
    }

    /// Settles a connection after a callback (see `Shared::settle`), closing it if asked.
    pub(super) fn settle_or_close(&mut self, slot: usize) {
        let Reactor { conns, shared, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        if let Some(reason) = shared.settle(&mut conn.core) {
            self.close_now(slot, reason);
        }
    }

    /// The socket is writable and output is waiting: writes it; resumes reading below the
    /// low watermark; tells the handler when everything has gone out.
    fn on_writable(&mut self, slot: usize) {
        if self.conns[slot].core.life.is_connecting() {
            self.connect_ready(slot);
            // Output queued while connecting goes out now: this event was the writable edge.
            match self.conns.get(slot) {
                Some(conn) if conn.core.pending_out() > 0 && !conn.core.life.is_connecting() => {}
                _ => return,
            }
        }
        let conn = &mut self.conns[slot];
        let before = conn.core.pending_out();
        // (Called on an error or hang-up event too, which may come before any short write.)
        match self.shared.write_pending(&mut conn.core) {
            Ok((flushed, written)) => {
                let below_low = before - written <= self.shared.config.out_low_watermark;
                if below_low && conn.core.flags.has(Flags::HOLDS_FORWARDERS) {
                    self.release_forwarders(slot);
                }
                let conn = &mut self.conns[slot];
                if below_low && conn.core.flags.has(Flags::PAUSED_BY_BACKPRESSURE) {
                    conn.core.flags.remove(Flags::PAUSED_BY_BACKPRESSURE);
                    // Readiness seen while paused was left unread, and input held from before
                    // the pause was never offered: no event will announce either, so go back
                    // for them (regression: `resume_read_during_backpressure_serves_held_input`).
                    if conn.core.flags.has(Flags::READ_READY) || !conn.input.is_empty() {
                        self.shared.defer_read(&mut conn.core);
                    }
                }
                if flushed == Flushed::All && conn.core.flags.has(Flags::DRAINED_PENDING) {
                    conn.core.flags.remove(Flags::DRAINED_PENDING);
                    if conn.core.is_open() {
                        self.callback(slot, "on_drained", |handler, cx| handler.on_drained(cx));
                        return;
                    }
                }
                self.settle_or_close(slot);
            }
            Err(e) => {
                log::debug!("conn slot={slot} peer={} write failed: {e}", conn.core.peer);
                self.close_now(slot, Reason::Error(e.kind()));
            }
        }
    }

    /// A handler's timer fired: `on_timer`, if its connection is still the one that set it.
    pub(super) fn handler_timer_due(&mut self, conn: ConnId, id: TimerId) {
        match self.live_slot(conn) {
            Some(slot) => {
                self.conns[slot].core.forget_timer(id);
                self.shared.stats.timers_fired += 1;
                self.callback(slot, "on_timer", |handler, cx| handler.on_timer(id, cx));
            }
            None => self.shared.stats.stale_events += 1,
        }
    }

    /// A connection's idle timer fired: closes it if it has been quiet for the whole idle
    /// timeout, else re-arms for the remainder.
    pub(super) fn idle_timer_due(&mut self, id: ConnId) {
        let Some(slot) = self.live_slot(id) else { return };
        let now = self.shared.now;
        let idle = self.shared.config.idle_timeout.expect("cannot fail: idle timers need it");
        let core = &mut self.conns[slot].core;
        // An exempt connection is quiet by design (a subscriber): its timer only re-arms.
        let quiet_since = if core.flags.has(Flags::IDLE_EXEMPT) { now } else { core.last_active };
        if now.duration_since(quiet_since) >= idle {
            core.idle_timer = None;
            log::debug!("conn slot={slot} peer={} idle for {idle:?}", core.peer);
            self.close_now(slot, Reason::IdleTimeout);
        } else {
            // Activity since the timer was armed: re-arm for the remainder rather than
            // touching the heap on every read or write.
            let deadline = deadline_after(quiet_since, idle);
            core.idle_timer = Some(self.shared.timers.insert(deadline, TimerOwner::Idle(id)));
        }
    }

    /// A lingering close has waited long enough for the peer's EOF: close now.
    pub(super) fn linger_timer_due(&mut self, id: ConnId) {
        let Some(slot) = self.live_slot(id) else { return };
        if let Life::Lingering { reason } = self.conns[slot].core.life {
            self.close_now(slot, reason);
        }
    }

    /// An offloaded job finished: `on_done`, if the connection that submitted it still exists.
    pub(super) fn job_done(&mut self, conn: ConnId, result: Result<H::Msg, JobError>) {
        match self.live_slot(conn) {
            Some(slot) => {
                if result.is_err() {
                    self.shared.stats.offload_panics += 1;
                }
                self.shared.stats.offload_completed += 1;
                self.callback(slot, "on_done", |handler, cx| handler.on_done(result, cx));
            }
            // The connection closed while its job ran: drop the result.
            None => self.shared.stats.stale_events += 1,
        }
    }

    /// Closes a connection now: drop the socket, free the slot, tell the handler.
    pub(super) fn close_now(&mut self, slot: usize, reason: Reason) {
        if self.conns[slot].core.flags.has(Flags::HOLDS_FORWARDERS) {
            self.release_forwarders(slot);
        }
        let mut conn = self.conns.take(slot);
        self.shared.slots.release(slot);
        let core = &mut conn.core;
        // Closing a descriptor removes its epoll registration when it is the last copy,
        // which it is for every socket the reactor accepted or connected itself: an
        // `EPOLL_CTL_DEL` first would be a wasted system call per connection. An adopted
        // stream's descriptor may have copies (whoever handed it over may have cloned it),
        // and a registration outliving our close would keep reporting events: deregister
        // those. (Events already fetched for this token fail the generation check.)
        if core.flags.has(Flags::ADOPTED) {
            if let Err(e) = self.poll.registry().deregister(&mut core.stream) {
                log::debug!("conn slot={slot} deregister failed: {e}");
            }
        }
        self.shared.stats.out_buffered -= core.pending_out() as u64;
        self.shared.stats.closed.count(reason);
        self.shared.stats.active -= 1;
        log::debug!("conn slot={slot} peer={} closed: {reason}", core.peer);
        // From here on writes are discarded (it takes no output) and nothing is staged.
        core.life.closed(reason);
        let handler = &mut conn.handler;
        let mut cx = Cx::new(core, &mut self.shared);
        if panic::catch_unwind(AssertUnwindSafe(|| handler.on_close(reason, &mut cx))).is_err() {
            log::error!("conn slot={slot}: handler panicked in on_close");
        }
        self.shared.discard_staged();
        // Its jobs stop: waiting ones are dropped, running ones see the flag.
        if let Some(cancel) = core.cancel.take() {
            cancel.cancel();
            if let Some(pool) = self.shared.offload.pool() {
                pool.cancel(core.id.to_bits());
            }
        }
        // A closed connection's timers would otherwise sit in the heap until their
        // deadlines (perhaps minutes away) only to be dropped as stale; timers `on_close`
        // set go with them.
        for id in
            core.idle_timer.take().into_iter().chain(core.phase_timer.take()).chain(core.timers.drain(..))
        {
            self.shared.timers.cancel(id);
        }
        self.resume_at_capacity();
    }
}

/// Reads from a connection until the socket is drained, the handler or backpressure
/// pauses it, or the per-turn budget is spent (then the rest waits for the next turn).
/// A closing connection's input is read and discarded, so the final close sends a FIN
/// rather than the RST that unread data would cause. Returns how the loop ended when the
/// caller has more to do (`Reactor::on_read_end`).
///
/// This is the hot path: each read is handed to the handler and settled in place. A free
/// function over the parts of the reactor it needs, so the event path can call it on the
/// connection it has already looked up; always inlined into its two callers.
#[inline(always)]
fn read_input<H: Handler>(
    conn: &mut Conn<H>,
    shared: &mut Shared<H, H::Msg>,
    scratch: &mut [u8],
    slot: usize,
) -> Option<ReadEnd> {
    let mut budget = shared.config.read_budget;
    loop {
        // Reading for the handler (`open`), or (closing) to discard.
        let Some(open) = conn.core.read_now() else {
            // Off the hot path: a forwarding connection's input goes to its partner.
            return conn.core.wants_forward(!conn.input.is_empty()).then_some(ReadEnd::Forward);
        };
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
                conn.core.flags.remove(Flags::INPUT_HELD);
                conn.core.life.close(Reason::InputLimit);
                return Some(ReadEnd::Settle);
            }
            // Read no more than the handler may keep, and no more than the output
            // headroom: an echo-like handler then never buffers past the high watermark.
            let headroom = shared.config.out_high_watermark.saturating_sub(conn.core.pending_out()).max(1);
            scratch.len().min(max_input - held).min(headroom)
        };
        // A zero-length read would return Ok(0) and look like EOF.
        debug_assert!(room > 0);
        match conn.core.recv(&mut scratch[..room]) {
            Recv::Eof => return Some(ReadEnd::Eof),
            Recv::Data(n) => {
                shared.stats.bytes_in += n as u64;
                if open {
                    // Only input the handler sees counts as activity: a closing
                    // connection's discarded input must not keep it (and its pending
                    // output) alive past the idle timeout.
                    conn.core.last_active = shared.now;
                    conn.core.flags.insert(Flags::TALKED);
                    if let Some(reason) = deliver(conn, shared, &scratch[..n], slot) {
                        return Some(ReadEnd::Close(reason));
                    }
                } else {
                    // Input after the close was asked for: the peer is still sending.
                    conn.core.flags.insert(Flags::PEER_MAY_SEND);
                }
                // Drained (`recv` saw a short read): nothing more to read until the next
                // edge. (Only an event sets `READ_READY`, so the handler cannot have set it
                // again.)
                if !conn.core.flags.has(Flags::READ_READY) {
                    return None;
                }
                budget = budget.saturating_sub(n);
                if budget == 0 {
                    if conn.core.wants_read() {
                        shared.stats.read_budget_yields += 1;
                        shared.defer_read(&mut conn.core);
                    }
                    return None;
                }
            }
            Recv::Drained => return None,
            Recv::Failed(e) => {
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
/// Always inlined: this is the middle of the per-message hot path (`read_input` → `deliver`
/// → `settle`), and a call boundary here costs more than the rest of the function. A panic
/// in `on_data` unwinds to the turn's guard in `run_once`, which closes this connection;
/// `in_handler` tells it which one.
#[inline(always)]
fn deliver<H: Handler>(
    conn: &mut Conn<H>,
    shared: &mut Shared<H, H::Msg>,
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
    // (The stall detector times `on_data` from the turn, around the whole event: see
    // `Reactor::turn`. A clock read here would sit on the hot path.)
    conn.handler.on_data(&mut input, &mut Cx::new(&mut conn.core, shared));
    shared.in_handler = None;
    let consumed = input.consumed();
    // Keep what the handler did not consume, and only that. `INPUT_HELD` follows it, for
    // `settle` (which sees only the `Core`) to decide on a lingering close.
    if !held {
        if consumed < fresh.len() {
            conn.input.extend_from_slice(&fresh[consumed..]);
            conn.core.flags.insert(Flags::INPUT_HELD);
        }
    } else {
        conn.input.drain(..consumed);
        if conn.input.is_empty() {
            conn.core.flags.remove(Flags::INPUT_HELD);
            if conn.input.capacity() > KEEP_BUFFER_BYTES {
                conn.input = Vec::new();
            }
        }
    }
    debug_assert_eq!(
        conn.core.flags.has(Flags::INPUT_HELD),
        !conn.input.is_empty(),
        "INPUT_HELD mirrors the input"
    );
    shared.settle(&mut conn.core)
}
