//! The validated [`CorsPolicy`]: which origins it lets in, and whether its
//! settings are fit for production.

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;

use super::{CorsConfig, Origin};

/// Which origins a policy lets in.
#[derive(Clone, Debug)]
pub(super) enum AllowedOrigins {
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
    // `pub(super)`: `builder` fills these and `evaluate` reads them; outside
    // `cors` a policy only comes out of `CorsBuilder::build`'s checks.
    pub(super) origins: AllowedOrigins,
    /// Allowed methods, compared byte for byte with `Access-Control-Request-Method`.
    pub(super) methods: Vec<Method>,
    /// Allowed request headers, lowercase.
    pub(super) headers: Vec<HeaderName>,
    pub(super) credentials: bool,
    pub(super) private_network: bool,
    pub(super) allow_methods: Option<HeaderValue>,
    pub(super) allow_headers: Option<HeaderValue>,
    pub(super) expose_headers: Option<HeaderValue>,
    pub(super) max_age: HeaderValue,
}

impl CorsPolicy {
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
                    .find(|origin| !origin.is_https() && !origin.is_loopback())
                {
                    Some(origin) => Err(UnsafeCors::PlainHttpOrigin(origin.clone())),
                    None => Ok(()),
                }
            }
        }
    }
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
