//! What the Redis stores of this crate share: the connection settings, the
//! key layout under a per-subject hash tag, and calls with a timeout.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, FromRedisValue, ScriptInvocation};

use crate::refresh::token_hash;
use crate::revocation::StoreError;

/// A lazy connection manager for `url`: the service starts while Redis is
/// down, and it reconnects when Redis is back. Connection and response
/// timeouts are `timeout`, with one reconnection attempt per call, so a dead
/// Redis costs one timeout per call, not the client's default retry
/// schedule. Must run inside a Tokio runtime (the driver is spawned on it).
pub(crate) fn lazy_connection(
    url: &str,
    timeout: Duration,
) -> Result<ConnectionManager, StoreError> {
    let client = Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(timeout);
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}

/// A key prefix with its braces replaced by `_`: a brace in the prefix would
/// become every key's hash tag and put every subject on one Cluster slot.
pub(crate) fn key_prefix(prefix: impl Into<String>) -> Arc<str> {
    let prefix: String = prefix
        .into()
        .chars()
        .map(|c| if c == '{' || c == '}' { '_' } else { c })
        .collect();
    Arc::from(prefix)
}

/// `<prefix>:{<16 hex>}`: the start of every key of `subject`, whose hash
/// tag (the first 8 bytes of the SHA-256 of the subject) puts all of them on
/// one Cluster slot, so one script can touch them together.
pub(crate) fn subject_key_prefix(prefix: &str, subject: &str) -> String {
    let digest = token_hash(subject);
    let (tag, _) = digest.split_at(8);
    format!("{prefix}:{{{}}}", hex(tag))
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

/// Runs a script invocation on a clone of `connection` within `timeout`.
/// The caller logs a failure with its own event name.
pub(crate) async fn invoke<T: FromRedisValue>(
    connection: &ConnectionManager,
    timeout: Duration,
    invocation: &ScriptInvocation<'_>,
) -> Result<T, StoreError> {
    let mut connection = connection.clone();
    match tokio::time::timeout(timeout, invocation.invoke_async(&mut connection)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(StoreError::from(error)),
        Err(_) => Err(StoreError::new("redis: timed out")),
    }
}
