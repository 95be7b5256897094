//! Bearer-token authentication as a tower layer, and role guards as axum
//! extractors (feature `auth`).
//!
//! [`AuthLayer`] verifies the token once, before the layers inside it (a
//! per-subject rate limit keys on the [`Principal`] it inserts); handlers
//! take [`Authenticated`] or [`RequireRole<R>`], which read what the layer
//! found. Without the layer (the older `Router::layer(auth_extension(..))`)
//! the extractors verify the token themselves, after every layer. The
//! decisions live in [`palisade_auth_tokens`], whose types a service needs
//! are re-exported here.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::Extension;
use axum::extract::FromRequestParts;
use http::header::AUTHORIZATION;
use http::request::Parts;
use palisade_auth_tokens::bearer::Authenticate;

use crate::ApiError;

mod layer;
pub use layer::{AuthLayer, AuthService};
mod refresh_cookie;
pub use refresh_cookie::{
    Device, RefreshCookies, RefreshRequest, SetRefreshCookie, refresh_cookie_extension,
};

// The core's types a service needs, so this crate is its one dependency.
pub use palisade_auth_tokens::authz::{
    Authorizer, Principal, Role, RoleHierarchy, RolePermissions,
};
pub use palisade_auth_tokens::bearer::{
    Admin, AuthMode, BearerAuth, Moderator, RoleRequirement, User,
};
pub use palisade_auth_tokens::cookie::{DeviceIdFrom, RefreshCookie, RefreshSource};
pub use palisade_auth_tokens::refresh::{DeviceId, MemoryFamilyStore, RefreshFamilies, TokenPair};
pub use palisade_auth_tokens::revocation::{MemoryRevocationStore, RevocationStore};
pub use palisade_auth_tokens::{
    Algorithm, Claims, Grant, IssuedToken, Keyring, NoCustomClaims, SigningKey, SystemClock,
    TokenError, TokenIssuer, TokenPolicy, TokenVerifier, authz, bearer, cookie, refresh,
    revocation,
};
pub use secrecy::{SecretSlice, SecretString};

/// The extension that makes an [`Authenticate`] available to the extractors.
pub fn auth_extension(auth: impl Authenticate) -> Extension<Arc<dyn Authenticate>> {
    Extension(Arc::new(auth))
}

/// A caller whose bearer token verified and is not revoked. Rejections are
/// the RFC 6750 responses: 401 `Bearer realm="…"` without credentials, 401
/// `error="invalid_token"` for a bad token, 503 when the revocation store
/// cannot answer.
///
/// Behind an [`AuthLayer`] it is what the layer found; without one the
/// extractor verifies the token itself, after every layer (too late for a
/// per-subject rate limit).
#[derive(Clone, Debug)]
pub struct Authenticated(pub bearer::Authenticated);

impl std::ops::Deref for Authenticated {
    type Target = bearer::Authenticated;

    fn deref(&self) -> &bearer::Authenticated {
        &self.0
    }
}

fn authenticator(parts: &Parts) -> Result<Arc<dyn Authenticate>, ApiError> {
    parts
        .extensions
        .get::<Arc<dyn Authenticate>>()
        .cloned()
        .ok_or_else(|| ApiError(bearer::not_configured()))
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Authenticated, ApiError> {
        if let Some(done) = parts.extensions.get::<Authenticated>() {
            return Ok(done.clone());
        }
        let auth = authenticator(parts)?;
        let lines = parts
            .headers
            .get_all(AUTHORIZATION)
            .iter()
            .map(http::HeaderValue::as_bytes);
        let credentials = bearer::credentials(lines);
        let authenticated = auth.authenticate(credentials).await.map_err(ApiError)?;
        layer::remember(&mut parts.extensions, &auth, Some(authenticated.clone()));
        Ok(Authenticated(authenticated))
    }
}

/// An [`Authenticated`] caller holding role `R` or one above it in the
/// hierarchy; otherwise 403 `forbidden` (and an `authz_fail` event).
#[derive(Debug)]
pub struct RequireRole<R>(pub Authenticated, PhantomData<R>);

impl<R> std::ops::Deref for RequireRole<R> {
    type Target = bearer::Authenticated;

    fn deref(&self) -> &bearer::Authenticated {
        &self.0.0
    }
}

impl<S: Send + Sync, R: RoleRequirement> FromRequestParts<S> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<RequireRole<R>, ApiError> {
        let authenticated = Authenticated::from_request_parts(parts, state).await?;
        let auth = authenticator(parts)?;
        auth.authorizer()
            .require_role(&authenticated.principal, &R::role())
            .map_err(ApiError)?;
        Ok(RequireRole(authenticated, PhantomData))
    }
}
