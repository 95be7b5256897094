use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Request};
use palisade_errors::{Error, ErrorKind, REQUEST_ID_HEADER, RequestId};
use tower_layer::Layer;
use tower_service::Service;

/// Gives every request a [`RequestId`] and every error response the envelope.
///
/// - A caller's `X-Request-Id` is kept when it parses ([`RequestId::parse`]),
///   otherwise a UUIDv4 is generated (a [`RequestId`] already in the request
///   extensions, put there by `serve`, is used as it is). The id is put into the request
///   extensions (handlers can extract `Extension<RequestId>`), into a
///   `request` tracing span around the inner service, and onto every response.
/// - Every 4xx/5xx response leaves as the envelope: an [`ApiError`](crate::ApiError)
///   response gets its `request_id` filled in, and any other error response
///   (axum's own 404/405/rejections) is replaced by the envelope of its status,
///   keeping only `Allow`, `Retry-After` and `WWW-Authenticate`.
///
/// Put it outermost, so that it sees the responses of every other layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer {
    _private: (),
}

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> RequestIdLayer {
        RequestIdLayer::default()
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> RequestIdService<S> {
        RequestIdService { inner }
    }
}

/// The service made by [`RequestIdLayer`].
#[derive(Clone, Debug)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // `serve` has already taken the caller's id or made one (its own
        // refusals carry it): the router's answer and log carry the same.
        let id = match request.extensions().get::<RequestId>() {
            Some(id) => id.clone(),
            None => {
                let id = request
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(RequestId::from_header)
                    .unwrap_or_else(generate);
                request.extensions_mut().insert(id.clone());
                id
            }
        };
        // String fields, not `%` (Display): a JSON log formats every span's
        // fields when it is made, on every request.
        let span = tracing::info_span!(
            "request",
            request_id = id.as_str(),
            method = request.method().as_str(),
            path = request.uri().path(),
        );
        let response = span.in_scope(|| self.inner.call(request));
        RequestIdFuture {
            span,
            inner: Some(Box::pin(async move {
                let response = response.await?;
                Ok(finish(response, &id))
            })),
        }
    }
}

/// The future of [`RequestIdService`]: the request's answer, polled inside
/// its `request` span.
///
/// Like tracing's `Instrumented`, with one entry of the span fewer a
/// request: a future that finished is dropped as it finishes, inside the
/// span, so dropping this afterwards enters nothing. One dropped unfinished
/// (the client went away) is dropped inside the span, so what its drop
/// logs still carries the request id.
pub struct RequestIdFuture<E> {
    span: tracing::Span,
    inner: Option<Answer<E>>,
}

/// The boxed answer inside a [`RequestIdFuture`].
type Answer<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<E> std::fmt::Debug for RequestIdFuture<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestIdFuture")
            .field("span", &self.span)
            .field("finished", &self.inner.is_none())
            .finish()
    }
}

impl<E> Future for RequestIdFuture<E> {
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _entered = this.span.enter();
        // Polled again after it finished: it never answers twice.
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Pending;
        };
        let polled = inner.as_mut().poll(cx);
        if polled.is_ready() {
            this.inner = None;
        }
        polled
    }
}

impl<E> Drop for RequestIdFuture<E> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _entered = self.span.enter();
            self.inner = None;
        }
    }
}

/// A fresh UUIDv4 from a thread-local CSPRNG (uuid's `fast-rng`: ChaCha
/// seeded from the OS), not a `getrandom` system call per request.
pub(crate) fn generate() -> RequestId {
    RequestId::from_random_bytes(uuid::Uuid::new_v4().into_bytes())
}

fn finish(response: Response, id: &RequestId) -> Response {
    let (mut parts, body) = response.into_parts();
    // An envelope rendered with this id and a status no `ErrorKind` has
    // (the handler timeout's optional 504): kept as it is.
    #[cfg(feature = "validate")]
    if parts
        .extensions
        .get::<crate::validate::FinalEnvelope>()
        .is_some()
    {
        parts
            .headers
            .insert(REQUEST_ID_HEADER, id.to_header_value());
        return Response::from_parts(parts, body);
    }
    let error = parts.extensions.get::<Error>().cloned().or_else(|| {
        // A bare error response axum produced on its own (default 404, 405
        // with `Allow`, a rejection with a text body): its body is dropped, so no
        // framework text (which can name types, fields or versions) leaks; its
        // headers (`Allow`, ...) are kept.
        let kind = ErrorKind::from_status(parts.status)?;
        crate::error::log_framework_refusal(kind, parts.status.as_u16());
        // (axum adds `Allow` to a 405 after every layer ran.)
        Some(Error::new(kind))
    });
    let body = match error {
        Some(error) => {
            parts.status = error.status();
            parts.headers.remove(CONTENT_LENGTH);
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            parts
                .headers
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            let body = Body::from(error.to_json(Some(id)));
            parts.extensions.insert(error);
            body
        }
        None => body,
    };
    parts
        .headers
        .insert(REQUEST_ID_HEADER, id.to_header_value());
    Response::from_parts(parts, body)
}
