//! `NAME` or `NAME_FILE`: a secret from the environment or from a file the
//! orchestrator mounts (the Docker and Kubernetes convention), and the
//! current/previous pair of a rotated secret.

use std::io::Read;
use std::path::Path;

use palisade_errors::SecurityEvent;

use crate::env::EnvSource;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::secret::SecretString;

/// The largest secret file read: a `_FILE` pointing at a log or a device by
/// mistake is refused rather than read into memory.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The suffix of the variable that names a secret file.
pub const FILE_SUFFIX: &str = "_FILE";

/// The suffix of the variable holding the previous version of a rotated secret.
pub const PREVIOUS_SUFFIX: &str = "_PREVIOUS";

/// Loads secrets from `NAME` or from the file named by `NAME_FILE`.
///
/// - Both set: an error (which one wins would be a guess).
/// - From a file: one trailing newline (`\n` or `\r\n`) is removed, since
///   `echo secret > file` adds one.
/// - On Unix, a file writable by other users is refused (anyone on the host
///   could replace the secret); a file readable by others is logged as a
///   warning, because Docker and Kubernetes mount secrets `0444`/`0644`.
///   [`strict_permissions`](Self::strict_permissions) refuses that too.
/// - No error ever holds the value.
///
/// ```
/// use palisade_secrets::{MapEnv, SecretSource};
///
/// let env = MapEnv::from_iter([("PALISADE_JWT_SECRET", "a-long-random-value")]);
/// let source = SecretSource::new(&env);
/// let secret = source.require("PALISADE_JWT_SECRET")?;
/// assert_eq!(secret.expose_secret(), "a-long-random-value");
/// assert!(source.get("PALISADE_OTHER")?.is_none());
/// # Ok::<(), palisade_secrets::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SecretSource<E> {
    env: E,
    strict: bool,
}

impl<E: EnvSource> SecretSource<E> {
    /// Secrets from `env`, world-readable files allowed with a warning.
    pub fn new(env: E) -> SecretSource<E> {
        SecretSource { env, strict: false }
    }

    /// Also refuses a secret file readable by other users or writable by
    /// its group.
    pub fn strict_permissions(mut self) -> SecretSource<E> {
        self.strict = true;
        self
    }

    /// The environment this source reads.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// The secret `name`, or `None` when neither `name` nor `name_FILE` is set.
    pub fn get(&self, name: &str) -> Result<Option<SecretString>, ConfigError> {
        let file_var = format!("{name}{FILE_SUFFIX}");
        match (self.env.var(name), self.env.var(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                ConfigErrorKind::BothValueAndFile,
                name,
                format!("both {name} and {file_var} are set; set only one"),
            )),
            (Some(value), None) => Ok(Some(SecretString::from(value))),
            (None, Some(path)) => {
                read_secret_file(Path::new(&path), &file_var, self.strict).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// The secret `name`; an error naming it when it is not set.
    pub fn require(&self, name: &str) -> Result<SecretString, ConfigError> {
        self.get(name)?.ok_or_else(|| {
            ConfigError::new(
                ConfigErrorKind::Missing,
                name,
                format!("not set (set {name} or {name}{FILE_SUFFIX})"),
            )
        })
    }

    /// The current version (`name`) and the previous one (`name_PREVIOUS`),
    /// each from its variable or its `_FILE`. Both problems are reported at once.
    pub fn versioned(&self, name: &str) -> Result<Option<VersionedSecret>, ConfigErrors> {
        let previous_name = format!("{name}{PREVIOUS_SUFFIX}");
        let current = self.get(name);
        let previous = self.get(&previous_name);
        match (current, previous) {
            (Ok(Some(current)), Ok(previous)) => Ok(Some(VersionedSecret { current, previous })),
            (Ok(None), Ok(None)) => Ok(None),
            (Ok(None), Ok(Some(_))) => Err(ConfigError::new(
                ConfigErrorKind::Missing,
                name,
                format!("{previous_name} is set but the current version is not"),
            )
            .into()),
            (current, previous) => {
                let mut errors = ConfigErrors::new();
                errors.extend(current.err());
                errors.extend(previous.err());
                Err(errors)
            }
        }
    }
}

/// A rotated secret: sign with [`current`](Self::current), verify with
/// [`all`](Self::all) (current first), so tokens signed before a rotation
/// stay valid until the previous version is removed.
///
/// Hand the bytes to palisade-auth-tokens or palisade-apikeys, which take
/// plain secret bytes.
#[derive(Clone, Debug)]
pub struct VersionedSecret {
    current: SecretString,
    previous: Option<SecretString>,
}

impl VersionedSecret {
    /// A pair built in code.
    pub fn new(current: SecretString, previous: Option<SecretString>) -> VersionedSecret {
        VersionedSecret { current, previous }
    }

    /// The version to sign with.
    pub fn current(&self) -> &SecretString {
        &self.current
    }

    /// The version still accepted for verification, if any.
    pub fn previous(&self) -> Option<&SecretString> {
        self.previous.as_ref()
    }

    /// Every accepted version, current first.
    pub fn all(&self) -> impl Iterator<Item = &SecretString> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    /// Whether `candidate` is one of the accepted versions (constant time
    /// per comparison).
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        self.all()
            .fold(false, |found, secret| secret.ct_eq_bytes(candidate) | found)
    }
}

/// Reads a secret file: size-bounded, permissions checked, one trailing
/// newline removed. `variable` names the setting in errors (the path is not
/// secret; the contents are).
pub(crate) fn read_secret_file(
    path: &Path,
    variable: &str,
    strict: bool,
) -> Result<SecretString, ConfigError> {
    let unreadable = |why: String| {
        ConfigError::new(
            ConfigErrorKind::FileUnreadable,
            variable,
            format!("cannot read the secret file {}: {why}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(|error| unreadable(error.kind().to_string()))?;
    let metadata = file
        .metadata()
        .map_err(|error| unreadable(error.kind().to_string()))?;
    if !metadata.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    check_permissions(&metadata, path, variable, strict)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| unreadable(error.kind().to_string()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        zeroize::Zeroize::zeroize(&mut bytes);
        return Err(unreadable(format!(
            "larger than {MAX_SECRET_FILE_BYTES} bytes"
        )));
    }
    let mut text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            zeroize::Zeroize::zeroize(&mut error.into_bytes());
            return Err(unreadable("not UTF-8".into()));
        }
    };
    trim_one_newline(&mut text);
    Ok(SecretString::from(text))
}

/// Removes one trailing `\n` or `\r\n`: `echo value > file` adds one, and a
/// key with a newline in it would never match what the other side holds.
pub fn trim_one_newline(text: &mut String) {
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
}

#[cfg(unix)]
fn check_permissions(
    metadata: &std::fs::Metadata,
    path: &Path,
    variable: &str,
    strict: bool,
) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;

    let mode = metadata.permissions().mode();
    let refuse = |reason: &str| {
        Err(ConfigError::new(
            ConfigErrorKind::FilePermissions,
            variable,
            format!(
                "the secret file {} (mode {:o}) {reason}",
                path.display(),
                mode & 0o777
            ),
        ))
    };
    if mode & 0o002 != 0 {
        return refuse("is writable by other users, who could replace the secret; chmod o-w it");
    }
    if strict && mode & 0o020 != 0 {
        return refuse("is writable by its group (strict permissions); chmod g-w it");
    }
    if mode & 0o004 != 0 {
        if strict {
            return refuse("is readable by other users (strict permissions); chmod o-r it");
        }
        tracing::warn!(
            event = SecurityEvent::SysMisconfigured.as_str(),
            reason = "secret_file_world_readable",
            variable,
            mode = format!("{:o}", mode & 0o777),
            "a secret file is readable by other users (usual for Docker/Kubernetes mounts; \
             elsewhere chmod o-r it)"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(
    _metadata: &std::fs::Metadata,
    _path: &Path,
    _variable: &str,
    _strict: bool,
) -> Result<(), ConfigError> {
    Ok(())
}
