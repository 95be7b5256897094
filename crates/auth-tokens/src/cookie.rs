//! The refresh token in a cookie, and the CSRF rule that makes a cookie
//! safe to authenticate a refresh or a logout with.
//!
//! A browser client should not keep its refresh token where scripts can
//! read it. [`RefreshCookie`] writes it into a cookie the browser keeps out
//! of reach of scripts and of other hosts:
//!
//! ```text
//! Set-Cookie: __Host-refresh=<token>; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=<refresh ttl>
//! ```
//!
//! - `__Host-` (RFC 6265bis §4.1.3.2): the browser accepts the cookie only
//!   from a secure origin, with `Secure`, `Path=/` and no `Domain`, so a
//!   sibling subdomain can neither set nor overwrite it ("cookie tossing").
//!   A name without the prefix is refused unless chosen with
//!   [`with_name_dangerously`](RefreshCookie::with_name_dangerously).
//! - `Max-Age` is the policy's refresh lifetime
//!   ([`TokenPolicy::refresh_ttl`]); logout answers `Max-Age=0`.
//!
//! # The CSRF rule
//!
//! A cookie is *ambient*: the browser attaches it to every request to the
//! host, including one a hostile page starts. `SameSite=Strict` stops other
//! *sites*, but not a page of the same site on a sibling subdomain or on
//! another port of the host (`https://blog.example.com` is same-site with
//! `https://api.example.com`). So a refresh or logout authenticated by the
//! cookie ([`RefreshCookie::from_request`]) also needs:
//!
//! 1. an `Origin` header equal to one of the allowed origins (parsed:
//!    scheme, host and port, the default port implied; `null`, a missing,
//!    repeated or malformed `Origin` refused), and
//! 2. the custom header (default `X-Requested-With: palisade`), which no
//!    form, link or image can send and which a script of another origin can
//!    send only after a CORS preflight the service does not grant.
//!
//! Either missing is a 403 `forbidden`, with one `authz_fail` event whose
//! `reason` is `csrf_origin` or `csrf_header`. A refresh token sent in the
//! JSON body is not ambient (a hostile page does not have it), so it needs
//! neither.
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use palisade_auth_tokens::TokenPolicy;
//! use palisade_auth_tokens::cookie::{RefreshCookie, RefreshSource};
//!
//! let policy = TokenPolicy::builder("https://auth.example.com", "api").refresh_ttl(86_400).build()?;
//! let cookie = RefreshCookie::new(&policy, ["https://app.example.com"])?;
//! assert_eq!(
//!     cookie.set_cookie("eyJ.a.b")?,
//!     "__Host-refresh=eyJ.a.b; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=86400"
//! );
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("cookie", HeaderValue::from_static("__Host-refresh=eyJ.a.b"));
//! headers.insert("origin", HeaderValue::from_static("https://app.example.com"));
//! // Without the custom header: 403.
//! assert_eq!(cookie.from_request(&headers, None).unwrap_err().status(), 403);
//! headers.insert("x-requested-with", HeaderValue::from_static("palisade"));
//! let presented = cookie.from_request(&headers, None)?.expect("a token");
//! assert_eq!((presented.token, presented.source), ("eyJ.a.b", RefreshSource::Cookie));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::header::{COOKIE, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue};
use palisade_errors::{Error, ErrorKind, SecurityEvent};

use crate::refresh::DeviceId;
use crate::{ConfigError, ConfigErrorKind, TokenPolicy};

/// The default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-refresh";

/// The default custom header's name.
pub const DEFAULT_CSRF_HEADER: &str = "x-requested-with";

/// The default custom header's value.
pub const DEFAULT_CSRF_VALUE: &str = "palisade";

/// The default header a device id is read from.
pub const DEFAULT_DEVICE_HEADER: &str = "x-device-id";

/// The largest refresh-token body [`body_token`] reads.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// Where a presented refresh token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshSource {
    /// The refresh cookie (the CSRF rule held): answer with a new cookie.
    Cookie,
    /// The JSON body (`{"refresh_token": "..."}`): answer in the body.
    Body,
}

/// A refresh token taken from a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presented<'a> {
    /// The token, not yet verified.
    pub token: &'a str,
    /// Where it came from.
    pub source: RefreshSource,
}

/// What a refresh or logout request presents, owned (what the adapters'
/// extractors hand to a handler): see [`RefreshCookie::read_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshRequest {
    /// The refresh token, not yet verified.
    pub token: String,
    /// Where it came from: answer a cookie with a new cookie.
    pub source: RefreshSource,
    /// The device id the request carried, for a bound family
    /// ([`RefreshFamilies::refresh_unrevoked_bound`](crate::refresh::RefreshFamilies::refresh_unrevoked_bound)).
    pub device: Option<DeviceId>,
}

/// Where the device id of a bound family is read from
/// ([`RefreshCookie::device_id`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceIdFrom {
    /// A request header (default `X-Device-Id`).
    Header(HeaderName),
    /// A cookie of this name (set by the application, e.g. a long-lived
    /// `__Host-device` cookie).
    Cookie(String),
}

/// An origin as compared: scheme, lower-case host, port (default filled).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

/// The refresh cookie's settings and the CSRF rule (see the
/// [module](self) docs).
#[derive(Clone, Debug)]
pub struct RefreshCookie {
    name: String,
    max_age: u64,
    allowed_origins: Vec<Origin>,
    csrf_header: HeaderName,
    csrf_value: HeaderValue,
    device_from: DeviceIdFrom,
}

fn config_error(detail: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::InvalidCookie, detail)
}

impl RefreshCookie {
    /// The cookie `__Host-refresh` with `Max-Age` = `policy`'s refresh
    /// lifetime, accepted from requests whose `Origin` is one of
    /// `allowed_origins` (`scheme://host[:port]`, no path; at least one; no
    /// `*`, no `null`).
    pub fn new<'o>(
        policy: &TokenPolicy,
        allowed_origins: impl IntoIterator<Item = &'o str>,
    ) -> Result<RefreshCookie, ConfigError> {
        let allowed_origins = allowed_origins
            .into_iter()
            .map(|origin| {
                parse_origin(origin.as_bytes()).ok_or_else(|| {
                    config_error(format!(
                        "refresh cookie: allowed origin {origin:?} is not scheme://host[:port] \
                         (http or https, no path, no wildcard)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if allowed_origins.is_empty() {
            return Err(config_error(
                "refresh cookie: at least one allowed origin is needed for the CSRF rule",
            ));
        }
        Ok(RefreshCookie {
            name: DEFAULT_COOKIE_NAME.to_owned(),
            max_age: policy.refresh_ttl(),
            allowed_origins,
            csrf_header: HeaderName::from_static(DEFAULT_CSRF_HEADER),
            csrf_value: HeaderValue::from_static(DEFAULT_CSRF_VALUE),
            device_from: DeviceIdFrom::Header(HeaderName::from_static(DEFAULT_DEVICE_HEADER)),
        })
    }

    /// Another cookie name; it must start with `__Host-` (the browser then
    /// refuses it from sibling hosts and over plain HTTP).
    pub fn with_name(self, name: &str) -> Result<RefreshCookie, ConfigError> {
        if !name.starts_with("__Host-") {
            return Err(config_error(format!(
                "refresh cookie: the name {name:?} lacks the __Host- prefix \
                 (use with_name_dangerously to accept a cookie sibling hosts can overwrite)"
            )));
        }
        self.with_name_dangerously(name)
    }

    /// Any cookie name (an RFC 6265 token). Dangerous: without `__Host-`
    /// a sibling subdomain or a plain-HTTP page can set a cookie of this
    /// name that the browser sends alongside or instead of this one.
    pub fn with_name_dangerously(mut self, name: &str) -> Result<RefreshCookie, ConfigError> {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(config_error(format!(
                "refresh cookie: the name {name:?} is not a cookie name (RFC 6265 token)"
            )));
        }
        name.clone_into(&mut self.name);
        Ok(self)
    }

    /// Another custom header (name and exact value) for the CSRF rule.
    /// The name must not be a CORS-safelisted header nor one a browser sets
    /// itself; a simple custom `X-...` name is the usual choice.
    pub fn with_csrf_header(
        mut self,
        name: &str,
        value: &str,
    ) -> Result<RefreshCookie, ConfigError> {
        let bad = || {
            config_error(format!(
                "refresh cookie: the CSRF header {name:?}: {value:?} must be a custom header \
                 name with a non-empty value"
            ))
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let forbidden = [
            "accept",
            "accept-language",
            "content-language",
            "content-type",
            "range",
            "origin",
            "cookie",
            "referer",
            "host",
        ];
        if forbidden.contains(&name.as_str()) || name.as_str().starts_with("sec-") {
            return Err(bad());
        }
        let value = HeaderValue::from_str(value).map_err(|_| bad())?;
        if value.is_empty() {
            return Err(bad());
        }
        self.csrf_header = name;
        self.csrf_value = value;
        Ok(self)
    }

    /// Where [`device_id`](Self::device_id) reads a device id (default the
    /// `X-Device-Id` header).
    #[must_use]
    pub fn with_device_id_from(mut self, from: DeviceIdFrom) -> RefreshCookie {
        self.device_from = from;
        self
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Max-Age`, in seconds: the refresh lifetime.
    pub fn max_age(&self) -> u64 {
        self.max_age
    }

    /// The custom header's name.
    pub fn csrf_header(&self) -> &HeaderName {
        &self.csrf_header
    }

    /// The custom header's value.
    pub fn csrf_value(&self) -> &HeaderValue {
        &self.csrf_value
    }

    /// The `Set-Cookie` value carrying `token`. An error (500) only if
    /// `token` is not a cookie value (an issued token always is).
    pub fn set_cookie(&self, token: &str) -> Result<HeaderValue, Error> {
        if token.is_empty() || !token.bytes().all(is_cookie_octet) {
            tracing::error!("refresh cookie: the token is not a cookie value");
            return Err(Error::new(ErrorKind::Internal));
        }
        self.header(token, self.max_age)
    }

    /// The `Set-Cookie` value that deletes the cookie (`Max-Age=0`), for
    /// logout.
    pub fn clear_cookie(&self) -> HeaderValue {
        // The name is a token and the attributes fixed: always a valid value.
        self.header("", 0)
            .unwrap_or_else(|_| HeaderValue::from_static("__Host-refresh=; Max-Age=0"))
    }

    fn header(&self, value: &str, max_age: u64) -> Result<HeaderValue, Error> {
        HeaderValue::from_str(&format!(
            "{}={value}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}",
            self.name
        ))
        .map_err(|_| Error::new(ErrorKind::Internal))
    }

    /// The refresh token of a request: `body_token` (from [`body_token`])
    /// when there is one, with no CSRF check (it is not ambient); else the
    /// cookie, if the request passes the CSRF rule (403 otherwise); else
    /// `None`. The cookie sent twice is a 400.
    pub fn from_request<'a>(
        &self,
        headers: &'a HeaderMap,
        body_token: Option<&'a str>,
    ) -> Result<Option<Presented<'a>>, Error> {
        if let Some(token) = body_token {
            return Ok(Some(Presented {
                token,
                source: RefreshSource::Body,
            }));
        }
        let Some(token) = cookie_value(headers, &self.name)? else {
            return Ok(None);
        };
        self.check_csrf(headers)?;
        Ok(Some(Presented {
            token,
            source: RefreshSource::Cookie,
        }))
    }

    /// A whole refresh or logout request: the token from the JSON `body`
    /// ([`body_token`]) or the cookie ([`from_request`](Self::from_request),
    /// with the CSRF rule), and the device id
    /// ([`device_id`](Self::device_id)). No token at all is a 401 (event
    /// `authn_token_invalid`, `reason = "missing"`); a refusal of the CSRF
    /// rule a 403, malformed input a 400.
    pub fn read_request(&self, headers: &HeaderMap, body: &[u8]) -> Result<RefreshRequest, Error> {
        let body = body_token(body)?;
        let Some(presented) = self.from_request(headers, body.as_deref())? else {
            tracing::info!(
                event = SecurityEvent::AuthnTokenInvalid.as_str(),
                reason = "missing",
                "refresh request without a refresh token"
            );
            return Err(Error::new(ErrorKind::Unauthorized).logged());
        };
        let (token, source) = (presented.token.to_owned(), presented.source);
        Ok(RefreshRequest {
            token,
            source,
            device: self.device_id(headers)?,
        })
    }

    /// The CSRF rule alone: an allowed `Origin` and the custom header, or
    /// a logged 403.
    pub fn check_csrf(&self, headers: &HeaderMap) -> Result<(), Error> {
        let mut origins = headers.get_all(ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (Some(origin), None) => parse_origin(origin.as_bytes()),
            _ => None,
        };
        if !origin.is_some_and(|origin| self.allowed_origins.contains(&origin)) {
            return Err(refuse_csrf("csrf_origin"));
        }
        let mut values = headers.get_all(&self.csrf_header).iter();
        match (values.next(), values.next()) {
            (Some(value), None) if value == self.csrf_value => Ok(()),
            _ => Err(refuse_csrf("csrf_header")),
        }
    }

    /// The device id the request presents (see [`DeviceIdFrom`]): `None`
    /// when absent; a 400 when present but not a device id
    /// ([`DeviceId::parse`]) or sent twice.
    pub fn device_id(&self, headers: &HeaderMap) -> Result<Option<DeviceId>, Error> {
        let raw = match &self.device_from {
            DeviceIdFrom::Header(name) => {
                let mut values = headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (None, _) => return Ok(None),
                    (Some(value), None) => value.to_str().ok(),
                    (Some(_), Some(_)) => None,
                }
            }
            DeviceIdFrom::Cookie(name) => match cookie_value(headers, name)? {
                None => return Ok(None),
                Some(value) => Some(value),
            },
        };
        raw.and_then(DeviceId::parse)
            .map(Some)
            .ok_or_else(|| bad_input("device_id"))
    }
}

fn refuse_csrf(reason: &'static str) -> Error {
    tracing::warn!(
        event = SecurityEvent::AuthzFail.as_str(),
        reason,
        "cookie-authenticated request refused: CSRF rule"
    );
    Error::new(ErrorKind::Forbidden).logged()
}

fn bad_input(reason: &'static str) -> Error {
    tracing::info!(
        event = SecurityEvent::InputValidationFail.as_str(),
        reason,
        "refresh request refused: malformed input"
    );
    Error::new(ErrorKind::BadRequest).logged()
}

/// The value of cookie `name` across every `Cookie` line (HTTP/2 splits
/// them); `None` when absent, a 400 when it is there twice (the browser
/// would have sent two cookies of that name, e.g. one a sibling host set:
/// which one is ours cannot be told).
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Error> {
    let mut found = None;
    for line in headers.get_all(COOKIE) {
        let Ok(line) = line.to_str() else { continue };
        for pair in line.split(';') {
            let Some((key, value)) = pair.trim_matches(' ').split_once('=') else {
                continue;
            };
            if key != name {
                continue;
            }
            if found.is_some() {
                return Err(bad_input("cookie_repeated"));
            }
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            found = Some(value);
        }
    }
    Ok(found.filter(|value| !value.is_empty()))
}

/// A JSON body `{"refresh_token": "..."}` (other fields ignored): the
/// token; `None` for an empty body or one without the field; a 400 for a
/// body that is not a JSON object, whose field is not a string, or larger
/// than [`MAX_BODY_LEN`].
pub fn body_token(body: &[u8]) -> Result<Option<String>, Error> {
    #[derive(serde::Deserialize)]
    struct Body {
        refresh_token: Option<String>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if body.len() > MAX_BODY_LEN {
        return Err(bad_input("body_too_large"));
    }
    // An object, as documented: serde alone also reads a struct from an
    // array by position (`["<token>"]`).
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad_input("body_json"));
    }
    let body: Body = serde_json::from_slice(body).map_err(|_| bad_input("body_json"))?;
    Ok(body.refresh_token.filter(|token| !token.is_empty()))
}

/// `scheme://host[:port]`, http or https, nothing else.
fn parse_origin(raw: &[u8]) -> Option<Origin> {
    let raw = std::str::from_utf8(raw).ok()?;
    let (scheme, rest) = raw.split_once("://")?;
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        ("https", 443)
    } else if scheme.eq_ignore_ascii_case("http") {
        ("http", 80)
    } else {
        return None;
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (inner, after) = bracketed.split_once(']')?;
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        (format!("[{}]", inner.to_ascii_lowercase()), after)
    } else {
        let end = rest.find(':').unwrap_or(rest.len());
        let (host, after) = rest.split_at(end);
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid {
            return None;
        }
        (host.to_ascii_lowercase(), after)
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => default_port,
        None => return None,
        Some(digits) => {
            // Canonical digits only: no sign, no leading zero (`:0443`).
            if digits.is_empty()
                || digits.len() > 5
                || digits.starts_with('0')
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            digits.parse().ok()?
        }
    };
    Some(Origin { scheme, host, port })
}

/// RFC 6265 §4.1.1 cookie-octet.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// RFC 9110 tchar.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_and_normalised() {
        let parse = |s: &str| parse_origin(s.as_bytes());
        assert_eq!(
            parse("https://App.Example.com"),
            parse("https://app.example.com:443")
        );
        assert_eq!(parse("http://localhost:80"), parse("http://localhost"));
        assert_ne!(
            parse("http://localhost:8080"),
            parse("http://localhost:8081")
        );
        assert_ne!(parse("http://a.example"), parse("https://a.example"));
        assert!(parse("http://[::1]:3000").is_some());
        for bad in [
            "null",
            "*",
            "https://",
            "https://a.example/",
            "https://a.example:",
            "https://a.example:99999",
            "https://u@a.example",
            "ftp://a.example",
            "https://a.example:80x",
            "https://a.example:0443",
            "https://a.example:+443",
            "https://a example",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn cookie_values_are_found_on_every_line() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-refresh=t.o.k"),
        );
        assert_eq!(
            cookie_value(&headers, "__Host-refresh").unwrap(),
            Some("t.o.k")
        );
        headers.append(COOKIE, HeaderValue::from_static("__Host-refresh=other"));
        assert_eq!(
            cookie_value(&headers, "__Host-refresh")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(cookie_value(&HeaderMap::new(), "x").unwrap(), None);
    }
}
