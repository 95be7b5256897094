//! The refresh token in a `__Host-` cookie: an extractor for refresh and
//! logout requests, and the `Set-Cookie` headers for login, refresh and
//! logout. The cookie's format and the CSRF rule are
//! [`palisade_auth_tokens::cookie`]'s; this module only moves them in and
//! out of actix-web (whose header types are `http` 0.2's).

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue, SET_COOKIE};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use palisade_auth_tokens::cookie::{self, RefreshCookie, RefreshSource};
use palisade_auth_tokens::refresh::DeviceId;
use palisade_errors::{Error, ErrorKind};

use crate::ApiError;

/// The app data that makes a [`RefreshCookie`] available to
/// [`RefreshRequest`], [`RefreshCookies`] and [`Device`].
pub fn refresh_cookie_data(cookie: RefreshCookie) -> web::Data<RefreshCookie> {
    web::Data::new(cookie)
}

fn configured(request: &HttpRequest) -> Result<Arc<RefreshCookie>, ApiError> {
    request
        .app_data::<web::Data<RefreshCookie>>()
        .map(|data| data.clone().into_inner())
        .ok_or_else(|| {
            tracing::error!("RefreshRequest used without refresh_cookie_data");
            ApiError(Error::new(ErrorKind::Internal))
        })
}

/// The request's headers as `http` 1 types, for the core.
fn headers(request: &HttpRequest) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in request.headers() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

fn set_cookie_header(value: &http::HeaderValue) -> Result<(HeaderName, HeaderValue), ApiError> {
    let value = HeaderValue::from_bytes(value.as_bytes())
        .map_err(|_| ApiError(Error::new(ErrorKind::Internal)))?;
    Ok((SET_COOKIE, value))
}

/// The cookie settings, for a login handler:
/// `HttpResponse::Ok().append_header(cookies.set(&token)?)`.
#[derive(Clone, Debug)]
pub struct RefreshCookies(pub Arc<RefreshCookie>);

impl RefreshCookies {
    /// The `Set-Cookie` header carrying `token` (a 500 only if `token` is
    /// not a cookie value, which an issued token always is).
    pub fn set(&self, token: &str) -> Result<(HeaderName, HeaderValue), ApiError> {
        set_cookie_header(&self.0.set_cookie(token)?)
    }

    /// The `Set-Cookie` header that deletes the cookie (`Max-Age=0`).
    pub fn clear(&self) -> Result<(HeaderName, HeaderValue), ApiError> {
        set_cookie_header(&self.0.clear_cookie())
    }
}

impl FromRequest for RefreshCookies {
    type Error = ApiError;
    type Future = std::future::Ready<Result<RefreshCookies, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(configured(request).map(RefreshCookies))
    }
}

/// The device id a request carries (for
/// [`RefreshFamilies::login_bound`](palisade_auth_tokens::refresh::RefreshFamilies::login_bound)),
/// read where the [`RefreshCookie`] says; a malformed one is a 400.
#[derive(Clone, Debug)]
pub struct Device(pub Option<DeviceId>);

impl FromRequest for Device {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Device, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(
            configured(request).and_then(|cookie| Ok(Device(cookie.device_id(&headers(request))?))),
        )
    }
}

/// A refresh or logout request's token: from the JSON body
/// `{"refresh_token": "..."}`, or from the cookie under the CSRF rule (an
/// allowed `Origin` and the custom header, else 403). No token: 401. It
/// reads the body.
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

impl FromRequest for RefreshRequest {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<RefreshRequest, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let body = web::Bytes::from_request(&request, payload);
        Box::pin(async move {
            let cookie = configured(&request)?;
            let body = body
                .await
                .map_err(|_| ApiError(Error::new(ErrorKind::PayloadTooLarge)))?;
            let read = cookie.read_request(&headers(&request), &body)?;
            Ok(RefreshRequest {
                request: read,
                cookies: RefreshCookies(cookie),
            })
        })
    }
}
