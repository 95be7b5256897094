//! The captured log of CORS refusals: each is one `malicious_cors` event
//! with a stable `reason`, every `event` name is from the shared vocabulary,
//! and attacker text from the request reaches the log only bounded and with
//! its control characters escaped.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use http::header::{ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use palisade_errors::SecurityEvent;
use palisade_errors::testing::{CapturedEvent, EventCapture};
use palisade_headers::{CorsDecision, CorsPolicy};
use tracing::Level;

const ALLOWED: &str = "https://app.example.com";

fn policy() -> CorsPolicy {
    CorsPolicy::builder()
        .allow_origin(ALLOWED)
        .allow_methods(["GET", "POST", "PUT"])
        .allow_headers(["authorization", "x-request-id"])
        .build()
        .unwrap()
}

fn headers(pairs: &[(HeaderName, &[u8])]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(name.clone(), HeaderValue::from_bytes(value).unwrap());
    }
    headers
}

/// Evaluates one request under a fresh capture; returns the decision and
/// the capture.
fn evaluate(
    policy: &CorsPolicy,
    method: &Method,
    request: &HeaderMap,
) -> (CorsDecision, EventCapture) {
    let capture = EventCapture::new();
    let decision = {
        let _guard = capture.set_default();
        policy.evaluate(method, request)
    };
    capture.assert_vocabulary();
    (decision, capture)
}

/// The one `malicious_cors` event of a capture, checking it is the only
/// security event.
fn one_malicious_cors(capture: &EventCapture) -> CapturedEvent {
    let events = capture.security_events();
    assert_eq!(events.len(), 1, "exactly one security event: {events:?}");
    let event = events.into_iter().next().unwrap();
    assert_eq!(event.event(), Some(SecurityEvent::MaliciousCors));
    event
}

/// Evaluates a preflight that must be refused and returns its event.
fn refused_preflight(request: &HeaderMap) -> (CapturedEvent, EventCapture) {
    let (decision, capture) = evaluate(&policy(), &Method::OPTIONS, request);
    assert!(
        matches!(decision, CorsDecision::PreflightRejected(_)),
        "expected a refusal, got {decision:?}"
    );
    let event = one_malicious_cors(&capture);
    assert_eq!(event.level, Level::INFO);
    (event, capture)
}

#[test]
fn preflight_from_a_disallowed_origin() {
    let (event, _) = refused_preflight(&headers(&[
        (ORIGIN, b"https://app.example.com.evil.net"),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
    ]));
    assert_eq!(event.field("reason"), Some("origin_not_allowed"));
    assert_eq!(
        event.field("origin"),
        Some("https://app.example.com.evil.net")
    );
}

#[test]
fn preflight_from_the_null_origin() {
    let (event, _) = refused_preflight(&headers(&[
        (ORIGIN, b"null"),
        (ACCESS_CONTROL_REQUEST_METHOD, b"GET"),
    ]));
    assert_eq!(event.field("reason"), Some("null_origin"));
}

#[test]
fn preflight_with_several_origins() {
    let (event, _) = refused_preflight(&headers(&[
        (ORIGIN, ALLOWED.as_bytes()),
        (ORIGIN, b"https://evil.example.net"),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
    ]));
    assert_eq!(event.field("reason"), Some("several_origins"));
}

#[test]
fn preflight_for_a_disallowed_method() {
    let (event, _) = refused_preflight(&headers(&[
        (ORIGIN, ALLOWED.as_bytes()),
        (ACCESS_CONTROL_REQUEST_METHOD, b"DELETE"),
    ]));
    assert_eq!(event.field("reason"), Some("method_not_allowed"));
    assert_eq!(event.field("origin"), Some(ALLOWED));
    assert_eq!(event.field("detail"), Some("DELETE"));
}

#[test]
fn preflight_for_a_disallowed_header() {
    let (event, _) = refused_preflight(&headers(&[
        (ORIGIN, ALLOWED.as_bytes()),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
        (
            ACCESS_CONTROL_REQUEST_HEADERS,
            b"authorization, x-internal-admin",
        ),
    ]));
    assert_eq!(event.field("reason"), Some("header_not_allowed"));
    assert_eq!(event.field("detail"), Some("x-internal-admin"));
}

#[test]
fn allowed_preflight_and_same_origin_requests_log_no_event() {
    let policy = policy();
    let request = headers(&[
        (ORIGIN, ALLOWED.as_bytes()),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
        (ACCESS_CONTROL_REQUEST_HEADERS, b"authorization"),
    ]);
    let (decision, capture) = evaluate(&policy, &Method::OPTIONS, &request);
    assert!(matches!(decision, CorsDecision::PreflightAllowed(_)));
    assert!(capture.security_events().is_empty());

    let (decision, capture) = evaluate(&policy, &Method::GET, &HeaderMap::new());
    assert!(matches!(decision, CorsDecision::Forward(_)));
    assert!(capture.security_events().is_empty());
}

#[test]
fn forwarded_request_from_a_disallowed_origin_is_one_debug_event() {
    let request = headers(&[(ORIGIN, b"https://evil.example.net")]);
    let (decision, capture) = evaluate(&policy(), &Method::POST, &request);
    let CorsDecision::Forward(cors) = decision else {
        panic!("a simple request is forwarded");
    };
    assert!(cors.allow_origin().is_none());
    let event = one_malicious_cors(&capture);
    assert_eq!(event.level, Level::DEBUG);
    assert_eq!(event.field("reason"), Some("origin_not_allowed"));
}

#[test]
fn private_network_preflight_without_the_opt_in() {
    let request = headers(&[
        (ORIGIN, ALLOWED.as_bytes()),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
        (
            HeaderName::from_static("access-control-request-private-network"),
            b"true",
        ),
    ]);
    let (decision, capture) = evaluate(&policy(), &Method::OPTIONS, &request);
    let CorsDecision::PreflightAllowed(answer) = decision else {
        panic!("the preflight itself is answered");
    };
    assert!(!answer.contains_key("access-control-allow-private-network"));
    let event = one_malicious_cors(&capture);
    assert_eq!(event.level, Level::DEBUG);
    assert_eq!(event.field("reason"), Some("private_network_not_allowed"));

    let opted_in = CorsPolicy::builder()
        .allow_origin(ALLOWED)
        .allow_private_network(true)
        .build()
        .unwrap();
    let (decision, capture) = evaluate(&opted_in, &Method::OPTIONS, &request);
    assert!(matches!(decision, CorsDecision::PreflightAllowed(_)));
    assert!(capture.security_events().is_empty());
}

#[test]
fn attacker_text_is_bounded_and_control_characters_are_escaped() {
    const MARKER: &str = "PALISADE-MARKER-7f3a";
    // The marker sits past the logged bound, after a long run of filler.
    let long_origin = format!("https://{}.example/{MARKER}", "a".repeat(200));
    let (event, capture) = refused_preflight(&headers(&[
        (ORIGIN, long_origin.as_bytes()),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
    ]));
    assert_eq!(event.field("reason"), Some("origin_not_allowed"));
    let logged = event.field("origin").unwrap();
    assert!(logged.len() <= 131, "bounded: {} characters", logged.len());
    assert!(logged.starts_with("https://aaaa"));
    capture.assert_absent(MARKER);

    // A tab (the one control character a header value may hold) and a C1
    // control (NEL, U+0085, sent as UTF-8) could forge or split a log line.
    let (event, capture) = refused_preflight(&headers(&[
        (ORIGIN, b"https://evil.example\tuser=admin \xc2\x85forged=1"),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
    ]));
    capture.assert_absent("\t");
    capture.assert_absent("\u{85}");
    assert_eq!(
        event.field("origin"),
        Some("https://evil.example\\x09user=admin \\xc2\\x85forged=1")
    );

    // The same for a refused header name, which is logged as `detail`.
    let (event, capture) = refused_preflight(&headers(&[
        (ORIGIN, ALLOWED.as_bytes()),
        (ACCESS_CONTROL_REQUEST_METHOD, b"PUT"),
        (ACCESS_CONTROL_REQUEST_HEADERS, b"x-a\tb\xc2\x85"),
    ]));
    assert_eq!(event.field("reason"), Some("header_not_allowed"));
    assert_eq!(event.field("detail"), Some("x-a\\x09b\\xc2\\x85"));
    capture.assert_absent("\t");
    capture.assert_absent("\u{85}");
}
