//! Client binding of a family: a device id given at login that every
//! refresh of the family must present again.
//!
//! The family's refresh tokens carry, in the signed claim `dvh`, a keyed
//! hash of the device id (HMAC-SHA-256 under a key derived from the
//! sealing key), never the id: each successor copies it from the verified
//! token it replaces, so the binding cannot change within a family, and a
//! token read by a thief tells it nothing it could brute-force offline.
//!
//! A refresh of a bound family that presents another device id, or none,
//! is refused like reuse (401 `invalid_token`, event `authn_token_reuse`
//! with `reason = "device_mismatch"`), and the **family is ended** (with
//! [`refresh_unrevoked_bound`](super::RefreshFamilies::refresh_unrevoked_bound),
//! also revoked in the revocation store, so its access tokens stop too).
//! Why ended rather than left alone: a current refresh token presented
//! without its device proves the token was copied out of the client, so
//! whatever else was stored beside it (the access token) is exposed as
//! well; ending the family is what reuse detection does for the same
//! evidence. The cost is that whoever holds a stolen token can log the user
//! out, which a replay of any rotated token can already do; and a client
//! that forgets its device id is logged out rather than let through.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use palisade_errors::{SecurityEvent, SubjectHash};

use super::{FamilyRef, FamilyStore, Login, RefreshFamilies, TokenPair, store_failed};
use crate::token::check_unrevoked;
use crate::{Clock, Grant, TokenError, TokenErrorKind};

/// The shortest device id accepted.
pub const MIN_DEVICE_ID_LEN: usize = 16;
/// The longest device id accepted.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// A client's device id: 16 to 128 characters, ASCII letters, digits and
/// `-` `_` `.` `~` (a random id the client generated once, e.g. a UUID).
/// Never logged, never stored: families keep a keyed hash of it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceId(String);

impl std::fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceId(..)")
    }
}

impl DeviceId {
    /// `raw` if it is a device id (see the type), else `None`.
    pub fn parse(raw: &str) -> Option<DeviceId> {
        let valid = (MIN_DEVICE_ID_LEN..=MAX_DEVICE_ID_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        valid.then(|| DeviceId(raw.to_owned()))
    }
}

/// The refresh token's binding claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Binding {
    /// base64url(HMAC-SHA-256(device key, device id)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dvh: Option<String>,
}

/// The key device ids are hashed with, derived from the sealing key.
pub(super) fn device_key(sealing_key: &[u8]) -> hmac::Key {
    let derive = hmac::Key::new(hmac::HMAC_SHA256, sealing_key);
    let tag = hmac::sign(&derive, b"palisade refresh device binding v1");
    hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
}

impl<S: FamilyStore, C: Clock> RefreshFamilies<S, C> {
    fn device_hash(&self, device: &DeviceId) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.device_key, device.0.as_bytes()))
    }

    /// [`login`](Self::login), binding the family to `device`: every
    /// refresh of it must present the same device id (see the module docs
    /// of [`refresh`](super)).
    pub async fn login_bound(&self, grant: &Grant, device: &DeviceId) -> Result<Login, TokenError> {
        let binding = Binding {
            dvh: Some(self.device_hash(device)),
        };
        self.start_family(grant, None, binding).await
    }

    /// [`refresh_unrevoked`](Self::refresh_unrevoked) presenting the
    /// client's device id (`None` when the request carried none). A family
    /// bound at login ([`login_bound`](Self::login_bound)) refuses a
    /// refresh whose device id differs or is missing, as reuse: 401
    /// [`TokenErrorKind::Revoked`], the family ended and revoked. An
    /// unbound family ignores `device`.
    pub async fn refresh_unrevoked_bound<F, Fut, R>(
        &self,
        refresh_token: &str,
        device: Option<&DeviceId>,
        user_lookup: F,
        revocations: &R,
    ) -> Result<TokenPair, TokenError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<Grant>>,
        R: crate::revocation::RevocationStore,
    {
        self.refresh_checked(refresh_token, device, user_lookup, revocations)
            .await
    }

    /// Logout with a refresh token (from the cookie or the body): verifies
    /// it and ends its family. A token that does not verify is refused
    /// (401); an already ended family is not an error. The family's access
    /// tokens stay valid until they expire unless the application also
    /// revokes the `sid` it returns
    /// ([`revoke_family`](crate::revocation::RevocationStore::revoke_family)).
    pub async fn logout(&self, refresh_token: &str) -> Result<String, TokenError> {
        let claims = self.verifier.verify_refresh(refresh_token)?;
        let sid = claims
            .sid
            .ok_or_else(|| TokenError::new(TokenErrorKind::InvalidClaims))?;
        self.end(&claims.sub, &sid).await?;
        Ok(sid)
    }

    /// [`logout`](Self::logout), refused (401 or 503) when the token is
    /// revoked or the store cannot answer, and revoking the family in
    /// `revocations` until the refresh token would have expired, so its
    /// access tokens stop at once.
    pub async fn logout_unrevoked<R: crate::revocation::RevocationStore>(
        &self,
        refresh_token: &str,
        revocations: &R,
    ) -> Result<String, TokenError> {
        let claims = self.verifier.verify_refresh(refresh_token)?;
        check_unrevoked(&claims, self.verifier.policy().leeway(), revocations).await?;
        let sid = claims
            .sid
            .clone()
            .ok_or_else(|| TokenError::new(TokenErrorKind::InvalidClaims))?;
        self.end(&claims.sub, &sid).await?;
        let until = claims
            .exp
            .saturating_add(self.verifier.policy().refresh_ttl())
            .saturating_add(60);
        revocations
            .revoke_family(&claims.sub, &sid, until)
            .await
            .map_err(|error| store_failed("family revocation", &claims.sub, &error))?;
        Ok(sid)
    }

    /// The binding rule, before anything is rotated: `Ok` for an unbound
    /// family or the right device; else the family is ended and the refresh
    /// refused as reuse.
    pub(super) async fn check_binding(
        &self,
        subject: &str,
        binding: &Binding,
        sid: &str,
        device: Option<&DeviceId>,
    ) -> Result<(), TokenError> {
        let Some(expected) = &binding.dvh else {
            return Ok(());
        };
        let presented = device.map(|device| self.device_hash(device));
        let matches = presented.as_deref().is_some_and(|presented| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                presented.as_bytes(),
                expected.as_bytes(),
            )
            .is_ok()
        });
        if matches {
            return Ok(());
        }
        tracing::warn!(
            event = SecurityEvent::AuthnTokenReuse.as_str(),
            reason = if device.is_some() { "device_mismatch" } else { "device_missing" },
            subject_hash = %SubjectHash::of(subject),
            "a bound refresh token was presented without its device: refresh family ended"
        );
        let family = FamilyRef { subject, sid };
        if let Err(error) = self.store.end(family).await {
            return Err(store_failed("family end", subject, &error));
        }
        Err(TokenError::new(TokenErrorKind::Revoked))
    }
}
