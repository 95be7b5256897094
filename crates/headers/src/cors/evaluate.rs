//! Evaluating a request against a [`CorsPolicy`]: the preflight answer or
//! refusal, and the [`CorsResponse`] headers of a forwarded request.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use palisade_errors::{Error, ErrorKind, SecurityEvent};

use super::policy::AllowedOrigins;
use super::{CorsPolicy, Origin, log_safe};
use crate::HeaderSink;
use crate::sink::lists_token;

/// CORS-safelisted methods (Fetch §2.2.1): a browser never needs a preflight's
/// permission to use them, so refusing them in a preflight protects nothing.
const SAFELISTED_METHODS: [&[u8]; 3] = [b"GET", b"HEAD", b"POST"];
/// CORS-safelisted request-header names (Fetch §2.2.2). Fetch safelists them
/// subject to value rules (a `Content-Type` of `application/json` is not
/// safelisted and so appears in `Access-Control-Request-Headers`); they are
/// accepted by name, as the headers every API needs.
pub(super) const SAFELISTED_HEADERS: [&str; 4] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];

fn allow_private_network_header() -> HeaderName {
    HeaderName::from_static("access-control-allow-private-network")
}

fn request_private_network_header() -> HeaderName {
    HeaderName::from_static("access-control-request-private-network")
}

/// `Vary` of a preflight answer (allowed or refused): the answer depends on
/// all three request headers.
fn preflight_vary() -> HeaderValue {
    HeaderValue::from_static(
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network",
    )
}

impl CorsPolicy {
    /// Decides what to do with a request, per the Fetch standard's CORS protocol.
    ///
    /// - A request with exactly one `Origin` header, method `OPTIONS` and an
    ///   `Access-Control-Request-Method` header is a preflight: answered here
    ///   ([`CorsDecision::PreflightAllowed`]) when the origin, the method and
    ///   every requested header are allowed, refused with a 403
    ///   ([`CorsDecision::PreflightRejected`]) otherwise.
    /// - Everything else, including an `OPTIONS` without
    ///   `Access-Control-Request-Method` and requests without `Origin`, goes
    ///   to the application ([`CorsDecision::Forward`]); the
    ///   [`CorsResponse`] says what to add to its response.
    ///
    /// A request with more than one `Origin` header is treated as coming from
    /// an origin that is not allowed: a browser sends one, and two let one
    /// layer check the first while another echoes the second.
    pub fn evaluate(&self, method: &Method, headers: &HeaderMap) -> CorsDecision {
        let origin = RequestOrigin::of(headers);
        let preflight = *method == Method::OPTIONS
            && !matches!(origin, RequestOrigin::Absent)
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            return self.preflight(origin, headers);
        }
        match self.allow_origin_value(origin) {
            Ok(allow_origin) => CorsDecision::Forward(CorsResponse {
                allow_origin: Some(allow_origin),
                allow_credentials: self.credentials,
                expose_headers: self.expose_headers.clone(),
            }),
            Err(rejection) => {
                if !matches!(origin, RequestOrigin::Absent) {
                    // Debug, not info: cross-site form posts and fetches are
                    // ordinary traffic; the missing CORS headers are the
                    // refusal, and the browser enforces it.
                    tracing::debug!(
                        event = SecurityEvent::MaliciousCors.as_str(),
                        reason = rejection.reason(),
                        origin = origin.for_log().as_deref(),
                        "cross-origin request forwarded without CORS headers"
                    );
                }
                CorsDecision::Forward(CorsResponse::not_allowed())
            }
        }
    }

    /// The `Access-Control-Allow-Origin` value for an allowed request origin:
    /// the exact bytes the browser sent (its CORS check compares them byte
    /// for byte), or `*` in any-origin mode.
    fn allow_origin_value(&self, origin: RequestOrigin<'_>) -> Result<HeaderValue, Rejection> {
        let value = match origin {
            RequestOrigin::Absent => return Err(Rejection::NoOrigin),
            RequestOrigin::Several => return Err(Rejection::SeveralOrigins),
            RequestOrigin::One(value) => value,
        };
        if matches!(self.origins, AllowedOrigins::Any) {
            // Any origin may read: even `null` or garbage gets `*`, which
            // carries no credentials and names no one.
            return Ok(HeaderValue::from_static("*"));
        }
        match Origin::from_header(value) {
            Some(parsed) if self.allows_origin(&parsed) => Ok(value.clone()),
            _ if value.as_bytes() == b"null" => Err(Rejection::NullOrigin),
            _ => Err(Rejection::Origin),
        }
    }

    fn preflight(&self, origin: RequestOrigin<'_>, request: &HeaderMap) -> CorsDecision {
        let allow_origin = match self.allow_origin_value(origin) {
            Ok(value) => value,
            Err(rejection) => return self.reject(rejection, origin, None),
        };
        if let Err(method) = self.check_method(request) {
            return self.reject(Rejection::Method, origin, Some(method));
        }
        if let Err(header) = self.check_headers(request) {
            return self.reject(Rejection::Header, origin, Some(header));
        }
        let mut response = HeaderMap::with_capacity(8);
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.credentials {
            response.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(methods) = &self.allow_methods {
            response.insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
        }
        if let Some(headers) = &self.allow_headers {
            response.insert(ACCESS_CONTROL_ALLOW_HEADERS, headers.clone());
        }
        response.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        // Private Network Access: a public site may reach a server on the
        // user's LAN or loopback only if that server opts in, per request.
        let asks_private_network = request
            .get(request_private_network_header())
            .is_some_and(|value| value.as_bytes() == b"true");
        if asks_private_network {
            if self.private_network {
                response.insert(
                    allow_private_network_header(),
                    HeaderValue::from_static("true"),
                );
            } else {
                // Answered without the permission, so a browser enforcing
                // Private Network Access fails the preflight.
                tracing::debug!(
                    event = SecurityEvent::MaliciousCors.as_str(),
                    reason = Rejection::PrivateNetwork.reason(),
                    origin = origin.for_log().as_deref(),
                    "CORS preflight answered without private network access"
                );
            }
        }
        response.insert(VARY, preflight_vary());
        CorsDecision::PreflightAllowed(response)
    }

    /// The requested method must be exactly one allowed method. Fetch compares
    /// methods byte for byte: it upper-cases only DELETE, GET, HEAD, OPTIONS,
    /// POST and PUT before sending, so a lowercase `put` is never a browser's
    /// PUT and is refused.
    fn check_method<'h>(&self, request: &'h HeaderMap) -> Result<(), &'h [u8]> {
        let mut values = request.get_all(ACCESS_CONTROL_REQUEST_METHOD).iter();
        let requested = match (values.next(), values.next()) {
            (Some(value), None) => value.as_bytes(),
            (Some(value), Some(_)) => return Err(value.as_bytes()),
            (None, _) => return Err(b""),
        };
        let allowed = SAFELISTED_METHODS.contains(&requested)
            || self
                .methods
                .iter()
                .any(|method| method.as_str().as_bytes() == requested);
        if allowed { Ok(()) } else { Err(requested) }
    }

    /// Every name in every `Access-Control-Request-Headers` line must be
    /// allowed (names are case-insensitive; empty list items are skipped as
    /// RFC 9110 §5.6.1 asks).
    fn check_headers<'h>(&self, request: &'h HeaderMap) -> Result<(), &'h [u8]> {
        for line in request.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            for item in line.as_bytes().split(|&b| b == b',') {
                let name = item.trim_ascii();
                if name.is_empty() {
                    continue;
                }
                let allowed = SAFELISTED_HEADERS
                    .iter()
                    .any(|safe| name.eq_ignore_ascii_case(safe.as_bytes()))
                    || self
                        .headers
                        .iter()
                        .any(|allowed| name.eq_ignore_ascii_case(allowed.as_str().as_bytes()));
                if !allowed {
                    return Err(name);
                }
            }
        }
        Ok(())
    }

    fn reject(
        &self,
        rejection: Rejection,
        origin: RequestOrigin<'_>,
        detail: Option<&[u8]>,
    ) -> CorsDecision {
        tracing::info!(
            event = SecurityEvent::MaliciousCors.as_str(),
            reason = rejection.reason(),
            origin = origin.for_log().as_deref(),
            detail = detail.map(log_safe).as_deref(),
            "CORS preflight rejected"
        );
        // No Access-Control-Allow-Origin: the browser fails the preflight and
        // the page learns nothing but that it failed.
        CorsDecision::PreflightRejected(
            Error::new(ErrorKind::CorsRejected)
                .with_header(VARY, preflight_vary())
                .logged(),
        )
    }
}

/// The `Origin` header(s) of a request.
#[derive(Clone, Copy)]
enum RequestOrigin<'h> {
    Absent,
    One(&'h HeaderValue),
    Several,
}

impl<'h> RequestOrigin<'h> {
    fn of(headers: &'h HeaderMap) -> RequestOrigin<'h> {
        let mut values = headers.get_all(ORIGIN).iter();
        match (values.next(), values.next()) {
            (None, _) => RequestOrigin::Absent,
            (Some(value), None) => RequestOrigin::One(value),
            (Some(_), Some(_)) => RequestOrigin::Several,
        }
    }

    /// The origin for a log line: cut to 128 characters, control characters
    /// and non-ASCII bytes escaped (see [`log_safe`]), so it cannot forge
    /// log lines.
    fn for_log(self) -> Option<String> {
        match self {
            RequestOrigin::One(value) => Some(log_safe(value.as_bytes())),
            RequestOrigin::Absent | RequestOrigin::Several => None,
        }
    }
}

/// Why a request gets no CORS permission.
#[derive(Clone, Copy, Debug)]
enum Rejection {
    NoOrigin,
    SeveralOrigins,
    NullOrigin,
    Origin,
    Method,
    Header,
    PrivateNetwork,
}

impl Rejection {
    /// The `reason` field of the `malicious_cors` event: stable snake_case,
    /// for SIEM rules.
    fn reason(self) -> &'static str {
        match self {
            Rejection::NoOrigin => "no_origin",
            Rejection::SeveralOrigins => "several_origins",
            Rejection::NullOrigin => "null_origin",
            Rejection::Origin => "origin_not_allowed",
            Rejection::Method => "method_not_allowed",
            Rejection::Header => "header_not_allowed",
            Rejection::PrivateNetwork => "private_network_not_allowed",
        }
    }
}

/// What [`CorsPolicy::evaluate`] decided.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method, header};
/// use palisade_headers::{CorsDecision, CorsPolicy};
///
/// let policy = CorsPolicy::builder().allow_origin("https://app.example.com").build()?;
/// let mut request = HeaderMap::new();
/// request.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example.net"));
/// request.insert(header::ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("DELETE"));
/// match policy.evaluate(&Method::OPTIONS, &request) {
///     CorsDecision::PreflightRejected(error) => assert_eq!(error.status(), 403),
///     other => panic!("expected a rejection, got {other:?}"),
/// }
/// # Ok::<(), palisade_headers::ConfigError>(())
/// ```
#[must_use]
#[derive(Clone, Debug)]
pub enum CorsDecision {
    /// A preflight that passed: answer it (204) with exactly these headers,
    /// without calling the application.
    PreflightAllowed(HeaderMap),
    /// A preflight that failed: answer with this 403 (`cors_rejected`),
    /// whose headers carry `Vary` and no `Access-Control-Allow-Origin`.
    PreflightRejected(Error),
    /// Not a preflight: call the application, then
    /// [`apply`](CorsResponse::apply) these headers to its response.
    Forward(CorsResponse),
}

/// The CORS headers for the response to a forwarded (non-preflight) request.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method, header};
/// use palisade_headers::{CorsDecision, CorsPolicy};
///
/// let policy = CorsPolicy::builder().allow_origin("https://app.example.com").build()?;
/// // A same-origin request: no Origin header, no CORS headers, but `Vary`
/// // so a cache keeps it apart from the cross-origin answers.
/// let CorsDecision::Forward(cors) = policy.evaluate(&Method::GET, &HeaderMap::new()) else {
///     unreachable!();
/// };
/// assert!(cors.allow_origin().is_none());
/// let mut response = HeaderMap::new();
/// response.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
/// cors.apply(&mut response);
/// let vary: Vec<_> = response.get_all(header::VARY).iter().collect();
/// assert_eq!(vary, ["Accept-Encoding", "Origin"]);
/// # Ok::<(), palisade_headers::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CorsResponse {
    allow_origin: Option<HeaderValue>,
    allow_credentials: bool,
    expose_headers: Option<HeaderValue>,
}

impl CorsResponse {
    fn not_allowed() -> CorsResponse {
        CorsResponse {
            allow_origin: None,
            allow_credentials: false,
            expose_headers: None,
        }
    }

    /// The `Access-Control-Allow-Origin` value, when the request's origin is allowed.
    pub fn allow_origin(&self) -> Option<&HeaderValue> {
        self.allow_origin.as_ref()
    }

    /// Writes the CORS headers into the application's response.
    ///
    /// The policy is the only authority on CORS: when the origin is allowed,
    /// `Access-Control-Allow-Origin`, `-Allow-Credentials` and `-Expose-Headers`
    /// replace whatever the handler set (or are removed when the policy does
    /// not send them); when it is not, the handler's are removed, so a handler
    /// that reflects `Origin` cannot open the API to every site.
    ///
    /// `Vary` always ends up listing `Origin` (unless it is `*`): the response
    /// depends on the `Origin` header, and a shared cache that ignored that
    /// would hand one origin's permission, or its absence, to another.
    pub fn apply(&self, headers: &mut (impl HeaderSink + ?Sized)) {
        match &self.allow_origin {
            Some(origin) => {
                headers.insert(&ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                if self.allow_credentials {
                    headers.insert(
                        &ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        &HeaderValue::from_static("true"),
                    );
                } else {
                    headers.remove(&ACCESS_CONTROL_ALLOW_CREDENTIALS);
                }
                match &self.expose_headers {
                    Some(expose) => headers.insert(&ACCESS_CONTROL_EXPOSE_HEADERS, expose),
                    None => headers.remove(&ACCESS_CONTROL_EXPOSE_HEADERS),
                }
            }
            None => {
                headers.remove(&ACCESS_CONTROL_ALLOW_ORIGIN);
                headers.remove(&ACCESS_CONTROL_ALLOW_CREDENTIALS);
                headers.remove(&ACCESS_CONTROL_EXPOSE_HEADERS);
            }
        }
        let covered = headers.any_value(&VARY, &mut |value| {
            lists_token(value, "*") || lists_token(value, "origin")
        });
        if !covered {
            // A separate `Vary` line is the same as a list item (RFC 9110 §5.3).
            headers.append(&VARY, &HeaderValue::from_static("Origin"));
        }
    }
}
