//! [`Hardening`]: the Palisade layers in the one order that is right.

use std::convert::Infallible;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::Route;
use tower_http::catch_panic::CatchPanicLayer;
use tower_layer::{Identity, Layer, Stack};
use tower_service::Service;

use crate::{RequestIdLayer, error};

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

    /// Adds an authentication layer (any tower [`Layer`]); several run in
    /// the order added, all before the limits.
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

    /// Adds a rate-limit layer (any tower [`Layer`]); several run in the
    /// order added, all after the identity layers.
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
    pub fn apply<S>(self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        I: Layer<Route> + Clone + Send + Sync + 'static,
        I::Service: Service<Request> + Clone + Send + Sync + 'static,
        <I::Service as Service<Request>>::Response: IntoResponse + 'static,
        <I::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <I::Service as Service<Request>>::Future: Send + 'static,
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        let router = router
            .layer(self.limits)
            .layer(self.identity)
            .layer(CatchPanicLayer::custom(error::panic_response));
        #[cfg(feature = "headers")]
        let router = {
            let mut router = router;
            if let Some(cors) = self.cors {
                router = router.layer(cors);
            }
            if let Some(headers) = self.security_headers {
                router = router.layer(headers);
            }
            router
        };
        router.layer(RequestIdLayer::new())
    }
}
