//! The in-memory reset-token store: one process, bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use palisade_errors::SecurityEvent;
use subtle::ConstantTimeEq;

use super::{ResetRecord, ResetTokenStore, StoreError};
use crate::clock::{Clock, SystemClock};

/// Pending resets a [`MemoryResetTokenStore`] keeps by default.
pub const DEFAULT_MAX_PENDING_RESETS: usize = 100_000;

struct Pending {
    record: ResetRecord,
    expires_at: u64,
}

/// Pending resets in this process's memory, expiring on the injected clock,
/// at most `max_entries` of them (when full, expired ones are dropped
/// first, then the one closest to expiry, logged as `store_eviction`).
/// Clones share the store.
pub struct MemoryResetTokenStore<C: Clock = SystemClock> {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    clock: C,
    max_entries: usize,
    evictions: Arc<AtomicU64>,
}

impl<C: Clock + Clone> Clone for MemoryResetTokenStore<C> {
    fn clone(&self) -> Self {
        MemoryResetTokenStore {
            pending: Arc::clone(&self.pending),
            clock: self.clock.clone(),
            max_entries: self.max_entries,
            evictions: Arc::clone(&self.evictions),
        }
    }
}

impl<C: Clock> std::fmt::Debug for MemoryResetTokenStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryResetTokenStore")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryResetTokenStore {
    fn default() -> Self {
        MemoryResetTokenStore::new()
    }
}

impl MemoryResetTokenStore {
    /// Bounded by [`DEFAULT_MAX_PENDING_RESETS`], on the system clock.
    pub fn new() -> MemoryResetTokenStore {
        MemoryResetTokenStore::with_clock(SystemClock)
    }
}

impl<C: Clock> MemoryResetTokenStore<C> {
    /// The same on `clock`.
    pub fn with_clock(clock: C) -> MemoryResetTokenStore<C> {
        MemoryResetTokenStore {
            pending: Arc::default(),
            clock,
            max_entries: DEFAULT_MAX_PENDING_RESETS,
            evictions: Arc::default(),
        }
    }

    /// At most `max_entries` pending resets (at least 1).
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// The bound.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Pending resets held (expired ones included until dropped).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live resets dropped to stay within the bound.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock> ResetTokenStore for MemoryResetTokenStore<C> {
    async fn put(&self, user: &str, record: ResetRecord, ttl: Duration) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut pending = self.lock();
        if !pending.contains_key(user) && pending.len() >= self.max_entries {
            pending.retain(|_, entry| entry.expires_at > now);
            if pending.len() >= self.max_entries {
                let soonest = pending
                    .iter()
                    .min_by_key(|(_, entry)| entry.expires_at)
                    .map(|(user, _)| user.clone());
                if let Some(soonest) = soonest {
                    pending.remove(&soonest);
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        event = SecurityEvent::StoreEviction.as_str(),
                        reason = "reset_tokens_full",
                        max_entries = self.max_entries,
                        "a pending password reset was dropped to stay within the bound"
                    );
                }
            }
        }
        pending.insert(
            user.to_owned(),
            Pending {
                record,
                expires_at: now.saturating_add(ttl.as_secs()),
            },
        );
        Ok(())
    }

    async fn take(
        &self,
        user: &str,
        token_hash: &[u8; 32],
    ) -> Result<Option<ResetRecord>, StoreError> {
        Ok(self.find(user, token_hash, true))
    }

    async fn peek(
        &self,
        user: &str,
        token_hash: &[u8; 32],
    ) -> Result<Option<ResetRecord>, StoreError> {
        Ok(self.find(user, token_hash, false))
    }
}

impl<C: Clock> MemoryResetTokenStore<C> {
    /// The live pending reset of `user` whose token hash is `token_hash`,
    /// removed when `consume`; an expired one is dropped on the way.
    fn find(&self, user: &str, token_hash: &[u8; 32], consume: bool) -> Option<ResetRecord> {
        let now = self.clock.now();
        let mut pending = self.lock();
        let entry = pending.get(user)?;
        if entry.expires_at <= now {
            pending.remove(user);
            return None;
        }
        if !bool::from(entry.record.token_hash.ct_eq(token_hash)) {
            return None;
        }
        if consume {
            pending.remove(user).map(|entry| entry.record)
        } else {
            Some(entry.record)
        }
    }
}
