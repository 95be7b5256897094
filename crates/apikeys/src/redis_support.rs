//! What the Redis store shares with the other cores' stores: connection
//! settings, the key prefix rule, the per-owner hash tag, calls with a
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use palisade_errors::StoreError;
use redis::aio::ConnectionManager;
use redis::{Client, FromRedisValue, Pipeline, RedisError, ScriptInvocation};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, ConfigErrorKind};

/// How long establishing a connection may take; calls are bounded by the
/// store's own timeout.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis error as a store error (`unavailable`, the Redis error kept as
/// the source; the orphan rule keeps `From<RedisError>` out of
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

pub(crate) fn lazy_connection(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = Client::open(url).map_err(redis_error)?;
    ConnectionManager::new_lazy_with_config(client, config()).map_err(redis_error)
}

pub(crate) async fn connection(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = Client::open(url).map_err(redis_error)?;
    ConnectionManager::new_with_config(client, config())
        .await
        .map_err(|error| redis_error(error).during("connect"))
}

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

/// `<prefix>:{<16 hex>}`: the first 8 bytes of the SHA-256 of the subject.
pub(crate) fn subject_key_prefix(prefix: &str, subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    let (tag, _) = digest.split_at(8);
    format!("{prefix}:{{{}}}", hex(tag))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// 64 lowercase hex digits as 32 bytes.
pub(crate) fn unhex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?;
    }
    Some(out)
}

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

pub(crate) async fn query<T: FromRedisValue>(
    connection: &ConnectionManager,
    timeout: Duration,
    operation: &'static str,
    pipeline: &Pipeline,
) -> Result<T, StoreError> {
    let mut connection = connection.clone();
    match tokio::time::timeout(timeout, pipeline.query_async(&mut connection)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(error).during(operation)),
        Err(_) => Err(StoreError::timeout(operation)),
    }
}

fn classify(error: RedisError) -> StoreError {
    if error.kind() == redis::ErrorKind::UnexpectedReturnType || error.code() == Some("CORRUPT") {
        StoreError::unexpected_reply("redis").with_source(error)
    } else {
        redis_error(error)
    }
}

/// The operational log line of a failed call (no `event`: the caller that
/// decides logs `store_unavailable`).
pub(crate) fn log_failure(store: &'static str, error: &StoreError, timeout: Duration) {
    tracing::warn!(
        store,
        store_error = error.kind().as_str(),
        %error,
        timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        "store did not answer"
    );
}
