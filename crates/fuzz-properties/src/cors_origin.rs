//! Arbitrary bytes as an `Origin` header → parsing never panics, a parsed
//! origin's normalized form parses to itself, and the policy only ever echoes
//! a value that parses to an allowed origin (never `*`, never to a refused
//! preflight).

use std::sync::OnceLock;

use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY};
use http::{HeaderMap, HeaderValue, Method};
use palisade_headers::{CorsDecision, CorsPolicy, Origin};

fn policy() -> &'static CorsPolicy {
    static POLICY: OnceLock<CorsPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        CorsPolicy::builder()
            .allow_origins([
                "https://app.example.com",
                "http://localhost:3000",
                "http://[::1]:3000",
            ])
            .allow_subdomains_of("https://example.org")
            .allow_credentials(true)
            .allow_private_network(true)
            .build()
            .expect("the fuzz policy builds")
    })
}

fn check_round_trip(origin: &Origin) {
    let again = Origin::parse(origin.as_str()).expect("a normalized origin parses");
    assert_eq!(&again, origin, "parse(normalized) == self");
    assert_eq!(again.as_str(), origin.as_str());
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(origin) = Origin::parse(&text) {
        check_round_trip(&origin);
    }

    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let parsed = Origin::from_header(&value);
    if let Some(origin) = &parsed {
        check_round_trip(origin);
    }
    let allowed = parsed
        .as_ref()
        .is_some_and(|origin| policy().allows_origin(origin));

    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, value.clone());
    match policy().evaluate(&Method::GET, &headers) {
        CorsDecision::Forward(cors) => {
            assert_eq!(cors.allow_origin(), allowed.then_some(&value));
            let mut response = HeaderMap::new();
            cors.apply(&mut response);
            assert!(response.contains_key(VARY));
        }
        other => panic!("a GET is never a preflight: {other:?}"),
    }

    headers.insert(
        ACCESS_CONTROL_REQUEST_METHOD,
        HeaderValue::from_static("PUT"),
    );
    match policy().evaluate(&Method::OPTIONS, &headers) {
        CorsDecision::PreflightAllowed(response) => {
            assert!(allowed, "only an allowed origin passes a preflight");
            assert_eq!(response.get(ACCESS_CONTROL_ALLOW_ORIGIN), Some(&value));
        }
        CorsDecision::PreflightRejected(error) => {
            assert!(!allowed, "an allowed origin asking for PUT passes");
            assert!(!error.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        }
        CorsDecision::Forward(_) => panic!("OPTIONS with Origin and ACRM is a preflight"),
    }
}
