//! The Redis key store against the Redis on 127.0.0.1:6379 (under
//! `CI=true` an unreachable Redis fails these tests, it never skips them):
//! the shared store behaviour tests, the shared conformance tests, and the
//! layout, TTL policy, cap repair and corrupt-record handling.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report

#[macro_use]
#[path = "../../../tests/redis_conformance.rs"]
mod redis_conformance;

#[macro_use]
#[path = "shared/store_behaviour.rs"]
mod store_behaviour;

use std::time::Duration;

use palisade_apikeys::{
    ApiKeyErrorKind, ApiKeys, ConfigErrorKind, KeyId, KeyRecord, KeyRequest, KeyStatus, KeyStore,
    ManualClock, RedisKeyStore, StoreError,
};
use palisade_errors::redis::RedisConnection;
use store_behaviour::{Fixture, START, ip, pepper};

/// The Redis under test: 127.0.0.1:6379, or the private Redis Cluster
/// `cargo xtask ci` runs these tests on a second time.
fn url() -> String {
    redis_conformance::redis_url()
}

/// The shared Redis under a fresh prefix, or `None` (skip) outside CI.
/// Keys an earlier run of the same test left (active keys never expire)
/// are deleted first.
async fn store(test: &str, clock: ManualClock) -> Option<RedisKeyStore<ManualClock>> {
    let family = format!("ak-{test}");
    let prefix = redis_conformance::unique_prefix(&family);
    let store = RedisKeyStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix(&prefix)
        .unwrap()
        .with_timeout(Duration::from_millis(500))
        .with_clock(clock);
    match store
        .get(&KeyId::parse("0000000000000000000000").unwrap())
        .await
    {
        Ok(_) => {
            let mut connection = redis().await;
            let pattern = format!("palisade-conformance:{family}:*");
            let stale: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut connection)
                .await
                .unwrap();
            if !stale.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(&stale)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
            }
            Some(store)
        }
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Redis at {} is required under CI=true: {error}",
                url()
            );
            eprintln!("skipping: Redis at {} is unreachable: {error}", url());
            None
        }
    }
}

struct Redis;

impl Fixture for Redis {
    type Store = RedisKeyStore<ManualClock>;

    async fn store(test: &str, clock: ManualClock) -> Option<Self::Store> {
        store(test, clock).await
    }
}

store_behaviour_tests!(redis_store_behaviour, Redis);

struct Conformance(RedisKeyStore);

impl redis_conformance::Subject for Conformance {
    fn build(url: &str, prefix: &str) -> Result<Self, String> {
        RedisKeyStore::connect_lazy(url)
            .map_err(|error| error.to_string())?
            .with_key_prefix(prefix)
            .map(Conformance)
            .map_err(|error| error.to_string())
    }

    fn with_timeout(self, timeout: Duration) -> Self {
        Conformance(self.0.with_timeout(timeout))
    }

    /// Issues a key for `user_text` through the capped insert, as `ApiKeys`
    /// does. The key expires (in an hour), so every record written has a
    /// TTL and the conformance TTL check applies in full; the one record
    /// kept without a TTL (an active key without expiry) is tested below.
    async fn exercise(&self, user_text: &str) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let inserted = self
            .0
            .insert_capped(record(user_text, now, Some(now + 3600)), 20)
            .await?;
        assert!(inserted);
        Ok(())
    }

    /// The key hash's tag is its key id: 22 base62 characters, random and
    /// public. The owner set's tag is the default 16 hex digits.
    fn is_hash_tag(tag: &str) -> bool {
        KeyId::parse(tag).is_some()
            || (tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

redis_conformance_tests!(api_key_store_conformance, Conformance);

fn record(owner: &str, now: u64, expires_at: Option<u64>) -> KeyRecord {
    let mut id = [0u8; 22];
    getrandom::fill(&mut id).unwrap();
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // The first character stays below the 16-byte bound.
    let text: String = id
        .iter()
        .enumerate()
        .map(|(n, b)| {
            if n == 0 {
                '0'
            } else {
                char::from(alphabet[usize::from(*b) % 62])
            }
        })
        .collect();
    KeyRecord {
        key_id: KeyId::parse(&text).unwrap(),
        pepper_id: "p1".to_owned(),
        secret_hmac: [5; 32],
        owner: owner.to_owned(),
        name: "conformance".to_owned(),
        scopes: vec!["read".to_owned()],
        created_at: now,
        expires_at,
        last_used_at: None,
        use_count: 0,
        last_used_ip: None,
        allowed_ips: Vec::new(),
        status: KeyStatus::Active,
    }
}

async fn redis() -> RedisConnection {
    redis_conformance::raw_connection().await
}

async fn pttl(connection: &mut RedisConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// An active key without expiry must never expire by itself (a TTL would
/// switch a working integration off: an outage), nor may its owner's set;
/// a key that dies gets the retention TTL past its death, and once the
/// owner has no key that can live, so does the owner's set.
#[tokio::test]
async fn ttl_policy_active_keys_persist_dead_keys_are_retained_then_expire() {
    let clock = ManualClock::from_unix_secs(START);
    let Some(store) = store("ttl", clock.clone()).await else {
        return;
    };
    let store = store
        .with_retention(Duration::from_secs(7 * 86_400))
        .unwrap();
    let keys = ApiKeys::new(store.clone(), pepper())
        .with_clock(clock.clone())
        .with_rotation_grace(Duration::from_secs(3600))
        .unwrap();
    let mut connection = redis().await;
    let forever = keys
        .issue(KeyRequest::new("alice", "f"), &[])
        .await
        .unwrap();
    let expiring = keys
        .issue(
            KeyRequest::new("alice", "e").expires_in(Duration::from_secs(86_400)),
            &[],
        )
        .await
        .unwrap();
    let hash = store.key(&forever.info.key_id);
    let owner = store.owner_key("alice");
    assert_eq!(
        hash,
        format!(
            "{}:{{{}}}",
            hash.split(":{").next().unwrap(),
            forever.info.key_id
        )
    );
    assert!(owner.ends_with("}:owner"));
    assert_eq!(pttl(&mut connection, &hash).await, -1, "never expires");
    assert_eq!(pttl(&mut connection, &owner).await, -1);
    let ttl = pttl(&mut connection, &store.key(&expiring.info.key_id)).await;
    assert!((8 * DAY_MS - 1000..=8 * DAY_MS + 1).contains(&ttl), "{ttl}");

    // Rotation: the old key's record lives through the grace and the retention.
    let rotated = keys.rotate("alice", forever.info.key_id).await.unwrap();
    let ttl = pttl(&mut connection, &hash).await;
    assert!(
        (7 * DAY_MS + 3_600_000 - 1000..=7 * DAY_MS + 3_600_001).contains(&ttl),
        "{ttl}"
    );
    assert_eq!(
        pttl(&mut connection, &owner).await,
        -1,
        "the new key persists"
    );
    // Revoking the last key that could live gives the owner's set a TTL.
    keys.revoke("alice", rotated.info.key_id).await.unwrap();
    let ttl = pttl(&mut connection, &store.key(&rotated.info.key_id)).await;
    assert!((7 * DAY_MS - 1000..=7 * DAY_MS + 1).contains(&ttl), "{ttl}");
    let ttl = pttl(&mut connection, &owner).await;
    assert!(
        (8 * DAY_MS - 1000..=8 * DAY_MS + 1).contains(&ttl),
        "the longest-lived member: the expiring key ({ttl})"
    );
    // Listing still shows all three, with their statuses.
    assert_eq!(keys.list("alice").await.unwrap().len(), 3);
}

/// A status change whose second call (the owner set) was lost leaves the
/// owner's set counting a dead key as live: the owner gets a 409 early, never
/// a key over the cap, and the next issue at the cap repairs the set.
#[tokio::test]
async fn a_lost_owner_set_update_is_repaired_at_the_cap() {
    let clock = ManualClock::from_unix_secs(START);
    let Some(store) = store("repair", clock.clone()).await else {
        return;
    };
    let keys = ApiKeys::new(store.clone(), pepper())
        .with_clock(clock.clone())
        .with_max_keys_per_owner(2)
        .unwrap();
    let first = keys.issue(KeyRequest::new("bob", "1"), &[]).await.unwrap();
    keys.issue(KeyRequest::new("bob", "2"), &[]).await.unwrap();
    let mut connection = redis().await;
    // The first call of a revocation, alone.
    let _: () = redis::cmd("HSET")
        .arg(store.key(&first.info.key_id))
        .arg("status")
        .arg("revoked")
        .query_async(&mut connection)
        .await
        .unwrap();
    keys.issue(KeyRequest::new("bob", "3"), &[]).await.unwrap();
    let error = keys
        .issue(KeyRequest::new("bob", "4"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::TooManyKeys);
    let live: usize = redis::cmd("ZCOUNT")
        .arg(store.owner_key("bob"))
        .arg(format!("({START}"))
        .arg("+inf")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(live, 2);
}

/// Attack: a record planted or damaged in Redis (a tampered status, a
/// truncated HMAC) is an error and a 503, never an accepted key.
#[tokio::test]
async fn a_corrupt_record_is_an_error_never_a_key() {
    let clock = ManualClock::from_unix_secs(START);
    let Some(store) = store("corrupt", clock.clone()).await else {
        return;
    };
    let keys = ApiKeys::new(store.clone(), pepper()).with_clock(clock);
    let new = keys
        .issue(KeyRequest::new("carol", "k"), &[])
        .await
        .unwrap();
    let mut connection = redis().await;
    for (field, value) in [("status", "enabled"), ("hmac", "00ff"), ("v", "2")] {
        let fresh = keys
            .issue(KeyRequest::new("carol", "k"), &[])
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(store.key(&fresh.info.key_id))
            .arg(field)
            .arg(value)
            .query_async(&mut connection)
            .await
            .unwrap();
        let error = keys
            .verify(fresh.key.expose_secret(), ip("192.0.2.1"), &[])
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ApiKeyErrorKind::Store, "{field}");
        assert_eq!(palisade_errors::Error::from(error).status(), 503);
    }
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
}

/// Usage of a key whose record is gone (retention over) does not re-create
/// it as a TTL-less hash.
#[tokio::test]
async fn usage_of_a_deleted_key_does_not_recreate_it() {
    let clock = ManualClock::from_unix_secs(START);
    let Some(store) = store("usage-gone", clock.clone()).await else {
        return;
    };
    let keys = ApiKeys::new(store.clone(), pepper()).with_clock(clock);
    let new = keys.issue(KeyRequest::new("dave", "k"), &[]).await.unwrap();
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    let mut connection = redis().await;
    let hash = store.key(&new.info.key_id);
    let _: () = redis::cmd("DEL")
        .arg(&hash)
        .query_async(&mut connection)
        .await
        .unwrap();
    keys.flush().await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&hash)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn a_refused_prefix_or_retention_is_a_config_error() {
    let error = RedisKeyStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix("app:{x}")
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidKeyPrefix);
    assert!(error.to_string().contains("brace"), "{error}");
    let error = RedisKeyStore::connect_lazy(&url())
        .unwrap()
        .with_retention(Duration::from_secs(367 * 86_400))
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidLimit);
}
