//! A connection's life: one enum whose variants say what is true of each direction and of
//! the close, changed only by the transition methods in this file.
//!
//! ```text
//!   Connecting ──connected──► Open ──peer's EOF──► ReadClosed
//!    (requests wait             │                      │
//!     for the connect)    shutdown_write          shutdown_write
//!                               ▼                      ▼
//!                         WriteClosing ──peer's EOF──► ReadClosedWriteClosing
//!                     (output flushing,                (output flushing,
//!                      then our FIN)                    then our FIN)
//!                               │ FIN sent                 │ FIN sent
//!                               ▼                          ▼
//!                         WriteClosed ───peer's EOF──► BothClosed
//!
//!   any of the six above ──close (handler, input limit, shutdown)──► Draining
//!       (output flushing; input read and discarded; then Lingering or closed)
//!   Draining ──all sent, the peer may still send──► Lingering (FIN sent; input discarded
//!       until the peer's EOF or the linger deadline) ──► closed
//!   anything ──abort, or a write failed inside a callback──► Closing (closed when the
//!       callback returns, output discarded)
//!   the reactor closes it (close_now) ──► Closed (`on_close` runs; everything refused)
//! ```
//!
//! Why one enum: the facts used to live in a three-variant phase plus six flags (peer EOF,
//! shutdown requested, write shut, abort requested, write failed, connecting), set from seven
//! files, and nothing kept them consistent; a hang-up while paused was taken for a reset
//! because no single place said "our write side is shut and the peer's FIN is queued". Here
//! every combination that can happen is a variant, the questions the reactor asks
//! ([`Life::delivers`], [`Life::reads`], [`Life::takes_output`], …) are answered in one
//! `match` each, and the tests in this file walk every transition from every state.
//!
//! The six "open" variants are the ones a handler still holds: it has asked for no close.
//! `Connecting` keeps what the handler asks before the connect ends and applies it then.
//!
//! Hot-path cost: `#[repr(u8)]` keeps the tag in the first byte (no niche packing into
//! `Reason`), and the variants are ordered so that the questions asked per message —
//! [`Life::writes_through`], [`Life::is_steady`], [`Life::is_open`] — are ranges of tags from
//! 0 (one compare), where masks of scattered variants cost the echo path ~9 instructions per
//! message (callgrind).

use crate::stats::Reason;

/// Where a connection is in its life. See the module docs for the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Life {
    // The order is the tags' (see "Hot-path cost" above): Open first, then the other states
    // that need nothing from `settle` when their output is sent, so the questions the hot
    // path asks are ranges of tags from 0.
    /// Reading and writing.
    Open,
    /// The peer sent EOF; the connection still writes.
    ReadClosed,
    /// Our FIN is sent; still reading.
    WriteClosed,
    /// The peer's EOF is read and our FIN is sent: nothing more moves either way, until the
    /// handler closes.
    BothClosed,
    /// `shutdown_write` asked: pending output is flushing, then FIN. Still reading.
    WriteClosing,
    /// As `WriteClosing`, after the peer's EOF.
    ReadClosedWriteClosing,
    /// An outbound connect is in progress: nothing is read, writes queue. A write shutdown
    /// or close asked meanwhile is kept here and carried out once the connect ends.
    Connecting { shut_write: bool, close: Option<Reason> },
    /// A close was asked: output is flushing; input is read and discarded (unless the
    /// peer's EOF came already). Then the connection lingers or closes.
    Draining { reason: Reason, read_closed: bool, write_closed: bool },
    /// Output is sent and FIN is out; input is read and discarded until the peer's EOF or
    /// the linger deadline, so that closing does not reset the connection under unread data.
    Lingering { reason: Reason },
    /// To be closed when the current callback returns, output discarded: an abort, or a
    /// write inside the callback failed.
    Closing { reason: Reason },
    /// Closed: out of the table, `on_close` running. Writes, timers and jobs go nowhere.
    Closed { reason: Reason },
}

impl Life {
    /// A new outbound connection.
    pub(crate) fn connecting() -> Life {
        Life::Connecting { shut_write: false, close: None }
    }

    /// Does the handler still hold the connection (it asked for no close)?
    #[inline]
    pub(crate) fn is_open(self) -> bool {
        matches!(
            self,
            Life::Open
                | Life::Connecting { .. }
                | Life::ReadClosed
                | Life::WriteClosing
                | Life::ReadClosedWriteClosing
                | Life::WriteClosed
                | Life::BothClosed
        )
    }

    /// Is an outbound connect still in progress?
    #[inline]
    pub(crate) fn is_connecting(self) -> bool {
        matches!(self, Life::Connecting { .. })
    }

    /// Is input read and handed to the handler (an open connection whose peer still sends)?
    #[inline]
    pub(crate) fn delivers(self) -> bool {
        matches!(self, Life::Open | Life::WriteClosing | Life::WriteClosed)
    }

    /// Is the socket read at all: for the handler, or to discard input while closing?
    #[inline]
    pub(crate) fn reads(self) -> bool {
        match self {
            Life::Open | Life::WriteClosing | Life::WriteClosed | Life::Lingering { .. } => true,
            Life::Draining { read_closed, .. } => !read_closed,
            _ => false,
        }
    }

    /// Has the peer's EOF been read?
    pub(crate) fn read_closed(self) -> bool {
        match self {
            Life::ReadClosed | Life::ReadClosedWriteClosing | Life::BothClosed => true,
            Life::Draining { read_closed, .. } => read_closed,
            _ => false,
        }
    }

    /// Is a write accepted (sent, or queued behind pending output or a connect)?
    #[inline]
    pub(crate) fn takes_output(self) -> bool {
        match self {
            Life::Open | Life::ReadClosed => true,
            Life::Connecting { shut_write, close } => !shut_write && close.is_none(),
            _ => false,
        }
    }

    /// May output go straight to the socket (given nothing is queued ahead of it)?
    #[inline]
    pub(crate) fn writes_through(self) -> bool {
        matches!(self, Life::Open | Life::ReadClosed)
    }

    /// Needs nothing from `settle` once its output is all sent: no shutdown or close is
    /// waiting for the flush.
    #[inline]
    pub(crate) fn is_steady(self) -> bool {
        matches!(self, Life::Open | Life::ReadClosed | Life::WriteClosed | Life::BothClosed)
    }

    /// The reason a close has been decided for, once one has.
    #[cfg(test)]
    pub(crate) fn close_reason(self) -> Option<Reason> {
        match self {
            Life::Draining { reason, .. }
            | Life::Lingering { reason }
            | Life::Closing { reason }
            | Life::Closed { reason } => Some(reason),
            _ => None,
        }
    }

    /// How a close the handler asks for is counted: the peer had finished, or not.
    fn handler_reason(self) -> Reason {
        if self.read_closed() {
            Reason::PeerClosed
        } else {
            Reason::Local
        }
    }

    // ---- transitions -------------------------------------------------------------------

    /// The outbound connect succeeded: what the handler asked meanwhile now applies.
    pub(crate) fn connected(&mut self) {
        if let Life::Connecting { shut_write, close } = *self {
            *self = Life::Open;
            if shut_write {
                self.shutdown_write();
            }
            if let Some(reason) = close {
                self.close(reason);
            }
        }
    }

    /// A read returned EOF: the peer has finished sending.
    pub(crate) fn peer_finished(&mut self) {
        *self = match *self {
            Life::Open => Life::ReadClosed,
            Life::WriteClosing => Life::ReadClosedWriteClosing,
            Life::WriteClosed => Life::BothClosed,
            Life::Draining { reason, write_closed, .. } => {
                Life::Draining { reason, read_closed: true, write_closed }
            }
            other => other,
        };
    }

    /// The handler asked for `shutdown(Write)` once its output is flushed.
    pub(crate) fn shutdown_write(&mut self) {
        *self = match *self {
            Life::Connecting { close, .. } => Life::Connecting { shut_write: true, close },
            Life::Open => Life::WriteClosing,
            Life::ReadClosed => Life::ReadClosedWriteClosing,
            other => other,
        };
    }

    /// FIN has been sent (`shutdown(Write)` done).
    pub(crate) fn fin_sent(&mut self) {
        *self = match *self {
            Life::WriteClosing => Life::WriteClosed,
            Life::ReadClosedWriteClosing => Life::BothClosed,
            Life::Draining { reason, read_closed, .. } => {
                Life::Draining { reason, read_closed, write_closed: true }
            }
            other => other,
        };
    }

    /// The handler closes the connection gracefully (`Cx::close`).
    pub(crate) fn close_by_handler(&mut self) {
        let reason = self.handler_reason();
        self.close(reason);
    }

    /// A graceful close for `reason`: output is flushed first. No effect once a close is
    /// under way (the first reason stands).
    pub(crate) fn close(&mut self, reason: Reason) {
        let (read_closed, write_closed) = match *self {
            Life::Connecting { shut_write, close: None } => {
                *self = Life::Connecting { shut_write, close: Some(reason) };
                return;
            }
            Life::Open | Life::WriteClosing => (false, false),
            Life::ReadClosed | Life::ReadClosedWriteClosing => (true, false),
            Life::WriteClosed => (false, true),
            Life::BothClosed => (true, true),
            _ => return,
        };
        *self = Life::Draining { reason, read_closed, write_closed };
    }

    /// The handler aborts (`Cx::abort`): closed when the callback returns, output discarded.
    pub(crate) fn abort_by_handler(&mut self) {
        let reason = self.handler_reason();
        self.fail(reason);
    }

    /// Close when the callback returns, discarding output, for `reason` (an abort, or a
    /// write that failed inside a callback). No effect once closing or closed.
    pub(crate) fn fail(&mut self, reason: Reason) {
        if !matches!(self, Life::Closing { .. } | Life::Closed { .. }) {
            *self = Life::Closing { reason };
        }
    }

    /// Draining is over, all output sent, and the peer may still send: FIN is (being) sent
    /// and input discarded until its EOF.
    pub(crate) fn linger(&mut self) {
        if let Life::Draining { reason, .. } = *self {
            *self = Life::Lingering { reason };
        }
    }

    /// The reactor closed the connection (`close_now`): only `on_close` is left.
    pub(crate) fn closed(&mut self, reason: Reason) {
        *self = Life::Closed { reason };
    }
}

#[cfg(test)]
mod tests;
