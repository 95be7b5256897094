#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod checks;
mod de;
mod dev;
pub mod dotenv;
mod env;
mod error;
mod profile;
pub mod provider;
mod redact;
mod secret;
mod settings;
mod source;
mod value;

pub use checks::{Finding, Findings, ProductionCheck, SecretRules, Severity, StartupChecks};
pub use dev::{DEV_SECRET_PREFIX, generate_dev_secret};
pub use env::{EnvSource, Layered, MapEnv, ProcessEnv};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors};
pub use profile::{PROFILE_VAR, Profile};
pub use provider::{MountedDir, SecretProvider, Version};
pub use redact::{DEFAULT_SENSITIVE_NAMES, MIN_REGISTERED_LEN, RedactedHeaders, Redactor};
#[cfg(feature = "tracing-subscriber")]
pub use redact::{RedactingMakeWriter, RedactingWriter};
pub use secret::{REDACTED, Secret, SecretString, constant_time_eq};
pub use settings::{DEFAULT_PREFIX, EnvSettings, FeatureDefault};
pub use source::{
    FILE_SUFFIX, MAX_SECRET_FILE_BYTES, PREVIOUS_SUFFIX, SecretSource, VersionedSecret,
    trim_one_newline,
};
pub use value::FromEnvValue;
