//! Rate limits as a tower layer (feature `ratelimit`).
//!
//! The decisions live in [`palisade_ratelimit`]; this module resolves the key
//! from the request, asks the limiter, and turns the answer into a response.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, MatchedPath};
use axum::response::{IntoResponse, Response};
use http::Request;
use palisade_errors::Error;
use tower_layer::Layer;
use tower_service::Service;

use crate::ApiError;

mod by_extension;
pub use by_extension::{ByExtension, by_extension};

// The core's types a service needs, so this crate is its one dependency.
pub use palisade_ratelimit::client_ip::{ClientIp, ClientIpResolver, ForwardedHeader, IpNet};
pub use palisade_ratelimit::{
    Admission, Clock, FailMode, HeaderStyle, ManualClock, MemoryStore, Policy, Quota, RateLimiter,
    RateStore, SystemClock, client_ip, keys, login,
};

/// What a request is limited by: a function from the request to
/// `Ok(Some(key))`, `Ok(None)` to leave the request to other limits, or
/// `Err` to refuse it with that error.
pub type KeyFn =
    Arc<dyn Fn(&Request<axum::body::Body>) -> Result<Option<String>, Error> + Send + Sync>;

/// Keys by client IP: the socket peer (from axum's `ConnectInfo`, so serve
/// with `into_make_service_with_connect_info::<SocketAddr>()`), or behind
/// trusted proxies the address `resolver` takes from the forwarding header.
/// IPv6 clients are keyed by their /56.
///
/// Without `ConnectInfo` every request shares the key `ip:unknown`: limited
/// together rather than not at all, with an error logged.
pub fn by_ip(resolver: ClientIpResolver) -> KeyFn {
    Arc::new(move |request| Ok(Some(ip_key(&resolver, request))))
}

/// Keys by route and client IP (`METHOD /items/{id}|ip`), for a limit per
/// endpoint. The route is axum's matched template, never the raw path: with
/// the raw path every `/items/1`, `/items/2`, ... (or every made-up 404
/// path) would be a fresh budget. Requests that matched no route share one.
/// Add it with `route_layer`: the matched route is known only inside the
/// router (under `layer` every request counts as unmatched).
pub fn by_route_and_ip(resolver: ClientIpResolver) -> KeyFn {
    Arc::new(move |request| {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        Ok(Some(keys::route_key(
            request.method().as_str(),
            route,
            &ip_key(&resolver, request),
        )))
    })
}

fn ip_key(resolver: &ClientIpResolver, request: &Request<axum::body::Body>) -> String {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => resolver
            .resolve(peer.ip(), request.headers())
            .rate_limit_key(),
        None => {
            tracing::error!(
                event = palisade_errors::SecurityEvent::SysMisconfigured.as_str(),
                reason = "ratelimit_no_peer_address",
                "no ConnectInfo<SocketAddr>: serve with into_make_service_with_connect_info"
            );
            keys::UNKNOWN_CLIENT_KEY.to_owned()
        }
    }
}

/// Applies a [`RateLimiter`] before the inner service: a refused request
/// gets the 429 envelope (with `Retry-After` and the rate-limit headers)
/// without reaching the handler; an admitted one gets the headers on its
/// response. Use it on a router (`layer`) or a single route (`route_layer`).
pub struct RateLimitLayer<S, C: Clock> {
    limiter: Arc<RateLimiter<S, C>>,
    key: KeyFn,
    cost: u32,
}

impl<S, C: Clock> Clone for RateLimitLayer<S, C> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limiter: Arc::clone(&self.limiter),
            key: Arc::clone(&self.key),
            cost: self.cost,
        }
    }
}

impl<S: RateStore, C: Clock> RateLimitLayer<S, C> {
    /// The layer for `limiter`, keyed by `key`, each request costing 1.
    pub fn new(limiter: Arc<RateLimiter<S, C>>, key: KeyFn) -> Self {
        RateLimitLayer {
            limiter,
            key,
            cost: 1,
        }
    }

    /// What each request through this layer costs (e.g. 5 for an export).
    ///
    /// # Errors
    ///
    /// A cost above the policy's smallest limit could never be admitted (a
    /// client would get 429 for ever): it is refused here, at start-up.
    pub fn cost(mut self, cost: u32) -> Result<Self, palisade_ratelimit::ConfigError> {
        self.cost = self.limiter.check_cost(cost)?;
        Ok(self)
    }
}

impl<I, S, C: Clock> Layer<I> for RateLimitLayer<S, C> {
    type Service = RateLimitService<I, S, C>;

    fn layer(&self, inner: I) -> Self::Service {
        RateLimitService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RateLimitLayer`].
pub struct RateLimitService<I, S, C: Clock> {
    inner: I,
    layer: RateLimitLayer<S, C>,
}

impl<I: Clone, S, C: Clock> Clone for RateLimitService<I, S, C> {
    fn clone(&self) -> Self {
        RateLimitService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<I, S, C> Service<Request<axum::body::Body>> for RateLimitService<I, S, C>
where
    I: Service<Request<axum::body::Body>, Response = Response> + Clone + Send + 'static,
    I::Future: Send + 'static,
    S: RateStore,
    C: Clock,
{
    type Response = Response;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        let key = match (self.layer.key)(&request) {
            Ok(Some(key)) => key,
            Ok(None) => return Box::pin(self.inner.call(request)),
            Err(error) => {
                let response = ApiError(error).into_response();
                return Box::pin(async move { Ok(response) });
            }
        };
        // The inner service was polled ready; keep that one, give the clone
        // to the next call (the usual tower pattern for async work first).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = Arc::clone(&self.layer.limiter);
        let cost = self.layer.cost;
        Box::pin(async move {
            match limiter.consume(&key, cost).await {
                Ok(admission) => {
                    let mut response = inner.call(request).await?;
                    for (name, value) in admission.headers() {
                        response.headers_mut().insert(name.clone(), value.clone());
                    }
                    Ok(response)
                }
                Err(error) => Ok(ApiError(error).into_response()),
            }
        })
    }
}
