//! The shared case table of the composition helpers (`palisade_axum::Hardening`,
//! `palisade_actix::Hardening`): every response class × an allowed `Origin`, a
//! foreign one and none. Each adapter's `tests/hardening.rs` includes it with
//!
//! ```ignore
//! #[path = "../../../tests/hardening_cases.rs"]
//! mod hardening_cases;
//! ```
//!
//! builds an app with [`cors_policy`], [`header_policy`] and the routes below,
//! sends [`request`] for each case and origin, and calls [`check`].
//!
//! Routes every app registers (`/items` GET and POST registered as two
//! separate routes, the way `App::route` does in actix):
//! - `GET /items` → 200 `items`; `POST /items` takes JSON `{"name": string}`
//!   with a body limit of [`BODY_LIMIT`] bytes;
//! - `GET /unauthorized`, `/forbidden`, `/limited` → the handler returns the
//!   error (401 with `WWW-Authenticate`, 403, 429 with `Retry-After`);
//! - `GET /boom` panics.

#![allow(dead_code)]

use http::{HeaderMap, Method};

/// The origin the CORS policy allows.
pub const ALLOWED: &str = "https://app.example.com";
/// An origin it does not.
pub const FOREIGN: &str = "https://evil.example";
/// Every origin variant: allowed, foreign, none.
pub const ORIGINS: [Option<&str>; 3] = [Some(ALLOWED), Some(FOREIGN), None];
/// The JSON body limit of `POST /items`.
pub const BODY_LIMIT: usize = 64;

/// The CORS policy of every app.
pub fn cors_policy() -> palisade_headers::CorsPolicy {
    palisade_headers::CorsPolicy::builder()
        .allow_origin(ALLOWED)
        .build()
        .expect("valid CORS policy")
}

/// The security headers of every app.
pub fn header_policy() -> palisade_headers::SecurityHeaders {
    palisade_headers::HeaderPolicy::api()
        .build()
        .expect("valid header policy")
}

/// One response class.
pub struct Case {
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: &'static str,
    /// The status with an `Origin` header (allowed or foreign).
    pub status: u16,
    /// The status without one (a preflight needs an `Origin`).
    pub status_without_origin: u16,
    /// The `Allow` header a 405 must carry.
    pub allow: Option<&'static str>,
    /// A preflight the policy refuses even for the allowed origin.
    pub refused_preflight: bool,
}

const NONE: &[(&str, &str)] = &[];
const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

fn case(name: &'static str, method: Method, path: &'static str, status: u16) -> Case {
    Case {
        name,
        method,
        path,
        headers: NONE,
        body: "",
        status,
        status_without_origin: status,
        allow: None,
        refused_preflight: false,
    }
}

/// Every response class.
pub fn cases() -> Vec<Case> {
    let big =
        r#"{"name": "0123456789012345678901234567890123456789012345678901234567890123456789"}"#;
    vec![
        case("ok", Method::GET, "/items", 200),
        Case {
            body: r#"{"name": "a"}"#,
            headers: JSON,
            ..case("created", Method::POST, "/items", 200)
        },
        case("head", Method::HEAD, "/items", 200),
        Case {
            headers: &[
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-evil"),
            ],
            status_without_origin: 405,
            allow: Some("GET, HEAD, POST"),
            refused_preflight: true,
            ..case("refused_preflight", Method::OPTIONS, "/items", 403)
        },
        case("unauthorized", Method::GET, "/unauthorized", 401),
        case("forbidden", Method::GET, "/forbidden", 403),
        case("not_found", Method::GET, "/no/such/path", 404),
        Case {
            allow: Some("GET, HEAD, POST"),
            ..case("method_not_allowed", Method::DELETE, "/items", 405)
        },
        Case {
            body: big,
            headers: JSON,
            ..case("payload_too_large", Method::POST, "/items", 413)
        },
        Case {
            body: r#"{"name": "a"}"#,
            headers: &[("content-type", "text/plain")],
            ..case("unsupported_media_type", Method::POST, "/items", 415)
        },
        Case {
            body: r#"{"name": 7}"#,
            headers: JSON,
            ..case("validation_failed", Method::POST, "/items", 422)
        },
        case("rate_limited", Method::GET, "/limited", 429),
        case("panic", Method::GET, "/boom", 500),
    ]
}

/// The request headers of `case` from `origin`.
pub fn request_headers(case: &Case, origin: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in case.headers {
        headers.append(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_static(value),
        );
    }
    if let Some(origin) = origin {
        headers.insert(
            http::header::ORIGIN,
            http::HeaderValue::from_str(origin).expect("origin"),
        );
    }
    headers
}

/// Asserts what every response must carry.
pub fn check(case: &Case, origin: Option<&str>, status: u16, headers: &HeaderMap, body: &[u8]) {
    let what = format!("{} from {origin:?}", case.name);
    let expected = if origin.is_some() {
        case.status
    } else {
        case.status_without_origin
    };
    assert_eq!(status, expected, "{what}: status");
    // The request id, in the header and (for errors) in the envelope.
    let id = headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("{what}: no X-Request-Id"))
        .to_str()
        .expect("ASCII request id");
    if status >= 400 {
        let json: serde_json::Value = serde_json::from_slice(body)
            .unwrap_or_else(|_| panic!("{what}: body is not the envelope"));
        assert_eq!(
            json["error"]["request_id"], id,
            "{what}: envelope request id"
        );
    }
    if case.method == Method::HEAD {
        assert!(body.is_empty(), "{what}: HEAD answered with a body");
    }
    // The security headers.
    assert_eq!(
        headers.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "{what}: security headers"
    );
    // CORS: ACAO only for the allowed origin (and not on a refused preflight).
    let acao = headers.get(http::header::ACCESS_CONTROL_ALLOW_ORIGIN);
    if origin == Some(ALLOWED) && !case.refused_preflight {
        assert_eq!(
            acao.map(|v| v.as_bytes()),
            Some(ALLOWED.as_bytes()),
            "{what}: ACAO"
        );
    } else {
        assert!(acao.is_none(), "{what}: ACAO {acao:?}");
    }
    let vary_origin = headers
        .get_all(http::header::VARY)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .any(|item| item.trim().eq_ignore_ascii_case("origin"));
    assert!(vary_origin, "{what}: Vary: Origin");
    if status == 405 {
        // The same list in both adapters (axum writes `GET,HEAD`, actix
        // `GET, HEAD`: compared as lists).
        let allow: Vec<String> = headers
            .get_all(http::header::ALLOW)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect();
        let expected: Vec<String> = case
            .allow
            .unwrap_or("")
            .split(", ")
            .map(str::to_owned)
            .collect();
        assert_eq!(allow, expected, "{what}: Allow");
    }
}
