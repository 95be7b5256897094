//! Every public error of the crate converts into the envelope with `?`, with
//! a fixed status (CONTRIBUTING.md, "Errors").

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::error::Error as _;
use std::net::IpAddr;

use palisade_apikeys::{
    ApiKeyErrorKind, ApiKeys, Cidr, KeyId, KeyRecord, KeyRequest, KeyStatus, KeyStore, KeyUsage,
    MemoryKeyStore, Pepper, StoreError,
};
use palisade_errors::{Error, ErrorKind};

fn assert_converted(error: &Error, kind: ErrorKind, status: u16) {
    assert_eq!(error.kind(), kind, "{error:?}");
    assert_eq!(error.status(), status);
    assert!(
        error.source().is_some(),
        "the core error is kept as the source"
    );
}

fn keys() -> ApiKeys<MemoryKeyStore> {
    ApiKeys::new(
        MemoryKeyStore::new(),
        Pepper::new("p1", vec![3; 32]).unwrap(),
    )
}

fn ip() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}

async fn malformed() -> Result<(), Error> {
    keys().verify("pal_live_nope", ip(), &[]).await?;
    Ok(())
}

async fn forbidden() -> Result<(), Error> {
    let keys = keys();
    let new = keys.issue(KeyRequest::new("a", "k"), &[]).await?;
    keys.verify(new.key.expose_secret(), ip(), &["admin"])
        .await?;
    Ok(())
}

async fn not_grantable() -> Result<(), Error> {
    keys()
        .issue(KeyRequest::new("a", "k").scopes(["admin"]), &[])
        .await?;
    Ok(())
}

async fn too_many() -> Result<(), Error> {
    let keys = keys().with_max_keys_per_owner(1)?;
    keys.issue(KeyRequest::new("a", "1"), &[]).await?;
    keys.issue(KeyRequest::new("a", "2"), &[]).await?;
    Ok(())
}

async fn not_found() -> Result<(), Error> {
    let id = KeyId::parse("0000000000000000000001").unwrap();
    keys().revoke("a", id).await?;
    Ok(())
}

fn config() -> Result<Cidr, Error> {
    Ok("10.0.0.1/8".parse::<Cidr>()?)
}

fn pepper() -> Result<Pepper, Error> {
    Ok(Pepper::new("p1", vec![1; 8])?)
}

struct Down;

impl KeyStore for Down {
    async fn insert(&self, _: KeyRecord) -> Result<(), StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn insert_capped(&self, _: KeyRecord, _: usize) -> Result<bool, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn get(&self, _: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn set_status(&self, _: &KeyId, _: KeyStatus) -> Result<bool, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn replace_status(
        &self,
        _: &KeyId,
        _: KeyStatus,
        _: KeyStatus,
    ) -> Result<bool, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn record_usage(&self, _: &[KeyUsage]) -> Result<(), StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn list_owner(&self, _: &str) -> Result<Vec<KeyRecord>, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
}

async fn store_down() -> Result<(), Error> {
    let keys = ApiKeys::new(Down, Pepper::new("p1", vec![3; 32])?);
    let other = ApiKeys::new(MemoryKeyStore::new(), Pepper::new("p1", vec![3; 32])?)
        .issue(KeyRequest::new("a", "k"), &[])
        .await?;
    keys.verify(other.key.expose_secret(), ip(), &[]).await?;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn every_error_converts_with_its_status() {
    let error = malformed().await.unwrap_err();
    assert_converted(&error, ErrorKind::Unauthorized, 401);
    assert_eq!(error.headers()["www-authenticate"], "ApiKey");
    assert!(error.is_logged(), "the core logged the refusal");
    let error = forbidden().await.unwrap_err();
    assert_converted(&error, ErrorKind::Forbidden, 403);
    assert!(error.is_logged());
    let error = not_grantable().await.unwrap_err();
    assert_converted(&error, ErrorKind::ValidationFailed, 422);
    assert_eq!(error.details()[0].field(), "scopes");
    assert_converted(&too_many().await.unwrap_err(), ErrorKind::Conflict, 409);
    assert_converted(&not_found().await.unwrap_err(), ErrorKind::NotFound, 404);
    assert_converted(&config().unwrap_err(), ErrorKind::Internal, 500);
    assert_converted(&pepper().unwrap_err(), ErrorKind::Internal, 500);
    let error = store_down().await.unwrap_err();
    assert_converted(&error, ErrorKind::Unavailable, 503);
    // The store error is reachable through the chain, for the log.
    let core = error.source().unwrap();
    assert!(core.source().unwrap().is::<StoreError>());
    let body = String::from_utf8(error.to_response(None).into_body()).unwrap();
    assert!(!body.contains("api key store"), "no internal detail sent");
}

#[tokio::test(flavor = "current_thread")]
async fn a_store_that_is_down_refuses_every_operation() {
    let keys = ApiKeys::new(Down, Pepper::new("p1", vec![3; 32]).unwrap());
    let id = KeyId::parse("0000000000000000000001").unwrap();
    let kinds = [
        keys.issue(KeyRequest::new("a", "k"), &[])
            .await
            .unwrap_err()
            .kind(),
        keys.revoke("a", id).await.unwrap_err().kind(),
        keys.rotate("a", id).await.unwrap_err().kind(),
        keys.list("a").await.unwrap_err().kind(),
    ];
    assert!(kinds.iter().all(|kind| *kind == ApiKeyErrorKind::Store));
}

/// A refused Redis key prefix is a configuration error: 500 with `?`.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "current_thread")]
async fn a_refused_redis_prefix_converts_to_a_500() {
    async fn build() -> Result<palisade_apikeys::RedisKeyStore, Error> {
        Ok(
            palisade_apikeys::RedisKeyStore::connect_lazy("redis://127.0.0.1:6379/0")?
                .with_key_prefix("app {x}")?,
        )
    }
    let error = build().await.unwrap_err();
    assert_converted(&error, ErrorKind::Internal, 500);
    let core = error.source().unwrap();
    let config = core
        .downcast_ref::<palisade_apikeys::ConfigError>()
        .unwrap();
    assert_eq!(
        config.kind(),
        palisade_apikeys::ConfigErrorKind::InvalidKeyPrefix
    );
}
