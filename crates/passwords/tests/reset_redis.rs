//! The Redis reset-token store against the Redis on 127.0.0.1:6379 (under
//! `CI=true` an unreachable Redis fails these tests) and the shared
//! conformance tests.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report

#[macro_use]
#[path = "../../../tests/redis_conformance.rs"]
mod redis_conformance;

#[path = "support/reset_check.rs"]
mod reset_check;

use std::time::Duration;

use palisade_passwords::ConfigErrorKind;
use palisade_passwords::reset::{
    RedisResetTokenStore, ResetErrorKind, ResetRecord, ResetTokenStore, ResetTokens, StoreError,
};
use secrecy::ExposeSecret;

/// The Redis under test: 127.0.0.1:6379, or the private Redis Cluster
/// `cargo xtask ci` runs these tests on a second time.
fn url() -> String {
    redis_conformance::redis_url()
}
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

struct Resets(RedisResetTokenStore);

impl redis_conformance::Subject for Resets {
    fn build(url: &str, prefix: &str) -> Result<Self, String> {
        RedisResetTokenStore::connect_lazy(url)
            .map_err(|error| error.to_string())?
            .with_key_prefix(prefix)
            .map(Resets)
            .map_err(|error| error.to_string())
    }

    fn with_timeout(self, timeout: Duration) -> Self {
        Resets(self.0.with_timeout(timeout))
    }

    async fn exercise(&self, user_text: &str) -> Result<(), StoreError> {
        let record = ResetRecord {
            token_hash: [7; 32],
            binding: [9; 32],
        };
        self.0.put(user_text, record, Duration::from_secs(60)).await
    }
}

redis_conformance_tests!(reset_store_conformance, Resets);

/// The shared Redis under a fresh prefix, or `None` (skip) outside CI.
async fn store(test: &str) -> Option<RedisResetTokenStore> {
    let prefix = redis_conformance::unique_prefix(&format!("pwreset-{test}"));
    let store = RedisResetTokenStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix(&prefix)
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    match store.take("probe", &[0; 32]).await {
        Ok(_) => Some(store),
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

#[tokio::test]
async fn single_use_newest_wins_and_bound_to_the_password_hash() {
    let Some(store) = store("rules").await else {
        return;
    };
    let resets = ResetTokens::new(store);
    let older = resets.issue("user-42", HASH).await.unwrap();
    let newer = resets.issue("user-42", HASH).await.unwrap();
    let error = resets
        .redeem("user-42", older.expose_secret(), HASH)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ResetErrorKind::UnknownOrExpired);
    resets
        .redeem("user-42", newer.expose_secret(), HASH)
        .await
        .unwrap();
    let replay = resets
        .redeem("user-42", newer.expose_secret(), HASH)
        .await
        .unwrap_err();
    assert_eq!(replay.kind(), ResetErrorKind::UnknownOrExpired);
    let bound = resets.issue("user-42", HASH).await.unwrap();
    let changed = resets
        .redeem("user-42", bound.expose_secret(), "$argon2id$other")
        .await;
    assert_eq!(changed.unwrap_err().kind(), ResetErrorKind::PasswordChanged);
}

#[tokio::test]
async fn check_leaves_the_token_for_the_redeem() {
    let Some(store) = store("check").await else {
        return;
    };
    reset_check::check_spends_nothing(&ResetTokens::new(store), HASH).await;
}

#[tokio::test]
async fn the_key_expires_on_redis_clock_with_the_token_lifetime() {
    let Some(store) = store("ttl").await else {
        return;
    };
    let key = store.key("user-42");
    let resets = ResetTokens::new(store);
    let _token = resets.issue("user-42", HASH).await.unwrap();
    let mut connection = redis_conformance::raw_connection().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((29 * 60 * 1000..=30 * 60 * 1000).contains(&ttl), "{ttl}");
    let value: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(value.len(), 129, "two SHA-256 in hex, nothing else");
    // A record written by something else is an error, never an acceptance.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("junk")
        .query_async(&mut connection)
        .await
        .unwrap();
    let error = resets.store().take("user-42", &[0; 32]).await.unwrap_err();
    assert_eq!(
        error.kind(),
        palisade_errors::StoreErrorKind::UnexpectedReply
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refused_prefix_is_a_config_error() {
    let error = RedisResetTokenStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix("app:{x}")
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidKeyPrefix);
}
