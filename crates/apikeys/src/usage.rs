//! Usage counters without a store write per request: accepted keys are
//! counted in memory (bounded) and written to the store in one batch every
//! flush interval and on [`ApiKeys::flush`](crate::ApiKeys::flush).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use palisade_errors::{SecurityEvent, StoreError};

use crate::clock::Clock;
use crate::config::{ConfigError, ConfigErrorKind};
use crate::error::ApiKeyError;
use crate::key::KeyId;
use crate::keys::ApiKeys;
use crate::store::KeyStore;

/// Keys with pending usage held by default before a flush is forced.
pub const DEFAULT_MAX_PENDING_USAGE: usize = 10_000;
/// How often pending usage is written by default.
pub const DEFAULT_USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// The usage of one key since the last flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key.
    pub key_id: KeyId,
    /// Accepted uses since the last flush.
    pub count: u64,
    /// The latest of them, Unix seconds.
    pub last_used_at: u64,
    /// The client address of the latest.
    pub last_used_ip: IpAddr,
}

struct Pending {
    by_key: HashMap<KeyId, KeyUsage>,
    /// The first second at which a verification flushes.
    next_flush: u64,
}

/// The in-memory batch: a bounded map of pending usage per key.
pub(crate) struct UsageBatcher {
    pending: Mutex<Pending>,
    max_keys: usize,
    interval_secs: u64,
    dropped: AtomicU64,
    reported: AtomicU64,
}

impl std::fmt::Debug for UsageBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageBatcher")
            .field("pending", &self.len())
            .field("max_keys", &self.max_keys)
            .field("interval_secs", &self.interval_secs)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl UsageBatcher {
    pub(crate) fn new(max_keys: usize, interval: Duration) -> UsageBatcher {
        UsageBatcher {
            pending: Mutex::new(Pending {
                by_key: HashMap::new(),
                next_flush: 0,
            }),
            max_keys,
            interval_secs: interval.as_secs(),
            dropped: AtomicU64::new(0),
            reported: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one accepted use; `true` when a flush is due (the interval
    /// passed, or the map is full).
    pub(crate) fn record(&self, key_id: KeyId, at: u64, ip: IpAddr) -> bool {
        let mut pending = self.lock();
        if pending.next_flush == 0 {
            pending.next_flush = at.saturating_add(self.interval_secs);
        }
        let len = pending.by_key.len();
        match pending.by_key.get_mut(&key_id) {
            Some(usage) => {
                usage.count = usage.count.saturating_add(1);
                if at >= usage.last_used_at {
                    usage.last_used_at = at;
                    usage.last_used_ip = ip;
                }
            }
            None if len < self.max_keys => {
                pending.by_key.insert(
                    key_id,
                    KeyUsage {
                        key_id,
                        count: 1,
                        last_used_at: at,
                        last_used_ip: ip,
                    },
                );
            }
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        at >= pending.next_flush || pending.by_key.len() >= self.max_keys
    }

    /// Takes everything pending (the next flush is one interval from `now`).
    pub(crate) fn take(&self, now: u64) -> Vec<KeyUsage> {
        let mut pending = self.lock();
        pending.next_flush = now.saturating_add(self.interval_secs);
        pending.by_key.drain().map(|(_, usage)| usage).collect()
    }

    /// Puts back a batch the store did not take, as far as there is room
    /// (what does not fit is counted as dropped).
    pub(crate) fn restore(&self, batch: Vec<KeyUsage>) {
        let mut pending = self.lock();
        for usage in batch {
            let len = pending.by_key.len();
            match pending.by_key.get_mut(&usage.key_id) {
                Some(held) => {
                    held.count = held.count.saturating_add(usage.count);
                    if usage.last_used_at > held.last_used_at {
                        held.last_used_at = usage.last_used_at;
                        held.last_used_ip = usage.last_used_ip;
                    }
                }
                None if len < self.max_keys => {
                    pending.by_key.insert(usage.key_id, usage);
                }
                None => {
                    self.dropped.fetch_add(usage.count, Ordering::Relaxed);
                }
            }
        }
    }

    /// Drops since the last call (each is logged once, in a sum).
    pub(crate) fn unreported_drops(&self) -> u64 {
        let dropped = self.dropped();
        dropped.saturating_sub(self.reported.swap(dropped, Ordering::Relaxed))
    }

    /// The pending usage of `key_id`, if any.
    pub(crate) fn pending_for(&self, key_id: &KeyId) -> Option<KeyUsage> {
        self.lock().by_key.get(key_id).copied()
    }

    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }

    pub(crate) fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }

    /// Keys with pending usage.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Uses not counted because the map was full (or a failed flush could
    /// not be put back).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Usage batching settings and the flush.
impl<S: KeyStore, C: Clock> ApiKeys<S, C> {
    /// Writes usage counters to the store every `interval` (1 s to 1 h;
    /// default 10 s): the verification that finds the interval passed
    /// writes the batch, one store call for every key used since.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidLimit`] outside that range.
    pub fn with_usage_flush_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&interval) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "usage flush interval must be 1 s to 1 h",
            ));
        }
        self.usage = UsageBatcher::new(self.usage.max_keys(), interval);
        Ok(self)
    }

    /// Holds pending usage for at most `max` keys (1 to 1 000 000; default
    /// 10 000): a full batch is written at the next verification, and uses
    /// of further keys meanwhile are counted in
    /// [`usage_dropped`](Self::usage_dropped), not held.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidLimit`] outside that range.
    pub fn with_max_pending_usage(mut self, max: usize) -> Result<Self, ConfigError> {
        if !(1..=1_000_000).contains(&max) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "max pending usage must be 1 to 1000000 keys",
            ));
        }
        self.usage = UsageBatcher::new(max, self.usage.interval());
        Ok(self)
    }

    /// Keys with usage not yet written to the store.
    pub fn pending_usage(&self) -> usize {
        self.usage.len()
    }

    /// Uses not counted: the batch was full, or a failed write could not
    /// be put back.
    pub fn usage_dropped(&self) -> u64 {
        self.usage.dropped()
    }

    /// Writes all pending usage to the store now (call it at shutdown).
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::Store`](crate::ApiKeyErrorKind::Store); the batch
    /// is kept for the next flush (as far as the bound allows).
    pub async fn flush(&self) -> Result<(), ApiKeyError> {
        self.flush_usage().await.map_err(ApiKeyError::store)
    }

    pub(crate) async fn flush_usage(&self) -> Result<(), StoreError> {
        let batch = self.usage.take(self.clock.now());
        let result = if batch.is_empty() {
            Ok(())
        } else {
            self.store.record_usage(&batch).await
        };
        if let Err(error) = &result {
            tracing::warn!(
                event = SecurityEvent::StoreUnavailable.as_str(),
                reason = "api_key_usage",
                store_error = error.kind().as_str(),
                keys = batch.len(),
                "API key usage not written; kept for the next flush"
            );
            self.usage.restore(batch);
        }
        let lost = self.usage.unreported_drops();
        if lost > 0 {
            tracing::warn!(
                event = SecurityEvent::StoreEviction.as_str(),
                reason = "api_key_usage_dropped",
                uses = lost,
                "API key uses not counted: the pending usage batch was full"
            );
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(n: u8) -> KeyId {
        KeyId::parse(&format!("{n:0>22}")).unwrap()
    }

    #[test]
    fn a_full_batch_drops_new_keys_and_counts_them_but_keeps_counting_held_ones() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let batcher = UsageBatcher::new(2, Duration::from_secs(60));
        assert!(!batcher.record(id(1), 100, ip));
        assert!(batcher.record(id(2), 100, ip), "full: a flush is due");
        assert!(batcher.record(id(3), 100, ip));
        assert!(batcher.record(id(1), 101, ip));
        assert_eq!((batcher.len(), batcher.dropped()), (2, 1));
        assert_eq!(batcher.pending_for(&id(1)).unwrap().count, 2);
        let taken = batcher.take(101);
        assert_eq!(taken.iter().map(|u| u.count).sum::<u64>(), 3);
        assert_eq!(batcher.len(), 0);
        // A batch the store refused comes back, as far as there is room.
        assert!(!batcher.record(id(4), 102, ip));
        batcher.restore(taken);
        assert_eq!(batcher.len(), 2);
        let kept: u64 = [id(1), id(2)]
            .iter()
            .filter_map(|key| batcher.pending_for(key))
            .map(|usage| usage.count)
            .sum();
        assert!(kept > 0);
        assert_eq!(
            batcher.dropped(),
            1 + (3 - kept),
            "every use kept or counted"
        );
    }

    #[test]
    fn a_flush_is_due_once_per_interval() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let batcher = UsageBatcher::new(100, Duration::from_secs(10));
        assert!(!batcher.record(id(1), 1000, ip));
        assert!(!batcher.record(id(1), 1009, ip));
        assert!(batcher.record(id(1), 1010, ip));
        let taken = batcher.take(1010);
        assert_eq!(taken[0].count, 3);
        assert_eq!(taken[0].last_used_at, 1010);
        assert!(!batcher.record(id(1), 1019, ip));
        assert!(batcher.record(id(1), 1020, ip));
    }
}
