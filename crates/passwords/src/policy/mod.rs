//! Password policy: length, composition, blocklist, context words, strength
//! (zxcvbn), history and expiry. Every failure is reported at once, as
//! validation details for the 422 envelope, never with the password.

mod blocklist;

use std::time::Duration;

use palisade_errors::{SecurityEvent, SubjectHash};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::{ConfigError, ConfigErrorKind};
use crate::error::HashError;
use crate::hasher::{PasswordHasher, nfkc};
use crate::pool::HashPool;

/// The number of entries of the embedded blocklist.
pub fn blocklist_len() -> usize {
    blocklist::len()
}

/// zxcvbn looks at this many leading characters at most: its matchers are
/// superlinear, and a 10,000-character adversarial password would otherwise
/// take seconds.
pub const STRENGTH_PREFIX_CHARS: usize = 64;
/// Context words shorter than this are not looked for (they would match
/// too much).
pub const MIN_CONTEXT_WORD_CHARS: usize = 3;

/// One reason a password was refused. Its [`code`](Self::code) is the
/// validation detail's code.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyFailure {
    /// Fewer code points (after NFKC) than `min_length`.
    TooShort,
    /// More code points than `max_length`.
    TooLong,
    /// No uppercase letter, when required.
    MissingUppercase,
    /// No lowercase letter, when required.
    MissingLowercase,
    /// No digit, when required.
    MissingDigit,
    /// No character other than letters and digits, when required.
    MissingSpecial,
    /// On the blocklist of common and breached passwords (case-insensitive).
    TooCommon,
    /// Contains the username.
    ContainsUsername,
    /// Contains the local part of the email address.
    ContainsEmail,
    /// Contains the service's name.
    ContainsServiceName,
    /// zxcvbn's score is below `min_strength`.
    TooWeak,
    /// Equal to one of the last `history` passwords.
    RecentlyUsed,
}

impl PolicyFailure {
    /// The stable snake_case code (`too_short`, `too_common`, ...).
    pub const fn code(self) -> &'static str {
        match self {
            PolicyFailure::TooShort => "too_short",
            PolicyFailure::TooLong => "too_long",
            PolicyFailure::MissingUppercase => "missing_uppercase",
            PolicyFailure::MissingLowercase => "missing_lowercase",
            PolicyFailure::MissingDigit => "missing_digit",
            PolicyFailure::MissingSpecial => "missing_special",
            PolicyFailure::TooCommon => "too_common",
            PolicyFailure::ContainsUsername => "contains_username",
            PolicyFailure::ContainsEmail => "contains_email",
            PolicyFailure::ContainsServiceName => "contains_service_name",
            PolicyFailure::TooWeak => "too_weak",
            PolicyFailure::RecentlyUsed => "recently_used",
        }
    }
}

/// A refused password: every reason at once. Into the envelope it is a 422
/// `validation_failed` with one `{"field": "password", "code": ...}` detail
/// per reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyViolation {
    failures: Vec<PolicyFailure>,
}

impl PolicyViolation {
    /// The reasons, in check order.
    pub fn failures(&self) -> &[PolicyFailure] {
        &self.failures
    }
}

impl std::fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("password refused by policy:")?;
        for failure in &self.failures {
            write!(f, " {}", failure.code())?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyViolation {}

impl From<PolicyViolation> for palisade_errors::Error {
    fn from(violation: PolicyViolation) -> palisade_errors::Error {
        let mut error = palisade_errors::Error::new(palisade_errors::ErrorKind::ValidationFailed);
        for failure in &violation.failures {
            error = error.with_detail("password", failure.code());
        }
        error.with_source(violation)
    }
}

/// What the password must not contain: the account's own words. Build it
/// per request; it only borrows.
#[derive(Clone, Copy, Debug, Default)]
pub struct PolicyContext<'a> {
    username: Option<&'a str>,
    email: Option<&'a str>,
    service_name: Option<&'a str>,
}

impl<'a> PolicyContext<'a> {
    /// No context words.
    pub fn new() -> PolicyContext<'a> {
        PolicyContext::default()
    }

    /// The username (also the subject of the security event, hashed).
    #[must_use]
    pub fn username(mut self, username: &'a str) -> PolicyContext<'a> {
        self.username = Some(username);
        self
    }

    /// The email address; its local part is looked for.
    #[must_use]
    pub fn email(mut self, email: &'a str) -> PolicyContext<'a> {
        self.email = Some(email);
        self
    }

    /// The service's name (`"palisade"`).
    #[must_use]
    pub fn service_name(mut self, name: &'a str) -> PolicyContext<'a> {
        self.service_name = Some(name);
        self
    }

    fn words(&self) -> Vec<(PolicyFailure, String)> {
        let local_part = self.email.map(|email| match email.rsplit_once('@') {
            Some((local, _)) => local,
            None => email,
        });
        [
            (PolicyFailure::ContainsUsername, self.username),
            (PolicyFailure::ContainsEmail, local_part),
            (PolicyFailure::ContainsServiceName, self.service_name),
        ]
        .into_iter()
        .filter_map(|(failure, word)| {
            let word = fold(word?);
            (word.chars().count() >= MIN_CONTEXT_WORD_CHARS).then_some((failure, word))
        })
        .collect()
    }
}

/// NFKC, then lowercase: how the blocklist and the context words compare.
fn fold(text: &str) -> String {
    nfkc(text).expose_secret().to_lowercase()
}

/// A password policy. Build one with a preset ([`nist`](Self::nist),
/// [`nist_with_mfa`](Self::nist_with_mfa), [`classic`](Self::classic)),
/// the [`builder`](Self::builder), or serde (every field optional; missing
/// ones take [`nist`](Self::nist)'s values; checked like the builder).
///
/// ```
/// use palisade_passwords::{PasswordPolicy, PolicyContext, PolicyFailure};
/// use secrecy::SecretString;
///
/// let policy = PasswordPolicy::nist();
/// let context = PolicyContext::new().username("alice");
/// let refused = policy.check(&SecretString::from("alice1234"), &context).unwrap_err();
/// assert_eq!(
///     refused.failures(),
///     [PolicyFailure::TooShort, PolicyFailure::ContainsUsername]
/// );
/// policy.check(&SecretString::from("tangerine orbit quietly 1987"), &context)?;
/// # Ok::<(), palisade_passwords::PolicyViolation>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicySettings")]
pub struct PasswordPolicy {
    min_length: usize,
    max_length: usize,
    require_uppercase: bool,
    require_lowercase: bool,
    require_digit: bool,
    require_special: bool,
    blocklist: bool,
    context_words: bool,
    min_strength: Option<u8>,
    history: usize,
    #[serde(with = "optional_secs")]
    max_age: Option<Duration>,
}

/// The unchecked form serde reads into.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PolicySettings {
    min_length: usize,
    max_length: usize,
    require_uppercase: bool,
    require_lowercase: bool,
    require_digit: bool,
    require_special: bool,
    blocklist: bool,
    context_words: bool,
    min_strength: Option<u8>,
    history: usize,
    #[serde(with = "optional_secs")]
    max_age: Option<Duration>,
}

impl Default for PolicySettings {
    fn default() -> PolicySettings {
        let p = PasswordPolicy::nist();
        PolicySettings {
            min_length: p.min_length,
            max_length: p.max_length,
            require_uppercase: p.require_uppercase,
            require_lowercase: p.require_lowercase,
            require_digit: p.require_digit,
            require_special: p.require_special,
            blocklist: p.blocklist,
            context_words: p.context_words,
            min_strength: p.min_strength,
            history: p.history,
            max_age: p.max_age,
        }
    }
}

impl TryFrom<PolicySettings> for PasswordPolicy {
    type Error = ConfigError;

    fn try_from(s: PolicySettings) -> Result<PasswordPolicy, ConfigError> {
        PasswordPolicy {
            min_length: s.min_length,
            max_length: s.max_length,
            require_uppercase: s.require_uppercase,
            require_lowercase: s.require_lowercase,
            require_digit: s.require_digit,
            require_special: s.require_special,
            blocklist: s.blocklist,
            context_words: s.context_words,
            min_strength: s.min_strength,
            history: s.history,
            max_age: s.max_age,
        }
        .validated()
    }
}

mod optional_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(age) => serializer.serialize_some(&age.as_secs()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_secs))
    }
}

impl Default for PasswordPolicy {
    fn default() -> PasswordPolicy {
        PasswordPolicy::nist()
    }
}

/// The largest `max_length`: a bound on the work a check may do.
pub const MAX_MAX_LENGTH: usize = 1024;

impl PasswordPolicy {
    /// NIST SP 800-63B rev. 4 / ASVS 5 for a password that is the only
    /// factor: at least 15 code points, at most 128, no composition rules,
    /// the blocklist and context words checked, the last 5 passwords
    /// refused, no periodic expiry. No strength threshold (add one with
    /// [`PasswordPolicyBuilder::min_strength`]).
    pub fn nist() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 15,
            max_length: 128,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_special: false,
            blocklist: true,
            context_words: true,
            min_strength: None,
            history: 5,
            max_age: None,
        }
    }

    /// [`nist`](Self::nist) where the application enforces a second factor:
    /// at least 8 code points.
    pub fn nist_with_mfa() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            ..PasswordPolicy::nist()
        }
    }

    /// The seeds' rules: at least 8 code points with an uppercase letter, a
    /// lowercase letter, a digit and a special character; the blocklist and
    /// context words are checked too.
    pub fn classic() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_special: true,
            ..PasswordPolicy::nist()
        }
    }

    /// A builder starting from [`nist`](Self::nist).
    pub fn builder() -> PasswordPolicyBuilder {
        PasswordPolicyBuilder {
            policy: PasswordPolicy::nist(),
        }
    }

    /// A builder starting from this policy.
    pub fn to_builder(&self) -> PasswordPolicyBuilder {
        PasswordPolicyBuilder {
            policy: self.clone(),
        }
    }

    fn validated(self) -> Result<PasswordPolicy, ConfigError> {
        let invalid =
            |detail: String| Err(ConfigError::new(ConfigErrorKind::InvalidPolicy, detail));
        if self.min_length == 0 {
            return invalid("password policy: min_length must be at least 1".into());
        }
        if self.max_length < 64 || self.max_length > MAX_MAX_LENGTH {
            return invalid(format!(
                "password policy: max_length {} must be 64..={MAX_MAX_LENGTH} (NIST: allow at least 64)",
                self.max_length
            ));
        }
        if self.max_length < self.min_length {
            return invalid(format!(
                "password policy: max_length {} is below min_length {}",
                self.max_length, self.min_length
            ));
        }
        if self.min_strength.is_some_and(|score| score > 4) {
            return invalid("password policy: min_strength is a zxcvbn score, 0..=4".into());
        }
        if self.history > 64 {
            return invalid("password policy: history must be at most 64".into());
        }
        if self.max_age.is_some_and(|age| age.as_secs() < 24 * 60 * 60) {
            return invalid("password policy: max_age must be at least a day".into());
        }
        Ok(self)
    }

    /// The minimum length, in code points.
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// The maximum length, in code points.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// How many previous passwords are refused.
    pub fn history(&self) -> usize {
        self.history
    }

    /// Checks `password` against every rule and returns all failures. Logs
    /// one `input_validation_fail` event (the codes, the hashed username)
    /// when it refuses.
    ///
    /// With a strength threshold this runs zxcvbn, which is CPU-heavy
    /// (milliseconds even on 64 characters): from async code, use
    /// [`check_on`](Self::check_on).
    ///
    /// # Errors
    ///
    /// A [`PolicyViolation`] listing every failed rule.
    pub fn check(
        &self,
        password: &SecretString,
        context: &PolicyContext<'_>,
    ) -> Result<(), PolicyViolation> {
        let failures = self.failures(password.expose_secret(), context);
        if failures.is_empty() {
            return Ok(());
        }
        let codes: Vec<&str> = failures.iter().map(|failure| failure.code()).collect();
        let subject = context
            .username
            .map(|name| SubjectHash::of(name).to_string());
        tracing::info!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason = "password_policy",
            failures = codes.join(","),
            subject_hash = subject.as_deref(),
            "password refused by policy"
        );
        Err(PolicyViolation { failures })
    }

    /// [`check`](Self::check) on `pool`, off the async executor. The
    /// context is copied.
    ///
    /// # Errors
    ///
    /// `Ok(Err(violation))` for a refused password; `Err` when the pool is
    /// full ([`HashErrorKind::Busy`](crate::HashErrorKind::Busy)).
    pub async fn check_on(
        &self,
        pool: &HashPool,
        password: SecretString,
        context: &PolicyContext<'_>,
    ) -> Result<Result<(), PolicyViolation>, HashError> {
        let policy = self.clone();
        let username = context.username.map(str::to_owned);
        let email = context.email.map(str::to_owned);
        let service = context.service_name.map(str::to_owned);
        pool.run(move || {
            let context = PolicyContext {
                username: username.as_deref(),
                email: email.as_deref(),
                service_name: service.as_deref(),
            };
            policy.check(&password, &context)
        })
        .await
    }

    fn failures(&self, raw: &str, context: &PolicyContext<'_>) -> Vec<PolicyFailure> {
        // Bound the work before normalizing: NFKC can expand a code point
        // up to 18-fold, and no password of `max_length` code points needs
        // more than 16 bytes per code point, combining marks included.
        if raw.len() > self.max_length.saturating_mul(16) {
            return vec![PolicyFailure::TooLong];
        }
        let normalized = nfkc(raw);
        let normalized = normalized.expose_secret();
        let mut failures = Vec::new();
        let length = normalized.chars().count();
        if length < self.min_length {
            failures.push(PolicyFailure::TooShort);
        }
        if length > self.max_length {
            failures.push(PolicyFailure::TooLong);
            return failures;
        }
        let has = |test: fn(char) -> bool| normalized.chars().any(test);
        let composition = [
            (
                self.require_uppercase,
                PolicyFailure::MissingUppercase,
                has(char::is_uppercase),
            ),
            (
                self.require_lowercase,
                PolicyFailure::MissingLowercase,
                has(char::is_lowercase),
            ),
            (
                self.require_digit,
                PolicyFailure::MissingDigit,
                has(char::is_numeric),
            ),
            (
                self.require_special,
                PolicyFailure::MissingSpecial,
                has(|c| !c.is_alphanumeric()),
            ),
        ];
        for (required, failure, present) in composition {
            if required && !present {
                failures.push(failure);
            }
        }
        let folded = secrecy::zeroize::Zeroizing::new(normalized.to_lowercase());
        if self.blocklist && blocklist::contains(folded.as_bytes()) {
            failures.push(PolicyFailure::TooCommon);
        }
        let words = context.words();
        if self.context_words {
            for (failure, word) in &words {
                if folded.contains(word.as_str()) {
                    failures.push(*failure);
                }
            }
        }
        if let Some(min) = self.min_strength {
            let prefix: String = normalized.chars().take(STRENGTH_PREFIX_CHARS).collect();
            let prefix = SecretString::from(prefix);
            let inputs: Vec<&str> = words.iter().map(|(_, word)| word.as_str()).collect();
            let score = u8::from(zxcvbn::zxcvbn(prefix.expose_secret(), &inputs).score());
            if score < min {
                failures.push(PolicyFailure::TooWeak);
            }
        }
        failures
    }

    /// Whether `password` equals one of the `recent` stored hashes (newest
    /// first; only the first [`history`](Self::history) are looked at: pass
    /// the current hash first to refuse it too). A pure check over hashes
    /// the application stores, through [`PasswordHasher::is_reused`]: quiet
    /// (no `authn_login_fail`), entries that can never be compared
    /// (malformed, over today's caps, a retired pepper) skipped with a
    /// warning. It costs up to `history` verifications: from async code run
    /// [`AsyncHasher::is_reused`](crate::AsyncHasher::is_reused) on the pool.
    ///
    /// # Errors
    ///
    /// `Ok(Err(violation))` with [`PolicyFailure::RecentlyUsed`] for a
    /// reused password; `Err` when a verification could not run (a password
    /// over the hasher's cap, an internal error): that proves nothing either
    /// way, so refuse the change (fail closed) rather than skip the rule.
    pub fn check_history<'h>(
        &self,
        hasher: &PasswordHasher,
        password: &SecretString,
        recent: impl IntoIterator<Item = &'h str>,
    ) -> Result<Result<(), PolicyViolation>, HashError> {
        if !hasher.is_reused(password, recent.into_iter().take(self.history))? {
            return Ok(Ok(()));
        }
        tracing::info!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason = "password_policy",
            failures = PolicyFailure::RecentlyUsed.code(),
            "password refused by policy"
        );
        Ok(Err(PolicyViolation {
            failures: vec![PolicyFailure::RecentlyUsed],
        }))
    }

    /// Whether a password last changed at `changed_at` (Unix seconds) must
    /// be changed now: only when a `max_age` is set (off by default, as
    /// NIST advises against periodic expiry) and has passed on `clock`.
    pub fn must_change<C: Clock>(&self, changed_at: u64, clock: &C) -> bool {
        self.max_age
            .is_some_and(|age| clock.now().saturating_sub(changed_at) >= age.as_secs())
    }
}

/// Builds a [`PasswordPolicy`]; [`build`](Self::build) checks it.
#[derive(Clone, Debug)]
#[must_use]
pub struct PasswordPolicyBuilder {
    policy: PasswordPolicy,
}

impl PasswordPolicyBuilder {
    /// Minimum length in code points (after NFKC).
    pub fn min_length(mut self, chars: usize) -> Self {
        self.policy.min_length = chars;
        self
    }

    /// Maximum length in code points (64..=1024).
    pub fn max_length(mut self, chars: usize) -> Self {
        self.policy.max_length = chars;
        self
    }

    /// Require an uppercase letter, a lowercase letter, a digit and a
    /// special character (or not).
    pub fn composition(mut self, required: bool) -> Self {
        self.policy.require_uppercase = required;
        self.policy.require_lowercase = required;
        self.policy.require_digit = required;
        self.policy.require_special = required;
        self
    }

    /// Check the blocklist (on by default).
    pub fn blocklist(mut self, on: bool) -> Self {
        self.policy.blocklist = on;
        self
    }

    /// Refuse passwords containing the username, email local part or
    /// service name (on by default).
    pub fn context_words(mut self, on: bool) -> Self {
        self.policy.context_words = on;
        self
    }

    /// Refuse passwords whose zxcvbn score (0..=4) is below `score`.
    pub fn min_strength(mut self, score: u8) -> Self {
        self.policy.min_strength = Some(score);
        self
    }

    /// How many previous passwords to refuse (default 5, at most 64).
    pub fn history(mut self, count: usize) -> Self {
        self.policy.history = count;
        self
    }

    /// Passwords older than `age` must change (off by default, per NIST).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.policy.max_age = Some(age);
        self
    }

    /// The policy.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPolicy`]: a `min_length` of 0, a
    /// `max_length` outside 64..=1024 or below `min_length`, a
    /// `min_strength` above 4, a `history` above 64, a `max_age` under a
    /// day.
    pub fn build(self) -> Result<PasswordPolicy, ConfigError> {
        self.policy.validated()
    }
}
