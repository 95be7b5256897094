//! Typed parsers for environment values (untrusted text: fuzzed by
//! `fuzz/fuzz_targets/env_value_parse.rs`). A reason never holds the value.

use std::time::Duration;

/// A type a setting can be read as. The error is a reason without the value
/// (`"expected true or false"`), because the variable might hold a secret
/// by mistake.
pub trait FromEnvValue: Sized {
    /// Parses `text`, the variable's value.
    fn from_env_value(text: &str) -> Result<Self, &'static str>;
}

impl FromEnvValue for String {
    fn from_env_value(text: &str) -> Result<String, &'static str> {
        Ok(text.to_owned())
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, case-insensitive.
/// Anything else is an error, never `false`: `PALISADE_DEBUG=flase` must
/// not pass silently.
impl FromEnvValue for bool {
    fn from_env_value(text: &str) -> Result<bool, &'static str> {
        let text = text.trim();
        let is = |word: &str| text.eq_ignore_ascii_case(word);
        if is("true") || is("1") || is("yes") || is("on") {
            Ok(true)
        } else if is("false") || is("0") || is("no") || is("off") {
            Ok(false)
        } else {
            Err("expected true or false (also 1/0, yes/no, on/off)")
        }
    }
}

macro_rules! integer {
    ($($ty:ty),*) => {$(
        impl FromEnvValue for $ty {
            fn from_env_value(text: &str) -> Result<$ty, &'static str> {
                text.trim().parse().map_err(|_| concat!("expected an integer that fits in ", stringify!($ty)))
            }
        }
    )*};
}
integer!(u8, u16, u32, u64, usize, i32, i64);

/// A duration: a number with a unit (`250ms`, `30s`, `5m`, `2h`, `7d`); a
/// bare number is seconds.
impl FromEnvValue for Duration {
    fn from_env_value(text: &str) -> Result<Duration, &'static str> {
        const REASON: &str = "expected a duration such as 250ms, 30s, 5m, 2h or 7d";
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at_checked(digits).ok_or(REASON)?;
        let number: u64 = number.parse().map_err(|_| REASON)?;
        let scale = |secs: u64| number.checked_mul(secs).map(Duration::from_secs);
        match unit.trim() {
            "ms" => Some(Duration::from_millis(number)),
            "" | "s" => Some(Duration::from_secs(number)),
            "m" => scale(60),
            "h" => scale(3_600),
            "d" => scale(86_400),
            _ => return Err(REASON),
        }
        .ok_or("the duration is too large")
    }
}

/// A comma-separated list; entries are trimmed and empty ones dropped
/// (`a, b,` is `[a, b]`).
impl<T: FromEnvValue> FromEnvValue for Vec<T> {
    fn from_env_value(text: &str) -> Result<Vec<T>, &'static str> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(T::from_env_value)
            .collect()
    }
}

impl FromEnvValue for crate::Profile {
    fn from_env_value(text: &str) -> Result<crate::Profile, &'static str> {
        crate::Profile::parse(text).ok_or("expected development, staging or production")
    }
}
