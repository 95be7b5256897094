//! The typed-input refusals as captured log events: `input_validation_fail`
//! with the field name and a reason, and never the rejected value (log
//! injection, personal data in logs).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use palisade_validate::{
    Email, FieldReason, HexId, Patch, PathId, RedirectPolicy, Ulid, UpdateRules, UrlPolicy,
    Username, Uuid,
};

#[test]
fn malformed_path_ids_are_logged_by_field_never_by_value() {
    let capture = EventCapture::new();
    {
        let _guard = capture.set_default();
        let hostile = "../../etc/passwd\r\nFAKE LOG LINE";
        assert!(HexId::<16>::from_param("user_id", hostile).is_err());
        assert!(Uuid::from_param("order_id", "UUID-SECRET-PROBE").is_err());
        assert!(Ulid::from_param("event_id", "ULID-SECRET-PROBE").is_err());
    }
    let events = capture.named(SecurityEvent::InputValidationFail);
    assert_eq!(events.len(), 3);
    let fields: Vec<_> = events.iter().map(|e| e.field("field").unwrap()).collect();
    assert_eq!(fields, ["user_id", "order_id", "event_id"]);
    assert_eq!(events[0].field("reason"), Some("id_length"));
    for needle in ["passwd", "FAKE LOG LINE", "SECRET-PROBE"] {
        capture.assert_absent(needle);
    }
    capture.assert_vocabulary();
}

#[test]
fn broken_update_rules_are_logged_by_field_never_by_value() {
    let capture = EventCapture::new();
    {
        let _guard = capture.set_default();
        let name: Patch<String> = Patch::Null;
        let email: Patch<String> = Patch::Absent;
        let bio = Patch::Value("my secret bio".to_owned());
        assert!(
            UpdateRules::put()
                .required("name", &name)
                .required("email", &email)
                .nullable("bio", &bio)
                .finish()
                .is_err()
        );
    }
    let events = capture.named(SecurityEvent::InputValidationFail);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].field("fields"),
        Some("name:null_not_allowed,email:required")
    );
    capture.assert_absent("my secret bio");
}

#[test]
fn refused_strings_are_logged_by_field_never_by_value() {
    let capture = EventCapture::new();
    {
        let _guard = capture.set_default();
        let _ =
            Email::parse("victim@example.com\r\nBcc: leak@evil.example").map_err(|e| e.at("email"));
        let _ = Username::parse("\u{202e}nimda-SECRET").map_err(|e| e.at("profile.username"));
    }
    let events = capture.named(SecurityEvent::InputValidationFail);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].field("field"), Some("email"));
    assert_eq!(events[0].field("reason"), Some("invalid_character"));
    assert_eq!(events[1].field("field"), Some("profile.username"));
    for needle in ["victim", "leak@evil", "Bcc", "nimda", "SECRET"] {
        capture.assert_absent(needle);
    }
}

#[test]
fn refused_urls_and_redirects_are_logged_by_field_never_by_value() {
    let capture = EventCapture::new();
    {
        let _guard = capture.set_default();
        let policy = RedirectPolicy::new();
        assert_eq!(policy.check_or("//evil.example/PROBE", "/"), "/");
        let _ = UrlPolicy::new()
            .parse("javascript:alert('PROBE')")
            .map_err(|e| e.at("profile.website"));
    }
    let events = capture.named(SecurityEvent::InputValidationFail);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].field("field"), Some("next"));
    assert_eq!(events[0].field("reason"), Some("redirect_form"));
    assert_eq!(events[1].field("field"), Some("profile.website"));
    assert_eq!(events[1].field("reason"), Some("url_scheme"));
    for needle in ["evil.example", "PROBE", "javascript"] {
        capture.assert_absent(needle);
    }
}
