//! One connection: its socket, its leftover input, its pending output, and where it is in
//! its life (`life.rs` has the states and their diagram).
//!
//! This module holds the per-connection data and the small operations on it that need no
//! reactor state: the read gates (`wants_read`, `wants_forward`), whether output can go
//! straight to the socket, and flushing the output buffer on a writable event. Reading is
//! gated by the connection's life (does it read, and for whom?) and by independent flags
//! (readiness, and the pauses: the handler's, backpressure's, a yield's, a forwarding
//! partner's). The socket itself is read and written only in `wire.rs`.
//!
//! Memory: an idle connection owns no buffers. Reads land in the reactor's shared read
//! buffer and only an unconsumed remainder is copied into [`Conn::input`]; handler output is
//! staged in a shared buffer and only what the kernel would not take right away is copied
//! into [`Core::out`]. Both are freed once emptied if they grew large during a burst.

use std::time::Instant;

use crate::flags::Flags;
use crate::life::Life;
use crate::stream::{PeerAddr, Stream};
use crate::timer::TimerId;
use crate::token::ConnId;

/// Buffers larger than this are freed, not kept, once they empty: a burst must not leave
/// every connection holding its peak allocation.
pub(crate) const KEEP_BUFFER_BYTES: usize = 4 * 1024;

/// A connection as the reactor stores it: the handler and its leftover input are kept apart
/// from [`Core`] so a callback can borrow all three at once.
#[derive(Debug)]
pub(crate) struct Conn<H> {
    /// The protocol state machine.
    pub(crate) handler: H,
    /// Input the handler has not consumed yet, carried over to the next read. Empty, and
    /// usually unallocated, between messages.
    pub(crate) input: Vec<u8>,
    /// Everything else.
    pub(crate) core: Core,
}

/// The socket and the bookkeeping around it.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) stream: Stream,
    pub(crate) peer: PeerAddr,
    /// Who it is: its slot and generation (its token's bits). An event, timer or message
    /// whose id does not match is stale.
    pub(crate) id: ConnId,
    /// Where the connection is in its life; changed only by `Life`'s transitions.
    pub(crate) life: Life,
    /// Output not yet accepted by the kernel; bytes before `out_sent` are already sent.
    pub(crate) out: Vec<u8>,
    pub(crate) out_sent: usize,
    /// One-bit facts: readiness, pauses, requests (see `flags.rs`).
    pub(crate) flags: Flags,
    /// Last activity, on the loop's cached clock: input handed to the handler, or output the
    /// kernel took (stamped by the read, by a flush that made progress, and after a callback
    /// whose writes went out; not per write on the hot path, where the read already did).
    pub(crate) last_active: Instant,
    /// When it entered the table: a connection silent since then for
    /// `SILENT_RECLAIM_AFTER` may be reclaimed at the connection cap (`accept.rs`).
    pub(crate) opened_at: Instant,
    /// The idle-timeout timer, if `Config::idle_timeout` is set.
    pub(crate) idle_timer: Option<TimerId>,
    /// The deadline of the state the connection is in, if it has one: the connect timeout
    /// while `Connecting`, the linger deadline while `Lingering`.
    pub(crate) phase_timer: Option<TimerId>,
    /// Timers the handler set and that have not fired or been cancelled: cancelled when the
    /// connection closes. Usually empty or tiny, so a `Vec` with linear removal is fine.
    pub(crate) timers: Vec<TimerId>,
    /// Raised when the connection closes, so its offloaded jobs stop: created on the first
    /// `Cx::offload`, shared by all its jobs.
    pub(crate) cancel: Option<crate::offload::Cancel>,
    /// Where input goes while `Flags::FORWARDING` is set: the partner.
    pub(crate) forward: Option<ConnId>,
}

impl Core {
    pub(crate) fn new(stream: Stream, peer: PeerAddr, id: ConnId, life: Life, now: Instant) -> Core {
        Core {
            stream,
            peer,
            id,
            life,
            out: Vec::new(),
            out_sent: 0,
            flags: Flags::default(),
            last_active: now,
            opened_at: now,
            idle_timer: None,
            phase_timer: None,
            timers: Vec::new(),
            cancel: None,
            forward: None,
        }
    }

    /// Drops `id` from the handler timers this connection tracks (it fired or was cancelled).
    pub(crate) fn forget_timer(&mut self, id: TimerId) {
        if let Some(at) = self.timers.iter().position(|&t| t == id) {
            self.timers.swap_remove(at);
        }
    }

    /// Does the handler still hold the connection (no close asked)?
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.life.is_open()
    }

    /// Checks, in debug builds, that the facts kept in two places agree: the flags that
    /// mirror other state, and the life against the timers and flags it implies. Run after
    /// every settle (`Shared::settle`). (`INPUT_HELD`, which mirrors `Conn::input`, is
    /// checked where the input changes hands: `deliver`, after each `on_data`.)
    #[cfg(debug_assertions)]
    pub(crate) fn check_consistent(&self) {
        debug_assert_eq!(
            self.flags.has(Flags::FORWARDING),
            self.forward.is_some(),
            "FORWARDING mirrors `forward`"
        );
        if self.life.is_connecting() {
            debug_assert!(
                self.flags.has(Flags::WRITE_BLOCKED | Flags::WRITE_INTEREST),
                "a connect waits for writable"
            );
            debug_assert!(self.phase_timer.is_some(), "a connect has its deadline");
        }
        if let Life::Lingering { .. } = self.life {
            debug_assert!(self.phase_timer.is_some(), "lingering has its deadline");
            debug_assert_eq!(self.pending_out(), 0, "lingering sends nothing");
        }
        if !self.life.takes_output() && !self.life.is_connecting() {
            // Output may still be pending (flushing before a FIN or close), never growing.
            debug_assert!(self.out_sent <= self.out.len());
        }
    }

    /// Bytes written by the handler and not yet accepted by the kernel.
    pub(crate) fn pending_out(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// Should the reactor read from this socket now, and for whom? It may hold input, and
    /// either the handler takes input and nothing holds reading back (`Some(true)`: input
    /// goes to the handler), or the connection is closing (`Some(false)`: input is read and
    /// discarded, whatever the pauses).
    #[inline]
    pub(crate) fn read_now(&self) -> Option<bool> {
        if self.life.delivers() {
            self.flags.exactly(Flags::READ_READY | Flags::THROTTLED, Flags::READ_READY).then_some(true)
        } else {
            (self.flags.has(Flags::READ_READY) && self.life.reads()).then_some(false)
        }
    }

    /// Should the reactor read from this socket now (for the handler, or to discard)?
    #[inline]
    pub(crate) fn wants_read(&self) -> bool {
        self.read_now().is_some()
    }

    /// Should the reactor forward this connection's input now (`reactor/forward.rs`)? It
    /// forwards, is not paused, and has input: held from before forwarding began (while the
    /// handler still holds the connection), or perhaps in the socket (while it reads for
    /// the handler).
    pub(crate) fn wants_forward(&self, holds_input: bool) -> bool {
        const GATES: Flags = Flags(Flags::FORWARDING.0 | Flags::PAUSED.0);
        self.flags.exactly(GATES, Flags::FORWARDING)
            && if holds_input {
                self.life.is_open() && !self.life.is_connecting()
            } else {
                self.flags.has(Flags::READ_READY) && self.life.delivers()
            }
    }

    /// Can output written now go straight to the socket (through the reactor's staging
    /// buffer), skipping `out`? Only while the connection takes output at once (open, no
    /// close or shutdown asked, not connecting) and nothing is queued ahead of it, so bytes
    /// stay in order.
    #[inline]
    pub(crate) fn can_write_through(&self) -> bool {
        !self.flags.has(Flags::WRITE_BLOCKED) && self.pending_out() == 0 && self.life.writes_through()
    }
}
