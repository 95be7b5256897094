//! Generated development secrets: a developer starts the service without
//! inventing a key, and the key can never pass for a production one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::SecretString;

/// The prefix of every generated development secret. The production checks
/// refuse a secret that starts with it (a development secret reused in
/// production).
pub const DEV_SECRET_PREFIX: &str = "palisade-dev-";

/// A random secret for development: [`DEV_SECRET_PREFIX`] and 32 random bytes
/// (base64url). Logs a warning naming `variable`, never the value.
///
/// # Panics
///
/// When the operating system's random source fails (`getrandom`), which
/// leaves no safe way to make a secret.
pub fn generate_dev_secret(variable: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    #[allow(clippy::expect_used)] // no randomness, no secret: stopping is the only safe answer
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    let secret = SecretString::from(format!(
        "{DEV_SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    ));
    zeroize::Zeroize::zeroize(&mut bytes);
    tracing::warn!(
        variable,
        "generated a random development secret for {variable}; it changes on every start \
         and staging or production refuse to run without {variable} set"
    );
    secret
}
