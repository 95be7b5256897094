//! Security headers and CORS as actix-web middleware (feature `headers`).
//!
//! The decisions live in [`palisade_headers`]; actix-web 4 is on `http` 0.2,
//! so this module converts names and values at the edge and nothing else.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderMap as ActixHeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpResponse};
use futures_util::future::LocalBoxFuture;
use palisade_headers::{CorsDecision, CorsPolicy, CspNonce, HeaderSink, SecurityHeaders};

use crate::ApiError;

/// [`HeaderSink`] over actix's header map (`http` 0.2 types).
struct ActixHeaders<'a>(&'a mut ActixHeaderMap);

fn to_actix(
    name: &http::HeaderName,
    value: &http::HeaderValue,
) -> Option<(HeaderName, HeaderValue)> {
    // Invariant: both `http` versions accept the same bytes, so this only
    // fails if they ever diverge; the header is then skipped.
    Some((
        HeaderName::from_bytes(name.as_str().as_bytes()).ok()?,
        HeaderValue::from_bytes(value.as_bytes()).ok()?,
    ))
}

impl HeaderSink for ActixHeaders<'_> {
    fn contains(&self, name: &http::HeaderName) -> bool {
        self.0.contains_key(name.as_str())
    }

    fn insert(&mut self, name: &http::HeaderName, value: &http::HeaderValue) {
        if let Some((name, value)) = to_actix(name, value) {
            self.0.insert(name, value);
        }
    }

    fn append(&mut self, name: &http::HeaderName, value: &http::HeaderValue) {
        if let Some((name, value)) = to_actix(name, value) {
            self.0.append(name, value);
        }
    }

    fn remove(&mut self, name: &http::HeaderName) {
        self.0.remove(name.as_str());
    }

    fn any_value(&self, name: &http::HeaderName, predicate: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0
            .get_all(name.as_str())
            .any(|value| predicate(value.as_bytes()))
    }
}

use crate::decorate::decorated;

/// Marks a response whose security headers are already applied, so an outer
/// middleware leaves a per-resource policy's choice alone.
#[derive(Clone, Copy, Debug)]
struct HeadersApplied;

/// Adds the headers of a [`SecurityHeaders`] policy to every response.
///
/// With CSP nonces on, each request gets a fresh [`CspNonce`] in its
/// extensions (extract it with `web::ReqData<CspNonce>`) and the response's
/// CSP carries it. Wrapped around one resource or scope inside an app-wide
/// one, the inner policy wins (e.g. `html()` on the docs page, `api()`
/// elsewhere).
///
/// The app-wide policy goes to
/// [`Hardening::security_headers`](crate::Hardening::security_headers)
/// rather than to `App::wrap`: there it sits outside CORS and the panic
/// catcher, so preflight answers and a panic's 500 carry the headers too.
#[derive(Clone, Debug)]
pub struct SecureHeaders {
    headers: Arc<SecurityHeaders>,
}

impl SecureHeaders {
    /// The middleware for a built policy.
    pub fn new(headers: SecurityHeaders) -> SecureHeaders {
        SecureHeaders {
            headers: Arc::new(headers),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SecureHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = SecureHeadersMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<SecureHeadersMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SecureHeadersMiddleware {
            service: Rc::new(service),
            headers: Arc::clone(&self.headers),
        }))
    }
}

/// The service made by [`SecureHeaders`].
#[derive(Debug)]
pub struct SecureHeadersMiddleware<S> {
    service: Rc<S>,
    headers: Arc<SecurityHeaders>,
}

impl<S, B> Service<ServiceRequest> for SecureHeadersMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ServiceResponse<B>, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let nonce = if self.headers.uses_nonces() {
            // Reuse an outer middleware's nonce: the handler must see the one
            // that ends up in the header.
            let existing = request.extensions().get::<CspNonce>().cloned();
            let nonce = existing.or_else(CspNonce::generate);
            if let Some(nonce) = &nonce {
                request.extensions_mut().insert(nonce.clone());
            }
            nonce
        } else {
            None
        };
        let headers = Arc::clone(&self.headers);
        let response = self.service.call(request);
        Box::pin(async move {
            let mut response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    return Err(decorated(error, move |map| {
                        headers.apply(&mut ActixHeaders(map), nonce.as_ref());
                    }));
                }
            };
            if response
                .response()
                .extensions()
                .get::<HeadersApplied>()
                .is_none()
            {
                headers.apply(&mut ActixHeaders(response.headers_mut()), nonce.as_ref());
                response
                    .response_mut()
                    .extensions_mut()
                    .insert(HeadersApplied);
            }
            Ok(response)
        })
    }
}

/// Applies a [`CorsPolicy`]: answers preflights itself (204, or a 403
/// `cors_rejected` envelope) and adds the CORS headers and `Vary: Origin` to
/// every other response, error responses included.
///
/// App-wide, give the policy to [`Hardening::cors`](crate::Hardening::cors)
/// rather than registering this middleware yourself: there it sits inside
/// the request id (a refused preflight carries one) and outside the panic
/// catcher (a panic's 500 carries the CORS headers).
#[derive(Clone, Debug)]
pub struct Cors {
    policy: Arc<CorsPolicy>,
}

impl Cors {
    /// The middleware for a built policy.
    pub fn new(policy: CorsPolicy) -> Cors {
        Cors {
            policy: Arc::new(policy),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Cors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = CorsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<CorsMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CorsMiddleware {
            service: Rc::new(service),
            policy: Arc::clone(&self.policy),
        }))
    }
}

/// The service made by [`Cors`].
#[derive(Debug)]
pub struct CorsMiddleware<S> {
    service: Rc<S>,
    policy: Arc<CorsPolicy>,
}

/// The request headers CORS reads, as `http` 1 types.
const CORS_REQUEST_HEADERS: [&str; 4] = [
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
    "access-control-request-private-network",
];

fn cors_decision(policy: &CorsPolicy, request: &ServiceRequest) -> CorsDecision {
    let mut headers = http::HeaderMap::new();
    for name in CORS_REQUEST_HEADERS {
        for value in request.headers().get_all(name) {
            if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(http::HeaderName::from_static(name), value);
            }
        }
    }
    // actix's methods are valid tokens, so the conversion always succeeds;
    // were it to fail, the request is judged as a plain GET (never a preflight).
    let method =
        http::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(http::Method::GET);
    policy.evaluate(&method, &headers)
}

impl<S, B> Service<ServiceRequest> for CorsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        match cors_decision(&self.policy, &request) {
            CorsDecision::PreflightAllowed(headers) => {
                let mut response = HttpResponse::NoContent().finish();
                let mut sink = ActixHeaders(response.headers_mut());
                for (name, value) in &headers {
                    sink.append(name, value);
                }
                let response = request.into_response(response).map_into_right_body();
                Box::pin(ready(Ok(response)))
            }
            CorsDecision::PreflightRejected(error) => {
                // The error travels with the response, so `Harden` renders
                // its own code (`cors_rejected`) and headers (`Vary`).
                // (`into_response` would drop the error from the response.)
                let response = request
                    .error_response(ApiError(error))
                    .map_into_right_body();
                Box::pin(ready(Ok(response)))
            }
            CorsDecision::Forward(cors) => {
                let service = Rc::clone(&self.service);
                Box::pin(async move {
                    let mut response = match service.call(request).await {
                        Ok(response) => response,
                        Err(error) => {
                            return Err(decorated(error, move |map| {
                                cors.apply(&mut ActixHeaders(map));
                            }));
                        }
                    };
                    cors.apply(&mut ActixHeaders(response.headers_mut()));
                    Ok(response.map_into_left_body())
                })
            }
        }
    }
}
