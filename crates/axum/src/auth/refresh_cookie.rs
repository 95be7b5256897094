//! The refresh token in a `__Host-` cookie: an extractor for refresh and
//! logout requests, and the `Set-Cookie` response parts for login, refresh
//! and logout. The cookie's format and the CSRF rule are
//! [`palisade_auth_tokens::cookie`]'s; this module only moves them in and
//! out of axum.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponseParts, ResponseParts};
use http::HeaderValue;
use http::header::SET_COOKIE;
use http::request::Parts;
use palisade_auth_tokens::cookie::{self, RefreshCookie, RefreshSource};
use palisade_auth_tokens::refresh::DeviceId;
use palisade_errors::{Error, ErrorKind};

use crate::ApiError;

/// The extension that makes a [`RefreshCookie`] available to
/// [`RefreshRequest`], [`RefreshCookies`] and [`Device`].
pub fn refresh_cookie_extension(cookie: RefreshCookie) -> Extension<Arc<RefreshCookie>> {
    Extension(Arc::new(cookie))
}

fn configured(parts: &Parts) -> Result<Arc<RefreshCookie>, ApiError> {
    parts
        .extensions
        .get::<Arc<RefreshCookie>>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("RefreshRequest used without refresh_cookie_extension");
            ApiError(Error::new(ErrorKind::Internal))
        })
}

/// The cookie settings, for a login handler: `cookies.set(&token)` is the
/// response part that sets the cookie.
#[derive(Clone, Debug)]
pub struct RefreshCookies(pub Arc<RefreshCookie>);

impl RefreshCookies {
    /// The `Set-Cookie` carrying `token` (a 500 only if `token` is not a
    /// cookie value, which an issued token always is).
    pub fn set(&self, token: &str) -> Result<SetRefreshCookie, ApiError> {
        Ok(SetRefreshCookie(self.0.set_cookie(token)?))
    }

    /// The `Set-Cookie` that deletes the cookie (`Max-Age=0`).
    pub fn clear(&self) -> SetRefreshCookie {
        SetRefreshCookie(self.0.clear_cookie())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RefreshCookies {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<RefreshCookies, ApiError> {
        configured(parts).map(RefreshCookies)
    }
}

/// The device id a request carries (for
/// [`RefreshFamilies::login_bound`](palisade_auth_tokens::refresh::RefreshFamilies::login_bound)),
/// read where the [`RefreshCookie`] says; a malformed one is a 400.
#[derive(Clone, Debug)]
pub struct Device(pub Option<DeviceId>);

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Device, ApiError> {
        let cookie = configured(parts)?;
        Ok(Device(cookie.device_id(&parts.headers)?))
    }
}

/// A refresh or logout request's token: from the JSON body
/// `{"refresh_token": "..."}`, or from the cookie under the CSRF rule (an
/// allowed `Origin` and the custom header, else 403). No token: 401. It
/// reads the body, so it is a handler's last argument.
#[derive(Clone, Debug)]
pub struct RefreshRequest {
    /// The token, its source and the device id.
    pub request: cookie::RefreshRequest,
    /// The cookie settings, to answer with [`RefreshCookies::set`].
    pub cookies: RefreshCookies,
}

impl RefreshRequest {
    /// The presented token.
    pub fn token(&self) -> &str {
        &self.request.token
    }

    /// The device id presented with it.
    pub fn device(&self) -> Option<&DeviceId> {
        self.request.device.as_ref()
    }

    /// Whether the token came from the cookie (then answer with a new one).
    pub fn from_cookie(&self) -> bool {
        self.request.source == RefreshSource::Cookie
    }
}

impl<S: Send + Sync> FromRequest<S> for RefreshRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<RefreshRequest, ApiError> {
        let (parts, body) = request.into_parts();
        let cookie = configured(&parts)?;
        let body = axum::body::to_bytes(body, cookie::MAX_BODY_LEN)
            .await
            .map_err(|_| ApiError(Error::new(ErrorKind::PayloadTooLarge)))?;
        let request = cookie.read_request(&parts.headers, &body)?;
        Ok(RefreshRequest {
            request,
            cookies: RefreshCookies(cookie),
        })
    }
}

/// A `Set-Cookie` response part (appended, so other cookies stay).
#[derive(Clone, Debug)]
pub struct SetRefreshCookie(pub HeaderValue);

impl IntoResponseParts for SetRefreshCookie {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Self::Error> {
        parts.headers_mut().append(SET_COOKIE, self.0);
        Ok(parts)
    }
}
