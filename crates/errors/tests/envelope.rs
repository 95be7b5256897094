#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
use http::{HeaderValue, Method, StatusCode, header};
use palisade_errors::{Error, ErrorKind, RequestId};
use proptest::prelude::*;
use serde_json::Value;

/// The contract clients code against: every kind's status, code and message.
#[test]
fn every_kind_has_its_fixed_status_code_and_message() {
    let table = [
        (
            ErrorKind::BadRequest,
            400,
            "bad_request",
            "The request is malformed",
        ),
        (
            ErrorKind::Unauthorized,
            401,
            "unauthorized",
            "Authentication is required",
        ),
        (
            ErrorKind::Forbidden,
            403,
            "forbidden",
            "You are not allowed to do this",
        ),
        (
            ErrorKind::CorsRejected,
            403,
            "cors_rejected",
            "Cross-origin request not allowed",
        ),
        (ErrorKind::NotFound, 404, "not_found", "Resource not found"),
        (
            ErrorKind::MethodNotAllowed,
            405,
            "method_not_allowed",
            "Method not allowed",
        ),
        (
            ErrorKind::RequestTimeout,
            408,
            "request_timeout",
            "The request took too long to arrive",
        ),
        (
            ErrorKind::Conflict,
            409,
            "conflict",
            "The request conflicts with the current state",
        ),
        (
            ErrorKind::PayloadTooLarge,
            413,
            "payload_too_large",
            "Request body too large",
        ),
        (
            ErrorKind::UriTooLong,
            414,
            "uri_too_long",
            "Request URI too long",
        ),
        (
            ErrorKind::UnsupportedMediaType,
            415,
            "unsupported_media_type",
            "Unsupported media type",
        ),
        (
            ErrorKind::ValidationFailed,
            422,
            "validation_failed",
            "The request is invalid",
        ),
        (
            ErrorKind::RateLimited,
            429,
            "rate_limited",
            "Too many requests",
        ),
        (
            ErrorKind::HeadersTooLarge,
            431,
            "headers_too_large",
            "Request headers too large",
        ),
        (
            ErrorKind::Internal,
            500,
            "internal",
            "Internal server error",
        ),
        (
            ErrorKind::Unavailable,
            503,
            "unavailable",
            "Service temporarily unavailable",
        ),
    ];
    assert_eq!(
        table.len(),
        ErrorKind::ALL.len(),
        "the table covers every kind"
    );
    for (kind, status, code, message) in table {
        assert!(ErrorKind::ALL.contains(&kind));
        assert_eq!(kind.status().as_u16(), status, "{kind:?}");
        assert_eq!(kind.code(), code);
        assert_eq!(kind.message(), message);
        assert_eq!(kind.to_string(), code);
    }
}

#[test]
fn codes_are_unique_snake_case() {
    let mut codes: Vec<_> = ErrorKind::ALL.iter().map(|kind| kind.code()).collect();
    for code in &codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
}

#[test]
fn framework_statuses_map_to_their_kinds() {
    assert_eq!(ErrorKind::from_status(StatusCode::OK), None);
    assert_eq!(ErrorKind::from_status(StatusCode::FOUND), None);
    assert_eq!(
        ErrorKind::from_status(StatusCode::FORBIDDEN),
        Some(ErrorKind::Forbidden)
    );
    assert_eq!(
        ErrorKind::from_status(StatusCode::METHOD_NOT_ALLOWED),
        Some(ErrorKind::MethodNotAllowed)
    );
    assert_eq!(
        ErrorKind::from_status(StatusCode::IM_A_TEAPOT),
        Some(ErrorKind::BadRequest)
    );
    assert_eq!(
        ErrorKind::from_status(StatusCode::BAD_GATEWAY),
        Some(ErrorKind::Internal)
    );
    for kind in ErrorKind::ALL {
        let back = ErrorKind::from_status(kind.status()).unwrap();
        assert_eq!(back.status(), kind.status());
    }
}

#[test]
fn envelope_snapshot_with_details() {
    let id = RequestId::parse("req-1").unwrap();
    let error = Error::new(ErrorKind::ValidationFailed)
        .with_detail("email", "invalid_format")
        .with_detail("items[2].qty", "out_of_range");
    assert_eq!(
        String::from_utf8(error.to_json(Some(&id))).unwrap(),
        r#"{"error":{"code":"validation_failed","message":"The request is invalid","request_id":"req-1","details":[{"field":"email","code":"invalid_format"},{"field":"items[2].qty","code":"out_of_range"}]}}"#
    );
    assert_eq!(
        String::from_utf8(Error::new(ErrorKind::NotFound).to_json(None)).unwrap(),
        r#"{"error":{"code":"not_found","message":"Resource not found","request_id":null}}"#
    );
}

#[test]
fn response_carries_status_headers_and_no_store() {
    let id = RequestId::parse("r1").unwrap();
    let response = Error::method_not_allowed(&[Method::GET, Method::POST])
        .with_header(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))
        .to_response(Some(&id));
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    // An extra header cannot turn the envelope into HTML.
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()["x-request-id"], "r1");
}

#[test]
fn repeated_challenges_are_all_kept() {
    let error = Error::new(ErrorKind::Unauthorized)
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"api\""),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"api\""),
        );
    let response = error.to_response(None);
    assert_eq!(
        response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .count(),
        2
    );
}

/// Information disclosure: the internal cause (a Redis error, a SQL statement)
/// is reachable for logging but never serialized.
#[test]
fn source_is_logged_never_serialized() {
    let error = Error::new(ErrorKind::Unavailable).with_source(std::io::Error::other(
        "redis 10.0.0.7:6379 refused: AUTH failed",
    ));
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(!body.contains("redis"));
    assert!(!error.to_string().contains("redis"));
    let source = std::error::Error::source(&error).expect("a source");
    assert!(source.to_string().contains("AUTH failed"));
}

/// Log injection through a field path taken from an unknown JSON key.
#[test]
fn field_paths_lose_control_characters_and_are_bounded() {
    let error = Error::new(ErrorKind::ValidationFailed)
        .with_detail(format!("name\r\n{}", "x".repeat(500)), "unknown_field");
    let detail = &error.details()[0];
    assert!(!detail.field().contains(['\r', '\n']));
    assert_eq!(detail.field().chars().count(), 128);
}

fn any_kind() -> impl Strategy<Value = ErrorKind> {
    proptest::sample::select(ErrorKind::ALL.to_vec())
}

proptest! {
    /// Any error, with any (even hostile) field names and request id
    /// candidates, serializes to valid JSON of exactly the envelope schema.
    #[test]
    fn any_error_serializes_to_the_schema(
        kind in any_kind(),
        fields in proptest::collection::vec(any::<String>(), 0..4),
        id_candidate in any::<String>(),
    ) {
        let mut error = Error::new(kind);
        for field in &fields {
            error = error.with_detail(field, "invalid");
        }
        let id = RequestId::parse(&id_candidate);
        let json: Value = serde_json::from_slice(&error.to_json(id.as_ref())).unwrap();
        let root = json.as_object().unwrap();
        prop_assert_eq!(root.len(), 1);
        let body = root["error"].as_object().unwrap();
        let expected_keys = if fields.is_empty() { 3 } else { 4 };
        prop_assert_eq!(body.len(), expected_keys);
        prop_assert_eq!(body["code"].as_str().unwrap(), kind.code());
        prop_assert_eq!(body["message"].as_str().unwrap(), kind.message());
        match &id {
            Some(id) => prop_assert_eq!(body["request_id"].as_str().unwrap(), id.as_str()),
            None => prop_assert!(body["request_id"].is_null()),
        }
        if !fields.is_empty() {
            let details = body["details"].as_array().unwrap();
            prop_assert_eq!(details.len(), fields.len());
            for detail in details {
                let detail = detail.as_object().unwrap();
                prop_assert_eq!(detail.len(), 2);
                prop_assert!(detail["field"].is_string());
                prop_assert_eq!(detail["code"].as_str().unwrap(), "invalid");
            }
        }
    }

    /// Any request id candidate either parses into the safe alphabet or is refused.
    #[test]
    fn request_ids_only_ever_hold_the_safe_alphabet(candidate in any::<String>()) {
        if let Some(id) = RequestId::parse(&candidate) {
            prop_assert!(id.as_str().len() <= 64);
            prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        }
    }
}

/// A 503 tells when to come back (a store outage, a full pool): clients
/// otherwise retry in a tight loop, adding load to the outage, or give up.
/// One that sets its own `Retry-After` keeps it.
#[test]
fn a_503_always_says_when_to_retry() {
    let response = Error::new(ErrorKind::Unavailable).to_response(None);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let response = Error::new(ErrorKind::Unavailable)
        .with_retry_after(7)
        .to_response(None);
    let values: Vec<_> = response
        .headers()
        .get_all(header::RETRY_AFTER)
        .iter()
        .collect();
    assert_eq!(values, ["7"]);
    let response = Error::new(ErrorKind::Internal).to_response(None);
    assert!(response.headers().get(header::RETRY_AFTER).is_none());
}
