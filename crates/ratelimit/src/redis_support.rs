//! What both Redis stores share: from `palisade_errors::redis` the
//! connection (single node or Cluster), calls with a timeout and Redis
//! errors as store errors; here the key prefix rules (see `CONTRIBUTING.md`,
//! "Redis stores").

pub(crate) use palisade_errors::redis::{connect, connect_lazy, hex, query};

use crate::ConfigError;
use crate::ConfigErrorKind;

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
