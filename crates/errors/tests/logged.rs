//! The `logged` marker: a core marks the refusal whose event it emitted, so
//! an adapter logs only the refusals no core reported.

use palisade_errors::{Error, ErrorKind, SecurityEvent};

#[test]
fn an_unmarked_refusal_names_the_event_an_adapter_logs() {
    let cases = [
        (ErrorKind::Unauthorized, SecurityEvent::AuthnTokenInvalid),
        (ErrorKind::Forbidden, SecurityEvent::AuthzFail),
        (
            ErrorKind::RateLimited,
            SecurityEvent::ExcessRateLimitExceeded,
        ),
    ];
    for (kind, event) in cases {
        let error = Error::new(kind);
        assert!(!error.is_logged());
        assert_eq!(error.unlogged_refusal(), Some(event), "{kind:?}");
    }
}

#[test]
fn a_marked_refusal_is_never_logged_again() {
    let error = Error::new(ErrorKind::RateLimited)
        .with_retry_after(3)
        .logged();
    assert!(error.is_logged());
    assert_eq!(error.unlogged_refusal(), None);
    // The mark survives a clone and later builder calls.
    let error = error.clone().with_source(std::io::Error::other("x"));
    assert!(error.is_logged());
}

#[test]
fn other_kinds_name_no_refusal_event() {
    for kind in [
        ErrorKind::NotFound,
        ErrorKind::CorsRejected,
        ErrorKind::Internal,
        ErrorKind::ValidationFailed,
    ] {
        assert_eq!(Error::new(kind).unlogged_refusal(), None, "{kind:?}");
    }
}
