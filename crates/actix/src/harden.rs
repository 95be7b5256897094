use std::future::{Ready, ready};
use std::panic::AssertUnwindSafe;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use palisade_errors::{Error, ErrorKind, RequestId};
use tracing::Instrument;

use crate::ApiError;
use crate::error::{render, to_actix_status};

/// The Palisade base for an actix-web app: request ids, the error envelope on
/// every error response, and panic containment.
///
/// - A caller's `X-Request-Id` is kept when it parses ([`RequestId::parse`]),
///   otherwise a UUIDv4 is generated; it goes into the request extensions
///   (`req.extensions().get::<RequestId>()`), a `request` tracing span, and
///   every response.
/// - Every 4xx/5xx response leaves as the envelope with the request id. actix's
///   own errors are classified from the error the response carries (JSON
///   syntax 400, JSON data 422, content type 415, size 413, path 404, query
///   422), anything else by status; the original body is dropped.
/// - A handler that panics answers a 500 envelope and the panic message is
///   logged; the worker keeps serving.
///
/// Register it last (`App::new().wrap(Harden::new())` after other `wrap`s), so
/// it is outermost and sees every response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Harden {
    _private: (),
}

impl Harden {
    /// The middleware.
    pub fn new() -> Harden {
        Harden::default()
    }
}

impl<S, B> Transform<S, ServiceRequest> for Harden
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = HardenMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<HardenMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HardenMiddleware { service }))
    }
}

/// The service made by [`Harden`].
#[derive(Debug)]
pub struct HardenMiddleware<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for HardenMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        // actix routes HEAD only to explicit HEAD routes (axum answers it for
        // every GET route): HEAD is served as GET, without the body.
        let head = request.method() == Method::HEAD;
        if head {
            request.head_mut().method = Method::GET;
        }
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .and_then(RequestId::parse)
            .unwrap_or_else(generate);
        request.extensions_mut().insert(id.clone());
        let span = tracing::info_span!(
            "request",
            request_id = id.as_str(),
            method = request.method().as_str(),
            path = request.path(),
        );
        // A handler may panic while the future is built or while it runs.
        let call = span
            .in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| self.service.call(request))));
        Box::pin(
            async move {
                let outcome = match call {
                    Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                // The request was moved into the inner service (and an
                // `HttpRequest` must not be cloned before routing), so errors
                // without a response leave as `Err` that renders itself.
                match outcome {
                    Ok(Ok(response)) => {
                        let response = finish(response.map_into_boxed_body(), &id);
                        Ok(if head {
                            without_body(response)
                        } else {
                            response
                        })
                    }
                    Ok(Err(error)) => {
                        // Look through the headers other middleware attached
                        // to the error (CORS, security headers) to the error
                        // itself, and keep those headers for the envelope.
                        let (inner, decorators) = crate::decorate::unwrap(&error);
                        let status = inner.as_response_error().status_code();
                        let error = envelope_error(Some(inner), status, None);
                        Err(Enveloped {
                            error,
                            id,
                            decorators,
                            head,
                        }
                        .into())
                    }
                    Err(panic) => {
                        log_panic(panic.as_ref());
                        let error = Error::new(ErrorKind::Internal);
                        Err(Enveloped {
                            error,
                            id,
                            decorators: Vec::new(),
                            head,
                        }
                        .into())
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// An envelope error whose request id is already known; what the middleware
/// returns when it has no `HttpRequest` left to build a response with.
struct Enveloped {
    error: Error,
    id: RequestId,
    decorators: Vec<crate::decorate::Decorator>,
    /// A HEAD request (served as GET): the answer has no body.
    head: bool,
}

impl std::fmt::Debug for Enveloped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enveloped")
            .field("error", &self.error)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for Enveloped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for Enveloped {
    fn status_code(&self) -> StatusCode {
        to_actix_status(self.error.status())
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = render(&self.error, Some(&self.id));
        for decorate in &self.decorators {
            decorate(response.headers_mut());
        }
        if self.head {
            response = response.set_body(BoxBody::new(()));
        }
        response
    }
}

/// The answer to a HEAD request served as GET: its headers, no body.
fn without_body(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    response.map_body(|_, _| BoxBody::new(()))
}

/// The panic of a handler (or a middleware) below the CORS middleware, caught
/// there so CORS and the security headers still decorate its 500. Logged
/// where it was caught, as `sys_crash`.
#[derive(Debug)]
pub(crate) struct Panicked;

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handler panicked")
    }
}

impl ResponseError for Panicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        render(&Error::new(ErrorKind::Internal), None)
    }
}

/// The envelope error for an error response, logged once here:
/// - a [`Panicked`] was logged where it was caught;
/// - an [`ApiError`] (a core's or the application's decision): a 5xx at
///   `error` with its source; a 401/403/429 no core logged (the handler's
///   own) as its security event, `reason = "handler"`;
/// - anything actix refused on its own (payload, path, query, method): a 5xx
///   at `error`, an input refusal as one `input_validation_fail` event.
fn envelope_error(
    error: Option<&actix_web::Error>,
    status: StatusCode,
    allow: Option<&actix_web::http::header::HeaderMap>,
) -> Error {
    let mut envelope = match error {
        Some(error) if error.as_error::<Panicked>().is_some() => Error::new(ErrorKind::Internal),
        Some(error) if error.as_error::<ApiError>().is_some() => {
            let envelope = classify(error).unwrap_or_else(|| Error::new(kind_of(status)));
            crate::error::log_unlogged_refusal(&envelope);
            let source = std::error::Error::source(&envelope).map(ToString::to_string);
            if envelope.status().is_server_error() && !envelope.is_logged() {
                tracing::error!(
                    code = envelope.kind().code(),
                    source = source.as_deref(),
                    "request failed"
                );
            } else if envelope.status().is_server_error() {
                // Logged where it failed (a shed request: once a second, counted).
                tracing::debug!(
                    code = envelope.kind().code(),
                    source = source.as_deref(),
                    "request failed"
                );
            } else {
                tracing::debug!(
                    code = envelope.kind().code(),
                    source = source.as_deref(),
                    "request refused"
                );
            }
            envelope
        }
        other => {
            let envelope = other
                .and_then(classify)
                .unwrap_or_else(|| Error::new(kind_of(status)));
            crate::error::log_framework_refusal(&envelope, status.as_u16());
            envelope
        }
    };
    if envelope.kind() == ErrorKind::MethodNotAllowed
        && envelope.headers().get("allow").is_none()
        && let Some(headers) = allow
    {
        let methods =
            crate::error::canonical_allow(headers.get_all("allow").map(|value| value.as_bytes()));
        envelope = envelope.with_allow(&methods);
    }
    envelope
}

fn kind_of(status: StatusCode) -> ErrorKind {
    http::StatusCode::from_u16(status.as_u16())
        .ok()
        .and_then(ErrorKind::from_status)
        .unwrap_or(ErrorKind::Internal)
}

fn generate() -> RequestId {
    RequestId::from_random_bytes(uuid::Uuid::new_v4().into_bytes())
}

pub(crate) fn log_panic(panic: &(dyn std::any::Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    tracing::error!(
        event = palisade_errors::SecurityEvent::SysCrash.as_str(),
        reason = "handler_panicked",
        panic = message,
        "handler panicked"
    );
}

/// The envelope error for an actix error, with the statuses of the Palisade
/// design; `None` when actix has no specific error for this response.
fn classify(error: &actix_web::Error) -> Option<Error> {
    if let Some(api) = error.as_error::<ApiError>() {
        return Some(api.0.clone());
    }
    let kind = if let Some(json) = error.as_error::<JsonPayloadError>() {
        match json {
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
                ErrorKind::PayloadTooLarge
            }
            JsonPayloadError::ContentType => ErrorKind::UnsupportedMediaType,
            JsonPayloadError::Deserialize(inner) if inner.is_data() => ErrorKind::ValidationFailed,
            _ => ErrorKind::BadRequest,
        }
    } else if error.as_error::<PathError>().is_some() {
        // An id that cannot exist is not found (answering 400 tells a prober
        // which ids are well-formed).
        ErrorKind::NotFound
    } else if error.as_error::<QueryPayloadError>().is_some() {
        ErrorKind::ValidationFailed
    } else {
        return None;
    };
    // The actix error text can name types and fields: logged, never sent.
    Some(Error::new(kind).with_source(std::io::Error::other(error.to_string())))
}

fn finish(response: ServiceResponse<BoxBody>, id: &RequestId) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let (request, mut response) = if status.is_client_error() || status.is_server_error() {
        let error = envelope_error(
            response.response().error(),
            status,
            Some(response.headers()),
        );
        let (request, original) = response.into_parts();
        (request, with_envelope(original, &error, id))
    } else {
        response.into_parts()
    };
    // Echoed on every response, successful or not.
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(id.as_str()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    ServiceResponse::new(request, response)
}

/// Replaces the body with the envelope, keeping the headers other layers set
/// (`Allow`, CORS, security headers) except the body's own.
fn with_envelope(original: HttpResponse, error: &Error, id: &RequestId) -> HttpResponse {
    let mut rendered = render(error, Some(id));
    let envelope_headers: Vec<HeaderName> = rendered.headers().keys().cloned().collect();
    for (name, value) in original.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH && !envelope_headers.contains(name) {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}
