//! [`CorsBuilder`]: collects a policy's settings and checks them all when
//! the [`CorsPolicy`] is built.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use super::evaluate::SAFELISTED_HEADERS;
use super::policy::AllowedOrigins;
use super::{CorsPolicy, Origin, bounded};
use crate::error::{ConfigError, ConfigErrorKind};

/// Chromium caps preflight caching at two hours; Firefox at 24 hours.
const MAX_AGE_CAP: Duration = Duration::from_secs(7200);
/// The default preflight cache lifetime.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// Methods allowed when [`CorsBuilder::allow_methods`] is not called.
const DEFAULT_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Request headers allowed when [`CorsBuilder::allow_headers`] is not called.
const DEFAULT_HEADERS: [&str; 4] = ["authorization", "content-type", "accept", "x-request-id"];
/// Methods Fetch forbids (`fetch()` throws on them). TRACE echoes the request,
/// credentials included, back to the caller (cross-site tracing), so allowing
/// one is never intended.
const FORBIDDEN_METHODS: [&str; 3] = ["CONNECT", "TRACE", "TRACK"];
/// Methods Fetch upper-cases when a page asks for them in any case ("normalize
/// a method"); every other method goes on the wire exactly as the page wrote it.
const NORMALIZED_METHODS: [&str; 6] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];

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
            if parent.has_ip_host() || !parent.host().contains('.') {
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
