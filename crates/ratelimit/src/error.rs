/// A rate-limit setting that cannot work (a quota string that does not parse,
/// a CIDR with host bits, a zero limit...). The message names the value and
/// the reason, so a bad configuration fails at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    detail: String,
}

impl ConfigError {
    pub(crate) fn new(detail: impl Into<String>) -> ConfigError {
        ConfigError {
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ConfigError {}

/// A store could not answer (Redis down, a timeout, a reply of the wrong
/// shape). Logged where it happens; what the caller does with it is the
/// limiter's [`FailMode`](crate::FailMode).
#[derive(Debug)]
pub struct StoreError {
    detail: String,
}

impl StoreError {
    /// A store failure described by `detail` (for [`RateStore`](crate::RateStore)
    /// implementations outside this crate). Logged, never sent to clients.
    pub fn new(detail: impl Into<String>) -> StoreError {
        StoreError {
            detail: detail.into(),
        }
    }

    /// A call that took longer than its timeout.
    #[cfg(feature = "redis")]
    pub(crate) fn timeout(operation: &str) -> StoreError {
        StoreError::new(format!("{operation}: timed out"))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for StoreError {}

#[cfg(feature = "redis")]
impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> StoreError {
        StoreError::new(format!("redis: {error}"))
    }
}
