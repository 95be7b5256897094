//! Verifying tokens: every check on by default, revocation on request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::keyring::{Algorithm, Keyring, SigningKey};
use crate::revocation::{RevocationStore, StoreError, TokenRef};
use crate::{Clock, SystemClock};
use palisade_errors::{SecurityEvent, SubjectHash};

use super::claims::{Claims, ClaimsParts, NoCustomClaims, Registered, RegisteredField, TokenType};
use super::ecdsa;
use super::error::{TokenError, TokenErrorKind};
use super::policy::{Relaxations, TokenPolicy};
use super::strict::{Header, Object, PartError, read_part};

/// A payload read once, strictly: what the built-in checks read, and what
/// becomes the caller's claims once they pass.
trait Payload: DeserializeOwned {
    type Output;
    fn registered(&self) -> &Registered;
    fn subject(&self) -> Option<&str>;
    /// The caller's claims; when a required claim is missing or the claims
    /// type refuses them, the subject (for the log).
    fn finish(self) -> Result<Self::Output, Option<String>>;
}

impl<T: DeserializeOwned> Payload for ClaimsParts<T> {
    type Output = Claims<T>;
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn subject(&self) -> Option<&str> {
        self.sub.as_deref()
    }
    fn finish(self) -> Result<Claims<T>, Option<String>> {
        self.into_claims().map_err(|(_, subject)| subject)
    }
}

/// The generic path: any claims type, read from the strict object after
/// the registered claims were read from it with [`Claims`]' types.
struct AnyClaims<T> {
    registered: Registered,
    object: serde_json::Map<String, serde_json::Value>,
    claims: std::marker::PhantomData<fn() -> T>,
}

impl<'de, T> Deserialize<'de> for AnyClaims<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Object(object) = Object::deserialize(deserializer)?;
        let mut registered = Registered::default();
        for (name, field) in RegisteredField::ALL {
            if let Some(value) = object.get(name) {
                registered
                    .read(field, value)
                    .map_err(serde::de::Error::custom)?;
            }
        }
        Ok(AnyClaims {
            registered,
            object,
            claims: std::marker::PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Payload for AnyClaims<T> {
    type Output = T;
    fn registered(&self) -> &Registered {
        &self.registered
    }
    fn subject(&self) -> Option<&str> {
        self.object.get("sub").and_then(serde_json::Value::as_str)
    }
    fn finish(self) -> Result<T, Option<String>> {
        let subject = self.subject().map(str::to_owned);
        T::deserialize(serde_json::Value::Object(self.object)).map_err(|_| subject)
    }
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
    /// A verifier on `clock`. (The policy's leeway is at most
    /// [`MAX_LEEWAY`](super::MAX_LEEWAY), by construction.)
    pub fn with_clock(
        access: Keyring,
        refresh: Keyring,
        policy: TokenPolicy,
        clock: C,
    ) -> TokenVerifier<C> {
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
        self.logged(self.check::<ClaimsParts<T>>(token, TokenType::Access))
    }

    /// The policy tokens are checked against.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
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
        check_unrevoked(&claims, self.policy.leeway(), store).await?;
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
        let leeway = self.policy.leeway();
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
        check_unrevoked(&claims, self.policy.leeway(), store).await?;
        Ok(claims)
    }

    /// What a revocation check asks about `claims`: its `sub`, `jti`, `sid`
    /// and its `iat` moved back by the leeway.
    ///
    /// Logout-everywhere is immune to issuer clock skew within the leeway
    /// (issue #11): an instance whose clock runs up to `leeway` seconds
    /// ahead of the store stamps tokens up to `leeway` seconds after the
    /// store's `not_before`, and the verifier accepts them, so a token
    /// counts as revoked when `iat - leeway <= not_before`. A fresh login
    /// after a [`revoke_subject`](RevocationStore::revoke_subject) is stamped
    /// past that by [`TokenIssuer::issue_access_after`](crate::TokenIssuer::issue_access_after)
    /// (and `RefreshFamilies::login_after`); a plain login within `leeway`
    /// seconds of it is born revoked, since it cannot be told from a token
    /// minted before it by an instance ahead.
    pub fn revocation_ref<'a, T>(&self, claims: &'a Claims<T>) -> TokenRef<'a> {
        revocation_ref(claims, self.policy.leeway())
    }

    /// Verifies a refresh token and returns its claims.
    pub fn verify_refresh(&self, token: &str) -> Result<Claims<NoCustomClaims>, TokenError> {
        self.verify_refresh_as(token)
    }

    /// [`verify_refresh`](Self::verify_refresh) reading the refresh token's
    /// own claims (the family's device binding) into `T`.
    pub(crate) fn verify_refresh_as<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Claims<T>, TokenError> {
        self.logged(self.check::<ClaimsParts<T>>(token, TokenType::Refresh))
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
        self.logged(self.check::<AnyClaims<T>>(token, token_type))
    }

    /// Logs a refusal once, with the subject when the signature verified.
    fn logged<T>(&self, checked: Result<T, Refusal>) -> Result<T, TokenError> {
        checked.map_err(|(error, subject)| {
            log_refusal(error.kind(), subject.as_deref());
            error
        })
    }

    /// [`verify`](Self::verify) without the log line: each part read once,
    /// strictly (UTF-8 JSON objects without repeated keys; see
    /// `strict.rs`); the header before anything else, the payload only
    /// after `jsonwebtoken` verified the signature over the very bytes read.
    /// A refusal after the signature verified carries the subject, for the
    /// log.
    fn check<P: Payload>(&self, token: &str, token_type: TokenType) -> Result<P::Output, Refusal> {
        let refuse = |kind| Err((TokenError::new(kind), None));
        // Size first: nothing of an oversized token is decoded.
        if token.len() > self.policy.max_token_len() {
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
        let mut scratch = Vec::with_capacity(payload_b64.len().max(header_b64.len()));
        let Ok(header) = read_part::<Header>(header_b64, &mut scratch) else {
            return refuse(TokenErrorKind::Malformed);
        };
        if header.crit {
            // RFC 7515 §4.1.11: a recipient that does not understand a
            // critical extension must reject the token.
            return refuse(TokenErrorKind::UnsupportedCritical);
        }
        if header.cty {
            // A nested JWT (RFC 7519 §5.2) or another content type: not a
            // Palisade token, whatever the inner one says.
            return refuse(TokenErrorKind::Malformed);
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
        // ES256: only the low-S form of a signature (see `ecdsa.rs`), so the
        // twin `(r, n - s)` of an accepted token is not a second token.
        if key.algorithm() == Algorithm::ES256 {
            scratch.clear();
            let low_s = URL_SAFE_NO_PAD.decode_vec(signature, &mut scratch).is_ok()
                && ecdsa::is_low_s(&scratch);
            if !low_s {
                return refuse(TokenErrorKind::BadSignature);
            }
        }
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        let signed = token.as_bytes().get(..signed_len).unwrap_or_default();
        let valid =
            jsonwebtoken::crypto::verify(signature, signed, key.decoding(), key.algorithm().jwt())
                .unwrap_or(false);
        if !valid {
            return refuse(TokenErrorKind::BadSignature);
        }
        let payload = match read_part::<P>(payload_b64, &mut scratch) {
            Ok(payload) => payload,
            Err(PartError::Base64) => return refuse(TokenErrorKind::Malformed),
            Err(PartError::Utf8 | PartError::Json) => {
                // Only after the signature verified is `sub` the issuer's word.
                let subject = subject_of(&scratch);
                return Err((TokenError::new(TokenErrorKind::InvalidClaims), subject));
            }
        };
        if let Err(error) = self.check_registered(payload.registered(), token_type) {
            return Err((error, payload.subject().map(str::to_owned)));
        }
        payload
            .finish()
            .map_err(|subject| (TokenError::new(TokenErrorKind::InvalidClaims), subject))
    }

    /// The built-in checks: `exp` (required), `nbf` and `iat` (when
    /// present), `type`, `iss`, `aud`.
    fn check_registered(
        &self,
        claims: &Registered,
        token_type: TokenType,
    ) -> Result<(), TokenError> {
        let refuse = |kind| Err(TokenError::new(kind));
        let now = self.clock.now();
        let leeway = self.policy.leeway();
        let Some(exp) = claims.exp else {
            return refuse(TokenErrorKind::InvalidClaims);
        };
        if now >= exp.saturating_add(leeway) {
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
            && claims.iss.as_deref() != Some(self.policy.issuer())
        {
            return refuse(TokenErrorKind::WrongIssuer);
        }
        if !self.relaxations.skip_audience_check_dangerously
            && !claims
                .aud
                .as_ref()
                .is_some_and(|aud| aud.iter().any(|one| one == self.policy.audience()))
        {
            return refuse(TokenErrorKind::WrongAudience);
        }
        Ok(())
    }
}

/// [`TokenVerifier::revocation_ref`] under `leeway`.
pub(crate) fn revocation_ref<T>(claims: &Claims<T>, leeway: u64) -> TokenRef<'_> {
    TokenRef {
        subject: &claims.sub,
        jti: &claims.jti,
        sid: claims.sid.as_deref(),
        issued_at: claims.revocation_issued_at().saturating_sub(leeway),
    }
}

/// Whether the token of `claims` is unrevoked in `store`, its `iat` moved
/// back by the verifier's `leeway` (see [`TokenVerifier::revocation_ref`]).
pub(crate) async fn check_unrevoked<T, S: RevocationStore>(
    claims: &Claims<T>,
    leeway: u64,
    store: &S,
) -> Result<(), TokenError> {
    match store.is_revoked(revocation_ref(claims, leeway)).await {
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

/// A refusal, with the subject once the signature verified (for the log).
type Refusal = (TokenError, Option<String>);
