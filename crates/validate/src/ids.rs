//! Typed path ids: [`HexId`], [`HexIdAnyCase`], [`Uuid`] and [`Ulid`].
//!
//! Each type holds only a well-formed id, so a handler that takes one never
//! sees `../../etc/passwd`, `1 OR 1=1` or a 10 MB string where an id belongs.
//! Parsing works on the bytes, allocates nothing and never panics (non-ASCII
//! and multi-byte characters are simply not id characters).
//!
//! A malformed id in a *path* names no resource, so its rejection is a 404
//! `not_found` (answering 400 would tell a prober which ids are syntactically
//! real); [`PathId::from_param`] builds that rejection, [`IdRejection`], and
//! logs `input_validation_fail` with the parameter's name, never its value.
//! A malformed id inside a JSON *body* is well-formed JSON with an invalid
//! value: the body extractor answers 422.

use std::fmt;
use std::str::FromStr;

use palisade_errors::{ErrorKind, SecurityEvent};

/// Why a string is not an id of the requested type. The message names the
/// rule, never the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdError {
    kind: IdErrorKind,
}

/// The class of an [`IdError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdErrorKind {
    /// Not the exact number of characters the type requires.
    Length,
    /// A character outside the type's alphabet (hex, Crockford base32, or a
    /// misplaced or missing hyphen in a UUID).
    Character,
    /// An uppercase hex digit where only lowercase is accepted ([`HexId`]).
    Case,
    /// A ULID whose first character is above `7` (more than 128 bits).
    Overflow,
}

impl IdErrorKind {
    /// A stable snake_case name, logged as the event's `reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdErrorKind::Length => "id_length",
            IdErrorKind::Character => "id_character",
            IdErrorKind::Case => "id_case",
            IdErrorKind::Overflow => "id_overflow",
        }
    }
}

impl IdError {
    const fn new(kind: IdErrorKind) -> IdError {
        IdError { kind }
    }

    /// The class of the error.
    pub fn kind(&self) -> IdErrorKind {
        self.kind
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            IdErrorKind::Length => "the id has the wrong length",
            IdErrorKind::Character => "the id holds a character outside its alphabet",
            IdErrorKind::Case => "the id holds an uppercase hex digit",
            IdErrorKind::Overflow => "the ULID is larger than 128 bits",
        })
    }
}

impl std::error::Error for IdError {}

/// An id that does not parse names no resource: 404 `not_found`, without
/// details (a detail would tell a prober the id is malformed rather than
/// unknown). The error is kept as the source, for the log.
///
/// This conversion logs nothing, because an `IdError` does not know which
/// field it came from; [`PathId::from_param`] logs and returns an
/// [`IdRejection`], which converts the same way.
impl From<IdError> for palisade_errors::Error {
    fn from(error: IdError) -> palisade_errors::Error {
        palisade_errors::Error::new(ErrorKind::NotFound).with_source(error)
    }
}

/// A path parameter that was not a well-formed id: becomes a 404
/// `not_found` envelope. Building one (through [`PathId::from_param`]) logs
/// `input_validation_fail` with the parameter's name and the reason, never
/// the rejected text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdRejection {
    field: String,
    error: IdError,
}

impl IdRejection {
    /// The rejection of parameter `field` (a route's parameter name, such as
    /// `"user_id"`), logged once here.
    pub fn new(field: &str, error: IdError) -> IdRejection {
        // The name comes from the route, but keep a log line one line long.
        let field: String = field.chars().filter(|c| !c.is_control()).take(64).collect();
        tracing::info!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason = error.kind.as_str(),
            field = %field,
            "a path id was malformed; answering 404"
        );
        IdRejection { field, error }
    }

    /// The parameter's name.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why the value was refused.
    pub fn error(&self) -> IdError {
        self.error
    }
}

impl fmt::Display for IdRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path parameter `{}`: {}", self.field, self.error)
    }
}

impl std::error::Error for IdRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// 404 `not_found`, no details, already logged (see [`IdRejection::new`]).
impl From<IdRejection> for palisade_errors::Error {
    fn from(rejection: IdRejection) -> palisade_errors::Error {
        palisade_errors::Error::new(ErrorKind::NotFound)
            .with_source(rejection)
            .logged()
    }
}

/// An id type that can stand for a path parameter. The adapters' path-id
/// extractors are generic over it; implement it for your own id types to
/// get the same 404 and the same event.
pub trait PathId: Sized + FromStr<Err = IdError> {
    /// Parses the raw (percent-decoded) parameter `raw` of the parameter
    /// named `field`; a malformed value is logged and becomes an
    /// [`IdRejection`] (404).
    fn from_param(field: &str, raw: &str) -> Result<Self, IdRejection> {
        raw.parse().map_err(|error| IdRejection::new(field, error))
    }
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// The value of an ASCII hex digit of either case.
const fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Checks `text` is exactly `N` hex digits, and copies them lowercased.
fn parse_hex<const N: usize>(text: &str, lowercase_only: bool) -> Result<[u8; N], IdError> {
    let bytes = text.as_bytes();
    if bytes.len() != N {
        return Err(IdError::new(IdErrorKind::Length));
    }
    let mut out = [0u8; N];
    for (slot, &byte) in out.iter_mut().zip(bytes) {
        let Some(value) = hex_value(byte) else {
            return Err(IdError::new(IdErrorKind::Character));
        };
        if lowercase_only && byte.is_ascii_uppercase() {
            return Err(IdError::new(IdErrorKind::Case));
        }
        *slot = HEX_LOWER[usize::from(value)];
    }
    Ok(out)
}

/// The text of an array of ASCII bytes.
fn ascii_str(bytes: &[u8]) -> &str {
    // Invariant: the arrays passed here hold bytes taken from HEX_LOWER or
    // CROCKFORD, which are ASCII.
    std::str::from_utf8(bytes).unwrap_or("")
}

/// Exactly `N` lowercase hex characters (`[0-9a-f]{N}`), such as a 32-char
/// token id or a 40-char commit hash.
///
/// Uppercase digits are refused ([`IdErrorKind::Case`]): one resource has
/// one spelling, so caches, logs and authorization keyed on the text cannot
/// be split by `ABC` vs `abc`. Use [`HexIdAnyCase`] to accept both cases.
///
/// ```
/// use palisade_validate::HexId;
///
/// let id: HexId<8> = "00ff10ab".parse().unwrap();
/// assert_eq!(id.as_str(), "00ff10ab");
/// assert!("00FF10AB".parse::<HexId<8>>().is_err());
/// assert!("00ff10a".parse::<HexId<8>>().is_err());
/// assert!("../../et".parse::<HexId<8>>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HexId<const N: usize>([u8; N]);

/// Exactly `N` hex characters of either case, kept (and displayed) in
/// lowercase, so `"ABCD"` and `"abcd"` are the same id.
///
/// ```
/// use palisade_validate::HexIdAnyCase;
///
/// let id: HexIdAnyCase<4> = "AbCd".parse().unwrap();
/// assert_eq!(id.to_string(), "abcd");
/// assert_eq!(id, "abcd".parse().unwrap());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HexIdAnyCase<const N: usize>([u8; N]);

macro_rules! hex_id_common {
    ($name:ident, $lowercase_only:expr) => {
        impl<const N: usize> $name<N> {
            const NOT_EMPTY: () = assert!(N > 0, "a hex id has at least one character");

            /// Parses exactly `N` hex characters.
            ///
            /// # Errors
            ///
            /// [`IdErrorKind::Length`], [`IdErrorKind::Character`]
            /// or (lowercase only) [`IdErrorKind::Case`].
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let () = Self::NOT_EMPTY;
                parse_hex::<N>(text, $lowercase_only).map($name)
            }

            /// The id's lowercase hex text.
            pub fn as_str(&self) -> &str {
                ascii_str(&self.0)
            }

            /// Decodes the id into bytes, two hex digits a byte, into `out`
            /// (which must hold `N / 2` bytes); `None` when `N` is odd or
            /// `out` has another length.
            pub fn decode_into<'a>(&self, out: &'a mut [u8]) -> Option<&'a [u8]> {
                if N % 2 != 0 || out.len() != N / 2 {
                    return None;
                }
                for (byte, pair) in out.iter_mut().zip(self.0.chunks_exact(2)) {
                    let high = hex_value(pair[0])?;
                    let low = hex_value(pair[1])?;
                    *byte = high << 4 | low;
                }
                Some(out)
            }
        }

        impl<const N: usize> FromStr for $name<N> {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }

        impl<const N: usize> PathId for $name<N> {}

        impl<const N: usize> fmt::Display for $name<N> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<const N: usize> fmt::Debug for $name<N> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl<const N: usize> serde::Serialize for $name<N> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de, const N: usize> serde::Deserialize<'de> for $name<N> {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(IdVisitor::<Self>::new(stringify!($name)))
            }
        }

        #[cfg(feature = "arbitrary")]
        impl<'a, const N: usize> arbitrary::Arbitrary<'a> for $name<N> {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                let mut out = [b'0'; N];
                for slot in &mut out {
                    *slot = HEX_LOWER[usize::from(u.int_in_range(0u8..=15)?)];
                }
                Ok($name(out))
            }

            fn size_hint(_depth: usize) -> (usize, Option<usize>) {
                (N, Some(N))
            }
        }
    };
}

hex_id_common!(HexId, true);
hex_id_common!(HexIdAnyCase, false);

impl<const N: usize> From<HexId<N>> for HexIdAnyCase<N> {
    fn from(id: HexId<N>) -> HexIdAnyCase<N> {
        HexIdAnyCase(id.0)
    }
}

impl<const N: usize> From<HexIdAnyCase<N>> for HexId<N> {
    /// Both hold lowercase text, so this cannot fail.
    fn from(id: HexIdAnyCase<N>) -> HexId<N> {
        HexId(id.0)
    }
}

/// A UUID in its canonical hyphenated form (RFC 9562 §4:
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, 36 characters).
///
/// Hex digits of either case are accepted, as RFC 9562 says input is case
/// insensitive; the value is the 16 bytes, so `A…` and `a…` are the same id,
/// and it is always displayed in lowercase. Every other spelling (no
/// hyphens, braces, `urn:uuid:`, whitespace) is refused: one id, one shape.
/// The version and variant are not checked (ids minted elsewhere, nil and
/// max UUIDs are all well-formed); [`version`](Self::version) reports it.
///
/// ```
/// use palisade_validate::Uuid;
///
/// let id: Uuid = "67E55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
/// assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
/// assert_eq!(id.version(), 4);
/// assert!("67e5504410b1426f9247bb680e5fe0c8".parse::<Uuid>().is_err());
/// assert!("{67e55044-10b1-426f-9247-bb680e5fe0c8}".parse::<Uuid>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid([u8; 16]);

/// The byte offsets of the hyphens in the canonical form.
const UUID_HYPHENS: [usize; 4] = [8, 13, 18, 23];

impl Uuid {
    /// Parses the canonical hyphenated form.
    ///
    /// # Errors
    ///
    /// [`IdErrorKind::Length`] or [`IdErrorKind::Character`].
    pub fn parse(text: &str) -> Result<Uuid, IdError> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return Err(IdError::new(IdErrorKind::Length));
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (index, &byte) in bytes.iter().enumerate() {
            if UUID_HYPHENS.contains(&index) {
                if byte != b'-' {
                    return Err(IdError::new(IdErrorKind::Character));
                }
                continue;
            }
            let Some(value) = hex_value(byte) else {
                return Err(IdError::new(IdErrorKind::Character));
            };
            // 32 hex digits exactly: 36 bytes minus the 4 hyphen positions.
            let slot = &mut out[nibbles / 2];
            *slot = *slot << 4 | value;
            nibbles += 1;
        }
        Ok(Uuid(out))
    }

    /// A UUID from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Uuid {
        Uuid(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The version field (the high nibble of byte 6): 4 for random, 7 for
    /// time-ordered, 0 for the nil UUID.
    pub const fn version(&self) -> u8 {
        self.0[6] >> 4
    }

    fn write_text(&self, out: &mut [u8; 36]) {
        let mut position = 0;
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                out[position] = b'-';
                position += 1;
            }
            out[position] = HEX_LOWER[usize::from(byte >> 4)];
            out[position + 1] = HEX_LOWER[usize::from(byte & 0x0f)];
            position += 2;
        }
    }
}

/// Uppercase Crockford base32 (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The value of a Crockford base32 digit, either case. The decoding aliases
/// some decoders apply (`I`/`L` → 1, `O` → 0) are refused, so one ULID has
/// one spelling (up to case).
const fn crockford_value(byte: u8) -> Option<u8> {
    let upper = byte.to_ascii_uppercase();
    let mut index = 0;
    while index < CROCKFORD.len() {
        if CROCKFORD[index] == upper {
            return Some(index as u8);
        }
        index += 1;
    }
    None
}

/// A ULID: 26 Crockford base32 characters (a 48-bit millisecond timestamp
/// and 80 random bits), the first at most `7` so the value fits 128 bits.
///
/// Either case is accepted (the ULID spec says case insensitive) and the id
/// is displayed in the spec's canonical uppercase; the letters Crockford
/// excludes (`I`, `L`, `O`, `U`) are refused rather than read as `1`/`0`,
/// so no two spellings (beyond case) name one id.
///
/// ```
/// use palisade_validate::Ulid;
///
/// let id: Ulid = "01arz3ndektsv4rrffq69g5fav".parse().unwrap();
/// assert_eq!(id.to_string(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
/// assert_eq!(id.timestamp_ms(), 1_469_922_850_259);
/// assert!("81ARZ3NDEKTSV4RRFFQ69G5FAV".parse::<Ulid>().is_err()); // > 128 bits
/// assert!("01ARZ3NDEKTSV4RRFFQ69G5FAI".parse::<Ulid>().is_err()); // I
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ulid(u128);

impl Ulid {
    /// Parses 26 Crockford base32 characters.
    ///
    /// # Errors
    ///
    /// [`IdErrorKind::Length`], [`IdErrorKind::Character`] or
    /// [`IdErrorKind::Overflow`] (first character above `7`).
    pub fn parse(text: &str) -> Result<Ulid, IdError> {
        let bytes = text.as_bytes();
        if bytes.len() != 26 {
            return Err(IdError::new(IdErrorKind::Length));
        }
        let mut value: u128 = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            let Some(digit) = crockford_value(byte) else {
                return Err(IdError::new(IdErrorKind::Character));
            };
            // 26 digits are 130 bits: the first carries 3 bits at most.
            if index == 0 && digit > 7 {
                return Err(IdError::new(IdErrorKind::Overflow));
            }
            value = value << 5 | u128::from(digit);
        }
        Ok(Ulid(value))
    }

    /// A ULID from its 128-bit value.
    pub const fn from_u128(value: u128) -> Ulid {
        Ulid(value)
    }

    /// The 128-bit value.
    pub const fn to_u128(self) -> u128 {
        self.0
    }

    /// The timestamp part, in milliseconds since the Unix epoch.
    pub const fn timestamp_ms(&self) -> u64 {
        (self.0 >> 80) as u64
    }

    fn write_text(&self, out: &mut [u8; 26]) {
        for (index, slot) in out.iter_mut().enumerate() {
            let shift = 5 * (25 - index);
            *slot = CROCKFORD[((self.0 >> shift) & 0x1f) as usize];
        }
    }
}

macro_rules! fixed_text_id {
    ($name:ident, $len:expr) => {
        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }

        impl PathId for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut text = [0u8; $len];
                self.write_text(&mut text);
                f.write_str(ascii_str(&text))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut text = [0u8; $len];
                self.write_text(&mut text);
                serializer.serialize_str(ascii_str(&text))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(IdVisitor::<Self>::new(stringify!($name)))
            }
        }
    };
}

fixed_text_id!(Uuid, 36);
fixed_text_id!(Ulid, 26);

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Uuid {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Uuid(<[u8; 16]>::arbitrary(u)?))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (16, Some(16))
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Ulid {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        // Every u128 is a ULID: 26 digits with the first at most 7.
        Ok(Ulid(u128::arbitrary(u)?))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (16, Some(16))
    }
}

/// Deserializes an id from a string only; the error names the type and the
/// rule, never the value (serde's usual `invalid value: string "…"` would
/// echo the input into the response or the log).
struct IdVisitor<T> {
    type_name: &'static str,
    _id: std::marker::PhantomData<T>,
}

impl<T> IdVisitor<T> {
    fn new(type_name: &'static str) -> IdVisitor<T> {
        IdVisitor {
            type_name,
            _id: std::marker::PhantomData,
        }
    }
}

impl<T: FromStr<Err = IdError>> serde::de::Visitor<'_> for IdVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} string", self.type_name)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse()
            .map_err(|error: IdError| E::custom(format_args!("{}: {error}", self.type_name)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hex_id_accepts_exactly_n_lowercase_digits() {
        assert_eq!(HexId::<4>::parse("09af").unwrap().as_str(), "09af");
        assert_eq!(
            HexId::<4>::parse("09aF").unwrap_err().kind(),
            IdErrorKind::Case
        );
        assert_eq!(
            HexId::<4>::parse("09a").unwrap_err().kind(),
            IdErrorKind::Length
        );
        assert_eq!(
            HexId::<4>::parse("09afe").unwrap_err().kind(),
            IdErrorKind::Length
        );
        assert_eq!(
            HexId::<4>::parse("09ag").unwrap_err().kind(),
            IdErrorKind::Character
        );
        assert_eq!(HexIdAnyCase::<4>::parse("09AF").unwrap().as_str(), "09af");
    }

    #[test]
    fn path_traversal_and_injection_are_not_ids() {
        for attack in [
            "../..",
            "..%2f",
            "1 or",
            "0x1f",
            "+123",
            "-123",
            " 123",
            "１２３４",
        ] {
            assert!(HexId::<4>::parse(attack).is_err(), "{attack:?}");
            assert!(HexIdAnyCase::<4>::parse(attack).is_err(), "{attack:?}");
        }
    }

    #[test]
    fn multi_byte_characters_of_the_right_byte_length_never_panic() {
        // "é" is two bytes: four bytes, two characters.
        assert!(HexId::<4>::parse("éé").is_err());
        assert!(Uuid::parse(&"é".repeat(18)).is_err());
        assert!(Ulid::parse(&"é".repeat(13)).is_err());
        assert!(HexId::<3>::parse("a\u{0}b").is_err());
    }

    #[test]
    fn decode_into_gives_the_bytes() {
        let id = HexId::<6>::parse("00ff7f").unwrap();
        let mut out = [0u8; 3];
        assert_eq!(id.decode_into(&mut out), Some(&[0x00, 0xff, 0x7f][..]));
        assert_eq!(id.decode_into(&mut [0u8; 2]), None);
        assert_eq!(HexId::<3>::parse("abc").unwrap().decode_into(&mut []), None);
    }

    #[test]
    fn uuid_canonical_form_only() {
        let text = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"; // RFC 9562 §4 example
        let id = Uuid::parse(text).unwrap();
        assert_eq!(id.to_string(), text);
        assert_eq!(id.version(), 1);
        assert_eq!(id.as_bytes()[0], 0xf8);
        assert_eq!(Uuid::parse(&text.to_uppercase()).unwrap(), id);
        for bad in [
            "f81d4fae7dec11d0a76500a0c91e6bf6",
            "{f81d4fae-7dec-11d0-a765-00a0c91e6bf6}",
            "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf",
            "f81d4fae-7dec-11d0-a76500-a0c91e6bf6",
            "f81d4fae-7dec-11d0-a765-00a0c91e6bfg",
            "f81d4fae+7dec-11d0-a765-00a0c91e6bf6",
            " f81d4fae-7dec-11d0-a765-00a0c91e6bf",
        ] {
            assert!(Uuid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ulid_round_trips_and_refuses_overflow_and_aliases() {
        let id = Ulid::parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ").unwrap();
        assert_eq!(id.to_u128(), u128::MAX);
        assert_eq!(
            Ulid::parse("80000000000000000000000000")
                .unwrap_err()
                .kind(),
            IdErrorKind::Overflow
        );
        assert_eq!(
            Ulid::parse("00000000000000000000000000").unwrap().to_u128(),
            0
        );
        for alias in ['I', 'L', 'O', 'U', 'i', 'l', 'o', 'u'] {
            let text = format!("0000000000000000000000000{alias}");
            assert_eq!(
                Ulid::parse(&text).unwrap_err().kind(),
                IdErrorKind::Character
            );
        }
        let value = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128;
        let text = Ulid::from_u128(value).to_string();
        assert_eq!(Ulid::parse(&text).unwrap().to_u128(), value);
    }

    #[test]
    fn serde_refuses_anything_else_without_echoing_it() {
        let id: HexId<4> = serde_json::from_str("\"beef\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"beef\"");
        let error = serde_json::from_str::<HexId<4>>("\"<script>\"").unwrap_err();
        assert!(!error.to_string().contains("script"), "{error}");
        assert!(serde_json::from_str::<HexId<4>>("1234").is_err());
        let uuid: Uuid = serde_json::from_str("\"f81d4fae-7dec-11d0-a765-00a0c91e6bf6\"").unwrap();
        assert_eq!(
            serde_json::to_string(&uuid).unwrap(),
            "\"f81d4fae-7dec-11d0-a765-00a0c91e6bf6\""
        );
        let ulid: Ulid = serde_json::from_str("\"01ARZ3NDEKTSV4RRFFQ69G5FAV\"").unwrap();
        assert_eq!(
            serde_json::to_string(&ulid).unwrap(),
            "\"01ARZ3NDEKTSV4RRFFQ69G5FAV\""
        );
        assert!(serde_json::from_str::<Ulid>("\"01ARZ3NDEKTSV4RRFFQ69G5FA\"").is_err());
    }

    #[test]
    fn a_path_rejection_is_a_404_without_details() {
        let rejection = HexId::<4>::from_param("user_id", "nope").unwrap_err();
        assert_eq!(rejection.field(), "user_id");
        let error = palisade_errors::Error::from(rejection);
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert!(error.details().is_empty());
        assert!(error.is_logged());
    }
}
