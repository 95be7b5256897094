//! Signing access and refresh tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::authz::Role;
use crate::keyring::{Algorithm, Keyring};
use crate::{Clock, SystemClock};

use super::claims::{Claims, NoCustomClaims, TokenType};
use super::ecdsa;
use super::error::{TokenError, TokenErrorKind};
use super::policy::TokenPolicy;

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
///
/// The role is a [`Role`], so a name no check would accept (`"Admin"`,
/// `"admin "`) is refused where the role is built ([`Role::new`], or
/// deserializing configuration), never issued into a token whose role
/// every later check drops:
///
/// ```compile_fail
/// # use palisade_auth_tokens::Grant;
/// let grant = Grant { role: Some("Admin".into()), ..Grant::default() };
/// ```
///
/// ```
/// # use palisade_auth_tokens::{Grant, authz::Role};
/// let grant = Grant { role: Some(Role::new("billing-admin")?), ..Grant::default() };
/// assert!(Role::new("Admin").is_err());
/// # Ok::<(), palisade_auth_tokens::authz::AuthzConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// The subject (user id).
    pub subject: String,
    /// The session (refresh family) id.
    pub session: Option<String>,
    /// The role.
    pub role: Option<Role>,
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
    /// revoked at `not_before` (a password change, then a fresh login; pass
    /// what [`revoke_subject`](crate::revocation::RevocationStore::revoke_subject)
    /// or [`not_before`](crate::revocation::RevocationStore::not_before)
    /// returned): the token is stamped at least `not_before + leeway + 1`,
    /// since the verifier counts every token with `iat - leeway <=
    /// not_before` as revoked (a token minted before the revocation by an
    /// instance whose clock runs up to `leeway` ahead carries such an `iat`).
    /// Such a stamp is ahead of the clock for up to `leeway + 1` seconds, so
    /// the token is accepted once the verifier's clock is one second past
    /// `not_before` (tokens are refused when `iat > now + leeway`): a
    /// client that logs in within the same second as the revocation retries
    /// a second later.
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
        self.issue_refresh_with(subject, session, NoCustomClaims {}, not_before)
    }

    /// A refresh token carrying `custom` claims (a family's device binding).
    pub(crate) fn issue_refresh_with<T: Serialize>(
        &self,
        subject: &str,
        session: &str,
        custom: T,
        not_before: Option<u64>,
    ) -> Result<IssuedToken, TokenError> {
        let grant = Grant {
            subject: subject.to_owned(),
            session: Some(session.to_owned()),
            ..Grant::default()
        };
        self.issue(TokenType::Refresh, &grant, custom, not_before)
    }

    fn issue<T: Serialize>(
        &self,
        token_type: TokenType,
        grant: &Grant,
        custom: T,
        not_before: Option<u64>,
    ) -> Result<IssuedToken, TokenError> {
        let (keyring, ttl) = match token_type {
            TokenType::Access => (&self.access, self.policy.access_ttl()),
            TokenType::Refresh => (&self.refresh, self.policy.refresh_ttl()),
        };
        let key = keyring
            .active()
            .ok_or_else(|| TokenError::new(TokenErrorKind::CannotSign))?;
        let encoding = key
            .encoding()
            .ok_or_else(|| TokenError::new(TokenErrorKind::CannotSign))?;
        let jti = random_id().ok_or_else(|| TokenError::new(TokenErrorKind::CannotSign))?;
        let now = self.clock.now();
        let after = |not_before: u64| {
            not_before
                .saturating_add(self.policy.leeway())
                .saturating_add(1)
        };
        let now = not_before.map_or(now, |not_before| now.max(after(not_before)));
        let claims = Claims {
            sub: grant.subject.clone(),
            jti: jti.clone(),
            sid: grant.session.clone(),
            iat: Some(now),
            nbf: Some(now),
            exp: now.saturating_add(ttl),
            iss: self.policy.issuer().to_owned(),
            aud: vec![self.policy.audience().to_owned()],
            token_type,
            role: grant.role.as_ref().map(|role| role.as_str().to_owned()),
            permissions: grant.permissions.clone(),
            scope: grant.scope.clone(),
            custom,
        };
        let mut header = jsonwebtoken::Header::new(key.algorithm().jwt());
        header.typ = Some(token_type.typ().to_owned());
        header.kid = Some(key.kid().to_owned());
        let mut token = jsonwebtoken::encode(&header, &claims, encoding).map_err(|error| {
            tracing::error!(%error, "token signing failed");
            TokenError::new(TokenErrorKind::CannotSign)
        })?;
        if key.algorithm() == Algorithm::ES256 {
            token = low_s(token)?;
        }
        Ok(IssuedToken {
            token,
            jti,
            expires_at: claims.exp,
        })
    }
}

/// An ES256 token with its signature in low-S form (see `ecdsa.rs`): the
/// verifier refuses the high-S twin, so the issuer never writes it.
fn low_s(token: String) -> Result<String, TokenError> {
    let cannot_sign = || TokenError::new(TokenErrorKind::CannotSign);
    let (message, signature) = token.rsplit_once('.').ok_or_else(cannot_sign)?;
    let mut raw = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| cannot_sign())?;
    if ecdsa::is_low_s(&raw) {
        return Ok(token);
    }
    ecdsa::normalise_s(&mut raw);
    if !ecdsa::is_low_s(&raw) {
        return Err(cannot_sign());
    }
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(raw)))
}
