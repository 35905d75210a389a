//! Deadlines with cancellable, generation-checked handles.
//!
//! ```text
//! insert(deadline, owner) ─► slab entry {deadline, generation, owner} + heap item (deadline, seq, slot, generation)
//! cancel(id)              ─► slab entry removed; its heap item goes stale and is skipped later
//! pop_expired(now)        ─► heap top, if its deadline has passed and its slab entry is still live
//! ```
//!
//! A binary heap ordered by `(deadline, insertion sequence)` gives O(log n) insert and expiry,
//! and FIFO order among equal deadlines. Cancelling is O(1): it only frees the slab entry, and
//! the orphaned heap item is discarded when it reaches the top, or in a compaction once
//! orphans outnumber live timers (so cancel-heavy workloads cannot grow the heap without
//! bound). A [`TimerId`] carries the entry's generation, so a stale handle — one whose timer
//! fired or was cancelled, its slot since reused — can never cancel somebody else's timer.
//!
//! This module keeps no clock and fires nothing: the reactor asks it what has expired. It is
//! public because it is useful on its own (and so the micro-benchmarks can reach it).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use slab::Slab;

/// Names one timer set with [`Cx::set_timer`](crate::Cx::set_timer); handed back to
/// [`Handler::on_timer`](crate::Handler::on_timer) when it fires.
///
/// An id stays unique for as long as any code could still hold it: once its timer has fired
/// or been cancelled, cancelling it again is a harmless no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    slot: u32,
    generation: u32,
}

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    owner: T,
}

/// One heap item: ordered by deadline, then by insertion order.
type HeapItem = Reverse<(Instant, u64, u32, u32)>;

/// A set of pending deadlines, each tagged with an `owner` the caller uses to route it.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use evloop::timer::Timers;
///
/// let now = Instant::now();
/// let mut timers = Timers::default();
/// let late = timers.insert(now + Duration::from_secs(2), "late");
/// timers.insert(now + Duration::from_secs(1), "soon");
/// timers.cancel(late);
/// let fence = timers.sequence();
/// let fired: Vec<_> = std::iter::from_fn(|| timers.pop_expired(now + Duration::from_secs(5), fence))
///     .map(|(_, owner)| owner)
///     .collect();
/// assert_eq!(fired, ["soon"]);
/// ```
#[derive(Debug)]
pub struct Timers<T> {
    entries: Slab<Entry<T>>,
    heap: BinaryHeap<HeapItem>,
    /// Insertion counter: breaks ties between equal deadlines (FIFO) and lets
    /// [`Timers::pop_expired`] skip timers inserted during the current expiry pass.
    seq: u64,
    /// Source of generations for new entries.
    generation: u32,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { entries: Slab::new(), heap: BinaryHeap::new(), seq: 0, generation: 0 }
    }
}

impl<T> Timers<T> {
    /// Adds a timer that expires at `deadline`.
    pub fn insert(&mut self, deadline: Instant, owner: T) -> TimerId {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let slot = self.entries.insert(Entry { generation, owner });
        // The slab never holds anywhere near 4 billion timers: each one costs memory the
        // process would run out of first.
        let slot = u32::try_from(slot).expect("more than u32::MAX live timers");
        self.seq += 1;
        self.heap.push(Reverse((deadline, self.seq, slot, generation)));
        TimerId { slot, generation }
    }

    /// Cancels a pending timer, returning its owner. `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let slot = id.slot as usize;
        match self.entries.get(slot) {
            Some(entry) if entry.generation == id.generation => {
                let owner = self.entries.remove(slot).owner;
                self.compact_if_sparse();
                Some(owner)
            }
            _ => None,
        }
    }

    /// Cancels a pending timer only if `belongs(owner)` says so; returns whether it did.
    pub fn cancel_if(&mut self, id: TimerId, belongs: impl FnOnce(&T) -> bool) -> bool {
        match self.entries.get(id.slot as usize) {
            Some(entry) if entry.generation == id.generation && belongs(&entry.owner) => {
                self.cancel(id).is_some()
            }
            _ => false,
        }
    }

    /// The earliest live deadline, if any. Drops stale heap items it finds on top.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, _, slot, generation))) = self.heap.peek().copied() {
            if self.is_live(slot, generation) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// The insertion sequence so far; pass it to [`Timers::pop_expired`] to leave timers
    /// added after this point for the next pass.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Removes and returns one timer whose deadline is at or before `now` and that was
    /// inserted at or before sequence `up_to`, earliest first.
    ///
    /// The `up_to` fence matters: a callback that re-arms a zero-length timer while timers
    /// are being fired would otherwise keep this loop busy forever.
    pub fn pop_expired(&mut self, now: Instant, up_to: u64) -> Option<(TimerId, T)> {
        while let Some(Reverse((deadline, seq, slot, generation))) = self.heap.peek().copied() {
            if !self.is_live(slot, generation) {
                self.heap.pop();
                continue;
            }
            if deadline > now || seq > up_to {
                return None;
            }
            self.heap.pop();
            let owner = self.entries.remove(slot as usize).owner;
            return Some((TimerId { slot, generation }, owner));
        }
        None
    }

    /// Live timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Are there no live timers?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn is_live(&self, slot: u32, generation: u32) -> bool {
        matches!(self.entries.get(slot as usize), Some(entry) if entry.generation == generation)
    }

    /// Rebuilds the heap without orphaned items once they outnumber live timers, so that a
    /// workload which sets and cancels timers endlessly keeps the heap proportional to the
    /// number of live timers.
    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.entries.len() {
            let entries = &self.entries;
            self.heap.retain(|Reverse((_, _, slot, generation))| {
                matches!(entries.get(*slot as usize), Some(entry) if entry.generation == *generation)
            });
        }
    }
}

/// `now + after`, saturating to a far-away instant instead of overflowing on huge durations
/// such as `Duration::MAX`.
pub(crate) fn deadline_after(now: Instant, after: Duration) -> Instant {
    const FAR_AWAY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(after.min(FAR_AWAY))
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;
