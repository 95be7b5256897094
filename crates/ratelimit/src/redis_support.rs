//! What both Redis stores share: turning Redis errors into store errors, the
//! connection settings, and the key prefix rules (see `CONTRIBUTING.md`,
//! "Redis stores").

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{ConfigError, ConfigErrorKind, StoreError};

/// How long establishing a connection may take. Calls are bounded by the
/// store's own timeout, not by this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis error as a store error: the detail names the backend, the Redis
/// error (which never carries a key) is the source.
pub(crate) fn redis_error(error: redis::RedisError) -> StoreError {
    StoreError::unavailable("redis").with_source(error)
}

/// The connection settings of every store: a connection timeout, no
/// response timeout (the store's per-call timeout is the only bound), one
/// reconnection attempt per failed connection rather than the client's
/// default schedule.
fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(None)
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(100))
}

fn client(url: &str) -> Result<redis::Client, StoreError> {
    redis::Client::open(url).map_err(|error| {
        StoreError::unavailable("redis: the URL does not parse").with_source(error)
    })
}

/// Connects now.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, StoreError> {
    ConnectionManager::new_with_config(client(url)?, config())
        .await
        .map_err(|error| redis_error(error).during("connect"))
}

/// Connects on first use, and again by itself after Redis comes back.
pub(crate) fn connect_lazy(url: &str) -> Result<ConnectionManager, StoreError> {
    ConnectionManager::new_lazy_with_config(client(url)?, config())
        .map_err(|error| redis_error(error).during("connect"))
}

/// The shared key-prefix rule ([`palisade_errors::check_key_prefix`]) as
/// this crate's configuration error.
pub(crate) fn check_prefix(store: &str, prefix: &str) -> Result<(), ConfigError> {
    palisade_errors::check_key_prefix(prefix).map_err(|problem| {
        ConfigError::new(
            ConfigErrorKind::InvalidKeyPrefix,
            format!("{store} key prefix {problem}"),
        )
    })
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}
