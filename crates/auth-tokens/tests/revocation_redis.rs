//! The Redis revocation store against a real Redis (127.0.0.1:6379; under
//! `CI=true` an unreachable Redis fails these tests instead of skipping
//! them). Each test is named after the attack it stops and uses its own key
//! prefix, so tests run in parallel.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report; skips say why

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use palisade_auth_tokens::ConfigErrorKind;
use palisade_auth_tokens::revocation::{
    DEFAULT_NOT_BEFORE_RETENTION, RedisRevocationStore, RevocationStore, TokenRef,
};
use palisade_errors::StoreErrorKind;
use palisade_errors::redis::RedisConnection;

/// The Redis under test: 127.0.0.1:6379, or the private Redis Cluster
/// `cargo xtask ci` runs these tests on a second time.
fn url() -> String {
    redis_conformance::redis_url()
}
const ACCESS_LIFETIME: u64 = 15 * 60;
const REFRESH_LIFETIME: u64 = 7 * 24 * 60 * 60;

/// A key prefix no other test (or earlier run) uses.
fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "palisade-test:rv:{test}:{}:{nanos}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The shared Redis under a fresh key prefix, or `None` (skip) when it is
/// down outside CI.
async fn shared_store(test: &str) -> Option<(RedisRevocationStore, String)> {
    let prefix = unique_prefix(test);
    let store = store_at(&prefix);
    // As a service does at start (palisade-server does): write the slots'
    // epoch sentinels before any token is checked. A fresh prefix reports
    // it as a data loss — its first epoch begins now — and a token issued
    // before that instant would count as revoked (fail closed), so a lazy
    // first-check setup a second after `now` would fail the tests below.
    match store.readiness().await {
        Ok(()) => Some((store, prefix)),
        Err(error) if error.kind() == StoreErrorKind::DataLost => Some((store, prefix)),
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

fn store_at(prefix: &str) -> RedisRevocationStore {
    RedisRevocationStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix(prefix)
        .unwrap()
        .with_timeout(Duration::from_millis(500))
        // The 16,384 slot sentinels of a test's prefix go with the test.
        .with_epoch_ttl(Duration::from_secs(30))
}

async fn raw_connection() -> RedisConnection {
    redis_conformance::raw_connection().await
}

/// Redis' clock, in seconds: the stores count TTLs on it.
async fn server_now(connection: &mut RedisConnection) -> u64 {
    let (seconds, _micros): (u64, u64) = redis::cmd("TIME").query_async(connection).await.unwrap();
    seconds
}

async fn keys(connection: &mut RedisConnection, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(connection)
        .await
        .unwrap();
    // The 16,384 slot epoch sentinels are the store's, not a subject's.
    keys.retain(|key| !key.ends_with(":epoch"));
    keys.sort();
    keys
}

async fn pttl(connection: &mut RedisConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

fn access<'a>(jti: &'a str, sid: &'a str, issued_at: u64) -> TokenRef<'a> {
    TokenRef {
        subject: "user-42",
        jti,
        sid: Some(sid),
        issued_at,
    }
}

#[tokio::test]
async fn stolen_access_token_used_after_logout_is_revoked() {
    let Some((store, _)) = shared_store("jti").await else {
        return;
    };
    let now = server_now(&mut raw_connection().await).await;
    let stolen = access("jti-stolen", "session-1", now);
    assert!(!store.is_revoked(stolen).await.unwrap());
    store
        .revoke_token("user-42", "jti-stolen", now + ACCESS_LIFETIME)
        .await
        .unwrap();
    assert!(store.is_revoked(stolen).await.unwrap());
    assert!(
        !store
            .is_revoked(access("jti-other", "session-2", now))
            .await
            .unwrap()
    );
    let foreign = TokenRef {
        subject: "user-43",
        ..stolen
    };
    assert!(!store.is_revoked(foreign).await.unwrap());
    assert!(
        !store
            .is_revoked(access("jti-x", "jti-stolen", now))
            .await
            .unwrap(),
        "a jti is not a sid"
    );
}

#[tokio::test]
async fn revoked_family_kills_access_and_refresh_tokens_of_the_session() {
    let Some((store, _)) = shared_store("family").await else {
        return;
    };
    let now = server_now(&mut raw_connection().await).await;
    store
        .revoke_family("user-42", "session-1", now + REFRESH_LIFETIME)
        .await
        .unwrap();
    for jti in ["access-1", "refresh-1", "access-rotated-later"] {
        assert!(
            store
                .is_revoked(access(jti, "session-1", now))
                .await
                .unwrap(),
            "{jti}"
        );
    }
    assert!(
        !store
            .is_revoked(access("access-2", "session-2", now))
            .await
            .unwrap()
    );
    let no_sid = TokenRef {
        sid: None,
        ..access("access-3", "session-1", now)
    };
    assert!(!store.is_revoked(no_sid).await.unwrap());
}

#[tokio::test]
async fn logout_everywhere_revokes_tokens_issued_at_or_before_not_before() {
    let Some((store, _)) = shared_store("everywhere").await else {
        return;
    };
    let not_before = store.revoke_subject("user-42").await.unwrap();
    let now = server_now(&mut raw_connection().await).await;
    assert!(
        not_before <= now && now - not_before <= 1,
        "Redis time: {not_before} vs {now}"
    );
    assert_eq!(store.not_before("user-42").await.unwrap(), Some(not_before));
    for (jti, sid, issued_at) in [
        ("old", "session-1", not_before - REFRESH_LIFETIME + 1),
        ("just-before", "session-2", not_before - 1),
        ("same-second", "session-3", not_before),
    ] {
        assert!(
            store.is_revoked(access(jti, sid, issued_at)).await.unwrap(),
            "{jti}"
        );
    }
    assert!(
        !store
            .is_revoked(access("new", "session-4", not_before + 1))
            .await
            .unwrap()
    );
    let other = TokenRef {
        subject: "user-43",
        ..access("old", "session-1", not_before)
    };
    assert!(!store.is_revoked(other).await.unwrap());
    // Another subject's `not_before` is the epoch's (minus a second): the
    // store's first use, before the revocation above.
    let epoch_bound = store.not_before("user-43").await.unwrap().unwrap();
    assert!(epoch_bound < not_before, "{epoch_bound} vs {not_before}");
}

#[tokio::test]
async fn not_before_never_moves_backwards() {
    let Some((store, _)) = shared_store("backwards").await else {
        return;
    };
    let mut connection = raw_connection().await;
    let first = store.revoke_subject("user-42").await.unwrap();
    let second = store.revoke_subject("user-42").await.unwrap();
    assert!(second >= first);
    // A later value already stored (set by an instance whose token was
    // issued ahead of Redis' clock, say) is kept, not overwritten by now.
    let future = first + 3_600;
    let key = format!("{}:nbf", store.subject_key_prefix("user-42"));
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(future)
        .arg("EX")
        .arg(60)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(store.revoke_subject("user-42").await.unwrap(), future);
    assert_eq!(store.not_before("user-42").await.unwrap(), Some(future));
    // And its TTL was extended to cover tokens issued up to it.
    let ttl = pttl(&mut connection, &key).await;
    let retention_ms = i64::try_from(DEFAULT_NOT_BEFORE_RETENTION.as_millis()).unwrap();
    assert!(ttl > retention_ms + 3_500_000, "{ttl}");
}

#[tokio::test]
async fn revocations_carry_a_ttl_no_longer_than_the_token_lives() {
    let Some((store, prefix)) = shared_store("ttl").await else {
        return;
    };
    let mut connection = raw_connection().await;
    let now = server_now(&mut connection).await;
    let subject_prefix = store.subject_key_prefix("user-42");
    store
        .revoke_token("user-42", "jti-1", now + ACCESS_LIFETIME)
        .await
        .unwrap();
    store
        .revoke_family("user-42", "session-1", now + REFRESH_LIFETIME)
        .await
        .unwrap();
    // A token already past exp (the verifier's leeway): still at least 1 s.
    store
        .revoke_token("user-42", "jti-edge", now - 5)
        .await
        .unwrap();
    store.revoke_subject("user-42").await.unwrap();
    let keys = keys(&mut connection, &prefix).await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    // Every key expires; none outlives what it protects against. (Lower
    // bounds allow for the seconds Redis' clock ticks during the test.)
    for key in &keys {
        assert!(pttl(&mut connection, key).await > 0, "{key} has no TTL");
    }
    let expected = [
        (
            format!("{subject_prefix}:jti:{}", sha256_hex("jti-1")),
            ACCESS_LIFETIME * 1_000,
        ),
        (
            format!("{subject_prefix}:fam:{}", sha256_hex("session-1")),
            REFRESH_LIFETIME * 1_000,
        ),
        (
            format!("{subject_prefix}:nbf"),
            DEFAULT_NOT_BEFORE_RETENTION.as_secs() * 1_000,
        ),
    ];
    for (key, limit_ms) in &expected {
        let ttl = u64::try_from(pttl(&mut connection, key).await).unwrap();
        assert!(ttl <= *limit_ms, "{key}: {ttl} ms > {limit_ms} ms");
        assert!(
            ttl + 3_000 >= *limit_ms,
            "{key}: {ttl} ms, expected about {limit_ms} ms"
        );
    }
    // A token already past exp (within the verifier's leeway): still
    // revoked, for at least a second.
    let edge = format!("{subject_prefix}:jti:{}", sha256_hex("jti-edge"));
    let ttl = pttl(&mut connection, &edge).await;
    assert!((1..=1_000).contains(&ttl), "{ttl}");

    // A second, shorter revocation never shortens the first.
    let family = format!("{subject_prefix}:fam:{}", sha256_hex("session-1"));
    store
        .revoke_family("user-42", "session-1", now + 60)
        .await
        .unwrap();
    let ttl = pttl(&mut connection, &family).await;
    assert!(ttl > 60_000, "{ttl}");

    // Expiry: a short revocation is gone, and the token valid, once dead.
    // (Another subject: user-42's `not_before` above covers `now`.)
    store
        .revoke_token("user-7", "jti-short", now + 1)
        .await
        .unwrap();
    let short = TokenRef {
        subject: "user-7",
        ..access("jti-short", "session-9", now)
    };
    assert!(store.is_revoked(short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(!store.is_revoked(short).await.unwrap());
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test]
async fn one_subjects_keys_share_one_slot_and_hold_no_raw_ids() {
    let Some((store, prefix)) = shared_store("slots").await else {
        return;
    };
    let mut connection = raw_connection().await;
    let now = server_now(&mut connection).await;
    // A subject with braces cannot choose its own hash tag.
    let subject = "alice}{evil";
    store
        .revoke_token(subject, "jti-secret-1", now + 60)
        .await
        .unwrap();
    store
        .revoke_family(subject, "sid-secret-1", now + 60)
        .await
        .unwrap();
    store.revoke_subject(subject).await.unwrap();
    store
        .revoke_token("bob", "jti-secret-2", now + 60)
        .await
        .unwrap();

    let keys = keys(&mut connection, &prefix).await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    let tag_of = |key: &str| -> String {
        let rest = key.strip_prefix(&format!("{prefix}:{{")).unwrap();
        let (tag, _) = rest.split_once('}').unwrap();
        tag.to_owned()
    };
    let alice = format!("{prefix}:{{{}}}", sha256_hex(subject).get(..16).unwrap());
    assert_eq!(store.subject_key_prefix(subject), alice);
    let alices: Vec<&String> = keys.iter().filter(|key| key.starts_with(&alice)).collect();
    assert_eq!(alices.len(), 3, "{keys:?}");
    for key in &keys {
        let tag = tag_of(key);
        assert_eq!(tag.len(), 16);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
        for raw in ["alice", "evil", "bob", "secret"] {
            assert!(!key.contains(raw), "{key} contains {raw}");
        }
    }
    let alice_tag = tag_of(alices[0]);
    assert!(alices.iter().all(|key| tag_of(key) == alice_tag));
    assert_ne!(
        tag_of(&format!("{}:x", store.subject_key_prefix("bob"))),
        alice_tag
    );
    for key in &alices {
        let suffix = key.strip_prefix(&alice).unwrap();
        assert!(
            suffix == ":nbf"
                || suffix == format!(":jti:{}", sha256_hex("jti-secret-1"))
                || suffix == format!(":fam:{}", sha256_hex("sid-secret-1")),
            "{key}"
        );
    }
    // Nor do the values hold the ids.
    for key in &keys {
        let value: String = redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(!value.contains("secret") && !value.contains("alice"));
    }
}

#[tokio::test]
async fn logout_on_one_instance_holds_on_every_instance() {
    let Some((first, prefix)) = shared_store("instances").await else {
        return;
    };
    let second = store_at(&prefix);
    // Its connection is its own: made (and the epochs checked) before use.
    let started = Instant::now();
    while let Err(error) = second.readiness().await {
        assert!(started.elapsed() < Duration::from_secs(5), "{error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = server_now(&mut raw_connection().await).await;
    let token = access("jti-1", "session-1", now);
    assert!(!second.is_revoked(token).await.unwrap());
    first
        .revoke_token("user-42", "jti-1", now + 60)
        .await
        .unwrap();
    assert!(second.is_revoked(token).await.unwrap());
    let not_before = second.revoke_subject("user-42").await.unwrap();
    assert_eq!(first.not_before("user-42").await.unwrap(), Some(not_before));
    // A clone shares the connection and the state.
    assert!(first.clone().is_revoked(token).await.unwrap());
}

#[tokio::test]
async fn a_script_flush_does_not_turn_checks_into_errors() {
    let Some((store, _)) = shared_store("noscript").await else {
        return;
    };
    let mut connection = raw_connection().await;
    let now = server_now(&mut connection).await;
    store
        .revoke_token("user-42", "jti-1", now + 60)
        .await
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(store.is_revoked(access("jti-1", "s", now)).await.unwrap());
}

#[tokio::test]
async fn a_corrupted_not_before_fails_closed() {
    let Some((store, _)) = shared_store("corrupt").await else {
        return;
    };
    let mut connection = raw_connection().await;
    let key = format!("{}:nbf", store.subject_key_prefix("user-42"));
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("garbage")
        .arg("EX")
        .arg(60)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(store.is_revoked(access("jti", "s", 1)).await.is_err());
    assert!(store.revoke_subject("user-42").await.is_err());
    assert!(store.not_before("user-42").await.is_err());
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_quickly_never_valid() {
    // Port 1: nothing listens. The verifier turns the error into 503.
    let store = RedisRevocationStore::connect_lazy("redis://127.0.0.1:1/0")
        .unwrap()
        .with_timeout(Duration::from_millis(50));
    let started = Instant::now();
    let token = access("jti", "s", 1);
    assert!(store.is_revoked(token).await.is_err());
    assert!(store.revoke_token("user-42", "jti", 100).await.is_err());
    assert!(store.revoke_family("user-42", "s", 100).await.is_err());
    assert!(store.revoke_subject("user-42").await.is_err());
    assert!(store.not_before("user-42").await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let error: palisade_errors::Error = store.is_revoked(token).await.unwrap_err().into();
    assert_eq!(error.status(), 503);
}

#[tokio::test]
async fn a_stalled_redis_costs_one_timeout_not_a_hang() {
    // A listener that accepts and never answers (a hung Redis).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store = RedisRevocationStore::connect_lazy(&format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .with_timeout(Duration::from_millis(50));
    let started = Instant::now();
    assert!(store.is_revoked(access("jti", "s", 1)).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn prefix_braces_cannot_pin_every_subject_to_one_slot() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    // A brace in the prefix would be every key's hash tag: refused, not
    // silently rewritten.
    let store = RedisRevocationStore::connect_lazy(&url()).unwrap();
    let refused = store.with_key_prefix("app:{all}").unwrap_err();
    assert_eq!(refused.kind(), ConfigErrorKind::InvalidKeyPrefix);
    let store = RedisRevocationStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix("app:all")
        .unwrap();
    let key = store.subject_key_prefix("user-42");
    assert!(key.starts_with("app:all:{"), "{key}");
    assert_eq!(key.matches('{').count(), 1);
}

// --- The conformance tests every Redis store passes (CONTRIBUTING.md) ---------------

#[macro_use]
#[path = "../../../tests/redis_conformance.rs"]
mod redis_conformance;

/// The revocation store as the conformance tests drive it: one logout of
/// an access token of the user's text as subject.
struct Revocations(RedisRevocationStore);

impl redis_conformance::Subject for Revocations {
    fn build(url: &str, prefix: &str) -> Result<Self, String> {
        RedisRevocationStore::connect_lazy(url)
            .map_err(|error| error.to_string())?
            .with_key_prefix(prefix)
            .map(Revocations)
            .map_err(|error| error.to_string())
    }

    fn with_timeout(self, timeout: Duration) -> Self {
        Revocations(self.0.with_timeout(timeout))
    }

    async fn exercise(&self, user_text: &str) -> Result<(), palisade_errors::StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.0
            .revoke_token(user_text, "conformance-jti", now + ACCESS_LIFETIME)
            .await
    }
}

redis_conformance_tests!(revocation_store_conformance, Revocations);
