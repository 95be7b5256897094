//! The conformance tests every Redis store of every Palisade core passes
//! (see CONTRIBUTING.md, "Redis stores"). A store's test file includes this
//! file and names the store once:
//!
//! ```ignore
//! #[macro_use]
//! #[path = "../../../tests/redis_conformance.rs"]
//! mod redis_conformance;
//!
//! struct Login(RedisLoginStore);
//! impl redis_conformance::Subject for Login { ... }
//! redis_conformance_tests!(login_store_conformance, Login);
//! ```
//!
//! They talk to the Redis on 127.0.0.1:6379 (under `CI=true` an unreachable
//! Redis fails them, it never skips them), each with its own key prefix, and
//! to two fake servers of their own: one that accepts connections and never
//! answers, and a closed port.

#![allow(dead_code, async_fn_in_trait)]

use std::time::{Duration, Instant};

use palisade_errors::{ErrorKind, StoreError, StoreErrorKind};

/// The Redis every test machine runs.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// The Redis the tests run against: `PALISADE_TEST_REDIS_URL` when set
/// (`cargo xtask ci` runs the Redis tests a second time with it naming its
/// private Redis Cluster, `redis+cluster://…`), else [`REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var("PALISADE_TEST_REDIS_URL").unwrap_or_else(|_| REDIS_URL.to_owned())
}

/// A plain connection to [`redis_url`] for looking at what a store wrote
/// (single node or Cluster: `KEYS` asks every master).
pub async fn raw_connection() -> palisade_errors::redis::RedisConnection {
    let url = redis_url();
    match palisade_errors::redis::connect(&url).await {
        Ok(connection) => connection,
        Err(error) => panic!("Redis at {url} must answer (start it; CI does): {error}"),
    }
}

/// Prefixes a store must refuse: braces would become every key's Cluster
/// hash tag (one slot for everything), whitespace and control characters
/// break `redis-cli` and log lines, an empty prefix collides with other apps.
pub const REFUSED_PREFIXES: &[&str] = &["", "app{x}", "app}x", "{", "a b", "a\nb", "a\tb"];

/// User text a subject could carry: an email, a hash-tag attempt, CRLF.
pub const USER_TEXT: &str = "Mallory@Example.COM{evil}\r\nFLUSHALL";

/// What the conformance tests need from one Redis store.
pub trait Subject: Sized {
    /// The store on `url` (connected lazily) with `prefix`; an error when
    /// the store refuses the prefix.
    fn build(url: &str, prefix: &str) -> Result<Self, String>;

    /// The same store with every call bounded by `timeout`.
    fn with_timeout(self, timeout: Duration) -> Self;

    /// One decision or write that keeps state for `user_text` (a rate-limit
    /// key, a username, a subject), as the store's users call it.
    async fn exercise(&self, user_text: &str) -> Result<(), StoreError>;

    /// Whether `tag` is a hash tag the store's keys may carry. By default
    /// 16 hex digits: a hash of the subject, so no user text reaches Redis.
    /// A store keyed by a random public id it generated (the API key store:
    /// a 22-character base62 key id) overrides this with that id's shape:
    /// the id is not user text, and hashing it to 64 bits would only add a
    /// collision risk. The user-text check below still applies to it.
    fn is_hash_tag(tag: &str) -> bool {
        tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// A prefix no other test uses.
pub fn unique_prefix(store: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!(
        "palisade-conformance:{store}:{}-{nanos}",
        std::process::id()
    )
}

pub fn prefix_rules<S: Subject>() {
    for prefix in REFUSED_PREFIXES {
        assert!(
            S::build(&redis_url(), prefix).is_err(),
            "prefix {prefix:?} accepted"
        );
    }
    assert!(S::build(&redis_url(), "palisade-conformance:ok").is_ok());
}

/// Every key under the prefix, as `<prefix>:{<16 hex>}...`, with a TTL and
/// no trace of the user's text.
pub async fn key_layout<S: Subject>(store_name: &str) {
    let prefix = unique_prefix(store_name);
    let url = redis_url();
    let store = S::build(&url, &prefix).expect("a plain prefix is accepted");
    // A lazy store's first call also makes the connection (on a Cluster:
    // one per master, and the slot map), which may outlast the store's
    // short timeout on a loaded machine: the layout is what is tested here.
    let started = Instant::now();
    while let Err(error) = store.exercise(USER_TEXT).await {
        if started.elapsed() > Duration::from_secs(5) {
            panic!("Redis at {url} must answer (start it; CI does): {error}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut connection = raw_connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .expect("KEYS answers");
    assert!(!keys.is_empty(), "the store wrote nothing under {prefix}");
    let lowered_user_text = USER_TEXT.to_ascii_lowercase();
    for key in &keys {
        let rest = key
            .strip_prefix(&format!("{prefix}:{{"))
            .unwrap_or_else(|| panic!("{key} does not start with the prefix and a hash tag"));
        let (tag, _) = rest
            .split_once('}')
            .unwrap_or_else(|| panic!("{key} has no closed hash tag"));
        assert!(
            S::is_hash_tag(tag),
            "{key}: the hash tag is not one the store may write (16 hex digits by default)"
        );
        let lowered = key.to_ascii_lowercase();
        for word in ["mallory", "example", "evil", "flushall", "\r", "\n"] {
            assert!(
                !lowered.contains(word) && lowered_user_text.contains(word),
                "{key} carries user text {word:?}"
            );
        }
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .expect("PTTL answers");
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .expect("DEL answers");
}

/// A server that accepts connections and never says a word: a hung Redis.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("redis://{address}/0")
}

/// Each call against a hung Redis returns a timeout error within its bound;
/// a second call does not queue behind the first.
pub async fn timeout_bounds_every_call<S: Subject>() {
    let url = silent_server().await;
    let store = S::build(&url, "palisade-conformance:silent")
        .expect("a plain prefix is accepted")
        .with_timeout(Duration::from_millis(100));
    for attempt in 0..2 {
        let started = Instant::now();
        let error = store
            .exercise(USER_TEXT)
            .await
            .expect_err("a silent server cannot answer");
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "call {attempt} took {took:?} against a 100 ms timeout"
        );
        assert!(
            matches!(
                error.kind(),
                StoreErrorKind::Timeout | StoreErrorKind::Unavailable
            ),
            "{error}"
        );
        assert!(!error.to_string().contains("Mallory"), "{error}");
    }
}

/// A Redis that is not there is an error, never a decision, and the error is
/// a 503 for the client.
pub async fn unreachable_is_an_error<S: Subject>() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let store = S::build(
        &format!("redis://127.0.0.1:{port}/0"),
        "palisade-conformance:closed",
    )
    .expect("a lazy store builds without Redis")
    .with_timeout(Duration::from_millis(200));
    let error = store
        .exercise(USER_TEXT)
        .await
        .expect_err("nothing listens on the port");
    assert!(!error.to_string().contains("Mallory"), "{error}");
    let envelope = palisade_errors::Error::from(error);
    assert_eq!(envelope.kind(), ErrorKind::Unavailable);
    assert_eq!(envelope.status(), 503);
}

/// The four conformance tests for `$subject`, in a module named `$module`.
macro_rules! redis_conformance_tests {
    ($module:ident, $subject:ty) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn refuses_unsafe_key_prefixes() {
                crate::redis_conformance::prefix_rules::<$subject>();
            }

            #[tokio::test]
            async fn keys_are_prefixed_hash_tagged_expiring_and_free_of_user_text() {
                crate::redis_conformance::key_layout::<$subject>(stringify!($module)).await;
            }

            #[tokio::test]
            async fn a_hung_redis_costs_one_timeout_per_call() {
                crate::redis_conformance::timeout_bounds_every_call::<$subject>().await;
            }

            #[tokio::test]
            async fn an_unreachable_redis_is_an_error_and_a_503() {
                crate::redis_conformance::unreachable_is_an_error::<$subject>().await;
            }
        }
    };
}
