//! Refresh families against a real Redis (127.0.0.1:6379; under `CI=true`
//! an unreachable Redis fails these tests instead of skipping them). Each
//! test uses its own key prefix, so tests run in parallel.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report; skips say why

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use palisade_auth_tokens::refresh::{
    FamilyConfig, FamilyRef, FamilyStore, RedisFamilyStore, RefreshFamilies, TokenPair,
};
use palisade_auth_tokens::{
    Algorithm, Grant, Keyring, SigningKey, SystemClock, TokenErrorKind, TokenIssuer, TokenPolicy,
    TokenVerifier,
};
use palisade_errors::redis::RedisConnection;
use secrecy::SecretSlice;

/// The Redis under test: 127.0.0.1:6379, or the private Redis Cluster
/// `cargo xtask ci` runs these tests on a second time.
fn url() -> String {
    redis_conformance::redis_url()
}
const ACCESS_SECRET: &[u8] = b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const REFRESH_SECRET: &[u8] = b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa";
const SEALING_KEY: &[u8] = b"Qm3Zr7Tw1Yp5Ks9Lx2Vb6Nc0Hd4Jf8Ga";

type Families = RefreshFamilies<RedisFamilyStore, SystemClock>;

fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "palisade-test:rf:{test}:{}:{nanos}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn secret(bytes: &[u8]) -> SecretSlice<u8> {
    SecretSlice::from(bytes.to_vec())
}

fn families(store: RedisFamilyStore, config: FamilyConfig) -> Families {
    let hmac =
        |kid: &str, bytes: &[u8]| SigningKey::hmac(kid, Algorithm::HS256, &secret(bytes)).unwrap();
    let access = Keyring::new([hmac("a1", ACCESS_SECRET)]).unwrap();
    let refresh = Keyring::new([hmac("r1", REFRESH_SECRET)]).unwrap();
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let issuer =
        TokenIssuer::with_clock(access.clone(), refresh.clone(), policy.clone(), SystemClock);
    let verifier = TokenVerifier::with_clock(access, refresh, policy, SystemClock);
    RefreshFamilies::new(issuer, verifier, store, &secret(SEALING_KEY), config).unwrap()
}

/// Families on the shared Redis under a fresh prefix, or `None` (skip)
/// when it is down outside CI.
async fn shared(test: &str, config: FamilyConfig) -> Option<(Families, String)> {
    let prefix = unique_prefix(test);
    let store = RedisFamilyStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix(prefix.as_str())
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let probe = FamilyRef {
        subject: "probe",
        sid: "probe",
    };
    match store.end(probe).await {
        Ok(()) => Some((families(store, config), prefix)),
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

async fn raw_connection() -> RedisConnection {
    redis_conformance::raw_connection().await
}

async fn keys(connection: &mut RedisConnection, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(connection)
        .await
        .unwrap();
    keys.sort();
    keys
}

fn grant(subject: &str) -> Grant {
    Grant {
        subject: subject.into(),
        role: Some(palisade_auth_tokens::authz::Role::admin()),
        ..Grant::default()
    }
}

async fn refresh(families: &Families, token: &str) -> Result<TokenPair, TokenErrorKind> {
    families
        .refresh_without_revocation_dangerously(
            token,
            |subject| async move { Some(grant(&subject)) },
        )
        .await
        .map_err(|error| error.kind())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_refresh_of_one_token_yields_one_successor_and_late_replay_revokes() {
    let config = FamilyConfig {
        grace_secs: 1,
        ..FamilyConfig::default()
    };
    let Some((families, _)) = shared("parallel", config).await else {
        return;
    };
    let families = Arc::new(families);
    let first = families.login(&grant("alice")).await.unwrap().pair;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let families = Arc::clone(&families);
            let token = first.refresh.token.clone();
            tokio::spawn(async move { refresh(&families, &token).await })
        })
        .collect();
    let mut successors = HashSet::new();
    let mut ok = 0;
    for task in tasks {
        // Every caller is within the grace window of the one rotation.
        let pair = task.await.unwrap().unwrap();
        ok += 1;
        successors.insert((pair.access.token, pair.refresh.token, pair.sid));
    }
    assert_eq!(ok, 100);
    assert_eq!(successors.len(), 1, "exactly one successor pair");
    let (_, successor_refresh, sid) = successors.into_iter().next().unwrap();
    assert_eq!(sid, first.sid);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        refresh(&families, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    // The family is revoked: the legitimate successor is refused too.
    assert_eq!(
        refresh(&families, &successor_refresh).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test]
async fn retry_within_grace_gets_the_identical_pair_and_reuse_after_revokes() {
    let Some((families, _)) = shared("retry", FamilyConfig::default()).await else {
        return;
    };
    let first = families.login(&grant("alice")).await.unwrap().pair;
    let rotated = refresh(&families, &first.refresh.token).await.unwrap();
    let retried = refresh(&families, &first.refresh.token).await.unwrap();
    assert_eq!(retried, rotated);
    let next = refresh(&families, &rotated.refresh.token).await.unwrap();
    // Two rotations old: reuse even within grace.
    assert_eq!(
        refresh(&families, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert_eq!(
        refresh(&families, &next.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test]
async fn grace_zero_disables_replay() {
    let config = FamilyConfig {
        grace_secs: 0,
        ..FamilyConfig::default()
    };
    let Some((families, _)) = shared("grace0", config).await else {
        return;
    };
    let first = families.login(&grant("alice")).await.unwrap().pair;
    let rotated = refresh(&families, &first.refresh.token).await.unwrap();
    assert_eq!(
        refresh(&families, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert_eq!(
        refresh(&families, &rotated.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test]
async fn redis_holds_no_token_and_every_key_expires() {
    let Some((families, prefix)) = shared("plaintext", FamilyConfig::default()).await else {
        return;
    };
    let first = families.login(&grant("alice")).await.unwrap().pair;
    let rotated = refresh(&families, &first.refresh.token).await.unwrap();
    let mut connection = raw_connection().await;
    let keys = keys(&mut connection, &prefix).await;
    assert_eq!(keys.len(), 3, "family, sealed pair, session list: {keys:?}");
    let mut stored: Vec<u8> = Vec::new();
    for key in &keys {
        assert!(!key.contains("alice") && !key.contains(&first.sid));
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        let mut command = match kind.as_str() {
            "hash" => redis::cmd("HGETALL"),
            "zset" => redis::cmd("ZRANGE"),
            _ => redis::cmd("MGET"),
        };
        command.arg(key);
        if kind == "zset" {
            command.arg(0).arg(-1);
        }
        let values: Vec<Vec<u8>> = command.query_async(&mut connection).await.unwrap();
        for value in values {
            stored.extend_from_slice(&value);
            stored.push(b'\n');
        }
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL");
        if key.ends_with(":grace") {
            assert!(ttl <= 10_000, "sealed pair kept past the grace window");
        }
    }
    for pair in [&first, &rotated] {
        for token in [&pair.access.token, &pair.refresh.token] {
            for part in token.split('.') {
                assert!(
                    !stored.windows(part.len()).any(|w| w == part.as_bytes()),
                    "a token part is stored in plaintext"
                );
            }
        }
        for jti in [&pair.access.jti, &pair.refresh.jti] {
            assert!(!stored.windows(jti.len()).any(|w| w == jti.as_bytes()));
        }
    }
}

#[tokio::test]
async fn session_limit_ends_the_oldest_family() {
    let config = FamilyConfig {
        max_sessions: 2,
        ..FamilyConfig::default()
    };
    let Some((families, _)) = shared("limit", config).await else {
        return;
    };
    let oldest = families.login(&grant("alice")).await.unwrap();
    assert!(oldest.evicted_sids.is_empty());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = families.login(&grant("alice")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let newest = families.login(&grant("alice")).await.unwrap();
    assert_eq!(newest.evicted_sids, vec![oldest.pair.sid.clone()]);
    assert_eq!(
        refresh(&families, &oldest.pair.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    refresh(&families, &middle.pair.refresh.token)
        .await
        .unwrap();
    refresh(&families, &newest.pair.refresh.token)
        .await
        .unwrap();
}

#[tokio::test]
async fn idle_family_expires() {
    let config = FamilyConfig {
        idle_secs: 1,
        ..FamilyConfig::default()
    };
    let Some((families, prefix)) = shared("idle", config).await else {
        return;
    };
    let first = families.login(&grant("alice")).await.unwrap().pair;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        refresh(&families, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    let mut connection = raw_connection().await;
    let left = keys(&mut connection, &prefix).await;
    assert!(
        left.iter().all(|key| key.ends_with(":sessions")),
        "{left:?}"
    );
}

#[tokio::test]
async fn deleted_user_cannot_refresh() {
    let Some((families, _)) = shared("deleted", FamilyConfig::default()).await else {
        return;
    };
    let first = families.login(&grant("alice")).await.unwrap().pair;
    let refused = families
        .refresh_without_revocation_dangerously(&first.refresh.token, |_| async { None })
        .await;
    assert_eq!(refused.unwrap_err().kind(), TokenErrorKind::Revoked);
    assert_eq!(
        refresh(&families, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test]
async fn unreachable_redis_fails_closed() {
    let store = RedisFamilyStore::connect_lazy("redis://127.0.0.1:1/0")
        .unwrap()
        .with_key_prefix(&unique_prefix("down"))
        .unwrap()
        .with_timeout(Duration::from_millis(50));
    let families = families(store, FamilyConfig::default());
    let login = families.login(&grant("alice")).await;
    assert_eq!(login.unwrap_err().kind(), TokenErrorKind::StoreUnavailable);
}

// --- The conformance tests every Redis store passes (CONTRIBUTING.md) ---------------

#[macro_use]
#[path = "../../../tests/redis_conformance.rs"]
mod redis_conformance;

/// The family store as the conformance tests drive it: one login (a family
/// started) of the user's text as subject.
struct FamilyConformance(RedisFamilyStore);

impl redis_conformance::Subject for FamilyConformance {
    fn build(url: &str, prefix: &str) -> Result<Self, String> {
        RedisFamilyStore::connect_lazy(url)
            .map_err(|error| error.to_string())?
            .with_key_prefix(prefix)
            .map(FamilyConformance)
            .map_err(|error| error.to_string())
    }

    fn with_timeout(self, timeout: Duration) -> Self {
        FamilyConformance(self.0.with_timeout(timeout))
    }

    async fn exercise(&self, user_text: &str) -> Result<(), palisade_errors::StoreError> {
        let family = FamilyRef {
            subject: user_text,
            sid: "conformance-sid",
        };
        let current = palisade_auth_tokens::refresh::token_hash("conformance-jti");
        self.0
            .start(family, &current, &FamilyConfig::default())
            .await
            .map(drop)
    }
}

redis_conformance_tests!(family_store_conformance, FamilyConformance);
