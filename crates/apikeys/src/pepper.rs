//! The pepper: the server-side key of the stored HMACs.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::config::{ConfigError, ConfigErrorKind};

/// The shortest pepper accepted, in bytes.
pub const MIN_PEPPER_BYTES: usize = 32;

/// The server-side secret the stored HMACs are keyed with, and its id (kept
/// with each key, so a new pepper can take over while keys made under an
/// old one still verify). The key bytes given are wiped once the HMAC is
/// keyed with them; `Debug` shows the id only.
#[derive(Clone)]
pub struct Pepper {
    id: String,
    /// HMAC keyed once (the padded key's two blocks hashed): each HMAC of a
    /// secret clones it, half the work of keying anew. RustCrypto's digest
    /// 0.10 cannot wipe this derived state on drop; neither could the
    /// per-call HMACs it replaces, and it lives as long as the pepper.
    keyed: Hmac<Sha256>,
}

impl Pepper {
    /// A pepper of at least [`MIN_PEPPER_BYTES`] bytes, its id 1 to 32 of
    /// `[A-Za-z0-9-]`.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPepper`] otherwise.
    pub fn new(id: &str, key: Vec<u8>) -> Result<Pepper, ConfigError> {
        let key = Zeroizing::new(key);
        let id_ok = (1..=32).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !id_ok {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPepper,
                "pepper id must be 1 to 32 of A-Z, a-z, 0-9 and -",
            ));
        }
        if key.len() < MIN_PEPPER_BYTES {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPepper,
                "pepper must be at least 32 bytes",
            ));
        }
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        // `key` (Zeroizing) is wiped here, when it goes out of scope.
        Ok(Pepper {
            id: id.to_owned(),
            keyed,
        })
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn hmac(&self, secret: &[u8; 32]) -> [u8; 32] {
        #[cfg(test)]
        HMACS.with(|count| count.set(count.get() + 1));
        let mut mac = self.keyed.clone();
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pepper")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
thread_local! {
    /// HMACs computed on this thread, for the same-work tests.
    pub(crate) static HMACS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}
