//! The settings pattern: every variable under one prefix, read into the
//! application's own typed struct, every problem collected and reported at
//! once.

use crate::dev::generate_dev_secret;
use crate::env::EnvSource;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::profile::Profile;
use crate::secret::SecretString;
use crate::source::{SecretSource, VersionedSecret};
use crate::value::FromEnvValue;

/// The default prefix of Palisade's variables.
pub const DEFAULT_PREFIX: &str = "PALISADE_";

/// Reads settings named `<prefix><KEY>` from an [`EnvSource`] and collects
/// every problem, so [`finish`](Self::finish) reports all of them at once
/// (one per variable, each naming it and the reason, never the value).
///
/// A getter that fails records the error and returns a placeholder (the
/// default), so building the application's struct goes on; `finish` then
/// returns the errors instead of the struct.
///
/// ```
/// use palisade_secrets::{EnvSettings, MapEnv, SecretString};
///
/// struct AppSettings { port: u16, debug: bool, db_password: SecretString }
///
/// let env = MapEnv::from_iter([("PALISADE_PORT", "eighty"), ("PALISADE_DEBUG", "maybe")]);
/// let mut s = EnvSettings::new(&env, "PALISADE_");
/// let app = AppSettings {
///     port: s.get("PORT", 8080),
///     debug: s.get("DEBUG", false),
///     db_password: s.required_secret("DB_PASSWORD"),
/// };
/// let errors = s.finish(app).err().unwrap();
/// assert_eq!(errors.len(), 3); // all three at once
/// assert!(errors.to_string().contains("PALISADE_DB_PASSWORD"));
/// ```
#[derive(Debug)]
pub struct EnvSettings<E> {
    secrets: SecretSource<E>,
    prefix: String,
    profile: Profile,
    errors: ConfigErrors,
}

impl<E: EnvSource> EnvSettings<E> {
    /// Settings named `<prefix><KEY>`; the profile is read from
    /// `PALISADE_ENV` (an unknown profile is the first recorded problem, and
    /// the reader goes on as production, the strictest).
    pub fn new(env: E, prefix: impl Into<String>) -> EnvSettings<E> {
        let mut errors = ConfigErrors::new();
        let profile = Profile::from_env(&env).unwrap_or_else(|error| {
            errors.push(error);
            Profile::Production
        });
        EnvSettings {
            secrets: SecretSource::new(env),
            prefix: prefix.into(),
            profile,
            errors,
        }
    }

    /// Refuses secret files readable by others (see [`SecretSource::strict_permissions`]).
    pub fn strict_permissions(mut self) -> EnvSettings<E> {
        self.secrets = self.secrets.strict_permissions();
        self
    }

    /// The profile read from `PALISADE_ENV`.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The full variable name of `key` (`PALISADE_` + `key`).
    pub fn variable(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The environment under the settings.
    pub fn env(&self) -> &E {
        self.secrets.env()
    }

    /// Records a problem found by the application itself (a cross-field rule).
    pub fn push_error(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// `<prefix><key>` parsed as `T`, or `None` when unset. An unparsable
    /// value is recorded and reads as `None`.
    pub fn optional<T: FromEnvValue>(&mut self, key: &str) -> Option<T> {
        let variable = self.variable(key);
        let text = self.env().var(&variable)?;
        match T::from_env_value(&text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.errors
                    .push(ConfigError::new(ConfigErrorKind::Invalid, variable, reason));
                None
            }
        }
    }

    /// `<prefix><key>` parsed as `T`, or `default` when unset.
    pub fn get<T: FromEnvValue>(&mut self, key: &str, default: T) -> T {
        let variable = self.variable(key);
        match self.env().var(&variable) {
            None => default,
            Some(text) => match T::from_env_value(&text) {
                Ok(value) => value,
                Err(reason) => {
                    self.errors
                        .push(ConfigError::new(ConfigErrorKind::Invalid, variable, reason));
                    default
                }
            },
        }
    }

    /// `<prefix><key>` parsed as `T`; unset is recorded as missing.
    pub fn required<T: FromEnvValue + Default>(&mut self, key: &str) -> T {
        let variable = self.variable(key);
        if self.env().var(&variable).is_none() {
            self.errors.push(ConfigError::new(
                ConfigErrorKind::Missing,
                variable,
                "required, not set",
            ));
            return T::default();
        }
        self.optional(key).unwrap_or_default()
    }

    /// The secret `<prefix><key>` (or its `_FILE`), if set.
    pub fn secret(&mut self, key: &str) -> Option<SecretString> {
        let variable = self.variable(key);
        self.secrets.get(&variable).unwrap_or_else(|error| {
            self.errors.push(error);
            None
        })
    }

    /// The secret `<prefix><key>` (or its `_FILE`); unset is recorded as
    /// missing and reads as an empty secret.
    pub fn required_secret(&mut self, key: &str) -> SecretString {
        let variable = self.variable(key);
        self.secrets.require(&variable).unwrap_or_else(|error| {
            self.errors.push(error);
            SecretString::from("")
        })
    }

    /// The secret `<prefix><key>`; in development only, a generated one
    /// (with a warning) when it is unset. Elsewhere unset is missing.
    pub fn secret_or_dev_generated(&mut self, key: &str) -> SecretString {
        let variable = self.variable(key);
        if self.profile.is_development() {
            match self.secrets.get(&variable) {
                Ok(Some(secret)) => secret,
                Ok(None) => generate_dev_secret(&variable),
                Err(error) => {
                    self.errors.push(error);
                    SecretString::from("")
                }
            }
        } else {
            self.required_secret(key)
        }
    }

    /// The rotated secret `<prefix><key>` and `<prefix><key>_PREVIOUS`.
    pub fn versioned_secret(&mut self, key: &str) -> Option<VersionedSecret> {
        let variable = self.variable(key);
        self.secrets.versioned(&variable).unwrap_or_else(|errors| {
            self.errors.extend(errors);
            None
        })
    }

    /// A flat `#[derive(Deserialize)]` struct, each field read from
    /// `<prefix><FIELD>` (upper-cased) or its `_FILE`: `bool`s, integers,
    /// strings, secrets, `Option`s, comma-separated lists, unit enums by
    /// name. Every problem is recorded (an unparsable value, a missing
    /// required field, a value and a file both set), not only the first;
    /// `None` when there was any. Fields with `#[serde(default)]` may be
    /// unset. Durations: read seconds into an integer field.
    ///
    /// ```
    /// use palisade_secrets::{EnvSettings, MapEnv, SecretString};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Db { url: String, password: SecretString, #[serde(default)] pool: u16 }
    ///
    /// let env = MapEnv::from_iter([("DB_URL", "postgres://db/app"), ("DB_POOL", "many")]);
    /// let mut s = EnvSettings::new(&env, "DB_");
    /// assert!(s.deserialize::<Db>().is_none());
    /// let errors = s.finish(()).unwrap_err();
    /// let variables: Vec<&str> = errors.errors().iter().map(|e| e.variable()).collect();
    /// assert_eq!(variables, ["DB_POOL", "DB_PASSWORD"]);
    /// ```
    pub fn deserialize<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        // Each variable is read once, however often serde restarts.
        let cache = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let secrets = &self.secrets;
        let read = |name: &str| -> Result<Option<String>, ConfigError> {
            cache
                .borrow_mut()
                .entry(name.to_owned())
                .or_insert_with(|| {
                    secrets
                        .get(name)
                        .map(|secret| secret.map(|secret| secret.expose_secret().clone()))
                })
                .clone()
        };
        let mut errors = Vec::new();
        let value = crate::de::from_env(&read, &self.prefix, &mut errors);
        self.errors.extend(errors);
        // The cache held copies of secret values: wipe them.
        for (_, mut read) in cache.into_inner() {
            if let Ok(Some(text)) = &mut read {
                zeroize::Zeroize::zeroize(text);
            }
        }
        value
    }

    /// The feature toggle `<prefix>FEATURE_<name>`, defaulting per profile.
    pub fn feature(&mut self, name: &str, default: FeatureDefault) -> bool {
        let fallback = default.for_profile(self.profile);
        self.get(&format!("FEATURE_{name}"), fallback)
    }

    /// The problems recorded so far.
    pub fn errors(&self) -> &ConfigErrors {
        &self.errors
    }

    /// `value` when every setting read well, otherwise every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        self.errors.into_result(value)
    }
}

/// The value of a feature toggle when its variable is unset, per profile
/// (the "environment-based feature toggles": on in development, off in
/// production until it ships).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureDefault {
    /// In development.
    pub development: bool,
    /// In staging.
    pub staging: bool,
    /// In production.
    pub production: bool,
}

impl FeatureDefault {
    /// Off everywhere unless its variable says otherwise.
    pub const OFF: FeatureDefault = FeatureDefault {
        development: false,
        staging: false,
        production: false,
    };
    /// On everywhere unless its variable says otherwise.
    pub const ON: FeatureDefault = FeatureDefault {
        development: true,
        staging: true,
        production: true,
    };
    /// On in development and staging, off in production.
    pub const PREVIEW: FeatureDefault = FeatureDefault {
        development: true,
        staging: true,
        production: false,
    };

    /// The default in `profile`.
    pub const fn for_profile(self, profile: Profile) -> bool {
        match profile {
            Profile::Development => self.development,
            Profile::Staging => self.staging,
            Profile::Production => self.production,
        }
    }
}
