//! API-key authentication as a tower layer, and scope guards as axum
//! extractors (feature `apikeys`).
//!
//! [`ApiKeyLayer`] reads the key from `X-API-Key` (the header is
//! configurable) or `Authorization: ApiKey <key>`, verifies it once with
//! [`ApiKeys::verify`](palisade_apikeys::ApiKeys::verify) from the client
//! address the trusted-proxy resolver finds, and puts the [`KeyInfo`] (the
//! identity a per-key rate limit keys on) and a [`VerifiedKey`] into the
//! request before the layers inside it run. Handlers take [`VerifiedKey`]
//! or [`RequireScope<S>`], which read what the layer found. The decisions
//! live in [`palisade_apikeys`], whose types a service needs are
//! re-exported here.

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use palisade_apikeys::request;

use crate::ApiError;

mod layer;
pub use layer::{ApiKeyLayer, ApiKeyService};

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
/// It is what an [`ApiKeyLayer`] found; without one before the handler the
/// extractor answers 500 (a misconfiguration, never "allowed"). Behind an
/// optional layer a caller without a key is refused 401
/// (`WWW-Authenticate: ApiKey`); take `Option<VerifiedKey>` to serve it.
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

impl<S: Send + Sync> FromRequestParts<S> for VerifiedKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<VerifiedKey, ApiError> {
        match found(parts)? {
            Some(key) => Ok(key),
            None => Err(ApiError(anonymous_refusal(parts))),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<VerifiedKey>, ApiError> {
        found(parts)
    }
}

/// What the layer found: a key, an anonymous caller (`None`), or no layer.
fn found(parts: &Parts) -> Result<Option<VerifiedKey>, ApiError> {
    if let Some(key) = parts.extensions.get::<VerifiedKey>() {
        return Ok(Some(key.clone()));
    }
    if parts.extensions.get::<layer::NoKey>().is_some() {
        return Ok(None);
    }
    Err(ApiError(request::not_configured()))
}

fn anonymous_refusal(parts: &Parts) -> palisade_errors::Error {
    let client_ip = parts
        .extensions
        .get::<layer::NoKey>()
        .map_or(layer::UNKNOWN_CLIENT, |anonymous| anonymous.0);
    request::refuse_anonymous(client_ip)
}

/// A [`VerifiedKey`] holding scope `S`; otherwise 403 `forbidden` (and one
/// `authz_fail` event with reason `missing_scope`, logged by the core).
///
/// ```
/// use palisade_axum::apikeys::{RequireScope, Scope};
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

impl<St: Send + Sync, S: Scope> FromRequestParts<St> for RequireScope<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &St,
    ) -> Result<RequireScope<S>, ApiError> {
        let key = <VerifiedKey as FromRequestParts<St>>::from_request_parts(parts, state).await?;
        key.info
            .require_scopes(&[S::NAME], key.client_ip)
            .map_err(|error| ApiError(error.into()))?;
        Ok(RequireScope(key, PhantomData))
    }
}
