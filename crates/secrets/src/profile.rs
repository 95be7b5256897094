//! The deployment profile: development, staging or production.

use crate::env::EnvSource;
use crate::error::{ConfigError, ConfigErrorKind};

/// The variable that names the profile.
pub const PROFILE_VAR: &str = "PALISADE_ENV";

/// The deployment profile, from `PALISADE_ENV` (default development).
///
/// Production refuses insecure settings at start-up; staging logs the same
/// findings as warnings; development allows `.env` files and generated
/// secrets.
///
/// ```
/// use palisade_secrets::{MapEnv, Profile};
///
/// let env = MapEnv::from_iter([("PALISADE_ENV", "production")]);
/// assert_eq!(Profile::from_env(&env)?, Profile::Production);
/// assert_eq!(Profile::from_env(&MapEnv::new())?, Profile::Development);
/// // A typo is an error, never a silent fall back to development.
/// assert!(Profile::from_env(&MapEnv::from_iter([("PALISADE_ENV", "prodution")])).is_err());
/// # Ok::<(), palisade_secrets::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A developer's machine: `.env` files and generated secrets allowed.
    #[default]
    Development,
    /// A pre-production deployment: insecure settings are logged as warnings.
    Staging,
    /// Production: insecure settings stop the start-up.
    Production,
}

impl Profile {
    /// Reads [`PROFILE_VAR`]; unset or empty means development.
    pub fn from_env(env: &impl EnvSource) -> Result<Profile, ConfigError> {
        match env.var(PROFILE_VAR) {
            None => Ok(Profile::Development),
            Some(value) if value.trim().is_empty() => Ok(Profile::Development),
            Some(value) => Profile::parse(&value).ok_or_else(|| {
                ConfigError::new(
                    ConfigErrorKind::UnknownProfile,
                    PROFILE_VAR,
                    "must be `development`, `staging` or `production` (or `dev`, `prod`)",
                )
            }),
        }
    }

    /// Parses a profile name (case-insensitive; `dev` and `prod` accepted).
    pub fn parse(value: &str) -> Option<Profile> {
        let value = value.trim();
        let is = |name: &str| value.eq_ignore_ascii_case(name);
        if is("development") || is("dev") {
            Some(Profile::Development)
        } else if is("staging") || is("stage") {
            Some(Profile::Staging)
        } else if is("production") || is("prod") {
            Some(Profile::Production)
        } else {
            None
        }
    }

    /// The profile's name (`development`, `staging`, `production`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Staging => "staging",
            Profile::Production => "production",
        }
    }

    /// Whether this is production.
    pub const fn is_production(self) -> bool {
        matches!(self, Profile::Production)
    }

    /// Whether this is development.
    pub const fn is_development(self) -> bool {
        matches!(self, Profile::Development)
    }
}

/// A profile name as [`Profile::parse`] reads it (`dev` and `prod` too).
impl<'de> serde::Deserialize<'de> for Profile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Profile, D::Error> {
        let name = String::deserialize(deserializer)?;
        Profile::parse(&name)
            .ok_or_else(|| serde::de::Error::custom("expected development, staging or production"))
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
