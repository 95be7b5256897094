//! [`Hardening`]: the Palisade middleware in the one order that is right.

use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::ALLOW;
use actix_web::middleware::Identity;
use actix_web::{App, HttpResponse, web};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use crate::harden::{Harden, HardenMiddleware, Panicked, log_panic};

type Boxed = LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>;

/// The middleware stack below [`Harden`] in a [`Hardening`], boxed.
pub struct Layered(
    Rc<
        dyn Service<
                ServiceRequest,
                Response = ServiceResponse<BoxBody>,
                Error = actix_web::Error,
                Future = Boxed,
            >,
    >,
);

impl std::fmt::Debug for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layered")
    }
}

impl Service<ServiceRequest> for Layered {
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Boxed;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), actix_web::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, request: ServiceRequest) -> Boxed {
        self.0.call(request)
    }
}

struct ToBoxed<S>(S);

impl<S, B> Service<ServiceRequest> for ToBoxed<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Boxed;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), actix_web::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, request: ServiceRequest) -> Boxed {
        let response = self.0.call(request);
        Box::pin(async move { response.await.map(ServiceResponse::map_into_boxed_body) })
    }
}

fn boxed<S, B>(service: S) -> Layered
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    Layered(Rc::new(ToBoxed(service)))
}

/// Two middleware in one slot of [`Hardening`]: `outer` sees the request
/// first, then `inner` (the type [`Hardening::identity`] and
/// [`Hardening::limit`] build when called more than once).
pub struct Stack<Outer, Inner> {
    outer: Arc<Outer>,
    inner: Inner,
}

impl<Outer, Inner> std::fmt::Debug for Stack<Outer, Inner> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stack")
    }
}

impl<S, Outer, Inner> Transform<S, ServiceRequest> for Stack<Outer, Inner>
where
    Inner: Transform<S, ServiceRequest, Error = actix_web::Error, InitError = ()>,
    Inner::Future: 'static,
    Outer: Transform<Inner::Transform, ServiceRequest, Error = actix_web::Error, InitError = ()>
        + 'static,
    Outer::Future: 'static,
{
    type Response = Outer::Response;
    type Error = actix_web::Error;
    type Transform = Outer::Transform;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Outer::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let inner = self.inner.new_transform(service);
        let outer = Arc::clone(&self.outer);
        Box::pin(async move { outer.new_transform(inner.await?).await })
    }
}

/// Catches a panic below it and returns it as an error, so the middleware
/// above (CORS, security headers) still decorate the 500.
struct CatchPanic<S>(S);

impl<S> Service<ServiceRequest> for CatchPanic<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Boxed;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), actix_web::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, request: ServiceRequest) -> Boxed {
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| self.0.call(request)));
        Box::pin(async move {
            let outcome = match call {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            outcome.unwrap_or_else(|panic| {
                log_panic(panic.as_ref());
                Err(Panicked.into())
            })
        })
    }
}

/// The Palisade middleware of an app, in one fixed order, so that every
/// response — successes, refused preflights, 401/403/404/405/413/415/422/429
/// and the 500 of a panic — carries the request id (header and envelope), the
/// security headers, and CORS (`Vary: Origin` always, the allow headers for
/// an allowed origin).
///
/// From the outside in:
///
/// 1. **Request id and envelope** ([`Harden`]): first to see the request, so
///    every middleware below (and its log events) runs inside the `request`
///    span with the id; last to see the response, so every error — a CORS
///    refusal included — leaves as the envelope carrying the id.
/// 2. **Security headers** (`security_headers`): outside CORS and the panic
///    catcher, so preflight answers and panic 500s get them too.
/// 3. **CORS** (`cors`): answers preflights (inside the request id, so a
///    refusal has one) and wraps the panic catcher, so the 500 of a panic
///    carries `Access-Control-Allow-Origin` and the allowed front end can read
///    the envelope.
/// 4. **Panic containment**: a panic anywhere below becomes a 500 envelope.
/// 5. **Identity** (`identity`): authentication, before the limits that key
///    on the identity it establishes.
/// 6. **Limits** (`limit`): rate limits, closest to the routes. (A limit
///    keyed by the matched route goes on the resource or scope: app-wide
///    middleware runs before routing.)
///
/// [`apply`](Hardening::apply) also registers a last resource that answers
/// 405 with `Allow` for a path whose routes were registered with
/// `App::route` for other methods (actix moves their method guard onto the
/// resource, and would answer 404), and 404 for unknown paths. HEAD is
/// served by GET routes, without the body ([`Harden`] does that).
///
/// Side effects of that resource (`/{palisade_unmatched:.*}`, matching every
/// path):
/// - call `apply` last: a service registered on the returned app comes after
///   it and is never reached; an `App::default_service` is never reached
///   either (the resource answers every unmatched path);
/// - an unmatched request's `match_pattern()` is
///   `/{palisade_unmatched:.*}`: a limit keyed by route counts all
///   unmatched requests of a method and client in one shared budget.
///
/// HEAD is rewritten to GET before routing, so an explicit `web::head()`
/// route is never reached: the GET route answers HEAD, without the body.
#[must_use]
pub struct Hardening<I = Identity, L = Identity> {
    #[cfg(feature = "headers")]
    security_headers: Option<crate::headers::SecureHeaders>,
    #[cfg(feature = "headers")]
    cors: Option<crate::headers::Cors>,
    identity: Arc<I>,
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
            identity: Arc::new(Identity::default()),
            limits: Identity::default(),
        }
    }
}

impl<I, L> Hardening<I, L> {
    /// The app-wide security headers (a `SecureHeaders` on a resource or
    /// scope still wins there).
    #[cfg(feature = "headers")]
    pub fn security_headers(mut self, headers: palisade_headers::SecurityHeaders) -> Self {
        self.security_headers = Some(crate::headers::SecureHeaders::new(headers));
        self
    }

    /// The CORS policy.
    #[cfg(feature = "headers")]
    pub fn cors(mut self, policy: palisade_headers::CorsPolicy) -> Self {
        self.cors = Some(crate::headers::Cors::new(policy));
        self
    }

    /// Adds a middleware to the identity slot (any actix [`Transform`]:
    /// authentication, and what must run before it — a trusted-host check,
    /// request limits, a per-IP limit, a timeout). Several run in the order
    /// added, the first outermost, all before the `limit` slot (as
    /// palisade-axum's `Hardening::identity`).
    pub fn identity<N>(self, transform: N) -> Hardening<Stack<I, N>, L> {
        Hardening {
            #[cfg(feature = "headers")]
            security_headers: self.security_headers,
            #[cfg(feature = "headers")]
            cors: self.cors,
            identity: Arc::new(Stack {
                outer: self.identity,
                inner: transform,
            }),
            limits: self.limits,
        }
    }

    /// Adds a rate-limit middleware (any actix [`Transform`]); several run in
    /// the order added, all after the identity slot. More limits go on
    /// resources and scopes.
    pub fn limit<N>(self, transform: N) -> Hardening<I, Stack<L, N>> {
        Hardening {
            #[cfg(feature = "headers")]
            security_headers: self.security_headers,
            #[cfg(feature = "headers")]
            cors: self.cors,
            identity: self.identity,
            limits: Stack {
                outer: Arc::new(self.limits),
                inner: transform,
            },
        }
    }

    /// Registers the method-aware fallback resource (last, after the app's
    /// own services) and wraps the app, outermost.
    pub fn apply<T>(
        self,
        app: App<T>,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<BoxBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    >
    where
        T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
        Self: Transform<
                T::Service,
                ServiceRequest,
                Response = ServiceResponse<BoxBody>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
    {
        app.service(fallback()).wrap(self)
    }
}

/// Matches every path no other service matched. actix's resource default
/// answers 405 with the `Allow` list that the method guards of the resources
/// matching the path recorded during routing; with no such resource there is
/// no list, and the path is unknown: 404.
fn fallback() -> actix_web::Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource("/{palisade_unmatched:.*}").wrap_fn(|request, service| {
        let response = service.call(request);
        async move {
            let response = response.await?;
            if response.status() == StatusCode::METHOD_NOT_ALLOWED
                && !response.headers().contains_key(ALLOW)
            {
                let (request, _) = response.into_parts();
                return Ok(ServiceResponse::new(
                    request,
                    HttpResponse::NotFound().finish(),
                ));
            }
            Ok(response)
        }
    })
}

impl<S, B, I, L, BL, BI> Transform<S, ServiceRequest> for Hardening<I, L>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    L: Transform<
            S,
            ServiceRequest,
            Response = ServiceResponse<BL>,
            Error = actix_web::Error,
            InitError = (),
        >,
    L::Future: 'static,
    L::Transform: 'static,
    BL: MessageBody + 'static,
    I: Transform<
            L::Transform,
            ServiceRequest,
            Response = ServiceResponse<BI>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    I::Future: 'static,
    I::Transform: 'static,
    <I::Transform as Service<ServiceRequest>>::Future: 'static,
    BI: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = HardenMiddleware<Layered>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<HardenMiddleware<Layered>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let limited = self.limits.new_transform(service);
        let identity = Arc::clone(&self.identity);
        #[cfg(feature = "headers")]
        let (cors, headers) = (self.cors.clone(), self.security_headers.clone());
        Box::pin(async move {
            let limited = limited.await?;
            let identified = identity.new_transform(limited).await?;
            let caught = CatchPanic(boxed(identified));
            #[cfg_attr(not(feature = "headers"), allow(unused_mut))]
            let mut inner = boxed(caught);
            #[cfg(feature = "headers")]
            {
                if let Some(cors) = cors {
                    inner = boxed(cors.new_transform(inner).await?);
                }
                if let Some(headers) = headers {
                    inner = boxed(headers.new_transform(inner).await?);
                }
            }
            Harden::new().new_transform(inner).await
        })
    }
}
