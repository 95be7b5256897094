#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod cors;
pub mod csp;
mod error;
mod nonce;
mod policy;
mod sink;

pub use cors::{CorsDecision, CorsPolicy, Origin};
pub use csp::{Csp, Directive, Source};
pub use error::{ConfigError, ConfigErrorKind};
pub use nonce::CspNonce;
pub use policy::{
    Allowlist, CrossOriginEmbedderPolicy, CrossOriginOpenerPolicy, CrossOriginResourcePolicy,
    FrameOptions, HeaderPolicy, HeaderPolicyConfig, Hsts, PermissionsPolicy, Preset,
    ReferrerPolicy, SecurityHeaders, XssProtection,
};
pub use sink::HeaderSink;
