//! JSON with shape limits checked while parsing: nesting depth, keys per
//! object, elements per array.
//!
//! [`scan`] is an iterative byte-level parser (an explicit stack, no
//! recursion, so 10 000 levels of `[` cannot overflow the stack) that checks
//! the whole grammar of RFC 8259 as `serde_json` reads it (strings valid
//! UTF-8 without raw control characters, escapes and surrogate pairs,
//! numbers that fit an `f64`) and stops at the first limit. [`from_slice`]
//! scans, then deserialises into `T` with `serde_json` — whose own recursion
//! limit (128) is then never reached, because [`JsonLimits`] caps the depth
//! at [`HARD_MAX_DEPTH`].
//!
//! A struct is read from a JSON object only: `#[derive(Deserialize)]` alone
//! also takes an array, field by position (`["mallory","hunter2"]` as
//! `{username, password}`), which skips every check that goes by name
//! (unknown fields, duplicate keys). [`from_slice`] refuses it, at every
//! level, as the wrong type; tuples and sequences still take arrays. Out of
//! its reach: what serde first buffers and reads back on its own (untagged,
//! internally and adjacently tagged enums, `#[serde(flatten)]`, a
//! `deserialize_with` through `serde_json::Value`), where a struct still
//! takes an array. Keep those out of request bodies, or check the parts
//! they read yourself.
//!
//! Status rule: malformed JSON is 400 `bad_request` (reason `syntax`); a
//! document over a limit, or well-formed JSON of the wrong shape for `T`,
//! is 422 `validation_failed` (reasons `too_deep`, `too_many_keys`,
//! `array_too_long`, `invalid`). Each refusal names where it happened as a
//! path: `$` is the document, `$.items[2].name` a field; an object key that
//! is not a plain name (letters, digits, `_`, `-`, at most 64) shows as `*`,
//! so a hostile key cannot write into the log or the envelope.

use palisade_errors::{Error, ErrorKind, SecurityEvent};
use serde::de::DeserializeOwned;

use crate::{ConfigError, ConfigErrorKind};

/// The default nesting depth: 64.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// The default number of keys in one object: 1 000.
pub const DEFAULT_MAX_OBJECT_KEYS: usize = 1_000;
/// The default number of elements in one array: 10 000.
pub const DEFAULT_MAX_ARRAY_LEN: usize = 10_000;
/// The deepest nesting a [`JsonLimits`] may allow (below `serde_json`'s 128).
pub const HARD_MAX_DEPTH: usize = 100;

/// The shape limits of a JSON document.
///
/// ```
/// use palisade_validate::json::{self, JsonLimits};
///
/// let limits = JsonLimits::builder().max_depth(3).build()?;
/// assert!(json::scan(br#"{"a": [[1]]}"#, &limits).is_ok());
/// let refused = json::scan(br#"{"a": [[[1]]]}"#, &limits).unwrap_err();
/// assert_eq!(refused.reason(), "too_deep");
/// assert_eq!(refused.path(), "$.a[0][0]");
/// # Ok::<(), palisade_validate::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "JsonLimitsBuilder")]
pub struct JsonLimits {
    max_depth: usize,
    max_object_keys: usize,
    max_array_len: usize,
}

impl Default for JsonLimits {
    fn default() -> JsonLimits {
        JsonLimits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_object_keys: DEFAULT_MAX_OBJECT_KEYS,
            max_array_len: DEFAULT_MAX_ARRAY_LEN,
        }
    }
}

/// Builds [`JsonLimits`]; [`build`](Self::build) refuses zero and a depth
/// over [`HARD_MAX_DEPTH`].
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonLimitsBuilder {
    max_depth: Option<usize>,
    max_object_keys: Option<usize>,
    max_array_len: Option<usize>,
}

impl JsonLimitsBuilder {
    /// Nested arrays and objects (`[]` is depth 1).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = Some(depth);
        self
    }

    /// Keys in one object.
    pub fn max_object_keys(mut self, keys: usize) -> Self {
        self.max_object_keys = Some(keys);
        self
    }

    /// Elements in one array.
    pub fn max_array_len(mut self, len: usize) -> Self {
        self.max_array_len = Some(len);
        self
    }

    /// The limits, or which one cannot work.
    pub fn build(self) -> Result<JsonLimits, ConfigError> {
        let d = JsonLimits::default();
        let limits = JsonLimits {
            max_depth: self.max_depth.unwrap_or(d.max_depth),
            max_object_keys: self.max_object_keys.unwrap_or(d.max_object_keys),
            max_array_len: self.max_array_len.unwrap_or(d.max_array_len),
        };
        if limits.max_depth == 0 || limits.max_depth > HARD_MAX_DEPTH {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "json max_depth: must be 1..=100 (serde_json stops at 128)",
            ));
        }
        if limits.max_object_keys == 0 || limits.max_array_len == 0 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "json max_object_keys and max_array_len: must be greater than zero",
            ));
        }
        Ok(limits)
    }
}

impl TryFrom<JsonLimitsBuilder> for JsonLimits {
    type Error = ConfigError;

    fn try_from(builder: JsonLimitsBuilder) -> Result<JsonLimits, ConfigError> {
        builder.build()
    }
}

impl JsonLimits {
    /// A builder from the defaults.
    pub fn builder() -> JsonLimitsBuilder {
        JsonLimitsBuilder::default()
    }

    /// Nested arrays and objects.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Keys in one object.
    pub fn max_object_keys(&self) -> usize {
        self.max_object_keys
    }

    /// Elements in one array.
    pub fn max_array_len(&self) -> usize {
        self.max_array_len
    }
}

/// Why a JSON body was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JsonErrorKind {
    /// Not JSON (400).
    Syntax,
    /// Nested deeper than [`JsonLimits::max_depth`] (422).
    TooDeep,
    /// An object with more than [`JsonLimits::max_object_keys`] keys (422).
    TooManyKeys,
    /// An array with more than [`JsonLimits::max_array_len`] elements (422).
    ArrayTooLong,
    /// Well-formed JSON that does not fit the target type (422).
    Invalid,
}

impl JsonErrorKind {
    /// The snake_case reason (the event's `reason`, the detail's `code`).
    pub fn reason(self) -> &'static str {
        match self {
            JsonErrorKind::Syntax => "syntax",
            JsonErrorKind::TooDeep => "too_deep",
            JsonErrorKind::TooManyKeys => "too_many_keys",
            JsonErrorKind::ArrayTooLong => "array_too_long",
            JsonErrorKind::Invalid => "invalid",
        }
    }

    /// The envelope kind: 400 for syntax, 422 otherwise.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            JsonErrorKind::Syntax => ErrorKind::BadRequest,
            _ => ErrorKind::ValidationFailed,
        }
    }
}

/// A refused JSON body: why, and where (a `$`-rooted path). Creating one
/// emits its `input_validation_fail` event; it never holds the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    kind: JsonErrorKind,
    path: String,
    offset: usize,
}

impl JsonError {
    fn new(kind: JsonErrorKind, path: String, offset: usize) -> JsonError {
        tracing::info!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason = kind.reason(),
            field = %path,
            offset,
            status = kind.error_kind().status().as_u16(),
            "json body refused"
        );
        JsonError { kind, path, offset }
    }

    /// Why.
    pub fn kind(&self) -> JsonErrorKind {
        self.kind
    }

    /// The snake_case reason.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// Where: `$` for the document, `$.a[2].b` for a field.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The byte offset at which the scan stopped (0 for a type mismatch).
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "json refused at {}: {}", self.path, self.reason())
    }
}

impl std::error::Error for JsonError {}

/// 400 for syntax, 422 otherwise, with one `{field: path, code: reason}`
/// detail; already logged.
impl From<JsonError> for Error {
    fn from(error: JsonError) -> Error {
        Error::new(error.kind.error_kind())
            .with_detail(&error.path, error.reason())
            .with_source(error)
            .logged()
    }
}

/// Scans `bytes` as one JSON document under `limits`.
pub fn scan(bytes: &[u8], limits: &JsonLimits) -> Result<(), JsonError> {
    Scanner {
        bytes,
        at: 0,
        limits,
        stack: Vec::new(),
    }
    .run()
}

/// Scans `bytes`, then deserialises them into `T`. A `serde` error is a
/// 422 `invalid` with the path of the field it concerns.
///
/// ```
/// use palisade_validate::json::{self, JsonLimits};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Item { name: String }
///
/// let item: Item = json::from_slice(br#"{"name": "a"}"#, &JsonLimits::default())?;
/// assert_eq!(item.name, "a");
/// let deep = "[".repeat(10_000);
/// let refused = json::from_slice::<Item>(deep.as_bytes(), &JsonLimits::default()).unwrap_err();
/// assert_eq!(refused.reason(), "too_deep");
/// let wrong = json::from_slice::<Item>(br#"{"name": 7}"#, &JsonLimits::default()).unwrap_err();
/// assert_eq!((wrong.reason(), wrong.path()), ("invalid", "$.name"));
/// # Ok::<(), palisade_validate::json::JsonError>(())
/// ```
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8], limits: &JsonLimits) -> Result<T, JsonError> {
    scan(bytes, limits)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    // A struct is read from an object only, never from an array by position.
    let objects = crate::json_objects::Objects(&mut deserializer);
    let value: T = serde_path_to_error::deserialize(objects).map_err(|error| {
        let path = render_serde_path(error.path());
        let kind = if error.inner().is_data() {
            JsonErrorKind::Invalid
        } else {
            // Only a number the scan let through and serde_json's float
            // reader rounds to infinity reaches here.
            JsonErrorKind::Syntax
        };
        JsonError::new(kind, path, 0)
    })?;
    // The scan already refused trailing characters; kept for a reader change.
    deserializer
        .end()
        .map_err(|_| JsonError::new(JsonErrorKind::Syntax, "$".into(), bytes.len()))?;
    Ok(value)
}

fn render_serde_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut rendered = String::from("$");
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => rendered.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                rendered.push('.');
                rendered.push_str(display_key(key.as_bytes()));
            }
            Segment::Unknown => rendered.push_str(".?"),
        }
    }
    rendered
}

/// A key as it may appear in a path: itself when a plain name, else `*`.
fn display_key(key: &[u8]) -> &str {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match std::str::from_utf8(key) {
        Ok(text) if plain => text,
        _ => "*",
    }
}

#[derive(Clone, Copy)]
enum Expect {
    Value,
    FirstValueOrClose,
    FirstKeyOrClose,
    Key,
    Colon,
    CommaOrClose,
    End,
}

struct Frame {
    object: bool,
    count: usize,
    /// The current key's raw bytes (between the quotes), for the path.
    key: (usize, usize),
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    limits: &'a JsonLimits,
    stack: Vec<Frame>,
}

impl Scanner<'_> {
    fn run(mut self) -> Result<(), JsonError> {
        if std::str::from_utf8(self.bytes).is_err() {
            return Err(JsonError::new(JsonErrorKind::Syntax, "$".into(), 0));
        }
        let mut expect = Expect::Value;
        loop {
            self.skip_whitespace();
            let byte = self.bytes.get(self.at).copied();
            expect = match expect {
                Expect::End => {
                    return match byte {
                        None => Ok(()),
                        Some(_) => Err(self.syntax()),
                    };
                }
                Expect::FirstValueOrClose if byte == Some(b']') => self.close(),
                Expect::Value | Expect::FirstValueOrClose => {
                    if let Some(top) = self.stack.last_mut()
                        && !top.object
                    {
                        top.count += 1;
                        if top.count > self.limits.max_array_len {
                            return Err(self.limit(JsonErrorKind::ArrayTooLong));
                        }
                    }
                    self.value(byte)?
                }
                Expect::FirstKeyOrClose if byte == Some(b'}') => self.close(),
                Expect::FirstKeyOrClose | Expect::Key => {
                    if byte != Some(b'"') {
                        return Err(self.syntax());
                    }
                    let start = self.at + 1;
                    self.string()?;
                    let end = self.at - 1;
                    let max_keys = self.limits.max_object_keys;
                    if let Some(top) = self.stack.last_mut() {
                        top.count += 1;
                        top.key = (start, end);
                        if top.count > max_keys {
                            return Err(self.limit(JsonErrorKind::TooManyKeys));
                        }
                    }
                    Expect::Colon
                }
                Expect::Colon => {
                    if byte != Some(b':') {
                        return Err(self.syntax());
                    }
                    self.at += 1;
                    Expect::Value
                }
                Expect::CommaOrClose => {
                    let object = self.stack.last().is_some_and(|top| top.object);
                    match (byte, object) {
                        (Some(b','), true) => {
                            self.at += 1;
                            Expect::Key
                        }
                        (Some(b','), false) => {
                            self.at += 1;
                            Expect::Value
                        }
                        (Some(b'}'), true) | (Some(b']'), false) => self.close(),
                        _ => return Err(self.syntax()),
                    }
                }
            };
        }
    }

    fn after_value(&self) -> Expect {
        if self.stack.is_empty() {
            Expect::End
        } else {
            Expect::CommaOrClose
        }
    }

    fn close(&mut self) -> Expect {
        self.at += 1;
        self.stack.pop();
        self.after_value()
    }

    fn value(&mut self, byte: Option<u8>) -> Result<Expect, JsonError> {
        match byte {
            Some(open @ (b'{' | b'[')) => {
                if self.stack.len() >= self.limits.max_depth {
                    return Err(self.limit(JsonErrorKind::TooDeep));
                }
                self.at += 1;
                let object = open == b'{';
                self.stack.push(Frame {
                    object,
                    count: 0,
                    key: (0, 0),
                });
                Ok(if object {
                    Expect::FirstKeyOrClose
                } else {
                    Expect::FirstValueOrClose
                })
            }
            Some(b'"') => {
                self.string()?;
                Ok(self.after_value())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Ok(self.after_value())
            }
            _ => Err(self.syntax()),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<Expect, JsonError> {
        if self.bytes.get(self.at..self.at + word.len()) != Some(word) {
            return Err(self.syntax());
        }
        self.at += word.len();
        Ok(self.after_value())
    }

    /// A string from its opening quote; leaves `at` after the closing one.
    fn string(&mut self) -> Result<(), JsonError> {
        self.at += 1;
        loop {
            match self.bytes.get(self.at).copied() {
                None => return Err(self.syntax()),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.bytes.get(self.at).copied() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1;
                        }
                        Some(b'u') => {
                            self.at += 1;
                            let unit = self.hex4()?;
                            match unit {
                                0xD800..=0xDBFF => {
                                    // A leading surrogate must be followed by
                                    // an escaped trailing one.
                                    if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                                        return Err(self.syntax());
                                    }
                                    self.at += 2;
                                    if !(0xDC00..=0xDFFF).contains(&self.hex4()?) {
                                        return Err(self.syntax());
                                    }
                                }
                                0xDC00..=0xDFFF => return Err(self.syntax()),
                                _ => {}
                            }
                        }
                        _ => return Err(self.syntax()),
                    }
                }
                Some(0x00..=0x1F) => return Err(self.syntax()),
                Some(_) => self.at += 1,
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(digits) = self.bytes.get(self.at..self.at + 4) else {
            return Err(self.syntax());
        };
        let mut unit = 0u32;
        for &digit in digits {
            let Some(value) = (digit as char).to_digit(16) else {
                return Err(self.syntax());
            };
            unit = unit * 16 + value;
        }
        self.at += 4;
        Ok(unit)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite as an f64.
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax()),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.syntax());
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.syntax());
            }
            self.digits();
        }
        // serde_json refuses a number that overflows an f64 ("number out of range").
        let finite = self
            .bytes
            .get(start..self.at)
            .and_then(|text| std::str::from_utf8(text).ok())
            .and_then(|text| text.parse::<f64>().ok())
            .is_some_and(f64::is_finite);
        if finite { Ok(()) } else { Err(self.syntax()) }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn syntax(&self) -> JsonError {
        JsonError::new(JsonErrorKind::Syntax, self.path(), self.at)
    }

    fn limit(&self, kind: JsonErrorKind) -> JsonError {
        JsonError::new(kind, self.path(), self.at)
    }

    /// The path of the value being read: each open container's current
    /// element (index) or key.
    fn path(&self) -> String {
        let mut path = String::from("$");
        for frame in &self.stack {
            if frame.count == 0 {
                break;
            }
            if frame.object {
                path.push('.');
                let key = self.bytes.get(frame.key.0..frame.key.1).unwrap_or_default();
                path.push_str(display_key(key));
            } else {
                path.push_str(&format!("[{}]", frame.count - 1));
            }
            if path.len() > 256 {
                path.push_str("...");
                break;
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_default(text: &str) -> Result<(), JsonError> {
        scan(text.as_bytes(), &JsonLimits::default())
    }

    /// The stack-overflow attack: 10 000 (and 1 000 000) opening brackets
    /// are refused at depth 65 by a parser that does not recurse.
    #[test]
    fn ten_thousand_levels_are_refused_without_recursion() {
        for depth in [10_000, 1_000_000] {
            for open in ["[", "{\"a\":"] {
                let text = open.repeat(depth);
                let refused = scan_default(&text).unwrap_err();
                assert_eq!(refused.kind(), JsonErrorKind::TooDeep);
                assert_eq!(refused.kind().error_kind(), ErrorKind::ValidationFailed);
            }
        }
        let at_limit = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(scan_default(&at_limit).is_ok());
        let over = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(scan_default(&over).unwrap_err().reason(), "too_deep");
    }

    /// Wide documents (a million keys or elements) are refused at the
    /// limit, before serde builds them.
    #[test]
    fn too_many_keys_and_elements_name_their_container() {
        let limits = JsonLimits::builder()
            .max_object_keys(2)
            .max_array_len(3)
            .build()
            .unwrap();
        let refused = scan(br#"{"a": {"x": 1, "y": 2, "z": 3}}"#, &limits).unwrap_err();
        assert_eq!(
            (refused.reason(), refused.path()),
            ("too_many_keys", "$.a.z")
        );
        let refused = scan(br#"{"list": [1, 2, 3, 4]}"#, &limits).unwrap_err();
        assert_eq!(
            (refused.reason(), refused.path()),
            ("array_too_long", "$.list[3]")
        );
        assert!(scan(br#"{"a": {"x": 1, "y": 2}, "l": [1, 2, 3]}"#, &limits).is_ok());
    }

    #[test]
    fn syntax_errors_are_400_with_a_path() {
        for (text, path) in [
            ("", "$"),
            ("{", "$"),
            ("[1,]", "$[1]"),
            (r#"{"a": tru}"#, "$.a"),
            (r#"{"a" 1}"#, "$.a"),
            (r#"{"a": 1,}"#, "$.a"),
            ("01", "$"),
            ("1.", "$"),
            ("-", "$"),
            ("1e", "$"),
            ("1e400", "$"),
            ("\"\\x\"", "$"),
            ("\"\u{1}\"", "$"),
            (r#""\ud800""#, "$"),
            (r#""\udc00""#, "$"),
            (r#""\ud800\u0041""#, "$"),
            ("[1] [2]", "$"),
            ("NaN", "$"),
            (r#"{"bad key!": [1, x]}"#, "$.*[1]"),
        ] {
            let refused = scan_default(text).unwrap_err();
            assert_eq!(refused.kind(), JsonErrorKind::Syntax, "{text}");
            assert_eq!(refused.path(), path, "{text}");
            assert_eq!(refused.kind().error_kind(), ErrorKind::BadRequest);
        }
        assert!(scan(b"\"\xff\"", &JsonLimits::default()).is_err());
    }

    #[test]
    fn well_formed_documents_pass_and_agree_with_serde_json() {
        for text in [
            "null",
            " true ",
            "-0.5e-3",
            "1E+2",
            "123456789012345678901234567890",
            r#""\ud83d\ude00 \u00e9 \/ \n""#,
            r#"{"a": [1, {"b": []}, {}], "c": "é"}"#,
            "[]",
            "{}",
        ] {
            assert!(scan_default(text).is_ok(), "{text}");
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
        }
    }

    /// A hostile key (markup, control characters, a megabyte) never
    /// reaches the path, the event or the envelope.
    #[test]
    fn hostile_keys_show_as_a_star() {
        let long = "k".repeat(65);
        let text = format!(r#"{{"<script>\n": {{"{long}": [}}}}"#);
        let refused = scan_default(&text).unwrap_err();
        assert_eq!(refused.path(), "$.*.*[0]");
    }

    #[test]
    fn limits_are_checked_when_built() {
        assert!(JsonLimits::builder().max_depth(0).build().is_err());
        assert!(JsonLimits::builder().max_depth(101).build().is_err());
        assert!(JsonLimits::builder().max_array_len(0).build().is_err());
        assert!(serde_json::from_str::<JsonLimits>(r#"{"max_depth": 500}"#).is_err());
        assert_eq!(
            serde_json::from_str::<JsonLimits>(r#"{"max_depth": 8}"#)
                .unwrap()
                .max_depth(),
            8
        );
    }

    #[test]
    fn from_slice_reports_type_errors_with_their_path() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Item {
            tags: Vec<String>,
        }
        let refused =
            from_slice::<Item>(br#"{"tags": ["a", 2]}"#, &JsonLimits::default()).unwrap_err();
        assert_eq!((refused.reason(), refused.path()), ("invalid", "$.tags[1]"));
        let error: Error = refused.into();
        assert_eq!(error.kind(), ErrorKind::ValidationFailed);
        assert_eq!(error.details()[0].field(), "$.tags[1]");
    }
}
