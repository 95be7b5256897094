//! Where settings come from: the process environment, or a map for tests
//! and doctests (never `std::env::set_var` in a test: it is `unsafe` in
//! edition 2024, and races with every other thread reading the environment).

use std::collections::BTreeMap;

/// A source of environment variables.
pub trait EnvSource {
    /// The value of `name`, if set. A value that is not UTF-8 reads as unset
    /// (a required setting then fails as missing).
    fn var(&self, name: &str) -> Option<String>;
}

impl<E: EnvSource + ?Sized> EnvSource for &E {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }
}

/// The process environment (`std::env::var`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables: for tests, doctests, and a `.env` file's
/// contents.
///
/// ```
/// use palisade_secrets::{EnvSource, MapEnv};
///
/// let env = MapEnv::from_iter([("PALISADE_ENV", "staging")]);
/// assert_eq!(env.var("PALISADE_ENV").as_deref(), Some("staging"));
/// ```
#[derive(Clone, Default)]
pub struct MapEnv {
    vars: BTreeMap<String, String>,
}

impl MapEnv {
    /// No variable.
    pub fn new() -> MapEnv {
        MapEnv::default()
    }

    /// Sets `name` (a builder method).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> MapEnv {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Sets `name`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// The names set, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }
}

/// The names only: values may be secrets.
impl std::fmt::Debug for MapEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapEnv")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> MapEnv {
        MapEnv {
            vars: iter
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        }
    }
}

impl EnvSource for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

/// `first`, falling back to `then` for a variable `first` does not set: the
/// process environment over a `.env` file, as every dotenv loader does.
#[derive(Clone, Debug)]
pub struct Layered<A, B> {
    first: A,
    then: B,
}

impl<A: EnvSource, B: EnvSource> Layered<A, B> {
    /// `first` wins over `then`.
    pub fn new(first: A, then: B) -> Layered<A, B> {
        Layered { first, then }
    }
}

impl<A: EnvSource, B: EnvSource> EnvSource for Layered<A, B> {
    fn var(&self, name: &str) -> Option<String> {
        self.first.var(name).or_else(|| self.then.var(name))
    }
}
