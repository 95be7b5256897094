//! The real authentication and rate-limit layers in `Hardening`'s
//! `identity` and `limit` slots, both adapters: every refusal they make ×
//! an allowed `Origin`, a foreign one and none. Each adapter's
//! `tests/hardening_layers.rs` includes it beside the two tables it builds
//! on:
//!
//! ```ignore
//! #[path = "../../../tests/hardening_cases.rs"]
//! mod hardening_cases;
//! #[path = "../../../tests/identity_cases.rs"]
//! mod identity_cases;
//! #[path = "../../../tests/hardening_layer_cases.rs"]
//! mod hardening_layer_cases;
//! ```
//!
//! For each case and origin it builds a fresh app (so one case's budget is
//! not another's):
//!
//! - `Hardening` with [`header_policy`](crate::hardening_cases::header_policy),
//!   [`cors_policy`](crate::hardening_cases::cors_policy),
//!   `.identity(<AuthLayer | Authentication>::new(Arc::new(identity_cases::authenticator(..)), case.mode))`
//!   and `.limit(<RateLimitLayer | RateLimit>::new(identity_cases::limiter(),
//!   by_extension(identity_cases::subject_key).or_key(by_ip(ClientIpResolver::peer_only()))))`
//!   — the per-user limit the READMEs show (3/minute, anonymous callers
//!   keyed by their address);
//! - one route, `GET /items`, answering [`identity_cases::answer`](crate::identity_cases::answer).
//!
//! It sends [`LayerCase::warm_up`] admitted calls, then the checked call
//! from [`PEER`] (the token of [`identity_cases::authorization`](crate::identity_cases::authorization)
//! and the origin), and calls [`check`] with what it observed — the security
//! events at `INFO` or above that the checked call logged included.

#![allow(dead_code)] // each adapter uses the whole table; Cargo may not

use http::{HeaderMap, Method};
use palisade_auth_tokens::bearer::AuthMode;

use crate::hardening_cases;
use crate::identity_cases::{Caller, REALM};

/// The socket peer of every call.
pub const PEER: &str = "198.51.100.20:4000";

/// One refusal (or admission) of the real layers.
#[derive(Debug)]
pub struct LayerCase {
    /// For the failure report.
    pub name: &'static str,
    /// The authentication layer's mode.
    pub mode: AuthMode,
    /// Who calls.
    pub caller: Caller,
    /// Admitted calls by the same caller before the checked one.
    pub warm_up: u32,
    /// The checked call's status.
    pub status: u16,
    /// The one security event the checked call logs, if any.
    pub event: Option<&'static str>,
}

const TOKEN: Option<&str> = Some("authn_token_invalid");
const LIMITED: Option<&str> = Some("excess_rate_limit_exceeded");

/// Every case.
pub const LAYER_CASES: &[LayerCase] = &[
    LayerCase {
        name: "authenticated",
        mode: AuthMode::Required,
        caller: Caller::Alice,
        warm_up: 0,
        status: 200,
        event: None,
    },
    LayerCase {
        name: "missing_token",
        mode: AuthMode::Required,
        caller: Caller::Anonymous,
        warm_up: 0,
        status: 401,
        event: TOKEN,
    },
    LayerCase {
        name: "forged_token",
        mode: AuthMode::Required,
        caller: Caller::Forged,
        warm_up: 0,
        status: 401,
        event: TOKEN,
    },
    LayerCase {
        name: "forged_token_at_optional_auth",
        mode: AuthMode::Optional,
        caller: Caller::Forged,
        warm_up: 0,
        status: 401,
        event: TOKEN,
    },
    LayerCase {
        name: "per_user_limit",
        mode: AuthMode::Required,
        caller: Caller::Alice,
        warm_up: 3,
        status: 429,
        event: LIMITED,
    },
    LayerCase {
        name: "anonymous_limited_by_address",
        mode: AuthMode::Optional,
        caller: Caller::Anonymous,
        warm_up: 3,
        status: 429,
        event: LIMITED,
    },
];

/// What an adapter observed for the checked call.
#[derive(Debug)]
pub struct Observed {
    /// The status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The `event` field of every security event at `INFO` or above.
    pub events: Vec<String>,
}

/// Asserts what the checked call must get: everything the response-class
/// table asks of every response (request id in the header and the envelope,
/// security headers, ACAO only for the allowed origin, `Vary: Origin`), the
/// refusal's own headers, and one event per refusal.
pub fn check(case: &LayerCase, origin: Option<&str>, observed: &Observed) {
    let what = format!("{} from {origin:?}: {observed:?}", case.name);
    let class = hardening_cases::Case {
        name: case.name,
        method: Method::GET,
        path: "/items",
        headers: &[],
        body: "",
        status: case.status,
        status_without_origin: case.status,
        allow: None,
        refused_preflight: false,
    };
    hardening_cases::check(
        &class,
        origin,
        observed.status,
        &observed.headers,
        &observed.body,
    );
    let expected: Vec<&str> = case.event.into_iter().collect();
    assert_eq!(observed.events, expected, "one refusal, one event: {what}");
    let header = |name: &str| {
        observed
            .headers
            .get(name)
            .map(|value| value.to_str().expect("ASCII header"))
    };
    let json: serde_json::Value = serde_json::from_slice(&observed.body).unwrap_or_default();
    let code = json["error"]["code"].as_str();
    match case.status {
        200 => {
            let subject = match case.caller {
                Caller::Alice => "alice",
                Caller::Bob => "bob",
                _ => "anonymous",
            };
            assert_eq!(observed.body, subject.as_bytes(), "{what}");
            assert!(header("ratelimit").is_some(), "metered: {what}");
        }
        401 => {
            assert_eq!(code, Some("unauthorized"), "{what}");
            let challenge = if case.caller == Caller::Anonymous {
                format!("Bearer realm=\"{REALM}\"")
            } else {
                format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
            };
            assert_eq!(header("www-authenticate"), Some(&*challenge), "{what}");
        }
        429 => {
            assert_eq!(code, Some("rate_limited"), "{what}");
            assert!(header("retry-after").is_some(), "Retry-After: {what}");
        }
        other => panic!("no rule for {other}: {what}"),
    }
}
