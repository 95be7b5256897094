//! Request validation for axum (feature `validate`), over `palisade-validate`.
//!
//! | layer / extractor | refuses | status |
//! |---|---|---|
//! | [`RequestLimitsLayer`] | oversized head, target, query; a body over its route's cap, declared or streamed | 431, 414, 400, 413 |
//! | [`RequireJsonLayer`] | a body without a JSON `Content-Type` | 415 |
//! | [`ValidJson`] | wrong `Content-Type`, malformed JSON, JSON over the shape limits or of the wrong type | 415, 400, 422 |
//! | [`TrustedHostLayer`] | a `Host` / `:authority` not on the allow-list | 400 |
//! | [`RequestTimeoutLayer`] | a handler past its deadline (dropped) | 503 (or 504) |
//! | [`Id`] | a malformed path id, before the handler runs | 404 |
//!
//! **One source of truth for the body cap.** [`RequestLimitsLayer`] applies
//! [`RequestLimits`]' cap of the request's route and switches axum's own
//! `DefaultBodyLimit` (2 MB) off below it, so the two cannot disagree;
//! [`ValidJson`] reads up to the same cap. With [`serve`](crate::serve),
//! build its `ServeConfig` with `request_limits(&limits)` so the server's
//! declared-length check lets the largest route cap through (see the
//! crate README for hyper's own, earlier limits).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, RawPathParams, Request,
};
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONNECTION;
use http::request::Parts;
use http_body::Frame;
use palisade_errors::{Error, ErrorKind, RequestId};
use palisade_validate::content_type::JsonContentType;
use palisade_validate::hosts::TrustedHosts;
use palisade_validate::json::{self, JsonLimits};
use palisade_validate::limits::{self, BodyLimit, RequestLimits};
use palisade_validate::{PathId, Refusal};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use crate::ApiError;

/// A trusted proxy network, as taken by the trusted-host check (the
/// client-IP resolver's type, re-exported).
pub use palisade_ratelimit::client_ip::IpNet;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn refused(error: impl Into<Error>) -> Response {
    ApiError(error.into()).into_response()
}

/// What [`ValidJson`] reads under: the body cap (set per request by
/// [`RequestLimitsLayer`]), the media-type rule and the shape limits.
/// Override them for some routes with `.route_layer(axum::Extension(config))`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidJsonConfig {
    /// The media-type rule (default `application/json` only).
    pub content_type: JsonContentType,
    /// The shape limits (default depth 64).
    pub limits: JsonLimits,
}

/// The cap [`RequestLimitsLayer`] chose for this request's body.
#[derive(Clone, Copy, Debug)]
struct BodyCap(u64);

/// Applies [`RequestLimits`]: head checks before the handler, the body cap
/// of the request's route on the declared length and on the stream.
///
/// A body that goes over its cap while streaming (chunked, or longer than
/// its route allows) stops at the first chunk past the cap: the handler is
/// dropped at once, whatever it was doing, and the client gets the 413
/// envelope with `Connection: close`. The handler never holds more than
/// the cap.
#[derive(Clone, Debug)]
pub struct RequestLimitsLayer {
    limits: Arc<RequestLimits>,
    json: ValidJsonConfig,
}

impl RequestLimitsLayer {
    /// The layer for `limits`.
    pub fn new(limits: RequestLimits) -> RequestLimitsLayer {
        RequestLimitsLayer {
            limits: Arc::new(limits),
            json: ValidJsonConfig::default(),
        }
    }

    /// The [`ValidJson`] configuration of every route below.
    pub fn json(mut self, config: ValidJsonConfig) -> RequestLimitsLayer {
        self.json = config;
        self
    }
}

impl<S> Layer<S> for RequestLimitsLayer {
    type Service = RequestLimitsService<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLimitsService {
            inner: DefaultBodyLimit::disable().layer(inner),
            limits: Arc::clone(&self.limits),
            json: self.json,
        }
    }
}

/// The service made by [`RequestLimitsLayer`].
#[derive(Clone, Debug)]
pub struct RequestLimitsService<S> {
    inner: S,
    limits: Arc<RequestLimits>,
    json: ValidJsonConfig,
}

impl<S> Service<Request> for RequestLimitsService<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let checked = self
            .limits
            .check_head(&parts)
            .and_then(|()| self.limits.body_limit(&parts));
        let limit = match checked {
            Ok(limit) => limit,
            Err(refusal) => return Box::pin(std::future::ready(Ok(refused(refusal)))),
        };
        parts.extensions.insert(BodyCap(limit.cap()));
        parts.extensions.insert(self.json);
        let tripped = Arc::new(OnceLock::new());
        let body = Body::new(CappedBody {
            inner: Some(body),
            limit,
            tripped: Arc::clone(&tripped),
        });
        let mut response = Box::pin(self.inner.call(Request::from_parts(parts, body)));
        Box::pin(async move {
            // Dropped as soon as the body went over its cap, whatever the
            // handler does with the error it got.
            let outcome = std::future::poll_fn(|cx| {
                let polled = response.as_mut().poll(cx);
                if let Some(refusal) = tripped.get() {
                    return Poll::Ready(Err(refusal.clone()));
                }
                polled.map(Ok)
            })
            .await;
            match outcome {
                Ok(result) => result,
                Err(refusal) => {
                    // Logged when the cap was crossed.
                    let mut response = refused(refusal);
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                    Ok(response)
                }
            }
        })
    }
}

/// A body counted against its cap as it streams.
struct CappedBody {
    inner: Option<Body>,
    limit: BodyLimit,
    tripped: Arc<OnceLock<Refusal>>,
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref()
            && let Err(refusal) = this.limit.record(data.len())
        {
            this.inner = None;
            let _ = this.tripped.set(refusal.clone());
            return Poll::Ready(Some(Err(axum::Error::new(refusal))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

/// A JSON body checked by `palisade-validate`: `Content-Type` (415), read
/// up to the route's body cap (413), scanned for depth, keys and array
/// length while parsing (422 with the field path; 10 000 levels cannot
/// overflow the stack), syntax (400), then deserialised into `T` (a type
/// mismatch is 422 with the field path).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidJson<T>(pub T);

impl<T, S> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let config = request
            .extensions()
            .get::<ValidJsonConfig>()
            .copied()
            .unwrap_or_default();
        config
            .content_type
            .check(request.headers())
            .map_err(|r| ApiError(r.into()))?;
        let cap = request
            .extensions()
            .get::<BodyCap>()
            .map_or(limits::DEFAULT_MAX_BODY_BYTES, |cap| cap.0);
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        let bytes = axum::body::to_bytes(request.into_body(), cap)
            .await
            .map_err(|error| body_error(&error))?;
        json::from_slice(&bytes, &config.limits)
            .map(ValidJson)
            .map_err(|error| ApiError(error.into()))
    }
}

/// A body that could not be read: over the cap (413), else cut short (400).
fn body_error(error: &axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError(limits::body_too_large().into());
        }
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return ApiError(refusal.clone().into());
        }
        source = current.source();
    }
    ApiError(limits::body_unreadable().into())
}

/// Requires a JSON `Content-Type` on every request that carries a body
/// (a `Content-Length` other than 0, `Transfer-Encoding`, or a body stream
/// that is not already at its end — an HTTP/2 or HTTP/3 body may come with
/// neither header): 415 otherwise. For routes that read JSON with other extractors than
/// [`ValidJson`] (which checks it itself); add it with `route_layer`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequireJsonLayer {
    rule: JsonContentType,
}

impl RequireJsonLayer {
    /// The layer with `rule` (`JsonContentType::new()` for `application/json` only).
    pub fn new(rule: JsonContentType) -> RequireJsonLayer {
        RequireJsonLayer { rule }
    }
}

impl<S> Layer<S> for RequireJsonLayer {
    type Service = RequireJsonService<S>;

    fn layer(&self, inner: S) -> RequireJsonService<S> {
        RequireJsonService {
            inner,
            rule: self.rule,
        }
    }
}

/// The service made by [`RequireJsonLayer`].
#[derive(Clone, Debug)]
pub struct RequireJsonService<S> {
    inner: S,
    rule: JsonContentType,
}

impl<S> Service<Request> for RequireJsonService<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let has_body = palisade_validate::content_type::has_body(request.headers())
            || !http_body::Body::is_end_stream(request.body());
        if has_body && let Err(refusal) = self.rule.check(request.headers()) {
            return Box::pin(std::future::ready(Ok(refused(refusal))));
        }
        Box::pin(self.inner.call(request))
    }
}

/// Checks the request's host against [`TrustedHosts`] (400 envelope).
/// `X-Forwarded-Host` is read only when the peer (`ConnectInfo`) is one of
/// the [`trusted_proxies`](Self::trusted_proxies).
#[derive(Clone, Debug)]
pub struct TrustedHostLayer {
    hosts: Arc<TrustedHosts>,
    proxies: Arc<[IpNet]>,
}

impl TrustedHostLayer {
    /// The layer for `hosts`, trusting no proxy.
    pub fn new(hosts: TrustedHosts) -> TrustedHostLayer {
        TrustedHostLayer {
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

impl<S> Layer<S> for TrustedHostLayer {
    type Service = TrustedHostService<S>;

    fn layer(&self, inner: S) -> TrustedHostService<S> {
        TrustedHostService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`TrustedHostLayer`].
#[derive(Clone, Debug)]
pub struct TrustedHostService<S> {
    inner: S,
    layer: TrustedHostLayer,
}

impl<S> Service<Request> for TrustedHostService<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (parts, body) = request.into_parts();
        let from_proxy = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| is_trusted_proxy(&self.layer.proxies, peer.ip()));
        if let Err(refusal) = self.layer.hosts.check(&parts, from_proxy) {
            return Box::pin(std::future::ready(Ok(refused(refusal))));
        }
        Box::pin(self.inner.call(Request::from_parts(parts, body)))
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
/// future is cancelled at its next `.await`): 503 `unavailable` by
/// default, 504 with [`gateway_timeout`](Self::gateway_timeout). Never 408,
/// which says the *client* was slow and invites an automatic retry of a
/// request that may still have run in part.
#[derive(Clone, Copy, Debug)]
pub struct RequestTimeoutLayer {
    deadline: Duration,
    gateway: bool,
}

impl RequestTimeoutLayer {
    /// Handlers get `deadline`.
    pub fn new(deadline: Duration) -> RequestTimeoutLayer {
        RequestTimeoutLayer {
            deadline,
            gateway: false,
        }
    }

    /// Answer 504 `Gateway Timeout` instead of 503 (with the `unavailable` envelope).
    pub fn gateway_timeout(mut self) -> RequestTimeoutLayer {
        self.gateway = true;
        self
    }
}

impl<S> Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeoutService<S>;

    fn layer(&self, inner: S) -> RequestTimeoutService<S> {
        RequestTimeoutService {
            inner,
            layer: *self,
        }
    }
}

/// The service made by [`RequestTimeoutLayer`].
#[derive(Clone, Debug)]
pub struct RequestTimeoutService<S> {
    inner: S,
    layer: RequestTimeoutLayer,
}

impl<S> Service<Request> for RequestTimeoutService<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = request.extensions().get::<RequestId>().cloned();
        let call = self.inner.call(request);
        let RequestTimeoutLayer { deadline, gateway } = self.layer;
        Box::pin(async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(result) => result,
                Err(_) => Ok(timed_out(deadline, gateway, id.as_ref())),
            }
        })
    }
}

fn timed_out(deadline: Duration, gateway: bool, id: Option<&RequestId>) -> Response {
    tracing::warn!(
        reason = "handler_timeout",
        deadline_ms = deadline.as_millis() as u64,
        "handler missed its deadline and was cancelled"
    );
    let error = Error::new(ErrorKind::Unavailable);
    if !gateway {
        return refused(error);
    }
    // 504 has no `ErrorKind`: the `unavailable` envelope rendered here with
    // the request id, marked final so `RequestIdLayer` keeps the status.
    let mut response = error.to_response(id).map(Body::from);
    *response.status_mut() = http::StatusCode::GATEWAY_TIMEOUT;
    response.extensions_mut().insert(FinalEnvelope);
    response
}

/// Marks an envelope response whose status and request id are final.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FinalEnvelope;

/// A typed path id (`HexId<N>`, `Uuid`, `Ulid`): the route's last path
/// parameter, parsed before the handler runs. A malformed one is a 404
/// `not_found` envelope (logged with the parameter's name, never its
/// value), so a bad id never reaches the handler.
#[derive(Debug, Clone, Copy)]
pub struct Id<T>(pub T);

impl<T, S> FromRequestParts<S> for Id<T>
where
    T: PathId + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let not_found = || ApiError(Error::new(ErrorKind::NotFound));
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        let (name, value) = params.iter().last().ok_or_else(not_found)?;
        T::from_param(name, value)
            .map(Id)
            .map_err(|rejection| ApiError(rejection.into()))
    }
}
