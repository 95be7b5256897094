#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
mod config;
mod error;
mod hasher;
mod phc;
mod policy;
mod pool;
#[cfg(feature = "redis")]
mod redis_support;
pub mod reset;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, ConfigErrorKind};
pub use error::{HashError, HashErrorKind};
pub use hasher::{
    Argon2Params, BCRYPT_MAX_BYTES, DEFAULT_MAX_PASSWORD_BYTES, HasherConfig, MIN_PEPPER_BYTES,
    PasswordHash, PasswordHasher, Pepper, Verified, VerifyCaps,
};
pub use phc::{HashInfo, HashScheme};
pub use policy::{
    MAX_MAX_LENGTH, MIN_CONTEXT_WORD_CHARS, PasswordPolicy, PasswordPolicyBuilder, PolicyContext,
    PolicyFailure, PolicyViolation, STRENGTH_PREFIX_CHARS, blocklist_len,
};
pub use pool::{AsyncHasher, DEFAULT_QUEUE_PER_WORKER, HashPool, Reservation, ReservedHasher};
