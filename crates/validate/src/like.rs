//! SQL `LIKE` escaping: [`LikeEscape`] turns user text into a pattern that
//! matches that text literally, for PostgreSQL, MySQL and SQLite.
//!
//! Bind parameters stop SQL injection but not *pattern* injection: a search
//! for `%` matches every row, `_` any character, and `%a%b%c%...` makes the
//! database backtrack (a cheap denial of service). Escape `%`, `_` and the
//! escape character itself, bind the pattern as a parameter, and name the
//! escape character in the query with an `ESCAPE` clause:
//!
//! | database | query | notes |
//! |---|---|---|
//! | PostgreSQL | `name LIKE $1 ESCAPE '\'` | `\` is already the default escape; with `standard_conforming_strings = on` (the default since 9.1) `'\'` is one backslash. `ILIKE` the same. |
//! | MySQL | `name LIKE ? ESCAPE '\\'` | `\` is the default escape, but inside a string literal a backslash escapes too, so the clause needs `'\\'` (unless `NO_BACKSLASH_ESCAPES` is set). Choosing `!` (`ESCAPE '!'`) avoids the doubling. |
//! | SQLite | `name LIKE ?1 ESCAPE '\'` | SQLite has **no** default escape character: without the clause `\%` is a backslash followed by a wildcard. |
//!
//! [`LikeEscape::escape_clause`] writes the clause for a database.

use std::fmt;

use crate::{ConfigError, ConfigErrorKind};

/// The database a pattern is written for; only the `ESCAPE` clause differs.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqlDialect {
    /// PostgreSQL (and CockroachDB).
    Postgres,
    /// MySQL and MariaDB, without `NO_BACKSLASH_ESCAPES`.
    MySql,
    /// SQLite.
    Sqlite,
}

/// Escapes text for a `LIKE` pattern with one escape character (default
/// `\`).
///
/// ```
/// use palisade_validate::{LikeEscape, SqlDialect};
///
/// let like = LikeEscape::new();
/// assert_eq!(like.escape(r"100%_off\"), r"100\%\_off\\");
/// assert_eq!(like.contains("50%"), r"%50\%%");
/// assert_eq!(like.escape_clause(SqlDialect::Postgres), r"ESCAPE '\'");
/// assert_eq!(like.escape_clause(SqlDialect::MySql), r"ESCAPE '\\'");
///
/// let bang = LikeEscape::with_escape('!').unwrap();
/// assert_eq!(bang.starts_with("a!b_c"), "a!!b!_c%");
/// assert_eq!(bang.escape_clause(SqlDialect::MySql), "ESCAPE '!'");
/// assert!(LikeEscape::with_escape('%').is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LikeEscape {
    escape: char,
}

impl Default for LikeEscape {
    fn default() -> LikeEscape {
        LikeEscape::new()
    }
}

impl LikeEscape {
    /// Backslash as the escape character.
    pub const fn new() -> LikeEscape {
        LikeEscape { escape: '\\' }
    }

    /// Another escape character (such as `!` for MySQL, to avoid doubling
    /// backslashes in the clause).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidEscapeChar`] for `%` or `_` (the wildcards
    /// themselves), a quote (`'`, `"`, which would end the clause's
    /// literal), or a control or whitespace character.
    pub fn with_escape(escape: char) -> Result<LikeEscape, ConfigError> {
        if matches!(escape, '%' | '_' | '\'' | '"') || escape.is_control() || escape.is_whitespace()
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidEscapeChar,
                "LikeEscape escape character: not %, _, a quote, whitespace or a control character",
            ));
        }
        Ok(LikeEscape { escape })
    }

    /// The escape character.
    pub const fn escape_char(&self) -> char {
        self.escape
    }

    /// `text` with `%`, `_` and the escape character escaped: a pattern
    /// that matches exactly `text`.
    pub fn escape(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + text.len() / 8 + 2);
        self.push_escaped(&mut out, text);
        out
    }

    fn push_escaped(&self, out: &mut String, text: &str) {
        for c in text.chars() {
            if c == '%' || c == '_' || c == self.escape {
                out.push(self.escape);
            }
            out.push(c);
        }
    }

    /// A pattern matching values that contain `text`: `%text%`.
    pub fn contains(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 4);
        out.push('%');
        self.push_escaped(&mut out, text);
        out.push('%');
        out
    }

    /// A pattern matching values that start with `text`: `text%`.
    pub fn starts_with(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 2);
        self.push_escaped(&mut out, text);
        out.push('%');
        out
    }

    /// A pattern matching values that end with `text`: `%text`.
    pub fn ends_with(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('%');
        self.push_escaped(&mut out, text);
        out
    }

    /// The `ESCAPE` clause naming this escape character, as SQL text for
    /// `dialect` (MySQL doubles a backslash inside its string literal).
    pub fn escape_clause(&self, dialect: SqlDialect) -> String {
        match (dialect, self.escape) {
            (SqlDialect::MySql, '\\') => r"ESCAPE '\\'".to_owned(),
            (_, escape) => format!("ESCAPE '{escape}'"),
        }
    }
}

impl fmt::Display for SqlDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SqlDialect::Postgres => "PostgreSQL",
            SqlDialect::MySql => "MySQL",
            SqlDialect::Sqlite => "SQLite",
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn wildcards_and_the_escape_are_escaped() {
        let like = LikeEscape::new();
        assert_eq!(like.escape("plain"), "plain");
        assert_eq!(like.escape("%"), r"\%");
        assert_eq!(like.escape("_"), r"\_");
        assert_eq!(like.escape(r"\"), r"\\");
        assert_eq!(like.escape(r"\%"), r"\\\%");
        assert_eq!(like.ends_with("x_"), r"%x\_");
        assert_eq!(like.escape("ünï%"), "ünï\\%");
    }

    #[test]
    fn pattern_injection_is_neutralised() {
        // A search for "%" must not match every row.
        let like = LikeEscape::new();
        assert_eq!(like.contains("%"), r"%\%%");
        let bang = LikeEscape::with_escape('!').unwrap();
        assert_eq!(bang.escape(r"!%\_"), r"!!!%\!_");
        // The clause cannot be broken out of.
        for bad in ['%', '_', '\'', '"', '\n', ' ', '\u{0}'] {
            assert_eq!(
                LikeEscape::with_escape(bad).unwrap_err().kind(),
                ConfigErrorKind::InvalidEscapeChar
            );
        }
    }

    #[test]
    fn clauses_per_database() {
        let like = LikeEscape::new();
        assert_eq!(like.escape_clause(SqlDialect::Postgres), r"ESCAPE '\'");
        assert_eq!(like.escape_clause(SqlDialect::Sqlite), r"ESCAPE '\'");
        assert_eq!(like.escape_clause(SqlDialect::MySql), r"ESCAPE '\\'");
        let hash = LikeEscape::with_escape('#').unwrap();
        assert_eq!(hash.escape_clause(SqlDialect::MySql), "ESCAPE '#'");
    }
}
