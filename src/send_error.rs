//! `SendError`: the one error every way of sending returns — `Cx::send`, `Reactor::send` and
//! `Sender::send` (and `Sender::adopt`) — carrying back what could not be sent.
//!
//! ```text
//!   Cx::send / Reactor::send ──► the connection closed, or its slot reused ──► Gone(msg)
//!   Sender::send (another thread) ──► queue full ──► Full(msg); reactor stopped ──► Closed(msg)
//!                                 └─► (a connection that closed is found out on the loop:
//!                                      the message is dropped and counted there)
//! ```
//!
//! It implements `std::error::Error` whatever it carries (its `Debug` names the case, not the
//! value, as `std::sync::mpsc::SendError` does), so `?` turns it into a
//! `Box<dyn Error>` in a handler's helper functions. Its own module so that `handler.rs` and
//! `reactor/` can both name it without importing each other.

use std::fmt;

/// Why a message (or a stream) could not be sent; carries it back.
#[derive(PartialEq, Eq)]
pub enum SendError<T> {
    /// The reactor's queue for other threads is full ([`Config::remote_queue`](crate::Config::remote_queue)):
    /// the loop is behind; try again later.
    Full(T),
    /// The reactor has stopped.
    Closed(T),
    /// The connection it was addressed to is closed (or its slot now holds another
    /// connection): nothing would ever read it. Counted in
    /// [`Stats::messages_dropped`](crate::Stats::messages_dropped).
    Gone(T),
}

impl<T> SendError<T> {
    /// What could not be sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Full(value) | SendError::Closed(value) | SendError::Gone(value) => value,
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("the reactor's queue is full"),
            SendError::Closed(_) => f.write_str("the reactor has stopped"),
            SendError::Gone(_) => f.write_str("the connection is closed"),
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let case = match self {
            SendError::Full(_) => "Full",
            SendError::Closed(_) => "Closed",
            SendError::Gone(_) => "Gone",
        };
        write!(f, "SendError::{case}(..)")
    }
}

impl<T> std::error::Error for SendError<T> {}
