//! The in-process family store: one lock, bounded.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{FamilyConfig, FamilyRef, FamilyStore, RotateOutcome, Rotation, TokenHash, same_hash};
use crate::clock::{Clock, SystemClock};
use crate::revocation::StoreError;
use palisade_errors::{SecurityEvent, SubjectHash};

/// Default bound on families: 1,000,000.
pub const DEFAULT_MAX_FAMILIES: usize = 1_000_000;

/// (subject, sid).
type Key = (String, String);

/// Login order: (login time, login counter), so equal seconds still order.
type LoginOrder = (u64, u64);

struct Previous {
    hash: TokenHash,
    rotated_at: u64,
    /// The sealed successor pair, until `sealed_until` (exclusive).
    sealed: Option<Vec<u8>>,
    sealed_until: u64,
}

struct Family {
    current: TokenHash,
    previous: Option<Previous>,
    /// Login order, for the session limit (ties of equal seconds broken).
    started: LoginOrder,
    last_used: u64,
    absolute_at: u64,
    /// When the family ends if unused: `min(last_used + idle, absolute_at)`.
    expires_at: u64,
}

#[derive(Default)]
struct State {
    families: HashMap<Key, Family>,
    by_expiry: BTreeSet<(u64, Key)>,
    /// Each subject's families by login order.
    sessions: HashMap<String, BTreeSet<(LoginOrder, String)>>,
    /// Sealed pairs by the end of their window.
    sealed_by_expiry: BTreeSet<(u64, Key)>,
    logins: u64,
    evictions: u64,
}

impl State {
    fn remove(&mut self, key: &Key) -> bool {
        let Some(family) = self.families.remove(key) else {
            return false;
        };
        self.by_expiry.remove(&(family.expires_at, key.clone()));
        if let Some(previous) = &family.previous {
            self.sealed_by_expiry
                .remove(&(previous.sealed_until, key.clone()));
        }
        if let Some(sessions) = self.sessions.get_mut(&key.0) {
            sessions.remove(&(family.started, key.1.clone()));
            if sessions.is_empty() {
                self.sessions.remove(&key.0);
            }
        }
        true
    }

    /// Drops expired families and sealed pairs whose window has passed.
    fn drop_expired(&mut self, now: u64) {
        while let Some((expires_at, key)) = self.by_expiry.first().cloned() {
            if expires_at > now {
                break;
            }
            self.remove(&key);
        }
        while let Some((until, key)) = self.sealed_by_expiry.first().cloned() {
            if until > now {
                break;
            }
            self.sealed_by_expiry.pop_first();
            if let Some(previous) = self
                .families
                .get_mut(&key)
                .and_then(|family| family.previous.as_mut())
            {
                previous.sealed = None;
            }
        }
    }
}

/// Refresh families in this process: one map under one lock (held for one
/// login or rotation), bounded by
/// [`max_entries`](Self::max_entries) families.
///
/// - Holds per family the SHA-256 of the current refresh token's `jti` and
///   of the one rotated last, and the sealed successor pair only for the
///   grace window (dropped at the first operation after it).
/// - Families are dropped once idle or past their absolute lifetime. At the
///   bound, the family closest to its expiry is ended (logged as
///   `session_expired` with `reason = "evicted"`, counted in
///   [`evictions`](Self::evictions)): its user must log in again.
///
/// Clones share the state. For several instances, use the Redis store.
///
/// ```
/// use palisade_auth_tokens::refresh::MemoryFamilyStore;
///
/// let store = MemoryFamilyStore::new().with_max_entries(100_000);
/// assert_eq!(store.max_entries(), 100_000);
/// assert!(store.is_empty());
/// assert_eq!(store.evictions(), 0);
/// ```
pub struct MemoryFamilyStore<C: Clock = SystemClock> {
    state: Arc<Mutex<State>>,
    clock: Arc<C>,
    max_families: usize,
}

impl<C: Clock> Clone for MemoryFamilyStore<C> {
    fn clone(&self) -> Self {
        MemoryFamilyStore {
            state: Arc::clone(&self.state),
            clock: Arc::clone(&self.clock),
            max_families: self.max_families,
        }
    }
}

impl<C: Clock> std::fmt::Debug for MemoryFamilyStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFamilyStore")
            .field("max_families", &self.max_families)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryFamilyStore {
    fn default() -> MemoryFamilyStore {
        MemoryFamilyStore::new()
    }
}

impl MemoryFamilyStore {
    /// A store on the system clock, bounded by [`DEFAULT_MAX_FAMILIES`].
    pub fn new() -> MemoryFamilyStore {
        MemoryFamilyStore::with_clock(SystemClock)
    }
}

impl<C: Clock> MemoryFamilyStore<C> {
    /// A store on `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(clock: C) -> MemoryFamilyStore<C> {
        MemoryFamilyStore {
            state: Arc::new(Mutex::new(State::default())),
            clock: Arc::new(clock),
            max_families: DEFAULT_MAX_FAMILIES,
        }
    }

    /// Bounds the store to `max_entries` families (at least 1). Set it
    /// when creating the store (clones share the bound they were made with).
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_families = max_entries.max(1);
        self
    }

    /// The bound on families.
    pub fn max_entries(&self) -> usize {
        self.max_families
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under the lock panics (allocation failure aborts); were
        // it to, an index could keep a stale entry, which is only dropped
        // later, never a live family resurrected.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Live families held now.
    pub fn len(&self) -> usize {
        let mut state = self.lock();
        state.drop_expired(self.clock.now());
        state.families.len()
    }

    /// Whether the store holds no live family.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live families ended at the bound since the store was created.
    pub fn evictions(&self) -> u64 {
        self.lock().evictions
    }

    /// The sealed successor pair `family` holds now (within the grace
    /// window of its last rotation), for audits and tests: ciphertext only.
    pub fn sealed_successor(&self, family: FamilyRef<'_>) -> Option<Vec<u8>> {
        let mut state = self.lock();
        state.drop_expired(self.clock.now());
        let key = (family.subject.to_owned(), family.sid.to_owned());
        state
            .families
            .get(&key)
            .and_then(|family| family.previous.as_ref())
            .and_then(|previous| previous.sealed.clone())
    }

    fn start_now(
        &self,
        family: FamilyRef<'_>,
        current: &TokenHash,
        config: &FamilyConfig,
    ) -> Vec<String> {
        let now = self.clock.now();
        let mut state = self.lock();
        state.drop_expired(now);
        let key = (family.subject.to_owned(), family.sid.to_owned());
        state.remove(&key);
        while state.families.len() >= self.max_families {
            let Some((_, victim)) = state.by_expiry.first().cloned() else {
                break;
            };
            state.remove(&victim);
            state.evictions += 1;
            tracing::warn!(
                event = SecurityEvent::SessionExpired.as_str(),
                reason = "evicted",
                subject_hash = %SubjectHash::of(&victim.0),
                max_entries = self.max_families,
                "family store full: the family closest to expiry was ended; raise max_entries"
            );
        }
        state.logins += 1;
        let started = (now, state.logins);
        let absolute_at = now.saturating_add(config.absolute_secs);
        let expires_at = now.saturating_add(config.idle_secs).min(absolute_at);
        state.families.insert(
            key.clone(),
            Family {
                current: *current,
                previous: None,
                started,
                last_used: now,
                absolute_at,
                expires_at,
            },
        );
        state.by_expiry.insert((expires_at, key.clone()));
        let sessions = state.sessions.entry(key.0.clone()).or_default();
        sessions.insert((started, key.1.clone()));
        // Oldest first, never the family just started (it is the newest).
        let mut evicted = Vec::new();
        let over = sessions.len().saturating_sub(config.max_sessions.max(1));
        let victims: Vec<String> = sessions
            .iter()
            .take(over)
            .map(|(_, sid)| sid.clone())
            .collect();
        for sid in victims {
            if state.remove(&(key.0.clone(), sid.clone())) {
                evicted.push(sid);
            }
        }
        evicted
    }

    fn rotate_now(
        &self,
        family: FamilyRef<'_>,
        rotation: Rotation<'_>,
        config: &FamilyConfig,
    ) -> RotateOutcome {
        let now = self.clock.now();
        let mut state = self.lock();
        state.drop_expired(now);
        let key = (family.subject.to_owned(), family.sid.to_owned());
        let Some(record) = state.families.get_mut(&key) else {
            return RotateOutcome::Unknown;
        };
        if same_hash(&record.current, rotation.presented) {
            let old_expiry = record.expires_at;
            let old_sealed = record.previous.as_ref().map(|p| p.sealed_until);
            let sealed_until = now.saturating_add(config.grace_secs);
            let keep_sealed = config.grace_secs > 0;
            record.previous = Some(Previous {
                hash: record.current,
                rotated_at: now,
                sealed: keep_sealed.then(|| rotation.sealed_pair.to_vec()),
                sealed_until,
            });
            record.current = *rotation.successor;
            record.last_used = now;
            record.expires_at = now.saturating_add(config.idle_secs).min(record.absolute_at);
            let new_expiry = record.expires_at;
            if let Some(until) = old_sealed {
                state.sealed_by_expiry.remove(&(until, key.clone()));
            }
            if keep_sealed {
                state.sealed_by_expiry.insert((sealed_until, key.clone()));
            }
            state.by_expiry.remove(&(old_expiry, key.clone()));
            state.by_expiry.insert((new_expiry, key));
            return RotateOutcome::Rotated;
        }
        let replay = record.previous.as_ref().and_then(|previous| {
            let within = now < previous.sealed_until && now >= previous.rotated_at;
            if within && same_hash(&previous.hash, rotation.presented) {
                previous.sealed.clone()
            } else {
                None
            }
        });
        if let Some(sealed) = replay {
            return RotateOutcome::Replay(sealed);
        }
        // A token of this family that is not current was rotated already:
        // someone else holds a copy.
        state.remove(&key);
        RotateOutcome::Reuse
    }
}

impl<C: Clock> FamilyStore for MemoryFamilyStore<C> {
    async fn start(
        &self,
        family: FamilyRef<'_>,
        current: &TokenHash,
        config: &FamilyConfig,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self.start_now(family, current, config))
    }

    async fn rotate(
        &self,
        family: FamilyRef<'_>,
        rotation: Rotation<'_>,
        config: &FamilyConfig,
    ) -> Result<RotateOutcome, StoreError> {
        Ok(self.rotate_now(family, rotation, config))
    }

    async fn end(&self, family: FamilyRef<'_>) -> Result<(), StoreError> {
        let key = (family.subject.to_owned(), family.sid.to_owned());
        self.lock().remove(&key);
        Ok(())
    }
}
