//! Parser of stored password hashes: argon2 PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) and bcrypt modular-crypt
//! strings (`$2b$12$<22 salt><31 hash>`).
//!
//! A stored hash is data from a database that an attacker may have written
//! to (SQL injection, a restored dump), so this is a parser of untrusted
//! text: every length is bounded before decoding, errors are values, and
//! the fuzz target `phc_parse` runs it on arbitrary strings.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{HashError, HashErrorKind};

/// Longer stored strings are refused before they are looked at.
pub(crate) const MAX_STORED_LEN: usize = 512;
/// Salt bytes argon2 accepts (RFC 9106 recommends 16).
const SALT_BYTES: std::ops::RangeInclusive<usize> = 8..=64;
/// Tag bytes this crate accepts (argon2's minimum is 4; 32 is the default).
const TAG_BYTES: std::ops::RangeInclusive<usize> = 4..=64;
/// Longest pepper id (`keyid`).
pub(crate) const MAX_PEPPER_ID_LEN: usize = 32;

/// PHC's B64: the standard alphabet, no padding, canonical (no stray bits).
const PHC_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// bcrypt's base64 (`./A-Za-z0-9`); its last character carries unused bits,
/// which some generators leave set, so they are ignored as OpenBSD does.
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The scheme of a stored hash.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashScheme {
    /// Argon2id (RFC 9106's recommendation; what this crate writes).
    Argon2id,
    /// Argon2i (data-independent; verified, rehashed).
    Argon2i,
    /// Argon2d (data-dependent; verified, rehashed).
    Argon2d,
    /// bcrypt `$2a$`, `$2b$` or `$2y$` (legacy: verified, rehashed).
    Bcrypt,
}

impl HashScheme {
    /// The scheme's name as it appears in the hash (`argon2id`, `bcrypt`).
    pub const fn as_str(self) -> &'static str {
        match self {
            HashScheme::Argon2id => "argon2id",
            HashScheme::Argon2i => "argon2i",
            HashScheme::Argon2d => "argon2d",
            HashScheme::Bcrypt => "bcrypt",
        }
    }
}

/// What a stored hash says about itself: scheme and cost parameters, never
/// its salt or tag. For audits ("how many bcrypt hashes are left?").
///
/// ```
/// use palisade_passwords::{HashInfo, HashScheme};
///
/// let info = HashInfo::parse("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")?;
/// assert_eq!(info.scheme(), HashScheme::Bcrypt);
/// assert_eq!(info.bcrypt_cost(), Some(12));
/// assert!(HashInfo::parse("$argon2id$v=19$m=4294967295").is_err());
/// # Ok::<(), palisade_passwords::HashError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashInfo {
    scheme: HashScheme,
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    bcrypt_cost: u32,
    pepper_id: Option<String>,
}

impl HashInfo {
    /// Parses `stored`, checking its syntax only (not the caps of a hasher).
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::MalformedHash`] for anything that is not a
    /// well-formed argon2 PHC or bcrypt `$2a$`/`$2b$`/`$2y$` string.
    pub fn parse(stored: &str) -> Result<HashInfo, HashError> {
        Ok(StoredHash::parse(stored)?.info())
    }

    /// The scheme.
    pub fn scheme(&self) -> HashScheme {
        self.scheme
    }

    /// Argon2's version (0x13 = 19, or the older 0x10); 0 for bcrypt.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Argon2's memory in KiB (`m`); `None` for bcrypt.
    pub fn memory_kib(&self) -> Option<u32> {
        (self.scheme != HashScheme::Bcrypt).then_some(self.memory_kib)
    }

    /// Argon2's passes (`t`); `None` for bcrypt.
    pub fn iterations(&self) -> Option<u32> {
        (self.scheme != HashScheme::Bcrypt).then_some(self.iterations)
    }

    /// Argon2's lanes (`p`); `None` for bcrypt.
    pub fn parallelism(&self) -> Option<u32> {
        (self.scheme != HashScheme::Bcrypt).then_some(self.parallelism)
    }

    /// bcrypt's cost (log2 of the rounds); `None` for argon2.
    pub fn bcrypt_cost(&self) -> Option<u32> {
        (self.scheme == HashScheme::Bcrypt).then_some(self.bcrypt_cost)
    }

    /// The id of the pepper the hash was made with (`keyid`), if any.
    pub fn pepper_id(&self) -> Option<&str> {
        self.pepper_id.as_deref()
    }
}

/// A parsed stored hash, salt and tag included (crate-private: the salt and
/// tag never leave the crate, so no `Debug` of them can be printed).
pub(crate) enum StoredHash {
    Argon2(Argon2Hash),
    Bcrypt(BcryptHash),
}

pub(crate) struct Argon2Hash {
    pub(crate) scheme: HashScheme,
    pub(crate) version: u32,
    pub(crate) memory_kib: u32,
    pub(crate) iterations: u32,
    pub(crate) parallelism: u32,
    pub(crate) pepper_id: Option<String>,
    pub(crate) salt: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

pub(crate) struct BcryptHash {
    pub(crate) cost: u32,
    pub(crate) salt: [u8; 16],
    pub(crate) tag: [u8; 23],
}

fn malformed(why: &'static str) -> HashError {
    HashError::new(HashErrorKind::MalformedHash, why)
}

impl StoredHash {
    pub(crate) fn parse(stored: &str) -> Result<StoredHash, HashError> {
        if stored.len() > MAX_STORED_LEN {
            return Err(malformed("stored hash too long"));
        }
        let Some(rest) = stored.strip_prefix('$') else {
            return Err(malformed("no scheme"));
        };
        let (id, rest) = rest.split_once('$').ok_or(malformed("no scheme"))?;
        let scheme = match id {
            "argon2id" => HashScheme::Argon2id,
            "argon2i" => HashScheme::Argon2i,
            "argon2d" => HashScheme::Argon2d,
            // `$2x$` (the crypt_blowfish sign-extension bug) and `$2$` are
            // not accepted: no supported generator writes them.
            "2a" | "2b" | "2y" => return parse_bcrypt(rest).map(StoredHash::Bcrypt),
            _ => return Err(malformed("unknown scheme")),
        };
        parse_argon2(scheme, rest).map(StoredHash::Argon2)
    }

    pub(crate) fn info(&self) -> HashInfo {
        match self {
            StoredHash::Argon2(hash) => HashInfo {
                scheme: hash.scheme,
                version: hash.version,
                memory_kib: hash.memory_kib,
                iterations: hash.iterations,
                parallelism: hash.parallelism,
                bcrypt_cost: 0,
                pepper_id: hash.pepper_id.clone(),
            },
            StoredHash::Bcrypt(hash) => HashInfo {
                scheme: HashScheme::Bcrypt,
                version: 0,
                memory_kib: 0,
                iterations: 0,
                parallelism: 0,
                bcrypt_cost: hash.cost,
                pepper_id: None,
            },
        }
    }
}

/// A decimal without sign or leading zeros, at most 10 digits, as a `u32`.
fn decimal(text: &str) -> Result<u32, HashError> {
    let canonical = !text.is_empty()
        && text.len() <= 10
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(malformed("bad decimal"));
    }
    text.parse().map_err(|_| malformed("decimal out of range"))
}

pub(crate) fn valid_pepper_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PEPPER_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn b64(text: &str, range: std::ops::RangeInclusive<usize>) -> Result<Vec<u8>, HashError> {
    // Bound the text before decoding: 4 characters carry 3 bytes.
    if text.len() > range.end().div_ceil(3) * 4 {
        return Err(malformed("base64 field too long"));
    }
    let bytes = PHC_B64.decode(text).map_err(|_| malformed("bad base64"))?;
    if !range.contains(&bytes.len()) {
        return Err(malformed("salt or tag length out of range"));
    }
    Ok(bytes)
}

fn parse_argon2(scheme: HashScheme, rest: &str) -> Result<Argon2Hash, HashError> {
    let mut fields = rest.split('$');
    let mut field = fields.next().ok_or(malformed("no parameters"))?;
    // A PHC string without `v=` is version 0x10 (argon2's first release).
    let version = match field.strip_prefix("v=") {
        Some(number) => {
            field = fields.next().ok_or(malformed("no parameters"))?;
            match decimal(number)? {
                16 => 0x10,
                19 => 0x13,
                _ => return Err(malformed("unknown argon2 version")),
            }
        }
        None => 0x10,
    };
    let mut params = field.split(',');
    let mut param = |name: &str| -> Result<u32, HashError> {
        let pair = params.next().ok_or(malformed("missing parameter"))?;
        let value = pair
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .ok_or(malformed("parameters out of order"))?;
        decimal(value)
    };
    let memory_kib = param("m")?;
    let iterations = param("t")?;
    let parallelism = param("p")?;
    let pepper_id = match params.next() {
        None => None,
        Some(pair) => {
            let id = pair
                .strip_prefix("keyid=")
                .ok_or(malformed("unknown parameter"))?;
            if !valid_pepper_id(id) {
                return Err(malformed("bad keyid"));
            }
            Some(id.to_owned())
        }
    };
    if params.next().is_some() {
        return Err(malformed("unknown parameter"));
    }
    if iterations == 0 || parallelism == 0 || memory_kib < parallelism.saturating_mul(8) {
        return Err(malformed("argon2 parameters below its minimum"));
    }
    let salt = b64(fields.next().ok_or(malformed("no salt"))?, SALT_BYTES)?;
    let tag = b64(fields.next().ok_or(malformed("no tag"))?, TAG_BYTES)?;
    if fields.next().is_some() {
        return Err(malformed("trailing field"));
    }
    Ok(Argon2Hash {
        scheme,
        version,
        memory_kib,
        iterations,
        parallelism,
        pepper_id,
        salt,
        tag,
    })
}

fn parse_bcrypt(rest: &str) -> Result<BcryptHash, HashError> {
    let (cost, body) = rest.split_once('$').ok_or(malformed("no bcrypt cost"))?;
    // Two ASCII digits: `str::parse` would also take `+5`, a second
    // spelling of the same hash.
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("bcrypt cost is two digits"));
    }
    let cost = cost
        .parse::<u32>()
        .ok()
        .filter(|cost| (4..=31).contains(cost))
        .ok_or(malformed("bcrypt cost out of 4..=31"))?;
    if body.len() != 53 || !body.is_ascii() {
        return Err(malformed("bcrypt body is 53 characters"));
    }
    let (salt, tag) = body.split_at(22);
    let salt = BCRYPT_B64
        .decode(salt)
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .ok_or(malformed("bad bcrypt salt"))?;
    let tag = BCRYPT_B64
        .decode(tag)
        .ok()
        .and_then(|bytes| <[u8; 23]>::try_from(bytes).ok())
        .ok_or(malformed("bad bcrypt tag"))?;
    Ok(BcryptHash { cost, salt, tag })
}

impl Argon2Hash {
    /// The PHC string.
    pub(crate) fn encode(&self) -> String {
        let mut out = format!(
            "${}$v={}$m={},t={},p={}",
            self.scheme.as_str(),
            self.version,
            self.memory_kib,
            self.iterations,
            self.parallelism
        );
        if let Some(id) = &self.pepper_id {
            out.push_str(",keyid=");
            out.push_str(id);
        }
        out.push('$');
        out.push_str(&PHC_B64.encode(&self.salt));
        out.push('$');
        out.push_str(&PHC_B64.encode(&self.tag));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn kind(stored: &str) -> Option<HashErrorKind> {
        StoredHash::parse(stored).err().map(|error| error.kind())
    }

    #[test]
    fn argon2_round_trips() {
        let text = "$argon2id$v=19$m=19456,t=2,p=1,keyid=p-2024$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        let StoredHash::Argon2(hash) = StoredHash::parse(text).unwrap() else {
            panic!("argon2 expected");
        };
        assert_eq!(hash.encode(), text);
        assert_eq!(hash.pepper_id.as_deref(), Some("p-2024"));
    }

    #[test]
    fn malformed_strings_are_errors() {
        let good_salt = "c29tZXNhbHRzb21lc2FsdA";
        let good_tag = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        for bad in [
            String::new(),
            "$".into(),
            "$argon2id".into(),
            "$argon2id$v=19$m=19456,t=2,p=1".into(),
            format!("$argon2id$v=18$m=19456,t=2,p=1${good_salt}${good_tag}"),
            format!("$argon2id$v=19$t=2,m=19456,p=1${good_salt}${good_tag}"),
            format!("$argon2id$v=19$m=019456,t=2,p=1${good_salt}${good_tag}"),
            format!("$argon2id$v=19$m=99999999999,t=2,p=1${good_salt}${good_tag}"),
            format!("$argon2id$v=19$m=8,t=2,p=2${good_salt}${good_tag}"),
            format!("$argon2id$v=19$m=19456,t=0,p=1${good_salt}${good_tag}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1,data=AA${good_salt}${good_tag}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1${good_salt}=${good_tag}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1$AAAA${good_tag}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1${good_salt}${good_tag}$"),
            format!(
                "$argon2id$v=19$m=19456,t=2,p=1${good_salt}${}",
                "A".repeat(400)
            ),
            "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".into(),
            "$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".into(),
            "$2b$32$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".into(),
            "$2b$5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".into(),
            "$2b$+5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".into(),
            "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe".into(),
            "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeé".into(),
            "x".repeat(10_000),
        ] {
            assert_eq!(kind(&bad), Some(HashErrorKind::MalformedHash), "{bad:?}");
        }
    }

    #[test]
    fn a_phc_string_without_version_is_argon2_0x10() {
        let text =
            "$argon2i$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        let info = HashInfo::parse(text).unwrap();
        assert_eq!(info.version(), 0x10);
        assert_eq!(info.memory_kib(), Some(4096));
    }
}
