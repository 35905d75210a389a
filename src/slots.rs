//! The connection table, split in two: which slots are taken and by which generation
//! (`SlotIds`, lent to handler callbacks), and the connections themselves (`Table`, kept by
//! the reactor).
//!
//! ```text
//!   Cx::connect / adopt ──► SlotIds::reserve ──► the new ConnId (slot, generation), now
//!                                 │
//!   after the callback ───────────┴──► Table::put(slot, conn) ──► events, mail, timers find it
//!   close ──► Table::take(slot) ──► SlotIds::release(slot)
//! ```
//!
//! Why not one slab: while a callback runs, the reactor has lent one connection of the
//! table to the handler, so nothing can be inserted into the table until it returns. Yet a
//! handler that opens a connection wants its id at once, to send it messages or hand it to
//! a peer. So slot numbers are handed out by `SlotIds`, which is free to borrow, and the
//! connection is put in its reserved slot when the callback returns. `SlotIds` also answers
//! "is this connection still open?" from inside a callback (`Cx::send` refuses a message
//! for a connection that is gone), which the table, borrowed, could not.
//!
//! Freed slots are reused last-in first-out (the most recently freed is the warmest in the
//! cache); a reused slot gets a new generation, so ids of closed connections never match it.

use crate::token::{self, ConnId};

/// Which slots are taken, by which generation, and which are free.
#[derive(Debug, Default)]
pub(crate) struct SlotIds {
    /// The generation of the connection in each slot; `None` for a free slot.
    taken: Vec<Option<u32>>,
    /// Free slots, most recently freed last.
    free: Vec<usize>,
    /// Slots taken now.
    count: usize,
    /// The generation given to the latest reservation.
    generation: u32,
}

impl SlotIds {
    /// Takes a free slot (or a new one) for a connection with a new generation.
    pub(crate) fn reserve(&mut self) -> ConnId {
        self.generation = token::next_generation(self.generation);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.taken.push(None);
            self.taken.len() - 1
        });
        debug_assert!(self.taken[slot].is_none(), "slot {slot} handed out twice");
        self.taken[slot] = Some(self.generation);
        self.count += 1;
        ConnId::new(slot, self.generation)
    }

    /// Frees `slot` for reuse.
    pub(crate) fn release(&mut self, slot: usize) {
        debug_assert!(self.taken[slot].is_some(), "slot {slot} freed twice");
        self.taken[slot] = None;
        self.free.push(slot);
        self.count -= 1;
    }

    /// Is `id`'s slot still taken by that connection?
    #[inline]
    pub(crate) fn is_live(&self, id: ConnId) -> bool {
        self.taken.get(id.slot()).copied().flatten() == Some(id.generation())
    }

    /// How many slots are taken (open connections and ones about to open).
    pub(crate) fn len(&self) -> usize {
        self.count
    }
}

/// The connections, by slot. Slots are chosen by [`SlotIds`]; this only stores.
#[derive(Debug)]
pub(crate) struct Table<T> {
    entries: Vec<Option<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { entries: Vec::new() }
    }
}

impl<T> Table<T> {
    /// Puts `value` in `slot`, which must be empty.
    pub(crate) fn put(&mut self, slot: usize, value: T) {
        if slot >= self.entries.len() {
            self.entries.resize_with(slot + 1, || None);
        }
        debug_assert!(self.entries[slot].is_none(), "slot {slot} is occupied");
        self.entries[slot] = Some(value);
    }

    /// Takes the value out of `slot`.
    ///
    /// # Panics
    ///
    /// If the slot is empty: the reactor only closes connections it holds.
    pub(crate) fn take(&mut self, slot: usize) -> T {
        self.entries[slot].take().expect("cannot fail: taking a connection the table holds")
    }

    #[inline]
    pub(crate) fn get(&self, slot: usize) -> Option<&T> {
        self.entries.get(slot)?.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.entries.get_mut(slot)?.as_mut()
    }

    /// Two different occupied entries at once (a connection and the one it forwards to).
    pub(crate) fn pair_mut(&mut self, a: usize, b: usize) -> Option<(&mut T, &mut T)> {
        if a == b || a.max(b) >= self.entries.len() {
            return None;
        }
        let (low, high) = self.entries.split_at_mut(a.max(b));
        let (first, second) = (low[a.min(b)].as_mut()?, high[0].as_mut()?);
        Some(if a < b { (first, second) } else { (second, first) })
    }

    pub(crate) fn contains(&self, slot: usize) -> bool {
        self.get(slot).is_some()
    }

    /// The occupied slots, in slot order.
    pub(crate) fn slots(&self) -> Vec<usize> {
        self.entries.iter().enumerate().filter(|(_, e)| e.is_some()).map(|(slot, _)| slot).collect()
    }

    /// The occupied entries with their slots.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries.iter().enumerate().filter_map(|(slot, e)| e.as_ref().map(|v| (slot, v)))
    }
}

impl<T> std::ops::Index<usize> for Table<T> {
    type Output = T;
    fn index(&self, slot: usize) -> &T {
        self.get(slot).expect("cannot fail: indexing a connection the table holds")
    }
}

impl<T> std::ops::IndexMut<usize> for Table<T> {
    fn index_mut(&mut self, slot: usize) -> &mut T {
        self.get_mut(slot).expect("cannot fail: indexing a connection the table holds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_reuse_with_new_generation() {
        let mut ids = SlotIds::default();
        let a = ids.reserve();
        let b = ids.reserve();
        assert_ne!(a.slot(), b.slot());
        assert_eq!(ids.len(), 2);
        ids.release(a.slot());
        assert!(!ids.is_live(a));
        let c = ids.reserve();
        assert_eq!(c.slot(), a.slot(), "the freed slot is reused");
        assert_ne!(c.generation(), a.generation(), "with a new generation");
        assert!(ids.is_live(c) && !ids.is_live(a));
        assert!(!ids.is_live(ConnId::new(99, c.generation())));
    }

    #[test]
    fn table_puts_and_takes() {
        let mut table = Table::default();
        table.put(3, "x");
        assert!(table.contains(3) && !table.contains(0) && !table.contains(9));
        assert_eq!(table.slots(), vec![3]);
        table.put(1, "y");
        assert_eq!(table.pair_mut(3, 1), Some((&mut "x", &mut "y")), "in the order asked");
        assert_eq!(table.pair_mut(1, 3), Some((&mut "y", &mut "x")));
        assert_eq!(table.pair_mut(3, 3), None, "one entry is not a pair");
        assert_eq!(table.pair_mut(3, 0), None, "an empty slot");
        assert_eq!(table.pair_mut(3, 99), None, "past the end");
        assert_eq!(table.take(3), "x");
        assert!(table.get(3).is_none());
    }
}
