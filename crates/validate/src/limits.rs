//! [`RequestLimits`]: the size limits of a request's head and body, as pure
//! checks over `http` types, and [`BodyLimit`], the counter both adapters
//! run a streamed body through.
//!
//! | limit | default | refusal |
//! |---|---|---|
//! | body (per route) | 1 MiB | 413 `body_too_large` (declared or streamed) |
//! | request target (path + query) | 8 KiB | 414 `uri_too_long` |
//! | header count | 100 | 431 `too_many_headers` |
//! | header bytes (names + values) | 32 KiB | 431 `headers_too_large` |
//! | one header value | 8 KiB | 431 `header_too_long` |
//! | query parameters | 100 | 400 `too_many_query_params` |
//!
//! A malformed `Content-Length` (not digits, or two that differ) is 400
//! `bad_content_length`: a request whose framing is ambiguous is refused
//! rather than guessed at (request smuggling).

use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http::{HeaderMap, Uri};
use palisade_errors::ErrorKind;
use serde::Deserialize;

use crate::{ConfigError, ConfigErrorKind, Refusal};

/// The default body cap: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// The default limit on header names and values together: 32 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// The default number of header fields: 100.
pub const DEFAULT_MAX_HEADER_COUNT: usize = 100;
/// The default limit on one header value: 8 KiB.
pub const DEFAULT_MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// The default limit on the request target (path and query): 8 KiB.
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
/// The default number of query parameters: 100.
pub const DEFAULT_MAX_QUERY_PARAMS: usize = 100;

/// The largest head limit accepted (header bytes, value, target): 1 MiB.
/// Above it a limit protects nothing.
pub const HARD_MAX_HEAD_BYTES: usize = 1024 * 1024;
/// The largest header count or query parameter count accepted.
pub const HARD_MAX_COUNT: usize = 10_000;

/// A request path pattern: `/exact` matches that path only, `/prefix/*`
/// matches every path under `/prefix/` (and `/prefix/` itself).
///
/// Matched byte for byte against the path as received (no percent-decoding,
/// no dot-segment removal, case-sensitive): the way both routers see it.
/// A request that spells a path differently (`/upload%73`) does not match,
/// and gets the default, which is always the stricter side when the pattern
/// widens a limit or grants an exemption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    path: String,
    prefix: bool,
}

impl PathPattern {
    /// Parses `/exact` or `/prefix/*`; anything not starting with `/`, or
    /// with a `*` elsewhere, is an [`InvalidLimit`](ConfigErrorKind::InvalidLimit).
    pub fn parse(pattern: &str) -> Result<PathPattern, ConfigError> {
        let invalid = || {
            ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "path pattern: must be `/exact` or `/prefix/*`",
            )
        };
        if !pattern.starts_with('/') {
            return Err(invalid());
        }
        let (path, prefix) = match pattern.strip_suffix("/*") {
            Some(stem) => (format!("{stem}/"), true),
            None => (pattern.to_owned(), false),
        };
        if path.contains('*') || path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid());
        }
        Ok(PathPattern { path, prefix })
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        if self.prefix {
            path.starts_with(&self.path)
        } else {
            path == self.path
        }
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PathPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A body cap for the routes matching a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteBodyCap {
    /// The routes.
    pub path: PathPattern,
    /// Their body cap in bytes.
    pub max_body_bytes: u64,
}

/// The size limits of a request (see the [module docs](self) for the table).
///
/// ```
/// use palisade_validate::limits::RequestLimits;
///
/// let limits = RequestLimits::builder()
///     .body_cap_for("/uploads/*", 10 * 1024 * 1024)?
///     .build()?;
/// assert_eq!(limits.body_cap("/uploads/avatar"), 10 * 1024 * 1024);
/// assert_eq!(limits.body_cap("/items"), 1024 * 1024);
/// # Ok::<(), palisade_validate::ConfigError>(())
/// ```
///
/// From a config file (`serde`), checked the same way as the builder:
///
/// ```
/// use palisade_validate::limits::RequestLimits;
///
/// let limits: RequestLimits = serde_json::from_str(
///     r#"{"max_header_count": 50,
///         "body_routes": [{"path": "/uploads/*", "max_body_bytes": 10485760}]}"#,
/// )?;
/// assert_eq!(limits.max_header_count(), 50);
/// assert!(serde_json::from_str::<RequestLimits>(r#"{"max_body_bytes": 0}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RequestLimitsBuilder")]
pub struct RequestLimits {
    max_body_bytes: u64,
    body_routes: Vec<RouteBodyCap>,
    max_header_bytes: usize,
    max_header_count: usize,
    max_header_value_bytes: usize,
    max_uri_bytes: usize,
    max_query_params: usize,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_routes: Vec::new(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_header_count: DEFAULT_MAX_HEADER_COUNT,
            max_header_value_bytes: DEFAULT_MAX_HEADER_VALUE_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_query_params: DEFAULT_MAX_QUERY_PARAMS,
        }
    }
}

/// Builds [`RequestLimits`] from the defaults; [`build`](Self::build)
/// refuses a zero limit or one above the hard maxima.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestLimitsBuilder {
    max_body_bytes: Option<u64>,
    body_routes: Vec<RouteBodyCap>,
    max_header_bytes: Option<usize>,
    max_header_count: Option<usize>,
    max_header_value_bytes: Option<usize>,
    max_uri_bytes: Option<usize>,
    max_query_params: Option<usize>,
}

impl RequestLimitsBuilder {
    /// The body cap of every route without its own.
    pub fn max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// The body cap of the routes matching `pattern` ([`PathPattern`]); the
    /// first matching pattern wins.
    pub fn body_cap_for(mut self, pattern: &str, bytes: u64) -> Result<Self, ConfigError> {
        self.body_routes.push(RouteBodyCap {
            path: PathPattern::parse(pattern)?,
            max_body_bytes: bytes,
        });
        Ok(self)
    }

    /// Header names and values together.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = Some(bytes);
        self
    }

    /// Header fields.
    pub fn max_header_count(mut self, count: usize) -> Self {
        self.max_header_count = Some(count);
        self
    }

    /// One header value.
    pub fn max_header_value_bytes(mut self, bytes: usize) -> Self {
        self.max_header_value_bytes = Some(bytes);
        self
    }

    /// The request target (path and query).
    pub fn max_uri_bytes(mut self, bytes: usize) -> Self {
        self.max_uri_bytes = Some(bytes);
        self
    }

    /// Query parameters (`&`-separated pairs).
    pub fn max_query_params(mut self, count: usize) -> Self {
        self.max_query_params = Some(count);
        self
    }

    /// The limits, or which one cannot work.
    pub fn build(self) -> Result<RequestLimits, ConfigError> {
        let d = RequestLimits::default();
        let limits = RequestLimits {
            max_body_bytes: self.max_body_bytes.unwrap_or(d.max_body_bytes),
            body_routes: self.body_routes,
            max_header_bytes: self.max_header_bytes.unwrap_or(d.max_header_bytes),
            max_header_count: self.max_header_count.unwrap_or(d.max_header_count),
            max_header_value_bytes: self
                .max_header_value_bytes
                .unwrap_or(d.max_header_value_bytes),
            max_uri_bytes: self.max_uri_bytes.unwrap_or(d.max_uri_bytes),
            max_query_params: self.max_query_params.unwrap_or(d.max_query_params),
        };
        let bad = |detail| Err(ConfigError::new(ConfigErrorKind::InvalidLimit, detail));
        if limits.max_body_bytes == 0 || limits.body_routes.iter().any(|r| r.max_body_bytes == 0) {
            return bad("max_body_bytes: must be greater than zero");
        }
        for (value, name) in [
            (
                limits.max_header_bytes,
                "max_header_bytes: must be 1..=1 MiB",
            ),
            (
                limits.max_header_value_bytes,
                "max_header_value_bytes: must be 1..=1 MiB",
            ),
            (limits.max_uri_bytes, "max_uri_bytes: must be 1..=1 MiB"),
        ] {
            if value == 0 || value > HARD_MAX_HEAD_BYTES {
                return bad(name);
            }
        }
        for (value, name) in [
            (
                limits.max_header_count,
                "max_header_count: must be 1..=10000",
            ),
            (
                limits.max_query_params,
                "max_query_params: must be 1..=10000",
            ),
        ] {
            if value == 0 || value > HARD_MAX_COUNT {
                return bad(name);
            }
        }
        Ok(limits)
    }
}

impl TryFrom<RequestLimitsBuilder> for RequestLimits {
    type Error = ConfigError;

    fn try_from(builder: RequestLimitsBuilder) -> Result<RequestLimits, ConfigError> {
        builder.build()
    }
}

impl RequestLimits {
    /// A builder starting from the defaults.
    pub fn builder() -> RequestLimitsBuilder {
        RequestLimitsBuilder::default()
    }

    /// The body cap of `path`: the first matching route cap, else the default.
    pub fn body_cap(&self, path: &str) -> u64 {
        self.body_routes
            .iter()
            .find(|route| route.path.matches(path))
            .map_or(self.max_body_bytes, |route| route.max_body_bytes)
    }

    /// The largest body cap of any route (what a server in front must let through).
    pub fn largest_body_cap(&self) -> u64 {
        self.body_routes
            .iter()
            .map(|route| route.max_body_bytes)
            .fold(self.max_body_bytes, u64::max)
    }

    /// Header names and values together.
    pub fn max_header_bytes(&self) -> usize {
        self.max_header_bytes
    }

    /// Header fields.
    pub fn max_header_count(&self) -> usize {
        self.max_header_count
    }

    /// One header value.
    pub fn max_header_value_bytes(&self) -> usize {
        self.max_header_value_bytes
    }

    /// The request target (path and query).
    pub fn max_uri_bytes(&self) -> usize {
        self.max_uri_bytes
    }

    /// Query parameters.
    pub fn max_query_params(&self) -> usize {
        self.max_query_params
    }

    /// Every head check: [`check_uri`](Self::check_uri), then
    /// [`check_headers`](Self::check_headers).
    pub fn check_head(&self, parts: &Parts) -> Result<(), Refusal> {
        self.check_uri(&parts.uri)?;
        self.check_headers(&parts.headers)
    }

    /// The request target's length (414) and its query parameter count (400).
    pub fn check_uri(&self, uri: &Uri) -> Result<(), Refusal> {
        let target = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
        if target > self.max_uri_bytes {
            return Err(Refusal::new(ErrorKind::UriTooLong, "uri_too_long", "uri"));
        }
        let params = uri.query().map_or(0, |query| {
            query.split('&').filter(|p| !p.is_empty()).count()
        });
        if params > self.max_query_params {
            return Err(Refusal::new(
                ErrorKind::BadRequest,
                "too_many_query_params",
                "query",
            ));
        }
        Ok(())
    }

    /// Header count, total bytes and each value's length (431). The field
    /// of a too-long value names its header.
    pub fn check_headers(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if headers.len() > self.max_header_count {
            return Err(Refusal::new(
                ErrorKind::HeadersTooLarge,
                "too_many_headers",
                "headers",
            ));
        }
        let mut total = 0usize;
        for (name, value) in headers {
            if value.len() > self.max_header_value_bytes {
                return Err(Refusal::new(
                    ErrorKind::HeadersTooLarge,
                    "header_too_long",
                    header_field(name.as_str()),
                ));
            }
            total = total.saturating_add(name.as_str().len() + value.len());
        }
        if total > self.max_header_bytes {
            return Err(Refusal::new(
                ErrorKind::HeadersTooLarge,
                "headers_too_large",
                "headers",
            ));
        }
        Ok(())
    }

    /// The body counter for this request: its route's cap, and the declared
    /// `Content-Length` checked against it before any byte is read (413;
    /// a malformed or ambiguous length is 400).
    pub fn body_limit(&self, parts: &Parts) -> Result<BodyLimit, Refusal> {
        let limit = BodyLimit::new(self.body_cap(parts.uri.path()));
        limit.check_declared(&parts.headers)?;
        Ok(limit)
    }
}

/// Counts a streamed body against its cap. An adapter feeds it every chunk
/// as it arrives ([`record`](Self::record)) and stops reading at the first
/// refusal, so a chunked or lying body is cut off at the cap and never
/// buffered whole.
///
/// ```
/// use palisade_validate::limits::BodyLimit;
///
/// let mut limit = BodyLimit::new(10);
/// assert!(limit.record(6).is_ok());
/// let refusal = limit.record(6).unwrap_err();
/// assert_eq!(refusal.reason(), "body_too_large");
/// assert!(limit.exceeded());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyLimit {
    cap: u64,
    received: u64,
    exceeded: bool,
}

impl BodyLimit {
    /// A counter for a body of at most `cap` bytes.
    pub fn new(cap: u64) -> BodyLimit {
        BodyLimit {
            cap,
            received: 0,
            exceeded: false,
        }
    }

    /// The cap.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// The bytes counted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the body went over the cap.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Refuses a declared `Content-Length` over the cap (413) or one that is
    /// malformed or given twice with different values (400).
    pub fn check_declared(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut declared: Option<u64> = None;
        for value in headers.get_all(CONTENT_LENGTH) {
            let bytes = value.as_bytes();
            let parsed =
                (!bytes.is_empty() && bytes.len() <= 20 && bytes.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(bytes).ok()?.parse::<u64>().ok())
                    .flatten();
            match (parsed, declared) {
                (None, _) => return Err(bad_length()),
                (Some(length), Some(previous)) if length != previous => return Err(bad_length()),
                (Some(length), _) => declared = Some(length),
            }
        }
        match declared {
            Some(length) if length > self.cap => Err(Refusal::new(
                ErrorKind::PayloadTooLarge,
                "body_too_large",
                "body",
            )),
            _ => Ok(()),
        }
    }

    /// Counts `bytes` more; the first chunk that takes the body over the cap
    /// is refused (413, logged once), and so is every later one.
    pub fn record(&mut self, bytes: usize) -> Result<(), Refusal> {
        let was_exceeded = self.exceeded;
        self.received = self.received.saturating_add(bytes as u64);
        if self.received <= self.cap {
            return Ok(());
        }
        self.exceeded = true;
        if was_exceeded {
            // Already logged: one refusal, one event.
            return Err(Refusal::silent(
                ErrorKind::PayloadTooLarge,
                "body_too_large",
                "body",
            ));
        }
        Err(Refusal::new(
            ErrorKind::PayloadTooLarge,
            "body_too_large",
            "body",
        ))
    }
}

/// A body an adapter's own reader found over its cap (413), logged.
pub fn body_too_large() -> Refusal {
    Refusal::new(ErrorKind::PayloadTooLarge, "body_too_large", "body")
}

/// A body that ended early or broke off while being read (400), logged.
pub fn body_unreadable() -> Refusal {
    Refusal::new(ErrorKind::BadRequest, "body_unreadable", "body")
}

/// A request head an adapter could not convert to `http` types (a target
/// or header the server accepted but `http` refuses): 400, logged. An
/// adapter refuses it rather than checking a default in its place.
pub fn head_unconvertible() -> Refusal {
    Refusal::new(ErrorKind::BadRequest, "head_unconvertible", "head")
}

/// The field naming a too-long header: `header:<name>`, the name cut to
/// [`MAX_FIELD_NAME_CHARS`] characters (the name is the client's and may be
/// kilobytes long; the event and the envelope stay short).
fn header_field(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_NAME_CHARS)
        .collect();
    format!("header:{name}")
}

/// The most characters of a header name a refusal's field carries.
pub const MAX_FIELD_NAME_CHARS: usize = 64;

fn bad_length() -> Refusal {
    Refusal::new(
        ErrorKind::BadRequest,
        "bad_content_length",
        "content-length",
    )
}
