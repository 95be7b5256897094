//! [`Hardening`]: the Palisade layers in the one order that is right.

use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::Route;
#[cfg(feature = "headers")]
use tower::util::Either;
use tower_layer::{Identity, Layer, Stack};
use tower_service::Service;

use crate::{RequestIdLayer, RequestIdService, error};

/// The Palisade layers of a router, applied in one fixed order, so that every
/// response — successes, refused preflights, 401/403/404/405/413/415/422/429
/// and the 500 of a panic — carries the request id (header and envelope), the
/// security headers, and CORS (`Vary: Origin` always, the allow headers for an
/// allowed origin).
///
/// From the outside in:
///
/// 1. **Request id and envelope** ([`RequestIdLayer`]): first to see the
///    request, so every layer below (and its log events) runs inside the
///    `request` span with the id, and last to see the response, so every
///    error response — a CORS refusal included — leaves as the envelope
///    carrying the id.
/// 2. **Security headers** (`security_headers`): outside CORS and the panic
///    catcher, so preflight answers and panic 500s get them too.
/// 3. **CORS** (`cors`): answers preflights (inside the request id, so a
///    refusal has one) and wraps the panic catcher, so the 500 of a panic
///    carries `Access-Control-Allow-Origin` and the allowed front end can read
///    the envelope instead of seeing a CORS failure.
/// 4. **Panic containment**: turns a panic anywhere below (handler,
///    authentication, limits) into a 500 envelope.
/// 5. **Identity** (`identity`): authentication layers, before the limits
///    that key on the identity they establish.
/// 6. **Limits** (`limit`): rate limits, in the order added, closest to the
///    routes. (A per-route limit keyed by the matched route goes on the route
///    with `route_layer`: the matched route is known only inside the router.)
///
/// [`harden`](crate::harden) is `Hardening::new().apply(router)`.
///
/// ```
/// use axum::{Router, routing::get};
/// use palisade_axum::Hardening;
///
/// let app: Router = Hardening::new().apply(Router::new().route("/", get(|| async { "hi" })));
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Hardening<I = Identity, L = Identity> {
    #[cfg(feature = "headers")]
    security_headers: Option<crate::headers::SecurityHeadersLayer>,
    #[cfg(feature = "headers")]
    cors: Option<crate::headers::CorsLayer>,
    identity: I,
    limits: L,
}

impl Default for Hardening {
    fn default() -> Hardening {
        Hardening::new()
    }
}

impl Hardening {
    /// The base alone: request ids, the envelope, panic containment.
    pub fn new() -> Hardening {
        Hardening {
            #[cfg(feature = "headers")]
            security_headers: None,
            #[cfg(feature = "headers")]
            cors: None,
            identity: Identity::new(),
            limits: Identity::new(),
        }
    }
}

impl<I, L> Hardening<I, L> {
    /// The app-wide security headers (a per-route `SecurityHeadersLayer`
    /// added with `route_layer` still wins on its routes).
    #[cfg(feature = "headers")]
    pub fn security_headers(mut self, headers: palisade_headers::SecurityHeaders) -> Self {
        self.security_headers = Some(crate::headers::SecurityHeadersLayer::new(headers));
        self
    }

    /// The CORS policy.
    #[cfg(feature = "headers")]
    pub fn cors(mut self, policy: palisade_headers::CorsPolicy) -> Self {
        self.cors = Some(crate::headers::CorsLayer::new(policy));
        self
    }

    /// Adds an authentication layer (any tower [`Layer`] whose service
    /// answers axum's `Response`, as the Palisade layers and most tower
    /// layers over an axum route do); several run in the order added, all
    /// before the limits.
    pub fn identity<N>(self, layer: N) -> Hardening<Stack<N, I>, L> {
        Hardening {
            #[cfg(feature = "headers")]
            security_headers: self.security_headers,
            #[cfg(feature = "headers")]
            cors: self.cors,
            identity: Stack::new(layer, self.identity),
            limits: self.limits,
        }
    }

    /// Adds a rate-limit layer (any tower [`Layer`] whose service answers
    /// axum's `Response`); several run in the order added, all after the
    /// identity layers.
    pub fn limit<N>(self, layer: N) -> Hardening<I, Stack<N, L>> {
        Hardening {
            #[cfg(feature = "headers")]
            security_headers: self.security_headers,
            #[cfg(feature = "headers")]
            cors: self.cors,
            identity: self.identity,
            limits: Stack::new(layer, self.limits),
        }
    }

    /// Wraps `router` (call it after adding routes and per-route layers).
    ///
    /// The whole stack is one layer (see the [`Layer`] implementation), so
    /// each route is boxed once: a router layered once per Palisade layer
    /// would box every route once per layer and clone the whole chain of
    /// boxes at every level of every request.
    pub fn apply<S>(self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        Hardening<I, L>: Layer<Route> + Clone + Send + Sync + 'static,
        <Hardening<I, L> as Layer<Route>>::Service: Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <<Hardening<I, L> as Layer<Route>>::Service as Service<Request>>::Future: Send + 'static,
    {
        router.layer(self)
    }
}

/// The panic catcher around the identity and limit layers.
type Contained<S, I, L> = CatchPanicService<<I as Layer<<L as Layer<S>>::Service>>::Service>;

/// `layer` applied when present, the service unchanged when not.
#[cfg(feature = "headers")]
type Maybe<A, S> = Either<A, S>;

#[cfg(feature = "headers")]
type WithCors<S, I, L> = Maybe<crate::headers::CorsService<Contained<S, I, L>>, Contained<S, I, L>>;

#[cfg(feature = "headers")]
type WithHeaders<S, I, L> =
    Maybe<crate::headers::SecurityHeadersService<WithCors<S, I, L>>, WithCors<S, I, L>>;

#[cfg(not(feature = "headers"))]
type WithHeaders<S, I, L> = Contained<S, I, L>;

/// The stack as one tower [`Layer`], outside in: request id, security
/// headers, CORS, panic catcher, identity layers, limits. Put it in a
/// `ServiceBuilder` under layers of your own that must see every answer
/// (metrics, access logs), and give the result to `Router::layer` once.
impl<S, I, L> Layer<S> for Hardening<I, L>
where
    L: Layer<S>,
    I: Layer<L::Service>,
{
    type Service = RequestIdService<WithHeaders<S, I, L>>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = self.identity.layer(self.limits.layer(inner));
        let inner = CatchPanicService { inner };
        #[cfg(feature = "headers")]
        let inner = {
            let inner = match &self.cors {
                Some(cors) => Either::Left(cors.layer(inner)),
                None => Either::Right(inner),
            };
            match &self.security_headers {
                Some(headers) => Either::Left(headers.layer(inner)),
                None => Either::Right(inner),
            }
        };
        RequestIdLayer::new().layer(inner)
    }
}

/// The panic catcher of [`Hardening`]: a panic while the service below is
/// called or polled becomes a 500 envelope (the panic message is logged,
/// never sent), and the connection keeps serving.
///
/// tower-http's `CatchPanic` does the same, but boxes every response body
/// again (and axum once more to get back to its `Body`): two allocations a
/// request that this one does not make.
#[derive(Clone, Debug)]
pub struct CatchPanicService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for CatchPanicService<S>
where
    S: Service<http::Request<B>, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => future,
            Err(panic) => {
                let response = error::panic_response(panic);
                return Box::pin(std::future::ready(Ok(response)));
            }
        };
        Box::pin(async move {
            let mut future = std::pin::pin!(future);
            std::future::poll_fn(|cx| {
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(poll) => poll,
                    Err(panic) => Poll::Ready(Ok(error::panic_response(panic))),
                }
            })
            .await
        })
    }
}
