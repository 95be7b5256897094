//! What tokens must satisfy: the policy both sides share, the leeway cap,
//! and the checks a verifier may be told to skip.

use serde::Deserialize;

use crate::config::{ConfigError, ConfigErrorKind};

/// The largest clock-skew leeway a verifier accepts, in seconds.
pub const MAX_LEEWAY: u64 = 300;

/// What the verifier requires of every token (and the issuer writes).
///
/// Built only through its validation: [`TokenPolicy::new`] (the defaults),
/// [`TokenPolicy::builder`], or deserialized from configuration (`issuer`
/// and `audience` required, the rest defaulting as in `new`, unknown fields
/// refused). Refused, with a [`ConfigError`] of kind
/// [`ConfigErrorKind::InvalidPolicy`]: an empty issuer or audience, an
/// `access_ttl` of 0, a `refresh_ttl` below `access_ttl`, a `leeway` above
/// [`MAX_LEEWAY`] (a huge leeway would switch the expiry check off), a
/// `max_token_len` of 0.
///
/// ```
/// # use palisade_auth_tokens::TokenPolicy;
/// let policy: TokenPolicy = serde_json::from_str(
///     r#"{"issuer": "https://auth.example.com", "audience": "api", "access_ttl": 600}"#,
/// ).unwrap();
/// assert_eq!((policy.access_ttl(), policy.leeway()), (600, 30));
///
/// let built = TokenPolicy::builder("https://auth.example.com", "api")
///     .access_ttl(600)
///     .build()?;
/// assert_eq!(built, policy);
/// assert!(TokenPolicy::builder("https://auth.example.com", "api").leeway(u64::MAX).build().is_err());
/// # Ok::<(), palisade_auth_tokens::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TokenPolicyConfig")]
pub struct TokenPolicy {
    issuer: String,
    audience: String,
    access_ttl: u64,
    refresh_ttl: u64,
    leeway: u64,
    max_token_len: usize,
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
        let mut builder = TokenPolicy::builder(config.issuer, config.audience);
        if let Some(access_ttl) = config.access_ttl {
            builder = builder.access_ttl(access_ttl);
        }
        if let Some(refresh_ttl) = config.refresh_ttl {
            builder = builder.refresh_ttl(refresh_ttl);
        }
        if let Some(leeway) = config.leeway {
            builder = builder.leeway(leeway);
        }
        if let Some(max_token_len) = config.max_token_len {
            builder = builder.max_token_len(max_token_len);
        }
        builder.build()
    }
}

impl TokenPolicy {
    /// The defaults for `issuer` and `audience`: access tokens live 30
    /// minutes, refresh tokens 7 days, 30 s of leeway, tokens up to 8 KiB.
    /// Refused: an empty issuer or audience.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<TokenPolicy, ConfigError> {
        TokenPolicy::builder(issuer, audience).build()
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> TokenPolicyBuilder {
        TokenPolicyBuilder {
            policy: TokenPolicy {
                issuer: issuer.into(),
                audience: audience.into(),
                access_ttl: 30 * 60,
                refresh_ttl: 7 * 24 * 60 * 60,
                leeway: 30,
                max_token_len: 8 * 1024,
            },
        }
    }

    /// `iss`: required and compared exactly.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `aud`: required to contain this value.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Access token lifetime in seconds.
    pub fn access_ttl(&self) -> u64 {
        self.access_ttl
    }

    /// Refresh token lifetime in seconds.
    pub fn refresh_ttl(&self) -> u64 {
        self.refresh_ttl
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (at most
    /// [`MAX_LEEWAY`]).
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// Longest token accepted, checked before anything is decoded.
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }
}

/// Builds a [`TokenPolicy`]; [`build`](Self::build) validates.
#[derive(Clone, Debug)]
#[must_use]
pub struct TokenPolicyBuilder {
    policy: TokenPolicy,
}

impl TokenPolicyBuilder {
    /// Access token lifetime in seconds (default 30 minutes; positive).
    pub fn access_ttl(mut self, seconds: u64) -> Self {
        self.policy.access_ttl = seconds;
        self
    }

    /// Refresh token lifetime in seconds (default 7 days; at least the
    /// access token lifetime).
    pub fn refresh_ttl(mut self, seconds: u64) -> Self {
        self.policy.refresh_ttl = seconds;
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (default
    /// 30, at most [`MAX_LEEWAY`]).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.policy.leeway = seconds;
        self
    }

    /// Longest token accepted, in bytes (default 8 KiB; positive).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.policy.max_token_len = bytes;
        self
    }

    /// The policy, or why it cannot be one.
    pub fn build(self) -> Result<TokenPolicy, ConfigError> {
        let policy = self.policy;
        let invalid =
            |detail: String| Err(ConfigError::new(ConfigErrorKind::InvalidPolicy, detail));
        if policy.issuer.is_empty() || policy.audience.is_empty() {
            return invalid("token policy: issuer and audience must not be empty".to_owned());
        }
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
        if policy.max_token_len == 0 {
            return invalid("token policy: max_token_len must be positive".to_owned());
        }
        Ok(policy)
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
