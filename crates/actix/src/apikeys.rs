//! API-key authentication as actix-web middleware, and scope guards as
//! extractors (feature `apikeys`).
//!
//! [`ApiKeyAuth`] reads the key from `X-API-Key` (the header is
//! configurable) or `Authorization: ApiKey <key>`, verifies it once with
//! [`ApiKeys::verify`](palisade_apikeys::ApiKeys::verify) from the client
//! address the trusted-proxy resolver finds, and puts the [`KeyInfo`] (the
//! identity a per-key rate limit keys on) and a [`VerifiedKey`] into the
//! request before the middleware inside it runs. Handlers take
//! [`VerifiedKey`], [`OptionalKey`] or [`RequireScope<S>`], which read what
//! the middleware found. The decisions live in [`palisade_apikeys`], whose
//! types a service needs are re-exported here.

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use palisade_apikeys::request;

use crate::ApiError;

mod middleware;
pub use middleware::{ApiKeyAuth, ApiKeyMiddleware};

// The core's types a service needs, so this crate is its one dependency.
pub use palisade_apikeys::request::{
    Credentials, DEFAULT_HEADER, KeyMode, SCHEME, Scope, VerifyFuture, VerifyKey,
};
pub use palisade_apikeys::{
    ApiKey, ApiKeyError, ApiKeyErrorKind, ApiKeys, Cidr, KeyId, KeyInfo, KeyRequest, KeyStatus,
    KeyStore, ManualClock, MemoryKeyStore, NewKey, Pepper, SystemClock,
};
pub use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};

/// A caller whose API key verified (checksum, secret, status, expiry, the
/// address allow-list). Derefs to its [`KeyInfo`]: `key.owner`,
/// `key.key_id`, `key.scopes`.
///
/// It is what an [`ApiKeyAuth`] middleware found; without one before the
/// handler the extractor answers 500 (a misconfiguration, never
/// "allowed"). Behind an optional middleware a caller without a key is
/// refused 401 (`WWW-Authenticate: ApiKey`); take [`OptionalKey`] to serve
/// it (actix's `Option<VerifiedKey>` would also turn the 500 of a missing
/// middleware into `None`).
#[derive(Clone, Debug)]
pub struct VerifiedKey {
    info: KeyInfo,
    client_ip: IpAddr,
}

impl VerifiedKey {
    /// The key's metadata (never its secret).
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    /// The client address the key was verified from (the trusted-proxy
    /// resolver's answer, never a raw forwarding header).
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }
}

impl std::ops::Deref for VerifiedKey {
    type Target = KeyInfo;

    fn deref(&self) -> &KeyInfo {
        &self.info
    }
}

/// What the middleware found: a key, an anonymous caller (`None`), or no
/// middleware.
fn found(request: &HttpRequest) -> Result<Option<VerifiedKey>, ApiError> {
    let extensions = request.extensions();
    if let Some(key) = extensions.get::<VerifiedKey>() {
        return Ok(Some(key.clone()));
    }
    if extensions.contains::<middleware::NoKey>() {
        return Ok(None);
    }
    Err(ApiError(request::not_configured()))
}

fn verified(request: &HttpRequest) -> Result<VerifiedKey, ApiError> {
    match found(request)? {
        Some(key) => Ok(key),
        None => {
            let client_ip = request
                .extensions()
                .get::<middleware::NoKey>()
                .map_or(middleware::UNKNOWN_CLIENT, |anonymous| anonymous.0);
            Err(ApiError(request::refuse_anonymous(client_ip)))
        }
    }
}

impl FromRequest for VerifiedKey {
    type Error = ApiError;
    type Future = Ready<Result<VerifiedKey, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(verified(request))
    }
}

/// The verified key behind an optional [`ApiKeyAuth`], or `None` for a
/// caller it let through without one; 500 without the middleware.
#[derive(Clone, Debug)]
pub struct OptionalKey(pub Option<VerifiedKey>);

impl FromRequest for OptionalKey {
    type Error = ApiError;
    type Future = Ready<Result<OptionalKey, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(found(request).map(OptionalKey))
    }
}

/// A [`VerifiedKey`] holding scope `S`; otherwise 403 `forbidden` (and one
/// `authz_fail` event with reason `missing_scope`, logged by the core).
///
/// ```
/// use palisade_actix::apikeys::{RequireScope, Scope};
///
/// /// May change items.
/// struct Write;
/// impl Scope for Write {
///     const NAME: &'static str = "items:write";
/// }
///
/// async fn update(key: RequireScope<Write>) -> String {
///     format!("changed by {}", key.owner)
/// }
/// # let _ = update;
/// ```
#[derive(Debug)]
pub struct RequireScope<S>(pub VerifiedKey, PhantomData<S>);

impl<S> std::ops::Deref for RequireScope<S> {
    type Target = KeyInfo;

    fn deref(&self) -> &KeyInfo {
        &self.0.info
    }
}

impl<S: Scope> FromRequest for RequireScope<S> {
    type Error = ApiError;
    type Future = Ready<Result<RequireScope<S>, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(verified(request).and_then(|key| {
            key.info
                .require_scopes(&[S::NAME], key.client_ip)
                .map_err(|error| ApiError(error.into()))?;
            Ok(RequireScope(key, PhantomData))
        }))
    }
}
