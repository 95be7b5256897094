//! Rate limits as actix-web middleware (feature `ratelimit`).
//!
//! The decisions live in [`palisade_ratelimit`]; this module resolves the key
//! from the request, asks the limiter, and turns the answer into a response.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use futures_util::future::LocalBoxFuture;
use palisade_errors::Error;

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
pub type KeyFn = Arc<dyn Fn(&ServiceRequest) -> Result<Option<String>, Error> + Send + Sync>;

/// Keys by client IP: the socket peer, or behind trusted proxies the address
/// `resolver` takes from the forwarding header. IPv6 clients are keyed by
/// their /56. Without a peer address every request shares `ip:unknown`.
pub fn by_ip(resolver: ClientIpResolver) -> KeyFn {
    Arc::new(move |request| Ok(Some(ip_key(&resolver, request))))
}

/// Keys by route and client IP (`METHOD /items/{id}|ip`), for a limit per
/// endpoint. The route is actix's matched pattern, never the raw path: with
/// the raw path every `/items/1`, `/items/2`, ... would be a fresh budget.
/// Requests that matched no route share one. Wrap resources or scopes with
/// it: app-wide middleware runs before routing (every request unmatched).
pub fn by_route_and_ip(resolver: ClientIpResolver) -> KeyFn {
    Arc::new(move |request| {
        let route = request.match_pattern();
        Ok(Some(keys::route_key(
            request.method().as_str(),
            route.as_deref(),
            &ip_key(&resolver, request),
        )))
    })
}

fn ip_key(resolver: &ClientIpResolver, request: &ServiceRequest) -> String {
    let Some(peer) = request.peer_addr() else {
        tracing::error!(
            event = palisade_errors::SecurityEvent::SysMisconfigured.as_str(),
            reason = "ratelimit_no_peer_address",
            "request without a peer address"
        );
        return keys::UNKNOWN_CLIENT_KEY.to_owned();
    };
    // Only the configured forwarding header is read, as raw lines (actix is
    // on `http` 0.2; the resolver makes a line it cannot use unusable, and
    // then the peer is the client).
    let client = match resolver.header() {
        Some(header) => resolver.resolve_lines(
            peer.ip(),
            request
                .headers()
                .get_all(header.header_name().as_str())
                .map(|value| value.as_bytes()),
        ),
        None => resolver.resolve_lines(peer.ip(), std::iter::empty()),
    };
    client.rate_limit_key()
}

/// Applies a [`RateLimiter`] before the wrapped service: a refused request
/// gets the 429 envelope (with `Retry-After` and the rate-limit headers)
/// without reaching the handler; an admitted one gets the headers on its
/// response. Wrap an app, a scope or a single resource.
pub struct RateLimit<S, C: Clock> {
    limiter: Arc<RateLimiter<S, C>>,
    key: KeyFn,
    cost: u32,
}

impl<S, C: Clock> Clone for RateLimit<S, C> {
    fn clone(&self) -> Self {
        RateLimit {
            limiter: Arc::clone(&self.limiter),
            key: Arc::clone(&self.key),
            cost: self.cost,
        }
    }
}

impl<S: RateStore, C: Clock> RateLimit<S, C> {
    /// The middleware for `limiter`, keyed by `key`, each request costing 1.
    pub fn new(limiter: Arc<RateLimiter<S, C>>, key: KeyFn) -> Self {
        RateLimit {
            limiter,
            key,
            cost: 1,
        }
    }

    /// What each request through this middleware costs.
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

impl<I, B, S, C> Transform<I, ServiceRequest> for RateLimit<S, C>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    S: RateStore,
    C: Clock,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RateLimitMiddleware<I, S, C>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: I) -> Self::Future {
        ready(Ok(RateLimitMiddleware {
            service: Rc::new(service),
            layer: self.clone(),
        }))
    }
}

/// The service made by [`RateLimit`].
pub struct RateLimitMiddleware<I, S, C: Clock> {
    service: Rc<I>,
    layer: RateLimit<S, C>,
}

impl<I, B, S, C> Service<ServiceRequest> for RateLimitMiddleware<I, S, C>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    S: RateStore,
    C: Clock,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let key = match (self.layer.key)(&request) {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Box::pin(
                    async move { Ok(service.call(request).await?.map_into_left_body()) },
                );
            }
            Err(error) => {
                let response = request.error_response(ApiError(error));
                return Box::pin(async move { Ok(response.map_into_right_body()) });
            }
        };
        let limiter = Arc::clone(&self.layer.limiter);
        let cost = self.layer.cost;
        Box::pin(async move {
            match limiter.consume(&key, cost).await {
                Ok(admission) => {
                    let mut response = service.call(request).await?;
                    for (name, value) in admission.headers() {
                        if let (Ok(name), Ok(value)) = (
                            HeaderName::from_bytes(name.as_str().as_bytes()),
                            HeaderValue::from_bytes(value.as_bytes()),
                        ) {
                            response.headers_mut().insert(name, value);
                        }
                    }
                    Ok(response.map_into_left_body())
                }
                // The error travels with the response, so `Harden` renders it
                // with the request id.
                Err(error) => Ok(request
                    .error_response(ApiError(error))
                    .map_into_right_body()),
            }
        })
    }
}
