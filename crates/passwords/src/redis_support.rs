//! What the Redis store shares with the other cores' stores (from
//! `palisade_errors::redis`: connections, single node or Cluster, calls
//! with a timeout, the per-subject hash tag), and this crate's key prefix rule.

use std::sync::Arc;

pub(crate) use palisade_errors::redis::{
    connect as connection, connect_lazy as lazy_connection, hex, invoke, log_failure,
    subject_key_prefix, unhex32,
};

use crate::config::{ConfigError, ConfigErrorKind};

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
