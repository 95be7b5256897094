//! Upload refusals as captured log events: one `input_validation_fail`
//! per refusal, with a reason and the field, and never the file's name,
//! content or declared type.

#![cfg(feature = "uploads")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::future::Future;
use std::io::{Cursor, Write};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use palisade_validate::{
    FileType, ScanError, ScanVerdict, UploadMetadata, UploadPolicy, UploadScanner,
};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0MARKER-IN-PNG";

fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

struct Scanner(Result<ScanVerdict, &'static str>);

impl UploadScanner for Scanner {
    async fn scan(&self, _bytes: &[u8]) -> Result<ScanVerdict, ScanError> {
        self.0.clone().map_err(ScanError::new)
    }
}

#[test]
fn refusals_are_logged_without_names_or_content() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let policy = UploadPolicy::builder()
        .max_bytes(4096)
        .allow(FileType::Png)
        .allow(FileType::Zip)
        .allow(FileType::Text)
        .build()
        .unwrap();

    let mut slip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    slip.start_file(
        "../../SLIP-ENTRY-NAME",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    slip.write_all(b"SLIP-ENTRY-CONTENT").unwrap();
    let slip = slip.finish().unwrap().into_inner();

    let cases: Vec<(UploadMetadata, Vec<u8>, &str)> = vec![
        (
            UploadMetadata::new("SECRET-NAME-1.png"),
            vec![0; 5000],
            "too_large",
        ),
        (
            UploadMetadata::new("SECRET-NAME-2.png"),
            Vec::new(),
            "empty",
        ),
        (
            UploadMetadata::new("SECRET-NAME-3.exe"),
            PNG.to_vec(),
            "type_not_allowed",
        ),
        (
            UploadMetadata::new("SECRET-NAME-4.txt"),
            PNG.to_vec(),
            "type_mismatch",
        ),
        (
            UploadMetadata::new("SECRET-NAME-5.png").with_content_type("text/SECRET-TYPE"),
            PNG.to_vec(),
            "content_type_mismatch",
        ),
        (
            UploadMetadata::new("SECRET-NAME-6.txt"),
            b"<script>SECRET-SCRIPT</script>".to_vec(),
            "scriptable_content",
        ),
        (
            UploadMetadata::new("SECRET-NAME-7.zip"),
            slip,
            "archive_path_traversal",
        ),
    ];
    for (metadata, bytes, _) in &cases {
        assert!(policy.check(metadata, bytes).is_err());
    }
    let infected = Scanner(Ok(ScanVerdict::infected("Eicar-Test-Signature")));
    assert!(
        ready(policy.check_scanned(&UploadMetadata::new("SECRET-NAME-8.png"), PNG, &infected))
            .is_err()
    );
    let down = Scanner(Err("clamd down"));
    assert!(
        ready(policy.check_scanned(&UploadMetadata::new("SECRET-NAME-9.png"), PNG, &down)).is_err()
    );

    let events = capture.named(SecurityEvent::InputValidationFail);
    let reasons: Vec<&str> = events.iter().map(|e| e.field("reason").unwrap()).collect();
    let mut expected: Vec<&str> = cases.iter().map(|(_, _, reason)| *reason).collect();
    expected.extend(["malware_found", "scanner_unavailable"]);
    assert_eq!(reasons, expected, "one event per refusal, in order");
    for event in &events {
        assert_eq!(event.field("field"), Some("file"));
    }
    assert_eq!(events[7].field("signature"), Some("Eicar-Test-Signature"));
    capture.assert_vocabulary();
    for secret in [
        "SECRET-NAME",
        "SECRET-TYPE",
        "SECRET-SCRIPT",
        "MARKER-IN-PNG",
        "SLIP-ENTRY",
        "..",
    ] {
        capture.assert_absent(secret);
    }
}

#[test]
fn accepted_uploads_log_no_refusal() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let accepted = UploadPolicy::images().check(&UploadMetadata::new("ok.png"), PNG);
    assert!(accepted.is_ok());
    assert!(capture.security_events().is_empty());
}
