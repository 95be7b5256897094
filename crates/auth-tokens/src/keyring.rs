//! Signing keys and keyrings: which key signs, which keys verify.

use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretSlice};

/// A signature algorithm Palisade accepts. `none` is not one: there is no
/// way to build a key, and so to accept a token, without a signature.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256 (a secret of at least 32 bytes).
    HS256,
    /// HMAC with SHA-384 (at least 48 bytes).
    HS384,
    /// HMAC with SHA-512 (at least 64 bytes).
    HS512,
    /// Ed25519.
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

impl Algorithm {
    /// The `alg` header value (compared exactly: `hs256` or `None` are not it).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
        }
    }

    pub(crate) const fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::HS384 => jsonwebtoken::Algorithm::HS384,
            Algorithm::HS512 => jsonwebtoken::Algorithm::HS512,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }

    /// The shortest HMAC secret accepted: the hash output size (RFC 7518 §3.2).
    const fn min_secret_len(self) -> Option<usize> {
        match self {
            Algorithm::HS256 => Some(32),
            Algorithm::HS384 => Some(48),
            Algorithm::HS512 => Some(64),
            Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256 => None,
        }
    }
}

/// What a key may be used for during a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// Signs new tokens and verifies (at most one per keyring).
    Active,
    /// Verifies tokens it signed before the rotation; signs nothing.
    VerifyOnly,
    /// Kept for the record; verifies nothing (its tokens are refused).
    Retired,
}

/// Why a key or keyring was refused. The message says why and names the
/// key id, never the key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    detail: String,
}

impl KeyError {
    fn new(detail: impl Into<String>) -> KeyError {
        KeyError {
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for KeyError {}

/// A key that cannot be used is a configuration mistake: 500 `internal`,
/// the key error (which names the key id, never the secret) kept as the
/// source, for the log.
impl From<KeyError> for palisade_errors::Error {
    fn from(error: KeyError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}

/// Secrets from tutorials, framework examples and `.env.example` files:
/// the first thing an attacker tries when brute-forcing an HMAC key offline
/// from one captured token. Refused also when repeated to reach the length.
const WEAK_SECRETS: [&str; 16] = [
    "secret",
    "changeme",
    "change-me",
    "changeit",
    "password",
    "your-256-bit-secret",
    "your-384-bit-secret",
    "your-512-bit-secret",
    "your-secret-key",
    "your_jwt_secret",
    "jwt-secret",
    "jwt_secret",
    "mysecret",
    "supersecret",
    "shhhhh",
    "keyboard cat",
];

fn weakness(secret: &[u8]) -> Option<&'static str> {
    let mut distinct = [false; 256];
    for &byte in secret {
        distinct[usize::from(byte)] = true;
    }
    if distinct.iter().filter(|&&seen| seen).count() < 8 {
        return Some("has fewer than 8 distinct bytes (a repeated or all-zero key)");
    }
    let lower = secret.to_ascii_lowercase();
    for word in WEAK_SECRETS {
        let word = word.as_bytes();
        let repeats = lower
            .iter()
            .enumerate()
            .all(|(index, byte)| word.get(index % word.len()) == Some(byte));
        let contains = lower.windows(word.len()).any(|window| window == word);
        if repeats || (contains && lower.len() < word.len() * 2) {
            return Some("is a published example secret");
        }
    }
    None
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    // The kid travels in the token header, which an attacker writes: it is
    // only ever compared with these names, never used as a path or a query.
    let valid = !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(KeyError::new(format!(
            "key id {:?} must be 1-64 characters of [A-Za-z0-9._-]",
            kid.chars().take(64).collect::<String>()
        )))
    }
}

/// One key of a [`Keyring`].
#[derive(Clone)]
pub struct SigningKey {
    kid: Box<str>,
    algorithm: Algorithm,
    status: KeyStatus,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HMAC key (HS256/384/512), active. Refused: a secret shorter than
    /// the hash output (RFC 7518 §3.2), and known weak or default secrets.
    pub fn hmac(
        kid: &str,
        algorithm: Algorithm,
        secret: &SecretSlice<u8>,
    ) -> Result<SigningKey, KeyError> {
        check_kid(kid)?;
        let Some(min) = algorithm.min_secret_len() else {
            return Err(KeyError::new(format!(
                "key {kid:?}: {} is not an HMAC algorithm",
                algorithm.name()
            )));
        };
        let bytes = secret.expose_secret();
        if bytes.len() < min {
            return Err(KeyError::new(format!(
                "key {kid:?}: a {} secret needs at least {min} bytes, this one has {}",
                algorithm.name(),
                bytes.len()
            )));
        }
        if let Some(why) = weakness(bytes) {
            return Err(KeyError::new(format!("key {kid:?}: the secret {why}")));
        }
        Ok(SigningKey {
            kid: kid.into(),
            algorithm,
            status: KeyStatus::Active,
            encoding: Some(EncodingKey::from_secret(bytes)),
            decoding: DecodingKey::from_secret(bytes),
        })
    }

    /// An asymmetric key (EdDSA, ES256, RS256) from PEM: the public key, and
    /// the private key when this service signs (verify-only services leave
    /// it out).
    pub fn from_pem(
        kid: &str,
        algorithm: Algorithm,
        private_pem: Option<&SecretSlice<u8>>,
        public_pem: &[u8],
    ) -> Result<SigningKey, KeyError> {
        check_kid(kid)?;
        let bad = |what: &str| {
            KeyError::new(format!(
                "key {kid:?}: the {what} PEM does not parse for {}",
                algorithm.name()
            ))
        };
        let (decoding, encoding) = match algorithm {
            Algorithm::EdDSA => (
                DecodingKey::from_ed_pem(public_pem).map_err(|_| bad("public"))?,
                private_pem
                    .map(|pem| {
                        EncodingKey::from_ed_pem(pem.expose_secret()).map_err(|_| bad("private"))
                    })
                    .transpose()?,
            ),
            Algorithm::ES256 => (
                DecodingKey::from_ec_pem(public_pem).map_err(|_| bad("public"))?,
                private_pem
                    .map(|pem| {
                        EncodingKey::from_ec_pem(pem.expose_secret()).map_err(|_| bad("private"))
                    })
                    .transpose()?,
            ),
            Algorithm::RS256 => (
                DecodingKey::from_rsa_pem(public_pem).map_err(|_| bad("public"))?,
                private_pem
                    .map(|pem| {
                        EncodingKey::from_rsa_pem(pem.expose_secret()).map_err(|_| bad("private"))
                    })
                    .transpose()?,
            ),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(KeyError::new(format!(
                    "key {kid:?}: {} keys are secrets, use SigningKey::hmac",
                    algorithm.name()
                )));
            }
        };
        Ok(SigningKey {
            kid: kid.into(),
            algorithm,
            status: if encoding.is_some() {
                KeyStatus::Active
            } else {
                KeyStatus::VerifyOnly
            },
            encoding,
            decoding,
        })
    }

    /// The same key with another status.
    #[must_use]
    pub fn with_status(mut self, status: KeyStatus) -> SigningKey {
        self.status = status;
        self
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key is used with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The status.
    pub fn status(&self) -> KeyStatus {
        self.status
    }

    pub(crate) fn encoding(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// Makes aws-lc-rs jsonwebtoken's process-wide provider. Were another crate
/// in the binary to enable jsonwebtoken's `rust_crypto` feature too, feature
/// unification would leave no default and every sign and verify would panic;
/// installed explicitly, the choice no longer depends on features. (If the
/// application installed a provider itself, that one stays.)
fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

/// The keys of one token type (access tokens and refresh tokens use separate
/// keyrings, so separate secrets): one active key signs, every non-retired
/// key verifies the tokens that name it by `kid`.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<SigningKey>,
}

impl Keyring {
    /// A keyring of these keys: unique key ids, at most one active key (an
    /// active key must be able to sign).
    pub fn new(keys: impl IntoIterator<Item = SigningKey>) -> Result<Keyring, KeyError> {
        install_crypto_provider();
        let keys: Vec<SigningKey> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(KeyError::new("a keyring needs at least one key"));
        }
        for (index, key) in keys.iter().enumerate() {
            if keys
                .iter()
                .skip(index + 1)
                .any(|other| other.kid == key.kid)
            {
                return Err(KeyError::new(format!("key id {:?} appears twice", key.kid)));
            }
            if key.status == KeyStatus::Active && key.encoding.is_none() {
                return Err(KeyError::new(format!(
                    "key {:?} is active but has no private key to sign with",
                    key.kid
                )));
            }
        }
        if keys
            .iter()
            .filter(|key| key.status == KeyStatus::Active)
            .count()
            > 1
        {
            return Err(KeyError::new("a keyring has at most one active key"));
        }
        Ok(Keyring { keys })
    }

    /// The key that signs new tokens.
    pub(crate) fn active(&self) -> Option<&SigningKey> {
        self.keys.iter().find(|key| key.status == KeyStatus::Active)
    }

    /// The key that verifies a token naming `kid`, if it may.
    pub(crate) fn verifier(&self, kid: &str) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|key| &*key.kid == kid && key.status != KeyStatus::Retired)
    }

    /// The only key, for tokens without a `kid` (relaxed verification only).
    pub(crate) fn single(&self) -> Option<&SigningKey> {
        match self.keys.as_slice() {
            [key] if key.status != KeyStatus::Retired => Some(key),
            _ => None,
        }
    }
}
