//! One connection: its socket, its leftover input, its pending output, and where it is in
//! its life.
//!
//! ```text
//!             accept
//!               │
//!               ▼            cx.close() / shutdown            output drained, or
//!   ┌──────► Open ─────────────────────────────► Closing ──── deadline / error ───┐
//!   │          │  ▲                             (no more reads;                   ▼
//!   │   read   │  │ handler consumed            flushing output)               Closed
//!   └──────────┘  │ input, wrote output                                  (slot freed, on_close)
//!                 │                                                             ▲
//!   Open ─── I/O error, cx.abort(), idle timeout, input limit ─────────────────┘
//!
//!   Closing ── all sent, peer may still send (`Config::linger`) ──► Lingering (FIN sent;
//!              input discarded) ── peer EOF / linger deadline ──► Closed
//!   Closing ── all sent, nothing says the peer will send ──► Closed (at once)
//! ```
//!
//! Transitions are driven by the reactor; this module holds the per-connection data and the
//! small operations on it that need no reactor state (flushing the output buffer, the
//! read gates). Reading is gated by independent flags, so the reactor only reads when the
//! socket may hold data, the handler wants input (not paused, not yielded for this turn),
//! and the peer is not being throttled for not reading its replies.
//!
//! Memory: an idle connection owns no buffers. Reads land in the reactor's shared read
//! buffer and only an unconsumed remainder is copied into [`Conn::input`]; handler output is
//! staged in a shared buffer and only what the kernel would not take right away is copied
//! into [`Core::out`]. Both are freed once emptied if they grew large during a burst.

use std::io::{self, Write};
use std::time::Instant;

use mio::Token;

use crate::flags::Flags;
use crate::platform::SHORT_WRITE_FILLS;
use crate::stats::Reason;
use crate::stream::{PeerAddr, Stream};
use crate::timer::TimerId;

/// Buffers larger than this are freed, not kept, once they empty: a burst must not leave
/// every connection holding its peak allocation.
pub(crate) const KEEP_BUFFER_BYTES: usize = 4 * 1024;

/// Where a connection is in its life (the `Closed` state is "removed from the slab").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and writing.
    Open,
    /// Pending output is being flushed; input is read and discarded. Then the connection
    /// closes with `reason`, or lingers.
    Closing { reason: Reason },
    /// Output is sent and FIN is out; input is read and discarded until the peer's EOF or
    /// the linger deadline, so that closing does not reset the connection under unread data.
    Lingering { reason: Reason },
}

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
    /// Matches the generation in this connection's token; a mismatch means a stale event.
    pub(crate) generation: u32,
    pub(crate) phase: Phase,
    /// Output not yet accepted by the kernel; bytes before `out_sent` are already sent.
    pub(crate) out: Vec<u8>,
    pub(crate) out_sent: usize,
    /// One-bit facts: readiness, pauses, requests (see `flags.rs`).
    pub(crate) flags: Flags,
    /// Last activity, on the loop's cached clock: input handed to the handler, or output the
    /// kernel took (stamped by the read, by a flush that made progress, and after a callback
    /// whose writes went out; not per write on the hot path, where the read already did).
    pub(crate) last_active: Instant,
    /// The idle-timeout timer, if `Config::idle_timeout` is set.
    pub(crate) idle_timer: Option<TimerId>,
    /// The deadline of the phase the connection is in, if it has one: the connect timeout
    /// while connecting (`Flags::CONNECTING`), the linger deadline while lingering.
    pub(crate) phase_timer: Option<TimerId>,
    /// Timers the handler set and that have not fired or been cancelled: cancelled when the
    /// connection closes. Usually empty or tiny, so a `Vec` with linear removal is fine.
    pub(crate) timers: Vec<TimerId>,
    /// Raised when the connection closes, so its offloaded jobs stop: created on the first
    /// `Cx::offload`, shared by all its jobs.
    pub(crate) cancel: Option<crate::offload::Cancel>,
    /// A write inside a callback ([`Cx::flush`](crate::Cx::flush)) failed: close with this.
    /// (Set together with `Flags::WRITE_FAILED`, which the hot path tests.)
    pub(crate) failed: Option<io::ErrorKind>,
    /// Where input goes while `Flags::FORWARDING` is set: the partner's token.
    pub(crate) forward: Option<Token>,
}

/// What a flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything pending was written.
    All,
    /// The kernel's send buffer is full; wait for a writable event.
    Blocked,
}

impl Core {
    pub(crate) fn new(stream: Stream, peer: PeerAddr, generation: u32, now: Instant) -> Core {
        Core {
            stream,
            peer,
            generation,
            phase: Phase::Open,
            out: Vec::new(),
            out_sent: 0,
            flags: Flags::default(),
            last_active: now,
            idle_timer: None,
            phase_timer: None,
            timers: Vec::new(),
            cancel: None,
            failed: None,
            forward: None,
        }
    }

    /// Drops `id` from the handler timers this connection tracks (it fired or was cancelled).
    pub(crate) fn forget_timer(&mut self, id: TimerId) {
        if let Some(at) = self.timers.iter().position(|&t| t == id) {
            self.timers.swap_remove(at);
        }
    }

    /// Is the connection still in its `Open` phase?
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// Starts a graceful close (`Cx::close`): no more input for the handler; pending output
    /// is flushed first. The reason says whether the peer had finished already.
    pub(crate) fn begin_close(&mut self) {
        if self.is_open() {
            let reason = if self.flags.has(Flags::PEER_EOF) { Reason::PeerClosed } else { Reason::Local };
            self.phase = Phase::Closing { reason };
        }
    }

    /// Bytes written by the handler and not yet accepted by the kernel.
    pub(crate) fn pending_out(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// Should the reactor read from this socket now?
    pub(crate) fn wants_read(&self) -> bool {
        // Closing connections read (and discard) regardless of pauses.
        self.flags.exactly(Flags::READ_READY | Flags::PEER_EOF, Flags::READ_READY)
            && (!self.flags.any(Flags::THROTTLED) || !self.is_open())
    }

    /// Should the reactor forward this connection's input now (`reactor/forward.rs`)? It
    /// is open, forwarding, not paused, and has input: held from before forwarding began,
    /// or perhaps in the socket.
    pub(crate) fn wants_forward(&self, holds_input: bool) -> bool {
        const GATES: Flags = Flags(Flags::FORWARDING.0 | Flags::PAUSED.0);
        self.flags.exactly(GATES, Flags::FORWARDING)
            && self.is_open()
            && (holds_input || self.flags.exactly(Flags::READ_READY | Flags::PEER_EOF, Flags::READ_READY))
    }

    /// Can output written now go straight to the socket (through the reactor's staging
    /// buffer), skipping `out`? Only while the connection is open with no close or shutdown
    /// asked for, and nothing is queued ahead of it, so bytes stay in order.
    #[inline]
    pub(crate) fn can_write_through(&self) -> bool {
        const STOPPERS: Flags =
            Flags(Flags::WRITE_BLOCKED.0 | Flags::SHUTDOWN_WRITE_REQUESTED.0 | Flags::ABORT_REQUESTED.0);
        !self.flags.any(STOPPERS) && self.pending_out() == 0 && self.is_open()
    }

    /// Writes `data` to the socket until done or `WouldBlock`; returns the bytes written.
    /// `Interrupted` is retried. Any other error is returned for the caller to close on.
    pub(crate) fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < data.len() {
            match (&self.stream).write(&data[written..]) {
                // A stream socket accepts at least one byte or reports an error; treat a
                // zero-length write like a full buffer rather than looping on it.
                Ok(0) => {
                    self.flags.insert(Flags::WRITE_BLOCKED);
                    break;
                }
                Ok(n) => {
                    written += n;
                    // A short write means the send buffer is full. The kernel has noted that
                    // (SOCK_NOSPACE) and will report the next writable edge, so skip the
                    // extra `write` that would only return `WouldBlock` (where the kernel
                    // promises it: `platform::SHORT_WRITE_FILLS`; elsewhere write on).
                    if SHORT_WRITE_FILLS && written < data.len() {
                        self.flags.insert(Flags::WRITE_BLOCKED);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.flags.insert(Flags::WRITE_BLOCKED);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Writes `out` as far as the kernel allows (on a writable event); returns what happened and the bytes written.
    pub(crate) fn write_out(&mut self) -> io::Result<(Flushed, usize)> {
        self.flags.remove(Flags::WRITE_BLOCKED);
        let mut out = std::mem::take(&mut self.out);
        let result = self.write_some(&out[self.out_sent..]);
        let written = match result {
            Ok(n) => n,
            Err(e) => {
                self.out = out;
                return Err(e);
            }
        };
        self.out_sent += written;
        let flushed = if self.out_sent == out.len() {
            out.clear();
            if out.capacity() > KEEP_BUFFER_BYTES {
                out = Vec::new();
            }
            self.out_sent = 0;
            Flushed::All
        } else {
            // Reclaim the sent prefix once it is the larger part, so `out` does not creep.
            if self.out_sent > out.len() / 2 {
                out.drain(..self.out_sent);
                self.out_sent = 0;
            }
            Flushed::Blocked
        };
        self.out = out;
        Ok((flushed, written))
    }
}
