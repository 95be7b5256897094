#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod breaker;
pub mod client_ip;
mod clock;
mod error;
mod fail;
pub mod gcra;
pub mod keys;
mod limiter;
pub mod login;
mod memory;
mod quota;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
mod redis_support;
mod store;

pub use breaker::BreakerConfig;
pub use clock::{Clock, FastClock, ManualClock, SystemClock, Timestamp};
pub use error::{CheckError, ConfigError, ConfigErrorKind};
pub use fail::FailMode;
pub use gcra::{Decision, Mode};
pub use limiter::{Admission, HeaderStyle, RateLimiter};
pub use memory::{DEFAULT_MAX_KEYS, MemoryStats, MemoryStore};
pub use palisade_errors::{StoreError, StoreErrorKind};
pub use quota::{MAX_QUOTAS, Policy, Quota};
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_TIMEOUT as DEFAULT_REDIS_TIMEOUT, RedisStore};
pub use store::RateStore;
