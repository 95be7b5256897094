//! The request-limit checks against the attacks they exist for, and their
//! conversion into the envelope with `?`.
#![allow(clippy::unwrap_used)]

use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderValue, Request};
use palisade_errors::{Error, ErrorKind};
use palisade_validate::limits::{
    self, BodyLimit, MAX_FIELD_NAME_CHARS, PathPattern, RequestLimits,
};
use palisade_validate::{ConfigErrorKind, Refusal};

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

fn kind(result: Result<(), Refusal>) -> Option<(ErrorKind, &'static str)> {
    result
        .err()
        .map(|refusal| (refusal.kind(), refusal.reason()))
}

#[test]
fn defaults_are_the_documented_ones() {
    let limits = RequestLimits::default();
    assert_eq!(limits.body_cap("/"), 1024 * 1024);
    assert_eq!(limits.max_header_bytes(), 32 * 1024);
    assert_eq!(limits.max_header_count(), 100);
    assert_eq!(limits.max_header_value_bytes(), 8 * 1024);
    assert_eq!(limits.max_uri_bytes(), 8 * 1024);
    assert_eq!(limits.max_query_params(), 100);
}

/// A 100 KB header (cookie stuffing, a header-size DoS) is 431 and named.
#[test]
fn oversized_header_is_431_and_names_the_header() {
    let limits = RequestLimits::default();
    let big = "a".repeat(100 * 1024);
    let refusal = limits
        .check_head(&parts("/", &[("x-big", &big)]))
        .unwrap_err();
    assert_eq!(refusal.kind(), ErrorKind::HeadersTooLarge);
    assert_eq!(refusal.field(), "header:x-big");
    assert_eq!(refusal.reason(), "header_too_long");
}

/// Log and envelope bloat attack: a too-long value under an 8 KB
/// attacker-chosen header name. The field names the header by its first
/// 64 characters only, in the refusal and in the envelope.
#[test]
fn header_name_in_the_field_is_cut_to_64_chars() {
    let limits = RequestLimits::default();
    let name = format!("x-{}", "n".repeat(8 * 1024));
    let big = "a".repeat(100 * 1024);
    let refusal = limits
        .check_head(&parts("/", &[(&name, &big)]))
        .unwrap_err();
    assert_eq!(refusal.reason(), "header_too_long");
    let cut: String = name.chars().take(MAX_FIELD_NAME_CHARS).collect();
    let longer: String = name.chars().take(MAX_FIELD_NAME_CHARS + 1).collect();
    let expected = format!("header:{cut}");
    assert_eq!(MAX_FIELD_NAME_CHARS, 64);
    assert_eq!(refusal.field(), expected);
    let body = String::from_utf8(Error::from(refusal).to_json(None)).unwrap();
    assert!(body.contains(&format!(r#""field":"{expected}""#)), "{body}");
    assert!(!body.contains(&longer), "{body}");
}

/// An adapter's head that does not convert is a logged 400, not a
/// default target that would skip the checks.
#[test]
fn unconvertible_head_is_400() {
    let refusal = limits::head_unconvertible();
    assert_eq!(refusal.kind(), ErrorKind::BadRequest);
    assert_eq!(refusal.reason(), "head_unconvertible");
    assert_eq!(Error::from(refusal).status().as_u16(), 400);
}

/// Many small headers: the count and the total are each bounded.
#[test]
fn header_count_and_total_are_431() {
    let limits = RequestLimits::default();
    let names: Vec<String> = (0..101).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    assert_eq!(
        kind(limits.check_head(&parts("/", &many))),
        Some((ErrorKind::HeadersTooLarge, "too_many_headers"))
    );
    let value = "v".repeat(8 * 1024);
    let wide: Vec<(&str, &str)> = names[..5]
        .iter()
        .map(|n| (n.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        kind(limits.check_head(&parts("/", &wide))),
        Some((ErrorKind::HeadersTooLarge, "headers_too_large"))
    );
    assert_eq!(kind(limits.check_head(&parts("/", &wide[..3]))), None);
}

/// A long target (path-based DoS, log flooding) is 414; a query with
/// thousands of parameters (hash-flooding the parser) is 400.
#[test]
fn long_uri_is_414_and_many_query_params_400() {
    let limits = RequestLimits::default();
    let long = format!("/{}", "a".repeat(8 * 1024));
    assert_eq!(
        kind(limits.check_head(&parts(&long, &[]))),
        Some((ErrorKind::UriTooLong, "uri_too_long"))
    );
    let query: Vec<String> = (0..101).map(|i| format!("p{i}=1")).collect();
    let uri = format!("/search?{}", query.join("&"));
    assert_eq!(
        kind(limits.check_head(&parts(&uri, &[]))),
        Some((ErrorKind::BadRequest, "too_many_query_params"))
    );
    let uri = format!("/search?{}", query[..100].join("&"));
    assert_eq!(kind(limits.check_head(&parts(&uri, &[]))), None);
}

/// The upload route gets its own cap; every other route the default.
#[test]
fn per_route_body_cap() {
    let limits = RequestLimits::builder()
        .body_cap_for("/uploads/*", 10 * 1024 * 1024)
        .unwrap()
        .body_cap_for("/avatar", 64 * 1024)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(limits.body_cap("/uploads/a.png"), 10 * 1024 * 1024);
    assert_eq!(limits.body_cap("/uploads/"), 10 * 1024 * 1024);
    assert_eq!(limits.body_cap("/uploads"), 1024 * 1024);
    // Spelled differently, the path gets the (stricter) default.
    assert_eq!(limits.body_cap("/upload%73/a"), 1024 * 1024);
    assert_eq!(limits.body_cap("/avatar"), 64 * 1024);
    assert_eq!(limits.body_cap("/avatar/x"), 1024 * 1024);
    assert_eq!(limits.largest_body_cap(), 10 * 1024 * 1024);
    let declared = parts("/uploads/a", &[("content-length", "5000000")]);
    assert!(limits.body_limit(&declared).is_ok());
    let declared = parts("/items", &[("content-length", "5000000")]);
    assert_eq!(
        limits.body_limit(&declared).unwrap_err().kind(),
        ErrorKind::PayloadTooLarge
    );
}

/// Request smuggling: a Content-Length that is not one plain number, or
/// two that disagree, is refused rather than guessed at.
#[test]
fn ambiguous_content_length_is_400() {
    let limit = BodyLimit::new(100);
    for bad in [
        "",
        "+5",
        "-1",
        "0x10",
        "1 0",
        "5,5",
        "99999999999999999999999",
    ] {
        let mut headers = http::HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_str(bad).unwrap());
        assert_eq!(
            limit.check_declared(&headers).map_err(|r| r.reason()),
            Err("bad_content_length"),
            "{bad:?}"
        );
    }
    let mut headers = http::HeaderMap::new();
    headers.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
    headers.append(CONTENT_LENGTH, HeaderValue::from_static("6"));
    assert!(limit.check_declared(&headers).is_err());
    let mut headers = http::HeaderMap::new();
    headers.append(CONTENT_LENGTH, HeaderValue::from_static("100"));
    assert!(limit.check_declared(&headers).is_ok());
    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("101"));
    assert_eq!(
        limit.check_declared(&headers).unwrap_err().kind(),
        ErrorKind::PayloadTooLarge
    );
}

/// A chunked body (no Content-Length) or one that lies about its length
/// is cut off at the first chunk past the cap.
#[test]
fn streamed_body_is_cut_off_at_the_cap() {
    let mut limit = BodyLimit::new(1000);
    for _ in 0..10 {
        limit.record(100).unwrap();
    }
    assert_eq!(limit.received(), 1000);
    assert_eq!(
        limit.record(1).unwrap_err().kind(),
        ErrorKind::PayloadTooLarge
    );
    assert!(limit.exceeded());
    assert!(limit.record(0).is_err(), "stays refused");
}

#[test]
fn limits_are_checked_when_built() {
    for builder in [
        RequestLimits::builder().max_body_bytes(0),
        RequestLimits::builder().max_header_count(0),
        RequestLimits::builder().max_header_bytes(2 * 1024 * 1024),
        RequestLimits::builder().max_uri_bytes(0),
        RequestLimits::builder().max_query_params(20_000),
        RequestLimits::builder().max_header_value_bytes(0),
    ] {
        assert_eq!(
            builder.build().unwrap_err().kind(),
            ConfigErrorKind::InvalidLimit
        );
    }
    for bad in ["uploads/*", "/a*b", "/*/x", "/a b"] {
        assert!(PathPattern::parse(bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<RequestLimits>(r#"{"max_uri_bytes": 0}"#).is_err());
    assert!(serde_json::from_str::<RequestLimits>(r#"{"unknown": 1}"#).is_err());
}

/// Every refusal converts into its envelope with `?`: status, one
/// `{field, code}` detail, never the value.
#[test]
fn refusals_convert_into_the_envelope() {
    fn handler(limits: &RequestLimits, parts: &Parts) -> Result<(), Error> {
        limits.check_head(parts)?;
        Ok(())
    }
    let secret = "s3cr3t-value-".repeat(1000);
    let error = handler(
        &RequestLimits::default(),
        &parts("/", &[("cookie", &secret), (HOST.as_str(), "a")]),
    )
    .unwrap_err();
    assert_eq!(error.status().as_u16(), 431);
    assert!(error.is_logged());
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(body.contains(r#""field":"header:cookie""#), "{body}");
    assert!(!body.contains("s3cr3t"), "{body}");
}
