//! The keyspace: string keys to string values, each with an optional deadline, expired the
//! way Redis expires keys — lazily when a command touches them, and by a sampling sweep.
//!
//! ```text
//!  commands ──read / update / set / remove──► map: key → Entry { value, deadline? }
//!                 │ (an entry past its deadline is removed here and reported absent)
//!  sweep(now, budget) ──random samples──► volatile: [key with a deadline] ──► map.remove
//! ```
//!
//! **Lazy expiry** alone is exact — no command ever sees an expired key — but leaves keys
//! nobody asks for again in memory forever. **The sweep** reclaims them the way Redis's
//! `activeExpireCycle` does: sample up to 20 random keys among those with a deadline, remove
//! the expired ones, and go on while more than a quarter of a sample was expired, within a
//! budget of samples. Its cost is bounded per call, and it converges to "at most about a
//! quarter of the volatile keys are expired garbage". To sample at random, the keys with a
//! deadline are also kept in a vector (`volatile`); each entry knows its index there, so
//! removing one is a `swap_remove` plus one index fix.
//!
//! The map uses std's SipHash with a random per-process key, as Redis uses SipHash: key
//! names come from clients, and a predictable hash lets a client make every key collide.
//!
//! A store belongs to one reactor thread; connections share it as `Rc<RefCell<Store>>`
//! (see `main.rs`), so it needs no lock.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Keys sampled per sweep round (Redis: `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`, 20).
const SAMPLE: usize = 20;

/// A value's slot: its bytes, and its deadline if it has one.
#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expiry: Option<Expiry>,
}

#[derive(Debug, Clone, Copy)]
struct Expiry {
    at: Instant,
    /// Index of this key in `Store::volatile`.
    slot: usize,
}

impl Entry {
    fn is_due(&self, now: Instant) -> bool {
        self.expiry.is_some_and(|e| e.at <= now)
    }
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No deadline (plain `SET`, `MSET`).
    Clear,
    /// Keep the deadline the key has (`SET ... KEEPTTL`).
    Keep,
    /// Expire at this instant (`SET ... EX`, `PX`).
    At(Instant),
}

/// The keyspace of one reactor.
#[derive(Debug)]
pub struct Store {
    map: HashMap<Box<[u8]>, Entry>,
    /// The keys that have a deadline, in no order, for sampling. A second copy of each
    /// such key's name: simpler than sharing it with the map, and only volatile keys pay.
    volatile: Vec<Box<[u8]>>,
    /// xorshift state for sampling.
    rng: u64,
    /// Keys removed because their deadline passed (lazily or by the sweep), for INFO.
    pub expired: u64,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        // A random seed without a dependency: std's RandomState is randomly keyed.
        let seed = RandomState::new().build_hasher().finish() | 1;
        Store { map: HashMap::new(), volatile: Vec::new(), rng: seed, expired: 0 }
    }

    /// Keys held, including expired ones no command or sweep has collected yet (Redis's
    /// `DBSIZE` counts those too).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keys that have a deadline.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Runs `f` on the live entry for `key`; an expired entry is removed first and the key
    /// reported absent. The one place lazy expiry happens.
    ///
    /// A closure rather than returning `&mut Entry`: returning the reference from one arm
    /// of the lookup and removing in the other is a borrow the compiler rejects, and looking
    /// the key up twice would cost a second hash on every command.
    fn live<R>(&mut self, key: &[u8], now: Instant, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        match self.map.get_mut(key) {
            Some(entry) if !entry.is_due(now) => return Some(f(entry)),
            Some(_) => {}
            None => return None,
        }
        self.expired += 1;
        self.remove_entry(key);
        None
    }

    /// Calls `f` with the value of `key`, if it exists.
    pub fn read<R>(&mut self, key: &[u8], now: Instant, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.live(key, now, |entry| f(&entry.value))
    }

    /// Calls `f` with the value of `key` to change it in place, keeping its deadline
    /// (`INCR` does not reset a key's time to live).
    pub fn update<R>(&mut self, key: &[u8], now: Instant, f: impl FnOnce(&mut Vec<u8>) -> R) -> Option<R> {
        self.live(key, now, |entry| f(&mut entry.value))
    }

    pub fn exists(&mut self, key: &[u8], now: Instant) -> bool {
        self.live(key, now, |_| ()).is_some()
    }

    /// `None` if the key does not exist; `Some(None)` if it has no deadline.
    pub fn deadline(&mut self, key: &[u8], now: Instant) -> Option<Option<Instant>> {
        self.live(key, now, |entry| entry.expiry.map(|e| e.at))
    }

    /// Stores `value` under `key`, its deadline as `ttl` says.
    pub fn set(&mut self, key: &[u8], value: &[u8], ttl: Ttl) {
        let dropped = if let Some(entry) = self.map.get_mut(key) {
            // Reuse the value's allocation, unless the old value was much larger.
            if entry.value.capacity() > 64 && entry.value.capacity() > 4 * value.len() {
                entry.value = Vec::new();
            }
            entry.value.clear();
            entry.value.extend_from_slice(value);
            match ttl {
                Ttl::Keep => None,
                Ttl::Clear => entry.expiry.take(),
                Ttl::At(at) => match &mut entry.expiry {
                    Some(expiry) => {
                        expiry.at = at;
                        None
                    }
                    None => {
                        entry.expiry = Some(Expiry { at, slot: self.volatile.len() });
                        self.volatile.push(key.into());
                        None
                    }
                },
            }
        } else {
            let expiry = match ttl {
                Ttl::At(at) => {
                    self.volatile.push(key.into());
                    Some(Expiry { at, slot: self.volatile.len() - 1 })
                }
                Ttl::Clear | Ttl::Keep => None,
            };
            self.map.insert(key.into(), Entry { value: value.to_vec(), expiry });
            None
        };
        if let Some(expiry) = dropped {
            self.unlink(expiry.slot);
        }
    }

    /// Sets the deadline of an existing key. `false` if the key does not exist.
    pub fn set_deadline(&mut self, key: &[u8], at: Instant, now: Instant) -> bool {
        let volatile_len = self.volatile.len();
        let added = self.live(key, now, |entry| match &mut entry.expiry {
            Some(expiry) => {
                expiry.at = at;
                false
            }
            None => {
                entry.expiry = Some(Expiry { at, slot: volatile_len });
                true
            }
        });
        if added == Some(true) {
            self.volatile.push(key.into());
        }
        added.is_some()
    }

    /// Removes `key`. `false` if it did not exist (or had already expired).
    pub fn remove(&mut self, key: &[u8], now: Instant) -> bool {
        match self.map.get(key) {
            None => false,
            Some(entry) => {
                let live = !entry.is_due(now);
                if !live {
                    self.expired += 1;
                }
                self.remove_entry(key);
                live
            }
        }
    }

    /// Drops the deadline of `key` (`PERSIST`): `true` if it had one.
    pub fn persist(&mut self, key: &[u8], now: Instant) -> bool {
        match self.live(key, now, |entry| entry.expiry.take()) {
            Some(Some(expiry)) => {
                self.unlink(expiry.slot);
                true
            }
            _ => false,
        }
    }

    /// Every live key, in no order; the expired ones it passes over stay for the sweep
    /// (`KEYS`, `SCAN` only read).
    pub fn live_keys(&self, now: Instant) -> impl Iterator<Item = &[u8]> {
        self.map.iter().filter(move |(_, entry)| !entry.is_due(now)).map(|(key, _)| &**key)
    }

    /// Removes every key (`FLUSHALL`).
    pub fn clear(&mut self) {
        drop(self.take_all());
    }

    /// Removes every key and hands them back, for the caller to free elsewhere
    /// (`FLUSHALL ASYNC`: a million keys take ~0.1 s to free, too long for the loop).
    pub fn take_all(&mut self) -> impl Send + 'static {
        (std::mem::take(&mut self.map), std::mem::take(&mut self.volatile))
    }

    /// Active expiry: samples keys with a deadline at random and removes the expired ones,
    /// round after round of [`SAMPLE`] while more than a quarter of a round was expired,
    /// looking at `budget` keys at most. Returns how many were removed.
    pub fn sweep(&mut self, now: Instant, budget: usize) -> usize {
        let mut looked = 0;
        let mut removed = 0;
        while !self.volatile.is_empty() && looked < budget {
            let round = SAMPLE.min(self.volatile.len()).min(budget - looked);
            let mut expired = 0;
            for _ in 0..round {
                if self.volatile.is_empty() {
                    break;
                }
                let slot = (self.next_random() % self.volatile.len() as u64) as usize;
                let due = self.map.get(&self.volatile[slot]).is_some_and(|entry| entry.is_due(now));
                if due {
                    let key = self.unlink(slot);
                    self.map.remove(&key);
                    expired += 1;
                }
            }
            looked += round;
            removed += expired;
            // Few expired in the sample: probably few in the whole set. Stop, as Redis does.
            if expired * 4 <= round {
                break;
            }
        }
        self.expired += removed as u64;
        removed
    }

    /// Removes `key`'s entry and its place in `volatile`.
    fn remove_entry(&mut self, key: &[u8]) {
        if let Some(Entry { expiry: Some(expiry), .. }) = self.map.remove(key) {
            self.unlink(expiry.slot);
        }
    }

    /// Removes `volatile[slot]` by swapping the last key into its place, tells the moved
    /// key's entry its new index, and returns the removed key.
    fn unlink(&mut self, slot: usize) -> Box<[u8]> {
        let key = self.volatile.swap_remove(slot);
        if let Some(moved) = self.volatile.get(slot) {
            if let Some(Entry { expiry: Some(expiry), .. }) = self.map.get_mut(moved) {
                expiry.slot = slot;
            }
        }
        key
    }

    /// xorshift64*: plenty for choosing sample positions.
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Checks that `volatile` and the entries' indexes agree (tests).
    #[cfg(test)]
    fn check(&self) {
        for (slot, key) in self.volatile.iter().enumerate() {
            assert_eq!(self.map[key].expiry.unwrap().slot, slot);
        }
        assert_eq!(self.map.values().filter(|e| e.expiry.is_some()).count(), self.volatile.len());
    }
}

/// Time to live in milliseconds, rounded down, for `PTTL`; zero once due.
pub fn millis_left(at: Instant, now: Instant) -> i64 {
    i64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(i64::MAX)
}

/// A deadline `ms` milliseconds from `now`; `None` if it cannot be represented. Redis keeps
/// deadlines as Unix milliseconds in an `i64` and refuses a time to live that would pass
/// it; so does this, so that a client sees the same answer from both.
pub fn deadline_in(now: Instant, ms: u64) -> Option<Instant> {
    let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis());
    let room = u128::from(i64::MAX.unsigned_abs()).saturating_sub(unix_now);
    if u128::from(ms) > room {
        return None;
    }
    now.checked_add(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(store: &mut Store, key: &[u8], now: Instant) -> Option<Vec<u8>> {
        store.read(key, now, |v| v.to_vec())
    }

    #[test]
    fn set_get_remove() {
        let now = Instant::now();
        let mut store = Store::new();
        store.set(b"k", b"v", Ttl::Clear);
        assert_eq!(get(&mut store, b"k", now), Some(b"v".to_vec()));
        store.set(b"k", b"w", Ttl::Clear);
        assert_eq!(get(&mut store, b"k", now), Some(b"w".to_vec()));
        assert!(store.remove(b"k", now));
        assert!(!store.remove(b"k", now));
        assert_eq!(get(&mut store, b"k", now), None);
        assert!(store.is_empty());
    }

    #[test]
    fn lazy_expiry_and_deadlines() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut store = Store::new();
        store.set(b"a", b"1", Ttl::At(now + Duration::from_secs(5)));
        store.set(b"b", b"2", Ttl::Clear);
        assert_eq!(store.deadline(b"a", now), Some(Some(now + Duration::from_secs(5))));
        assert_eq!(store.deadline(b"b", now), Some(None));
        assert_eq!(store.deadline(b"c", now), None);
        // KEEPTTL and update keep the deadline; a plain SET clears it.
        store.set(b"a", b"3", Ttl::Keep);
        store.update(b"a", now, |v| v.push(b'!'));
        assert_eq!(store.deadline(b"a", now), Some(Some(now + Duration::from_secs(5))));
        store.check();
        assert_eq!(get(&mut store, b"a", later), None, "expired on access");
        assert_eq!(store.expired, 1);
        assert!(!store.exists(b"a", later));
        assert_eq!(store.len(), 1);
        store.check();
        assert!(store.set_deadline(b"b", now + Duration::from_secs(1), now));
        assert!(!store.set_deadline(b"nope", now, now));
        assert!(!store.remove(b"b", later), "an expired key is not removed by DEL");
        store.set(b"c", b"", Ttl::At(later));
        store.set(b"c", b"", Ttl::Clear);
        assert_eq!(store.volatile_len(), 0);
        store.check();
    }

    #[test]
    fn sweep_collects_expired_keys_without_touching_live_ones() {
        let now = Instant::now();
        let soon = now + Duration::from_millis(10);
        let later = now + Duration::from_secs(60);
        let mut store = Store::new();
        for i in 0..1000 {
            let at = if i % 2 == 0 { soon } else { later };
            store.set(format!("k{i}").as_bytes(), b"v", Ttl::At(at));
        }
        for i in 0..100 {
            store.set(format!("p{i}").as_bytes(), b"v", Ttl::Clear);
        }
        assert_eq!(store.sweep(now, 1000), 0, "nothing due yet");
        // A bounded budget looks at that many keys at most.
        let after = soon + Duration::from_millis(1);
        assert!(store.sweep(after, 20) <= 20);
        store.check();
        // Repeated sweeps leave at most about a quarter of the volatile keys expired.
        for _ in 0..200 {
            store.sweep(after, 100);
        }
        store.check();
        let left_expired = 500 - (1100 - store.len());
        assert!(left_expired * 4 <= store.volatile_len() + 20, "{left_expired} of {}", store.volatile_len());
        for i in 0..1000 {
            let live = store.exists(format!("k{i}").as_bytes(), after);
            assert_eq!(live, i % 2 == 1);
        }
        assert_eq!(store.len(), 600);
        assert_eq!(store.expired, 500);
        store.check();
    }
}
