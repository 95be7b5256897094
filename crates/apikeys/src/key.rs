//! The key format, `pal_<env>_<key_id>_<secret><checksum>`, and its parser
//! of untrusted bytes (fuzzed as `apikey_parse`).
//!
//! - `env`: 1 to 16 of `a-z0-9` (`live`, `test`), so a key of another
//!   environment is recognised as such;
//! - `key_id`: 16 random bytes as exactly 22 base62 characters, public, the
//!   lookup handle;
//! - `secret`: 32 random bytes as exactly 43 base62 characters (256 bits,
//!   like `secrets.token_urlsafe(32)`);
//! - `checksum`: CRC32 of the ASCII of `pal_<env>_<key_id>_<secret>` as
//!   exactly 6 base62 characters, so a typo or random text is refused
//!   without a store lookup and a secret scanner can tell a real key from
//!   look-alike text.

use zeroize::{Zeroize, Zeroizing};

use crate::base62;

/// The fixed start of every key.
pub const KEY_PREFIX: &str = "pal_";
/// Characters of the key id.
pub const KEY_ID_CHARS: usize = 22;
/// Characters of the secret.
pub const SECRET_CHARS: usize = 43;
/// Characters of the checksum.
pub const CHECKSUM_CHARS: usize = 6;
/// The longest environment name.
pub const MAX_ENV_CHARS: usize = 16;
/// The longest key the parser looks at; anything longer is refused unread.
pub const MAX_KEY_CHARS: usize =
    KEY_PREFIX.len() + MAX_ENV_CHARS + 1 + KEY_ID_CHARS + 1 + SECRET_CHARS + CHECKSUM_CHARS;

const KEY_ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;

/// Whether `env` is a usable environment name (`[a-z0-9]{1,16}`).
pub(crate) fn valid_env(env: &str) -> bool {
    (1..=MAX_ENV_CHARS).contains(&env.len())
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A key's public id: 16 random bytes, shown as 22 base62 characters. Safe
/// to log, to show in a key list and to key a rate limit on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_CHARS]);

impl KeyId {
    fn from_bytes(bytes: &[u8; KEY_ID_BYTES]) -> KeyId {
        let mut text = [0u8; KEY_ID_CHARS];
        base62::encode_into(bytes, &mut text);
        KeyId(text)
    }

    /// Parses a key id on its own (22 base62 characters of at most 128
    /// bits), for an API that names a key by its id.
    pub fn parse(text: &str) -> Option<KeyId> {
        KeyId::from_text(text.as_bytes())
    }

    /// 22 characters that decode to at most 128 bits. Fixed-width base62
    /// has one spelling per value, so the text is kept as it is.
    fn from_text(text: &[u8]) -> Option<KeyId> {
        let mut value = [0u8; KEY_ID_BYTES];
        let text: [u8; KEY_ID_CHARS] = text.try_into().ok()?;
        base62::decode_into(&text, &mut value)?;
        Some(KeyId(text))
    }

    /// The 22 characters.
    pub fn as_str(&self) -> &str {
        // The characters are the base62 alphabet, always ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

/// The secret part of a key (its 32 bytes), wiped on drop; `Debug` hides it.
pub struct ApiKeySecret(Zeroizing<[u8; SECRET_BYTES]>);

impl ApiKeySecret {
    /// The secret's bytes (what the pepper's HMAC is computed over).
    pub fn expose_secret(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeySecret(…)")
    }
}

/// A full key as issued: shown to its owner once, never stored. The text is
/// wiped on drop; `Debug` shows only `pal_<env>_<key_id>_…`.
pub struct ApiKey {
    text: Zeroizing<String>,
    key_id: KeyId,
    env_len: usize,
}

impl ApiKey {
    /// The whole key, to hand to its owner once.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The public id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The environment (`live`, `test`, ...).
    pub fn env(&self) -> &str {
        self.text
            .get(KEY_PREFIX.len()..KEY_PREFIX.len() + self.env_len)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({KEY_PREFIX}{}_{}_…)", self.env(), self.key_id)
    }
}

/// A presented key whose format and checksum are right (nothing is known
/// yet about whether it exists).
#[derive(Debug)]
pub struct ParsedKey {
    /// The environment name, inline (no allocation per verification).
    env: [u8; MAX_ENV_CHARS],
    env_len: usize,
    key_id: KeyId,
    secret: ApiKeySecret,
}

impl ParsedKey {
    /// The environment the key names.
    pub fn env(&self) -> &str {
        // Checked by the parser to be ASCII lowercase and digits.
        self.env
            .get(..self.env_len)
            .and_then(|env| std::str::from_utf8(env).ok())
            .unwrap_or_default()
    }

    /// The public id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The secret.
    pub fn secret(&self) -> &ApiKeySecret {
        &self.secret
    }
}

/// Why a presented key is not one this crate could have issued.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseProblem {
    /// Too short or too long for the format.
    Length,
    /// Does not start with `pal_<env>_`, or the separators are misplaced.
    Layout,
    /// A character outside base62 where base62 belongs, or a value larger
    /// than the bytes it encodes.
    Charset,
    /// The checksum does not match: a typo, or text made up to look like a key.
    Checksum,
}

impl ParseProblem {
    /// A stable snake_case name (the `problem` field of the event).
    pub const fn as_str(self) -> &'static str {
        match self {
            ParseProblem::Length => "length",
            ParseProblem::Layout => "layout",
            ParseProblem::Charset => "charset",
            ParseProblem::Checksum => "checksum",
        }
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_CHARS] {
    let mut out = [0u8; CHECKSUM_CHARS];
    base62::encode_into(&crc32fast::hash(body).to_be_bytes(), &mut out);
    out
}

/// Checks the format, character set, lengths and checksum of `presented`;
/// touches no store. Never panics, whatever the input.
///
/// # Errors
///
/// The [`ParseProblem`] found first.
pub fn parse(presented: &str) -> Result<ParsedKey, ParseProblem> {
    let bytes = presented.as_bytes();
    let fixed = KEY_PREFIX.len() + 1 + KEY_ID_CHARS + 1 + SECRET_CHARS + CHECKSUM_CHARS;
    if bytes.len() > MAX_KEY_CHARS || bytes.len() <= fixed {
        return Err(ParseProblem::Length);
    }
    let Some(rest) = bytes.strip_prefix(KEY_PREFIX.as_bytes()) else {
        return Err(ParseProblem::Layout);
    };
    let env_len = bytes.len() - fixed;
    let (env, rest) = rest.split_at(env_len);
    let (sep1, rest) = rest.split_at(1);
    let (key_id, rest) = rest.split_at(KEY_ID_CHARS);
    let (sep2, rest) = rest.split_at(1);
    let (secret, sum) = rest.split_at(SECRET_CHARS);
    let env_ok = env
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if sep1 != b"_" || sep2 != b"_" || !env_ok {
        return Err(ParseProblem::Layout);
    }
    let mut secret_bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    let mut sum_bytes = [0u8; 4];
    let key_id = KeyId::from_text(key_id);
    let (Some(key_id), Some(()), Some(())) = (
        key_id,
        base62::decode_into(secret, secret_bytes.as_mut()),
        base62::decode_into(sum, &mut sum_bytes),
    ) else {
        return Err(ParseProblem::Charset);
    };
    let body_len = bytes.len() - CHECKSUM_CHARS;
    // Fixed-width base62 has one spelling per value: comparing the decoded
    // checksum is comparing the text.
    if crc32fast::hash(&bytes[..body_len]) != u32::from_be_bytes(sum_bytes) {
        return Err(ParseProblem::Checksum);
    }
    let mut env_inline = [0u8; MAX_ENV_CHARS];
    let env_len = env.len().min(MAX_ENV_CHARS);
    env_inline[..env_len].copy_from_slice(&env[..env_len]);
    Ok(ParsedKey {
        env: env_inline,
        env_len,
        key_id,
        secret: ApiKeySecret(secret_bytes),
    })
}

/// A new key of `env` from the operating system's CSPRNG.
pub(crate) fn generate(env: &str) -> Result<(ApiKey, ApiKeySecret), getrandom::Error> {
    let mut random = Zeroizing::new([0u8; KEY_ID_BYTES + SECRET_BYTES]);
    getrandom::fill(random.as_mut())?;
    let (id_bytes, secret_bytes) = random.split_at(KEY_ID_BYTES);
    let mut id = [0u8; KEY_ID_BYTES];
    id.copy_from_slice(id_bytes);
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    secret.copy_from_slice(secret_bytes);
    let key = assemble(env, &id, &secret);
    Ok((key, ApiKeySecret(secret)))
}

pub(crate) fn assemble(env: &str, id: &[u8; KEY_ID_BYTES], secret: &[u8; SECRET_BYTES]) -> ApiKey {
    let key_id = KeyId::from_bytes(id);
    let mut secret_text = Zeroizing::new([0u8; SECRET_CHARS]);
    base62::encode_into(secret, secret_text.as_mut());
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_CHARS));
    text.extend_from_slice(KEY_PREFIX.as_bytes());
    text.extend_from_slice(env.as_bytes());
    text.push(b'_');
    text.extend_from_slice(key_id.as_str().as_bytes());
    text.push(b'_');
    text.extend_from_slice(secret_text.as_ref());
    let sum = checksum(&text);
    text.extend_from_slice(&sum);
    let mut owned = String::with_capacity(text.len());
    // Every byte is ASCII: the prefix, a checked env, base62 and `_`.
    owned.extend(text.iter().map(|&b| char::from(b)));
    text.zeroize();
    ApiKey {
        text: Zeroizing::new(owned),
        key_id,
        env_len: env.len(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_known_key_has_the_documented_layout_and_checksum() {
        let mut id = [0u8; 16];
        id[15] = 1;
        let key = assemble("live", &id, &[0u8; 32]);
        // CRC32 computed independently (Python zlib.crc32 = 2891285858).
        let expected = format!("pal_live_{}1_{}39fXWs", "0".repeat(21), "0".repeat(43));
        assert_eq!(key.expose_secret(), expected);
        assert_eq!(key.expose_secret().len(), 9 + 22 + 1 + 43 + 6);
        let parsed = parse(&expected).unwrap();
        assert_eq!(parsed.env(), "live");
        assert_eq!(parsed.key_id(), key.key_id());
        assert_eq!(parsed.secret().expose_secret(), &[0u8; 32]);
    }

    #[test]
    fn the_longest_environment_and_largest_values_parse_and_one_more_char_does_not() {
        // Built independently (Python: base62 of 2^128-1 and 2^256-1, zlib.crc32).
        let longest = "pal_eeeeeeeeeeeeeeee_7n42DGM5Tflk9n8mt7Fhc7_\
                       yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp10KBp9L";
        assert_eq!(longest.len(), MAX_KEY_CHARS);
        let parsed = parse(longest).unwrap();
        assert_eq!(parsed.env(), "eeeeeeeeeeeeeeee");
        assert_eq!(parsed.secret().expose_secret(), &[0xff; 32]);
        let seventeen = longest.replacen("pal_e", "pal_ee", 1);
        assert_eq!(parse(&seventeen).unwrap_err(), ParseProblem::Length);
        let test = "pal_test_00000000000000000003D7_\
                    ULrwNTJa3CHVaAVmO8lHlO4Afd3drtx651MXvhT4GuW17CQkk";
        assert_eq!(parse(test).unwrap().env(), "test");
        let upper = test.replacen("test", "TEST", 1);
        assert_eq!(parse(&upper).unwrap_err(), ParseProblem::Layout);
        let overflow = "pal_live_zzzzzzzzzzzzzzzzzzzzzz_\
                        ULrwNTJa3CHVaAVmO8lHlO4Afd3drtx651MXvhT4GuW17CQkk";
        assert_eq!(parse(overflow).unwrap_err(), ParseProblem::Charset);
        let typo = test.replacen("ULrw", "ULrx", 1);
        assert_eq!(parse(&typo).unwrap_err(), ParseProblem::Checksum);
    }

    #[test]
    fn generated_keys_parse_and_differ() {
        let (a, secret) = generate("test").unwrap();
        let (b, _) = generate("test").unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let parsed = parse(a.expose_secret()).unwrap();
        assert_eq!(parsed.secret().expose_secret(), secret.expose_secret());
        assert_eq!(parsed.env(), "test");
        assert_eq!(a.env(), "test");
    }

    #[test]
    fn debug_shows_only_the_public_part() {
        let (key, secret) = generate("live").unwrap();
        let shown = format!(
            "{key:?} {secret:?} {:?}",
            parse(key.expose_secret()).unwrap()
        );
        assert!(shown.contains(&format!("ApiKey(pal_live_{}_…)", key.key_id())));
        let text = key.expose_secret();
        let secret_part = text.get(32..75).unwrap();
        assert!(!shown.contains(secret_part), "{shown}");
    }
}
