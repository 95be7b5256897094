//! Every public error of the typed-input modules converts into the envelope
//! with `?`, with a fixed status (CONTRIBUTING.md, "Errors"): a malformed
//! path id is a 404 without details, a broken update rule a 422 with them.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::error::Error as _;
use std::future::Future as _;

use palisade_errors::{Error, ErrorKind};
use palisade_validate::{
    Email, FieldReason, HexId, Patch, PathId, RedirectPolicy, SsrfGuard, StaticResolver,
    UpdateRules, UrlPolicy, Uuid,
};

fn assert_converted(error: &Error, kind: ErrorKind, status: u16) {
    assert_eq!(error.kind(), kind, "{error:?}");
    assert_eq!(error.status(), status);
    assert!(
        error.source().is_some(),
        "the core error is kept as the source"
    );
}

fn parse_id() -> Result<(), Error> {
    let _id: Uuid = "not-a-uuid".parse()?;
    Ok(())
}

fn path_id() -> Result<(), Error> {
    let _id = HexId::<32>::from_param("id", "1 OR 1=1")?;
    Ok(())
}

fn update() -> Result<(), Error> {
    UpdateRules::put()
        .required("name", &Patch::<String>::Absent)
        .finish()?;
    Ok(())
}

#[test]
fn id_errors_are_404_without_details() {
    for error in [parse_id().unwrap_err(), path_id().unwrap_err()] {
        assert_converted(&error, ErrorKind::NotFound, 404);
        assert!(error.details().is_empty(), "a 404 does not say why");
        let body = String::from_utf8(error.to_json(None)).unwrap();
        assert!(!body.contains("OR 1=1") && !body.contains("not-a-uuid"));
    }
}

#[test]
fn update_rules_are_422_with_field_paths() {
    let error = update().unwrap_err();
    assert_converted(&error, ErrorKind::ValidationFailed, 422);
    assert_eq!(error.details()[0].field(), "name");
    assert_eq!(error.details()[0].code(), "required");
}

fn email_field() -> Result<(), Error> {
    Email::parse("not an address").map_err(|e| e.at("contact.email"))?;
    Ok(())
}

fn email_bare() -> Result<(), Error> {
    let _email: Email = "not an address".parse()?;
    Ok(())
}

#[test]
fn text_errors_are_422_with_the_field_path() {
    let error = email_field().unwrap_err();
    assert_converted(&error, ErrorKind::ValidationFailed, 422);
    assert_eq!(error.details()[0].field(), "contact.email");
    assert_eq!(error.details()[0].code(), "invalid_format");
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(!body.contains("not an address"), "{body}");
    assert_converted(&email_bare().unwrap_err(), ErrorKind::ValidationFailed, 422);
}

fn url() -> Result<(), Error> {
    UrlPolicy::new().parse("javascript:alert(1)")?;
    Ok(())
}

fn redirect() -> Result<(), Error> {
    RedirectPolicy::new()
        .check("//evil.example")
        .map_err(|e| e.at("next"))?;
    Ok(())
}

fn ssrf() -> Result<(), Error> {
    let guard = SsrfGuard::with_resolver(StaticResolver::new());
    let check = std::pin::pin!(guard.check("http://169.254.169.254/"));
    // The static resolver is never asked for an IP literal: ready at once.
    let waker = std::task::Waker::noop();
    match check.poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(result) => {
            result.map_err(|e| e.at("webhook_url"))?;
        }
        std::task::Poll::Pending => panic!("no resolution needed"),
    }
    Ok(())
}

#[test]
fn url_ssrf_and_redirect_errors_are_422() {
    assert_converted(&url().unwrap_err(), ErrorKind::ValidationFailed, 422);
    let error = redirect().unwrap_err();
    assert_converted(&error, ErrorKind::ValidationFailed, 422);
    assert_eq!(error.details()[0].field(), "next");
    assert_eq!(error.details()[0].code(), "redirect_form");
    let error = ssrf().unwrap_err();
    assert_converted(&error, ErrorKind::ValidationFailed, 422);
    assert_eq!(error.details()[0].code(), "ssrf_link_local");
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(!body.contains("169.254"), "{body}");
}

fn like_config() -> Result<(), Error> {
    palisade_validate::LikeEscape::with_escape('%')?;
    Ok(())
}

fn url_config() -> Result<(), Error> {
    UrlPolicy::new().with_schemes(["javascript"])?;
    Ok(())
}

#[test]
fn configuration_errors_are_500() {
    assert_converted(&like_config().unwrap_err(), ErrorKind::Internal, 500);
    assert_converted(&url_config().unwrap_err(), ErrorKind::Internal, 500);
    #[cfg(feature = "html")]
    {
        let error: Error = palisade_validate::HtmlSanitizer::allow_tags(&["script"])
            .unwrap_err()
            .into();
        assert_converted(&error, ErrorKind::Internal, 500);
    }
}
