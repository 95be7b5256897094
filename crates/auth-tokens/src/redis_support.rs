//! What the Redis stores of this crate share: the connection settings, the
//! key prefix rules, the key layout under a per-subject hash tag, and calls
//! with a timeout.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, FromRedisValue, RedisError, ScriptInvocation};

use crate::config::{ConfigError, ConfigErrorKind};
use crate::refresh::token_hash;
use crate::revocation::StoreError;

/// How long establishing a connection may take. Calls have no response
/// timeout of the connection's own: the store's per-call timeout (see
/// [`invoke`]) is the only bound.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis error as a store error: `unavailable`, the Redis error kept as
/// the source (the orphan rule keeps `From<RedisError>` out of
/// palisade-errors, which does not depend on redis).
pub(crate) fn redis_error(error: RedisError) -> StoreError {
    StoreError::unavailable("redis").with_source(error)
}

fn config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(None)
        .set_number_of_retries(1)
        .set_max_delay(CONNECTION_TIMEOUT)
}

/// A lazy connection manager for `url`: the service starts while Redis is
/// down, and it reconnects when Redis is back, one reconnection attempt per
/// call. Must run inside a Tokio runtime (the driver is spawned on it).
pub(crate) fn lazy_connection(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = Client::open(url).map_err(redis_error)?;
    ConnectionManager::new_lazy_with_config(client, config()).map_err(redis_error)
}

/// A connection manager for `url`, connected now.
pub(crate) async fn connection(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = Client::open(url).map_err(redis_error)?;
    ConnectionManager::new_with_config(client, config())
        .await
        .map_err(|error| redis_error(error).during("connect"))
}

/// `prefix`, if it passes the shared key-prefix rule
/// ([`palisade_errors::check_key_prefix`]: not empty, no braces, whitespace
/// or control characters).
pub(crate) fn key_prefix(prefix: &str) -> Result<Arc<str>, ConfigError> {
    palisade_errors::check_key_prefix(prefix).map_err(|problem| {
        ConfigError::new(
            ConfigErrorKind::InvalidKeyPrefix,
            format!(
                "Redis key prefix {:?} {problem}",
                prefix.chars().take(64).collect::<String>()
            ),
        )
    })?;
    Ok(Arc::from(prefix))
}

/// `<prefix>:{<16 hex>}`: the start of every key of `subject`, whose hash
/// tag (the first 8 bytes of the SHA-256 of the subject) puts all of them on
/// one Cluster slot, so one script can touch them together.
pub(crate) fn subject_key_prefix(prefix: &str, subject: &str) -> String {
    let digest = token_hash(subject);
    let (tag, _) = digest.split_at(8);
    format!("{prefix}:{{{}}}", hex(tag))
}

/// The number of Redis Cluster hash slots.
const SLOTS: u16 = 16_384;

/// Redis Cluster's key hash (CRC16/XMODEM) of a hash tag's content.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// The Cluster slot of a hash tag's content.
fn slot(tag: &str) -> u16 {
    crc16(tag.as_bytes()) % SLOTS
}

/// For each Cluster slot, the smallest `n` whose tag `e<n>` hashes to it:
/// the hash tag of that slot's epoch sentinel. Found once (about 170,000
/// CRC16 of a few bytes, a few milliseconds).
fn epoch_tags() -> &'static [u32] {
    static TAGS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![u32::MAX; usize::from(SLOTS)];
        let mut missing = usize::from(SLOTS);
        let mut n = 0u32;
        while missing > 0 {
            let entry = &mut tags[usize::from(slot(&format!("e{n}")))];
            if *entry == u32::MAX {
                *entry = n;
                missing -= 1;
            }
            n += 1;
        }
        tags
    })
}

/// `<prefix>:{e<n>}:epoch`, the epoch sentinel of the Cluster slot that
/// `subject`'s keys (`<prefix>:{<16 hex>}…`) live on: the tag `e<n>` is
/// chosen to hash to the same slot, so a script can touch both (Cluster
/// refuses only keys of different slots).
pub(crate) fn epoch_key(prefix: &str, subject: &str) -> String {
    let digest = token_hash(subject);
    let (tag, _) = digest.split_at(8);
    epoch_key_of_slot(prefix, slot(&hex(tag)))
}

/// The epoch sentinel of Cluster slot `slot`.
pub(crate) fn epoch_key_of_slot(prefix: &str, slot: u16) -> String {
    let n = epoch_tags()[usize::from(slot % SLOTS)];
    format!("{prefix}:{{e{n}}}:epoch")
}

/// Every slot's epoch sentinel, in slot order.
pub(crate) fn epoch_keys(prefix: &str) -> impl Iterator<Item = String> + '_ {
    (0..SLOTS).map(move |slot| epoch_key_of_slot(prefix, slot))
}

/// The SHA-256 of an id, in hex: ids never appear in Redis as themselves.
pub(crate) fn hashed_id(id: &str) -> String {
    hex(&token_hash(id))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// Runs a script invocation named `operation` on a clone of `connection`
/// within `timeout`. The caller logs a failure.
pub(crate) async fn invoke<T: FromRedisValue>(
    connection: &ConnectionManager,
    timeout: Duration,
    operation: &'static str,
    invocation: &ScriptInvocation<'_>,
) -> Result<T, StoreError> {
    let mut connection = connection.clone();
    match tokio::time::timeout(timeout, invocation.invoke_async(&mut connection)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(error).during(operation)),
        Err(_) => Err(StoreError::timeout(operation)),
    }
}

/// A Redis error as a store error: a reply that does not parse as the
/// expected type, or a script's `CORRUPT` error (a key of the wrong shape,
/// written by something else), is `unexpected_reply`; anything else
/// `unavailable`.
fn classify(error: RedisError) -> StoreError {
    if error.kind() == redis::ErrorKind::UnexpectedReturnType || error.code() == Some("CORRUPT") {
        StoreError::unexpected_reply("redis").with_source(error)
    } else {
        redis_error(error)
    }
}

/// The store's operational log line for a failed call: the store error
/// (its kind and operation) and the timeout, never a key or an id. No
/// `event` field: the caller that decides (and fails closed) logs the one
/// `store_unavailable` event.
pub(crate) fn log_failure(store: &'static str, error: &StoreError, timeout: Duration) {
    tracing::warn!(
        store,
        store_error = error.kind().as_str(),
        %error,
        timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        "store did not answer"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_cluster_slots() {
        // Redis Cluster specification: CRC16("123456789") = 0x31C3;
        // CLUSTER KEYSLOT of "foo" is 12182, of "bar" 5061.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot("foo"), 12_182);
        assert_eq!(slot("bar"), 5_061);
    }

    #[test]
    fn every_slot_has_an_epoch_sentinel_on_that_slot() {
        for (index, &n) in epoch_tags().iter().enumerate() {
            assert_eq!(usize::from(slot(&format!("e{n}"))), index);
        }
        let key = epoch_key("p", "user-42");
        let subject = subject_key_prefix("p", "user-42");
        let tag = |key: &str| {
            let (_, rest) = key.split_once('{').unwrap();
            let (tag, _) = rest.split_once('}').unwrap();
            tag.to_owned()
        };
        assert_eq!(slot(&tag(&key)), slot(&tag(&subject)));
    }
}
