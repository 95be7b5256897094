#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Every public error of the crate becomes the envelope error with `?`, with
//! a fixed kind and the crate's error kept as the source (for the log).

use std::net::IpAddr;

use palisade_errors::{Error, ErrorKind};
use palisade_ratelimit::client_ip::{ClientIpConfig, ClientIpResolver, IpNet};
use palisade_ratelimit::login::{LoginThrottle, LoginThrottleConfig, MemoryLoginStore};
use palisade_ratelimit::{
    ConfigError, ConfigErrorKind, MemoryStore, Policy, Quota, RateLimiter, StoreError,
};

fn config_error(result: Result<(), ConfigError>) -> Error {
    fn with_question_mark(result: Result<(), ConfigError>) -> Result<(), Error> {
        result?;
        Ok(())
    }
    with_question_mark(result).unwrap_err()
}

#[test]
fn config_errors_are_500_internal_with_the_setting_in_the_source() {
    let cases: Vec<(Result<(), ConfigError>, ConfigErrorKind, &str)> = vec![
        (
            Quota::parse("5/fortnight").map(drop),
            ConfigErrorKind::InvalidQuota,
            "5/fortnight",
        ),
        (
            Policy::parse(Vec::<&str>::new()).map(drop),
            ConfigErrorKind::InvalidQuota,
            "1 to 4 quotas",
        ),
        (
            IpNet::parse("10.0.0.1/8").map(drop),
            ConfigErrorKind::InvalidCidr,
            "10.0.0.1/8",
        ),
        (
            ClientIpResolver::peer_only().ipv6_prefix(8).map(drop),
            ConfigErrorKind::InvalidClientIp,
            "ipv6_prefix",
        ),
        (
            ClientIpResolver::try_from(ClientIpConfig {
                trusted_proxies: vec![IpNet::parse("10.0.0.0/8").unwrap()],
                ..ClientIpConfig::default()
            })
            .map(drop),
            ConfigErrorKind::InvalidClientIp,
            "header",
        ),
        (
            LoginThrottleConfig {
                ip_failures_per_window: 0,
                ..LoginThrottleConfig::default()
            }
            .rules()
            .map(drop),
            ConfigErrorKind::InvalidLoginConfig,
            "ip_failures_per_window",
        ),
        (
            Policy::parse(["10/second", "100/minute"])
                .unwrap()
                .check_cost(11)
                .map(drop),
            ConfigErrorKind::InvalidCost,
            "cost of 11",
        ),
        (
            palisade_ratelimit::login::IdHasher::from_secret(b"short").map(drop),
            ConfigErrorKind::InvalidSecret,
            "secret",
        ),
    ];
    for (result, kind, named) in cases {
        let config = result.clone().unwrap_err();
        assert_eq!(config.kind(), kind, "{config}");
        assert!(config.to_string().contains(named), "{config}");
        let error = config_error(result);
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert_eq!(error.status(), 500);
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.contains(named), "{source}");
        let body = String::from_utf8(error.to_json(None)).unwrap();
        assert!(
            !body.contains(named),
            "config detail reached the client: {body}"
        );
    }
}

#[tokio::test]
async fn store_errors_are_503_unavailable() {
    async fn check(limiter: &RateLimiter<MemoryStore>) -> Result<(), Error> {
        limiter.check("ip4:192.0.2.1", 1).await?;
        let failed: Result<(), StoreError> = Err(StoreError::timeout("rate-limit decision"));
        failed?;
        Ok(())
    }
    let limiter = RateLimiter::new(
        "api",
        Policy::parse(["1/second"]).unwrap(),
        MemoryStore::new(),
    );
    let error = check(&limiter).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.status(), 503);
    let source = std::error::Error::source(&error).unwrap();
    assert_eq!(source.to_string(), "store timeout: rate-limit decision");
}

#[tokio::test]
async fn limiter_and_throttle_refusals_are_already_envelope_errors() {
    async fn limited(limiter: &RateLimiter<MemoryStore>) -> Result<(), Error> {
        limiter.consume("ip4:192.0.2.1", 1).await?;
        limiter.consume("ip4:192.0.2.1", 1).await?;
        Ok(())
    }
    let limiter = RateLimiter::new(
        "api",
        Policy::parse(["1/minute"]).unwrap(),
        MemoryStore::new(),
    );
    let error = limited(&limiter).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.status(), 429);

    async fn login(throttle: &LoginThrottle<MemoryLoginStore>, ip: IpAddr) -> Result<(), Error> {
        let _first = throttle.check("mallory", ip, None).await?;
        throttle.record_failure("mallory", ip).await;
        let _second = throttle.check("mallory", ip, None).await?;
        Ok(())
    }
    let throttle = LoginThrottle::new(
        MemoryLoginStore::new(),
        LoginThrottleConfig {
            free_failures_per_account_ip: 1,
            ..LoginThrottleConfig::default()
        },
    )
    .unwrap();
    let error = login(&throttle, "198.51.100.1".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.status(), 429);
}

#[tokio::test]
async fn building_from_configuration_with_question_mark() {
    // The README's shape: configuration errors and refusals through one `?`.
    async fn serve() -> Result<(), Error> {
        let limiter = RateLimiter::new(
            "search",
            Policy::parse(["5/second", "100/minute"])?,
            MemoryStore::new(),
        );
        limiter.consume("ip4:203.0.113.7", 1).await?;
        let _bad = Policy::parse(["five/second"])?;
        Ok(())
    }
    let error = serve().await.unwrap_err();
    assert_eq!(error.status(), 500);
}
