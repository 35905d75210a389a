//! `Ready`: what a readiness event said, converted once at the edge of the loop into a
//! small `Copy` value.
//!
//! ```text
//!   mio::Event ──Ready::of──► Ready (one byte) ──► dispatch(token, ready) ──► conn / listener / source / waker
//! ```
//!
//! Everything after the poll works on `Ready`, never on `mio::Event`, so the whole dispatch
//! path can be driven by tests with events the kernel will not produce on demand (a stale
//! token for a reused slot, spurious readiness), and an embedder's source callback gets the
//! same plain value. This module only converts and answers questions; it decides nothing.

use std::fmt;

use mio::event::Event;

/// The readiness an event reported for one source: a set of a few bits.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready(u8);

impl Ready {
    /// Data (or an EOF, or an error) may be read.
    pub const READABLE: Ready = Ready(1 << 0);
    /// The send buffer has room.
    pub const WRITABLE: Ready = Ready(1 << 1);
    /// The peer finished sending (`EPOLLRDHUP`), or the connection hung up.
    pub const READ_CLOSED: Ready = Ready(1 << 2);
    /// The writing side is closed (with `READ_CLOSED`: `EPOLLHUP`, both directions).
    pub const WRITE_CLOSED: Ready = Ready(1 << 3);
    /// The socket has a pending error (`EPOLLERR`).
    pub const ERROR: Ready = Ready(1 << 4);

    /// The readiness `event` reports.
    #[inline]
    pub fn of(event: &Event) -> Ready {
        // This runs once per event on the hot path, so it asks mio only what the common
        // event needs; the hang-up and error details are read only when one of them is set.
        let mut bits = u8::from(event.is_readable()) | u8::from(event.is_writable()) << 1;
        if event.is_error() || event.is_read_closed() {
            bits |= u8::from(event.is_read_closed()) << 2
                | u8::from(event.is_write_closed()) << 3
                | u8::from(event.is_error()) << 4;
        }
        Ready(bits)
    }

    /// Did the event report readable?
    #[inline]
    pub fn is_readable(self) -> bool {
        self.0 & Ready::READABLE.0 != 0
    }

    /// Did the event report writable?
    #[inline]
    pub fn is_writable(self) -> bool {
        self.0 & Ready::WRITABLE.0 != 0
    }

    /// Has the peer finished sending (or hung up)?
    #[inline]
    pub fn is_read_closed(self) -> bool {
        self.0 & Ready::READ_CLOSED.0 != 0
    }

    /// Is the writing side closed?
    #[inline]
    pub fn is_write_closed(self) -> bool {
        self.0 & Ready::WRITE_CLOSED.0 != 0
    }

    /// Does the socket report an error?
    #[inline]
    pub fn is_error(self) -> bool {
        self.0 & Ready::ERROR.0 != 0
    }

    /// An error or a closed read side: the events that need the careful path.
    #[inline]
    pub(crate) fn is_trouble(self) -> bool {
        self.0 & (Ready::ERROR.0 | Ready::READ_CLOSED.0) != 0
    }
}

impl std::ops::BitOr for Ready {
    type Output = Ready;

    #[inline]
    fn bitor(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 5] = ["READABLE", "WRITABLE", "READ_CLOSED", "WRITE_CLOSED", "ERROR"];
        let set = NAMES.iter().enumerate().filter(|&(bit, _)| self.0 & (1 << bit) != 0).map(|(_, name)| name);
        f.debug_set().entries(set).finish()
    }
}
