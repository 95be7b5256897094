use http::StatusCode;

/// What went wrong, in the words a client may see.
///
/// Each kind has exactly one HTTP status, one stable snake_case [`code`](Self::code)
/// and one fixed, safe [`message`](Self::message). The rule of thumb for choosing:
/// a syntax error (malformed JSON, a bad header) is [`BadRequest`](Self::BadRequest),
/// well-formed but invalid input is [`ValidationFailed`](Self::ValidationFailed),
/// a malformed path id is [`NotFound`](Self::NotFound) (an id that cannot exist is
/// not found: answering 400 would tell a prober which ids are syntactically real),
/// and a handler timeout is [`Unavailable`](Self::Unavailable).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 400: the request could not be parsed (malformed JSON, a bad header).
    BadRequest,
    /// 401: credentials are missing or invalid.
    Unauthorized,
    /// 403: the caller is known but not allowed to do this.
    Forbidden,
    /// 403: a CORS preflight from an origin, method or header the policy does not allow.
    CorsRejected,
    /// 404: no such resource (also a malformed path id).
    NotFound,
    /// 405: the resource exists but not with this method; carries `Allow`.
    MethodNotAllowed,
    /// 408: the request body stalled past its read deadline.
    RequestTimeout,
    /// 409: the request conflicts with the resource's current state.
    Conflict,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 414: the request target is longer than the configured limit.
    UriTooLong,
    /// 415: the body's media type is not accepted.
    UnsupportedMediaType,
    /// 422: the request is well-formed but its content is invalid.
    ValidationFailed,
    /// 429: a rate limit or login throttle refused the request; carries `Retry-After`.
    RateLimited,
    /// 431: the request headers are larger than the configured limit.
    HeadersTooLarge,
    /// 500: something failed on the server; the detail is in the logs only.
    Internal,
    /// 503: a dependency is down or the handler timed out.
    Unavailable,
}

impl ErrorKind {
    /// Every kind, in status order. Handy for exhaustive tests and metrics registration.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::BadRequest,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::CorsRejected,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::RequestTimeout,
        ErrorKind::Conflict,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UriTooLong,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::ValidationFailed,
        ErrorKind::RateLimited,
        ErrorKind::HeadersTooLarge,
        ErrorKind::Internal,
        ErrorKind::Unavailable,
    ];

    /// The one HTTP status of this kind.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden | ErrorKind::CorsRejected => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code (snake_case). Clients may match on it.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::CorsRejected => "cors_rejected",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UriTooLong => "uri_too_long",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::ValidationFailed => "validation_failed",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
        }
    }

    /// The fixed, safe sentence sent with this kind. It never varies with input.
    pub const fn message(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "The request is malformed",
            ErrorKind::Unauthorized => "Authentication is required",
            ErrorKind::Forbidden => "You are not allowed to do this",
            ErrorKind::CorsRejected => "Cross-origin request not allowed",
            ErrorKind::NotFound => "Resource not found",
            ErrorKind::MethodNotAllowed => "Method not allowed",
            ErrorKind::RequestTimeout => "The request took too long to arrive",
            ErrorKind::Conflict => "The request conflicts with the current state",
            ErrorKind::PayloadTooLarge => "Request body too large",
            ErrorKind::UriTooLong => "Request URI too long",
            ErrorKind::UnsupportedMediaType => "Unsupported media type",
            ErrorKind::ValidationFailed => "The request is invalid",
            ErrorKind::RateLimited => "Too many requests",
            ErrorKind::HeadersTooLarge => "Request headers too large",
            ErrorKind::Internal => "Internal server error",
            ErrorKind::Unavailable => "Service temporarily unavailable",
        }
    }

    /// The kind for a bare error status produced by a framework (its default 404,
    /// 405 or body-limit response), so that it can be replaced by the envelope.
    ///
    /// Statuses with no kind of their own map to [`BadRequest`](Self::BadRequest)
    /// (other 4xx) or [`Internal`](Self::Internal) (other 5xx); `None` for
    /// non-error statuses.
    pub fn from_status(status: StatusCode) -> Option<ErrorKind> {
        if !(status.is_client_error() || status.is_server_error()) {
            return None;
        }
        if let Some(kind) = Self::ALL.iter().copied().find(|kind| {
            kind.status() == status && *kind != ErrorKind::CorsRejected // 403 is `forbidden`
        }) {
            return Some(kind);
        }
        Some(if status.is_client_error() {
            ErrorKind::BadRequest
        } else {
            ErrorKind::Internal
        })
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
