//! [`CorsConfig`], the configuration-file form of a [`CorsPolicy`].

use std::time::Duration;

use serde::Deserialize;

#[cfg(doc)]
use super::CorsBuilder;
use super::CorsPolicy;
use crate::error::ConfigError;

/// The configuration-file form of a [`CorsPolicy`]; deserializing a
/// `CorsPolicy` runs the builder's checks on it.
///
/// ```toml
/// [cors]
/// allow_origins = ["https://app.example.com", "http://localhost:3000"]
/// allow_subdomains_of = ["https://example.org"]
/// allow_methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]  # the default
/// allow_headers = ["Authorization", "Content-Type"]
/// expose_headers = ["X-Request-Id"]
/// allow_credentials = true
/// max_age_secs = 600
/// allow_private_network = false
/// allow_any_origin_dangerously = false
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// See [`CorsBuilder::allow_origins`].
    pub allow_origins: Vec<String>,
    /// See [`CorsBuilder::allow_subdomains_of`].
    pub allow_subdomains_of: Vec<String>,
    /// See [`CorsBuilder::allow_methods`]; `None` keeps the default.
    pub allow_methods: Option<Vec<String>>,
    /// See [`CorsBuilder::allow_headers`]; `None` keeps the default.
    pub allow_headers: Option<Vec<String>>,
    /// See [`CorsBuilder::expose_headers`].
    pub expose_headers: Vec<String>,
    /// See [`CorsBuilder::allow_credentials`].
    pub allow_credentials: bool,
    /// See [`CorsBuilder::max_age`]; `None` keeps 600 s.
    pub max_age_secs: Option<u64>,
    /// See [`CorsBuilder::allow_private_network`].
    pub allow_private_network: bool,
    /// See [`CorsPolicy::allow_any_origin_dangerously`].
    pub allow_any_origin_dangerously: bool,
}

impl TryFrom<CorsConfig> for CorsPolicy {
    type Error = ConfigError;

    fn try_from(config: CorsConfig) -> Result<CorsPolicy, ConfigError> {
        let mut builder = if config.allow_any_origin_dangerously {
            CorsPolicy::allow_any_origin_dangerously()
        } else {
            CorsPolicy::builder()
        };
        builder = builder
            .allow_origins(config.allow_origins)
            .expose_headers(config.expose_headers)
            .allow_credentials(config.allow_credentials)
            .allow_private_network(config.allow_private_network);
        for parent in config.allow_subdomains_of {
            builder = builder.allow_subdomains_of(parent);
        }
        if let Some(methods) = config.allow_methods {
            builder = builder.allow_methods(methods);
        }
        if let Some(headers) = config.allow_headers {
            builder = builder.allow_headers(headers);
        }
        if let Some(seconds) = config.max_age_secs {
            builder = builder.max_age(Duration::from_secs(seconds));
        }
        builder.build()
    }
}
