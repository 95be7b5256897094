//! Every public error of the upload checks converts into the envelope with
//! `?`, with a fixed status and the detail `{field: "file", code: <reason>}`
//! (CONTRIBUTING.md, "Errors").

#![cfg(feature = "uploads")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::error::Error as _;

use palisade_errors::{Error, ErrorKind};
use palisade_validate::{
    ArchiveLimits, FileType, UploadMetadata, UploadPolicy, UploadPolicyBuilder,
};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

fn check(name: &str, bytes: &[u8]) -> Result<(), Error> {
    let policy = UploadPolicy::builder()
        .max_bytes(64)
        .allow(FileType::Png)
        .allow(FileType::Zip)
        .archive_limits(ArchiveLimits::default())
        .build()?;
    policy.check(&UploadMetadata::new(name), bytes)?;
    Ok(())
}

fn build(builder: UploadPolicyBuilder) -> Result<UploadPolicy, Error> {
    Ok(builder.build()?)
}

fn assert_converted(error: &Error, kind: ErrorKind, status: u16, code: Option<&str>) {
    assert_eq!(error.kind(), kind, "{error:?}");
    assert_eq!(error.status(), status);
    assert!(
        error.source().is_some(),
        "the core error is kept as the source"
    );
    let codes: Vec<&str> = error.details().iter().map(|d| d.code()).collect();
    assert_eq!(codes, code.into_iter().collect::<Vec<_>>());
    if let Some(detail) = error.details().first() {
        assert_eq!(detail.field(), "file");
    }
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(!body.contains("evil"), "no file name in the body: {body}");
}

#[test]
fn upload_refusals_convert_with_their_status() {
    let too_large = check("evil.png", &[0; 65]).unwrap_err();
    assert_converted(
        &too_large,
        ErrorKind::PayloadTooLarge,
        413,
        Some("too_large"),
    );
    let not_allowed = check("evil.exe", PNG).unwrap_err();
    assert_converted(
        &not_allowed,
        ErrorKind::UnsupportedMediaType,
        415,
        Some("type_not_allowed"),
    );
    let mismatch = check("evil.zip", PNG).unwrap_err();
    assert_converted(
        &mismatch,
        ErrorKind::ValidationFailed,
        422,
        Some("type_mismatch"),
    );
    let malformed = check("evil.zip", b"PK\x03\x04 broken").unwrap_err();
    assert_converted(
        &malformed,
        ErrorKind::ValidationFailed,
        422,
        Some("archive_malformed"),
    );
    assert!(!malformed.is_logged() || malformed.unlogged_refusal().is_none());
}

#[test]
fn configuration_errors_convert_to_500() {
    let error = build(UploadPolicy::builder()).unwrap_err();
    assert_converted(&error, ErrorKind::Internal, 500, None);
    let error = build(UploadPolicy::builder().allow(FileType::Html)).unwrap_err();
    assert_converted(&error, ErrorKind::Internal, 500, None);
}
