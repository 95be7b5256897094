//! Every public error of the crate converts into the envelope with `?`, with
//! a fixed status (CONTRIBUTING.md, "Errors").

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::error::Error as _;

use palisade_errors::{Error, ErrorKind};
use palisade_passwords::reset::{MemoryResetTokenStore, ResetTokenStore, ResetTokens, StoreError};
use palisade_passwords::{PasswordHasher, PasswordPolicy, PolicyContext};
use secrecy::SecretString;

fn assert_converted(error: &Error, kind: ErrorKind, status: u16) {
    assert_eq!(error.kind(), kind, "{error:?}");
    assert_eq!(error.status(), status);
    assert!(
        error.source().is_some(),
        "the core error is kept as the source"
    );
}

fn wrong_password() -> Result<(), Error> {
    let hasher = PasswordHasher::new();
    let stored = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    let _ = hasher.verify(&SecretString::from("not U*U"), stored)?;
    Ok(())
}

fn too_long() -> Result<(), Error> {
    PasswordHasher::new().hash(&SecretString::from("a".repeat(2000)))?;
    Ok(())
}

fn planted_hash() -> Result<(), Error> {
    let stored = "$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    let _ = PasswordHasher::new().verify(&SecretString::from("x"), stored)?;
    Ok(())
}

fn policy() -> Result<(), Error> {
    PasswordPolicy::classic().check(&SecretString::from("password"), &PolicyContext::new())?;
    Ok(())
}

fn config() -> Result<PasswordPolicy, Error> {
    Ok(PasswordPolicy::builder().max_length(10).build()?)
}

struct Down;

impl ResetTokenStore for Down {
    async fn put(
        &self,
        _: &str,
        _: palisade_passwords::reset::ResetRecord,
        _: std::time::Duration,
    ) -> Result<(), StoreError> {
        Err(StoreError::timeout("reset token store"))
    }
    async fn take(
        &self,
        _: &str,
        _: &[u8; 32],
    ) -> Result<Option<palisade_passwords::reset::ResetRecord>, StoreError> {
        Err(StoreError::unavailable("test"))
    }
    async fn peek(
        &self,
        _: &str,
        _: &[u8; 32],
    ) -> Result<Option<palisade_passwords::reset::ResetRecord>, StoreError> {
        Err(StoreError::unavailable("test"))
    }
}

async fn reset_refused() -> Result<(), Error> {
    let resets = ResetTokens::new(MemoryResetTokenStore::new());
    resets
        .redeem("user-42", &"A".repeat(43), "$argon2id$x")
        .await?;
    Ok(())
}

async fn reset_store_down() -> Result<(), Error> {
    ResetTokens::new(Down)
        .redeem("user-42", &"A".repeat(43), "h")
        .await?;
    Ok(())
}

async fn reset_check_store_down() -> Result<(), Error> {
    ResetTokens::new(Down)
        .check("user-42", &"A".repeat(43), "h")
        .await?;
    Ok(())
}

async fn issue_store_down() -> Result<(), Error> {
    ResetTokens::new(Down).issue("user-42", "h").await?;
    Ok(())
}

#[test]
fn a_wrong_password_is_a_401_already_logged() {
    let error = wrong_password().unwrap_err();
    assert_converted(&error, ErrorKind::Unauthorized, 401);
    assert!(error.is_logged());
}

#[test]
fn an_over_long_password_is_a_422_with_its_detail() {
    let error = too_long().unwrap_err();
    assert_converted(&error, ErrorKind::ValidationFailed, 422);
    assert_eq!(error.details()[0].code(), "too_long");
}

#[test]
fn a_refused_stored_hash_and_a_bad_configuration_are_500s() {
    assert_converted(&planted_hash().unwrap_err(), ErrorKind::Internal, 500);
    assert_converted(&config().unwrap_err(), ErrorKind::Internal, 500);
}

#[test]
fn a_policy_violation_is_a_422_listing_every_failure() {
    let error = policy().unwrap_err();
    assert_converted(&error, ErrorKind::ValidationFailed, 422);
    let codes: Vec<&str> = error.details().iter().map(|d| d.code()).collect();
    assert_eq!(
        codes,
        [
            "missing_uppercase",
            "missing_digit",
            "missing_special",
            "too_common"
        ]
    );
    assert!(error.details().iter().all(|d| d.field() == "password"));
    assert!(
        !String::from_utf8(error.to_json(None))
            .unwrap()
            .contains("\"password\":\"password\"")
    );
}

#[tokio::test]
async fn reset_refusals_are_401s_and_store_failures_503s() {
    let refused = reset_refused().await.unwrap_err();
    assert_converted(&refused, ErrorKind::Unauthorized, 401);
    assert_converted(
        &reset_store_down().await.unwrap_err(),
        ErrorKind::Unavailable,
        503,
    );
    assert_converted(
        &reset_check_store_down().await.unwrap_err(),
        ErrorKind::Unavailable,
        503,
    );
    assert_converted(
        &issue_store_down().await.unwrap_err(),
        ErrorKind::Unavailable,
        503,
    );
}
