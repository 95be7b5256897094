//! Bearer-token authentication as actix-web middleware, and role guards as
//! extractors (feature `auth`).
//!
//! [`Authentication`] verifies the token once, before the middleware inside
//! it (a per-subject rate limit keys on the [`Principal`] it inserts);
//! handlers take [`Authenticated`] or [`RequireRole<R>`], which read what
//! the middleware found. Without it (the older
//! `App::app_data(auth_data(..))`) the extractors verify the token
//! themselves, after every middleware. The decisions live in
//! [`palisade_auth_tokens`], whose types a service needs are re-exported
//! here.

use std::marker::PhantomData;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use palisade_auth_tokens::bearer::Authenticate;

use crate::ApiError;

mod middleware;
pub use middleware::{Authentication, AuthenticationMiddleware};
mod refresh_cookie;
pub use refresh_cookie::{Device, RefreshCookies, RefreshRequest, refresh_cookie_data};

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

/// The app data that makes an [`Authenticate`] available to the extractors.
pub fn auth_data(auth: impl Authenticate) -> web::Data<dyn Authenticate> {
    let auth: Arc<dyn Authenticate> = Arc::new(auth);
    web::Data::from(auth)
}

/// A caller whose bearer token verified and is not revoked. Rejections are
/// the RFC 6750 responses: 401 `Bearer realm="…"` without credentials, 401
/// `error="invalid_token"` for a bad token, 503 when the revocation store
/// cannot answer. Behind [`Authentication`] it is what the middleware
/// found; without it the extractor verifies the token itself, after every
/// middleware (too late for a per-subject rate limit).
#[derive(Clone, Debug)]
pub struct Authenticated(pub bearer::Authenticated);

impl std::ops::Deref for Authenticated {
    type Target = bearer::Authenticated;

    fn deref(&self) -> &bearer::Authenticated {
        &self.0
    }
}

fn authenticator(request: &HttpRequest) -> Result<Arc<dyn Authenticate>, ApiError> {
    if let Some(auth) = request.extensions().get::<Arc<dyn Authenticate>>() {
        return Ok(Arc::clone(auth));
    }
    request
        .app_data::<web::Data<dyn Authenticate>>()
        .map(|auth| auth.clone().into_inner())
        .ok_or_else(|| ApiError(bearer::not_configured()))
}

async fn authenticate(request: HttpRequest) -> Result<Authenticated, ApiError> {
    if let Some(done) = request.extensions().get::<Authenticated>() {
        return Ok(done.clone());
    }
    let auth = authenticator(&request)?;
    let lines: Vec<Vec<u8>> = request
        .headers()
        .get_all(actix_web::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes().to_vec())
        .collect();
    let credentials = bearer::credentials(lines.iter().map(Vec::as_slice));
    let authenticated = auth.authenticate(credentials).await.map_err(ApiError)?;
    middleware::remember(
        &mut request.extensions_mut(),
        &auth,
        Some(authenticated.clone()),
    );
    Ok(Authenticated(authenticated))
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Authenticated, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        Box::pin(authenticate(request.clone()))
    }
}

/// An [`Authenticated`] caller holding role `R` or one above it; otherwise
/// 403 `forbidden` (and an `authz_fail` event).
#[derive(Debug)]
pub struct RequireRole<R>(pub Authenticated, PhantomData<R>);

impl<R> std::ops::Deref for RequireRole<R> {
    type Target = bearer::Authenticated;

    fn deref(&self) -> &bearer::Authenticated {
        &self.0.0
    }
}

impl<R: RoleRequirement> FromRequest for RequireRole<R> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<RequireRole<R>, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let authenticated = authenticate(request.clone()).await?;
            let auth = authenticator(&request)?;
            auth.authorizer()
                .require_role(&authenticated.principal, &R::role())
                .map_err(ApiError)?;
            Ok(RequireRole(authenticated, PhantomData))
        })
    }
}
