//! The one-bit facts the reactor keeps about a connection, packed into one word.
//!
//! Every message on the hot path asks several of these at once ("may the socket hold data,
//! and is nobody holding reading back?", "can this output go straight to the socket?").
//! As separate `bool`s each question is a load and a branch per fact; in one word it is a
//! mask and a compare. nginx keeps the same facts in C bitfields (`ev->ready`, `ev->eof`, …)
//! for the same reason.
//!
//! The facts and who sets and clears them are documented on the constants below; `Core`
//! (in `conn.rs`) owns the word, and the combined questions live there too. Where the
//! connection is in its life (connecting, half-closed either way, draining, lingering) is
//! not a flag but its `Life` (`life.rs`): flags are readiness, pauses and one-off facts.

use std::fmt;
use std::ops::BitOr;

/// A set of [`Flags`] constants.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags(pub(crate) u32);

impl Flags {
    /// The socket may have unread data (or an unread EOF or error): set by readiness events,
    /// cleared when a read shows the socket drained.
    pub(crate) const READ_READY: Flags = Flags(1 << 0);
    /// The kernel hinted the peer has finished sending (`EPOLLRDHUP`) or the socket has an
    /// error: read until `WouldBlock`/EOF instead of stopping after a short read.
    pub(crate) const READ_HANGUP: Flags = Flags(1 << 1);
    /// The handler asked to stop reading ([`Cx::pause_read`](crate::Cx::pause_read)).
    pub(crate) const PAUSED_BY_HANDLER: Flags = Flags(1 << 2);
    /// Pending output passed the high watermark; reading resumes below the low one.
    pub(crate) const PAUSED_BY_BACKPRESSURE: Flags = Flags(1 << 3);
    /// The handler yielded ([`Cx::yield_now`](crate::Cx::yield_now)): no more input this turn.
    pub(crate) const YIELDED: Flags = Flags(1 << 4);
    /// A read for this connection is already in the deferred queue.
    pub(crate) const READ_DEFERRED: Flags = Flags(1 << 5);
    /// The last `write` returned `WouldBlock` (or was short): wait for a writable event
    /// before writing again.
    pub(crate) const WRITE_BLOCKED: Flags = Flags(1 << 6);
    /// Pending output reached zero after having waited on the socket: call `on_drained`.
    pub(crate) const DRAINED_PENDING: Flags = Flags(1 << 7);
    /// The handler says the connection waits for a new request ([`Cx::set_reusable`](crate::Cx::set_reusable)):
    /// at `max_conns` the reactor may close it to admit a new client.
    pub(crate) const REUSABLE: Flags = Flags(1 << 8);
    /// The handler left input unconsumed (`Conn::input` is not empty): set and cleared by
    /// `deliver`, off the hot path. Evidence for a lingering close (`Linger::WhenNeeded`).
    pub(crate) const INPUT_HELD: Flags = Flags(1 << 9);
    /// Evidence the peer may still send that no other flag shows: input arrived after the
    /// close was asked for (read and discarded while draining), or the handler said so
    /// ([`Cx::linger_on_close`](crate::Cx::linger_on_close)). Never cleared.
    pub(crate) const PEER_MAY_SEND: Flags = Flags(1 << 10);
    /// The stream was adopted: its descriptor may have copies the reactor does not own, so
    /// `close_now` deregisters it before dropping it (closing a descriptor removes its epoll
    /// registration only when it was the last copy).
    pub(crate) const ADOPTED: Flags = Flags(1 << 11);
    /// Input goes straight to another connection ([`Cx::forward_to`](crate::Cx::forward_to)),
    /// not to the handler: set with `Core::forward`, cleared when forwarding stops or finds
    /// its partner gone (`reactor/forward.rs`).
    pub(crate) const FORWARDING: Flags = Flags(1 << 12);
    /// Forwarding paused: the partner's pending output passed the high watermark. Cleared
    /// when the partner drains below the low one, or closes.
    pub(crate) const PAUSED_BY_PARTNER: Flags = Flags(1 << 13);
    /// Some connection forwarding into this one is paused on its output (an entry in
    /// `Shared::forward_waits`): release it when this output drains or this connection closes.
    pub(crate) const HOLDS_FORWARDERS: Flags = Flags(1 << 14);
    /// The socket is registered for writable events as well as readable ones: from the
    /// start for an outbound connect, else since its first short write
    /// (`wire::watch_writable`). Never cleared.
    pub(crate) const WRITE_INTEREST: Flags = Flags(1 << 15);
    /// Output a callback wrote (other than `on_data`) waits in `Core::out` for the turn's
    /// one write per connection (an entry in `Shared::flushes`): set by `Shared::settle_later`,
    /// cleared when the turn's flush step takes the entry.
    pub(crate) const FLUSH_QUEUED: Flags = Flags(1 << 16);
    /// The peer has sent input that reached the handler (or a forwarding partner): the
    /// connection is a session that has talked, never reclaimed as silent (`accept.rs`). Set
    /// by the reads; never cleared.
    pub(crate) const TALKED: Flags = Flags(1 << 17);
    /// The handler exempted the connection from `Config::idle_timeout`
    /// ([`Cx::set_idle_exempt`](crate::Cx::set_idle_exempt)): a subscriber waiting for
    /// publications is quiet by design.
    pub(crate) const IDLE_EXEMPT: Flags = Flags(1 << 18);

    /// Anything that stops an open connection's input from being read right now.
    pub(crate) const PAUSED: Flags = Flags(
        Flags::PAUSED_BY_HANDLER.0
            | Flags::PAUSED_BY_BACKPRESSURE.0
            | Flags::YIELDED.0
            | Flags::PAUSED_BY_PARTNER.0,
    );
    /// Anything that stops an open connection's handler from being given input: a pause,
    /// or forwarding (the input goes elsewhere). One mask, so the hot path asks one question.
    pub(crate) const THROTTLED: Flags = Flags(Flags::PAUSED.0 | Flags::FORWARDING.0);

    /// Are all of `these` set?
    #[inline]
    pub(crate) fn has(self, these: Flags) -> bool {
        self.0 & these.0 == these.0
    }

    /// Is any of `these` set?
    #[inline]
    pub(crate) fn any(self, these: Flags) -> bool {
        self.0 & these.0 != 0
    }

    #[inline]
    pub(crate) fn insert(&mut self, these: Flags) {
        self.0 |= these.0;
    }

    #[inline]
    pub(crate) fn remove(&mut self, these: Flags) {
        self.0 &= !these.0;
    }

    /// Of the flags in `mask`, exactly `these` are set (and the others in `mask` are not).
    #[inline]
    pub(crate) fn exactly(self, mask: Flags, these: Flags) -> bool {
        self.0 & mask.0 == these.0
    }
}

impl BitOr for Flags {
    type Output = Flags;

    #[inline]
    fn bitor(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 19] = [
            "READ_READY",
            "READ_HANGUP",
            "PAUSED_BY_HANDLER",
            "PAUSED_BY_BACKPRESSURE",
            "YIELDED",
            "READ_DEFERRED",
            "WRITE_BLOCKED",
            "DRAINED_PENDING",
            "REUSABLE",
            "INPUT_HELD",
            "PEER_MAY_SEND",
            "ADOPTED",
            "FORWARDING",
            "PAUSED_BY_PARTNER",
            "HOLDS_FORWARDERS",
            "WRITE_INTEREST",
            "FLUSH_QUEUED",
            "TALKED",
            "IDLE_EXEMPT",
        ];
        let set = NAMES.iter().enumerate().filter(|&(bit, _)| self.0 & (1 << bit) != 0).map(|(_, name)| name);
        f.debug_set().entries(set).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_test() {
        let mut flags = Flags::default();
        flags.insert(Flags::READ_READY | Flags::YIELDED);
        assert!(flags.has(Flags::READ_READY));
        assert!(flags.any(Flags::THROTTLED));
        assert!(!flags.has(Flags::THROTTLED));
        assert!(flags.exactly(Flags::READ_READY | Flags::WRITE_BLOCKED, Flags::READ_READY));
        flags.remove(Flags::YIELDED);
        assert!(!flags.any(Flags::THROTTLED));
        assert_eq!(format!("{flags:?}"), r#"{"READ_READY"}"#);
    }
}
