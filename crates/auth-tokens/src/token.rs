//! Issuing and verifying access and refresh tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_errors::{Error, ErrorKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::authz::Authorizer;
use crate::keyring::{Keyring, SigningKey};
use crate::revocation::{RevocationStore, TokenRef};
use crate::{Clock, SystemClock};

/// Which kind of token: each has its own keyring, `typ` header and `type`
/// claim, so one can never be used as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived, sent with every request (`typ: at+jwt`, RFC 9068).
    Access,
    /// Long-lived, sent only to the refresh endpoint (`typ: rt+jwt`).
    Refresh,
}

impl TokenType {
    /// The `typ` header value.
    pub const fn typ(self) -> &'static str {
        match self {
            TokenType::Access => "at+jwt",
            TokenType::Refresh => "rt+jwt",
        }
    }
}

/// No claims beyond Palisade's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoCustomClaims {}

/// The claims of a Palisade token. Each field has one JSON type; a token
/// whose `exp` is a string or whose `sub` is an object is refused, not
/// coerced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims<T = NoCustomClaims> {
    /// The subject: the user id.
    pub sub: String,
    /// The token id: 128 random bits, what logout blacklists.
    pub jti: String,
    /// The session (refresh family) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expires at.
    pub exp: u64,
    /// The issuer.
    pub iss: String,
    /// The audience (a string or an array of strings in JSON).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// The token type (the seeds' `type` claim, beside the `typ` header).
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Permissions granted in the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// OAuth2 scopes, space-separated (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The application's own claims.
    #[serde(flatten)]
    pub custom: T,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

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
    type Error = String;

    fn try_from(config: TokenPolicyConfig) -> Result<TokenPolicy, String> {
        if config.issuer.is_empty() || config.audience.is_empty() {
            return Err("token policy: issuer and audience must not be empty".to_owned());
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
            return Err(
                "token policy: access_ttl must be positive and refresh_ttl at least access_ttl"
                    .to_owned(),
            );
        }
        if policy.leeway > MAX_LEEWAY {
            return Err(format!(
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

/// Why a token was refused. Clients only ever see 401 `invalid_token` (or
/// 503 when a store is down); the kind is for logs and tests.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenErrorKind {
    /// Longer than the policy's maximum.
    TooLarge,
    /// Not three base64url parts of JSON.
    Malformed,
    /// `alg` is not an algorithm this crate accepts (`none` included).
    UnsupportedAlgorithm,
    /// `alg` differs from the algorithm of the key named by `kid`.
    AlgorithmMismatch,
    /// No `kid`, or one that names no (non-retired) key.
    UnknownKey,
    /// A `crit` header: an extension this verifier does not implement.
    UnsupportedCritical,
    /// The `typ` header or `type` claim is not this token type.
    WrongType,
    /// The signature does not verify.
    BadSignature,
    /// A claim is missing or of the wrong JSON type.
    InvalidClaims,
    /// Past `exp` (plus leeway).
    Expired,
    /// Before `nbf` (minus leeway).
    NotYetValid,
    /// `iat` in the future (beyond leeway).
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    WrongAudience,
    /// Revoked (logout, family revoked, or issued at or before the subject's `not_before`).
    Revoked,
    /// A store needed to decide could not answer (fail closed: 503).
    StoreUnavailable,
    /// No key can sign (a verify-only keyring asked to issue).
    CannotSign,
}

/// A refused token (or a token that could not be issued).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError {
    kind: TokenErrorKind,
}

impl TokenError {
    pub(crate) fn new(kind: TokenErrorKind) -> TokenError {
        TokenError { kind }
    }

    /// Why.
    pub fn kind(&self) -> TokenErrorKind {
        self.kind
    }

    /// The response: 401 with `WWW-Authenticate: Bearer realm="…",
    /// error="invalid_token"` (RFC 6750 §3.1), whatever the reason, so a
    /// client learns nothing about which check failed; 503 `unavailable`
    /// when a store was down.
    pub fn to_error(&self, realm: &str) -> Error {
        self.respond(|| {
            let realm: String = realm
                .chars()
                .filter(|c| (c.is_ascii_graphic() && *c != '"' && *c != '\\') || *c == ' ')
                .take(64)
                .collect();
            let challenge = format!("Bearer realm=\"{realm}\", error=\"invalid_token\"");
            let error = Error::new(ErrorKind::Unauthorized);
            match http::HeaderValue::from_str(&challenge) {
                Ok(value) => error.with_header(http::header::WWW_AUTHENTICATE, value),
                Err(_) => error,
            }
        })
    }

    /// [`to_error`](Self::to_error) with the `invalid_token` challenge the
    /// authorizer precomputed for its (validated) realm.
    pub fn to_error_for(&self, authorizer: &Authorizer) -> Error {
        self.respond(|| authorizer.challenge_invalid_token())
    }

    /// 503 for a store that did not answer, 500 for a token that could not
    /// be signed, `invalid_token` for every refusal.
    fn respond(&self, invalid_token: impl FnOnce() -> Error) -> Error {
        match self.kind {
            TokenErrorKind::StoreUnavailable => Error::new(ErrorKind::Unavailable),
            TokenErrorKind::CannotSign => Error::new(ErrorKind::Internal),
            _ => invalid_token(),
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token refused: {:?}", self.kind)
    }
}

impl std::error::Error for TokenError {}

/// A fresh random id (128 bits, base64url): for `jti` and session ids.
/// `None` when the operating system's random source fails (then no token is
/// issued rather than one with a guessable id).
pub fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// A token just issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`.
    pub expires_at: u64,
}

/// What goes into an access token besides the registered claims.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// The subject (user id).
    pub subject: String,
    /// The session (refresh family) id.
    pub session: Option<String>,
    /// The role.
    pub role: Option<String>,
    /// Permissions.
    pub permissions: Vec<String>,
    /// OAuth2 scopes, space-separated.
    pub scope: Option<String>,
}

/// Signs access and refresh tokens with the active key of each keyring.
#[derive(Clone, Debug)]
pub struct TokenIssuer<C: Clock = SystemClock> {
    access: Keyring,
    refresh: Keyring,
    policy: TokenPolicy,
    clock: C,
}

impl TokenIssuer {
    /// An issuer on the system clock.
    pub fn new(access: Keyring, refresh: Keyring, policy: TokenPolicy) -> TokenIssuer {
        TokenIssuer::with_clock(access, refresh, policy, SystemClock)
    }
}

impl<C: Clock> TokenIssuer<C> {
    /// An issuer on `clock`.
    pub fn with_clock(
        access: Keyring,
        refresh: Keyring,
        policy: TokenPolicy,
        clock: C,
    ) -> TokenIssuer<C> {
        TokenIssuer {
            access,
            refresh,
            policy,
            clock,
        }
    }

    /// An access token for `grant`, with the application's own claims.
    pub fn issue_access<T: Serialize>(
        &self,
        grant: &Grant,
        custom: T,
    ) -> Result<IssuedToken, TokenError> {
        self.issue(TokenType::Access, grant, custom, None)
    }

    /// A refresh token for `subject` in session `session`.
    pub fn issue_refresh(&self, subject: &str, session: &str) -> Result<IssuedToken, TokenError> {
        self.issue_refresh_after(subject, session, None)
    }

    /// [`issue_access`](Self::issue_access) for a subject whose sessions were
    /// just revoked at `not_before` (a password change, then a fresh login):
    /// the token is stamped at least one second after it, since tokens
    /// issued *at* `not_before` are revoked. The second ahead is within the
    /// verifier's leeway.
    pub fn issue_access_after<T: Serialize>(
        &self,
        grant: &Grant,
        custom: T,
        not_before: Option<u64>,
    ) -> Result<IssuedToken, TokenError> {
        self.issue(TokenType::Access, grant, custom, not_before)
    }

    /// [`issue_refresh`](Self::issue_refresh), stamped after `not_before`
    /// (see [`issue_access_after`](Self::issue_access_after)).
    pub fn issue_refresh_after(
        &self,
        subject: &str,
        session: &str,
        not_before: Option<u64>,
    ) -> Result<IssuedToken, TokenError> {
        let grant = Grant {
            subject: subject.to_owned(),
            session: Some(session.to_owned()),
            ..Grant::default()
        };
        self.issue(TokenType::Refresh, &grant, NoCustomClaims {}, not_before)
    }

    fn issue<T: Serialize>(
        &self,
        token_type: TokenType,
        grant: &Grant,
        custom: T,
        not_before: Option<u64>,
    ) -> Result<IssuedToken, TokenError> {
        let (keyring, ttl) = match token_type {
            TokenType::Access => (&self.access, self.policy.access_ttl),
            TokenType::Refresh => (&self.refresh, self.policy.refresh_ttl),
        };
        let key = keyring
            .active()
            .ok_or_else(|| TokenError::new(TokenErrorKind::CannotSign))?;
        let encoding = key
            .encoding()
            .ok_or_else(|| TokenError::new(TokenErrorKind::CannotSign))?;
        let jti = random_id().ok_or_else(|| TokenError::new(TokenErrorKind::CannotSign))?;
        let now = self.clock.now();
        let now = not_before.map_or(now, |not_before| now.max(not_before.saturating_add(1)));
        let claims = Claims {
            sub: grant.subject.clone(),
            jti: jti.clone(),
            sid: grant.session.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
            iss: self.policy.issuer.clone(),
            aud: vec![self.policy.audience.clone()],
            token_type,
            role: grant.role.clone(),
            permissions: grant.permissions.clone(),
            scope: grant.scope.clone(),
            custom,
        };
        let mut header = jsonwebtoken::Header::new(key.algorithm().jwt());
        header.typ = Some(token_type.typ().to_owned());
        header.kid = Some(key.kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, encoding).map_err(|error| {
            tracing::error!(%error, "token signing failed");
            TokenError::new(TokenErrorKind::CannotSign)
        })?;
        Ok(IssuedToken {
            token,
            jti,
            expires_at: claims.exp,
        })
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

/// The header fields the verifier reads. Unknown fields are ignored, and so
/// are `jwk`, `jku`, `x5u` and `x5c`: a key the token brings along is the
/// attacker's key.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    /// Whether `crit` is present at all (`"crit": null` included).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// The registered claims every verified token is checked against.
#[derive(Deserialize)]
struct TimeAndParties {
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default, deserialize_with = "optional_one_or_many")]
    aud: Option<Vec<String>>,
    #[serde(default, rename = "type")]
    token_type: Option<TokenType>,
}

fn optional_one_or_many<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    one_or_many(deserializer).map(Some)
}

/// The largest clock-skew leeway a verifier accepts, in seconds.
pub const MAX_LEEWAY: u64 = 300;

/// Verifies tokens: every check on by default.
#[derive(Clone, Debug)]
pub struct TokenVerifier<C: Clock = SystemClock> {
    access: Keyring,
    refresh: Keyring,
    policy: TokenPolicy,
    relaxations: Relaxations,
    clock: C,
}

impl TokenVerifier {
    /// A verifier on the system clock.
    pub fn new(access: Keyring, refresh: Keyring, policy: TokenPolicy) -> TokenVerifier {
        TokenVerifier::with_clock(access, refresh, policy, SystemClock)
    }
}

impl<C: Clock> TokenVerifier<C> {
    /// A verifier on `clock`. A leeway above [`MAX_LEEWAY`] is cut to it (a
    /// huge leeway would switch the expiry check off).
    pub fn with_clock(
        access: Keyring,
        refresh: Keyring,
        mut policy: TokenPolicy,
        clock: C,
    ) -> TokenVerifier<C> {
        if policy.leeway > MAX_LEEWAY {
            tracing::warn!(leeway = policy.leeway, "token leeway cut to {MAX_LEEWAY} s");
            policy.leeway = MAX_LEEWAY;
        }
        TokenVerifier {
            access,
            refresh,
            policy,
            relaxations: Relaxations::default(),
            clock,
        }
    }

    /// Turns checks off (see [`Relaxations`]).
    #[must_use]
    pub fn relax(mut self, relaxations: Relaxations) -> Self {
        self.relaxations = relaxations;
        self
    }

    /// Verifies an access token and returns its claims.
    pub fn verify_access<T: DeserializeOwned>(&self, token: &str) -> Result<Claims<T>, TokenError> {
        self.verify(token, TokenType::Access)
    }

    /// Verifies an access token, then asks `store` whether it was revoked
    /// (logout of its `jti`, of its family `sid`, or of every session of its
    /// subject). If the store cannot answer, the token is refused with
    /// [`TokenErrorKind::StoreUnavailable`] (503): never "valid".
    pub async fn verify_access_unrevoked<T: DeserializeOwned, S: RevocationStore>(
        &self,
        token: &str,
        store: &S,
    ) -> Result<Claims<T>, TokenError> {
        let claims: Claims<T> = self.verify_access(token)?;
        check_unrevoked(&claims, store).await?;
        Ok(claims)
    }

    /// Logs out the token these claims came from: blacklists its `jti` until
    /// the verifier would refuse it anyway (`exp` plus the leeway: a
    /// blacklist that expired at `exp` would let a stolen token back in for
    /// the leeway) and, when `whole_session`, revokes its family (`sid`)
    /// until `family_expires_at`.
    pub async fn revoke<T, S: RevocationStore>(
        &self,
        claims: &Claims<T>,
        store: &S,
        whole_session: Option<u64>,
    ) -> Result<(), TokenError> {
        let unavailable = |error: crate::revocation::StoreError| {
            tracing::warn!(event = "revocation_store_unavailable", %error, "logout not recorded");
            TokenError::new(TokenErrorKind::StoreUnavailable)
        };
        let leeway = self.policy.leeway;
        store
            .revoke_token(&claims.sub, &claims.jti, claims.exp.saturating_add(leeway))
            .await
            .map_err(unavailable)?;
        if let (Some(family_expires_at), Some(sid)) = (whole_session, claims.sid.as_deref()) {
            store
                .revoke_family(&claims.sub, sid, family_expires_at.saturating_add(leeway))
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// [`verify_refresh`](Self::verify_refresh) plus the revocation check of
    /// [`verify_access_unrevoked`](Self::verify_access_unrevoked).
    pub async fn verify_refresh_unrevoked<S: RevocationStore>(
        &self,
        token: &str,
        store: &S,
    ) -> Result<Claims<NoCustomClaims>, TokenError> {
        let claims = self.verify_refresh(token)?;
        check_unrevoked(&claims, store).await?;
        Ok(claims)
    }

    /// Verifies a refresh token and returns its claims.
    pub fn verify_refresh(&self, token: &str) -> Result<Claims<NoCustomClaims>, TokenError> {
        self.verify(token, TokenType::Refresh)
    }

    /// Verifies a token of `token_type` into any claims type (for tokens of
    /// other issuers, with [`Relaxations`]).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        token_type: TokenType,
    ) -> Result<T, TokenError> {
        let refuse = |kind| Err(TokenError::new(kind));
        // Size first: nothing of an oversized token is decoded.
        if token.len() > self.policy.max_token_len {
            return refuse(TokenErrorKind::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return refuse(TokenErrorKind::Malformed);
        };
        if signature.is_empty() {
            // "Signature stripped": an unsigned token is never valid.
            return refuse(TokenErrorKind::BadSignature);
        }
        let header: RawHeader = decode_json(header_b64)?;
        if header.crit {
            // RFC 7515 §4.1.11: a recipient that does not understand a
            // critical extension must reject the token.
            return refuse(TokenErrorKind::UnsupportedCritical);
        }
        let keyring = match token_type {
            TokenType::Access => &self.access,
            TokenType::Refresh => &self.refresh,
        };
        let key: &SigningKey = match header.kid.as_deref() {
            Some(kid) => keyring.verifier(kid),
            None if self.relaxations.allow_missing_kid_dangerously => keyring.single(),
            None => None,
        }
        .ok_or(TokenError::new(TokenErrorKind::UnknownKey))?;
        // The algorithm is the key's, exactly: `none`, a casing of it, or
        // HS256 over an RSA public key (algorithm confusion) never match.
        if header.alg != key.algorithm().name() {
            let known = ["HS256", "HS384", "HS512", "EdDSA", "ES256", "RS256"]
                .contains(&header.alg.as_str());
            return refuse(if known {
                TokenErrorKind::AlgorithmMismatch
            } else {
                TokenErrorKind::UnsupportedAlgorithm
            });
        }
        if !self.relaxations.skip_type_check_dangerously
            && !typ_matches(header.typ.as_deref(), token_type)
        {
            return refuse(TokenErrorKind::WrongType);
        }
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        let signed = token.as_bytes().get(..signed_len).unwrap_or_default();
        let valid =
            jsonwebtoken::crypto::verify(signature, signed, key.decoding(), key.algorithm().jwt())
                .unwrap_or(false);
        if !valid {
            return refuse(TokenErrorKind::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::new(TokenErrorKind::Malformed))?;
        let registered: TimeAndParties = serde_json::from_slice(&payload)
            .map_err(|_| TokenError::new(TokenErrorKind::InvalidClaims))?;
        self.check_registered(&registered, token_type)?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::new(TokenErrorKind::InvalidClaims))
    }

    fn check_registered(
        &self,
        claims: &TimeAndParties,
        token_type: TokenType,
    ) -> Result<(), TokenError> {
        let refuse = |kind| Err(TokenError::new(kind));
        let now = self.clock.now();
        let leeway = self.policy.leeway;
        if now >= claims.exp.saturating_add(leeway) {
            return refuse(TokenErrorKind::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return refuse(TokenErrorKind::NotYetValid);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(leeway))
        {
            return refuse(TokenErrorKind::IssuedInFuture);
        }
        if !self.relaxations.skip_type_check_dangerously && claims.token_type != Some(token_type) {
            return refuse(TokenErrorKind::WrongType);
        }
        if !self.relaxations.skip_issuer_check_dangerously
            && claims.iss.as_deref() != Some(self.policy.issuer.as_str())
        {
            return refuse(TokenErrorKind::WrongIssuer);
        }
        if !self.relaxations.skip_audience_check_dangerously
            && !claims
                .aud
                .as_ref()
                .is_some_and(|aud| aud.contains(&self.policy.audience))
        {
            return refuse(TokenErrorKind::WrongAudience);
        }
        Ok(())
    }
}

async fn check_unrevoked<T, S: RevocationStore>(
    claims: &Claims<T>,
    store: &S,
) -> Result<(), TokenError> {
    let token = TokenRef {
        subject: &claims.sub,
        jti: &claims.jti,
        sid: claims.sid.as_deref(),
        issued_at: claims.iat,
    };
    match store.is_revoked(token).await {
        Ok(false) => Ok(()),
        Ok(true) => {
            tracing::info!(event = "revoked_token_used", subject = %claims.sub, "revoked token refused");
            Err(TokenError::new(TokenErrorKind::Revoked))
        }
        Err(error) => {
            tracing::warn!(event = "revocation_store_unavailable", %error, "token refused: revocation unknown");
            Err(TokenError::new(TokenErrorKind::StoreUnavailable))
        }
    }
}

/// `typ` compared ASCII case-insensitively, with an optional `application/`
/// prefix (RFC 7515 §4.1.9).
fn typ_matches(typ: Option<&str>, token_type: TokenType) -> bool {
    let Some(typ) = typ else { return false };
    let lower = typ.to_ascii_lowercase();
    let bare = lower.strip_prefix("application/").unwrap_or(&lower);
    bare == token_type.typ()
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::new(TokenErrorKind::Malformed))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::new(TokenErrorKind::Malformed))
}
