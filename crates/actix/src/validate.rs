//! Request validation for actix-web (feature `validate`), over `palisade-validate`.
//!
//! | middleware / extractor | refuses | status |
//! |---|---|---|
//! | [`EnforceLimits`] | oversized head, target, query; a body over its route's cap, declared or streamed | 431, 414, 400, 413 |
//! | [`RequireJson`] | a body without a JSON `Content-Type` | 415 |
//! | [`ValidJson`] | wrong `Content-Type`, malformed JSON, JSON over the shape limits or of the wrong type | 415, 400, 422 |
//! | [`TrustedHost`] | a `Host` not on the allow-list | 400 |
//! | [`RequestTimeout`] | a handler past its deadline (dropped) | 503 |
//! | [`Id`] | a malformed path id, before the handler runs | 404 |
//!
//! Register them inside [`Harden`](crate::Harden) (`App::new().wrap(EnforceLimits::new(..)).wrap(Harden::new())`,
//! or as `Hardening`'s limit), so their refusals carry the request id.
//!
//! **One source of truth for the body cap.** [`EnforceLimits`] applies the
//! cap of the request's route from [`RequestLimits`] and [`ValidJson`]
//! reads up to it. actix's own extractors keep their own defaults
//! (`web::Bytes`/`String` 256 KiB through `PayloadConfig`, `web::Json`
//! 2 MiB through `JsonConfig`): set them to `limits.largest_body_cap()` or
//! use [`ValidJson`] and `web::Payload`, so only Palisade's cap decides.

use std::cell::OnceCell;
use std::future::{Future, Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt};
use palisade_errors::{Error, ErrorKind};
use palisade_validate::content_type::JsonContentType;
use palisade_validate::hosts::TrustedHosts;
use palisade_validate::json::{self, JsonLimits};
use palisade_validate::limits::{self, BodyLimit, RequestLimits};
use palisade_validate::{PathId, Refusal};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A trusted proxy network, as taken by the trusted-host check (the
/// client-IP resolver's type, re-exported).
pub use palisade_ratelimit::client_ip::IpNet;

type Boxed = LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>;

/// The request head as `http` 1 parts (actix-web 4 is on `http` 0.2):
/// method, target, version and headers, copied by bytes. A head that does
/// not convert is refused (400), never checked as something else.
fn parts_of(request: &ServiceRequest) -> Result<http::request::Parts, Refusal> {
    let version = match request.version() {
        actix_web::http::Version::HTTP_09 => http::Version::HTTP_09,
        actix_web::http::Version::HTTP_10 => http::Version::HTTP_10,
        actix_web::http::Version::HTTP_2 => http::Version::HTTP_2,
        actix_web::http::Version::HTTP_3 => http::Version::HTTP_3,
        _ => http::Version::HTTP_11,
    };
    convert_head(
        request.method().as_str().as_bytes(),
        &request.uri().to_string(),
        version,
        request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())),
    )
}

/// Builds `http` 1 parts from a head's bytes; any part that does not
/// convert is a 400 refusal (`head_unconvertible`), so no check is skipped
/// on a default target or a missing header.
fn convert_head<'a>(
    method: &[u8],
    uri: &str,
    version: http::Version,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<http::request::Parts, Refusal> {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = http::Method::from_bytes(method).map_err(|_| limits::head_unconvertible())?;
    parts.uri = http::Uri::try_from(uri).map_err(|_| limits::head_unconvertible())?;
    parts.version = version;
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name).map_err(|_| limits::head_unconvertible())?;
        let value =
            http::HeaderValue::from_bytes(value).map_err(|_| limits::head_unconvertible())?;
        parts.headers.append(name, value);
    }
    Ok(parts)
}

fn refuse(request: ServiceRequest, error: impl Into<Error>) -> Boxed {
    let response = request.error_response(ApiError(error.into()));
    Box::pin(ready(Ok(response)))
}

/// What [`ValidJson`] reads under: the media-type rule and the shape
/// limits. Register it with `app_data(config)` (app, scope or resource).
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidJsonConfig {
    /// The media-type rule (default `application/json` only).
    pub content_type: JsonContentType,
    /// The shape limits (default depth 64).
    pub limits: JsonLimits,
}

/// The cap [`EnforceLimits`] chose for this request's body.
#[derive(Clone, Copy, Debug)]
struct BodyCap(u64);

macro_rules! transform {
    ($transform:ident, $service:ident, |$this:ident, $inner:ident| $make:expr) => {
        impl<S, B> Transform<S, ServiceRequest> for $transform
        where
            S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>
                + 'static,
            B: MessageBody + 'static,
        {
            type Response = ServiceResponse<BoxBody>;
            type Error = actix_web::Error;
            type Transform = $service<S>;
            type InitError = ();
            type Future = Ready<Result<$service<S>, ()>>;

            fn new_transform(&self, $inner: S) -> Self::Future {
                let $this = self;
                ready(Ok($make))
            }
        }
    };
}

/// Applies [`RequestLimits`]: head checks before the handler, the body cap
/// of the request's route on the declared length and on the stream. A body
/// that goes over its cap while streaming stops at the first chunk past it:
/// the handler is dropped and the client gets the 413 envelope, and the
/// connection is closed (every 413 envelope closes it), so the unread rest
/// of the body is never parsed as a next request. A request head that does
/// not convert to `http` types is refused (400), never checked as a default.
#[derive(Clone, Debug)]
pub struct EnforceLimits {
    limits: Arc<RequestLimits>,
}

impl EnforceLimits {
    /// The middleware for `limits`.
    pub fn new(limits: RequestLimits) -> EnforceLimits {
        EnforceLimits {
            limits: Arc::new(limits),
        }
    }
}

transform!(EnforceLimits, EnforceLimitsMiddleware, |this, service| {
    EnforceLimitsMiddleware {
        service: Rc::new(service),
        limits: Arc::clone(&this.limits),
    }
});

/// The service made by [`EnforceLimits`].
#[derive(Debug)]
pub struct EnforceLimitsMiddleware<S> {
    service: Rc<S>,
    limits: Arc<RequestLimits>,
}

impl<S, B> Service<ServiceRequest> for EnforceLimitsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Boxed;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Boxed {
        let checked = parts_of(&request).and_then(|parts| {
            self.limits.check_head(&parts)?;
            self.limits.body_limit(&parts)
        });
        let limit = match checked {
            Ok(limit) => limit,
            Err(refusal) => return refuse(request, refusal),
        };
        request.extensions_mut().insert(BodyCap(limit.cap()));
        let tripped = Rc::new(OnceCell::new());
        let payload = CappedPayload {
            inner: Some(request.take_payload()),
            limit,
            tripped: Rc::clone(&tripped),
        };
        request.set_payload(Payload::from(
            Box::pin(payload) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
        ));
        let mut response = Box::pin(self.service.call(request));
        Box::pin(async move {
            // Dropped as soon as the body went over its cap.
            let outcome = std::future::poll_fn(|cx| {
                let polled = response.as_mut().poll(cx);
                if let Some(refusal) = tripped.get() {
                    return Poll::Ready(Err(refusal.clone()));
                }
                polled.map(Ok)
            })
            .await;
            match outcome {
                Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
                // Logged when the cap was crossed.
                Err(refusal) => Err(ApiError(refusal.into()).into()),
            }
        })
    }
}

/// The request payload counted against its cap as it streams.
struct CappedPayload {
    inner: Option<Payload>,
    limit: BodyLimit,
    tripped: Rc<OnceCell<Refusal>>,
}

impl Stream for CappedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.limit.record(chunk.len()) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(refusal) => {
                    this.inner = None;
                    let _ = this.tripped.set(refusal);
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            },
            other => other,
        }
    }
}

/// A JSON body checked by `palisade-validate`: `Content-Type` (415), read
/// up to the route's body cap (413), scanned for depth, keys and array
/// length while parsing (422 with the field path; 10 000 levels cannot
/// overflow the stack), syntax (400), then deserialised into `T` (a type
/// mismatch is 422 with the field path).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ValidJson<T>, actix_web::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let config = request
            .app_data::<ValidJsonConfig>()
            .copied()
            .unwrap_or_default();
        let mut content_type = http::HeaderMap::new();
        for value in request.headers().get_all("content-type") {
            if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
                content_type.append(http::header::CONTENT_TYPE, value);
            }
        }
        let cap = request
            .extensions()
            .get::<BodyCap>()
            .map_or(limits::DEFAULT_MAX_BODY_BYTES, |cap| cap.0);
        let mut payload = payload.take();
        Box::pin(async move {
            config
                .content_type
                .check(&content_type)
                .map_err(|refusal| ApiError(refusal.into()))?;
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|error| match error {
                    // EnforceLimits logged the refusal and answers for it.
                    PayloadError::Overflow => {
                        ApiError(Error::new(ErrorKind::PayloadTooLarge).logged())
                    }
                    _ => ApiError(limits::body_unreadable().into()),
                })?;
                if (body.len() + chunk.len()) as u64 > cap {
                    return Err(ApiError(limits::body_too_large().into()).into());
                }
                body.extend_from_slice(&chunk);
            }
            json::from_slice(&body, &config.limits)
                .map(ValidJson)
                .map_err(|error| ApiError(error.into()).into())
        })
    }
}

/// Requires a JSON `Content-Type` on every request that carries a body
/// (a `Content-Length` other than 0, or `Transfer-Encoding`): 415
/// otherwise.
///
/// **HTTP/2 caveat.** An HTTP/2 body may come with neither header, and
/// actix-web gives every HTTP/2 request a payload stream whether or not the
/// client sent a body, so this middleware cannot see such a body (the axum
/// layer can, from its body stream). On HTTP/2 read JSON with
/// [`ValidJson`], which checks `Content-Type` on every request. For resources that read JSON with other extractors than
/// [`ValidJson`] (which checks it itself); `wrap` the resource or scope.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequireJson {
    rule: JsonContentType,
}

impl RequireJson {
    /// The middleware with `rule` (`JsonContentType::new()` for `application/json` only).
    pub fn new(rule: JsonContentType) -> RequireJson {
        RequireJson { rule }
    }
}

transform!(RequireJson, RequireJsonMiddleware, |this, service| {
    RequireJsonMiddleware {
        service,
        rule: this.rule,
    }
});

/// The service made by [`RequireJson`].
#[derive(Debug)]
pub struct RequireJsonMiddleware<S> {
    service: S,
    rule: JsonContentType,
}

impl<S, B> Service<ServiceRequest> for RequireJsonMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Boxed;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Boxed {
        let checked = parts_of(&request).and_then(|parts| {
            if palisade_validate::content_type::has_body(&parts.headers) {
                self.rule.check(&parts.headers)?;
            }
            Ok(())
        });
        if let Err(refusal) = checked {
            return refuse(request, refusal);
        }
        let response = self.service.call(request);
        Box::pin(async move { response.await.map(ServiceResponse::map_into_boxed_body) })
    }
}

/// Checks the request's host against [`TrustedHosts`] (400 envelope).
/// `X-Forwarded-Host` is read only when the peer is one of the
/// [`trusted_proxies`](Self::trusted_proxies).
#[derive(Clone, Debug)]
pub struct TrustedHost {
    hosts: Arc<TrustedHosts>,
    proxies: Arc<[IpNet]>,
}

impl TrustedHost {
    /// The middleware for `hosts`, trusting no proxy.
    pub fn new(hosts: TrustedHosts) -> TrustedHost {
        TrustedHost {
            hosts: Arc::new(hosts),
            proxies: Arc::from([]),
        }
    }

    /// The proxies whose `X-Forwarded-Host` is read, as networks
    /// (`10.0.0.0/24`, `fd00::/8`, a bare address is one host): the same
    /// [`IpNet`]s `palisade-ratelimit`'s client-IP resolver takes, so one
    /// `TRUSTED_PROXIES` list configures both. An IPv4-mapped peer
    /// (`::ffff:10.0.0.1`, from a dual-stack socket) is matched as its IPv4
    /// address.
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpNet>) -> Self {
        self.proxies = proxies.into_iter().collect();
        self
    }

    /// The proxies whose `X-Forwarded-Host` is read, as single addresses
    /// (each one host: `/32` or `/128`, an IPv4-mapped address as its IPv4
    /// address).
    pub fn trusted_proxy_addresses(self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.trusted_proxies(proxies.into_iter().filter_map(host_network))
    }
}

transform!(TrustedHost, TrustedHostMiddleware, |this, service| {
    TrustedHostMiddleware {
        service,
        config: this.clone(),
    }
});

/// The service made by [`TrustedHost`].
#[derive(Debug)]
pub struct TrustedHostMiddleware<S> {
    service: S,
    config: TrustedHost,
}

impl<S, B> Service<ServiceRequest> for TrustedHostMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Boxed;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Boxed {
        let from_proxy = request
            .peer_addr()
            .is_some_and(|peer| is_trusted_proxy(&self.config.proxies, peer.ip()));
        let checked =
            parts_of(&request).and_then(|parts| self.config.hosts.check(&parts, from_proxy));
        if let Err(refusal) = checked {
            return refuse(request, refusal);
        }
        let response = self.service.call(request);
        Box::pin(async move { response.await.map(ServiceResponse::map_into_boxed_body) })
    }
}

/// Whether `peer` is inside one of `proxies`, an IPv4-mapped IPv6 peer
/// (`::ffff:10.0.0.1`, from a dual-stack socket) matched as its IPv4 address.
fn is_trusted_proxy(proxies: &[IpNet], peer: IpAddr) -> bool {
    proxies.iter().any(|proxy| proxy.contains(peer))
}

/// The one-host network of `address` (its canonical form: an IPv4-mapped
/// address is its IPv4 address). A full-length prefix has no host bits, so
/// this is always `Some`.
fn host_network(address: IpAddr) -> Option<IpNet> {
    let address = address.to_canonical();
    let prefix = if address.is_ipv4() { 32 } else { 128 };
    IpNet::new(address, prefix).ok()
}

/// Answers for a handler that misses its deadline and drops it (its
/// future is cancelled at its next `.await`): the 503 `unavailable`
/// envelope. Never 408, which says the *client* was slow and invites an
/// automatic retry of a request that may have run in part.
///
/// (The axum layer can answer 504 instead; on actix, [`Harden`](crate::Harden)
/// renders every error from its `palisade_errors::ErrorKind`, and 504 has
/// none, so the status here is always 503.)
#[derive(Clone, Copy, Debug)]
pub struct RequestTimeout {
    deadline: Duration,
}

impl RequestTimeout {
    /// Handlers get `deadline`.
    pub fn new(deadline: Duration) -> RequestTimeout {
        RequestTimeout { deadline }
    }
}

transform!(RequestTimeout, RequestTimeoutMiddleware, |this, service| {
    RequestTimeoutMiddleware {
        service,
        config: *this,
    }
});

/// The service made by [`RequestTimeout`].
#[derive(Debug)]
pub struct RequestTimeoutMiddleware<S> {
    service: S,
    config: RequestTimeout,
}

impl<S, B> Service<ServiceRequest> for RequestTimeoutMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Boxed;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Boxed {
        let deadline = self.config.deadline;
        let response = self.service.call(request);
        Box::pin(async move {
            match tokio::time::timeout(deadline, response).await {
                Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
                Err(_) => {
                    tracing::warn!(
                        reason = "handler_timeout",
                        deadline_ms = deadline.as_millis() as u64,
                        "handler missed its deadline and was cancelled"
                    );
                    Err(ApiError(Error::new(ErrorKind::Unavailable)).into())
                }
            }
        })
    }
}

/// A typed path id (`HexId<N>`, `Uuid`, `Ulid`): the route's last path
/// parameter, parsed before the handler runs. A malformed one is a 404
/// `not_found` envelope (logged with the parameter's name, never its
/// value), so a bad id never reaches the handler.
#[derive(Debug, Clone, Copy)]
pub struct Id<T>(pub T);

impl<T: PathId + 'static> FromRequest for Id<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Id<T>, actix_web::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match request.match_info().iter().last() {
            Some((name, value)) => T::from_param(name, value)
                .map(Id)
                .map_err(|rejection| ApiError(rejection.into()).into()),
            None => Err(ApiError(Error::new(ErrorKind::NotFound)).into()),
        };
        ready(parsed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn head<'a>(
        uri: &str,
        headers: &[(&'a [u8], &'a [u8])],
    ) -> Result<http::request::Parts, Refusal> {
        convert_head(b"GET", uri, http::Version::HTTP_11, headers.iter().copied())
    }

    /// Fail-open conversion: a target or header that does not convert is a
    /// 400 refusal, never a default `/` target (which would skip the URI
    /// length, query count and authority checks) nor a dropped header
    /// (which would undercount the header limits or lose `Host`).
    #[test]
    fn an_unconvertible_head_is_refused_not_defaulted() {
        let parts = head("/a?b=1", &[(b"host", b"localhost"), (b"x-a", b"1")]).unwrap();
        assert_eq!(parts.uri, "/a?b=1");
        assert_eq!(parts.headers.len(), 2);
        for refused in [
            head("http://[::1/", &[]),
            head("/a b", &[]),
            head("/", &[(b"host", b"local\nhost")]),
            head("/", &[(b"bad name", b"v")]),
        ] {
            let refusal = refused.unwrap_err();
            assert_eq!(refusal.kind(), ErrorKind::BadRequest);
            assert_eq!(refusal.reason(), "head_unconvertible");
        }
        assert!(convert_head(b"G ET", "/", http::Version::HTTP_11, std::iter::empty()).is_err());
    }

    /// Proxy spoofing through a dual-stack socket: `::ffff:10.0.0.1` is the
    /// proxy `10.0.0.1`, and a mapped client address is not.
    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        let proxies: Vec<IpNet> = [
            "10.0.0.1".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
        ]
        .into_iter()
        .filter_map(host_network)
        .collect();
        assert_eq!(
            proxies[0], proxies[1],
            "a mapped proxy address is its IPv4 host"
        );
        assert!(is_trusted_proxy(
            &proxies,
            "::ffff:10.0.0.1".parse().unwrap()
        ));
        assert!(is_trusted_proxy(&proxies, "10.0.0.1".parse().unwrap()));
        assert!(!is_trusted_proxy(
            &proxies,
            "::ffff:10.0.0.2".parse().unwrap()
        ));
        assert!(!is_trusted_proxy(&proxies, "::1".parse().unwrap()));
    }
}
