//! Secret values: wiped on drop, never displayed, redacted in `Debug` and in
//! serialization, compared in constant time.

use secrecy::{ExposeSecret, SecretBox};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// The text that stands for a secret in `Debug`, serialization and logs.
pub const REDACTED: &str = "[REDACTED]";

/// A secret value: its memory is wiped when it drops (`zeroize`), it has no
/// `Display`, its `Debug` and its serde serialization print
/// [`REDACTED`], and the only way to read it is [`expose_secret`](Self::expose_secret),
/// which a reviewer can grep for.
///
/// ```
/// use palisade_secrets::SecretString;
///
/// let key = SecretString::from("correct horse battery staple");
/// assert_eq!(format!("{key:?}"), "Secret([REDACTED])");
/// assert_eq!(key.expose_secret(), "correct horse battery staple");
/// assert!(key.ct_eq(&SecretString::from("correct horse battery staple")));
/// ```
pub struct Secret<T: Zeroize> {
    inner: SecretBox<T>,
}

/// A secret text (a password, a signing key, a connection string).
pub type SecretString = Secret<String>;

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`; the wrapper owns it from now on.
    pub fn new(value: T) -> Secret<T> {
        Secret {
            inner: SecretBox::new(Box::new(value)),
        }
    }

    /// The value. Every read of a secret goes through this one method.
    pub fn expose_secret(&self) -> &T {
        self.inner.expose_secret()
    }
}

impl<T: Zeroize + AsRef<[u8]>> Secret<T> {
    /// Whether two secrets hold the same bytes, in time that does not depend
    /// on where they first differ (a timing side channel would let an
    /// attacker guess a secret byte by byte). Secrets of different lengths
    /// compare unequal; the length itself is not hidden.
    pub fn ct_eq(&self, other: &Secret<T>) -> bool {
        constant_time_eq(
            self.expose_secret().as_ref(),
            other.expose_secret().as_ref(),
        )
    }

    /// Whether the secret equals `candidate`, in constant time.
    pub fn ct_eq_bytes(&self, candidate: &[u8]) -> bool {
        constant_time_eq(self.expose_secret().as_ref(), candidate)
    }

    /// The length of the secret in bytes (not secret in itself: the
    /// production checks need it).
    pub fn len(&self) -> usize {
        self.expose_secret().as_ref().len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Constant-time equality of two byte strings (`subtle`): never `==` on a
/// secret, a token, a hash or a MAC.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Secret<T> {
        Secret::new(self.expose_secret().clone())
    }
}

impl<T: Zeroize> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> SecretString {
        Secret::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> SecretString {
        Secret::new(value.to_owned())
    }
}

impl From<Vec<u8>> for Secret<Vec<u8>> {
    fn from(value: Vec<u8>) -> Secret<Vec<u8>> {
        Secret::new(value)
    }
}

/// Serializes as [`REDACTED`]: a settings struct dumped to JSON for a
/// diagnostics page or a log never carries the value.
impl<T: Zeroize> serde::Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Reads a secret from configuration (a TOML file, JSON).
impl<'de, T: Zeroize + serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret::new)
    }
}
