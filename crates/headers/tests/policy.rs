//! Security headers: one test per header and per preset, and the rules for
//! handler-set headers, fingerprints and nonces.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use http::HeaderMap;
use palisade_headers::csp::Csp;
use palisade_headers::{
    Allowlist, ConfigErrorKind, CrossOriginEmbedderPolicy, CrossOriginOpenerPolicy,
    CrossOriginResourcePolicy, CspNonce, FrameOptions, HeaderPolicy, Hsts, PermissionsPolicy,
    ReferrerPolicy, SecurityHeaders, Source, XssProtection,
};

fn applied(headers: &SecurityHeaders, mut map: HeaderMap, nonce: Option<&CspNonce>) -> HeaderMap {
    headers.apply(&mut map, nonce);
    map
}

fn api_response() -> HeaderMap {
    applied(
        &HeaderPolicy::api().build().unwrap(),
        HeaderMap::new(),
        None,
    )
}

fn value<'a>(map: &'a HeaderMap, name: &str) -> &'a str {
    map.get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
}

#[test]
fn api_preset_sends_the_scanner_top_grade_set() {
    let map = api_response();
    let expected = [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("origin-agent-cluster", "?1"),
        ("x-permitted-cross-domain-policies", "none"),
        ("x-dns-prefetch-control", "off"),
        ("x-xss-protection", "0"),
        ("cache-control", "no-store"),
    ];
    for (name, expected) in expected {
        assert_eq!(value(&map, name), expected, "{name}");
    }
    let permissions = value(&map, "permissions-policy");
    for feature in [
        "camera=()",
        "microphone=()",
        "geolocation=()",
        "payment=()",
        "usb=()",
    ] {
        assert!(permissions.contains(feature), "{feature} in {permissions}");
    }
    assert!(
        !map.contains_key("cross-origin-embedder-policy"),
        "COEP is opt-in"
    );
    assert!(!map.contains_key("content-security-policy-report-only"));
    assert_eq!(map.len(), expected.len() + 1);
}

#[test]
fn html_preset_has_a_strict_csp_without_inline_script() {
    let map = applied(
        &HeaderPolicy::html().build().unwrap(),
        HeaderMap::new(),
        None,
    );
    assert_eq!(
        value(&map, "content-security-policy"),
        "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; \
         frame-ancestors 'none'; form-action 'self'; upgrade-insecure-requests"
    );
    assert_eq!(
        value(&map, "referrer-policy"),
        "strict-origin-when-cross-origin"
    );
    assert!(
        !map.contains_key("cache-control"),
        "html leaves caching to the app"
    );
    assert_eq!(value(&map, "x-frame-options"), "DENY");
}

#[test]
fn plain_http_deployments_get_no_hsts_and_no_upgrade() {
    // HSTS on a development server over plain HTTP would pin localhost to
    // HTTPS in the developer's browser; upgrade-insecure-requests would
    // break every sub-resource.
    let map = applied(
        &HeaderPolicy::html().https(false).build().unwrap(),
        HeaderMap::new(),
        None,
    );
    assert!(!map.contains_key("strict-transport-security"));
    assert!(!value(&map, "content-security-policy").contains("upgrade-insecure-requests"));
}

#[test]
fn hsts_shorter_than_a_year_is_refused() {
    // A short max-age lets an SSL-stripping attacker in between visits.
    let weak = Hsts {
        max_age_secs: 86_400,
        ..Hsts::default()
    };
    let error = HeaderPolicy::api().hsts(weak).build().unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::WeakHsts);
    // ...but only matters when HSTS is sent.
    assert!(HeaderPolicy::api().hsts(weak).https(false).build().is_ok());

    let preload_without_subdomains = Hsts {
        include_subdomains: false,
        preload: true,
        ..Hsts::default()
    };
    assert_eq!(
        HeaderPolicy::api()
            .hsts(preload_without_subdomains)
            .build()
            .unwrap_err()
            .kind(),
        ConfigErrorKind::WeakHsts
    );
    let preload = Hsts {
        max_age_secs: 31_536_000,
        include_subdomains: true,
        preload: true,
    };
    let map = applied(
        &HeaderPolicy::api().hsts(preload).build().unwrap(),
        HeaderMap::new(),
        None,
    );
    assert_eq!(
        value(&map, "strict-transport-security"),
        "max-age=31536000; includeSubDomains; preload"
    );
}

#[test]
fn each_configurable_header_takes_its_values() {
    let policy = HeaderPolicy::api()
        .frame_options(Some(FrameOptions::SameOrigin))
        .referrer_policy(ReferrerPolicy::StrictOrigin)
        .cross_origin_opener_policy(Some(CrossOriginOpenerPolicy::SameOriginAllowPopups))
        .cross_origin_resource_policy(Some(CrossOriginResourcePolicy::CrossOrigin))
        .cross_origin_embedder_policy(Some(CrossOriginEmbedderPolicy::RequireCorp))
        .xss_protection(XssProtection::Block);
    let map = applied(&policy.build().unwrap(), HeaderMap::new(), None);
    assert_eq!(value(&map, "x-frame-options"), "SAMEORIGIN");
    assert_eq!(value(&map, "referrer-policy"), "strict-origin");
    assert_eq!(
        value(&map, "cross-origin-opener-policy"),
        "same-origin-allow-popups"
    );
    assert_eq!(value(&map, "cross-origin-resource-policy"), "cross-origin");
    assert_eq!(value(&map, "cross-origin-embedder-policy"), "require-corp");
    assert_eq!(value(&map, "x-xss-protection"), "1; mode=block");

    let off = HeaderPolicy::api()
        .frame_options(None)
        .permissions_policy(None)
        .cross_origin_opener_policy(None)
        .cross_origin_resource_policy(None);
    let map = applied(&off.build().unwrap(), HeaderMap::new(), None);
    for name in [
        "x-frame-options",
        "permissions-policy",
        "cross-origin-opener-policy",
        "cross-origin-resource-policy",
    ] {
        assert!(!map.contains_key(name), "{name}");
    }
    // frame-ancestors still refuses framing without X-Frame-Options.
    assert!(value(&map, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(
        ReferrerPolicy::default(),
        ReferrerPolicy::StrictOriginWhenCrossOrigin
    );
}

#[test]
fn permissions_policy_can_grant_self_and_rejects_bad_features() {
    let policy = PermissionsPolicy::restrictive()
        .set("fullscreen", Allowlist::SelfOrigin)
        .set("bluetooth", Allowlist::None);
    let map = applied(
        &HeaderPolicy::api()
            .permissions_policy(Some(policy))
            .build()
            .unwrap(),
        HeaderMap::new(),
        None,
    );
    let text = value(&map, "permissions-policy");
    assert!(text.contains("fullscreen=(self)"));
    assert!(text.ends_with("bluetooth=()"));
    assert!(text.contains("camera=()"));

    for bad in ["camera=*", "Camera", "", "a b", "x,y"] {
        let policy = PermissionsPolicy::restrictive().set(bad, Allowlist::None);
        let error = HeaderPolicy::api()
            .permissions_policy(Some(policy))
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::InvalidToken, "{bad:?}");
    }
}

#[test]
fn server_fingerprint_is_removed_even_when_the_handler_sets_it() {
    // Version banners let an attacker pick the exploit for exactly that version.
    let mut response = HeaderMap::new();
    response.insert("server", "Apache/2.4.1 (Unix)".parse().unwrap());
    response.insert("x-powered-by", "Express".parse().unwrap());
    response.insert("x-aspnet-version", "4.0.30319".parse().unwrap());
    let map = applied(
        &HeaderPolicy::api().build().unwrap(),
        response.clone(),
        None,
    );
    for name in ["server", "x-powered-by", "x-aspnet-version"] {
        assert!(!map.contains_key(name), "{name}");
    }
    let map = applied(
        &HeaderPolicy::api()
            .server_header("palisade")
            .build()
            .unwrap(),
        response,
        None,
    );
    assert_eq!(value(&map, "server"), "palisade");
    assert!(!map.contains_key("x-powered-by"));
    assert!(
        HeaderPolicy::api()
            .server_header("bad\nvalue")
            .build()
            .is_err()
    );
}

#[test]
fn handler_set_headers_are_kept_unless_the_policy_overrides() {
    let mut response = HeaderMap::new();
    response.insert(
        "content-security-policy",
        "default-src 'self'".parse().unwrap(),
    );
    response.insert("x-frame-options", "SAMEORIGIN".parse().unwrap());
    response.insert("cache-control", "public, max-age=60".parse().unwrap());

    let kept = applied(
        &HeaderPolicy::api().build().unwrap(),
        response.clone(),
        None,
    );
    assert_eq!(
        value(&kept, "content-security-policy"),
        "default-src 'self'"
    );
    assert_eq!(value(&kept, "x-frame-options"), "SAMEORIGIN");
    assert_eq!(value(&kept, "cache-control"), "public, max-age=60");
    assert_eq!(value(&kept, "x-content-type-options"), "nosniff");

    let replaced = applied(
        &HeaderPolicy::api().override_existing(true).build().unwrap(),
        response,
        None,
    );
    assert_eq!(
        value(&replaced, "content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(value(&replaced, "x-frame-options"), "DENY");
    assert_eq!(replaced.get_all("x-frame-options").iter().count(), 1);
    // Cache-Control is the application's unless a nonce is in play.
    assert_eq!(value(&replaced, "cache-control"), "public, max-age=60");
}

#[test]
fn nonce_responses_are_never_cacheable() {
    // A cached page replays its nonce: an injected script on the cached copy
    // could carry the now-known nonce.
    let csp = Csp::builder()
        .default_src([Source::SELF])
        .nonces(true)
        .build()
        .unwrap();
    let headers = HeaderPolicy::html().csp(csp).build().unwrap();
    assert!(headers.uses_nonces());
    let mut response = HeaderMap::new();
    response.insert("cache-control", "public, max-age=3600".parse().unwrap());
    let first_nonce = CspNonce::generate().unwrap();
    let first = applied(&headers, response, Some(&first_nonce));
    assert_eq!(value(&first, "cache-control"), "no-store");
    let first_csp = value(&first, "content-security-policy").to_owned();
    assert!(first_csp.contains(&format!("'nonce-{first_nonce}'")));

    let second_nonce = CspNonce::generate().unwrap();
    let second = applied(&headers, HeaderMap::new(), Some(&second_nonce));
    assert_ne!(first_nonce, second_nonce);
    assert_ne!(first_csp, value(&second, "content-security-policy"));

    // Policies without nonces ignore a nonce passed in.
    let plain = applied(
        &HeaderPolicy::api().build().unwrap(),
        HeaderMap::new(),
        Some(&first_nonce),
    );
    assert!(!value(&plain, "content-security-policy").contains("nonce"));
}

#[test]
fn report_only_policy_is_sent_beside_the_enforced_one() {
    let trial = Csp::builder()
        .default_src([Source::NONE])
        .script_src([Source::SELF])
        .report_to("csp", "https://reports.example.com/csp")
        .build()
        .unwrap();
    let map = applied(
        &HeaderPolicy::html().csp_report_only(trial).build().unwrap(),
        HeaderMap::new(),
        None,
    );
    assert_eq!(
        value(&map, "content-security-policy-report-only"),
        "default-src 'none'; script-src 'self'; report-to csp"
    );
    assert!(value(&map, "content-security-policy").starts_with("default-src 'self'"));
    assert_eq!(
        value(&map, "reporting-endpoints"),
        "csp=\"https://reports.example.com/csp\""
    );
}

#[test]
fn config_file_starts_from_a_preset_and_runs_the_same_checks() {
    let policy: HeaderPolicy = serde_json::from_str(
        r#"{"preset": "html", "https": false, "referrer_policy": "same-origin",
            "cross_origin_embedder_policy": "credentialless", "server": "edge"}"#,
    )
    .unwrap();
    let map = applied(&policy.build().unwrap(), HeaderMap::new(), None);
    assert!(value(&map, "content-security-policy").contains("form-action 'self'"));
    assert!(!map.contains_key("strict-transport-security"));
    assert_eq!(value(&map, "referrer-policy"), "same-origin");
    assert_eq!(
        value(&map, "cross-origin-embedder-policy"),
        "credentialless"
    );
    assert_eq!(value(&map, "server"), "edge");

    let default: HeaderPolicy = serde_json::from_str("{}").unwrap();
    assert_eq!(default, HeaderPolicy::api());

    for bad in [
        r#"{"hsts": {"max_age_secs": 60}}"#,
        r#"{"preset": "xml"}"#,
        r#"{"referrer_policy": "unsafe-url"}"#,
        r#"{"csp": {"directives": {"script-src": ["*"]}}}"#,
        r#"{"permissions_policy": {"camera": "*"}}"#,
        r#"{"typo": 1}"#,
    ] {
        assert!(serde_json::from_str::<HeaderPolicy>(bad).is_err(), "{bad}");
    }
}
