//! `?` from every error the README's examples meet into the envelope error,
//! with the documented status: a configuration error is the server's fault
//! (500 `internal`, the configuration error kept as the source for the
//! log), a refused preflight is already the 403 `cors_rejected` envelope.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use palisade_errors::{Error, ErrorKind};
use palisade_headers::csp::Csp;
use palisade_headers::{
    ConfigError, ConfigErrorKind, CorsDecision, CorsPolicy, Directive, HeaderPolicy, Source,
};

/// `CorsPolicy::builder().build()?` (the CORS example).
fn cors_policy(origin: &str) -> Result<CorsPolicy, Error> {
    Ok(CorsPolicy::builder().allow_origin(origin).build()?)
}

/// `Csp::builder()...build()?` and `HeaderPolicy::html().csp(csp).build()?`
/// (the security headers example), and `Source::parse`.
fn headers_with_script_source(source: &str) -> Result<HeaderMap, Error> {
    let script = Source::parse(source)?;
    let csp = Csp::builder()
        .default_src([Source::SELF])
        .script_src([script])
        .build()?;
    let headers = HeaderPolicy::html().csp(csp).build()?;
    let mut response = HeaderMap::new();
    headers.apply(&mut response, None);
    Ok(response)
}

/// `Directive::parse` returns the same `ConfigError`.
fn directive(name: &str) -> Result<Directive, Error> {
    Ok(Directive::parse(name)?)
}

/// A refused preflight carries a `palisade_errors::Error` already.
fn preflight(policy: &CorsPolicy, origin: &'static str) -> Result<HeaderMap, Error> {
    let mut request = HeaderMap::new();
    request.insert(ORIGIN, HeaderValue::from_static(origin));
    request.insert(
        ACCESS_CONTROL_REQUEST_METHOD,
        HeaderValue::from_static("PUT"),
    );
    match policy.evaluate(&Method::OPTIONS, &request) {
        CorsDecision::PreflightAllowed(headers) => Ok(headers),
        CorsDecision::PreflightRejected(error) => Err(error)?,
        CorsDecision::Forward(_) => panic!("a preflight is answered by the policy"),
    }
}

fn config_source(error: &Error) -> &ConfigError {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<ConfigError>())
        .expect("the configuration error is the source")
}

#[test]
fn config_errors_are_500_internal_with_the_config_error_as_source() {
    let error = cors_policy("https://app.example.com/path").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(config_source(&error).kind(), ConfigErrorKind::InvalidOrigin);
    // The detail is for the log, never the client.
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(!body.contains("app.example.com"), "{body}");

    let error = headers_with_script_source("'unsafe-inline'").unwrap_err();
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        config_source(&error).kind(),
        ConfigErrorKind::UnsafeScriptSource
    );

    let error = headers_with_script_source("'self'; script-src *").unwrap_err();
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        config_source(&error).kind(),
        ConfigErrorKind::InvalidCspSource
    );

    let error = directive("script-src; img-src").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert_eq!(
        config_source(&error).kind(),
        ConfigErrorKind::InvalidCspDirective
    );
}

#[test]
fn working_configurations_pass_through() {
    let policy = cors_policy("https://app.example.com").unwrap();
    let allowed = preflight(&policy, "https://app.example.com").unwrap();
    assert_eq!(
        allowed["access-control-allow-origin"],
        "https://app.example.com"
    );
    let response = headers_with_script_source("'self'").unwrap();
    assert!(response.contains_key("content-security-policy"));
    assert!(directive("script-src").is_ok());
}

#[test]
fn refused_preflight_is_403_cors_rejected() {
    let policy = cors_policy("https://app.example.com").unwrap();
    let error = preflight(&policy, "https://app.example.com.evil.net").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CorsRejected);
    assert_eq!(error.status(), StatusCode::FORBIDDEN);
}
