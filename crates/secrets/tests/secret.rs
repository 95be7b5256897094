//! `Secret<T>`: never printed, never serialized, compared in constant time.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_secrets::{REDACTED, Secret, SecretString, constant_time_eq};

#[test]
fn debug_never_prints_the_value() {
    let secret = SecretString::from("hunter2-hunter2");
    let debug = format!("{secret:?} {secret:#?}");
    assert!(!debug.contains("hunter2"));
    assert!(debug.contains(REDACTED));
}

#[test]
fn serialization_never_carries_the_value() {
    #[derive(serde::Serialize)]
    struct Settings {
        db_password: SecretString,
        key: Secret<Vec<u8>>,
    }
    let settings = Settings {
        db_password: SecretString::from("hunter2-hunter2"),
        key: Secret::from(b"raw-key-bytes".to_vec()),
    };
    let json = serde_json::to_string(&settings).unwrap();
    assert_eq!(json, r#"{"db_password":"[REDACTED]","key":"[REDACTED]"}"#);
}

#[test]
fn a_secret_reads_from_configuration_files() {
    let secret: SecretString = serde_json::from_str(r#""from-a-file""#).unwrap();
    assert_eq!(secret.expose_secret(), "from-a-file");
}

#[test]
fn equality_is_constant_time_and_exact() {
    let a = SecretString::from("same-value");
    assert!(a.ct_eq(&SecretString::from("same-value")));
    assert!(!a.ct_eq(&SecretString::from("same-valuf")));
    assert!(!a.ct_eq(&SecretString::from("same-value-longer")));
    assert!(a.ct_eq_bytes(b"same-value"));
    assert!(constant_time_eq(b"", b""));
    assert!(!constant_time_eq(b"a", b""));
}

#[test]
fn a_clone_is_an_independent_secret() {
    let a = SecretString::from("value-1234");
    let b = a.clone();
    drop(a);
    assert_eq!(b.expose_secret(), "value-1234");
    assert_eq!(b.len(), 10);
}
