//! The shared CORS case table.
//!
//! Plain data plus the assertions every CORS implementation in the workspace
//! must pass: the core ([`palisade_headers::CorsPolicy::evaluate`], in
//! `tests/cors.rs`) and each framework adapter, which includes this file with
//!
//! ```ignore
//! #[path = "../../headers/tests/cors_cases.rs"]
//! mod cors_cases;
//! ```
//!
//! builds a request from [`request_headers`] for each of [`CASES`], sends it
//! through its middleware built from [`policy`], turns the HTTP response into
//! an [`Outcome`] and calls [`check`] (and [`check_rejection_body`] with the
//! body of a rejected preflight).
//!
//! Only `http` and `palisade_headers` are used, so that any test crate can
//! include it. Cargo also builds it as its own (empty) test binary.
//!
//! Decisions the table pins down:
//! - a subdomain pattern covers subdomains only, not the parent itself;
//! - `Access-Control-Request-Method` is compared byte for byte: `put` is not
//!   `PUT` (Fetch upper-cases only a page's `put`, so a lowercase one never
//!   comes from a browser);
//! - the allowed `Access-Control-Allow-Origin` echoes the raw `Origin` value
//!   (a browser compares the two byte for byte);
//! - two `Origin` headers are never allowed.

use Expect::{Forward, PreflightAllowed, PreflightRejected};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    CONTENT_TYPE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use palisade_headers::{CorsDecision, CorsPolicy};

/// Origins allowed exactly.
#[allow(dead_code)]
pub const ALLOWED_ORIGINS: &[&str] = &["https://app.example.com", "http://localhost:3000"];
/// Parent whose subdomains are allowed.
#[allow(dead_code)]
pub const SUBDOMAINS_OF: &str = "https://example.org";
/// Response headers exposed to allowed origins.
#[allow(dead_code)]
pub const EXPOSED: &[&str] = &["X-Request-Id"];

/// The policy every case runs against: the origins above, credentials and
/// private network access on, the default methods and headers, max-age 600 s.
#[allow(dead_code)]
pub fn policy() -> CorsPolicy {
    CorsPolicy::builder()
        .allow_origins(ALLOWED_ORIGINS)
        .allow_subdomains_of(SUBDOMAINS_OF)
        .expose_headers(EXPOSED)
        .allow_credentials(true)
        .allow_private_network(true)
        .max_age(std::time::Duration::from_secs(600))
        .build()
        .expect("the shared CORS policy builds")
}

/// One request and what must come of it.
#[allow(dead_code)]
#[derive(Debug)]
pub struct CorsCase {
    /// The Fetch rule or the attack the case covers.
    pub name: &'static str,
    /// The request method, exactly as sent.
    pub method: &'static str,
    /// Request headers in order; a repeated name is sent as several lines.
    pub headers: &'static [(&'static str, &'static str)],
    /// The expected outcome.
    pub expect: Expect,
}

/// What a case must produce.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The preflight is answered without reaching the application.
    PreflightAllowed {
        /// The exact `Access-Control-Allow-Origin` value.
        allow_origin: &'static str,
        /// Whether `Access-Control-Allow-Private-Network: true` is sent.
        private_network: bool,
    },
    /// The preflight is refused with a 403 `cors_rejected`.
    PreflightRejected,
    /// The request reaches the application.
    Forward {
        /// The exact `Access-Control-Allow-Origin` value, if any.
        allow_origin: Option<&'static str>,
    },
}

/// A framework-neutral view of what the middleware did with a request.
#[allow(dead_code)]
#[derive(Debug)]
pub struct Outcome {
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// Whether the application handler ran.
    pub forwarded: bool,
}

const ORIGIN: &str = "Origin";
const ACRM: &str = "Access-Control-Request-Method";
const ACRH: &str = "Access-Control-Request-Headers";
const ACRPN: &str = "Access-Control-Request-Private-Network";

/// Allowed preflight from the primary origin, no private network.
const ALLOWED_APP: Expect = PreflightAllowed {
    allow_origin: "https://app.example.com",
    private_network: false,
};
const FORWARD_NONE: Expect = Forward { allow_origin: None };

/// The table.
#[allow(dead_code)]
pub const CASES: &[CorsCase] = &[
    // --- Actual (non-preflight) requests -----------------------------------
    CorsCase {
        name: "simple GET from an allowed origin gets ACAO, credentials and exposed headers",
        method: "GET",
        headers: &[(ORIGIN, "https://app.example.com")],
        expect: Forward {
            allow_origin: Some("https://app.example.com"),
        },
    },
    CorsCase {
        name: "POST from an allowed origin (localhost dev server with port)",
        method: "POST",
        headers: &[
            (ORIGIN, "http://localhost:3000"),
            ("Content-Type", "application/json"),
        ],
        expect: Forward {
            allow_origin: Some("http://localhost:3000"),
        },
    },
    CorsCase {
        name: "actual request from a disallowed origin is forwarded without ACAO (the browser hides the response)",
        method: "GET",
        headers: &[(ORIGIN, "https://evil.example.net")],
        expect: FORWARD_NONE,
    },
    CorsCase {
        name: "same-origin request without Origin is forwarded without ACAO, Vary still set",
        method: "GET",
        headers: &[],
        expect: FORWARD_NONE,
    },
    CorsCase {
        name: "actual request with Origin: null (sandboxed iframe, file:, data:) gets no ACAO",
        method: "GET",
        headers: &[(ORIGIN, "null")],
        expect: FORWARD_NONE,
    },
    CorsCase {
        name: "two Origin headers on an actual request: forwarded without ACAO (check-one-echo-other)",
        method: "GET",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ORIGIN, "https://evil.example.net"),
        ],
        expect: FORWARD_NONE,
    },
    CorsCase {
        name: "origin normalization: HTTPS://APP.EXAMPLE.COM:443 is allowed and ACAO echoes the raw value",
        method: "GET",
        headers: &[(ORIGIN, "HTTPS://APP.EXAMPLE.COM:443")],
        expect: Forward {
            allow_origin: Some("HTTPS://APP.EXAMPLE.COM:443"),
        },
    },
    CorsCase {
        name: "subdomain pattern: multi-label https://a.b.example.org is allowed",
        method: "GET",
        headers: &[(ORIGIN, "https://a.b.example.org")],
        expect: Forward {
            allow_origin: Some("https://a.b.example.org"),
        },
    },
    CorsCase {
        name: "prefix attack on an actual request: https://evilapp.example.com gets no ACAO",
        method: "GET",
        headers: &[(ORIGIN, "https://evilapp.example.com")],
        expect: FORWARD_NONE,
    },
    // --- OPTIONS that are not preflights ----------------------------------
    CorsCase {
        name: "plain OPTIONS without Access-Control-Request-Method is forwarded to the application, with ACAO",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com")],
        expect: Forward {
            allow_origin: Some("https://app.example.com"),
        },
    },
    CorsCase {
        name: "plain OPTIONS without Access-Control-Request-Method from a disallowed origin: forwarded, no ACAO",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://evil.example.net")],
        expect: FORWARD_NONE,
    },
    CorsCase {
        name: "OPTIONS with Access-Control-Request-Method but no Origin is not a preflight",
        method: "OPTIONS",
        headers: &[(ACRM, "PUT")],
        expect: FORWARD_NONE,
    },
    // --- Preflights allowed -----------------------------------------------
    CorsCase {
        name: "preflight PUT with Authorization and Content-Type is allowed",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ACRM, "PUT"),
            (ACRH, "authorization,content-type"),
        ],
        expect: ALLOWED_APP,
    },
    CorsCase {
        name: "preflight PATCH with X-Request-Id from the localhost dev origin is allowed",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "http://localhost:3000"),
            (ACRM, "PATCH"),
            (ACRH, "x-request-id"),
        ],
        expect: PreflightAllowed {
            allow_origin: "http://localhost:3000",
            private_network: false,
        },
    },
    CorsCase {
        name: "preflight for a CORS-safelisted method (HEAD) not in the list is allowed",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com"), (ACRM, "HEAD")],
        expect: ALLOWED_APP,
    },
    CorsCase {
        name: "preflight: origin normalization, HTTPS://APP.EXAMPLE.COM:443 allowed and echoed raw",
        method: "OPTIONS",
        headers: &[(ORIGIN, "HTTPS://APP.EXAMPLE.COM:443"), (ACRM, "DELETE")],
        expect: PreflightAllowed {
            allow_origin: "HTTPS://APP.EXAMPLE.COM:443",
            private_network: false,
        },
    },
    CorsCase {
        name: "subdomain pattern: https://api.example.org preflight is allowed",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://api.example.org"),
            (ACRM, "POST"),
            (ACRH, "content-type"),
        ],
        expect: PreflightAllowed {
            allow_origin: "https://api.example.org",
            private_network: false,
        },
    },
    CorsCase {
        name: "Private Network Access preflight is allowed with Access-Control-Allow-Private-Network",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ACRM, "GET"),
            (ACRPN, "true"),
        ],
        expect: PreflightAllowed {
            allow_origin: "https://app.example.com",
            private_network: true,
        },
    },
    CorsCase {
        name: "Access-Control-Request-Headers are case-insensitive, whitespace and empty items tolerated",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ACRM, "PUT"),
            (ACRH, " authorization , ,CONTENT-TYPE,"),
        ],
        expect: ALLOWED_APP,
    },
    CorsCase {
        name: "Access-Control-Request-Headers split over two header lines are all checked",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ACRM, "PUT"),
            (ACRH, "authorization"),
            (ACRH, "X-Request-Id"),
        ],
        expect: ALLOWED_APP,
    },
    CorsCase {
        name: "CORS-safelisted request headers (Accept, Accept-Language, Content-Language, Content-Type) are always allowed",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ACRM, "POST"),
            (ACRH, "accept,accept-language,content-language,content-type"),
        ],
        expect: ALLOWED_APP,
    },
    // --- Preflights rejected: method and headers --------------------------
    CorsCase {
        name: "preflight for TRACE (forbidden method, cross-site tracing) is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com"), (ACRM, "TRACE")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "preflight for CONNECT is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com"), (ACRM, "CONNECT")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "preflight for a method not in the list (PROPFIND) is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com"), (ACRM, "PROPFIND")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "methods are case-sensitive (Fetch): lowercase put is not PUT and is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com"), (ACRM, "put")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "preflight with an empty Access-Control-Request-Method is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com"), (ACRM, "")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "preflight asking for a header not in the list (X-Evil) is rejected",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ACRM, "PUT"),
            (ACRH, "authorization, X-Evil"),
        ],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "a disallowed header on a second Access-Control-Request-Headers line is still caught",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ACRM, "PUT"),
            (ACRH, "authorization"),
            (ACRH, "x-evil"),
        ],
        expect: PreflightRejected,
    },
    // --- Preflights rejected: origin --------------------------------------
    CorsCase {
        name: "preflight from a disallowed origin is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://evil.example.net"), (ACRM, "PUT")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "preflight from Origin: null (sandboxed iframe, file:, data:) is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "null"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "preflight with Origin: * is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "*"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "preflight with an empty Origin is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, ""), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "suffix attack: https://app.example.com.evil.net is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com.evil.net"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "prefix attack: https://evilapp.example.com is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://evilapp.example.com"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "port matters: https://app.example.com:8443 is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com:8443"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "port matters on localhost: http://localhost:3001 is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "http://localhost:3001"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "scheme matters (downgrade): http://app.example.com is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "http://app.example.com"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "subdomain pattern covers subdomains only: https://example.org itself is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://example.org"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "subdomain pattern is label-bounded: https://notexample.org is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://notexample.org"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "subdomain pattern suffix attack: https://example.org.evil.com is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://example.org.evil.com"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "subdomain pattern keeps the scheme: http://api.example.org is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "http://api.example.org"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "subdomain pattern keeps the port: https://api.example.org:8443 is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://api.example.org:8443"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "origin with a path (https://app.example.com/x) is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com/x"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "origin with a trailing slash is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com/"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "origin with userinfo (https://user@app.example.com) is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://user@app.example.com"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "userinfo look-alike (https://app.example.com@evil.net) is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com@evil.net"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "two Origin headers on a preflight are rejected",
        method: "OPTIONS",
        headers: &[
            (ORIGIN, "https://app.example.com"),
            (ORIGIN, "https://app.example.com"),
            (ACRM, "GET"),
        ],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "non-ASCII origin (Unicode IDN look-alike) is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://äpp.example.com"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "control byte (tab) inside the Origin is rejected",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app.example.com\t"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
    CorsCase {
        name: "space-padded Origin is rejected, not trimmed",
        method: "OPTIONS",
        headers: &[(ORIGIN, "https://app .example.com"), (ACRM, "GET")],
        expect: PreflightRejected,
    },
];

/// The request headers of `case`. Values go through
/// [`HeaderValue::from_bytes`], so non-ASCII bytes reach the policy as a
/// server would receive them.
#[allow(dead_code)]
pub fn request_headers(case: &CorsCase) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in case.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|_| panic!("case {:?}: bad header name {name:?}", case.name));
        let value = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| {
            panic!(
                "case {:?}: header value {value:?} cannot be sent",
                case.name
            )
        });
        headers.append(name, value);
    }
    headers
}

/// The [`Outcome`] of a core decision: a preflight answer is a 204, a
/// rejection the error's response, and a forwarded request a 200 whose
/// (empty) headers had the [`CorsResponse`](palisade_headers::cors::CorsResponse)
/// applied. Also checks that a rejection is a `cors_rejected` error.
#[allow(dead_code)]
pub fn outcome_from_decision(decision: CorsDecision) -> Outcome {
    match decision {
        CorsDecision::PreflightAllowed(headers) => Outcome {
            status: 204,
            headers,
            forwarded: false,
        },
        CorsDecision::PreflightRejected(error) => {
            assert_eq!(
                error.kind().code(),
                "cors_rejected",
                "a refused preflight is cors_rejected"
            );
            let response = error.to_response(None);
            check_rejection_body(response.body());
            Outcome {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                forwarded: false,
            }
        }
        CorsDecision::Forward(cors) => {
            let mut headers = HeaderMap::new();
            cors.apply(&mut headers);
            Outcome {
                status: 200,
                headers,
                forwarded: true,
            }
        }
    }
}

/// Asserts that a rejected preflight's body is the `cors_rejected` envelope.
#[allow(dead_code)]
pub fn check_rejection_body(body: &[u8]) {
    let needle = br#""code":"cors_rejected""#;
    assert!(
        body.windows(needle.len()).any(|window| window == needle),
        "a refused preflight's body carries code cors_rejected, got {:?}",
        String::from_utf8_lossy(body)
    );
}

fn values(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}

fn lists(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    values(headers, name).iter().any(|value| {
        value
            .split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    })
}

fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h [u8]> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    assert!(
        all.next().is_none(),
        "{name} is sent once, got {:?}",
        values(headers, name)
    );
    Some(first.as_bytes())
}

/// Asserts that `outcome` is what `case` expects (panics naming the case).
#[allow(dead_code)]
pub fn check(case: &CorsCase, outcome: Outcome) {
    let name = case.name;
    let headers = &outcome.headers;
    let fail = |what: &str| -> ! { panic!("case {name:?}: {what}; outcome: {outcome:?}") };
    let acao = single(headers, &ACCESS_CONTROL_ALLOW_ORIGIN);
    let acac = single(headers, &ACCESS_CONTROL_ALLOW_CREDENTIALS);

    // Rules that hold for every outcome.
    if !lists(headers, &VARY, "origin") {
        fail("Vary must list Origin in every outcome (or a cache mixes origins up)");
    }
    if acao == Some(b"*") {
        fail("Access-Control-Allow-Origin must never be * under this policy");
    }
    if acac.is_some() && (acao.is_none() || acac != Some(b"true")) {
        fail(
            "Access-Control-Allow-Credentials is `true` and only alongside Access-Control-Allow-Origin",
        );
    }

    match case.expect {
        PreflightAllowed {
            allow_origin,
            private_network,
        } => {
            if outcome.forwarded {
                fail("an allowed preflight is answered without calling the application");
            }
            if !(200..300).contains(&outcome.status) {
                fail("an allowed preflight is a 2xx");
            }
            if acao != Some(allow_origin.as_bytes()) {
                fail(&format!(
                    "Access-Control-Allow-Origin must be exactly {allow_origin:?}"
                ));
            }
            if acac != Some(b"true") {
                fail("credentials are on: Access-Control-Allow-Credentials: true");
            }
            if single(headers, &ACCESS_CONTROL_ALLOW_METHODS)
                != Some(b"GET, POST, PUT, PATCH, DELETE")
            {
                fail("Access-Control-Allow-Methods lists the default methods");
            }
            for header in ["authorization", "content-type", "accept", "x-request-id"] {
                if !lists(headers, &ACCESS_CONTROL_ALLOW_HEADERS, header) {
                    fail(&format!("Access-Control-Allow-Headers lists {header}"));
                }
            }
            if single(headers, &ACCESS_CONTROL_MAX_AGE) != Some(b"600") {
                fail("Access-Control-Max-Age is 600");
            }
            for varied in [
                "access-control-request-method",
                "access-control-request-headers",
            ] {
                if !lists(headers, &VARY, varied) {
                    fail(&format!("a preflight answer's Vary lists {varied}"));
                }
            }
            let pna = single(
                headers,
                &HeaderName::from_static("access-control-allow-private-network"),
            );
            match (private_network, pna) {
                (true, Some(b"true")) | (false, None) => {}
                (true, _) => fail("Access-Control-Allow-Private-Network: true is expected"),
                (false, Some(_)) => {
                    fail("Access-Control-Allow-Private-Network only when the request asked for it")
                }
            }
            if headers.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS) {
                fail("Access-Control-Expose-Headers belongs on actual responses, not preflights");
            }
        }
        PreflightRejected => {
            if outcome.forwarded {
                fail("a refused preflight never reaches the application");
            }
            if outcome.status != 403 {
                fail("a refused preflight is a 403");
            }
            if acao.is_some() || acac.is_some() {
                fail("a refused preflight carries no Access-Control-Allow-Origin or -Credentials");
            }
            if headers.contains_key(ACCESS_CONTROL_ALLOW_METHODS)
                || headers.contains_key(ACCESS_CONTROL_ALLOW_HEADERS)
            {
                fail("a refused preflight grants no methods or headers");
            }
            if let Some(content_type) = single(headers, &CONTENT_TYPE)
                && content_type != b"application/json"
            {
                fail("a refused preflight is the JSON error envelope");
            }
        }
        Forward { allow_origin } => {
            if !outcome.forwarded {
                fail("a non-preflight request reaches the application");
            }
            if acao != allow_origin.map(str::as_bytes) {
                fail(&format!(
                    "Access-Control-Allow-Origin must be {allow_origin:?}"
                ));
            }
            let exposes = EXPOSED
                .iter()
                .all(|name| lists(headers, &ACCESS_CONTROL_EXPOSE_HEADERS, name));
            match allow_origin {
                Some(_) => {
                    if acac != Some(b"true") {
                        fail("credentials are on: Access-Control-Allow-Credentials: true");
                    }
                    if !exposes {
                        fail("Access-Control-Expose-Headers lists the exposed headers");
                    }
                }
                None => {
                    if headers.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS) {
                        fail("no Access-Control-Expose-Headers without an allowed origin");
                    }
                }
            }
        }
    }
}
