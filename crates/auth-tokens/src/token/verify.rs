//! Verifying tokens: every check on by default, revocation on request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::keyring::{Keyring, SigningKey};
use crate::revocation::{RevocationStore, StoreError, TokenRef};
use crate::{Clock, SystemClock};
use palisade_errors::{SecurityEvent, SubjectHash};

use super::claims::{Claims, NoCustomClaims, TokenType, one_or_many};
use super::error::{TokenError, TokenErrorKind};
use super::policy::{MAX_LEEWAY, Relaxations, TokenPolicy};

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
        let unavailable = |error: StoreError| {
            log_store_unavailable("logout", &claims.sub, &error);
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
        tracing::info!(
            event = SecurityEvent::AuthnTokenRevoked.as_str(),
            reason = if whole_session.is_some() { "logout_session" } else { "logout" },
            subject_hash = %SubjectHash::of(&claims.sub),
            "token revoked"
        );
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
    ///
    /// A refusal is logged once, as `event = "authn_token_invalid"` with the
    /// kind as `reason` and, once the signature has verified, the
    /// `subject_hash` of the token's `sub` (never the token or the subject).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        token_type: TokenType,
    ) -> Result<T, TokenError> {
        self.check(token, token_type).map_err(|(error, payload)| {
            // Only after the signature verified is `sub` the issuer's word.
            let subject = payload.as_deref().and_then(subject_of);
            log_refusal(error.kind(), subject.as_deref());
            error
        })
    }

    /// [`verify`](Self::verify) without the log line; a refusal after the
    /// signature verified carries the decoded payload, for the log.
    fn check<T: DeserializeOwned>(
        &self,
        token: &str,
        token_type: TokenType,
    ) -> Result<T, (TokenError, Option<Vec<u8>>)> {
        let refuse = |kind| Err((TokenError::new(kind), None));
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
        let header: RawHeader = decode_json(header_b64).map_err(|error| (error, None))?;
        if header.crit {
            // RFC 7515 §4.1.11: a recipient that does not understand a
            // critical extension must reject the token.
            return refuse(TokenErrorKind::UnsupportedCritical);
        }
        let keyring = match token_type {
            TokenType::Access => &self.access,
            TokenType::Refresh => &self.refresh,
        };
        let Some(key): Option<&SigningKey> = (match header.kid.as_deref() {
            Some(kid) => keyring.verifier(kid),
            None if self.relaxations.allow_missing_kid_dangerously => keyring.single(),
            None => None,
        }) else {
            return refuse(TokenErrorKind::UnknownKey);
        };
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
        let Ok(payload) = URL_SAFE_NO_PAD.decode(payload_b64) else {
            return refuse(TokenErrorKind::Malformed);
        };
        let Ok(registered) = serde_json::from_slice::<TimeAndParties>(&payload) else {
            return Err((
                TokenError::new(TokenErrorKind::InvalidClaims),
                Some(payload),
            ));
        };
        if let Err(error) = self.check_registered(&registered, token_type) {
            return Err((error, Some(payload)));
        }
        match serde_json::from_slice(&payload) {
            Ok(claims) => Ok(claims),
            Err(_) => Err((
                TokenError::new(TokenErrorKind::InvalidClaims),
                Some(payload),
            )),
        }
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
            log_refusal(TokenErrorKind::Revoked, Some(&claims.sub));
            Err(TokenError::new(TokenErrorKind::Revoked))
        }
        Err(error) => {
            log_store_unavailable("revocation check", &claims.sub, &error);
            Err(TokenError::new(TokenErrorKind::StoreUnavailable))
        }
    }
}

/// The one event of a refused token: `authn_token_invalid`, the kind as
/// `reason`, the hash of the subject when it is known.
pub(crate) fn log_refusal(kind: TokenErrorKind, subject: Option<&str>) {
    log_refusal_reason(kind.as_str(), subject);
}

/// [`log_refusal`] for a refusal that is not a [`TokenErrorKind`] (no
/// token at all, an unusable `Authorization` header).
pub(crate) fn log_refusal_reason(reason: &'static str, subject: Option<&str>) {
    match subject {
        Some(subject) => tracing::info!(
            event = SecurityEvent::AuthnTokenInvalid.as_str(),
            reason,
            subject_hash = %SubjectHash::of(subject),
            "token refused"
        ),
        None => tracing::info!(
            event = SecurityEvent::AuthnTokenInvalid.as_str(),
            reason,
            "token refused"
        ),
    }
}

/// The one event of a decision a store could not answer: `store_unavailable`,
/// `reason = "fail_closed"`, the operation and the store error's kind.
pub(crate) fn log_store_unavailable(operation: &'static str, subject: &str, error: &StoreError) {
    tracing::warn!(
        event = SecurityEvent::StoreUnavailable.as_str(),
        reason = "fail_closed",
        operation,
        store_error = error.kind().as_str(),
        subject_hash = %SubjectHash::of(subject),
        %error,
        "store did not answer: refused"
    );
}

/// The `sub` of a payload whose signature verified, for the log.
fn subject_of(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: String,
    }
    serde_json::from_slice::<Subject>(payload)
        .ok()
        .map(|subject| subject.sub)
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
