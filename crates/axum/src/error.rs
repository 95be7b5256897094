use std::any::Any;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use palisade_errors::{Error, ErrorKind};

/// A [`palisade_errors::Error`] that axum can return from handlers and extractors.
///
/// The response it produces carries the envelope (with `request_id: null`) and
/// keeps the `Error` in its extensions; [`RequestIdLayer`](crate::RequestIdLayer)
/// fills in the request id on the way out.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        ApiError(error)
    }
}

impl From<ErrorKind> for ApiError {
    fn from(kind: ErrorKind) -> ApiError {
        ApiError(Error::new(kind))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        log_error(&self.0);
        let mut response = render(&self.0, None);
        response.extensions_mut().insert(self.0);
        response
    }
}

/// Renders the envelope response for `error`.
pub(crate) fn render(error: &Error, request_id: Option<&palisade_errors::RequestId>) -> Response {
    error.to_response(request_id).map(Body::from)
}

/// Internal detail goes to the log at the point of failure, never to the client.
fn log_error(error: &Error) {
    log_unlogged_refusal(error);
    let source = std::error::Error::source(error).map(ToString::to_string);
    if error.status().is_server_error() && !error.is_logged() {
        tracing::error!(
            code = error.kind().code(),
            source = source.as_deref(),
            "request failed"
        );
    } else if error.status().is_server_error() {
        // Logged where it failed (a shed request: once a second, counted).
        tracing::debug!(
            code = error.kind().code(),
            source = source.as_deref(),
            "request failed"
        );
    } else {
        tracing::debug!(
            code = error.kind().code(),
            source = source.as_deref(),
            "request refused"
        );
    }
}

/// A 401/403/429 that no core reported (a handler returned it itself): its
/// one security event, `reason = "handler"`. A core's refusal is marked
/// [`logged`](Error::logged) and was logged where it was decided.
pub(crate) fn log_unlogged_refusal(error: &Error) {
    if let Some(event) = error.unlogged_refusal() {
        tracing::info!(
            event = event.as_str(),
            reason = "handler",
            status = error.status().as_u16(),
            "request refused by the application"
        );
    }
}

/// The response for a handler that panicked: a 500 envelope. The panic message
/// is logged, because it can hold anything (a SQL string, a secret, a path).
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
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
    let error = Error::new(ErrorKind::Internal);
    let mut response = render(&error, None);
    response.extensions_mut().insert(error);
    response
}

/// Logs an error response made without an [`ApiError`] (axum's own, or a
/// bare status a handler returned): a 5xx at `error`, an input refusal (400,
/// 405, 413, 414, 415, 422, 431) as one `input_validation_fail` event, a
/// 401/403/429 as its refusal event (`reason = "handler"`): no core made
/// these refusals.
pub(crate) fn log_framework_refusal(kind: ErrorKind, status: u16) {
    let error = Error::new(kind);
    if error.unlogged_refusal().is_some() {
        log_unlogged_refusal(&error);
    } else if kind.status().is_server_error() {
        tracing::error!(code = kind.code(), status, "request failed");
    } else if is_input_refusal(kind) {
        tracing::info!(
            event = palisade_errors::SecurityEvent::InputValidationFail.as_str(),
            reason = kind.code(),
            status,
            "request refused by the framework"
        );
    } else {
        tracing::debug!(status, "framework error replaced by envelope");
    }
}

/// The refusals of malformed input that no core decides.
pub(crate) fn is_input_refusal(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::BadRequest
            | ErrorKind::MethodNotAllowed
            | ErrorKind::PayloadTooLarge
            | ErrorKind::UriTooLong
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::ValidationFailed
            | ErrorKind::HeadersTooLarge
    )
}
