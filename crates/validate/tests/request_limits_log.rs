//! Every refusal of the request-limit checks is one `input_validation_fail`
//! event with a reason and a field, and no rejected value anywhere in the log.
#![allow(clippy::unwrap_used)]

use http::Request;
use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use palisade_validate::content_type::JsonContentType;
use palisade_validate::hosts::TrustedHosts;
use palisade_validate::json::{self, JsonLimits};
use palisade_validate::limits::{BodyLimit, RequestLimits};

const SECRET: &str = "hunter2-leak-marker";

#[test]
fn each_refusal_is_one_event_without_the_value() {
    let capture = EventCapture::new();
    {
        let _guard = capture.set_default();
        let value = format!("{SECRET}{}", "x".repeat(9000));
        let request = Request::builder()
            .uri(format!("/?{SECRET}=1"))
            .header("x-big", value)
            .header("host", format!("{SECRET}.evil.com"))
            .header("content-type", format!("text/{SECRET}"))
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        RequestLimits::default().check_head(&parts).unwrap_err();
        let hosts = TrustedHosts::builder()
            .allow("api.example.com")
            .unwrap()
            .build(true)
            .unwrap();
        hosts.check(&parts, false).unwrap_err();
        JsonContentType::new().check(&parts.headers).unwrap_err();
        let mut body = BodyLimit::new(4);
        body.record(5).unwrap_err();
        body.record(5).unwrap_err();
        let deep = format!(r#"{{"note": "{SECRET}", "data": {}"#, "[".repeat(100));
        json::scan(deep.as_bytes(), &JsonLimits::default()).unwrap_err();
        json::scan(
            format!("[\"{SECRET}\", x]").as_bytes(),
            &JsonLimits::default(),
        )
        .unwrap_err();
    }
    let events = capture.named(SecurityEvent::InputValidationFail);
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.field("reason").unwrap(), e.field("field").unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("header_too_long", "header:x-big"),
            ("untrusted_host", "host"),
            ("unsupported_media_type", "content-type"),
            ("body_too_large", "body"),
            (
                "too_deep",
                "$.data[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
            ),
            ("syntax", "$[1]"),
        ]
    );
    capture.assert_absent(SECRET);
}
