//! Configuration errors: a setting that is missing, unparsable, unreadable or
//! insecure for the profile. Every error names the variable and the reason,
//! never the value.

/// One setting that cannot be used, found at start-up. The message names the
/// variable (`PALISADE_DB_PASSWORD`) and the reason; it never holds the value.
/// [`kind`](Self::kind) is for code.
///
/// Converts into a 500 `internal` [`palisade_errors::Error`] (the error kept
/// as its source, for the log), so start-up code can use `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    variable: String,
    reason: String,
}

/// The class of a [`ConfigError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A required variable is not set (neither `NAME` nor `NAME_FILE`).
    Missing,
    /// The value does not parse as the setting's type.
    Invalid,
    /// Both `NAME` and `NAME_FILE` are set: which one wins would be a guess.
    BothValueAndFile,
    /// The file named by `NAME_FILE` cannot be read (missing, a directory,
    /// too large, not UTF-8).
    FileUnreadable,
    /// The secret file is writable by other users (or, in strict mode,
    /// readable by them).
    FilePermissions,
    /// `PALISADE_ENV` is not `development`, `staging` or `production`.
    UnknownProfile,
    /// A `.env` file outside the development profile.
    DotenvOutsideDevelopment,
    /// A `.env` line that does not parse.
    DotenvSyntax,
    /// A setting refused by a [`ProductionCheck`](crate::ProductionCheck):
    /// safe in development, insecure in production.
    Insecure,
    /// A secret that is missing, a known default, too short, low in entropy
    /// or shared with another role.
    WeakSecret,
}

impl ConfigError {
    /// An error about `variable`; `reason` says why, without the value.
    pub fn new(
        kind: ConfigErrorKind,
        variable: impl Into<String>,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            kind,
            variable: variable.into(),
            reason: reason.into(),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The variable (or setting) concerned, e.g. `PALISADE_DB_PASSWORD`.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// Why the setting is refused, without its value.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem of a configuration at once, so an operator fixes them all
/// in one deployment instead of one per restart.
///
/// Its `Display` is one line per problem, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// No problem yet.
    pub fn new() -> ConfigErrors {
        ConfigErrors::default()
    }

    /// Adds one problem.
    pub fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// Every problem, in the order found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// The problems about `variable`.
    pub fn about<'a>(&'a self, variable: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.errors
            .iter()
            .filter(move |error| error.variable == variable)
    }

    /// Whether there is no problem.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// `Ok(value)` when there is no problem, otherwise every problem.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> ConfigErrors {
        ConfigErrors {
            errors: vec![error],
        }
    }
}

impl Extend<ConfigError> for ConfigErrors {
    fn extend<I: IntoIterator<Item = ConfigError>>(&mut self, iter: I) {
        self.errors.extend(iter);
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} configuration problem(s):", self.errors.len())?;
        for error in &self.errors {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A configuration that cannot work is the server's fault: 500 `internal`.
impl From<ConfigError> for palisade_errors::Error {
    fn from(error: ConfigError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}

/// Every problem at once, kept as the source for the log: 500 `internal`.
impl From<ConfigErrors> for palisade_errors::Error {
    fn from(errors: ConfigErrors) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(errors)
    }
}
