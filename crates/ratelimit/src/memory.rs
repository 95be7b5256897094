//! The in-process store: sharded maps with a hard cap on keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::gcra::{self, Decision, Mode, State};
use crate::quota::Policy;
use crate::store::RateStore;
use palisade_errors::SecurityEvent;

use crate::{Clock, FastClock, StoreError, Timestamp};

/// Default cap on keys: 1,000,000 (about 60 MB: 59 bytes a key measured at
/// the cap, filled once or churning, by `cargo xtask bench`).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// Keys are stored as their 64-bit SipHash under a per-store random key, so
/// an attacker can neither predict nor aim collisions; the map then needs no
/// second hash.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a u64); fold anything else.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[derive(Clone, Copy)]
struct Entry {
    state: State,
    /// Microseconds; for least-recently-seen eviction.
    last_seen: u64,
}

struct Shard {
    map: HashMap<u64, Entry, BuildHasherDefault<PreHashed>>,
    /// Inserts since the last sweep of recovered entries.
    inserts: usize,
    /// The entries the map's table takes before it reallocates (7/8 of its
    /// buckets), tombstones included. A removal from a nearly full table
    /// leaves a tombstone: a slot neither free nor live that only a rebuild
    /// frees; left alone, the next insert would double the table.
    table_capacity: usize,
}

impl Shard {
    /// Slots taken by tombstones (`capacity()` is entries + free slots).
    fn tombstones(&self) -> usize {
        self.table_capacity.saturating_sub(self.map.capacity())
    }

    /// Rebuilds the table at its size, without tombstones: O(entries), and
    /// done only after at least 1/64 of the table became tombstones (or
    /// after an eviction of 1/16), so O(1) amortized per insert.
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.map);
        let mut map = HashMap::with_capacity_and_hasher(self.table_capacity, Default::default());
        map.extend(old);
        self.table_capacity = map.capacity();
        self.map = map;
    }
}

/// A shard on its own cache lines: two cores locking neighbouring shards
/// must not fight over one line (false sharing).
#[repr(align(128))]
struct Padded(Mutex<Shard>);

struct Inner<C> {
    shards: Box<[Padded]>,
    /// The hard cap on one shard: its share of `max_keys` plus room for
    /// uneven hashing, so a shard is not full while the store has room.
    shard_capacity: usize,
    max_keys: usize,
    /// Keys held, across shards.
    keys: AtomicUsize,
    hasher: RandomState,
    clock: C,
    reclaimed: AtomicU64,
    lossy_evictions: AtomicU64,
}

/// Counters of a [`MemoryStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Keys held now.
    pub keys: usize,
    /// Entries dropped because their quota had fully recovered (no effect on
    /// any limit).
    pub reclaimed: u64,
    /// Live entries evicted at the cap (least recently seen first): each one
    /// reset that key's limit. Non-zero means `max_keys` is too small for the
    /// traffic, or an attack from very many addresses is under way.
    pub lossy_evictions: u64,
}

/// Rate-limit state in this process: sharded maps (one lock per shard, held
/// for one decision), bounded by `max_keys`.
///
/// Memory stays bounded whatever the traffic: entries whose quota has fully
/// recovered are reclaimed continuously and first; only at the cap, with no
/// such entry, are the least recently seen live entries evicted (counted in
/// [`MemoryStats::lossy_evictions`] with a warning, since each resets a
/// key's limit). An attacker sending from 10 million addresses therefore
/// costs at most `max_keys` entries (59 bytes each at 1M keys, measured by
/// `cargo xtask bench`, and the same under churn at the cap: a table whose
/// removals left tombstones is rebuilt at its size, never doubled).
///
/// Clones share the state.
pub struct MemoryStore<C: Clock = FastClock> {
    inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for MemoryStore<C> {
    fn clone(&self) -> Self {
        MemoryStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Clock> std::fmt::Debug for MemoryStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.inner.shards.len())
            .field("shard_capacity", &self.inner.shard_capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store holding at most [`DEFAULT_MAX_KEYS`] keys, on the [`FastClock`].
    ///
    /// ```
    /// use palisade_ratelimit::{DEFAULT_MAX_KEYS, MemoryStore};
    ///
    /// assert_eq!(MemoryStore::new().max_entries(), DEFAULT_MAX_KEYS);
    /// let small = MemoryStore::new().with_max_entries(10_000);
    /// assert_eq!(small.max_entries(), 10_000);
    /// assert!(small.is_empty());
    /// ```
    pub fn new() -> MemoryStore {
        MemoryStore::with_clock(FastClock)
    }
}

impl<C: Clock> MemoryStore<C> {
    /// A store holding at most [`DEFAULT_MAX_KEYS`] keys on the given clock
    /// (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(clock: C) -> MemoryStore<C> {
        MemoryStore::build(DEFAULT_MAX_KEYS, clock)
    }

    /// The same store holding at most `max_entries` keys (at least 1). A
    /// builder step: the store it returns is empty.
    #[must_use]
    pub fn with_max_entries(self, max_entries: usize) -> MemoryStore<C>
    where
        C: Clone,
    {
        MemoryStore::build(max_entries, self.inner.clock.clone())
    }

    fn build(max_keys: usize, clock: C) -> MemoryStore<C> {
        let max_keys = max_keys.max(1);
        // Size shards so each is full just below the map's growth point (7/8
        // of a power-of-two bucket count) at its hard cap, and give each cap
        // room for its share of `max_keys` plus six standard deviations of
        // uneven hashing: a store filled to `max_keys` does not evict from a
        // full shard while others have room, and no bucket array is larger
        // than needed (memory per key stays near the entry size).
        let mut buckets = 64usize;
        while max_keys / (buckets / 8 * 7) > 96 {
            buckets = buckets.saturating_mul(2);
        }
        let shard_capacity = buckets / 8 * 7;
        let mut shard_count = max_keys.div_ceil(shard_capacity).max(1);
        loop {
            let share = max_keys.div_ceil(shard_count);
            if share + 6 * share.isqrt() < shard_capacity || shard_count >= max_keys {
                break;
            }
            shard_count += 1;
        }
        let shards = (0..shard_count)
            .map(|_| {
                Padded(Mutex::new(Shard {
                    map: HashMap::default(),
                    inserts: 0,
                    table_capacity: 0,
                }))
            })
            .collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                shard_capacity,
                max_keys,
                keys: AtomicUsize::new(0),
                hasher: RandomState::new(),
                clock,
                reclaimed: AtomicU64::new(0),
                lossy_evictions: AtomicU64::new(0),
            }),
        }
    }

    /// The counters.
    pub fn stats(&self) -> MemoryStats {
        let keys = self
            .inner
            .shards
            .iter()
            .map(|shard| lock(&shard.0).map.len())
            .sum();
        MemoryStats {
            keys,
            reclaimed: self.inner.reclaimed.load(Ordering::Relaxed),
            lossy_evictions: self.inner.lossy_evictions.load(Ordering::Relaxed),
        }
    }

    /// The most keys this store holds.
    pub fn max_keys(&self) -> usize {
        self.inner.max_keys
    }

    /// The most keys this store holds (the name every Palisade memory store
    /// uses; the same as [`max_keys`](Self::max_keys)).
    pub fn max_entries(&self) -> usize {
        self.inner.max_keys
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.stats().keys
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live entries evicted at the cap since the store was made
    /// ([`MemoryStats::lossy_evictions`]).
    pub fn evictions(&self) -> u64 {
        self.inner.lossy_evictions.load(Ordering::Relaxed)
    }

    fn locate(&self, key: &str) -> (u64, &Mutex<Shard>) {
        // The key's bytes alone: SipHash takes the length into its last
        // block, so `str`'s 0xff terminator (there for hashing several
        // fields in a row) would only cost a second `write`.
        let mut hasher = self.inner.hasher.build_hasher();
        hasher.write(key.as_bytes());
        let hash = hasher.finish();
        // Multiply-shift onto the shard count (not a power of two).
        let count = self.inner.shards.len() as u64;
        let index = ((hash >> 32) * count) >> 32;
        let shard = usize::try_from(index)
            .ok()
            .and_then(|index| self.inner.shards.get(index))
            .or_else(|| self.inner.shards.first())
            .map(|padded| &padded.0);
        // Invariant: there is at least one shard (`build` makes >= 1).
        (
            hash,
            shard.unwrap_or_else(|| unreachable!("a store has shards")),
        )
    }

    /// Decides synchronously (the memory store never waits).
    pub fn decide_now(&self, key: &str, policy: &Policy, cost: u32, mode: Mode) -> Decision {
        let now = self.inner.clock.now();
        let (hash, shard) = self.locate(key);
        let mut shard = lock(shard);
        if let Some(entry) = shard.map.get_mut(&hash) {
            entry.last_seen = now.as_micros();
            return match policy.quotas() {
                // One quota: its `tat` alone, no loop (the same arithmetic).
                [quota] => {
                    let (decision, tat) = gcra::decide_one(entry.state[0], now, quota, cost, mode);
                    entry.state[0] = tat;
                    decision
                }
                _ => {
                    let (decision, next) = gcra::decide(&entry.state, now, policy, cost, mode);
                    entry.state = next;
                    decision
                }
            };
        }
        self.decide_new(&mut shard, hash, now, policy, cost, mode)
    }

    /// A key the shard does not hold: out of line, so that the hot path
    /// above stays small.
    #[cold]
    #[inline(never)]
    fn decide_new(
        &self,
        shard: &mut Shard,
        hash: u64,
        now: Timestamp,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> Decision {
        let state = State::default();
        let (decision, next) = gcra::decide(&state, now, policy, cost, mode);
        // A key that spent nothing (a refusal, a dry run) is not stored.
        if next != state {
            self.make_room(shard, now);
            shard.map.insert(
                hash,
                Entry {
                    state: next,
                    last_seen: now.as_micros(),
                },
            );
            // The map grows by itself only below the shard's cap (see
            // `make_room`); a fresh table has no tombstones, so its
            // `capacity()` is then its full size.
            shard.table_capacity = shard.table_capacity.max(shard.map.capacity());
            self.inner.keys.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }

    /// Forgets `key`.
    pub fn reset_now(&self, key: &str) {
        let (hash, shard) = self.locate(key);
        if lock(shard).map.remove(&hash).is_some() {
            self.inner.keys.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Keeps the shard under its capacity before an insert.
    fn make_room(&self, shard: &mut Shard, now: Timestamp) {
        shard.inserts += 1;
        let full = shard.map.len() >= self.inner.shard_capacity
            || self.inner.keys.load(Ordering::Relaxed) >= self.inner.max_keys;
        // Continuous reclamation: a sweep every quarter-capacity inserts
        // keeps recovered entries from piling up, at O(1) amortized cost.
        if full || shard.inserts >= (self.inner.shard_capacity / 4).max(16) {
            shard.inserts = 0;
            let before = shard.map.len();
            shard
                .map
                .retain(|_, entry| !gcra::recovered(&entry.state, now));
            let reclaimed = before - shard.map.len();
            self.inner.keys.fetch_sub(reclaimed, Ordering::Relaxed);
            self.inner
                .reclaimed
                .fetch_add(reclaimed as u64, Ordering::Relaxed);
        }
        let store_full = self.inner.keys.load(Ordering::Relaxed) >= self.inner.max_keys;
        if shard.map.len() < self.inner.shard_capacity && !store_full {
            if shard.map.len() < shard.map.capacity() {
                // A free slot: the insert does not reallocate.
                return;
            }
            // No free slot. A table below the shard's cap without many
            // tombstones grows (doubling; table sizes and the cap are both
            // 7/8 of a power of two, so it never outgrows the cap). Otherwise
            // it is rebuilt at its size without tombstones, instead of
            // doubling: at its largest only if that frees 1/64 of it (else
            // the shard counts as full and evicts below).
            let tombstones = shard.tombstones();
            if shard.table_capacity < self.inner.shard_capacity
                && (tombstones == 0 || tombstones < shard.table_capacity / 8)
            {
                return;
            }
            if tombstones >= (shard.table_capacity / 64).max(1) {
                shard.compact();
                return;
            }
        }
        if shard.map.is_empty() {
            // The store is full through other shards; this one has nothing to
            // give. The overshoot is bounded by one entry per shard.
            return;
        }
        // Still full of live entries: evict the least recently seen
        // sixteenth in one pass (amortized O(1) per insert).
        let mut seen: Vec<(u64, u64)> = shard
            .map
            .iter()
            .map(|(&hash, entry)| (entry.last_seen, hash))
            .collect();
        let batch = (seen.len() / 16).max(1);
        seen.select_nth_unstable(batch - 1);
        // Exactly `batch` entries (ties on the timestamp must not take more).
        for (_, hash) in seen.iter().take(batch) {
            shard.map.remove(hash);
        }
        drop(seen);
        // The removals left tombstones: rebuild now, while the table is
        // being walked anyway, so the inserts that follow do not double it.
        shard.compact();
        self.inner.keys.fetch_sub(batch, Ordering::Relaxed);
        let evicted = batch as u64;
        let total = self
            .inner
            .lossy_evictions
            .fetch_add(evicted, Ordering::Relaxed)
            + evicted;
        tracing::warn!(
            event = SecurityEvent::StoreEviction.as_str(),
            reason = "rate_limit_store_full",
            evicted,
            total,
            max_keys = self.max_keys(),
            "rate-limit store full of live keys: least recently seen evicted (their limits reset)"
        );
    }
}

#[inline]
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding the lock leaves a consistent map (every update
    // is a single insert or retain), so a poisoned lock is still usable.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: Clock> RateStore for MemoryStore<C> {
    async fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> Result<Decision, StoreError> {
        Ok(self.decide_now(key, policy, cost, mode))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.reset_now(key);
        Ok(())
    }
}
