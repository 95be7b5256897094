//! CORS: the shared case table against the core, plus origin parsing,
//! builder checks, configuration and `Vary` merging.

mod cors_cases;

use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method};
use palisade_headers::cors::{CorsBuilder, CorsConfig, CorsResponse, UnsafeCors};
use palisade_headers::{ConfigErrorKind, CorsDecision, CorsPolicy, Origin};
use proptest::prelude::*;

fn request(origin: Option<&'static str>, extra: &[(http::HeaderName, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(origin) = origin {
        headers.insert(ORIGIN, HeaderValue::from_static(origin));
    }
    for (name, value) in extra {
        headers.append(name.clone(), HeaderValue::from_static(value));
    }
    headers
}

fn forward(decision: CorsDecision) -> CorsResponse {
    match decision {
        CorsDecision::Forward(cors) => cors,
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn applied(cors: &CorsResponse, mut headers: HeaderMap) -> HeaderMap {
    cors.apply(&mut headers);
    headers
}

fn vary(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(VARY)
        .iter()
        .map(|value| value.to_str().expect("Vary values are ASCII"))
        .collect()
}

// --- The table ---------------------------------------------------------------

#[test]
fn table_has_enough_cases_with_unique_names() {
    assert!(cors_cases::CASES.len() >= 25);
    let mut names: Vec<_> = cors_cases::CASES.iter().map(|case| case.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        cors_cases::CASES.len(),
        "case names are unique"
    );
}

#[test]
fn table_cases_against_the_core() {
    let policy = cors_cases::policy();
    for case in cors_cases::CASES {
        let method = Method::from_bytes(case.method.as_bytes())
            .unwrap_or_else(|_| panic!("case {:?}: bad method", case.name));
        let headers = cors_cases::request_headers(case);
        let decision = policy.evaluate(&method, &headers);
        let outcome = cors_cases::outcome_from_decision(decision);
        cors_cases::check(case, outcome);
    }
}

// --- Origin parsing ----------------------------------------------------------

#[test]
fn origins_normalize() {
    for (input, normalized) in [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://APP.EXAMPLE.COM:443", "https://app.example.com"),
        ("Http://LocalHost:80", "http://localhost"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://app.example.com:80", "https://app.example.com:80"),
        ("http://app.example.com:443", "http://app.example.com:443"),
        ("https://a.b:65535", "https://a.b:65535"),
        (
            "https://xn--pp-oia.example.com",
            "https://xn--pp-oia.example.com",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
        ("https://[2001:DB8::1]:443", "https://[2001:db8::1]"),
        ("https://a-b.c-d", "https://a-b.c-d"),
        ("https://localhost", "https://localhost"),
        ("https://3com.example", "https://3com.example"),
    ] {
        let origin = Origin::parse(input).unwrap_or_else(|error| panic!("{input}: {error}"));
        assert_eq!(origin.as_str(), normalized, "{input}");
        assert_eq!(origin.to_string(), normalized);
        assert_eq!(Origin::parse(normalized).unwrap(), origin);
        assert_eq!(input.parse::<Origin>().unwrap(), origin);
    }
}

#[test]
fn origin_accessors() {
    let origin = Origin::parse("HTTPS://API.Example.com:8443").unwrap();
    assert_eq!(origin.scheme(), "https");
    assert_eq!(origin.host(), "api.example.com");
    assert_eq!(origin.port(), Some(8443));
    let origin = Origin::parse("http://[::1]").unwrap();
    assert_eq!(origin.scheme(), "http");
    assert_eq!(origin.host(), "[::1]");
    assert_eq!(origin.port(), None);
}

#[test]
fn invalid_origins_are_refused_with_invalid_origin() {
    let long = format!("https://{}.com", "a".repeat(2048));
    let long_label = format!("https://{}.com", "a".repeat(64));
    let cases: Vec<&str> = vec![
        "",
        "null",
        "NULL",
        "*",
        "https://*.example.com",
        "https://app.example.com/",
        "https://app.example.com/x",
        "https://app.example.com?x=1",
        "https://app.example.com#x",
        "https://app.example.com\\x",
        "https://user@app.example.com",
        "https://user:pass@app.example.com",
        "ftp://app.example.com",
        "ws://app.example.com",
        "file://",
        "app.example.com",
        "//app.example.com",
        "https://",
        "https://:443",
        "https://app.example.com:0",
        "https://app.example.com:65536",
        "https://app.example.com:",
        "https://app.example.com:abc",
        "https://app.example.com:+80",
        "https://app.example.com:123456",
        "https://app.example.com:80:80",
        " https://app.example.com",
        "https://app.example.com ",
        "https://app .example.com",
        "https://app.example.com\t",
        "https://äpp.example.com",
        "https://app..example.com",
        "https://app.example.com.",
        "https://.app.example.com",
        "https://app_x.example.com",
        "https://[::1",
        "https://[zz::1]",
        "https://[::1]x",
        "https://[fe80::1%25eth0]",
        "https://::1",
        "http://127.1",
        "http://0x7f.0.0.1",
        "http://2130706433",
        "http://01.2.3.4",
        "http://1.2.3.4.5",
        "http://256.0.0.1",
        &long,
        &long_label,
    ];
    for input in cases {
        let error = Origin::parse(input).expect_err(input);
        assert_eq!(error.kind(), ConfigErrorKind::InvalidOrigin, "{input}");
        let shown: String = format!("{input:?}").chars().take(40).collect();
        assert!(
            error.to_string().contains(shown.trim_end_matches('"')),
            "the message names the value: {error}"
        );
        assert!(Origin::from_header(&HeaderValue::from_bytes(input.as_bytes()).unwrap()).is_none());
        assert!(
            CorsPolicy::builder()
                .allow_origin(input)
                .build()
                .is_err_and(|error| error.kind() == ConfigErrorKind::InvalidOrigin),
            "{input}"
        );
    }
}

#[test]
fn error_messages_give_a_reason() {
    let error = Origin::parse("https://app.example.com/").unwrap_err();
    assert!(error.to_string().contains("path"), "{error}");
    let error = Origin::parse("null").unwrap_err();
    assert!(error.to_string().contains("opaque"), "{error}");
    let error = Origin::parse("https://user@a.com").unwrap_err();
    assert!(error.to_string().contains("userinfo"), "{error}");
}

#[test]
fn from_header_refuses_obs_text_and_parses_valid_values() {
    let value = HeaderValue::from_bytes(b"https://\xffapp.example.com").unwrap();
    assert!(Origin::from_header(&value).is_none());
    let value = HeaderValue::from_static("https://app.example.com:443");
    assert_eq!(
        Origin::from_header(&value).unwrap().as_str(),
        "https://app.example.com"
    );
}

proptest! {
    #[test]
    fn parse_never_panics_on_strings(text in any::<String>()) {
        if let Ok(origin) = Origin::parse(&text) {
            prop_assert_eq!(Origin::parse(origin.as_str()).unwrap(), origin);
        }
    }

    #[test]
    fn from_header_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(value) = HeaderValue::from_bytes(&bytes)
            && let Some(origin) = Origin::from_header(&value)
        {
            prop_assert_eq!(Origin::parse(origin.as_str()).unwrap(), origin);
        }
    }

    #[test]
    fn origin_shaped_strings_round_trip(
        text in "(?i)(https?|ftp)://[a-z0-9.\\[\\]:-]{0,24}(:[0-9]{0,6})?[/@?#]?",
    ) {
        if let Ok(origin) = Origin::parse(&text) {
            let again = Origin::parse(origin.as_str()).unwrap();
            prop_assert_eq!(again.as_str(), origin.as_str());
            prop_assert_eq!(origin.as_str(), origin.as_str().to_ascii_lowercase());
            prop_assert!(!origin.as_str().ends_with(":443") || origin.scheme() == "http");
            prop_assert!(!origin.as_str().ends_with(":80") || origin.scheme() == "https");
        }
    }

    #[test]
    fn valid_dns_origins_parse(
        https in any::<bool>(),
        labels in proptest::collection::vec("[a-zA-Z][a-zA-Z0-9-]{0,10}", 1..4),
        port in proptest::option::of(1u16..),
    ) {
        let scheme = if https { "https" } else { "http" };
        let host = labels.join(".");
        let text = match port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        let origin = Origin::parse(&text).unwrap();
        prop_assert_eq!(origin.host(), host.to_ascii_lowercase());
        let default = if https { 443 } else { 80 };
        prop_assert_eq!(origin.port(), port.filter(|&port| port != default));
        prop_assert_eq!(Origin::parse(origin.as_str()).unwrap(), origin);
    }

    #[test]
    fn ip_origins_parse(v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>(), port in 1u16..) {
        let v4 = std::net::Ipv4Addr::from(v4);
        let origin = Origin::parse(&format!("http://{v4}:{port}")).unwrap();
        prop_assert_eq!(origin.host(), v4.to_string());
        let v6 = std::net::Ipv6Addr::from(v6);
        let origin = Origin::parse(&format!("https://[{v6}]:{port}")).unwrap();
        prop_assert_eq!(origin.host(), format!("[{v6}]"));
        prop_assert_eq!(Origin::parse(origin.as_str()).unwrap(), origin);
    }

    #[test]
    fn evaluate_never_echoes_an_origin_it_does_not_allow(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let policy = cors_cases::policy();
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let mut headers = HeaderMap::new();
            headers.insert(ORIGIN, value.clone());
            let cors = forward(policy.evaluate(&Method::GET, &headers));
            if let Some(allowed) = cors.allow_origin() {
                prop_assert_eq!(allowed, &value);
                let origin = Origin::from_header(&value).unwrap();
                prop_assert!(policy.allows_origin(&origin));
            }
            headers.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("PUT"));
            if let CorsDecision::PreflightAllowed(response) = policy.evaluate(&Method::OPTIONS, &headers) {
                prop_assert_eq!(&response[ACCESS_CONTROL_ALLOW_ORIGIN], &value);
                prop_assert!(Origin::from_header(&value).is_some());
            }
        }
    }
}

// --- Builder -----------------------------------------------------------------

#[test]
fn credentials_with_any_origin_is_refused() {
    let error = CorsPolicy::allow_any_origin_dangerously()
        .allow_credentials(true)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::CredentialsWithAnyOrigin);
}

#[test]
fn invalid_tokens_are_refused() {
    let builders: Vec<(&str, CorsBuilder)> = vec![
        (
            "header with space",
            CorsPolicy::builder().allow_headers(["X Evil"]),
        ),
        (
            "header with colon",
            CorsPolicy::builder().allow_headers(["X-Evil:"]),
        ),
        ("empty header", CorsPolicy::builder().allow_headers([""])),
        (
            "wildcard header",
            CorsPolicy::builder().allow_headers(["*"]),
        ),
        (
            "bad exposed header",
            CorsPolicy::builder().expose_headers(["X\r\nSet-Cookie"]),
        ),
        (
            "wildcard exposed header",
            CorsPolicy::builder().expose_headers(["*"]),
        ),
        (
            "method with space",
            CorsPolicy::builder().allow_methods(["GET POST"]),
        ),
        ("empty method", CorsPolicy::builder().allow_methods([""])),
        (
            "wildcard method",
            CorsPolicy::builder().allow_methods(["*"]),
        ),
        (
            "TRACE",
            CorsPolicy::builder().allow_methods(["GET", "TRACE"]),
        ),
        ("connect", CorsPolicy::builder().allow_methods(["connect"])),
    ];
    for (what, builder) in builders {
        let error = builder.build().expect_err(what);
        assert_eq!(
            error.kind(),
            ConfigErrorKind::InvalidToken,
            "{what}: {error}"
        );
    }
}

#[test]
fn errors_are_reported_at_build_not_at_the_setter() {
    // Setters never fail; the first bad value is reported by build().
    let builder = CorsPolicy::builder()
        .allow_origin("not an origin")
        .allow_methods(["GET"]);
    assert!(builder.build().is_err());
}

#[test]
fn subdomain_parents_must_be_domains() {
    for parent in [
        "https://com",
        "http://127.0.0.1",
        "https://[::1]",
        "https://localhost",
    ] {
        let error = CorsPolicy::builder()
            .allow_subdomains_of(parent)
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::InvalidOrigin, "{parent}");
    }
    let error = CorsPolicy::builder()
        .allow_subdomains_of("https://*.example.com")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("without `*.`"), "{error}");
}

#[test]
fn allowed_methods_and_headers_replace_the_defaults() {
    let policy = CorsPolicy::builder()
        .allow_origin("https://app.example.com")
        .allow_methods(["get", "patch", "PROPFIND", "GET"])
        .allow_headers(["X-Custom", "x-custom"])
        .build()
        .unwrap();
    let preflight = |method: &'static str, headers: &'static str| {
        policy.evaluate(
            &Method::OPTIONS,
            &request(
                Some("https://app.example.com"),
                &[
                    (ACCESS_CONTROL_REQUEST_METHOD, method),
                    (ACCESS_CONTROL_REQUEST_HEADERS, headers),
                ],
            ),
        )
    };
    let CorsDecision::PreflightAllowed(response) = preflight("patch", "x-custom") else {
        panic!("lowercase patch was configured");
    };
    // `get` is normalized like Fetch normalizes it; `patch` is kept as given.
    assert_eq!(
        response[ACCESS_CONTROL_ALLOW_METHODS],
        "GET, patch, PROPFIND"
    );
    // The safelisted names are always listed: a browser names Content-Type
    // when its value is JSON and needs it echoed.
    assert_eq!(
        response[ACCESS_CONTROL_ALLOW_HEADERS],
        "x-custom, accept, accept-language, content-language, content-type"
    );
    assert!(matches!(
        preflight("PROPFIND", ""),
        CorsDecision::PreflightAllowed(_)
    ));
    assert!(matches!(
        preflight("PATCH", ""),
        CorsDecision::PreflightRejected(_)
    ));
    assert!(matches!(
        preflight("PUT", ""),
        CorsDecision::PreflightRejected(_)
    ));
    assert!(matches!(
        preflight("POST", "authorization"),
        CorsDecision::PreflightRejected(_)
    ));
    assert!(matches!(
        preflight("POST", "content-type"),
        CorsDecision::PreflightAllowed(_)
    ));
}

#[test]
fn empty_lists_send_no_header() {
    let policy = CorsPolicy::builder()
        .allow_origin("https://app.example.com")
        .allow_methods(Vec::<String>::new())
        .allow_headers(Vec::<String>::new())
        .build()
        .unwrap();
    let decision = policy.evaluate(
        &Method::OPTIONS,
        &request(
            Some("https://app.example.com"),
            &[(ACCESS_CONTROL_REQUEST_METHOD, "GET")],
        ),
    );
    let CorsDecision::PreflightAllowed(response) = decision else {
        panic!("GET is safelisted");
    };
    assert!(!response.contains_key(ACCESS_CONTROL_ALLOW_METHODS));
    assert_eq!(
        response[ACCESS_CONTROL_ALLOW_HEADERS],
        "accept, accept-language, content-language, content-type"
    );
}

#[test]
fn max_age_is_clamped_to_two_hours() {
    let max_age_of = |max_age: Duration| {
        let policy = CorsPolicy::builder()
            .allow_origin("https://app.example.com")
            .max_age(max_age)
            .build()
            .unwrap();
        let decision = policy.evaluate(
            &Method::OPTIONS,
            &request(
                Some("https://app.example.com"),
                &[(ACCESS_CONTROL_REQUEST_METHOD, "GET")],
            ),
        );
        match decision {
            CorsDecision::PreflightAllowed(response) => response[ACCESS_CONTROL_MAX_AGE].clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(max_age_of(Duration::from_secs(86_400)), "7200");
    assert_eq!(max_age_of(Duration::from_secs(7200)), "7200");
    assert_eq!(max_age_of(Duration::from_secs(7201)), "7200");
    assert_eq!(max_age_of(Duration::from_secs(60)), "60");
    assert_eq!(max_age_of(Duration::ZERO), "0");
}

#[test]
fn default_policy_allows_no_origin() {
    let policy = CorsPolicy::builder().build().unwrap();
    let cors =
        forward(policy.evaluate(&Method::GET, &request(Some("https://app.example.com"), &[])));
    assert!(cors.allow_origin().is_none());
    assert!(policy.is_production_safe().is_ok());
}

// --- Production safety -------------------------------------------------------

#[test]
fn production_safety() {
    let safe = CorsPolicy::builder()
        .allow_origins([
            "https://app.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
        ])
        .allow_subdomains_of("https://example.org")
        .build()
        .unwrap();
    assert_eq!(safe.is_production_safe(), Ok(()));

    let any = CorsPolicy::allow_any_origin_dangerously().build().unwrap();
    assert_eq!(any.is_production_safe(), Err(UnsafeCors::AnyOrigin));

    let plain = CorsPolicy::builder()
        .allow_origins(["https://app.example.com", "http://app.example.com"])
        .build()
        .unwrap();
    let error = plain.is_production_safe().unwrap_err();
    assert_eq!(
        error,
        UnsafeCors::PlainHttpOrigin(Origin::parse("http://app.example.com").unwrap())
    );
    assert!(
        error.to_string().contains("http://app.example.com"),
        "{error}"
    );
    let _: &dyn std::error::Error = &error;

    let plain_parent = CorsPolicy::builder()
        .allow_subdomains_of("http://example.org")
        .build()
        .unwrap();
    assert!(matches!(
        plain_parent.is_production_safe(),
        Err(UnsafeCors::PlainHttpOrigin(origin)) if origin.as_str() == "http://example.org"
    ));
}

// --- Any-origin mode ---------------------------------------------------------

#[test]
fn any_origin_mode_sends_star_without_credentials() {
    let policy = CorsPolicy::allow_any_origin_dangerously()
        .expose_headers(["X-Request-Id"])
        .build()
        .unwrap();
    for origin in ["https://anything.example", "null"] {
        let cors = forward(policy.evaluate(&Method::GET, &request(Some(origin), &[])));
        let headers = applied(&cors, HeaderMap::new());
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert_eq!(headers[ACCESS_CONTROL_EXPOSE_HEADERS], "x-request-id");
        assert_eq!(vary(&headers), ["Origin"]);
    }
    let decision = policy.evaluate(
        &Method::OPTIONS,
        &request(
            Some("https://anything.example"),
            &[(ACCESS_CONTROL_REQUEST_METHOD, "DELETE")],
        ),
    );
    let CorsDecision::PreflightAllowed(response) = decision else {
        panic!("any origin may preflight");
    };
    assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(!response.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));

    // Without an Origin it is not a CORS request: nothing but Vary.
    let cors = forward(policy.evaluate(&Method::GET, &HeaderMap::new()));
    let headers = applied(&cors, HeaderMap::new());
    assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    assert_eq!(vary(&headers), ["Origin"]);
}

// --- Rejections ---------------------------------------------------------------

#[test]
fn rejection_is_a_403_with_vary_and_no_acao() {
    let policy = cors_cases::policy();
    let decision = policy.evaluate(
        &Method::OPTIONS,
        &request(
            Some("https://evil.example.net"),
            &[(ACCESS_CONTROL_REQUEST_METHOD, "GET")],
        ),
    );
    let CorsDecision::PreflightRejected(error) = decision else {
        panic!("disallowed origin");
    };
    assert_eq!(error.status(), 403);
    assert_eq!(error.kind().code(), "cors_rejected");
    assert!(!error.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    assert_eq!(
        error.headers()[VARY],
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network"
    );
}

#[test]
fn several_request_method_lines_are_rejected() {
    let policy = cors_cases::policy();
    let decision = policy.evaluate(
        &Method::OPTIONS,
        &request(
            Some("https://app.example.com"),
            &[
                (ACCESS_CONTROL_REQUEST_METHOD, "GET"),
                (ACCESS_CONTROL_REQUEST_METHOD, "PUT"),
            ],
        ),
    );
    assert!(matches!(decision, CorsDecision::PreflightRejected(_)));
}

#[test]
fn private_network_needs_the_opt_in_and_the_request() {
    let without_opt_in = CorsPolicy::builder()
        .allow_origin("https://app.example.com")
        .build()
        .unwrap();
    let asking = request(
        Some("https://app.example.com"),
        &[
            (ACCESS_CONTROL_REQUEST_METHOD, "GET"),
            (
                http::HeaderName::from_static("access-control-request-private-network"),
                "true",
            ),
        ],
    );
    let CorsDecision::PreflightAllowed(response) =
        without_opt_in.evaluate(&Method::OPTIONS, &asking)
    else {
        panic!("allowed origin");
    };
    assert!(!response.contains_key("access-control-allow-private-network"));
}

// --- Configuration -----------------------------------------------------------

#[test]
fn policy_deserializes_from_config() {
    let policy: CorsPolicy = serde_json::from_str(
        r#"{
            "allow_origins": ["https://app.example.com"],
            "allow_subdomains_of": ["https://example.org"],
            "allow_methods": ["GET", "POST"],
            "expose_headers": ["X-Request-Id"],
            "allow_credentials": true,
            "max_age_secs": 100000,
            "allow_private_network": true
        }"#,
    )
    .unwrap();
    let decision = policy.evaluate(
        &Method::OPTIONS,
        &request(
            Some("https://api.example.org"),
            &[(ACCESS_CONTROL_REQUEST_METHOD, "POST")],
        ),
    );
    let CorsDecision::PreflightAllowed(response) = decision else {
        panic!("subdomain allowed");
    };
    assert_eq!(response[ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
    assert_eq!(response[ACCESS_CONTROL_MAX_AGE], "7200");
    assert_eq!(response[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");

    let config: CorsConfig = serde_json::from_str("{}").unwrap();
    assert!(config.allow_origins.is_empty() && config.max_age_secs.is_none());
    let policy = CorsPolicy::try_from(config).unwrap();
    assert_eq!(policy.is_production_safe(), Ok(()));
}

#[test]
fn bad_configs_are_refused() {
    for (json, needle) in [
        (r#"{"allow_origins": ["https://app.example.com/"]}"#, "path"),
        (r#"{"allow_origins": ["null"]}"#, "null"),
        (
            r#"{"allow_any_origin_dangerously": true, "allow_credentials": true}"#,
            "credentials",
        ),
        (r#"{"allow_headers": ["bad header"]}"#, "header"),
        (
            r#"{"allow_origin": ["https://app.example.com"]}"#,
            "unknown field",
        ),
        (r#"{"max_age_secs": -1}"#, "invalid value"),
    ] {
        let error = serde_json::from_str::<CorsPolicy>(json).unwrap_err();
        assert!(error.to_string().contains(needle), "{json}: {error}");
    }
}

// --- Vary merging and handler headers -------------------------------------------

#[test]
fn vary_origin_is_appended_to_an_existing_vary() {
    let cors = forward(
        cors_cases::policy().evaluate(&Method::GET, &request(Some("https://app.example.com"), &[])),
    );
    let mut headers = HeaderMap::new();
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    let headers = applied(&cors, headers);
    assert_eq!(vary(&headers), ["Accept-Encoding", "Origin"]);
}

#[test]
fn vary_star_is_left_alone() {
    let cors = forward(cors_cases::policy().evaluate(&Method::GET, &request(None, &[])));
    let mut headers = HeaderMap::new();
    headers.insert(VARY, HeaderValue::from_static("*"));
    assert_eq!(vary(&applied(&cors, headers)), ["*"]);
}

#[test]
fn vary_origin_is_not_duplicated() {
    let cors = forward(
        cors_cases::policy().evaluate(&Method::GET, &request(Some("https://app.example.com"), &[])),
    );
    for existing in [
        "origin",
        "Accept-Encoding, Origin",
        "Accept-Encoding,ORIGIN ",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static(existing));
        assert_eq!(vary(&applied(&cors, headers)), [existing]);
    }
    let mut headers = HeaderMap::new();
    headers.append(VARY, HeaderValue::from_static("Accept"));
    headers.append(VARY, HeaderValue::from_static("Origin"));
    assert_eq!(vary(&applied(&cors, headers)), ["Accept", "Origin"]);
    // A look-alike token is not Origin.
    let mut headers = HeaderMap::new();
    headers.insert(VARY, HeaderValue::from_static("X-Origin"));
    assert_eq!(vary(&applied(&cors, headers)), ["X-Origin", "Origin"]);
}

#[test]
fn handler_cors_headers_are_replaced_or_removed() {
    let handler_reflected = || {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://evil.example.net"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Set-Cookie"),
        );
        headers
    };
    let policy = cors_cases::policy();
    let denied = forward(policy.evaluate(
        &Method::GET,
        &request(Some("https://evil.example.net"), &[]),
    ));
    let headers = applied(&denied, handler_reflected());
    assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
    assert!(!headers.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS));

    let allowed =
        forward(policy.evaluate(&Method::GET, &request(Some("https://app.example.com"), &[])));
    let headers = applied(&allowed, handler_reflected());
    assert_eq!(
        headers[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    assert_eq!(headers[ACCESS_CONTROL_EXPOSE_HEADERS], "x-request-id");

    let no_credentials = CorsPolicy::builder()
        .allow_origin("https://app.example.com")
        .build()
        .unwrap();
    let allowed = forward(
        no_credentials.evaluate(&Method::GET, &request(Some("https://app.example.com"), &[])),
    );
    let headers = applied(&allowed, handler_reflected());
    assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
    assert!(!headers.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS));
}

#[test]
fn apply_works_through_a_dyn_sink() {
    let cors = forward(
        cors_cases::policy().evaluate(&Method::GET, &request(Some("https://app.example.com"), &[])),
    );
    let mut headers = HeaderMap::new();
    let sink: &mut dyn palisade_headers::HeaderSink = &mut headers;
    cors.apply(sink);
    assert_eq!(
        headers[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
}

#[test]
fn private_network_access_with_any_origin_is_refused() {
    // Every public site could then reach the LAN service.
    let error = CorsPolicy::allow_any_origin_dangerously()
        .allow_private_network(true)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("private"), "{error}");
}
