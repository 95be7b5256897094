//! What is kept of a key (its HMAC and metadata, never the key), the
//! [`KeyStore`] trait and the bounded in-memory store.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use palisade_errors::{SecurityEvent, StoreError};

use crate::cidr::Cidr;
use crate::clock::{Clock, SystemClock};
use crate::key::KeyId;
use crate::usage::KeyUsage;

/// Keys a [`MemoryKeyStore`] holds by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Where a key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// In use.
    Active,
    /// Revoked: refused from now on.
    Revoked,
    /// Replaced by a rotation; accepted until `until` (Unix seconds), then refused.
    RotatedGrace {
        /// The end of the grace period, Unix seconds.
        until: u64,
    },
}

impl KeyStatus {
    /// Whether a key in this status can never be accepted again at `now`.
    pub fn is_dead(self, now: u64) -> bool {
        match self {
            KeyStatus::Active => false,
            KeyStatus::Revoked => true,
            KeyStatus::RotatedGrace { until } => now >= until,
        }
    }
}

/// What a store keeps of one key: `HMAC-SHA256(pepper, secret)` and the
/// metadata. `Debug` leaves the HMAC out.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The public id.
    pub key_id: KeyId,
    /// The id of the pepper the HMAC was made with.
    pub pepper_id: String,
    /// `HMAC-SHA256(pepper, secret bytes)`.
    pub secret_hmac: [u8; 32],
    /// The owner (a user or account id of the application).
    pub owner: String,
    /// A label the owner chose.
    pub name: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When it was issued, Unix seconds.
    pub created_at: u64,
    /// When it stops working, Unix seconds; `None` for never.
    pub expires_at: Option<u64>,
    /// When it was last accepted, Unix seconds (as of the last usage flush).
    pub last_used_at: Option<u64>,
    /// How many times it was accepted (as of the last usage flush).
    pub use_count: u64,
    /// The client address of its last accepted use.
    pub last_used_ip: Option<IpAddr>,
    /// Where it may be used from; empty for anywhere.
    pub allowed_ips: Vec<Cidr>,
    /// Active, revoked or in its rotation grace.
    pub status: KeyStatus,
}

impl KeyRecord {
    /// Whether the key can never be accepted again at `now` (revoked, past
    /// its grace or its expiry).
    pub fn is_dead(&self, now: u64) -> bool {
        self.status.is_dead(now) || self.expires_at.is_some_and(|at| now >= at)
    }

    /// The second from which the key can never be accepted again: the
    /// earlier of its expiry and the end of its status (revocation at
    /// `now`, the end of a rotation grace); `None` for an active key
    /// without expiry.
    pub fn dies_at(&self, now: u64) -> Option<u64> {
        let status_end = match self.status {
            KeyStatus::Active => None,
            KeyStatus::Revoked => Some(now),
            KeyStatus::RotatedGrace { until } => Some(until),
        };
        match (status_end, self.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Adds a batch of usage (count, latest time and address).
    pub(crate) fn add_usage(&mut self, usage: &KeyUsage) {
        self.use_count = self.use_count.saturating_add(usage.count);
        if self
            .last_used_at
            .is_none_or(|last| usage.last_used_at >= last)
        {
            self.last_used_at = Some(usage.last_used_at);
            self.last_used_ip = Some(usage.last_used_ip);
        }
    }
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_id", &self.key_id)
            .field("pepper_id", &self.pepper_id)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Where keys live. Every operation fails with [`StoreError`].
///
/// A store has a clock of its own (the same one as the [`ApiKeys`](crate::ApiKeys)
/// on it, in tests a shared [`ManualClock`](crate::ManualClock)): it tells live
/// keys from dead ones for the per-owner cap and for retention.
pub trait KeyStore: Send + Sync {
    /// Stores a new key without checking its owner's cap.
    fn insert(&self, record: KeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new key if its owner holds fewer than `max_live` live keys
    /// (dead ones do not count); `false`, and nothing stored, otherwise.
    /// The check and the insert are one atomic step for concurrent callers:
    /// the cap holds exactly.
    fn insert_capped(
        &self,
        record: KeyRecord,
        max_live: usize,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The key with id `key_id`, if there is one.
    fn get(
        &self,
        key_id: &KeyId,
    ) -> impl Future<Output = Result<Option<KeyRecord>, StoreError>> + Send;

    /// Sets a key's status; `false` if there is no such key.
    fn set_status(
        &self,
        key_id: &KeyId,
        status: KeyStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Sets a key's status to `to` if it is `from` now, as one atomic step
    /// for concurrent callers; `false`, and nothing changed, if its status
    /// is another or there is no such key. A rotation moves its key out of
    /// [`KeyStatus::Active`] this way, so two concurrent rotations of one
    /// key cannot both win (two successors, one of them a leaker's) and a
    /// revocation landing mid-rotation is never overwritten by the
    /// rotation's grace (a revoked key working again).
    fn replace_status(
        &self,
        key_id: &KeyId,
        from: KeyStatus,
        to: KeyStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds a batch of usage (one entry per key, from
    /// [`ApiKeys::flush`](crate::ApiKeys::flush)) to the keys' counters;
    /// keys no longer held are skipped.
    fn record_usage(
        &self,
        batch: &[KeyUsage],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every key of `owner`, oldest first, dead ones included until the
    /// store drops them.
    fn list_owner(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;
}

/// Keys in this process's memory, at most `max_entries` of them: when full,
/// dead keys (revoked, expired, past their grace) are dropped first, then
/// the oldest key, logged as `store_eviction`. Clones share the store.
pub struct MemoryKeyStore<C: Clock = SystemClock> {
    keys: Arc<Mutex<HashMap<KeyId, KeyRecord>>>,
    clock: C,
    max_entries: usize,
    evictions: Arc<AtomicU64>,
}

impl<C: Clock + Clone> Clone for MemoryKeyStore<C> {
    fn clone(&self) -> Self {
        MemoryKeyStore {
            keys: Arc::clone(&self.keys),
            clock: self.clock.clone(),
            max_entries: self.max_entries,
            evictions: Arc::clone(&self.evictions),
        }
    }
}

impl<C: Clock> std::fmt::Debug for MemoryKeyStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKeyStore")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryKeyStore {
    fn default() -> Self {
        MemoryKeyStore::new()
    }
}

impl MemoryKeyStore {
    /// Bounded by [`DEFAULT_MAX_KEYS`], on the system clock.
    pub fn new() -> MemoryKeyStore {
        MemoryKeyStore::with_clock(SystemClock)
    }
}

impl<C: Clock> MemoryKeyStore<C> {
    /// The same on `clock` (which decides which keys are dead when full).
    pub fn with_clock(clock: C) -> MemoryKeyStore<C> {
        MemoryKeyStore {
            keys: Arc::default(),
            clock,
            max_entries: DEFAULT_MAX_KEYS,
            evictions: Arc::default(),
        }
    }

    /// At most `max_entries` keys (at least 1).
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// The bound.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Keys held (dead ones included until dropped).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live keys dropped to stay within the bound.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, KeyRecord>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock> MemoryKeyStore<C> {
    /// Makes room for one more key when full: dead keys first, then the
    /// oldest live one (logged).
    fn make_room(&self, keys: &mut HashMap<KeyId, KeyRecord>, now: u64) {
        if keys.len() < self.max_entries {
            return;
        }
        keys.retain(|_, held| !held.is_dead(now));
        if keys.len() < self.max_entries {
            return;
        }
        let oldest = keys
            .values()
            .min_by_key(|held| (held.created_at, held.key_id))
            .map(|held| held.key_id);
        if let Some(oldest) = oldest {
            keys.remove(&oldest);
            self.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                event = SecurityEvent::StoreEviction.as_str(),
                reason = "api_keys_full",
                key_id = %oldest,
                max_entries = self.max_entries,
                "a live API key was dropped to stay within the bound"
            );
        }
    }
}

impl<C: Clock> KeyStore for MemoryKeyStore<C> {
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut keys = self.lock();
        if !keys.contains_key(&record.key_id) {
            self.make_room(&mut keys, now);
        }
        keys.insert(record.key_id, record);
        Ok(())
    }

    async fn insert_capped(&self, record: KeyRecord, max_live: usize) -> Result<bool, StoreError> {
        let now = self.clock.now();
        // One lock for the count and the insert: concurrent issues cannot
        // both see room for one key.
        let mut keys = self.lock();
        let live = keys
            .values()
            .filter(|held| held.owner == record.owner && !held.is_dead(now))
            .count();
        if live >= max_live {
            return Ok(false);
        }
        if !keys.contains_key(&record.key_id) {
            self.make_room(&mut keys, now);
        }
        keys.insert(record.key_id, record);
        Ok(true)
    }

    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.lock().get(key_id).cloned())
    }

    async fn set_status(&self, key_id: &KeyId, status: KeyStatus) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .get_mut(key_id)
            .map(|held| held.status = status)
            .is_some())
    }

    async fn replace_status(
        &self,
        key_id: &KeyId,
        from: KeyStatus,
        to: KeyStatus,
    ) -> Result<bool, StoreError> {
        Ok(match self.lock().get_mut(key_id) {
            Some(held) if held.status == from => {
                held.status = to;
                true
            }
            _ => false,
        })
    }

    async fn record_usage(&self, batch: &[KeyUsage]) -> Result<(), StoreError> {
        let mut keys = self.lock();
        for usage in batch {
            if let Some(held) = keys.get_mut(&usage.key_id) {
                held.add_usage(usage);
            }
        }
        Ok(())
    }

    async fn list_owner(&self, owner: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let mut owned: Vec<KeyRecord> = self
            .lock()
            .values()
            .filter(|held| held.owner == owner)
            .cloned()
            .collect();
        owned.sort_by_key(|held| (held.created_at, held.key_id));
        Ok(owned)
    }
}
