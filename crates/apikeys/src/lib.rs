#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod base62;
mod cidr;
mod clock;
mod config;
mod error;
pub mod key;
mod keys;
mod pepper;
#[cfg(feature = "redis")]
mod redis_record;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
mod redis_support;
pub mod request;
pub mod store;
mod usage;

pub use cidr::Cidr;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, ConfigErrorKind};
pub use error::{ApiKeyError, ApiKeyErrorKind};
pub use key::{ApiKey, ApiKeySecret, KeyId, ParseProblem, ParsedKey};
pub use keys::{
    ApiKeys, DEFAULT_ENV, DEFAULT_MAX_KEYS_PER_OWNER, DEFAULT_ROTATION_GRACE, KeyInfo, KeyRequest,
    MAX_ROTATION_GRACE, NewKey,
};
pub use palisade_errors::StoreError;
pub use pepper::{MIN_PEPPER_BYTES, Pepper};
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_KEY_PREFIX, DEFAULT_RETENTION, MAX_RETENTION, RedisKeyStore};
pub use store::{DEFAULT_MAX_KEYS, KeyRecord, KeyStatus, KeyStore, MemoryKeyStore};
pub use usage::{DEFAULT_MAX_PENDING_USAGE, DEFAULT_USAGE_FLUSH_INTERVAL, KeyUsage};
