/// A rate-limit setting that cannot work (a quota string that does not parse,
/// a CIDR with host bits, a zero limit, a Redis key prefix with a brace...).
/// The message names the setting and the reason, so a bad configuration
/// fails at start-up; [`kind`](Self::kind) says which class of setting.
///
/// Turned into the envelope error it is a 500 `internal` (a configuration
/// the service should never have started with), with this error as the
/// source for the log:
///
/// ```
/// use palisade_ratelimit::{ConfigErrorKind, Quota};
///
/// let error = Quota::parse("10 per fortnight").unwrap_err();
/// assert_eq!(error.kind(), ConfigErrorKind::InvalidQuota);
/// assert!(error.to_string().contains("unknown unit"));
/// assert_eq!(palisade_errors::Error::from(error).status(), 500);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    detail: String,
}

/// The class of a [`ConfigError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A quota or policy (`"100/minute"`, the number of quotas).
    InvalidQuota,
    /// A network of trusted proxies (`10.0.0.0/8`).
    InvalidCidr,
    /// The client-IP settings (header without proxies, IPv6 prefix).
    InvalidClientIp,
    /// A Redis key prefix (empty, braces, whitespace, control characters).
    InvalidKeyPrefix,
    /// A Redis URL that does not parse.
    InvalidRedisUrl,
    /// A login throttle setting out of its bounds.
    InvalidLoginConfig,
    /// A login id secret too short to keep store keys unpredictable.
    InvalidSecret,
    /// A request cost above the smallest limit of the policy: no request of
    /// that cost can ever be admitted.
    InvalidCost,
    /// A store breaker setting out of its bounds
    /// ([`BreakerConfig`](crate::BreakerConfig)).
    InvalidBreaker,
}

impl ConfigErrorKind {
    /// A stable snake_case name, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConfigErrorKind::InvalidQuota => "invalid_quota",
            ConfigErrorKind::InvalidCidr => "invalid_cidr",
            ConfigErrorKind::InvalidClientIp => "invalid_client_ip",
            ConfigErrorKind::InvalidKeyPrefix => "invalid_key_prefix",
            ConfigErrorKind::InvalidRedisUrl => "invalid_redis_url",
            ConfigErrorKind::InvalidLoginConfig => "invalid_login_config",
            ConfigErrorKind::InvalidSecret => "invalid_secret",
            ConfigErrorKind::InvalidCost => "invalid_cost",
            ConfigErrorKind::InvalidBreaker => "invalid_breaker",
        }
    }
}

impl std::fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, detail: impl Into<String>) -> ConfigError {
        ConfigError {
            kind,
            detail: detail.into(),
        }
    }

    /// Which class of setting is wrong.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ConfigError {}

/// A configuration that cannot work is the service's fault: 500 `internal`,
/// the configuration error kept as the source (for the log only).
impl From<ConfigError> for palisade_errors::Error {
    fn from(error: ConfigError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}

/// Why [`RateLimiter::check`](crate::RateLimiter::check) gave no decision.
///
/// Converts into the envelope error with `?`: the store's failure as 503
/// `unavailable`, a cost no quota can ever admit as 500 `internal`.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckError {
    /// The store failed.
    Store(palisade_errors::StoreError),
    /// The cost is above the smallest limit of the policy
    /// ([`ConfigErrorKind::InvalidCost`]): asking again never helps.
    Config(ConfigError),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Store(error) => std::fmt::Display::fmt(error, f),
            CheckError::Config(error) => std::fmt::Display::fmt(error, f),
        }
    }
}

impl std::error::Error for CheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckError::Store(error) => Some(error),
            CheckError::Config(error) => Some(error),
        }
    }
}

impl From<palisade_errors::StoreError> for CheckError {
    fn from(error: palisade_errors::StoreError) -> CheckError {
        CheckError::Store(error)
    }
}

impl From<ConfigError> for CheckError {
    fn from(error: ConfigError) -> CheckError {
        CheckError::Config(error)
    }
}

impl From<CheckError> for palisade_errors::Error {
    fn from(error: CheckError) -> palisade_errors::Error {
        match error {
            CheckError::Store(error) => palisade_errors::Error::from(error),
            CheckError::Config(error) => palisade_errors::Error::from(error),
        }
    }
}
