//! Every public error of the crate converts into the envelope with `?`, with
//! a fixed status (CONTRIBUTING.md, "Errors").

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::error::Error as _;

use palisade_auth_tokens::authz::Role;
use palisade_auth_tokens::refresh::{FamilyConfig, MemoryFamilyStore, RefreshFamilies};
use palisade_auth_tokens::revocation::{RevocationStore, StoreError, TokenRef};
use palisade_auth_tokens::{
    Algorithm, Claims, Keyring, ManualClock, SigningKey, TokenIssuer, TokenPolicy, TokenVerifier,
};
use palisade_errors::{Error, ErrorKind};
use secrecy::SecretSlice;

const NOW: u64 = 1_700_000_000;

fn secret(byte: u8) -> SecretSlice<u8> {
    SecretSlice::from((0..32).map(|i| byte ^ i).collect::<Vec<u8>>())
}

fn keyring(kid: &str, byte: u8) -> Keyring {
    Keyring::new([SigningKey::hmac(kid, Algorithm::HS256, &secret(byte)).unwrap()]).unwrap()
}

fn verifier() -> TokenVerifier<ManualClock> {
    TokenVerifier::with_clock(
        keyring("a1", 0x5a),
        keyring("r1", 0xa5),
        TokenPolicy::new("https://auth.example.com", "api").unwrap(),
        ManualClock::from_unix_secs(NOW),
    )
}

/// A revocation store that never answers.
struct Down;

impl RevocationStore for Down {
    async fn is_revoked(&self, _: TokenRef<'_>) -> Result<bool, StoreError> {
        Err(StoreError::timeout("revocation check"))
    }
    async fn revoke_token(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
        Err(StoreError::unavailable("test"))
    }
    async fn revoke_family(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
        Err(StoreError::unavailable("test"))
    }
    async fn revoke_subject(&self, _: &str) -> Result<u64, StoreError> {
        Err(StoreError::unavailable("test"))
    }
    async fn not_before(&self, _: &str) -> Result<Option<u64>, StoreError> {
        Err(StoreError::unavailable("test"))
    }
}

fn assert_converted(error: &Error, kind: ErrorKind, status: u16) {
    assert_eq!(error.kind(), kind, "{error:?}");
    assert_eq!(error.status(), status);
    assert!(
        error.source().is_some(),
        "the core error is kept as the source"
    );
}

fn token_error() -> Result<Claims, Error> {
    Ok(verifier().verify_access("not.a.token")?)
}

async fn token_error_store_down() -> Result<(), Error> {
    let issuer = TokenIssuer::with_clock(
        keyring("a1", 0x5a),
        keyring("r1", 0xa5),
        TokenPolicy::new("https://auth.example.com", "api").unwrap(),
        ManualClock::from_unix_secs(NOW),
    );
    let grant = palisade_auth_tokens::Grant {
        subject: "user-42".into(),
        ..Default::default()
    };
    let token = issuer
        .issue_access(&grant, palisade_auth_tokens::NoCustomClaims {})?
        .token;
    let _: Claims = verifier().verify_access_unrevoked(&token, &Down).await?;
    Ok(())
}

async fn store_error() -> Result<(), Error> {
    Down.revoke_subject("user-42").await?;
    Ok(())
}

fn key_error() -> Result<SigningKey, Error> {
    let short = SecretSlice::from(b"too short".to_vec());
    Ok(SigningKey::hmac("a1", Algorithm::HS256, &short)?)
}

fn sealing_key_error() -> Result<(), Error> {
    let clock = ManualClock::from_unix_secs(NOW);
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let issuer = TokenIssuer::with_clock(
        keyring("a1", 0x5a),
        keyring("r1", 0xa5),
        policy.clone(),
        clock.clone(),
    );
    let short_key = SecretSlice::from(vec![7u8; 16]);
    RefreshFamilies::new(
        issuer,
        verifier(),
        MemoryFamilyStore::with_clock(clock),
        &short_key,
        FamilyConfig::default(),
    )?;
    Ok(())
}

fn authz_config_error() -> Result<Role, Error> {
    Ok(Role::new("Admin")?)
}

#[test]
fn a_refused_token_is_a_401_with_the_invalid_token_challenge() {
    let error = token_error().unwrap_err();
    assert_converted(&error, ErrorKind::Unauthorized, 401);
    assert_eq!(
        error.headers()["www-authenticate"],
        r#"Bearer realm="api", error="invalid_token""#
    );
}

#[tokio::test]
async fn a_token_refused_because_the_store_is_down_is_a_503() {
    let error = token_error_store_down().await.unwrap_err();
    assert_converted(&error, ErrorKind::Unavailable, 503);
}

#[tokio::test]
async fn a_store_error_is_a_503() {
    let error = store_error().await.unwrap_err();
    assert_converted(&error, ErrorKind::Unavailable, 503);
}

#[test]
fn configuration_errors_are_500s() {
    assert_converted(&key_error().unwrap_err(), ErrorKind::Internal, 500);
    assert_converted(&sealing_key_error().unwrap_err(), ErrorKind::Internal, 500);
    assert_converted(&authz_config_error().unwrap_err(), ErrorKind::Internal, 500);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_refused_redis_key_prefix_is_a_config_error_and_a_500() {
    use palisade_auth_tokens::ConfigErrorKind;
    use palisade_auth_tokens::revocation::RedisRevocationStore;

    let typed = RedisRevocationStore::connect_lazy("redis://127.0.0.1:6379/0")
        .unwrap()
        .with_key_prefix("app:{all}")
        .unwrap_err();
    assert_eq!(typed.kind(), ConfigErrorKind::InvalidKeyPrefix);

    fn build() -> Result<RedisRevocationStore, Error> {
        Ok(RedisRevocationStore::connect_lazy("redis://127.0.0.1:6379/0")?.with_key_prefix("")?)
    }
    assert_converted(&build().unwrap_err(), ErrorKind::Internal, 500);
}
