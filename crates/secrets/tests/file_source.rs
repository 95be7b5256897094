//! `NAME` / `NAME_FILE`: both set, missing file, trailing newline,
//! permissions, rotation, and no value in any error.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;

use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use palisade_secrets::{ConfigErrorKind, MapEnv, SecretSource};

const VALUE: &str = "file-secret-9fK2mQ7x";

fn secret_file(dir: &Path, name: &str, contents: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    set_mode(&path, mode);
    path.display().to_string()
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

#[test]
fn a_value_and_a_file_for_one_secret_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path(), "s", VALUE, 0o600);
    let env = MapEnv::from_iter([("APP_KEY", "inline-value"), ("APP_KEY_FILE", path.as_str())]);
    let error = SecretSource::new(&env).get("APP_KEY").unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::BothValueAndFile);
    assert!(error.to_string().contains("APP_KEY_FILE"));
    assert!(!error.to_string().contains("inline-value"));
}

#[test]
fn a_missing_file_is_an_error_naming_the_variable() {
    let env = MapEnv::from_iter([("APP_KEY_FILE", "/nonexistent/palisade/secret")]);
    let error = SecretSource::new(&env).get("APP_KEY").unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::FileUnreadable);
    assert_eq!(error.variable(), "APP_KEY_FILE");
}

#[test]
fn a_directory_is_not_a_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = MapEnv::from_iter([("APP_KEY_FILE", dir.path().display().to_string())]);
    let error = SecretSource::new(&env).get("APP_KEY").unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::FileUnreadable);
}

#[test]
fn one_trailing_newline_is_trimmed_and_only_one() {
    let dir = tempfile::tempdir().unwrap();
    for (contents, expected) in [
        (format!("{VALUE}\n"), VALUE.to_owned()),
        (format!("{VALUE}\r\n"), VALUE.to_owned()),
        (format!("{VALUE}\n\n"), format!("{VALUE}\n")),
        (VALUE.to_owned(), VALUE.to_owned()),
    ] {
        let path = secret_file(dir.path(), "s", &contents, 0o600);
        let env = MapEnv::from_iter([("APP_KEY_FILE", path)]);
        let secret = SecretSource::new(&env).require("APP_KEY").unwrap();
        assert_eq!(secret.expose_secret(), &expected);
    }
}

#[test]
fn an_unset_required_secret_names_both_variables() {
    let error = SecretSource::new(MapEnv::new())
        .require("APP_KEY")
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::Missing);
    assert!(error.to_string().contains("APP_KEY_FILE"));
}

#[test]
fn an_oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(palisade_secrets::MAX_SECRET_FILE_BYTES as usize + 1);
    let path = secret_file(dir.path(), "s", &big, 0o600);
    let env = MapEnv::from_iter([("APP_KEY_FILE", path)]);
    let error = SecretSource::new(&env).get("APP_KEY").unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::FileUnreadable);
}

#[cfg(unix)]
#[test]
fn a_file_writable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path(), "s", VALUE, 0o646);
    let env = MapEnv::from_iter([("APP_KEY_FILE", path)]);
    let error = SecretSource::new(&env).get("APP_KEY").unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::FilePermissions);
    assert!(error.to_string().contains("writable by other users"));
    assert!(!error.to_string().contains(VALUE));
}

#[cfg(unix)]
#[test]
fn a_world_readable_file_is_a_warning_by_default_as_docker_mounts_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path(), "s", VALUE, 0o444);
    let env = MapEnv::from_iter([("APP_KEY_FILE", path)]);
    let capture = EventCapture::new();
    let secret = {
        let _guard = capture.set_default();
        SecretSource::new(&env).require("APP_KEY").unwrap()
    };
    assert_eq!(secret.expose_secret(), VALUE);
    let warnings = capture.named(SecurityEvent::SysMisconfigured);
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0].field("reason"),
        Some("secret_file_world_readable")
    );
    assert_eq!(warnings[0].field("variable"), Some("APP_KEY_FILE"));
    capture.assert_absent(VALUE);
}

#[cfg(unix)]
#[test]
fn strict_mode_refuses_a_world_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path(), "s", VALUE, 0o644);
    let env = MapEnv::from_iter([("APP_KEY_FILE", path)]);
    let error = SecretSource::new(&env)
        .strict_permissions()
        .get("APP_KEY")
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::FilePermissions);
    let ok = secret_file(dir.path(), "t", VALUE, 0o400);
    let env = MapEnv::from_iter([("APP_KEY_FILE", ok)]);
    assert!(
        SecretSource::new(&env)
            .strict_permissions()
            .get("APP_KEY")
            .is_ok()
    );
}

#[test]
fn a_rotated_secret_has_current_and_previous_from_value_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let previous = secret_file(dir.path(), "prev", "old-secret-value\n", 0o600);
    let env = MapEnv::from_iter([
        ("APP_KEY", "new-secret-value"),
        ("APP_KEY_PREVIOUS_FILE", previous.as_str()),
    ]);
    let versions = SecretSource::new(&env)
        .versioned("APP_KEY")
        .unwrap()
        .unwrap();
    assert_eq!(versions.current().expose_secret(), "new-secret-value");
    assert_eq!(
        versions.previous().unwrap().expose_secret(),
        "old-secret-value"
    );
    let all: Vec<&str> = versions.all().map(|s| s.expose_secret().as_str()).collect();
    assert_eq!(all, ["new-secret-value", "old-secret-value"]);
    assert!(versions.accepts(b"old-secret-value"));
    assert!(!versions.accepts(b"other"));
}

#[test]
fn a_previous_version_without_a_current_one_is_refused() {
    let env = MapEnv::from_iter([("APP_KEY_PREVIOUS", "old-secret-value")]);
    let errors = SecretSource::new(&env).versioned("APP_KEY").unwrap_err();
    assert_eq!(errors.errors()[0].kind(), ConfigErrorKind::Missing);
}

#[test]
fn rotation_reports_both_versions_problems_at_once() {
    let env = MapEnv::from_iter([
        ("APP_KEY", "a"),
        ("APP_KEY_FILE", "/x"),
        ("APP_KEY_PREVIOUS_FILE", "/nonexistent/palisade/prev"),
    ]);
    let errors = SecretSource::new(&env).versioned("APP_KEY").unwrap_err();
    assert_eq!(errors.len(), 2);
}
