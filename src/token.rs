//! A connection's identity (`ConnId`), and how a `mio::Token` names what an event is for.
//!
//! ```text
//!   mio::Token(usize) ──decode──► Target::Conn(ConnId { slot, generation }) ─► table[slot], if its generation matches
//!                                 Target::Listener(index)            ─► listeners[index]
//!                                 Target::Source(index)              ─► the embedder's own mio sources
//!                                 Target::Waker                      ─► shutdown flag, offload results
//! ```
//!
//! The two top bits of the token are a tag; the rest is the payload. A connection's payload
//! carries its table slot *and* a generation number, so an event that was queued for a
//! connection that has since closed (and whose slot was handed to a new connection in the same
//! poll batch) decodes to a generation that no longer matches and is dropped as stale. This is
//! nginx's `instance` bit, widened to many bits.
//!
//! A connection's `ConnId` is the same bits as its token, so an id is a token and a token
//! is an id with no arithmetic; `ConnId` is the one identity the reactor stores for a
//! connection (in timers, mail, job tags, forwarding), and the raw token appears only where
//! mio is spoken to. This module only encodes and decodes; it knows nothing about tables or
//! sockets. `ConnId` is re-exported at the crate root; the rest is public only so the
//! micro-benchmarks can reach it (hidden from the docs, not an API).

use std::fmt;

use mio::Token;

/// Bits of a token used for the tag (top two bits).
const TAG_BITS: u32 = 2;
/// Bits of the payload below the tag.
const PAYLOAD_BITS: u32 = usize::BITS - TAG_BITS;
/// Bits of a connection payload used for the table slot; the rest holds the generation.
/// Half of the word: 32 bits of slot (4 billion connections) on 64-bit targets.
const SLOT_BITS: u32 = usize::BITS / 2;
/// Bits left for the generation: 30 on 64-bit targets.
const GENERATION_BITS: u32 = PAYLOAD_BITS - SLOT_BITS;

const TAG_CONN: usize = 0;
const TAG_LISTENER: usize = 1;
const TAG_SOURCE: usize = 2;
const TAG_WAKER: usize = 3;

/// The largest table slot a connection token can name.
pub const MAX_SLOT: usize = (1 << SLOT_BITS) - 1;

/// The token of the reactor's one `mio::Waker`.
pub const WAKER: Token = Token(TAG_WAKER << PAYLOAD_BITS);

/// Identifies a connection for as long as it is open: its slot in the reactor's table and
/// the generation of the connection in that slot, so the id of a closed connection never
/// names the one that reuses its slot. The one identity the reactor keeps for a connection:
/// in its timers, messages, offloaded jobs, forwarding and deferred work alike; its
/// `mio::Token` is the same bits.
///
/// Prints as `#SLOT.GENERATION` (`#3.17`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(usize);

impl ConnId {
    /// The connection in `slot`, of this `generation`.
    pub(crate) fn new(slot: usize, generation: u32) -> ConnId {
        ConnId(conn(slot, generation).0)
    }

    /// Its slot in the reactor's connection table (reused after it closes).
    #[inline]
    pub fn slot(self) -> usize {
        self.0 & MAX_SLOT
    }

    /// Which occupant of its slot it is.
    #[inline]
    pub fn generation(self) -> u32 {
        ((self.0 & ((1 << PAYLOAD_BITS) - 1)) >> SLOT_BITS) as u32
    }

    /// The token its socket is registered with.
    #[inline]
    pub(crate) fn token(self) -> Token {
        Token(self.0)
    }

    /// An id no connection ever has (the waker's bits: its tag is not a connection's), for
    /// a job that belongs to no connection.
    pub(crate) const NONE: ConnId = ConnId(WAKER.0);

    /// The bits an offloaded job is tagged with (the pool knows nothing of connections).
    pub(crate) fn to_bits(self) -> u64 {
        self.0 as u64
    }

    /// The connection a job tag names.
    pub(crate) fn from_bits(bits: u64) -> ConnId {
        ConnId(bits as usize)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot(), self.generation())
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({self})")
    }
}

/// What a token that is not a connection's points at (see [`as_conn`] for those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The listener at this index in the reactor's listener table.
    Listener(usize),
    /// The embedder's source at this index in the reactor's source table.
    Source(usize),
    /// The reactor's waker: another thread asked for attention.
    Waker,
}

/// The service a token names, for a token that [`as_conn`] said is not a connection's.
pub fn service(token: Token) -> Service {
    let payload = token.0 & ((1 << PAYLOAD_BITS) - 1);
    match token.0 >> PAYLOAD_BITS {
        TAG_LISTENER => Service::Listener(payload),
        TAG_SOURCE => Service::Source(payload),
        _ => Service::Waker,
    }
}

/// What an event's token points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A connection, valid only while its slot's generation matches.
    Conn(ConnId),
    /// The listener at this index in the reactor's listener table.
    Listener(usize),
    /// The embedder's source at this index in the reactor's source table.
    Source(usize),
    /// The reactor's waker: another thread asked for attention.
    Waker,
}

/// Wraps a generation counter into the bits a token can carry.
pub fn next_generation(current: u32) -> u32 {
    current.wrapping_add(1) & ((1u64 << GENERATION_BITS.min(32)) - 1) as u32
}

pub fn conn(slot: usize, generation: u32) -> Token {
    debug_assert!(slot <= MAX_SLOT, "slot {slot} does not fit in a token");
    Token((TAG_CONN << PAYLOAD_BITS) | ((generation as usize) << SLOT_BITS) | slot)
}

pub fn listener(index: usize) -> Token {
    Token((TAG_LISTENER << PAYLOAD_BITS) | index)
}

pub fn source(index: usize) -> Token {
    Token((TAG_SOURCE << PAYLOAD_BITS) | index)
}

/// The connection a token names; `None` for any other token. The event loop's fast path:
/// one compare instead of a full `decode`.
#[inline]
pub fn as_conn(token: Token) -> Option<ConnId> {
    if token.0 >> PAYLOAD_BITS == TAG_CONN {
        Some(ConnId(token.0))
    } else {
        None
    }
}

/// What `token` names. Inlined, with the connection case tested first: nearly every event
/// is a connection's, and this way it costs the reactor's dispatch one compare.
#[inline]
pub fn decode(token: Token) -> Target {
    if let Some(id) = as_conn(token) {
        return Target::Conn(id);
    }
    let payload = token.0 & ((1 << PAYLOAD_BITS) - 1);
    match token.0 >> PAYLOAD_BITS {
        TAG_LISTENER => Target::Listener(payload),
        TAG_SOURCE => Target::Source(payload),
        _ => Target::Waker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        for (slot, generation) in [(0, 0), (7, 1), (MAX_SLOT, 12345), (1 << 20, next_generation(u32::MAX))] {
            let id = ConnId::new(slot, generation);
            assert_eq!(decode(conn(slot, generation)), Target::Conn(id));
            assert_eq!((id.slot(), id.generation()), (slot, generation));
            assert_eq!(ConnId::from_bits(id.to_bits()), id);
        }
        assert_eq!(ConnId::new(3, 17).to_string(), "#3.17");
        assert_eq!(decode(listener(3)), Target::Listener(3));
        assert_eq!(decode(source(9)), Target::Source(9));
        assert_eq!(decode(WAKER), Target::Waker);
        assert_eq!(as_conn(conn(MAX_SLOT, 12345)), Some(ConnId::new(MAX_SLOT, 12345)));
        assert_eq!(as_conn(listener(0)), None);
        assert_eq!(as_conn(WAKER), None);
    }

    #[test]
    fn generations_differ_for_the_same_slot() {
        let generation = 41;
        assert_ne!(conn(5, generation), conn(5, next_generation(generation)));
    }

    #[test]
    fn generation_wraps_within_its_bits() {
        let mut generation = (1u32 << GENERATION_BITS.min(31)) - 1;
        generation = next_generation(generation);
        assert_eq!(decode(conn(1, generation)), Target::Conn(ConnId::new(1, generation)));
    }
}
