use std::borrow::Cow;
use std::sync::Arc;

use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;

use crate::{ErrorKind, RequestId};

/// Longest field path kept in a validation detail; longer ones are cut.
const MAX_FIELD_LEN: usize = 128;

/// A failure on its way to becoming an HTTP response.
///
/// The parts a client sees are the [`kind`](Self::kind) (status, code, message),
/// the extra response [`headers`](Self::headers) the kind needs and the
/// validation [`details`](Self::details). The [`source`](std::error::Error::source)
/// is for operators: adapters log it at the point of failure and it is never
/// serialized.
///
/// `Error` is cheap to clone (the source is shared), so adapters can keep it in
/// response extensions until the request id is known.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    headers: HeaderMap,
    details: Vec<FieldError>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    logged: bool,
}

/// One `{field, code}` pair of a validation failure.
///
/// It names the field and why it was refused, never the rejected value: echoing
/// input back is how reflected XSS and secret leaks into logs happen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    field: String,
    code: Cow<'static, str>,
}

impl FieldError {
    /// A detail for `field` (a path such as `items[2].email`) with a static,
    /// snake_case `code` such as `"too_long"`.
    ///
    /// Field paths can come from the request (an unknown JSON key), so control
    /// characters are dropped and the path is cut to 128 characters.
    pub fn new(field: impl AsRef<str>, code: &'static str) -> FieldError {
        let field = field
            .as_ref()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_FIELD_LEN)
            .collect();
        FieldError {
            field,
            code: Cow::Borrowed(code),
        }
    }

    /// The field path.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The machine-readable reason.
    pub fn code(&self) -> &str {
        &self.code
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: EnvelopeBody<'a>,
}

#[derive(Serialize)]
struct EnvelopeBody<'a> {
    code: &'static str,
    message: &'static str,
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    details: &'a [FieldError],
}

/// The `Retry-After` of a 503 that sets none of its own (see
/// [`Error::to_response`]).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

impl Error {
    /// An error of `kind` with no extra headers, details or source.
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            headers: HeaderMap::new(),
            details: Vec::new(),
            source: None,
            logged: false,
        }
    }

    /// A 405 carrying the `Allow` header (RFC 9110 §15.5.6 requires it).
    pub fn method_not_allowed<'m>(allowed: impl IntoIterator<Item = &'m Method>) -> Error {
        Error::new(ErrorKind::MethodNotAllowed).with_allow(allowed)
    }

    /// Attaches the internal cause. It is logged by the adapter, never sent.
    #[must_use]
    pub fn with_source<E>(mut self, source: E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.source = Some(Arc::new(source));
        self
    }

    /// Adds a response header (appended, so repeated names such as
    /// `WWW-Authenticate` challenges are kept). `Content-Type` and
    /// `Cache-Control` are always set by [`to_response`](Self::to_response).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Error {
        self.headers.append(name, value);
        self
    }

    /// Sets `Retry-After` in whole seconds.
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Error {
        self.headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        self
    }

    /// Sets `Allow` to the given methods, comma-separated.
    #[must_use]
    pub fn with_allow<'m>(mut self, allowed: impl IntoIterator<Item = &'m Method>) -> Error {
        let list = allowed
            .into_iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        // Invariant: method names are tokens, and tokens joined by ", " are a valid value.
        let value = HeaderValue::from_str(&list).expect("methods are header-safe tokens");
        self.headers.insert(ALLOW, value);
        self
    }

    /// Marks the error as reported: the code that decided this refusal has
    /// emitted its security event. A core calls it where it logs a denial
    /// (a rate-limit refusal, a refused token, an authorization failure, a
    /// refused preflight), so the adapters log a 401/403/429 that is not
    /// marked — one a handler returned itself — once, and a marked one never
    /// again: one refusal, one event. On a 5xx it says the failure was
    /// logged where it happened (a pool shedding a flood logs once a second
    /// with a count): the adapters then log the response at `debug`, not
    /// once more at `error` for every request.
    #[must_use]
    pub fn logged(mut self) -> Error {
        self.logged = true;
        self
    }

    /// Whether the decision's security event was already emitted (see
    /// [`logged`](Self::logged)).
    pub fn is_logged(&self) -> bool {
        self.logged
    }

    /// The security event an adapter emits for this error when nothing has
    /// logged it yet: `authn_token_invalid` for a 401, `authz_fail` for a
    /// 403 `forbidden`, `excess_rate_limit_exceeded` for a 429; `None` for
    /// any other kind and for an error already [`logged`](Self::logged).
    pub fn unlogged_refusal(&self) -> Option<crate::SecurityEvent> {
        if self.logged {
            return None;
        }
        match self.kind {
            ErrorKind::Unauthorized => Some(crate::SecurityEvent::AuthnTokenInvalid),
            ErrorKind::Forbidden => Some(crate::SecurityEvent::AuthzFail),
            ErrorKind::RateLimited => Some(crate::SecurityEvent::ExcessRateLimitExceeded),
            _ => None,
        }
    }

    /// Adds one `{field, code}` validation detail.
    #[must_use]
    pub fn with_detail(mut self, field: impl AsRef<str>, code: &'static str) -> Error {
        self.details.push(FieldError::new(field, code));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status of [`kind`](Self::kind).
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The extra response headers (Retry-After, WWW-Authenticate, Allow, ...).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Mutable access to the extra response headers.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The validation details, if any.
    pub fn details(&self) -> &[FieldError] {
        &self.details
    }

    /// The JSON envelope:
    /// `{"error":{"code":…,"message":…,"request_id":…}}`, plus `"details":[…]`
    /// when there are any. `request_id` is `null` when none is known.
    pub fn to_json(&self, request_id: Option<&RequestId>) -> Vec<u8> {
        let envelope = Envelope {
            error: EnvelopeBody {
                code: self.kind.code(),
                message: self.kind.message(),
                request_id: request_id.map(RequestId::as_str),
                details: &self.details,
            },
        };
        // Serializing plain strings into a Vec cannot fail; should it ever, send a
        // fixed body rather than nothing.
        serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"Internal server error","request_id":null}}"#
                .to_vec()
        })
    }

    /// The whole response: status, the extra headers, `Content-Type:
    /// application/json`, `Cache-Control: no-store` (an error must not be cached
    /// and replayed to another user) and, when known, `X-Request-Id`. A 503
    /// without a `Retry-After` of its own gets
    /// [`UNAVAILABLE_RETRY_AFTER_SECS`]: a store outage or a full pool is
    /// usually short, and a client told when to come back neither retries
    /// in a tight loop nor gives up for good.
    pub fn to_response(&self, request_id: Option<&RequestId>) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(self.to_json(request_id));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.extend(self.headers.clone());
        if self.kind == ErrorKind::Unavailable && !headers.contains_key(RETRY_AFTER) {
            headers.insert(RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS));
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(id) = request_id {
            headers.insert(crate::REQUEST_ID_HEADER, id.to_header_value());
        }
        response
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl std::fmt::Display for Error {
    /// The code and the safe message only; the source is reached through
    /// [`std::error::Error::source`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.kind.message())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
