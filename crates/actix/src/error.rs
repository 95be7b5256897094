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
    response.map_into_boxed_body()
}

pub(crate) fn to_actix_status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
