//! Security headers and CORS as tower layers (feature `headers`).
//!
//! The decisions live in [`palisade_headers`]; this module only moves them in
//! and out of axum's request and response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Request, StatusCode};
use palisade_headers::{CorsDecision, CorsPolicy, CspNonce, SecurityHeaders};
use tower_layer::Layer;
use tower_service::Service;

use crate::ApiError;

/// Marks a response whose security headers are already applied, so an outer
/// layer leaves a per-route layer's choice alone.
#[derive(Clone, Copy, Debug)]
struct HeadersApplied;

/// Adds the headers of a [`SecurityHeaders`] policy to every response.
///
/// With CSP nonces on, each request gets a fresh [`CspNonce`] in its
/// extensions (extract it with [`Nonce`]) and the response's CSP carries it.
/// The app-wide policy goes to
/// [`Hardening::security_headers`](crate::Hardening::security_headers)
/// (outside CORS and the panic catcher, so preflight answers and a panic's
/// 500 carry the headers). This layer, per route (`route_layer`, or `layer`
/// on a nested router), wins over the app-wide policy there: e.g. `html()`
/// on the docs page and `api()` everywhere else.
#[derive(Clone, Debug)]
pub struct SecurityHeadersLayer {
    headers: Arc<SecurityHeaders>,
}

impl SecurityHeadersLayer {
    /// The layer for a built policy.
    pub fn new(headers: SecurityHeaders) -> SecurityHeadersLayer {
        SecurityHeadersLayer {
            headers: Arc::new(headers),
        }
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeadersService<S>;

    fn layer(&self, inner: S) -> SecurityHeadersService<S> {
        SecurityHeadersService {
            inner,
            headers: Arc::clone(&self.headers),
        }
    }
}

/// The service made by [`SecurityHeadersLayer`].
#[derive(Clone, Debug)]
pub struct SecurityHeadersService<S> {
    inner: S,
    headers: Arc<SecurityHeaders>,
}

impl<S, B> Service<Request<B>> for SecurityHeadersService<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let nonce = if self.headers.uses_nonces() {
            // An outer nonce layer already made one for this request: the
            // handler must see the nonce that ends up in the header.
            let nonce = request
                .extensions()
                .get::<CspNonce>()
                .cloned()
                .or_else(CspNonce::generate);
            if let Some(nonce) = &nonce {
                request.extensions_mut().insert(nonce.clone());
            }
            nonce
        } else {
            None
        };
        let headers = Arc::clone(&self.headers);
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if response.extensions().get::<HeadersApplied>().is_none() {
                headers.apply(response.headers_mut(), nonce.as_ref());
                response.extensions_mut().insert(HeadersApplied);
            }
            Ok(response)
        })
    }
}

/// The request's CSP nonce, for `<script nonce="…">`; `None` when the policy
/// has no nonces or the OS random source failed (then the CSP carries no
/// nonce either, and inline scripts are blocked).
#[derive(Clone, Debug)]
pub struct Nonce(pub Option<CspNonce>);

impl<S: Send + Sync> FromRequestParts<S> for Nonce {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Nonce, Infallible> {
        Ok(Nonce(parts.extensions.get::<CspNonce>().cloned()))
    }
}

/// Applies a [`CorsPolicy`]: answers preflights itself (204 or a 403
/// `cors_rejected` envelope) and adds the CORS headers and `Vary: Origin` to
/// every other response, error responses included.
///
/// App-wide, give the policy to [`Hardening::cors`](crate::Hardening::cors)
/// rather than adding this layer yourself: there it sits inside the request
/// id (a refused preflight carries one) and outside the panic catcher (a
/// panic's 500 carries the CORS headers), so every response class, 404 and
/// 405 included, is readable by the allowed front end.
#[derive(Clone, Debug)]
pub struct CorsLayer {
    policy: Arc<CorsPolicy>,
}

impl CorsLayer {
    /// The layer for a built policy.
    pub fn new(policy: CorsPolicy) -> CorsLayer {
        CorsLayer {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service made by [`CorsLayer`].
#[derive(Clone, Debug)]
pub struct CorsService<S> {
    inner: S,
    policy: Arc<CorsPolicy>,
}

impl<S, B> Service<Request<B>> for CorsService<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.policy.evaluate(request.method(), request.headers()) {
            CorsDecision::PreflightAllowed(headers) => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                response.headers_mut().extend(headers);
                Box::pin(async move { Ok(response) })
            }
            CorsDecision::PreflightRejected(error) => {
                let response = ApiError(error).into_response();
                Box::pin(async move { Ok(response) })
            }
            CorsDecision::Forward(cors) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let mut response = response.await?;
                    cors.apply(response.headers_mut());
                    Ok(response)
                })
            }
        }
    }
}
