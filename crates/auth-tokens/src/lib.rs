#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod authz;
pub mod bearer;
mod challenge;
mod clock;
mod config;
pub mod cookie;
mod keyring;
#[cfg(feature = "redis")]
mod redis_support;
pub mod refresh;
pub mod revocation;
mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, ConfigErrorKind};
pub use keyring::{Algorithm, KeyError, KeyStatus, Keyring, SigningKey};
pub use token::{
    Claims, DEFAULT_REALM, Grant, IssuedToken, MAX_LEEWAY, NoCustomClaims, Relaxations, TokenError,
    TokenErrorKind, TokenIssuer, TokenPolicy, TokenPolicyBuilder, TokenType, TokenVerifier,
    random_id,
};
