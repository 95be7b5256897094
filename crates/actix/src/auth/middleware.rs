//! Authentication as actix-web middleware: the bearer token is verified
//! once, before the middleware inside it (a per-subject rate limit) and the
//! handler.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{
    Extensions, Service, ServiceRequest, ServiceResponse, Transform, forward_ready,
};
use actix_web::http::header::AUTHORIZATION;
use futures_util::future::LocalBoxFuture;
use palisade_auth_tokens::bearer::{self, AuthMode, Authenticate};

use super::Authenticated;
use crate::{AnonymousCaller, ApiError};

/// Verifies the bearer token before the wrapped service runs and puts the
/// [`Principal`](super::Principal) and the [`Authenticated`] caller into the
/// request extensions (the extractors then read them instead of verifying
/// again). A refusal is the 401 envelope with `WWW-Authenticate`; the
/// wrapped service never runs.
///
/// Register it after (outside) the middleware that keys on the identity:
/// `.wrap(RateLimit::new(..)).wrap(Authentication::required(..))`.
pub struct Authentication<A> {
    auth: Arc<A>,
    shared: Arc<dyn Authenticate>,
    mode: AuthMode,
}

impl<A> Clone for Authentication<A> {
    fn clone(&self) -> Self {
        Authentication {
            auth: Arc::clone(&self.auth),
            shared: Arc::clone(&self.shared),
            mode: self.mode,
        }
    }
}

impl<A: Authenticate> Authentication<A> {
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

    /// The middleware over an authenticator the application shares (to
    /// reach it from a logout handler).
    pub fn new(auth: Arc<A>, mode: AuthMode) -> Self {
        let shared: Arc<dyn Authenticate> = auth.clone();
        Authentication { auth, shared, mode }
    }

    /// The authenticator: `middleware.authenticator().verifier()` is the
    /// verifier a logout handler revokes with (for a
    /// [`BearerAuth`](super::BearerAuth)).
    pub fn authenticator(&self) -> &Arc<A> {
        &self.auth
    }
}

/// Puts what authentication found where the extractors and the inner
/// middleware look for it.
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

impl<I, B, A> Transform<I, ServiceRequest> for Authentication<A>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = AuthenticationMiddleware<I>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: I) -> Self::Future {
        ready(Ok(AuthenticationMiddleware {
            service: Rc::new(service),
            auth: Arc::clone(&self.shared),
            mode: self.mode,
        }))
    }
}

/// The service made by [`Authentication`].
pub struct AuthenticationMiddleware<I> {
    service: Rc<I>,
    auth: Arc<dyn Authenticate>,
    mode: AuthMode,
}

impl<I, B> Service<ServiceRequest> for AuthenticationMiddleware<I>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let auth = Arc::clone(&self.auth);
        let mode = self.mode;
        let lines: Vec<Vec<u8>> = request
            .headers()
            .get_all(AUTHORIZATION)
            .map(|value| value.as_bytes().to_vec())
            .collect();
        Box::pin(async move {
            let credentials = bearer::credentials(lines.iter().map(Vec::as_slice));
            match bearer::authenticate_request(&*auth, credentials, mode).await {
                Ok(found) => {
                    remember(&mut request.extensions_mut(), &auth, found);
                    Ok(service.call(request).await?.map_into_left_body())
                }
                // The error travels with the response, so `Harden` renders
                // it with the request id.
                Err(error) => Ok(request
                    .error_response(ApiError(error))
                    .map_into_right_body()),
            }
        })
    }
}
