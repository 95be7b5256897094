//! Authentication as a tower layer: the bearer token is verified once,
//! before the layers inside it (a per-subject rate limit) and the handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;
use http::{Extensions, HeaderValue, Request};
use palisade_auth_tokens::bearer::{self, AuthMode, Authenticate};
use tower_layer::Layer;
use tower_service::Service;

use super::Authenticated;
use crate::{AnonymousCaller, ApiError};

/// Verifies the bearer token before the inner layers run and puts the
/// [`Principal`](super::Principal) and the [`Authenticated`] caller into the
/// request extensions (the extractors then read them instead of verifying
/// again). A refusal is the 401 envelope with `WWW-Authenticate`; the inner
/// service never runs.
///
/// Add it after (outside) the layers that key on the identity:
/// `.route_layer(RateLimitLayer::new(..)).route_layer(AuthLayer::required(..))`.
pub struct AuthLayer<A> {
    auth: Arc<A>,
    shared: Arc<dyn Authenticate>,
    mode: AuthMode,
}

impl<A> Clone for AuthLayer<A> {
    fn clone(&self) -> Self {
        AuthLayer {
            auth: Arc::clone(&self.auth),
            shared: Arc::clone(&self.shared),
            mode: self.mode,
        }
    }
}

impl<A: Authenticate> AuthLayer<A> {
    /// Every request needs a valid token: without one, 401.
    pub fn required(auth: A) -> Self {
        Self::new(Arc::new(auth), AuthMode::Required)
    }

    /// A request without credentials passes on anonymous (no principal,
    /// an [`AnonymousCaller`] marker instead); a malformed, forged, expired
    /// or revoked token is still a 401, never downgraded to anonymous.
    pub fn optional(auth: A) -> Self {
        Self::new(Arc::new(auth), AuthMode::Optional)
    }

    /// The layer over an authenticator the application shares (to reach
    /// it from a logout handler).
    pub fn new(auth: Arc<A>, mode: AuthMode) -> Self {
        let shared: Arc<dyn Authenticate> = auth.clone();
        AuthLayer { auth, shared, mode }
    }

    /// The authenticator: `layer.authenticator().verifier()` is the
    /// verifier a logout handler revokes with (for a
    /// [`BearerAuth`](super::BearerAuth)).
    pub fn authenticator(&self) -> &Arc<A> {
        &self.auth
    }
}

impl<I, A> Layer<I> for AuthLayer<A> {
    type Service = AuthService<I>;

    fn layer(&self, inner: I) -> AuthService<I> {
        AuthService {
            inner,
            auth: Arc::clone(&self.shared),
            mode: self.mode,
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<I> {
    inner: I,
    auth: Arc<dyn Authenticate>,
    mode: AuthMode,
}

/// Puts what authentication found where the extractors and the inner layers
/// look for it.
pub(super) fn remember(
    extensions: &mut Extensions,
    auth: &Arc<dyn Authenticate>,
    found: Option<bearer::Authenticated>,
) {
    extensions.insert(Arc::clone(auth));
    match found {
        Some(found) => {
            extensions.insert(found.principal.clone());
            extensions.insert(Authenticated(found));
        }
        None => {
            let auth = Arc::clone(auth);
            extensions.insert(AnonymousCaller::new(move || {
                bearer::refuse_anonymous(auth.authorizer())
            }));
        }
    }
}

impl<I> Service<Request<Body>> for AuthService<I>
where
    I: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Keep the service polled ready, give the clone to the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = Arc::clone(&self.auth);
        let mode = self.mode;
        Box::pin(async move {
            let lines = request
                .headers()
                .get_all(AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes);
            let decision =
                bearer::authenticate_request(&*auth, bearer::credentials(lines), mode).await;
            match decision {
                Ok(found) => {
                    remember(request.extensions_mut(), &auth, found);
                    inner.call(request).await
                }
                Err(error) => Ok(ApiError(error).into_response()),
            }
        })
    }
}
