//! `Ready`: what a readiness event said, as a small `Copy` value the whole dispatch path
//! works on — made from a polled `mio::Event`, or built by a test.
//!
//! ```text
//!   mio::Event ──Ready::of──► Ready ──► dispatch(token, ready) ──► conn / listener / source / waker
//!   a test ─────Ready::READABLE | Ready::WRITABLE ──┘
//! ```
//!
//! Everything after the poll works on `Ready`, so tests drive the very same `dispatch` with
//! events the kernel will not produce on demand (a stale token for a reused slot, spurious
//! readiness), and an embedder's source callback gets the same plain value.
//!
//! Why it wraps the event instead of copying its flags into bits: the questions are asked
//! of the event only where the path needs them, the way the compiler can fold them into
//! the tests that follow. Copying five answers into a byte up front and testing the byte
//! again was measured at 14 more user-space instructions per echoed message (BENCHMARKS.md,
//! the hot path), against a budget of 200. A `Ready` made from an event is one pointer; the
//! "which kind" check folds away where it is made, so the real path pays nothing for it.

use std::fmt;

use mio::event::Event;

/// The readiness an event reported for one source.
#[derive(Clone, Copy)]
pub struct Ready<'a> {
    /// The polled event, asked lazily; `None` for a readiness built from the constants.
    event: Option<&'a Event>,
    /// For a built readiness: which of the constants' bits are set.
    bits: u8,
}

impl Ready<'static> {
    /// Data (or an EOF, or an error) may be read.
    pub const READABLE: Ready<'static> = Ready { event: None, bits: 1 << 0 };
    /// The send buffer has room.
    pub const WRITABLE: Ready<'static> = Ready { event: None, bits: 1 << 1 };
    /// The peer finished sending (`EPOLLRDHUP`), or the connection hung up.
    pub const READ_CLOSED: Ready<'static> = Ready { event: None, bits: 1 << 2 };
    /// The writing side is closed (with `READ_CLOSED`: `EPOLLHUP`, both directions).
    pub const WRITE_CLOSED: Ready<'static> = Ready { event: None, bits: 1 << 3 };
    /// The socket has a pending error (`EPOLLERR`).
    pub const ERROR: Ready<'static> = Ready { event: None, bits: 1 << 4 };
}

impl<'a> Ready<'a> {
    /// The readiness `event` reports.
    #[inline]
    pub fn of(event: &'a Event) -> Ready<'a> {
        Ready { event: Some(event), bits: 0 }
    }

    #[inline]
    fn ask(self, bit: u8, question: fn(&Event) -> bool) -> bool {
        match self.event {
            Some(event) => question(event),
            None => self.bits & bit != 0,
        }
    }

    /// Did the event report readable?
    #[inline]
    pub fn is_readable(self) -> bool {
        self.ask(Ready::READABLE.bits, Event::is_readable)
    }

    /// Did the event report writable?
    #[inline]
    pub fn is_writable(self) -> bool {
        self.ask(Ready::WRITABLE.bits, Event::is_writable)
    }

    /// Has the peer finished sending (or hung up)?
    #[inline]
    pub fn is_read_closed(self) -> bool {
        self.ask(Ready::READ_CLOSED.bits, Event::is_read_closed)
    }

    /// Is the writing side closed?
    #[inline]
    pub fn is_write_closed(self) -> bool {
        self.ask(Ready::WRITE_CLOSED.bits, Event::is_write_closed)
    }

    /// Does the socket report an error?
    #[inline]
    pub fn is_error(self) -> bool {
        self.ask(Ready::ERROR.bits, Event::is_error)
    }

    /// An error or a closed read side: the events that need the careful path.
    #[inline]
    pub(crate) fn is_trouble(self) -> bool {
        self.is_error() || self.is_read_closed()
    }

    /// The answers as bits, in the constants' layout.
    fn bits(self) -> u8 {
        let answers = [
            self.is_readable(),
            self.is_writable(),
            self.is_read_closed(),
            self.is_write_closed(),
            self.is_error(),
        ];
        answers.iter().enumerate().fold(0, |bits, (bit, &yes)| bits | (u8::from(yes) << bit))
    }
}

impl<'a> std::ops::BitOr for Ready<'a> {
    type Output = Ready<'a>;

    /// Both readinesses at once (for building test events).
    fn bitor(self, other: Ready<'a>) -> Ready<'a> {
        Ready { event: None, bits: self.bits() | other.bits() }
    }
}

impl PartialEq for Ready<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.bits() == other.bits()
    }
}

impl Eq for Ready<'_> {}

impl fmt::Debug for Ready<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 5] = ["READABLE", "WRITABLE", "READ_CLOSED", "WRITE_CLOSED", "ERROR"];
        let bits = self.bits();
        let set = NAMES.iter().enumerate().filter(|&(bit, _)| bits & (1 << bit) != 0).map(|(_, name)| name);
        f.debug_set().entries(set).finish()
    }
}
