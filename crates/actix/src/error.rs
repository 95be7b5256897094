use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use palisade_errors::{Error, ErrorKind, RequestId};

/// A [`palisade_errors::Error`] that actix-web handlers and extractors can return.
///
/// Its response carries the envelope with `request_id: null`; the
/// [`Harden`](crate::Harden) middleware fills in the request id on the way out.
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

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        to_actix_status(self.0.status())
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        render(&self.0, None)
    }
}

/// Renders the envelope response. actix-web 4 is built on `http` 0.2, so the
/// `http` 1 response of `palisade-errors` is copied over by name and bytes.
pub(crate) fn render(error: &Error, request_id: Option<&RequestId>) -> HttpResponse<BoxBody> {
    let (parts, body) = error.to_response(request_id).into_parts();
    let mut response = HttpResponse::with_body(to_actix_status(parts.status), body);
    for (name, value) in &parts.headers {
        // Invariant: these names and values were valid `http` 1 headers, and
        // both crates accept the same bytes.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    if parts.status == http::StatusCode::PAYLOAD_TOO_LARGE {
        // Request smuggling: the rest of a refused body must never be read
        // as the next request on this connection (RFC 9110 §15.5.14).
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    response.map_into_boxed_body()
}

pub(crate) fn to_actix_status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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

/// Logs an error response no core decided (actix's own refusals, a bare
/// status a handler returned): a 5xx at `error` with its source, an input
/// refusal (400, 405, 413, 414, 415, 422, 431) as one
/// `input_validation_fail` event (the source, which can quote the input,
/// only at `debug`), a 401/403/429 as its refusal event.
pub(crate) fn log_framework_refusal(error: &Error, status: u16) {
    log_unlogged_refusal(error);
    let kind = error.kind();
    let source = std::error::Error::source(error).map(ToString::to_string);
    if kind.status().is_server_error() {
        tracing::error!(
            code = kind.code(),
            status,
            source = source.as_deref(),
            "request failed"
        );
        return;
    }
    if let Some(source) = &source {
        tracing::debug!(code = kind.code(), %source, "request refused");
    }
    if matches!(
        kind,
        ErrorKind::BadRequest
            | ErrorKind::MethodNotAllowed
            | ErrorKind::PayloadTooLarge
            | ErrorKind::UriTooLong
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::ValidationFailed
            | ErrorKind::HeadersTooLarge
    ) {
        tracing::info!(
            event = palisade_errors::SecurityEvent::InputValidationFail.as_str(),
            reason = kind.code(),
            status,
            "request refused by the framework"
        );
    }
}

/// The methods of `Allow` header lines in the order both adapters use
/// (`GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`, then others by name),
/// HEAD added wherever GET is (both adapters answer HEAD for GET routes).
pub(crate) fn canonical_allow<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<http::Method> {
    const ORDER: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let mut methods: Vec<http::Method> = Vec::new();
    for line in lines {
        for item in std::str::from_utf8(line).unwrap_or_default().split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if let Ok(method) = http::Method::from_bytes(item.as_bytes())
                && !methods.contains(&method)
            {
                methods.push(method);
            }
        }
    }
    if methods.contains(&http::Method::GET) && !methods.contains(&http::Method::HEAD) {
        methods.push(http::Method::HEAD);
    }
    let rank = |method: &http::Method| {
        ORDER
            .iter()
            .position(|name| *name == method.as_str())
            .unwrap_or(ORDER.len())
    };
    methods.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.as_str().cmp(b.as_str()))
    });
    methods
}
