//! A `.env` parser (untrusted bytes: fuzzed by `fuzz/fuzz_targets/dotenv_parse.rs`)
//! and the loader that allows `.env` only in the development profile.
//!
//! The format is the common subset: `KEY=value`, an optional `export `,
//! `#` comments, blank lines, `'literal'` values and `"quoted"` values with
//! the escapes `\n \r \t \" \\ \$`. No variable expansion (`${OTHER}` stays
//! as written: expansion would let one value read another) and no
//! multi-line values. A key set twice is an error rather than a guess.

use std::path::Path;

use crate::env::MapEnv;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::profile::Profile;

/// The largest `.env` file read (a mistaken path to a large file is refused
/// rather than read into memory).
pub const MAX_DOTENV_BYTES: usize = 1 << 20;

/// Parses the text of a `.env` file. Every bad line is reported at once,
/// by line number and reason, never with its value.
///
/// ```
/// use palisade_secrets::{EnvSource, dotenv};
///
/// let env = dotenv::parse("# local\nexport PALISADE_DEBUG=true\nPALISADE_DB_PASSWORD='s3cr3t #1'\n")?;
/// assert_eq!(env.var("PALISADE_DEBUG").as_deref(), Some("true"));
/// assert_eq!(env.var("PALISADE_DB_PASSWORD").as_deref(), Some("s3cr3t #1"));
/// # Ok::<(), palisade_secrets::ConfigErrors>(())
/// ```
pub fn parse(text: &str) -> Result<MapEnv, ConfigErrors> {
    let mut env = MapEnv::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut errors = ConfigErrors::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some((key, value))) => {
                if !seen.insert(key.to_owned()) {
                    errors.push(line_error(number, &format!("`{key}` is set twice")));
                }
                env.set(key, value);
            }
            Err(reason) => errors.push(line_error(number, reason)),
        }
    }
    errors.into_result(env)
}

fn line_error(number: usize, reason: &str) -> ConfigError {
    ConfigError::new(
        ConfigErrorKind::DotenvSyntax,
        format!(".env line {number}"),
        reason,
    )
}

/// One line: `None` for a blank line or a comment.
fn parse_line(line: &str) -> Result<Option<(&str, String)>, &'static str> {
    let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    };
    let Some((key, rest)) = line.split_once('=') else {
        return Err("expected `KEY=value`");
    };
    let key = key.trim_end();
    if !is_key(key) {
        return Err("the key must be letters, digits, `_` or `.`, not starting with a digit");
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let value = if let Some(quoted) = rest.strip_prefix('\'') {
        let Some((value, tail)) = quoted.split_once('\'') else {
            return Err("unterminated single quote (multi-line values are not supported)");
        };
        check_tail(tail)?;
        value.to_owned()
    } else if let Some(quoted) = rest.strip_prefix('"') {
        let (value, tail) = unescape_double(quoted)?;
        check_tail(tail)?;
        value
    } else {
        unquoted(rest).to_owned()
    };
    Ok(Some((key, value)))
}

fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// After a closing quote: only whitespace or a comment.
fn check_tail(tail: &str) -> Result<(), &'static str> {
    let tail = tail.trim_start_matches([' ', '\t']);
    if tail.is_empty() || tail.starts_with('#') {
        Ok(())
    } else {
        Err("unexpected text after the closing quote")
    }
}

/// An unquoted value ends at ` #` (a comment) and loses trailing blanks.
fn unquoted(rest: &str) -> &str {
    let mut end = rest.len();
    let mut previous_blank = true;
    for (at, c) in rest.char_indices() {
        if c == '#' && previous_blank {
            end = at;
            break;
        }
        previous_blank = c == ' ' || c == '\t';
    }
    rest.get(..end)
        .unwrap_or(rest)
        .trim_end_matches([' ', '\t'])
}

/// The value of a double-quoted string and the text after its closing quote.
fn unescape_double(quoted: &str) -> Result<(String, &str), &'static str> {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, quoted.get(at + 1..).unwrap_or(""))),
            '\\' => match chars.next().map(|(_, escaped)| escaped) {
                Some('n') => value.push('\n'),
                Some('r') => value.push('\r'),
                Some('t') => value.push('\t'),
                Some(escaped @ ('"' | '\\' | '$')) => value.push(escaped),
                Some(_) => return Err("unknown escape in a double-quoted value"),
                None => break,
            },
            other => value.push(other),
        }
    }
    Err("unterminated double quote (multi-line values are not supported)")
}

/// Writes `value` so that [`parse`] reads it back unchanged.
pub fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '"' | '\\' | '$' => {
                quoted.push('\\');
                quoted.push(c);
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// Reads the `.env` file at `path`, only in the development profile: a
/// `.env` in a production image is a secret baked into an artifact, and its
/// values would quietly override nothing or everything. A missing file is
/// `Ok(None)`, so a developer without one is not stopped.
pub fn load(profile: Profile, path: impl AsRef<Path>) -> Result<Option<MapEnv>, ConfigErrors> {
    let path = path.as_ref();
    if !profile.is_development() {
        if path.exists() {
            return Err(ConfigError::new(
                ConfigErrorKind::DotenvOutsideDevelopment,
                path.display().to_string(),
                format!(
                    "a .env file is only read in development, and this is {profile}; \
                     set the variables in the environment (or NAME_FILE) and remove the file"
                ),
            )
            .into());
        }
        return Ok(None);
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ConfigError::new(
                ConfigErrorKind::FileUnreadable,
                path.display().to_string(),
                format!("cannot read the .env file ({})", error.kind()),
            )
            .into());
        }
    };
    if bytes.len() > MAX_DOTENV_BYTES {
        return Err(ConfigError::new(
            ConfigErrorKind::FileUnreadable,
            path.display().to_string(),
            format!("larger than {MAX_DOTENV_BYTES} bytes"),
        )
        .into());
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(ConfigError::new(
            ConfigErrorKind::FileUnreadable,
            path.display().to_string(),
            "not UTF-8",
        )
        .into());
    };
    parse(&text).map(Some)
}
