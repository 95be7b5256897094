//! Argon2id hashing with an optional pepper; verification of argon2 and
//! legacy bcrypt hashes, with the rehash rules.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use palisade_errors::SecurityEvent;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use crate::config::{ConfigError, ConfigErrorKind};
use crate::error::{HashError, HashErrorKind};
use crate::phc::{Argon2Hash, BcryptHash, HashScheme, StoredHash, valid_pepper_id};

/// Passwords longer than this many bytes are refused before hashing.
pub const DEFAULT_MAX_PASSWORD_BYTES: usize = 1024;
/// bcrypt reads at most this many bytes of a password.
pub const BCRYPT_MAX_BYTES: usize = 72;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 32;
/// The shortest pepper key accepted (HMAC-SHA-256's output size).
pub const MIN_PEPPER_BYTES: usize = 32;

/// Argon2id cost parameters for new hashes.
///
/// The default is OWASP's first recommendation (Password Storage Cheat
/// Sheet): 19 MiB, 2 passes, 1 lane — about 34 ms on one core of a 2024
/// server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Params {
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
    /// Passes over the memory (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
}

impl Argon2Params {
    /// m = 19456 KiB, t = 2, p = 1.
    pub const OWASP: Argon2Params = Argon2Params {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

impl Default for Argon2Params {
    fn default() -> Argon2Params {
        Argon2Params::OWASP
    }
}

/// The most a stored hash may ask for before verification refuses it: a
/// hash planted in the database with `m` = 4 GiB or bcrypt cost 31 would
/// otherwise make every login of that account a denial of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyCaps {
    /// Largest argon2 `m`, KiB (default 1 GiB).
    pub max_memory_kib: u32,
    /// Largest argon2 `t` (default 20).
    pub max_iterations: u32,
    /// Largest argon2 `p` (default 16).
    pub max_parallelism: u32,
    /// Largest bcrypt cost (default 16, about 4 s).
    pub max_bcrypt_cost: u32,
}

impl Default for VerifyCaps {
    fn default() -> VerifyCaps {
        VerifyCaps {
            max_memory_kib: 1024 * 1024,
            max_iterations: 20,
            max_parallelism: 16,
            max_bcrypt_cost: 16,
        }
    }
}

/// The settings of a [`PasswordHasher`] (serde: every field optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HasherConfig {
    /// Parameters of new hashes; stored hashes below them need a rehash.
    pub argon2: Argon2Params,
    /// Caps on what a stored hash may ask for.
    pub caps: VerifyCaps,
    /// Longest password, bytes (default 1024).
    pub max_password_bytes: usize,
}

impl Default for HasherConfig {
    fn default() -> HasherConfig {
        HasherConfig {
            argon2: Argon2Params::OWASP,
            caps: VerifyCaps::default(),
            max_password_bytes: DEFAULT_MAX_PASSWORD_BYTES,
        }
    }
}

/// A pepper: a secret key, held outside the database, that the password is
/// HMAC-SHA-256'd with before hashing, so a stolen database alone cannot be
/// cracked. Its `id` is written into the hash (`keyid=`), so peppers can
/// rotate: hashes under an older pepper still verify (give it to
/// [`PasswordHasher::with_previous_pepper`]) and report `needs_rehash`.
pub struct Pepper {
    id: String,
    key: SecretSlice<u8>,
}

impl Pepper {
    /// A pepper named `id` (1–32 of `[A-Za-z0-9-]`) with a key of at least
    /// 32 bytes.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPepper`] for a bad id or a short key.
    pub fn new(id: &str, key: SecretSlice<u8>) -> Result<Pepper, ConfigError> {
        if !valid_pepper_id(id) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPepper,
                "pepper id must be 1 to 32 characters of [A-Za-z0-9-]",
            ));
        }
        if key.expose_secret().len() < MIN_PEPPER_BYTES {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPepper,
                format!("pepper {id:?}: the key must be at least {MIN_PEPPER_BYTES} bytes"),
            ));
        }
        Ok(Pepper {
            id: id.to_owned(),
            key,
        })
    }

    /// The pepper's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn apply(&self, password: &[u8]) -> [u8; 32] {
        // Invariant: HMAC accepts keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(password);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pepper")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// A hash made by [`PasswordHasher::hash`]: an argon2id PHC string, to be
/// stored as it is. Its `Debug` shows the scheme only.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PHC string, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(argon2id, ..)")
    }
}

impl From<PasswordHash> for String {
    fn from(hash: PasswordHash) -> String {
        hash.0
    }
}

/// A successful verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "when `needs_rehash` is true, hash the password again and store the new hash"]
pub struct Verified {
    /// Store a fresh [`PasswordHasher::hash`] of the password now: the
    /// stored hash is bcrypt, another argon2 variant or version, below the
    /// current parameters, under an old or no pepper, or matched only the
    /// password's raw (non-NFKC) form. Never true merely because a stored
    /// hash is *stronger* than the current parameters.
    pub needs_rehash: bool,
}

/// Hashes new passwords with argon2id and verifies stored argon2 and bcrypt
/// hashes. Synchronous and CPU-heavy (tens of milliseconds): from async code
/// go through [`HashPool`](crate::HashPool) / [`AsyncHasher`](crate::AsyncHasher).
pub struct PasswordHasher {
    config: HasherConfig,
    pepper: Option<Pepper>,
    previous_peppers: Vec<Pepper>,
    dummy: OnceLock<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("config", &self.config)
            .field("pepper", &self.pepper)
            .field("previous_peppers", &self.previous_peppers)
            .finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    fn default() -> PasswordHasher {
        PasswordHasher::new()
    }
}

/// The NFKC form of a password (NIST SP 800-63B §5.1.1.2), kept secret.
pub(crate) fn nfkc(password: &str) -> SecretString {
    SecretString::from(password.nfkc().collect::<String>())
}

fn refused(kind: HashErrorKind, detail: &'static str, reason: &'static str) -> HashError {
    tracing::warn!(
        event = SecurityEvent::InputValidationFail.as_str(),
        reason,
        "password hashing refused its input"
    );
    HashError::new(kind, detail)
}

impl PasswordHasher {
    /// Argon2id at OWASP's parameters, no pepper, the default caps.
    pub fn new() -> PasswordHasher {
        PasswordHasher {
            config: HasherConfig::default(),
            pepper: None,
            previous_peppers: Vec::new(),
            dummy: OnceLock::new(),
        }
    }

    /// A hasher with `config`.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidHashParams`] when the parameters are below
    /// argon2's minimum (t ≥ 1, 1 ≤ p, m ≥ 8·p), below OWASP's floor of
    /// m = 7168 KiB at t = 5 (m·t ≥ 35,840), or above the caps (new hashes
    /// would then be refused by the verifier); or a byte cap of 0.
    pub fn with_config(config: HasherConfig) -> Result<PasswordHasher, ConfigError> {
        let Argon2Params {
            memory_kib: m,
            iterations: t,
            parallelism: p,
        } = config.argon2;
        let invalid = |why: &str| {
            Err(ConfigError::new(
                ConfigErrorKind::InvalidHashParams,
                format!("argon2 m={m}, t={t}, p={p}: {why}"),
            ))
        };
        if t == 0 || p == 0 || u64::from(m) < 8 * u64::from(p) {
            return invalid("below argon2's minimum (t >= 1, p >= 1, m >= 8p)");
        }
        if u64::from(m) * u64::from(t) < 7168 * 5 {
            return invalid("below OWASP's floor (m * t >= 35840 KiB)");
        }
        let caps = config.caps;
        if m > caps.max_memory_kib || t > caps.max_iterations || p > caps.max_parallelism {
            return invalid("above the verification caps, so new hashes could not be verified");
        }
        if config.max_password_bytes == 0 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidHashParams,
                "max_password_bytes must be at least 1",
            ));
        }
        Ok(PasswordHasher {
            config,
            ..PasswordHasher::new()
        })
    }

    /// Peppers new hashes with `pepper` (its id is written into them).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPepper`] when a previous pepper has its id.
    pub fn with_pepper(mut self, pepper: Pepper) -> Result<PasswordHasher, ConfigError> {
        self.check_unique(&pepper)?;
        self.pepper = Some(pepper);
        self.dummy = OnceLock::new();
        Ok(self)
    }

    /// Keeps verifying hashes made under an older `pepper` (they report
    /// `needs_rehash`).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPepper`] when another pepper has its id.
    pub fn with_previous_pepper(mut self, pepper: Pepper) -> Result<PasswordHasher, ConfigError> {
        self.check_unique(&pepper)?;
        self.previous_peppers.push(pepper);
        Ok(self)
    }

    fn check_unique(&self, pepper: &Pepper) -> Result<(), ConfigError> {
        let taken = self
            .pepper
            .iter()
            .chain(&self.previous_peppers)
            .any(|held| held.id == pepper.id);
        if taken {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPepper,
                format!("two peppers with the id {:?}", pepper.id),
            ));
        }
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &HasherConfig {
        &self.config
    }

    /// Refuses a password over the byte cap, without hashing anything.
    ///
    /// [`verify`](Self::verify) refuses it too, but only once there is a
    /// stored hash to verify against: call this before a login looks the
    /// account up, so that an over-long password gets the same answer for
    /// every username (a 422 for known names and a dummy verification's
    /// 401 for unknown ones would tell which names exist).
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::PasswordTooLong`].
    pub fn check_length(&self, password: &SecretString) -> Result<(), HashError> {
        if password.expose_secret().len() > self.config.max_password_bytes {
            return Err(refused(
                HashErrorKind::PasswordTooLong,
                "password longer than the byte cap",
                "password_too_long",
            ));
        }
        Ok(())
    }

    /// A new argon2id hash of the NFKC form of `password`, with a random
    /// 16-byte salt and the current pepper, as a PHC string.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::PasswordTooLong`] past the byte cap (checked before
    /// any work); [`HashErrorKind::Internal`] if the system's random source
    /// fails.
    pub fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError> {
        self.check_length(password)?;
        let normalized = nfkc(password.expose_secret());
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt)
            .map_err(|_| HashError::new(HashErrorKind::Internal, "no system randomness"))?;
        let params = self.config.argon2;
        let mut hash = Argon2Hash {
            scheme: HashScheme::Argon2id,
            version: 0x13,
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            pepper_id: self.pepper.as_ref().map(|pepper| pepper.id.clone()),
            salt: salt.to_vec(),
            tag: Vec::new(),
        };
        let input = normalized.expose_secret().as_bytes();
        let peppered = self.pepper.as_ref().map(|pepper| pepper.apply(input));
        hash.tag = self.argon2_tag(&hash, peppered.as_ref().map_or(input, |p| &p[..]), TAG_LEN)?;
        Ok(PasswordHash(hash.encode()))
    }

    /// Verifies `password` against a stored argon2id/argon2i/argon2d PHC or
    /// bcrypt `$2a$`/`$2b$`/`$2y$` hash (as made by passlib or argon2-cffi).
    ///
    /// The NFKC form is tried first, then the raw form (for hashes made
    /// elsewhere without normalization); bcrypt reads the first 72 bytes,
    /// like passlib. A mismatch logs `authn_login_fail`; a match that needs
    /// a rehash logs `authn_password_rehash` (`reason`: `legacy_scheme`,
    /// `below_parameters`, `pepper_changed` or `unnormalized_password`).
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::Mismatch`] for a wrong password;
    /// [`HashErrorKind::PasswordTooLong`], [`HashErrorKind::MalformedHash`],
    /// [`HashErrorKind::ParamsOverCap`] and [`HashErrorKind::UnknownPepper`]
    /// before any hashing.
    pub fn verify(&self, password: &SecretString, stored: &str) -> Result<Verified, HashError> {
        let verified = self.verify_quietly(password, stored);
        if let Err(error) = &verified
            && error.is_mismatch()
        {
            tracing::info!(
                event = SecurityEvent::AuthnLoginFail.as_str(),
                reason = "wrong_password",
                "password did not match"
            );
        }
        if let Ok(Verified { needs_rehash: true }) = verified {
            let parsed = StoredHash::parse(stored).ok();
            let scheme = parsed
                .as_ref()
                .map_or("unknown", |hash| hash.info().scheme().as_str());
            // No reason in the hash itself: only the password's raw form
            // matched.
            let reason = parsed
                .as_ref()
                .and_then(|hash| self.rehash_reason(hash))
                .unwrap_or("unnormalized_password");
            tracing::info!(
                event = SecurityEvent::AuthnPasswordRehash.as_str(),
                reason,
                scheme,
                "password verified; its hash needs a rehash"
            );
        }
        verified
    }

    /// [`verify`](Self::verify) without the `authn_login_fail` event: for
    /// checks that are not logins (password history).
    pub(crate) fn verify_quietly(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> Result<Verified, HashError> {
        self.check_length(password)?;
        let parsed = StoredHash::parse(stored).map_err(|error| {
            refused(
                error.kind(),
                "stored hash is malformed",
                "stored_hash_malformed",
            )
        })?;
        self.check_caps(&parsed)?;
        let raw = password.expose_secret();
        let normalized = nfkc(raw);
        let normalized = normalized.expose_secret();
        let matched_normalized = self.matches(&parsed, normalized.as_bytes())?;
        let matched_raw_only =
            !matched_normalized && normalized != raw && self.matches(&parsed, raw.as_bytes())?;
        if !matched_normalized && !matched_raw_only {
            return Err(HashError::new(HashErrorKind::Mismatch, "wrong password"));
        }
        Ok(Verified {
            needs_rehash: matched_raw_only || self.below_policy(&parsed),
        })
    }

    /// A verification of the same cost as a real one, against a fixed hash
    /// made with the current parameters and pepper: call it for an unknown
    /// user, so the response time does not tell which usernames exist.
    /// Always an error: [`HashErrorKind::Mismatch`] (or
    /// [`HashErrorKind::PasswordTooLong`], as [`verify`](Self::verify)
    /// would say), and an `authn_login_fail` event with reason
    /// `unknown_user`.
    pub fn dummy_verify(&self, password: &SecretString) -> HashError {
        let dummy = self.dummy.get_or_init(|| {
            // Any password works; it only has to be a valid current hash.
            self.hash(&SecretString::from("palisade dummy password"))
                .map(PasswordHash::into_string)
                .unwrap_or_default()
        });
        match self.verify_quietly(password, dummy) {
            Err(error) if !error.is_mismatch() => return error,
            _ => {}
        }
        tracing::info!(
            event = SecurityEvent::AuthnLoginFail.as_str(),
            reason = "unknown_user",
            "login for an unknown user"
        );
        HashError::new(HashErrorKind::Mismatch, "wrong password")
    }

    /// Whether `password` matches one of the `recent` stored hashes (a
    /// password-history check, newest first; it stops at the first match).
    /// Quiet: a mismatch here is not a failed login, so no
    /// `authn_login_fail` is logged. An entry that can never be compared
    /// (malformed, over today's caps, its pepper retired) is skipped with a
    /// warning, or the account could never change its password again.
    ///
    /// # Errors
    ///
    /// Any other failure ([`HashErrorKind::PasswordTooLong`], an internal
    /// error): it proves nothing either way, so the caller must refuse the
    /// change rather than read it as "not reused".
    pub fn is_reused<'h>(
        &self,
        password: &SecretString,
        recent: impl IntoIterator<Item = &'h str>,
    ) -> Result<bool, HashError> {
        // Even with no history: a password no verification could take is
        // refused as `verify` would refuse it.
        self.check_length(password)?;
        for stored in recent {
            match self.verify_quietly(password, stored) {
                Ok(_) => return Ok(true),
                Err(error) => match error.kind() {
                    HashErrorKind::Mismatch => {}
                    HashErrorKind::MalformedHash
                    | HashErrorKind::ParamsOverCap
                    | HashErrorKind::UnknownPepper => tracing::warn!(
                        reason = error.kind().as_str(),
                        "password history entry not comparable: skipped"
                    ),
                    _ => return Err(error),
                },
            }
        }
        Ok(false)
    }

    /// Whether `stored` should be replaced by a fresh hash, judged from the
    /// hash alone (without the password): bcrypt, argon2i/argon2d, argon2
    /// 0x10, any parameter below the current ones, a salt under 16 or a tag
    /// under 32 bytes, a pepper other than the current one.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::MalformedHash`] for a malformed hash.
    pub fn needs_rehash(&self, stored: &str) -> Result<bool, HashError> {
        Ok(self.below_policy(&StoredHash::parse(stored)?))
    }

    fn below_policy(&self, parsed: &StoredHash) -> bool {
        self.rehash_reason(parsed).is_some()
    }

    /// Why `parsed` should be replaced (the `reason` of the
    /// `authn_password_rehash` event), or `None`.
    fn rehash_reason(&self, parsed: &StoredHash) -> Option<&'static str> {
        let hash = match parsed {
            StoredHash::Bcrypt(_) => return Some("legacy_scheme"),
            StoredHash::Argon2(hash) => hash,
        };
        let current = self.config.argon2;
        let current_pepper = self.pepper.as_ref().map(|pepper| pepper.id.as_str());
        if hash.scheme != HashScheme::Argon2id || hash.version != 0x13 {
            Some("legacy_scheme")
        } else if hash.memory_kib < current.memory_kib
            || hash.iterations < current.iterations
            || hash.parallelism < current.parallelism
            || hash.salt.len() < SALT_LEN
            || hash.tag.len() < TAG_LEN
        {
            Some("below_parameters")
        } else if hash.pepper_id.as_deref() != current_pepper {
            Some("pepper_changed")
        } else {
            None
        }
    }

    fn check_caps(&self, parsed: &StoredHash) -> Result<(), HashError> {
        let caps = self.config.caps;
        let over = match parsed {
            StoredHash::Argon2(hash) => {
                hash.memory_kib > caps.max_memory_kib
                    || hash.iterations > caps.max_iterations
                    || hash.parallelism > caps.max_parallelism
            }
            StoredHash::Bcrypt(hash) => hash.cost > caps.max_bcrypt_cost,
        };
        if over {
            return Err(refused(
                HashErrorKind::ParamsOverCap,
                "stored hash parameters above the caps",
                "stored_hash_over_cap",
            ));
        }
        Ok(())
    }

    fn matches(&self, parsed: &StoredHash, password: &[u8]) -> Result<bool, HashError> {
        match parsed {
            StoredHash::Argon2(hash) => {
                let peppered;
                let input = match &hash.pepper_id {
                    None => password,
                    Some(id) => {
                        let pepper = self
                            .pepper
                            .iter()
                            .chain(&self.previous_peppers)
                            .find(|pepper| &pepper.id == id)
                            .ok_or_else(|| {
                                refused(
                                    HashErrorKind::UnknownPepper,
                                    "stored hash names an unknown pepper",
                                    "unknown_pepper",
                                )
                            })?;
                        peppered = pepper.apply(password);
                        &peppered[..]
                    }
                };
                let tag = self.argon2_tag(hash, input, hash.tag.len())?;
                Ok(bool::from(tag.ct_eq(&hash.tag)))
            }
            StoredHash::Bcrypt(hash) => Ok(bool::from(bcrypt_tag(hash, password).ct_eq(&hash.tag))),
        }
    }

    fn argon2_tag(
        &self,
        hash: &Argon2Hash,
        input: &[u8],
        tag_len: usize,
    ) -> Result<Vec<u8>, HashError> {
        let broken = |_| {
            HashError::new(
                HashErrorKind::MalformedHash,
                "argon2 refused the parameters",
            )
        };
        let params = argon2::Params::new(
            hash.memory_kib,
            hash.iterations,
            hash.parallelism,
            Some(tag_len),
        )
        .map_err(broken)?;
        let algorithm = match hash.scheme {
            HashScheme::Argon2i => argon2::Algorithm::Argon2i,
            HashScheme::Argon2d => argon2::Algorithm::Argon2d,
            _ => argon2::Algorithm::Argon2id,
        };
        let version = if hash.version == 0x10 {
            argon2::Version::V0x10
        } else {
            argon2::Version::V0x13
        };
        let mut blocks = vec![argon2::Block::default(); params.block_count()];
        let mut tag = vec![0u8; tag_len];
        argon2::Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(input, &hash.salt, &mut tag, &mut blocks)
            .map_err(broken)?;
        Ok(tag)
    }
}

/// bcrypt's 23-byte tag of `password` as OpenBSD's `$2b$` (and passlib)
/// compute it: the password with a NUL appended, cut to 72 bytes.
fn bcrypt_tag(hash: &BcryptHash, password: &[u8]) -> [u8; 23] {
    let mut key = secrecy::zeroize::Zeroizing::new(Vec::with_capacity(BCRYPT_MAX_BYTES));
    key.extend(password.iter().take(BCRYPT_MAX_BYTES));
    if key.len() < BCRYPT_MAX_BYTES {
        key.push(0);
    }
    // The key is 1..=72 bytes and the cost 4..=31 (the parser's range),
    // which is what `bcrypt::bcrypt` asserts.
    let output = bcrypt::bcrypt(hash.cost, hash.salt, &key);
    let mut tag = [0u8; 23];
    tag.copy_from_slice(output.get(..23).unwrap_or(&[0u8; 23]));
    tag
}
