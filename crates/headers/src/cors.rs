//! Strict CORS, following the Fetch standard's CORS protocol.
//!
//! CORS does not protect the server: any non-browser client sends whatever it
//! likes. It decides which *web pages* a user's browser lets read responses
//! (and, with credentials, responses made with the user's cookies). A policy
//! that lets the wrong origin in hands that origin the user's data, so:
//!
//! - origins are parsed into [`Origin`] and compared whole (scheme, host and
//!   port), never by prefix, suffix or regular expression;
//! - the allowed origin is echoed only after it matched, never reflected blindly;
//! - `null`, wildcards and `*` with credentials cannot be configured;
//! - every response says `Vary: Origin`, so a cache never serves one origin's
//!   `Access-Control-Allow-Origin` to another.
//!
//! [`CorsPolicy::evaluate`] turns a request into a [`CorsDecision`]: answer the
//! preflight, refuse it, or forward the request and add a [`CorsResponse`]'s
//! headers to the application's response.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use palisade_errors::{Error, ErrorKind};
use serde::Deserialize;

use crate::HeaderSink;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::sink::lists_token;

/// Longest origin accepted. Browsers send short serialized origins; the cap
/// bounds the work an attacker-chosen header costs.
const MAX_ORIGIN_LEN: usize = 2048;
/// Longest DNS name (RFC 1035 §2.3.4, without the trailing dot).
const MAX_HOST_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// Characters of a rejected value written to logs or error messages.
const MAX_LOGGED_CHARS: usize = 128;
/// Chromium caps preflight caching at two hours; Firefox at 24 hours.
const MAX_AGE_CAP: Duration = Duration::from_secs(7200);
/// The default preflight cache lifetime.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// Methods allowed when [`CorsBuilder::allow_methods`] is not called.
const DEFAULT_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Request headers allowed when [`CorsBuilder::allow_headers`] is not called.
const DEFAULT_HEADERS: [&str; 4] = ["authorization", "content-type", "accept", "x-request-id"];
/// CORS-safelisted methods (Fetch §2.2.1): a browser never needs a preflight's
/// permission to use them, so refusing them in a preflight protects nothing.
const SAFELISTED_METHODS: [&[u8]; 3] = [b"GET", b"HEAD", b"POST"];
/// CORS-safelisted request-header names (Fetch §2.2.2). Fetch safelists them
/// subject to value rules (a `Content-Type` of `application/json` is not
/// safelisted and so appears in `Access-Control-Request-Headers`); they are
/// accepted by name, as the headers every API needs.
const SAFELISTED_HEADERS: [&str; 4] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];
/// Methods Fetch forbids (`fetch()` throws on them). TRACE echoes the request,
/// credentials included, back to the caller (cross-site tracing), so allowing
/// one is never intended.
const FORBIDDEN_METHODS: [&str; 3] = ["CONNECT", "TRACE", "TRACK"];
/// Methods Fetch upper-cases when a page asks for them in any case ("normalize
/// a method"); every other method goes on the wire exactly as the page wrote it.
const NORMALIZED_METHODS: [&str; 6] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];

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

/// At most [`MAX_LOGGED_CHARS`] characters of possibly hostile text, for logs
/// and messages (cut by characters, never by bytes, so it cannot panic).
fn bounded(text: &str) -> String {
    text.chars().take(MAX_LOGGED_CHARS).collect()
}

fn bounded_bytes(bytes: &[u8]) -> String {
    bounded(&String::from_utf8_lossy(bytes))
}

/// A web origin: the `scheme://host[:port]` a browser puts in the `Origin`
/// header, normalized.
///
/// Parsing accepts only what a browser can send for a page that may be
/// granted access:
///
/// - scheme `http` or `https` (any case, stored lowercase);
/// - a host that is lowercase ASCII DNS labels (`[a-z0-9-]`, so internationalized
///   names must be given in punycode), a dotted-quad IPv4 address, or a bracketed
///   IPv6 address (stored in its canonical RFC 5952 form);
/// - an optional port `1`–`65535`, dropped when it is the scheme's default
///   (`https://a.com:443` is `https://a.com`).
///
/// It refuses the empty string, `null` (the opaque origin of sandboxed
/// iframes, `file:` and `data:` documents: allowing it allows all of them),
/// `*` and any wildcard, userinfo (`user@`), anything after the authority
/// (a path, query, fragment or even a trailing `/`), whitespace, control and
/// non-ASCII characters, a trailing dot, and anything over 2048 bytes.
///
/// ```
/// use palisade_headers::Origin;
///
/// let origin = Origin::parse("HTTPS://App.Example.com:443")?;
/// assert_eq!(origin.as_str(), "https://app.example.com");
/// assert_eq!(origin.host(), "app.example.com");
/// assert_eq!(origin.port(), None);
/// assert!(Origin::parse("https://app.example.com/").is_err());
/// assert!(Origin::parse("null").is_err());
/// # Ok::<(), palisade_headers::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    serialized: Box<str>,
    https: bool,
    host: Box<str>,
    port: Option<u16>,
}

impl Origin {
    /// Parses and normalizes an origin; the error (kind
    /// [`ConfigErrorKind::InvalidOrigin`]) names the value and the reason.
    pub fn parse(text: &str) -> Result<Origin, ConfigError> {
        Origin::parse_parts(text).map_err(|reason| {
            ConfigError::new(
                ConfigErrorKind::InvalidOrigin,
                format!("CORS origin {:?} {reason}", bounded(text)),
            )
        })
    }

    /// The origin a request's `Origin` header names, or `None` when the value
    /// is not one that can be allowed (`null`, malformed, non-ASCII...).
    pub fn from_header(value: &HeaderValue) -> Option<Origin> {
        let text = value.to_str().ok()?;
        Origin::parse_parts(text).ok()
    }

    /// The normalized form, `scheme://host[:port]`.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// The host: a lowercase DNS name, a dotted-quad IPv4 address, or an IPv6
    /// address in brackets (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, or `None` when it is the scheme's default (80 or 443).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the host is an IP address rather than a DNS name.
    fn has_ip_host(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<Ipv4Addr>().is_ok()
    }

    /// A potentially trustworthy loopback host (W3C Secure Contexts §3.2):
    /// `localhost` and `*.localhost`, `127.0.0.0/8` and `[::1]`. Traffic to
    /// these never leaves the machine, so plain http there is not exposed to
    /// a network attacker.
    fn is_loopback(&self) -> bool {
        self.host.as_ref() == "localhost"
            || self.host.ends_with(".localhost")
            || self.host.as_ref() == "[::1]"
            || self
                .host
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether `self` is `https://<one or more labels>.<parent host>` with the
    /// parent's scheme and port. The `.` before the parent host is required,
    /// so `notexample.org` and `example.org.evil.com` never match `example.org`.
    fn is_subdomain_of(&self, parent: &Origin) -> bool {
        self.https == parent.https
            && self.port == parent.port
            && self
                .host
                .strip_suffix(parent.host.as_ref())
                .and_then(|labels| labels.strip_suffix('.'))
                .is_some_and(|labels| !labels.is_empty())
    }

    fn parse_parts(text: &str) -> Result<Origin, &'static str> {
        if text.is_empty() {
            return Err("is empty");
        }
        if text.len() > MAX_ORIGIN_LEN {
            return Err("is longer than 2048 bytes");
        }
        // Browsers send the ASCII serialization. Anything else is either not
        // from a browser or an attempt to slip past a comparison (a tab or
        // space that one layer trims and another does not).
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "contains whitespace, control or non-ASCII characters (give internationalized names in punycode)",
            );
        }
        if text.eq_ignore_ascii_case("null") {
            return Err(
                "is the opaque origin `null`, sent by sandboxed iframes, file: and data: documents and cross-origin redirects: allowing it allows every one of them",
            );
        }
        if text.contains('*') {
            return Err(
                "contains a wildcard: list the origins, or use allow_subdomains_of for a domain's subdomains",
            );
        }
        let (scheme, authority) = text
            .split_once("://")
            .ok_or("is not scheme://host[:port]")?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err("does not use the http or https scheme");
        };
        // `https://app.example.com@evil.net` is a URL for evil.net: userinfo
        // is how a look-alike origin is written. Browsers never send it.
        if authority.contains('@') {
            return Err(
                "contains userinfo (user@): browsers never send it and it can disguise the real host",
            );
        }
        // The WHATWG URL parser treats `\` like `/` for http(s).
        if authority.contains(['/', '?', '#', '\\']) {
            return Err(
                "has a path, query or fragment (an origin ends after the host and port, without a trailing /)",
            );
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (address, rest) = bracketed
                .split_once(']')
                .ok_or("has an unterminated IPv6 address")?;
            let address: Ipv6Addr = address.parse().map_err(|_| "has an invalid IPv6 address")?;
            let port = if rest.is_empty() {
                None
            } else {
                Some(
                    rest.strip_prefix(':')
                        .ok_or("has text after the IPv6 address")?,
                )
            };
            (format!("[{address}]"), port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            (parse_host(host)?, port)
        };
        let port = match port {
            None => None,
            Some(digits) => {
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err("has a port that is not 1 to 5 digits");
                }
                match digits.parse::<u16>() {
                    Ok(0) | Err(_) => return Err("has a port outside 1-65535"),
                    Ok(443) if https => None,
                    Ok(80) if !https => None,
                    Ok(port) => Some(port),
                }
            }
        };
        let scheme = if https { "https" } else { "http" };
        let serialized = match port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        Ok(Origin {
            serialized: serialized.into(),
            https,
            host: host.into(),
            port,
        })
    }
}

/// A DNS name or dotted-quad IPv4 address, lowercased.
fn parse_host(host: &str) -> Result<String, &'static str> {
    if host.is_empty() {
        return Err("has no host");
    }
    if host.len() > MAX_HOST_LEN {
        return Err("has a host longer than 253 characters");
    }
    let host = host.to_ascii_lowercase();
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty DNS label (a leading, trailing or doubled dot)");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("has a DNS label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("has a host with characters other than a-z, 0-9, - and .");
        }
    }
    // A host whose last label is a number is an IPv4 address to a browser,
    // which rewrites short and hex forms (`127.1`, `0x7f.0.0.1`) to a dotted
    // quad before sending it. Only the canonical form can match what is sent.
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        match host.parse::<Ipv4Addr>() {
            Ok(ip) if ip.to_string() == host => {}
            _ => {
                return Err(
                    "has a host that looks like an IPv4 address but is not a canonical dotted quad",
                );
            }
        }
    }
    Ok(host)
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.serialized)
    }
}

impl std::str::FromStr for Origin {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Origin, ConfigError> {
        Origin::parse(text)
    }
}

/// Which origins a policy lets in.
#[derive(Clone, Debug)]
enum AllowedOrigins {
    /// `Access-Control-Allow-Origin: *`, never with credentials.
    Any,
    /// Exact origins, and parents whose subdomains are allowed.
    Listed {
        exact: Vec<Origin>,
        subdomains_of: Vec<Origin>,
    },
}

/// A validated CORS policy.
///
/// Build one with [`CorsPolicy::builder`] (or, for a public API without
/// credentials, [`CorsPolicy::allow_any_origin_dangerously`]), or deserialize
/// a [`CorsConfig`] (the same checks run). Every header value is computed at
/// build time; [`evaluate`](Self::evaluate) only compares and clones.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method, header};
/// use palisade_headers::{CorsDecision, CorsPolicy};
///
/// let policy = CorsPolicy::builder()
///     .allow_origin("https://app.example.com")
///     .allow_credentials(true)
///     .build()?;
///
/// let mut request = HeaderMap::new();
/// request.insert(header::ORIGIN, HeaderValue::from_static("https://app.example.com"));
/// let CorsDecision::Forward(cors) = policy.evaluate(&Method::GET, &request) else {
///     unreachable!("a GET is never a preflight");
/// };
/// let mut response = HeaderMap::new();
/// cors.apply(&mut response);
/// assert_eq!(response[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
/// assert_eq!(response[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
/// assert_eq!(response[header::VARY], "Origin");
/// # Ok::<(), palisade_headers::ConfigError>(())
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "CorsConfig")]
pub struct CorsPolicy {
    origins: AllowedOrigins,
    /// Allowed methods, compared byte for byte with `Access-Control-Request-Method`.
    methods: Vec<Method>,
    /// Allowed request headers, lowercase.
    headers: Vec<HeaderName>,
    credentials: bool,
    private_network: bool,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
}

/// Builds a [`CorsPolicy`]. Values are checked in [`build`](Self::build), so
/// a bad entry is reported once, with its name, when the policy is made.
///
/// ```
/// use std::time::Duration;
/// use palisade_headers::CorsPolicy;
///
/// let policy = CorsPolicy::builder()
///     .allow_origins(["https://app.example.com", "http://localhost:3000"])
///     .allow_subdomains_of("https://example.org")
///     .allow_methods(["GET", "POST"])
///     .expose_headers(["X-Request-Id"])
///     .allow_credentials(true)
///     .max_age(Duration::from_secs(3600))
///     .build()?;
/// assert!(policy.is_production_safe().is_ok());
/// # Ok::<(), palisade_headers::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CorsBuilder {
    any_origin: bool,
    origins: Vec<String>,
    subdomains_of: Vec<String>,
    methods: Option<Vec<String>>,
    headers: Option<Vec<String>>,
    expose: Vec<String>,
    credentials: bool,
    max_age: Duration,
    private_network: bool,
}

impl CorsPolicy {
    /// A builder that allows no origin until some are added; the methods
    /// default to GET, POST, PUT, PATCH, DELETE, the request headers to
    /// Authorization, Content-Type, Accept, X-Request-Id, the preflight cache
    /// to 600 s; credentials and private network access are off.
    pub fn builder() -> CorsBuilder {
        CorsBuilder {
            any_origin: false,
            origins: Vec::new(),
            subdomains_of: Vec::new(),
            methods: None,
            headers: None,
            expose: Vec::new(),
            credentials: false,
            max_age: DEFAULT_MAX_AGE,
            private_network: false,
        }
    }

    /// A builder for a policy that lets every origin read responses
    /// (`Access-Control-Allow-Origin: *`). Only for public, unauthenticated
    /// data: combined with [`allow_credentials`](CorsBuilder::allow_credentials)
    /// it fails to build ([`ConfigErrorKind::CredentialsWithAnyOrigin`]).
    /// Origins added to it are still checked but make no difference.
    pub fn allow_any_origin_dangerously() -> CorsBuilder {
        CorsBuilder {
            any_origin: true,
            ..CorsPolicy::builder()
        }
    }

    /// Whether the policy lets `origin` in (exactly, or as a subdomain of an
    /// allowed parent). Useful for checks CORS does not cover, such as the
    /// `Origin` of a WebSocket handshake.
    pub fn allows_origin(&self, origin: &Origin) -> bool {
        match &self.origins {
            AllowedOrigins::Any => true,
            AllowedOrigins::Listed {
                exact,
                subdomains_of,
            } => {
                exact.contains(origin)
                    || subdomains_of
                        .iter()
                        .any(|parent| origin.is_subdomain_of(parent))
            }
        }
    }

    /// Checks the policy for settings that are fine in development and
    /// dangerous in production: any origin, or a plain-http origin (other
    /// than loopback). A network attacker (public Wi-Fi, a hostile ISP) can
    /// inject script into any page served over plain http and then read this
    /// API's responses as that allowed origin, TLS on the API notwithstanding.
    pub fn is_production_safe(&self) -> Result<(), UnsafeCors> {
        match &self.origins {
            AllowedOrigins::Any => Err(UnsafeCors::AnyOrigin),
            AllowedOrigins::Listed {
                exact,
                subdomains_of,
            } => {
                match exact
                    .iter()
                    .chain(subdomains_of)
                    .find(|origin| !origin.https && !origin.is_loopback())
                {
                    Some(origin) => Err(UnsafeCors::PlainHttpOrigin(origin.clone())),
                    None => Ok(()),
                }
            }
        }
    }

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
                    tracing::debug!(
                        event = "cors_not_allowed",
                        reason = rejection.reason(),
                        origin = ?origin.for_log(),
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
        if self.private_network && asks_private_network {
            response.insert(
                allow_private_network_header(),
                HeaderValue::from_static("true"),
            );
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
            event = "cors_rejected",
            reason = rejection.reason(),
            origin = ?origin.for_log(),
            detail = ?detail.map(bounded_bytes),
            "CORS preflight rejected"
        );
        // No Access-Control-Allow-Origin: the browser fails the preflight and
        // the page learns nothing but that it failed.
        CorsDecision::PreflightRejected(
            Error::new(ErrorKind::CorsRejected).with_header(VARY, preflight_vary()),
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

    /// The origin for a log line: cut to 128 characters (and `Debug`-quoted
    /// by the caller, so control characters cannot forge log lines).
    fn for_log(self) -> Option<String> {
        match self {
            RequestOrigin::One(value) => Some(bounded_bytes(value.as_bytes())),
            RequestOrigin::Absent | RequestOrigin::Several => None,
        }
    }
}

/// Why a request gets no CORS permission.
#[derive(Clone, Copy, Debug)]
enum Rejection {
    NoOrigin,
    SeveralOrigins,
    Origin,
    Method,
    Header,
}

impl Rejection {
    fn reason(self) -> &'static str {
        match self {
            Rejection::NoOrigin => "no origin",
            Rejection::SeveralOrigins => "more than one Origin header",
            Rejection::Origin => "disallowed origin",
            Rejection::Method => "disallowed method",
            Rejection::Header => "disallowed header",
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

impl CorsBuilder {
    /// Allows one origin (`scheme://host[:port]`), compared after
    /// normalization (case, default port).
    #[must_use]
    pub fn allow_origin(mut self, origin: impl AsRef<str>) -> Self {
        self.origins.push(origin.as_ref().to_owned());
        self
    }

    /// Allows several origins.
    #[must_use]
    pub fn allow_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.origins
            .extend(origins.into_iter().map(|origin| origin.as_ref().to_owned()));
        self
    }

    /// Allows every subdomain, at any depth, of the domain in `parent` (an
    /// origin such as `https://example.com`), with the parent's scheme and
    /// port: `https://api.example.com` and `https://a.b.example.com`, but not
    /// `https://example.com` itself (allow it with
    /// [`allow_origin`](Self::allow_origin) if wanted), not
    /// `https://notexample.com`, not `https://example.com.evil.net`, not
    /// `http://api.example.com`.
    ///
    /// The parent must be a domain of at least two labels (not an IP address,
    /// not a bare `com`). Public suffixes cannot be told apart from
    /// registrable domains without the Public Suffix List, so never give one
    /// such as `https://co.uk` or `https://github.io`: every site under it
    /// would be allowed. Every subdomain, including one an attacker takes
    /// over (a dangling DNS record), is trusted.
    #[must_use]
    pub fn allow_subdomains_of(mut self, parent: impl AsRef<str>) -> Self {
        self.subdomains_of.push(parent.as_ref().to_owned());
        self
    }

    /// Replaces the allowed methods (default GET, POST, PUT, PATCH, DELETE).
    /// GET, HEAD and POST are always acceptable in a preflight (they are
    /// CORS-safelisted). Names are compared byte for byte, as Fetch does,
    /// except that DELETE, GET, HEAD, OPTIONS, POST and PUT given in any case
    /// are upper-cased like Fetch does before sending; give `PATCH` in the
    /// case pages use. CONNECT, TRACE and TRACK are refused.
    #[must_use]
    pub fn allow_methods<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.methods = Some(
            methods
                .into_iter()
                .map(|method| method.as_ref().to_owned())
                .collect(),
        );
        self
    }

    /// Replaces the allowed request headers (default Authorization,
    /// Content-Type, Accept, X-Request-Id). Accept, Accept-Language,
    /// Content-Language and Content-Type are always acceptable.
    #[must_use]
    pub fn allow_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.headers = Some(
            headers
                .into_iter()
                .map(|header| header.as_ref().to_owned())
                .collect(),
        );
        self
    }

    /// Adds response headers the page may read (`Access-Control-Expose-Headers`);
    /// without it a page sees only the CORS-safelisted response headers.
    #[must_use]
    pub fn expose_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.expose
            .extend(headers.into_iter().map(|header| header.as_ref().to_owned()));
        self
    }

    /// Lets allowed origins send and read credentialed requests (cookies,
    /// HTTP authentication): `Access-Control-Allow-Credentials: true`.
    #[must_use]
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// How long a browser may cache a preflight answer (default 600 s).
    /// Values above 7200 s are clamped to 7200 with a warning: Chromium caps
    /// there, and a long cache keeps a withdrawn permission alive.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Answers Private Network Access preflights
    /// (`Access-Control-Allow-Private-Network: true`): lets allowed public
    /// origins reach this server when it is on a private network or loopback.
    #[must_use]
    pub fn allow_private_network(mut self, allow: bool) -> Self {
        self.private_network = allow;
        self
    }

    /// Checks every setting and builds the policy.
    pub fn build(self) -> Result<CorsPolicy, ConfigError> {
        if self.any_origin && self.credentials {
            return Err(ConfigError::new(
                ConfigErrorKind::CredentialsWithAnyOrigin,
                "CORS: allow_credentials with allow_any_origin_dangerously: browsers refuse `*` with credentials, and reflecting every origin instead would let any site act as the user",
            ));
        }
        if self.any_origin && self.private_network {
            return Err(ConfigError::new(
                ConfigErrorKind::CredentialsWithAnyOrigin,
                "CORS: allow_private_network with allow_any_origin_dangerously would let every public site reach this private-network service",
            ));
        }
        let mut exact: Vec<Origin> = Vec::with_capacity(self.origins.len());
        for text in &self.origins {
            let origin = Origin::parse(text)?;
            if !exact.contains(&origin) {
                exact.push(origin);
            }
        }
        let mut subdomains_of: Vec<Origin> = Vec::with_capacity(self.subdomains_of.len());
        for text in &self.subdomains_of {
            let parent = Origin::parse(text).map_err(|error| {
                if text.contains("*.") {
                    ConfigError::new(
                        ConfigErrorKind::InvalidOrigin,
                        format!("{error}; give allow_subdomains_of the parent origin without `*.`"),
                    )
                } else {
                    error
                }
            })?;
            if parent.has_ip_host() || !parent.host.contains('.') {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidOrigin,
                    format!(
                        "CORS allow_subdomains_of {:?} must name a domain of at least two labels, not an IP address or a top-level domain",
                        bounded(text)
                    ),
                ));
            }
            if !subdomains_of.contains(&parent) {
                subdomains_of.push(parent);
            }
        }
        let origins = if self.any_origin {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::Listed {
                exact,
                subdomains_of,
            }
        };

        let methods = match &self.methods {
            Some(methods) => parse_methods(methods)?,
            None => parse_methods(&DEFAULT_METHODS)?,
        };
        let headers = match &self.headers {
            Some(headers) => parse_header_names(headers, "allow_headers")?,
            None => parse_header_names(&DEFAULT_HEADERS, "allow_headers")?,
        };
        let expose = parse_header_names(&self.expose, "expose_headers")?;

        let max_age = if self.max_age > MAX_AGE_CAP {
            tracing::warn!(
                requested_secs = self.max_age.as_secs(),
                clamped_secs = MAX_AGE_CAP.as_secs(),
                "CORS max_age clamped: Chromium caches preflights for at most 2 hours"
            );
            MAX_AGE_CAP
        } else {
            self.max_age
        };

        Ok(CorsPolicy {
            origins,
            allow_methods: joined(methods.iter().map(Method::as_str))?,
            // The safelisted names are listed too: a browser names them in
            // a preflight when their value is not safelisted (a JSON
            // Content-Type) and then needs them echoed, or the preflight
            // fails although this policy accepted it.
            allow_headers: joined(headers.iter().map(HeaderName::as_str).chain(
                SAFELISTED_HEADERS.iter().copied().filter(|safe| {
                    !headers
                        .iter()
                        .any(|name| name.as_str().eq_ignore_ascii_case(safe))
                }),
            ))?,
            expose_headers: joined(expose.iter().map(HeaderName::as_str))?,
            max_age: HeaderValue::from(max_age.as_secs()),
            methods,
            headers,
            credentials: self.credentials,
            private_network: self.private_network,
        })
    }
}

fn parse_methods(methods: &[impl AsRef<str>]) -> Result<Vec<Method>, ConfigError> {
    let mut parsed: Vec<Method> = Vec::with_capacity(methods.len());
    for text in methods {
        let text = text.as_ref();
        let invalid = |why: &str| {
            ConfigError::new(
                ConfigErrorKind::InvalidToken,
                format!("CORS method {:?} {why}", bounded(text)),
            )
        };
        if text == "*" {
            return Err(invalid(
                "is a wildcard: list the methods (with credentials browsers take `*` literally)",
            ));
        }
        if FORBIDDEN_METHODS
            .iter()
            .any(|forbidden| forbidden.eq_ignore_ascii_case(text))
        {
            return Err(invalid(
                "is forbidden by Fetch: browsers never send it, and TRACE reflects credentials (cross-site tracing)",
            ));
        }
        let normalized = NORMALIZED_METHODS
            .iter()
            .find(|name| name.eq_ignore_ascii_case(text))
            .copied()
            .unwrap_or(text);
        let method = Method::from_bytes(normalized.as_bytes())
            .map_err(|_| invalid("is not a method token"))?;
        if !parsed.contains(&method) {
            parsed.push(method);
        }
    }
    Ok(parsed)
}

fn parse_header_names(
    names: &[impl AsRef<str>],
    setting: &str,
) -> Result<Vec<HeaderName>, ConfigError> {
    let mut parsed: Vec<HeaderName> = Vec::with_capacity(names.len());
    for text in names {
        let text = text.as_ref();
        let invalid = |why: &str| {
            ConfigError::new(
                ConfigErrorKind::InvalidToken,
                format!("CORS {setting} {:?} {why}", bounded(text)),
            )
        };
        if text == "*" {
            return Err(invalid(
                "is a wildcard: list the names (with credentials browsers take `*` literally)",
            ));
        }
        // `HeaderName` lowercases.
        let name =
            HeaderName::from_bytes(text.as_bytes()).map_err(|_| invalid("is not a header name"))?;
        if !parsed.contains(&name) {
            parsed.push(name);
        }
    }
    Ok(parsed)
}

/// `a, b, c`, or `None` for an empty list (the header is then not sent).
fn joined<'a>(items: impl Iterator<Item = &'a str>) -> Result<Option<HeaderValue>, ConfigError> {
    let list = items.collect::<Vec<_>>().join(", ");
    if list.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&list).map(Some).map_err(|_| {
        ConfigError::new(
            ConfigErrorKind::InvalidHeaderValue,
            "CORS: a method or header list does not form a valid header value",
        )
    })
}

/// A setting that [`CorsPolicy::is_production_safe`] refuses.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnsafeCors {
    /// [`CorsPolicy::allow_any_origin_dangerously`]: every site can read every response.
    AnyOrigin,
    /// A plain-http origin (or subdomain parent) that is not loopback: a
    /// network attacker who injects script into it reads this API.
    PlainHttpOrigin(Origin),
}

impl std::fmt::Display for UnsafeCors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnsafeCors::AnyOrigin => f.write_str("CORS allows any origin"),
            UnsafeCors::PlainHttpOrigin(origin) => write!(
                f,
                "CORS allows the plain-http origin {origin}: anyone on its network path can inject script there and read this API"
            ),
        }
    }
}

impl std::error::Error for UnsafeCors {}

/// The configuration-file form of a [`CorsPolicy`]; deserializing a
/// `CorsPolicy` runs the builder's checks on it.
///
/// ```toml
/// [cors]
/// allow_origins = ["https://app.example.com", "http://localhost:3000"]
/// allow_subdomains_of = ["https://example.org"]
/// allow_methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]  # the default
/// allow_headers = ["Authorization", "Content-Type"]
/// expose_headers = ["X-Request-Id"]
/// allow_credentials = true
/// max_age_secs = 600
/// allow_private_network = false
/// allow_any_origin_dangerously = false
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// See [`CorsBuilder::allow_origins`].
    pub allow_origins: Vec<String>,
    /// See [`CorsBuilder::allow_subdomains_of`].
    pub allow_subdomains_of: Vec<String>,
    /// See [`CorsBuilder::allow_methods`]; `None` keeps the default.
    pub allow_methods: Option<Vec<String>>,
    /// See [`CorsBuilder::allow_headers`]; `None` keeps the default.
    pub allow_headers: Option<Vec<String>>,
    /// See [`CorsBuilder::expose_headers`].
    pub expose_headers: Vec<String>,
    /// See [`CorsBuilder::allow_credentials`].
    pub allow_credentials: bool,
    /// See [`CorsBuilder::max_age`]; `None` keeps 600 s.
    pub max_age_secs: Option<u64>,
    /// See [`CorsBuilder::allow_private_network`].
    pub allow_private_network: bool,
    /// See [`CorsPolicy::allow_any_origin_dangerously`].
    pub allow_any_origin_dangerously: bool,
}

impl TryFrom<CorsConfig> for CorsPolicy {
    type Error = ConfigError;

    fn try_from(config: CorsConfig) -> Result<CorsPolicy, ConfigError> {
        let mut builder = if config.allow_any_origin_dangerously {
            CorsPolicy::allow_any_origin_dangerously()
        } else {
            CorsPolicy::builder()
        };
        builder = builder
            .allow_origins(config.allow_origins)
            .expose_headers(config.expose_headers)
            .allow_credentials(config.allow_credentials)
            .allow_private_network(config.allow_private_network);
        for parent in config.allow_subdomains_of {
            builder = builder.allow_subdomains_of(parent);
        }
        if let Some(methods) = config.allow_methods {
            builder = builder.allow_methods(methods);
        }
        if let Some(headers) = config.allow_headers {
            builder = builder.allow_headers(headers);
        }
        if let Some(seconds) = config.max_age_secs {
            builder = builder.max_age(Duration::from_secs(seconds));
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    #[test]
    fn subdomain_matching_is_label_bounded() {
        let parent = origin("https://example.org");
        assert!(origin("https://api.example.org").is_subdomain_of(&parent));
        assert!(origin("https://a.b.example.org").is_subdomain_of(&parent));
        assert!(!origin("https://example.org").is_subdomain_of(&parent));
        assert!(!origin("https://notexample.org").is_subdomain_of(&parent));
        assert!(!origin("https://example.org.evil.com").is_subdomain_of(&parent));
        assert!(!origin("http://api.example.org").is_subdomain_of(&parent));
        assert!(!origin("https://api.example.org:8443").is_subdomain_of(&parent));
    }

    #[test]
    fn loopback_hosts() {
        for text in [
            "http://localhost:3000",
            "http://dev.localhost",
            "http://127.0.0.1",
            "http://127.9.9.9:81",
            "http://[::1]:3000",
        ] {
            assert!(origin(text).is_loopback(), "{text}");
        }
        for text in [
            "http://localhost.evil.com",
            "http://10.0.0.1",
            "http://[::2]",
            "http://notlocalhost",
        ] {
            assert!(!origin(text).is_loopback(), "{text}");
        }
    }

    #[test]
    fn messages_are_bounded() {
        let long = format!("https://{}", "a".repeat(5000));
        let error = Origin::parse(&long).unwrap_err();
        assert!(error.to_string().len() < 400, "{}", error.to_string().len());
    }
}
