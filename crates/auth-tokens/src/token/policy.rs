//! What tokens must satisfy: the policy both sides share, the leeway cap,
//! and the checks a verifier may be told to skip.

use serde::Deserialize;

use crate::config::{ConfigError, ConfigErrorKind};

/// The largest clock-skew leeway a verifier accepts, in seconds.
pub const MAX_LEEWAY: u64 = 300;

/// What the verifier requires of every token (and the issuer writes).
///
/// Deserializes from configuration: `issuer` and `audience` are required,
/// the rest default as in [`TokenPolicy::new`].
///
/// ```
/// # use palisade_auth_tokens::TokenPolicy;
/// let policy: TokenPolicy = serde_json::from_str(
///     r#"{"issuer": "https://auth.example.com", "audience": "api", "access_ttl": 600}"#,
/// ).unwrap();
/// assert_eq!((policy.access_ttl, policy.leeway), (600, 30));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TokenPolicyConfig")]
pub struct TokenPolicy {
    /// `iss`, required and compared exactly.
    pub issuer: String,
    /// `aud`, required to contain this value.
    pub audience: String,
    /// Access token lifetime in seconds (default 30 minutes).
    pub access_ttl: u64,
    /// Refresh token lifetime in seconds (default 7 days).
    pub refresh_ttl: u64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (default 30).
    pub leeway: u64,
    /// Longest token accepted, checked before anything is decoded (default 8 KiB).
    pub max_token_len: usize,
}

/// The configuration-file form of [`TokenPolicy`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenPolicyConfig {
    issuer: String,
    audience: String,
    access_ttl: Option<u64>,
    refresh_ttl: Option<u64>,
    leeway: Option<u64>,
    max_token_len: Option<usize>,
}

impl TryFrom<TokenPolicyConfig> for TokenPolicy {
    type Error = ConfigError;

    fn try_from(config: TokenPolicyConfig) -> Result<TokenPolicy, ConfigError> {
        let invalid =
            |detail: String| Err(ConfigError::new(ConfigErrorKind::InvalidPolicy, detail));
        if config.issuer.is_empty() || config.audience.is_empty() {
            return invalid("token policy: issuer and audience must not be empty".to_owned());
        }
        let defaults = TokenPolicy::new(config.issuer, config.audience);
        let policy = TokenPolicy {
            access_ttl: config.access_ttl.unwrap_or(defaults.access_ttl),
            refresh_ttl: config.refresh_ttl.unwrap_or(defaults.refresh_ttl),
            leeway: config.leeway.unwrap_or(defaults.leeway),
            max_token_len: config.max_token_len.unwrap_or(defaults.max_token_len),
            ..defaults
        };
        if policy.access_ttl == 0 || policy.refresh_ttl < policy.access_ttl {
            return invalid(
                "token policy: access_ttl must be positive and refresh_ttl at least access_ttl"
                    .to_owned(),
            );
        }
        if policy.leeway > MAX_LEEWAY {
            return invalid(format!(
                "token policy: leeway {} s is above {MAX_LEEWAY} s",
                policy.leeway
            ));
        }
        Ok(policy)
    }
}

impl TokenPolicy {
    /// The defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> TokenPolicy {
        TokenPolicy {
            issuer: issuer.into(),
            audience: audience.into(),
            access_ttl: 30 * 60,
            refresh_ttl: 7 * 24 * 60 * 60,
            leeway: 30,
            max_token_len: 8 * 1024,
        }
    }
}

/// Checks a verifier may skip, each one named for the danger, for tokens
/// from issuers that predate them (RFC examples, legacy services).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relaxations {
    /// Accept tokens without the `typ` header and `type` claim.
    pub skip_type_check_dangerously: bool,
    /// Accept a token without `kid` when the keyring has exactly one key.
    pub allow_missing_kid_dangerously: bool,
    /// Do not check `iss`.
    pub skip_issuer_check_dangerously: bool,
    /// Do not check `aud`.
    pub skip_audience_check_dangerously: bool,
}
