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
//!   Closing ── all sent, peer still sending ──► Lingering (FIN sent; input discarded)
//!                                                 ── peer EOF / linger deadline ──► Closed
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
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use crate::stats::Reason;
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
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    /// Matches the generation in this connection's token; a mismatch means a stale event.
    pub(crate) generation: u32,
    pub(crate) phase: Phase,
    /// Output not yet accepted by the kernel; bytes before `out_sent` are already sent.
    pub(crate) out: Vec<u8>,
    pub(crate) out_sent: usize,
    /// The last `write` returned `WouldBlock`: wait for a writable event before writing again.
    pub(crate) write_blocked: bool,
    /// The socket may have unread data (or an unread EOF or error): set by readiness events,
    /// cleared when a read shows the socket drained.
    pub(crate) read_ready: bool,
    /// The kernel hinted the peer has finished sending (`EPOLLRDHUP`) or the socket has an
    /// error: read until `WouldBlock`/EOF instead of stopping after a short read.
    pub(crate) read_hangup: bool,
    /// The handler asked to stop reading ([`Cx::pause_read`](crate::Cx::pause_read)).
    pub(crate) paused_by_handler: bool,
    /// Pending output passed the high watermark; reading resumes below the low one.
    pub(crate) paused_by_backpressure: bool,
    /// The peer sent EOF: nothing more will be read.
    pub(crate) peer_eof: bool,
    /// The handler asked for `shutdown(Write)` once pending output is flushed.
    pub(crate) shutdown_write_requested: bool,
    /// `shutdown(Write)` has been done: writes are discarded.
    pub(crate) write_shut: bool,
    /// Discard pending output and close at the end of the current callback.
    pub(crate) abort_requested: bool,
    /// Last time bytes moved in either direction (the loop's cached clock).
    pub(crate) last_active: Instant,
    /// The idle-timeout timer, if `Config::idle_timeout` is set.
    pub(crate) idle_timer: Option<TimerId>,
    /// The lingering-close deadline, while lingering.
    pub(crate) linger_timer: Option<TimerId>,
    /// Timers the handler set and that have not fired or been cancelled: cancelled when the
    /// connection closes. Usually empty or tiny, so a `Vec` with linear removal is fine.
    pub(crate) timers: Vec<TimerId>,
    /// A read for this connection is already in the deferred queue.
    pub(crate) read_deferred: bool,
    /// The handler yielded ([`Cx::yield_now`](crate::Cx::yield_now)): no more input this turn.
    pub(crate) yielded: bool,
    /// Pending output reached zero after having waited on the socket: call `on_drained`.
    pub(crate) drained_pending: bool,
    /// A write inside a callback ([`Cx::flush`](crate::Cx::flush)) failed: close with this.
    pub(crate) failed: Option<io::ErrorKind>,
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
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr, generation: u32, now: Instant) -> Core {
        Core {
            stream,
            peer,
            generation,
            phase: Phase::Open,
            out: Vec::new(),
            out_sent: 0,
            write_blocked: false,
            read_ready: false,
            read_hangup: false,
            paused_by_handler: false,
            paused_by_backpressure: false,
            peer_eof: false,
            shutdown_write_requested: false,
            write_shut: false,
            abort_requested: false,
            last_active: now,
            idle_timer: None,
            linger_timer: None,
            timers: Vec::new(),
            read_deferred: false,
            yielded: false,
            drained_pending: false,
            failed: None,
        }
    }

    /// Drops `id` from the handler timers this connection tracks (it fired or was cancelled).
    pub(crate) fn forget_timer(&mut self, id: TimerId) {
        if let Some(at) = self.timers.iter().position(|&t| t == id) {
            self.timers.swap_remove(at);
        }
    }

    /// Bytes written by the handler and not yet accepted by the kernel.
    pub(crate) fn pending_out(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// Should the reactor read from this socket now?
    pub(crate) fn wants_read(&self) -> bool {
        let throttled = self.paused_by_handler || self.paused_by_backpressure || self.yielded;
        // Closing connections read (and discard) regardless of pauses.
        self.read_ready && !self.peer_eof && (self.phase != Phase::Open || !throttled)
    }

    /// Can new output go straight to the socket, skipping `out`? Only when nothing is queued
    /// ahead of it, so bytes stay in order.
    pub(crate) fn can_write_through(&self) -> bool {
        self.pending_out() == 0 && !self.write_blocked
    }

    /// Writes `data` to the socket until done or `WouldBlock`; returns the bytes written.
    /// `Interrupted` is retried. Any other error is returned for the caller to close on.
    pub(crate) fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < data.len() {
            match self.stream.write(&data[written..]) {
                // A stream socket accepts at least one byte or reports an error; treat a
                // zero-length write like a full buffer rather than looping on it.
                Ok(0) => {
                    self.write_blocked = true;
                    break;
                }
                Ok(n) => {
                    written += n;
                    // A short write means the send buffer is full. The kernel has noted that
                    // (SOCK_NOSPACE) and will report the next writable edge, so skip the
                    // extra `write` that would only return `WouldBlock`.
                    if written < data.len() {
                        self.write_blocked = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Flushes `out` as far as the kernel allows; returns what happened and the bytes written.
    pub(crate) fn flush_out(&mut self) -> io::Result<(Flushed, usize)> {
        self.write_blocked = false;
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
