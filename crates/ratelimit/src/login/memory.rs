//! The in-process login store: sharded maps with a hard cap on entries.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use palisade_errors::SecurityEvent;

use super::decide::{self, Account, Pair, Pass};
use super::{
    AccountKey, DeviceKey, IdHasher, IpKey, LoginRules, LoginStore, LoginVerdict, ThrottleReason,
};
use crate::{StoreError, Timestamp};

/// Default cap on entries: 1,000,000 (about 155 MB at full load: 153 MB,
/// 164 bytes an entry, measured at the cap by `cargo xtask bench`).
pub const DEFAULT_MAX_LOGIN_ENTRIES: usize = 1_000_000;

const MAX_SHARDS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum EntryKey {
    Account(AccountKey),
    Pair(AccountKey, IpKey),
    TrustedDevice(AccountKey, DeviceKey),
    Ip(IpKey),
}

fn is_trust_marker(key: &EntryKey) -> bool {
    matches!(key, EntryKey::TrustedDevice(..))
}

#[derive(Clone, Copy, Debug)]
enum State {
    Account(Account),
    Pair(Pair),
    /// A trusted device and the attempts it made since its last success.
    Trusted {
        failures: u32,
    },
    Ip {
        tat: u64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    state: State,
    /// Microseconds; from then on the entry is as good as absent.
    expires_at: u64,
    /// The shard's write counter when last written: least recently written
    /// entries are evicted first.
    written: u64,
}

struct Shard {
    entries: HashMap<EntryKey, Entry>,
    capacity: usize,
    writes: u64,
}

impl Shard {
    fn live(&self, key: &EntryKey, now: u64) -> Option<State> {
        self.entries
            .get(key)
            .filter(|entry| entry.expires_at > now)
            .map(|entry| entry.state)
    }

    fn put(&mut self, key: EntryKey, state: State, expires_at: u64, now: u64, evicted: &AtomicU64) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now, evicted);
        }
        self.writes = self.writes.wrapping_add(1);
        self.entries.insert(
            key,
            Entry {
                state,
                expires_at,
                written: self.writes,
            },
        );
    }

    /// Drops expired entries; if that is not enough, the least recently
    /// written eighth of the shard, so that the next inserts are cheap again
    /// (one O(n) sweep per n/8 inserts, even under a flood of new keys).
    fn make_room(&mut self, now: u64, evicted: &AtomicU64) {
        self.entries.retain(|_, entry| entry.expires_at > now);
        if self.entries.len() < self.capacity {
            return;
        }
        let keep = self.capacity - (self.capacity / 8).max(1);
        let excess = self.entries.len() - keep;
        // Trust markers go last: evicting them first would let a flood of
        // new usernames strip the real user of the trust that exempts them
        // from the account slowdown, which is what a botnet wants.
        let mut order: Vec<(bool, u64)> = self
            .entries
            .iter()
            .map(|(key, entry)| (is_trust_marker(key), entry.written))
            .collect();
        let (_, &mut cutoff, _) = order.select_nth_unstable(excess - 1);
        // Write counters are unique within a shard: exactly `excess` go.
        self.entries
            .retain(|key, entry| (is_trust_marker(key), entry.written) > cutoff);
        let total = evicted.fetch_add(excess as u64, Ordering::Relaxed) + excess as u64;
        tracing::warn!(
            event = SecurityEvent::StoreEviction.as_str(),
            reason = "login_store_full",
            evicted = excess,
            total,
            "login store full of live entries: least recently written evicted (their counts reset)"
        );
    }
}

/// Login state in this process's memory.
///
/// Bounded: at most `max_entries` entries (default 1,000,000) over all
/// shards, whatever an attacker sends; 10 million IPs trying one password
/// each cost the same memory as one million. Every entry has an expiry;
/// when a shard is full, expired entries go first, then the least recently
/// written ones. Each eviction of a live entry is counted
/// ([`evictions`](Self::evictions)): it is state an attacker managed to
/// flush, so alert on it and size the cap above the normal working set.
///
/// Sharded `Mutex<HashMap>`s: one account's entries (its budget, pairs,
/// trusted devices) share a shard, so each check is atomic under one
/// lock that is never held across an `.await`.
///
/// ```
/// use palisade_ratelimit::login::MemoryLoginStore;
///
/// let store = MemoryLoginStore::new().with_max_entries(10_000);
/// assert_eq!(store.max_entries(), 10_000);
/// assert_eq!(store.len(), 0);
/// ```
pub struct MemoryLoginStore {
    shards: Box<[Mutex<Shard>]>,
    max_entries: usize,
    hasher: IdHasher,
    shard_hasher: RandomState,
    evicted: AtomicU64,
}

impl std::fmt::Debug for MemoryLoginStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLoginStore")
            .field("max_entries", &self.max_entries)
            .field("evictions", &self.evictions())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryLoginStore {
    fn default() -> MemoryLoginStore {
        MemoryLoginStore::new()
    }
}

impl MemoryLoginStore {
    /// A store holding at most [`DEFAULT_MAX_LOGIN_ENTRIES`] entries, with a
    /// random [`IdHasher`].
    pub fn new() -> MemoryLoginStore {
        MemoryLoginStore::build(DEFAULT_MAX_LOGIN_ENTRIES, IdHasher::random())
    }

    /// The same store holding at most `max_entries` entries (at least 1). A
    /// builder step: the store it returns is empty.
    #[must_use]
    pub fn with_max_entries(self, max_entries: usize) -> MemoryLoginStore {
        MemoryLoginStore::build(max_entries, self.hasher)
    }

    fn build(max_entries: usize, hasher: IdHasher) -> MemoryLoginStore {
        let max_entries = max_entries.max(1);
        let shard_count = max_entries.min(MAX_SHARDS);
        // Floor division: the shards together never exceed `max_entries`.
        let capacity = max_entries / shard_count;
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    entries: HashMap::new(),
                    capacity,
                    writes: 0,
                })
            })
            .collect();
        MemoryLoginStore {
            shards,
            max_entries,
            hasher,
            shard_hasher: RandomState::new(),
            evicted: AtomicU64::new(0),
        }
    }

    /// The cap on entries.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Entries held now (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|index| self.lock(index).entries.len())
            .sum()
    }

    /// Whether the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live entries evicted to stay under the cap since the store was made.
    pub fn evictions(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        // Invariant: `index` comes from `shard_index`, so it is in range.
        // Nothing panics while a shard is locked; should it, the map is still
        // a valid map, and refusing every login afterwards would be worse.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn account_shard(&self, account: AccountKey) -> MutexGuard<'_, Shard> {
        // The account key is already a keyed hash.
        self.lock(shard_index(account.as_u64(), self.shards.len()))
    }

    fn ip_shard(&self, ip: IpKey) -> MutexGuard<'_, Shard> {
        self.lock(shard_index(
            self.shard_hasher.hash_one(ip),
            self.shards.len(),
        ))
    }

    fn check_ip_now(&self, ip: IpKey, rules: &LoginRules, now: u64) -> LoginVerdict {
        let key = EntryKey::Ip(ip);
        let mut shard = self.ip_shard(ip);
        let tat = match shard.live(&key, now) {
            Some(State::Ip { tat }) => tat,
            _ => 0,
        };
        if let Some(wait) = decide::exhausted(tat, now, rules.ip_window, rules.ip_interval) {
            return refuse(ThrottleReason::IpFailureBudget, wait);
        }
        let tat = decide::charge(tat, now, rules.ip_window, rules.ip_interval);
        shard.put(key, State::Ip { tat }, tat, now, &self.evicted);
        LoginVerdict::Allow
    }

    fn refund_ip_now(&self, ip: IpKey, rules: &LoginRules, now: u64) {
        let key = EntryKey::Ip(ip);
        let mut shard = self.ip_shard(ip);
        if let Some(State::Ip { tat }) = shard.live(&key, now) {
            match decide::refund(tat, now, rules.ip_interval) {
                Some(tat) => shard.put(key, State::Ip { tat }, tat, now, &self.evicted),
                None => {
                    shard.entries.remove(&key);
                }
            }
        }
    }

    fn check_account_now(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: u64,
    ) -> LoginVerdict {
        let pair_key = EntryKey::Pair(account, ip);
        let account_key = EntryKey::Account(account);
        let mut shard = self.account_shard(account);
        let pair = match shard.live(&pair_key, now) {
            Some(State::Pair(pair)) => Some(pair),
            _ => None,
        };
        let state = match shard.live(&account_key, now) {
            Some(State::Account(state)) => Some(state),
            _ => None,
        };
        // A trusted device still within its budget of attempts since its
        // last success (the trust lapses once they reach it).
        let trusted = device.and_then(|device| {
            let key = EntryKey::TrustedDevice(account, device);
            let entry = shard
                .entries
                .get(&key)
                .filter(|entry| entry.expires_at > now)?;
            match entry.state {
                State::Trusted { failures } if failures < rules.trusted_failures => {
                    Some((key, failures, entry.expires_at))
                }
                _ => None,
            }
        });
        let trusted_device = || trusted.is_some();
        match decide::check_account(rules, pair, state, trusted_device, now) {
            Err((reason, wait)) => refuse(reason, wait),
            Ok((pair, state, pass)) => {
                // The attempt counts against the device, as against the
                // account, until a success gives it back.
                if let Some((key, failures, expires_at)) = trusted {
                    shard.put(
                        key,
                        State::Trusted {
                            failures: failures + 1,
                        },
                        expires_at,
                        now,
                        &self.evicted,
                    );
                }
                let pair_expiry = now.saturating_add(rules.failure_memory);
                shard.put(pair_key, State::Pair(pair), pair_expiry, now, &self.evicted);
                let account_expiry = decide::account_expiry(rules, &state);
                shard.put(
                    account_key,
                    State::Account(state),
                    account_expiry,
                    now,
                    &self.evicted,
                );
                match pass {
                    Pass::Allow => LoginVerdict::Allow,
                    Pass::Challenge => LoginVerdict::Challenge {
                        reason: ThrottleReason::AccountSlowdown,
                    },
                }
            }
        }
    }

    fn record_success_now(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: u64,
    ) {
        let mut shard = self.account_shard(account);
        shard.entries.remove(&EntryKey::Pair(account, ip));
        let account_key = EntryKey::Account(account);
        if let Some(State::Account(state)) = shard.live(&account_key, now) {
            match decide::account_after_success(rules, state, now) {
                Some(state) => {
                    let expiry = decide::account_expiry(rules, &state);
                    shard.put(
                        account_key,
                        State::Account(state),
                        expiry,
                        now,
                        &self.evicted,
                    );
                }
                None => {
                    shard.entries.remove(&account_key);
                }
            }
        }
        if rules.trusted_ttl == 0 {
            return;
        }
        let until = now.saturating_add(rules.trusted_ttl);
        if let Some(device) = device {
            shard.put(
                EntryKey::TrustedDevice(account, device),
                State::Trusted { failures: 0 },
                until,
                now,
                &self.evicted,
            );
        }
    }
}

fn shard_index(hash: u64, shards: usize) -> usize {
    // The remainder is below `shards`, which is a usize.
    usize::try_from(hash % shards as u64).unwrap_or(0)
}

fn refuse(reason: ThrottleReason, wait_micros: u64) -> LoginVerdict {
    LoginVerdict::Refuse {
        reason,
        retry_after: std::time::Duration::from_micros(wait_micros),
    }
}

impl LoginStore for MemoryLoginStore {
    fn id_hasher(&self) -> &IdHasher {
        &self.hasher
    }

    async fn check_ip(
        &self,
        ip: IpKey,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<LoginVerdict, StoreError> {
        Ok(self.check_ip_now(ip, rules, now.as_micros()))
    }

    async fn refund_ip(
        &self,
        ip: IpKey,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.refund_ip_now(ip, rules, now.as_micros());
        Ok(())
    }

    async fn check_account(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<LoginVerdict, StoreError> {
        Ok(self.check_account_now(account, ip, device, rules, now.as_micros()))
    }

    async fn record_account_success(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.record_success_now(account, ip, device, rules, now.as_micros());
        Ok(())
    }
}
