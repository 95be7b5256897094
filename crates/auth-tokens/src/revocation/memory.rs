//! The in-process store: sharded maps with a hard bound on entries.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{
    DEFAULT_NOT_BEFORE_RETENTION, RevocationStore, StoreError, TokenRef, retention_seconds,
};
use crate::clock::{Clock, SystemClock};
use palisade_errors::SecurityEvent;

/// Default bound on entries: 1,000,000 (roughly 100 MB at the bound).
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// Entries per shard the shard count aims at: large enough that uneven
/// hashing fills one shard only a few percent before the store as a whole.
const ENTRIES_PER_SHARD: usize = 16_384;
const MAX_SHARDS: usize = 64;

/// What an entry revokes; part of the hashed key, so a `jti` equal to a
/// `sid` never finds the other's entry.
#[derive(Clone, Copy, Hash)]
enum Kind {
    Token,
    Family,
    NotBefore,
}

/// An entry's key: a 128-bit SipHash of (kind, subject, id) under two
/// per-store random keys. Fixed size whatever the ids, no raw ids kept, and
/// collisions cannot be aimed (one would only refuse an extra token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64, u64);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a keyed hash: the map uses it as is (see `PreHashed`).
        // The second half: the first picks the shard, so within a shard its
        // top bits (which the map uses too) are nearly constant.
        state.write_u64(self.1);
    }
}

/// Passes a [`Key`]'s first half through as the map's hash.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Map<V> = HashMap<Key, V, BuildHasherDefault<PreHashed>>;

/// A subject's `not_before`.
#[derive(Clone, Copy)]
struct Marker {
    at: u64,
    expires_at: u64,
}

/// A `jti` or family revocation: its expiry, and the key of its subject's
/// `not_before`, which takes it over if it is evicted.
#[derive(Clone, Copy)]
struct Revoked {
    expires_at: u64,
    subject: Key,
}

/// One shard. Each map has an index by expiry, so expired entries are
/// dropped, and the entry to evict is found, in O(log n).
struct Shard {
    capacity: usize,
    /// `jti` and family revocations.
    revoked: Map<Revoked>,
    revoked_by_expiry: BTreeSet<(u64, Key)>,
    /// Subjects' `not_before` markers.
    markers: Map<Marker>,
    markers_by_expiry: BTreeSet<(u64, Key)>,
    /// The last resort once only markers are left: every subject whose
    /// `not_before` key falls in this shard counts as logged out everywhere
    /// up to `floor` (the latest `at` of a marker evicted from it). Never
    /// lowered, never dropped: it only refuses tokens issued before it,
    /// which all expire.
    floor: u64,
}

impl Shard {
    fn new(capacity: usize) -> Shard {
        Shard {
            capacity,
            revoked: Map::default(),
            revoked_by_expiry: BTreeSet::new(),
            markers: Map::default(),
            markers_by_expiry: BTreeSet::new(),
            floor: 0,
        }
    }

    fn len(&self) -> usize {
        self.revoked.len() + self.markers.len()
    }

    /// Drops every entry whose time has passed (harmless: the token it
    /// refused has expired by then).
    fn drop_expired(&mut self, now: u64) {
        while let Some(&(expires_at, key)) = self.revoked_by_expiry.first() {
            if expires_at > now {
                break;
            }
            self.revoked_by_expiry.pop_first();
            self.revoked.remove(&key);
        }
        while let Some(&(expires_at, key)) = self.markers_by_expiry.first() {
            if expires_at > now {
                break;
            }
            self.markers_by_expiry.pop_first();
            self.markers.remove(&key);
        }
    }

    /// Evicts one live entry, never losing what it revoked: the `jti` or
    /// family revocation closest to its expiry is returned, for its
    /// subject's `not_before` to take over (the caller raises it); a
    /// `not_before` marker (which covers every session of a subject) goes
    /// only when the shard holds nothing else, into the shard's `floor`.
    fn evict_one(&mut self) -> Option<Option<Revoked>> {
        if let Some((_, key)) = self.revoked_by_expiry.pop_first() {
            return Some(self.revoked.remove(&key));
        }
        if let Some((_, key)) = self.markers_by_expiry.pop_first() {
            if let Some(marker) = self.markers.remove(&key) {
                self.floor = self.floor.max(marker.at);
            }
            return Some(None);
        }
        None
    }

    fn live_revocation(&self, key: Key, now: u64) -> bool {
        self.revoked
            .get(&key)
            .is_some_and(|revoked| revoked.expires_at > now)
    }

    /// The subject's `not_before`: its marker, or the shard's floor (the
    /// later of the two).
    fn live_marker(&self, key: Key, now: u64) -> Option<u64> {
        let marker = self
            .markers
            .get(&key)
            .filter(|marker| marker.expires_at > now)
            .map(|marker| marker.at);
        match (marker, self.floor) {
            (marker, 0) => marker,
            (Some(at), floor) => Some(at.max(floor)),
            (None, floor) => Some(floor),
        }
    }
}

struct Shards {
    shards: Box<[Mutex<Shard>]>,
    max_entries: usize,
    /// Two independent SipHash keys: the halves of each [`Key`].
    hashers: [RandomState; 2],
    evictions: AtomicU64,
}

impl Shards {
    fn new(max_entries: usize, hashers: [RandomState; 2]) -> Shards {
        let max_entries = max_entries.max(1);
        let count = (max_entries / ENTRIES_PER_SHARD).clamp(1, MAX_SHARDS);
        // Each shard gets its share, so the shards together never hold more
        // than `max_entries`.
        let (share, rest) = (max_entries / count, max_entries % count);
        let shards = (0..count)
            .map(|index| Mutex::new(Shard::new(share + usize::from(index < rest))))
            .collect();
        Shards {
            shards,
            max_entries,
            hashers,
            evictions: AtomicU64::new(0),
        }
    }

    fn key(&self, kind: Kind, subject: &str, id: &str) -> Key {
        let [first, second] = &self.hashers;
        Key(
            first.hash_one((kind, subject, id)),
            second.hash_one((kind, subject, id)),
        )
    }

    fn shard(&self, key: Key) -> MutexGuard<'_, Shard> {
        // Multiply-shift onto the shard count (not a power of two).
        let count = self.shards.len() as u64;
        let index = ((key.0 >> 32) * count) >> 32;
        let shard = usize::try_from(index)
            .ok()
            .and_then(|index| self.shards.get(index))
            .or_else(|| self.shards.first());
        // Invariant: there is at least one shard (`Shards::new` makes >= 1).
        let shard = shard.unwrap_or_else(|| unreachable!("a store has shards"));
        // Nothing under the lock panics (allocation failure aborts); were it
        // to, a map and its expiry index could disagree on one entry, which
        // keeps that entry longer but never loses a revocation.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for one new entry in `shard`, expired entries first.
    /// Returns the live revocations evicted, for their subjects'
    /// `not_before` to take over once the shard's lock is released.
    fn make_room(&self, shard: &mut Shard) -> Vec<Revoked> {
        let mut evicted = 0u64;
        let mut taken_over = Vec::new();
        while shard.len() >= shard.capacity {
            match shard.evict_one() {
                Some(revoked) => {
                    evicted += 1;
                    taken_over.extend(revoked);
                }
                None => break,
            }
        }
        if evicted > 0 {
            let total = self.evictions.fetch_add(evicted, Ordering::Relaxed) + evicted;
            tracing::warn!(
                event = SecurityEvent::StoreEviction.as_str(),
                reason = "max_entries",
                store = "revocation",
                evicted,
                total,
                max_entries = self.max_entries,
                "revocation store full of live revocations: the one closest to expiry became \
                 its subject's logout-everywhere (coarser, never lost); raise max_entries"
            );
        }
        taken_over
    }

    /// A full store degrades, never forgets: each evicted `jti` or family
    /// revocation raises its subject's `not_before` to `now` (every token of
    /// the subject issued so far, the revoked one included, stays refused)
    /// until the revocation would have expired. Raising a marker may evict
    /// in turn; every round removes a revocation, so this ends.
    fn take_over(&self, mut pending: Vec<Revoked>, now: u64) {
        while let Some(revoked) = pending.pop() {
            let marker = Marker {
                at: now,
                expires_at: revoked.expires_at,
            };
            let (_, more) = self.mark_one(revoked.subject, marker, now);
            pending.extend(more);
        }
    }

    fn revoke(&self, key: Key, subject: Key, expires_at: u64, now: u64) {
        let evicted = {
            let mut shard = self.shard(key);
            shard.drop_expired(now);
            let evicted = match shard.revoked.get(&key).copied() {
                Some(old) if old.expires_at >= expires_at => return,
                Some(old) => {
                    shard.revoked_by_expiry.remove(&(old.expires_at, key));
                    Vec::new()
                }
                None => self.make_room(&mut shard),
            };
            shard.revoked.insert(
                key,
                Revoked {
                    expires_at,
                    subject,
                },
            );
            shard.revoked_by_expiry.insert((expires_at, key));
            evicted
        };
        self.take_over(evicted, now);
    }

    /// Sets (or merges into) a `not_before` marker: the later `at`, the
    /// later expiry. Returns the `at` now in force.
    fn mark(&self, key: Key, new: Marker, now: u64) -> u64 {
        let (at, evicted) = self.mark_one(key, new, now);
        self.take_over(evicted, now);
        at
    }

    /// [`mark`](Self::mark) in one shard: also returns the revocations it
    /// evicted, for the caller to hand over once the lock is released.
    fn mark_one(&self, key: Key, new: Marker, now: u64) -> (u64, Vec<Revoked>) {
        let mut shard = self.shard(key);
        shard.drop_expired(now);
        let (marker, evicted) = match shard.markers.get(&key).copied() {
            Some(old) => {
                shard.markers_by_expiry.remove(&(old.expires_at, key));
                let merged = Marker {
                    at: old.at.max(new.at),
                    expires_at: old.expires_at.max(new.expires_at),
                };
                (merged, Vec::new())
            }
            None => {
                let evicted = self.make_room(&mut shard);
                (new, evicted)
            }
        };
        shard.markers.insert(key, marker);
        shard.markers_by_expiry.insert((marker.expires_at, key));
        (marker.at.max(shard.floor), evicted)
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Revocations in this process: sharded maps (one lock per shard, held for
/// one lookup or update), bounded by [`max_entries`](Self::max_entries).
///
/// - Every entry expires with the token (or, for `not_before`, after the
///   retention) and is then dropped; memory is bounded by live revocations.
/// - Entries hold a 128-bit keyed hash of the subject and id, never the ids.
/// - **The bound must exceed the number of live revocations** (with a few
///   percent of margin: each shard holds its share). At the bound, expired
///   entries are dropped first; only if none is left is a live one evicted —
///   the `jti` or family revocation closest to its expiry, `not_before`
///   markers last — and an eviction **degrades the revocation, never drops
///   it**: an evicted `jti` or family revocation becomes its subject's
///   `not_before` (now, kept until the revocation would have expired), so
///   the subject is logged out everywhere instead; an evicted `not_before`
///   raises a floor of its shard, which logs out every subject whose
///   `not_before` falls in that shard (about 1/64 of them, all of them in a
///   store below 16,384 entries) up to that marker. A logout flood thus
///   costs innocent sessions, never a revoked token coming back.
///   Each eviction is counted in [`evictions`](Self::evictions) and logged
///   as a warning (`event = "store_eviction"`). Size the bound from your
///   logout rate times the refresh lifetime, and rate-limit logins so an
///   attacker cannot log in and out fast enough to force these logouts.
/// - Lookups in [`is_revoked`](RevocationStore::is_revoked) take at most
///   three shard locks one after the other, never two at once. Revocations
///   only accumulate until they no longer matter, so a "not revoked" answer
///   was true when the first lookup ran.
///
/// Clones share the state. For several instances of a service, use the
/// Redis store: a logout on one instance must hold on all of them.
///
/// ```
/// use palisade_auth_tokens::revocation::MemoryRevocationStore;
///
/// let store = MemoryRevocationStore::new().with_max_entries(200_000);
/// assert_eq!(store.max_entries(), 200_000);
/// assert!(store.is_empty());
/// ```
pub struct MemoryRevocationStore<C: Clock = SystemClock> {
    shards: Arc<Shards>,
    clock: Arc<C>,
    retention: u64,
}

impl<C: Clock> Clone for MemoryRevocationStore<C> {
    fn clone(&self) -> Self {
        MemoryRevocationStore {
            shards: Arc::clone(&self.shards),
            clock: Arc::clone(&self.clock),
            retention: self.retention,
        }
    }
}

impl<C: Clock> std::fmt::Debug for MemoryRevocationStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRevocationStore")
            .field("max_entries", &self.shards.max_entries)
            .field("shards", &self.shards.shards.len())
            .field("not_before_retention_secs", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryRevocationStore {
    fn default() -> MemoryRevocationStore {
        MemoryRevocationStore::new()
    }
}

impl MemoryRevocationStore {
    /// A store on the system clock, bounded by [`DEFAULT_MAX_ENTRIES`].
    pub fn new() -> MemoryRevocationStore {
        MemoryRevocationStore::with_clock(SystemClock)
    }
}

impl<C: Clock> MemoryRevocationStore<C> {
    /// A store on the given clock (a [`ManualClock`](crate::ManualClock) in
    /// tests), bounded by [`DEFAULT_MAX_ENTRIES`].
    pub fn with_clock(clock: C) -> MemoryRevocationStore<C> {
        MemoryRevocationStore {
            shards: Arc::new(Shards::new(
                DEFAULT_MAX_ENTRIES,
                [RandomState::new(), RandomState::new()],
            )),
            clock: Arc::new(clock),
            retention: retention_seconds(DEFAULT_NOT_BEFORE_RETENTION),
        }
    }

    /// Bounds the store to `max_entries` entries (at least 1). Set it when
    /// creating the store: revocations already held are carried over (and
    /// evicted as usual if they exceed the new bound), but clones made
    /// earlier keep the old state.
    #[must_use]
    pub fn with_max_entries(self, max_entries: usize) -> Self {
        // The same hash keys: entries are found by hash (the ids are not
        // kept), so carrying them over needs the hashes to stay valid.
        let shards = Shards::new(max_entries, self.shards.hashers.clone());
        let now = self.clock.now();
        for old in self.shards.shards.iter() {
            let old = old.lock().unwrap_or_else(PoisonError::into_inner);
            for (&key, revoked) in &old.revoked {
                if revoked.expires_at > now {
                    shards.revoke(key, revoked.subject, revoked.expires_at, now);
                }
            }
            for (&key, marker) in &old.markers {
                if marker.expires_at > now {
                    shards.mark(key, *marker, now);
                }
            }
            // Keys map to other shards now: every new shard takes the
            // highest old floor (coarser, never lost).
            if old.floor > 0 {
                for shard in shards.shards.iter() {
                    let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                    shard.floor = shard.floor.max(old.floor);
                }
            }
        }
        // Counters continue.
        shards
            .evictions
            .fetch_add(self.evictions(), Ordering::Relaxed);
        MemoryRevocationStore {
            shards: Arc::new(shards),
            ..self
        }
    }

    /// How long a subject's `not_before` is kept (default
    /// [`DEFAULT_NOT_BEFORE_RETENTION`], 8 days; rounded up to whole
    /// seconds). It must be at least the longest token lifetime (the refresh
    /// token's, plus leeway): once it is dropped, tokens issued before it
    /// are valid again.
    #[must_use]
    pub fn not_before_retention(mut self, retention: Duration) -> Self {
        self.retention = retention_seconds(retention);
        self
    }

    /// The bound on entries.
    pub fn max_entries(&self) -> usize {
        self.shards.max_entries
    }

    /// Entries held now (expired ones included until they are dropped, on
    /// the next update of their shard).
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live revocations evicted at the bound since the store was created.
    /// Each one was degraded to a coarser revocation (its subject's, or its
    /// shard's, `not_before`), logging out sessions that were not revoked:
    /// anything but 0 means [`max_entries`](Self::max_entries) is too small
    /// or someone is flooding logouts.
    pub fn evictions(&self) -> u64 {
        self.shards.evictions.load(Ordering::Relaxed)
    }

    /// [`RevocationStore::is_revoked`], synchronously (the memory store
    /// never waits).
    pub fn is_revoked_now(&self, token: TokenRef<'_>) -> bool {
        let now = self.clock.now();
        let shards = &self.shards;
        let jti = shards.key(Kind::Token, token.subject, token.jti);
        if shards.shard(jti).live_revocation(jti, now) {
            return true;
        }
        if let Some(sid) = token.sid {
            let family = shards.key(Kind::Family, token.subject, sid);
            if shards.shard(family).live_revocation(family, now) {
                return true;
            }
        }
        self.not_before_now(token.subject)
            .is_some_and(|not_before| token.issued_at <= not_before)
    }

    /// [`RevocationStore::revoke_token`], synchronously.
    pub fn revoke_token_now(&self, subject: &str, jti: &str, expires_at: u64) {
        let key = self.shards.key(Kind::Token, subject, jti);
        self.revoke(key, subject, expires_at);
    }

    /// [`RevocationStore::revoke_family`], synchronously.
    pub fn revoke_family_now(&self, subject: &str, sid: &str, expires_at: u64) {
        let key = self.shards.key(Kind::Family, subject, sid);
        self.revoke(key, subject, expires_at);
    }

    /// [`RevocationStore::revoke_subject`], synchronously.
    pub fn revoke_subject_now(&self, subject: &str) -> u64 {
        let now = self.clock.now();
        let key = self.shards.key(Kind::NotBefore, subject, "");
        let marker = Marker {
            at: now,
            expires_at: now.saturating_add(self.retention),
        };
        self.shards.mark(key, marker, now)
    }

    /// [`RevocationStore::not_before`], synchronously.
    pub fn not_before_now(&self, subject: &str) -> Option<u64> {
        let now = self.clock.now();
        let key = self.shards.key(Kind::NotBefore, subject, "");
        self.shards.shard(key).live_marker(key, now)
    }

    fn revoke(&self, key: Key, subject: &str, expires_at: u64) {
        let now = self.clock.now();
        // At least one second, so a token at the edge of its life cannot be
        // used in the gap.
        let expires_at = expires_at.max(now.saturating_add(1));
        let subject = self.shards.key(Kind::NotBefore, subject, "");
        self.shards.revoke(key, subject, expires_at, now);
    }
}

impl<C: Clock> RevocationStore for MemoryRevocationStore<C> {
    async fn is_revoked(&self, token: TokenRef<'_>) -> Result<bool, StoreError> {
        Ok(self.is_revoked_now(token))
    }

    async fn revoke_token(
        &self,
        subject: &str,
        jti: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.revoke_token_now(subject, jti, expires_at);
        Ok(())
    }

    async fn revoke_family(
        &self,
        subject: &str,
        sid: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.revoke_family_now(subject, sid, expires_at);
        Ok(())
    }

    async fn revoke_subject(&self, subject: &str) -> Result<u64, StoreError> {
        let not_before = self.revoke_subject_now(subject);
        super::log_subject_revoked(subject);
        Ok(not_before)
    }

    async fn not_before(&self, subject: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.not_before_now(subject))
    }
}
