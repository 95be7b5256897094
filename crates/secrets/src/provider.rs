//! [`SecretProvider`]: where secrets come from, beside the environment, so a
//! secrets manager (Vault, a cloud secrets manager) plugs in without this
//! crate depending on one. [`MountedDir`] reads the Docker/Kubernetes
//! secrets layout.

use std::path::{Path, PathBuf};

use crate::env::EnvSource;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::secret::SecretString;
use crate::source::{PREVIOUS_SUFFIX, SecretSource, VersionedSecret, read_secret_file};

/// Which version of a rotated secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// The version to sign with.
    Current,
    /// The version still accepted for verification.
    Previous,
}

/// A source of named, versioned secrets. Reads are synchronous and meant for
/// start-up and reloads; an asynchronous manager's client fetches into a
/// cache that implements this.
pub trait SecretProvider {
    /// The `version` of secret `name`, or `None` when it does not exist.
    fn read(&self, name: &str, version: Version) -> Result<Option<SecretString>, ConfigError>;

    /// The current and previous versions; both problems reported at once.
    fn versioned(&self, name: &str) -> Result<Option<VersionedSecret>, ConfigErrors> {
        let current = self.read(name, Version::Current);
        let previous = self.read(name, Version::Previous);
        match (current, previous) {
            (Ok(Some(current)), Ok(previous)) => Ok(Some(VersionedSecret::new(current, previous))),
            (Ok(None), Ok(None)) => Ok(None),
            (Ok(None), Ok(Some(_))) => Err(ConfigError::new(
                ConfigErrorKind::Missing,
                name,
                "a previous version exists but the current one does not",
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

/// `NAME` / `NAME_FILE` for the current version, `NAME_PREVIOUS` /
/// `NAME_PREVIOUS_FILE` for the previous one.
impl<E: EnvSource> SecretProvider for SecretSource<E> {
    fn read(&self, name: &str, version: Version) -> Result<Option<SecretString>, ConfigError> {
        match version {
            Version::Current => self.get(name),
            Version::Previous => self.get(&format!("{name}{PREVIOUS_SUFFIX}")),
        }
    }
}

/// A mounted secrets directory (`/run/secrets`, a Kubernetes secret volume):
/// one file per secret (`<dir>/<name>`), or for a rotated secret a directory
/// holding `current` and `previous` files (`<dir>/<name>/current`).
///
/// Every read goes to the file system, so a secret the orchestrator updates
/// (Kubernetes swaps the `..data` symlink) is picked up by the next read:
/// re-read on a timer or a signal to rotate without a restart.
///
/// Files follow [`SecretSource`]'s rules: size-bounded, one trailing newline
/// removed, refused when writable by others.
#[derive(Clone, Debug)]
pub struct MountedDir {
    root: PathBuf,
    strict: bool,
}

impl MountedDir {
    /// Secrets under `root`.
    pub fn new(root: impl Into<PathBuf>) -> MountedDir {
        MountedDir {
            root: root.into(),
            strict: false,
        }
    }

    /// Refuses files readable by others (see [`SecretSource::strict_permissions`]).
    pub fn strict_permissions(mut self) -> MountedDir {
        self.strict = true;
        self
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl SecretProvider for MountedDir {
    fn read(&self, name: &str, version: Version) -> Result<Option<SecretString>, ConfigError> {
        // A name is one path component: `../etc/shadow` must not escape the root.
        let valid =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        if !valid {
            return Err(ConfigError::new(
                ConfigErrorKind::Invalid,
                name,
                "a mounted secret's name must be a single file name",
            ));
        }
        let entry = self.root.join(name);
        let path = if entry.is_dir() {
            entry.join(match version {
                Version::Current => "current",
                Version::Previous => "previous",
            })
        } else if version == Version::Current {
            entry
        } else {
            return Ok(None);
        };
        if !path.exists() {
            return Ok(None);
        }
        read_secret_file(&path, name, self.strict).map(Some)
    }
}
