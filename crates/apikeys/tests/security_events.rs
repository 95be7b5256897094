//! The crate's denials as captured log events: shared names and fields, and
//! no key or secret anywhere in them.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use palisade_apikeys::{
    ApiKeyErrorKind, ApiKeys, KeyId, KeyRecord, KeyRequest, KeyStatus, KeyStore, KeyUsage,
    ManualClock, MemoryKeyStore, Pepper, StoreError,
};
use palisade_errors::testing::EventCapture;
use palisade_errors::{SecurityEvent, SubjectHash};

#[tokio::test(flavor = "current_thread")]
async fn refusals_are_logged_with_the_vocabulary_and_no_key() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let keys = ApiKeys::new(
        MemoryKeyStore::with_clock(clock.clone()),
        Pepper::new("p1", b"a-pepper-of-thirty-two-bytes-!!!".to_vec()).unwrap(),
    )
    .with_clock(clock.clone());
    let ip: IpAddr = "198.51.100.4".parse().unwrap();
    let good = keys
        .issue(
            KeyRequest::new("alice", "k")
                .scopes(["read"])
                .allowed_ips(["198.51.100.0/24".parse().unwrap()]),
            &["read"],
        )
        .await
        .unwrap();
    let expiring = keys
        .issue(
            KeyRequest::new("alice", "e").expires_in(Duration::from_secs(10)),
            &[],
        )
        .await
        .unwrap();
    let revoked = keys
        .issue(KeyRequest::new("alice", "r"), &[])
        .await
        .unwrap();
    keys.revoke("alice", revoked.info.key_id).await.unwrap();
    clock.advance(Duration::from_secs(10));
    let unknown = ApiKeys::new(
        MemoryKeyStore::new(),
        Pepper::new("p1", vec![1; 32]).unwrap(),
    )
    .issue(KeyRequest::new("x", "u"), &[])
    .await
    .unwrap();
    let good_key = good.key.expose_secret();
    let typo = good_key.replacen("pal_live_", "pal_live_Z", 1);

    keys.verify(good_key, ip, &["read"]).await.unwrap();
    for (presented, from, scopes) in [
        (typo.as_str(), ip, &[][..]),
        (unknown.key.expose_secret(), ip, &[]),
        (revoked.key.expose_secret(), ip, &[]),
        (expiring.key.expose_secret(), ip, &[]),
        (good_key, "203.0.113.1".parse().unwrap(), &[]),
        (good_key, ip, &["write"]),
    ] {
        assert!(keys.verify(presented, from, scopes).await.is_err());
    }

    capture.assert_vocabulary();
    let invalid = capture.named(SecurityEvent::AuthnTokenInvalid);
    let reasons: Vec<_> = invalid.iter().map(|e| e.field("reason").unwrap()).collect();
    assert_eq!(
        reasons,
        ["malformed_key", "unknown_key", "revoked", "expired"]
    );
    assert_eq!(invalid[0].field("problem"), Some("layout"));
    assert_eq!(invalid[0].field("key_id"), None);
    assert_eq!(
        invalid[1].field("key_id"),
        Some(unknown.info.key_id.as_str())
    );
    let alice = SubjectHash::of("alice").to_string();
    assert_eq!(invalid[2].field("subject_hash"), Some(alice.as_str()));
    assert_eq!(invalid[2].field("client_ip"), Some("198.51.100.4"));
    let authz = capture.named(SecurityEvent::AuthzFail);
    let reasons: Vec<_> = authz.iter().map(|e| e.field("reason").unwrap()).collect();
    assert_eq!(reasons, ["ip_not_allowed", "missing_scope"]);
    assert_eq!(authz[0].field("key_id"), Some(good.info.key_id.as_str()));
    assert_eq!(authz[0].field("client_ip"), Some("203.0.113.1"));
    let revocations = capture.named(SecurityEvent::AuthnTokenRevoked);
    assert_eq!(revocations.len(), 1);
    assert_eq!(
        revocations[0].field("key_id"),
        Some(revoked.info.key_id.as_str())
    );

    for key in [&good.key, &expiring.key, &revoked.key, &unknown.key] {
        let full = key.expose_secret();
        capture.assert_absent(full);
        // The secret part alone (after `pal_live_<key_id>_`).
        capture.assert_absent(full.get(32..75).unwrap());
    }
    capture.assert_absent(typo.get(33..76).unwrap());
    capture.assert_absent("a-pepper-of-thirty-two-bytes");
    capture.assert_absent("\"alice\"");
    // Debug output of everything a handler may print.
    let shown = format!("{:?} {:?} {keys:?}", good.key, good.info);
    assert!(!shown.contains(good_key.get(32..75).unwrap()));
    assert!(!shown.contains("a-pepper-of-thirty-two-bytes"));
}

/// A full memory store drops dead keys first, then the oldest live one,
/// logged once as `store_eviction`.
#[tokio::test(flavor = "current_thread")]
async fn a_full_memory_store_evicts_dead_keys_first_then_logs_a_live_eviction() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let store = MemoryKeyStore::with_clock(clock.clone()).with_max_entries(2);
    assert_eq!(store.max_entries(), 2);
    let keys = ApiKeys::new(store.clone(), Pepper::new("p1", vec![1; 32]).unwrap())
        .with_clock(clock.clone());
    let first = keys.issue(KeyRequest::new("a", "1"), &[]).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let second = keys.issue(KeyRequest::new("a", "2"), &[]).await.unwrap();
    keys.revoke("a", second.info.key_id).await.unwrap();
    keys.issue(KeyRequest::new("a", "3"), &[]).await.unwrap();
    assert_eq!((store.len(), store.evictions()), (2, 0));
    assert!(capture.named(SecurityEvent::StoreEviction).is_empty());
    clock.advance(Duration::from_secs(1));
    keys.issue(KeyRequest::new("a", "4"), &[]).await.unwrap();
    assert_eq!((store.len(), store.evictions()), (2, 1));
    let evicted = capture.named(SecurityEvent::StoreEviction);
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].field("key_id"), Some(first.info.key_id.as_str()));
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    assert!(
        keys.verify(first.key.expose_secret(), ip, &[])
            .await
            .is_err()
    );
}

/// A memory store whose usage writes fail while `down` is set.
#[derive(Clone)]
struct Flaky {
    inner: MemoryKeyStore<ManualClock>,
    down: Arc<AtomicBool>,
}

impl KeyStore for Flaky {
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }
    async fn insert_capped(&self, record: KeyRecord, max_live: usize) -> Result<bool, StoreError> {
        self.inner.insert_capped(record, max_live).await
    }
    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(key_id).await
    }
    async fn set_status(&self, key_id: &KeyId, status: KeyStatus) -> Result<bool, StoreError> {
        self.inner.set_status(key_id, status).await
    }
    async fn replace_status(
        &self,
        key_id: &KeyId,
        from: KeyStatus,
        to: KeyStatus,
    ) -> Result<bool, StoreError> {
        self.inner.replace_status(key_id, from, to).await
    }
    async fn record_usage(&self, batch: &[KeyUsage]) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::timeout("api key usage"));
        }
        self.inner.record_usage(batch).await
    }
    async fn list_owner(&self, owner: &str) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_owner(owner).await
    }
}

/// A usage write the store refuses neither refuses the request (the key
/// was verified) nor loses the counts: they are kept for the next flush.
/// A batch at its bound drops further keys' uses, counted and logged.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_usage_flush_keeps_the_counts_and_a_full_batch_counts_its_drops() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let store = Flaky {
        inner: MemoryKeyStore::with_clock(clock.clone()),
        down: Arc::default(),
    };
    let keys = ApiKeys::new(store.clone(), Pepper::new("p1", vec![1; 32]).unwrap())
        .with_clock(clock.clone())
        .with_usage_flush_interval(Duration::from_secs(5))
        .unwrap()
        .with_max_pending_usage(2)
        .unwrap();
    let a = keys.issue(KeyRequest::new("o", "a"), &[]).await.unwrap();
    let b = keys.issue(KeyRequest::new("o", "b"), &[]).await.unwrap();
    let c = keys.issue(KeyRequest::new("o", "c"), &[]).await.unwrap();
    store.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        keys.verify(a.key.expose_secret(), "192.0.2.1".parse().unwrap(), &[])
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(5));
    // Due: the flush fails, the request is still accepted.
    keys.verify(a.key.expose_secret(), "192.0.2.1".parse().unwrap(), &[])
        .await
        .unwrap();
    let error = keys.flush().await.unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::Store);
    assert_eq!(keys.pending_usage(), 1);
    let failures = capture.named(SecurityEvent::StoreUnavailable);
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].field("reason"), Some("api_key_usage"));
    assert_eq!(failures[0].field("keys"), Some("1"));
    // The batch holds two keys: b fits, c's uses are dropped and counted.
    keys.verify(b.key.expose_secret(), "192.0.2.2".parse().unwrap(), &[])
        .await
        .unwrap();
    store.down.store(false, Ordering::SeqCst);
    // Full (2 keys): this verification of c is not held; it flushes a and b.
    keys.verify(c.key.expose_secret(), "192.0.2.3".parse().unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(keys.usage_dropped(), 1);
    let dropped = capture.named(SecurityEvent::StoreEviction);
    assert_eq!(
        dropped.len(),
        1,
        "one event for the drops since the last flush"
    );
    assert_eq!(dropped[0].field("reason"), Some("api_key_usage_dropped"));
    assert_eq!(dropped[0].field("uses"), Some("1"));
    keys.flush().await.unwrap();
    assert_eq!(capture.named(SecurityEvent::StoreEviction).len(), 1);
    let count = |id| {
        let store = store.inner.clone();
        async move { store.get(&id).await.unwrap().unwrap().use_count }
    };
    assert_eq!(count(a.info.key_id).await, 4);
    assert_eq!(count(b.info.key_id).await, 1);
    assert_eq!(count(c.info.key_id).await, 0);
    capture.assert_vocabulary();
    for key in [&a.key, &b.key, &c.key] {
        capture.assert_absent(key.expose_secret());
        capture.assert_absent(key.expose_secret().get(32..75).unwrap());
    }
}
