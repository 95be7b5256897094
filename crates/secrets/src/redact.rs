//! Log redaction: values of secret-looking fields, bearer tokens, JWTs,
//! API keys and registered secret values are replaced by `[REDACTED]` in
//! free text, and sensitive headers are hidden when a `HeaderMap` is logged.

use std::borrow::Cow;

use http::HeaderMap;
use regex::Regex;

use crate::secret::{REDACTED, SecretString};

/// Field and header names whose values are redacted by default (matched
/// case-insensitively, also inside a longer name: `db_password`, `x-api-key`;
/// not inside a module path such as `palisade_secrets::dev`).
pub const DEFAULT_SENSITIVE_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "token",
    "secret",
    "authorization",
    "cookie",
    "api_key",
    "api-key",
    "apikey",
    "private_key",
    "private-key",
    "credential",
    "session",
    "pepper",
];

/// Registered values shorter than this are not searched for in free text
/// (redacting every `a` would destroy the log; the production checks refuse
/// such short secrets anyway).
pub const MIN_REGISTERED_LEN: usize = 4;

/// Redacts secrets from text (a formatted log line).
///
/// ```
/// use palisade_secrets::{Redactor, SecretString};
///
/// let redactor = Redactor::new().with_secret(&SecretString::from("hunter2-db"));
/// let line = r#"login user=ann password="pw1" db=hunter2-db Authorization: Bearer abc.def"#;
/// let clean = redactor.redact(line);
/// assert!(!clean.contains("pw1") && !clean.contains("hunter2-db") && !clean.contains("abc.def"));
/// assert!(clean.contains("user=ann"));
/// ```
#[derive(Clone)]
pub struct Redactor {
    names: Vec<String>,
    named_field: Regex,
    /// Each pattern with its replacement (`$1` etc. keep a scheme name).
    patterns: Vec<(Regex, String)>,
    values: Vec<SecretString>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("names", &self.names)
            .field("patterns", &self.patterns.len())
            .field("registered_values", &self.values.len())
            .finish()
    }
}

impl Default for Redactor {
    fn default() -> Redactor {
        Redactor::new()
    }
}

/// `Bearer <token>` / `Basic <credentials>`. The credentials must hold a
/// digit or a symbol, so prose ("basic authentication") is left alone.
const BEARER: &str =
    r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]*[0-9._~+/=\-][A-Za-z0-9._~+/=\-]*";
/// A JWS compact serialization: every JOSE header starts with `{"` → `eyJ`.
const JWT: &str = r"\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*";
/// API keys of the `<prefix>_<kind>_<random>` shape (Palisade's
/// `pal_live_...`, and the common `sk_live_...` style).
const API_KEY: &str =
    r"\b(?:pal|palisade|sk|pk|rk)_(?:live|test|[a-z0-9]{2,10})_[A-Za-z0-9]{16,}\b";

impl Redactor {
    /// The default names and patterns.
    pub fn new() -> Redactor {
        Redactor::with_names(DEFAULT_SENSITIVE_NAMES.iter().copied())
    }

    /// Only the given field names (plus the bearer, JWT and API-key patterns).
    pub fn with_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Redactor {
        let names: Vec<String> = names.into_iter().map(str::to_ascii_lowercase).collect();
        let scheme_kept = format!("${{1}}${{2}}{REDACTED}");
        let patterns = [
            (BEARER, scheme_kept.as_str()),
            (JWT, REDACTED),
            (API_KEY, REDACTED),
        ]
        .into_iter()
        .map(|(pattern, replacement)| {
            #[allow(clippy::expect_used)] // constant patterns, covered by the tests
            let regex = Regex::new(pattern).expect("a built-in pattern compiles");
            (regex, replacement.to_owned())
        })
        .collect();
        Redactor {
            named_field: named_field_regex(&names),
            names,
            patterns,
            values: Vec::new(),
        }
    }

    /// Also redacts fields whose name contains `name`.
    pub fn with_field_name(mut self, name: &str) -> Redactor {
        self.names.push(name.to_ascii_lowercase());
        self.named_field = named_field_regex(&self.names);
        self
    }

    /// Also redacts this exact value wherever it appears (a loaded secret).
    pub fn with_secret(mut self, secret: &SecretString) -> Redactor {
        self.register(secret);
        self
    }

    /// Registers a secret value to redact wherever it appears.
    pub fn register(&mut self, secret: &SecretString) {
        if secret.expose_secret().len() >= MIN_REGISTERED_LEN {
            self.values.push(secret.clone());
        }
    }

    /// Also redacts matches of `pattern` (e.g. an internal key format).
    pub fn with_pattern(mut self, pattern: Regex) -> Redactor {
        self.patterns.push((pattern, REDACTED.to_owned()));
        self
    }

    /// Whether a field or header named `name` holds a secret.
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.names
            .iter()
            .any(|sensitive| name.contains(sensitive.as_str()))
    }

    /// `text` with every secret replaced by `[REDACTED]`.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.values {
            let value = secret.expose_secret();
            if text.contains(value.as_str()) {
                text = Cow::Owned(text.replace(value.as_str(), REDACTED));
            }
        }
        for (pattern, replacement) in &self.patterns {
            if pattern.is_match(&text) {
                let replaced = pattern.replace_all(&text, replacement.as_str());
                text = Cow::Owned(replaced.into_owned());
            }
        }
        if self.named_field.is_match(&text) {
            let replaced = self.named_field.replace_all(&text, redact_value);
            text = Cow::Owned(replaced.into_owned());
        }
        text
    }

    /// A `Display`/`Debug` view of `headers` with sensitive headers' values
    /// replaced (authorization, cookie, set-cookie, x-api-key, ...) and the
    /// others passed through [`redact`](Self::redact).
    pub fn headers<'h>(&'h self, headers: &'h HeaderMap) -> RedactedHeaders<'h> {
        RedactedHeaders {
            headers,
            redactor: self,
        }
    }
}

/// `name=value`, `name: value`, `"name":"value"` for a sensitive name. A
/// value already redacted, or an authorization scheme and its credentials
/// (`Authorization: Bearer x`), is taken whole.
///
/// The key is a whole token: `db_password` is a key, but a module path such
/// as `palisade_secrets::dev` or `my_app::password_reset` (the `target` of a
/// log line) is not — neither `palisade_secrets` followed by `::` nor
/// `password_reset` preceded by `::` reads as `name: value`. A bare value
/// stops at an unescaped `"` that closes a JSON string, so a JSON log line
/// stays JSON.
fn named_field_regex(names: &[String]) -> Regex {
    let alternatives: Vec<String> = names.iter().map(|name| regex::escape(name)).collect();
    // Before a `name:` key: the start, a character that cannot be part of a
    // key or a path, or a single `:` (`user:password: x`) but not `::` (the
    // text formatter's `my_app::password_reset: message`). A `name=` key
    // may end a path (`config::db_password=x`).
    let before = r"(?:^|[^A-Za-z0-9_.:\-]|[^:]:)";
    let ident = r"[A-Za-z0-9_.\-]";
    let key = format!(
        r#"["']?{ident}*(?:{names}){ident}*["']?"#,
        names = alternatives.join("|")
    );
    // A bare value: escaped pairs (JSON `\"`), and a `"` only when it does
    // not end a JSON string (followed by a separator or the end).
    let bare_tail = r#"(?:[^\s,;&}\]"\\]|\\.|"[^\s,;&}\]:"\\])*"#;
    let bare = format!(r#"(?:[^\s,;&}}\]"\\]|\\.|"[^\s,;&}}\]:"\\]){bare_tail}"#);
    // After a tight `name:`, a value cannot start with `:` (that is `::`).
    let bare_no_colon = format!(r#"(?:[^\s,;&}}\]:"\\]|\\.|"[^\s,;&}}\]:"\\]){bare_tail}"#);
    let quoted = r#"\[REDACTED\]|"(?:[^"\\]|\\.)*"|'[^']*'"#;
    let scheme = format!(r"(?:bearer|basic)\s+(?:\[REDACTED\]|{bare})");
    let pattern = format!(
        r#"(?i){key}\s*=\s*(?P<eq>{quoted}|{scheme}|{bare})|{before}{key}\s*:(?:\s+(?P<spaced>{quoted}|{scheme}|{bare})|(?P<tight>{quoted}|{scheme}|{bare_no_colon}))"#,
    );
    #[allow(clippy::expect_used)] // the names are escaped, so the pattern compiles
    Regex::new(&pattern).expect("an escaped alternation compiles")
}

/// A named-field match with its value replaced: everything before the value
/// (the character before the key, the key, the separator) is kept, and a
/// quoted value keeps its quotes (`"password":"[REDACTED]"` is still JSON).
fn redact_value(caps: &regex::Captures<'_>) -> String {
    let Some(whole) = caps.get(0) else {
        return String::new();
    };
    let Some(value) = ["eq", "spaced", "tight"]
        .into_iter()
        .find_map(|group| caps.name(group))
    else {
        return whole.as_str().to_owned();
    };
    // Group bounds fall on character boundaries, so `get` always succeeds.
    let kept = whole
        .as_str()
        .get(..value.start() - whole.start())
        .unwrap_or_default();
    let text = value.as_str();
    let quote = ['"', '\'']
        .into_iter()
        .find(|&quote| text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote));
    match quote {
        Some(quote) => format!("{kept}{quote}{REDACTED}{quote}"),
        None => format!("{kept}{REDACTED}"),
    }
}

/// Headers whose values are always hidden, whatever the configured names.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
];

/// A `HeaderMap` to log, sensitive values hidden. See [`Redactor::headers`].
pub struct RedactedHeaders<'h> {
    headers: &'h HeaderMap,
    redactor: &'h Redactor,
}

impl RedactedHeaders<'_> {
    fn value(&self, name: &http::HeaderName, value: &http::HeaderValue) -> String {
        if SENSITIVE_HEADERS.contains(&name.as_str())
            || self.redactor.is_sensitive_name(name.as_str())
        {
            return REDACTED.to_owned();
        }
        match value.to_str() {
            Ok(text) => self.redactor.redact(text).into_owned(),
            Err(_) => "[non-text]".to_owned(),
        }
    }
}

impl std::fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), self.value(name, value))),
            )
            .finish()
    }
}

impl std::fmt::Display for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, (name, value)) in self.headers.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", name.as_str(), self.value(name, value))?;
        }
        Ok(())
    }
}

#[cfg(feature = "tracing-subscriber")]
pub use writer::{RedactingMakeWriter, RedactingWriter};

#[cfg(feature = "tracing-subscriber")]
mod writer {
    use std::io::Write;
    use std::sync::Arc;

    use tracing_subscriber::fmt::MakeWriter;

    use super::Redactor;

    /// A `tracing-subscriber` `MakeWriter` that redacts every formatted log
    /// line before it reaches the inner writer: the redaction applies to
    /// every event of every crate, whatever its fields.
    ///
    /// ```
    /// use palisade_secrets::{RedactingMakeWriter, Redactor};
    ///
    /// let subscriber = tracing_subscriber::fmt()
    ///     .with_writer(RedactingMakeWriter::new(std::io::stderr, Redactor::new()))
    ///     .finish();
    /// # let _ = subscriber;
    /// ```
    #[derive(Clone, Debug)]
    pub struct RedactingMakeWriter<M> {
        inner: M,
        redactor: Arc<Redactor>,
    }

    impl<M> RedactingMakeWriter<M> {
        /// Redacts with `redactor` before writing to `inner`.
        pub fn new(inner: M, redactor: Redactor) -> RedactingMakeWriter<M> {
            RedactingMakeWriter {
                inner,
                redactor: Arc::new(redactor),
            }
        }
    }

    impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
        type Writer = RedactingWriter<M::Writer>;

        fn make_writer(&'a self) -> Self::Writer {
            RedactingWriter {
                inner: self.inner.make_writer(),
                redactor: Arc::clone(&self.redactor),
                buffer: Vec::new(),
            }
        }

        fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
            RedactingWriter {
                inner: self.inner.make_writer_for(meta),
                redactor: Arc::clone(&self.redactor),
                buffer: Vec::new(),
            }
        }
    }

    /// One event's writer: buffers the formatted event and writes it redacted
    /// on flush or drop (a secret split across two `write` calls is still
    /// found).
    #[derive(Debug)]
    pub struct RedactingWriter<W: Write> {
        inner: W,
        redactor: Arc<Redactor>,
        buffer: Vec<u8>,
    }

    impl<W: Write> RedactingWriter<W> {
        fn write_redacted(&mut self) -> std::io::Result<()> {
            if self.buffer.is_empty() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&self.buffer);
            let clean = self.redactor.redact(&text).into_owned();
            self.buffer.clear();
            self.inner.write_all(clean.as_bytes())
        }
    }

    impl<W: Write> Write for RedactingWriter<W> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.buffer.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.write_redacted()?;
            self.inner.flush()
        }
    }

    impl<W: Write> Drop for RedactingWriter<W> {
        fn drop(&mut self) {
            // A log line that cannot be written is dropped, as fmt does.
            let _ = self.write_redacted();
            let _ = self.inner.flush();
        }
    }
}
