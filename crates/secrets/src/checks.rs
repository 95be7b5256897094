//! Production checks: a small rule set run at start-up. Production refuses
//! to start on any error finding (all listed at once); staging logs them as
//! warnings; development keeps quiet.
//!
//! The application registers checks as closures or newtypes: cores do not
//! depend on each other, so the server registers e.g. the headers crate's
//! `CorsPolicy::is_production_safe()` as a closure.

use palisade_errors::SecurityEvent;

use crate::dev::DEV_SECRET_PREFIX;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::profile::Profile;
use crate::secret::SecretString;

/// How serious a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Stops a production start-up.
    Error,
    /// Logged, never stops a start-up.
    Warning,
}

/// One insecure setting found by a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Whether it stops a production start-up.
    pub severity: Severity,
    /// The variable concerned (`PALISADE_DEBUG`).
    pub variable: String,
    /// A stable snake_case reason (`debug_on`, `cors_wildcard`, ...).
    pub reason: &'static str,
    /// What is wrong and what to do, without any secret value.
    pub message: String,
}

/// What the checks found; a check adds to it.
#[derive(Debug, Default)]
pub struct Findings {
    items: Vec<Finding>,
}

impl Findings {
    /// An insecure setting that stops a production start-up.
    pub fn error(
        &mut self,
        variable: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) {
        self.items.push(Finding {
            severity: Severity::Error,
            variable: variable.into(),
            reason,
            message: message.into(),
        });
    }

    /// A risky setting that is logged but does not stop a start-up.
    pub fn warning(
        &mut self,
        variable: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) {
        self.items.push(Finding {
            severity: Severity::Warning,
            variable: variable.into(),
            reason,
            message: message.into(),
        });
    }

    /// Every finding so far.
    pub fn items(&self) -> &[Finding] {
        &self.items
    }
}

/// One start-up rule. Any `Fn(&mut Findings)` is one, so an application
/// registers another crate's check as a closure.
pub trait ProductionCheck {
    /// Adds what is insecure to `findings`.
    fn check(&self, findings: &mut Findings);
}

impl<F: Fn(&mut Findings)> ProductionCheck for F {
    fn check(&self, findings: &mut Findings) {
        self(findings);
    }
}

/// The registered checks.
///
/// ```
/// use palisade_secrets::{Profile, StartupChecks, checks};
///
/// let result = StartupChecks::new()
///     .with(checks::debug_off("PALISADE_DEBUG", true))
///     .with(checks::no_wildcard_cors("PALISADE_CORS_ORIGINS", &["*".to_owned()], false))
///     .run(Profile::Production);
/// let errors = result.unwrap_err();
/// assert_eq!(errors.len(), 2);
/// ```
#[derive(Default)]
pub struct StartupChecks {
    checks: Vec<Box<dyn ProductionCheck + Send + Sync>>,
}

impl std::fmt::Debug for StartupChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartupChecks")
            .field("checks", &self.checks.len())
            .finish()
    }
}

impl StartupChecks {
    /// No check.
    pub fn new() -> StartupChecks {
        StartupChecks::default()
    }

    /// Registers `check` (a builder method).
    pub fn with(mut self, check: impl ProductionCheck + Send + Sync + 'static) -> StartupChecks {
        self.checks.push(Box::new(check));
        self
    }

    /// Registers `check`.
    pub fn add(&mut self, check: impl ProductionCheck + Send + Sync + 'static) {
        self.checks.push(Box::new(check));
    }

    /// Every finding, whatever the profile.
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings = Findings::default();
        for check in &self.checks {
            check.check(&mut findings);
        }
        findings.items
    }

    /// Runs every check for `profile`. In production, the error findings
    /// are returned all at once (warnings are logged); in staging every
    /// finding is logged as a warning; in development nothing is logged.
    /// `Ok` holds the findings that did not stop the start-up.
    pub fn run(&self, profile: Profile) -> Result<Vec<Finding>, ConfigErrors> {
        let findings = self.findings();
        let mut errors = ConfigErrors::new();
        let mut kept = Vec::new();
        for finding in findings {
            match (profile, finding.severity) {
                (Profile::Production, Severity::Error) => {
                    tracing::error!(
                        event = SecurityEvent::SysMisconfigured.as_str(),
                        reason = finding.reason,
                        variable = finding.variable.as_str(),
                        profile = profile.as_str(),
                        "insecure setting refused: {}",
                        finding.message
                    );
                    let kind = if finding.reason.starts_with("secret_") {
                        ConfigErrorKind::WeakSecret
                    } else {
                        ConfigErrorKind::Insecure
                    };
                    errors.push(ConfigError::new(kind, finding.variable, finding.message));
                }
                (Profile::Development, _) => kept.push(finding),
                _ => {
                    tracing::warn!(
                        event = SecurityEvent::SysMisconfigured.as_str(),
                        reason = finding.reason,
                        variable = finding.variable.as_str(),
                        profile = profile.as_str(),
                        "insecure setting: {}",
                        finding.message
                    );
                    kept.push(finding);
                }
            }
        }
        errors.into_result(kept)
    }
}

/// Debug mode (verbose errors, stack traces in responses) must be off.
pub fn debug_off(variable: &str, debug: bool) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    move |findings: &mut Findings| {
        if debug {
            findings.error(
                &variable,
                "debug_on",
                "debug must be off in production (it exposes internals in responses and logs)",
            );
        }
    }
}

/// No CORS wildcard origin, and never credentials with a wildcard.
pub fn no_wildcard_cors(
    variable: &str,
    allowed_origins: &[String],
    allow_credentials: bool,
) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    let wildcard = allowed_origins.iter().any(|origin| origin.trim() == "*");
    move |findings: &mut Findings| {
        if wildcard && allow_credentials {
            findings.error(
                &variable,
                "cors_wildcard_with_credentials",
                "CORS allows credentials with the `*` origin: any site could make \
                 authenticated requests; list the allowed origins",
            );
        } else if wildcard {
            findings.error(
                &variable,
                "cors_wildcard",
                "CORS allows any origin (`*`) in production; list the allowed origins",
            );
        }
    }
}

/// Trusted hosts enabled with an empty list would accept no host, or, in
/// code that treats empty as "any", every host (host-header attacks).
pub fn trusted_hosts(
    variable: &str,
    enabled: bool,
    hosts: &[String],
) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    let empty = hosts.iter().all(|host| host.trim().is_empty());
    move |findings: &mut Findings| {
        if enabled && empty {
            findings.error(
                &variable,
                "trusted_hosts_empty",
                "trusted hosts are enabled but none is listed; list the service's host names",
            );
        }
    }
}

/// HSTS must be on in production (protocol downgrade, cookie theft over HTTP).
pub fn hsts_on(variable: &str, enabled: bool) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    move |findings: &mut Findings| {
        if !enabled {
            findings.error(
                &variable,
                "hsts_off",
                "HSTS must be on in production (it stops protocol downgrades)",
            );
        }
    }
}

/// A Redis URL without a password and without TLS (`rediss://`): a warning,
/// since a private network may make it acceptable.
pub fn redis_url(
    variable: &str,
    url: Option<&SecretString>,
) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    let (tls, password) = url
        .map(|url| redis_url_protection(url.expose_secret()))
        .unwrap_or((true, true));
    move |findings: &mut Findings| {
        if !password {
            findings.warning(
                &variable,
                "redis_no_password",
                "the Redis URL has no password: anyone who reaches the port can read and \
                 erase rate limits and revocations",
            );
        }
        if !tls {
            findings.warning(
                &variable,
                "redis_no_tls",
                "the Redis URL is not rediss:// (no TLS): its traffic crosses the network in clear",
            );
        }
    }
}

/// (uses TLS, has a password) of a Redis URL, without keeping the URL.
fn redis_url_protection(url: &str) -> (bool, bool) {
    let url = url.trim();
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let tls =
        scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("rediss+cluster");
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let password = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, password)| !password.is_empty());
    (tls, password)
}

/// Revocations kept in a Redis without persistence (`appendonly no`) and
/// without a replica vanish on a restart, and revoked tokens work again: a
/// warning in production.
pub fn redis_persistence(
    variable: &str,
    appendonly: bool,
    replicas: u32,
) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    move |findings: &mut Findings| {
        if !appendonly && replicas == 0 {
            findings.warning(
                &variable,
                "redis_not_persistent",
                "revocations are kept in a Redis with `appendonly no` and no replica: a \
                 restart forgets them and revoked tokens are accepted again",
            );
        }
    }
}

/// `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` set in production: backtraces of
/// errors end up in info-level logs (a warning).
pub fn no_backtraces(env: &impl crate::EnvSource) -> impl ProductionCheck + Send + Sync + 'static {
    let set: Vec<&'static str> = ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"]
        .into_iter()
        .filter(|name| env.var(name).is_some_and(|value| value.trim() != "0"))
        .collect();
    move |findings: &mut Findings| {
        for name in &set {
            findings.warning(
                *name,
                "backtraces_on",
                "backtraces are captured in production and may reach logs at info level; unset it",
            );
        }
    }
}

/// The database password: set, not a known default, at least 8 characters.
pub fn database_password(
    variable: &str,
    password: Option<&SecretString>,
) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    let problem = match password {
        None => Some((
            "secret_missing",
            "the database password is not set".to_owned(),
        )),
        Some(password) if password.is_empty() => Some((
            "secret_missing",
            "the database password is empty".to_owned(),
        )),
        Some(password) if is_known_weak(password.expose_secret()) => Some((
            "secret_default",
            "the database password is a well-known default; generate a new one".to_owned(),
        )),
        Some(password) if password.expose_secret().chars().count() < 8 => Some((
            "secret_too_short",
            "the database password is shorter than 8 characters".to_owned(),
        )),
        Some(_) => None,
    };
    move |findings: &mut Findings| {
        if let Some((reason, message)) = &problem {
            findings.error(&variable, reason, message.clone());
        }
    }
}

/// What a consumer requires of a secret (a signing key, a pepper).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretRules {
    /// The fewest bytes accepted (32 for an HS256 key).
    pub min_len: usize,
}

impl SecretRules {
    /// At least `min_len` bytes.
    pub const fn min_len(min_len: usize) -> SecretRules {
        SecretRules { min_len }
    }
}

/// Why a secret is weak: a stable reason and a message without the value.
pub fn secret_weakness(secret: &[u8], rules: SecretRules) -> Option<(&'static str, String)> {
    if secret.is_empty() {
        return Some(("secret_missing", "the secret is empty".to_owned()));
    }
    let text = String::from_utf8_lossy(secret);
    if text.starts_with(DEV_SECRET_PREFIX) {
        return Some((
            "secret_from_development",
            "a generated development secret is used outside development; each \
             environment needs its own secret"
                .to_owned(),
        ));
    }
    if is_known_weak(&text) {
        return Some((
            "secret_default",
            "the secret is a well-known default or example value".to_owned(),
        ));
    }
    if secret.len() < rules.min_len {
        return Some((
            "secret_too_short",
            format!(
                "the secret is {} bytes, fewer than the {} required",
                secret.len(),
                rules.min_len
            ),
        ));
    }
    let bits = estimated_entropy_bits(secret);
    let required = (rules.min_len as f64 * 3.0).min(96.0);
    if bits < required {
        return Some((
            "secret_low_entropy",
            format!(
                "the secret looks low in entropy (about {bits:.0} bits, {required:.0} required): \
                 generate it randomly, e.g. `openssl rand -base64 32`"
            ),
        ));
    }
    None
}

/// A secret: set, not a default or a development secret, at least
/// `rules.min_len` bytes, not low in entropy.
pub fn secret_strength(
    variable: &str,
    secret: Option<&SecretString>,
    rules: SecretRules,
) -> impl ProductionCheck + Send + Sync + 'static {
    let variable = variable.to_owned();
    let problem = match secret {
        None => Some(("secret_missing", format!("{variable} is not set"))),
        Some(secret) => secret_weakness(secret.expose_secret().as_bytes(), rules),
    };
    move |findings: &mut Findings| {
        if let Some((reason, message)) = &problem {
            findings.error(&variable, reason, message.clone());
        }
    }
}

/// Two roles must not share a secret (the access and the refresh token
/// keys: a shared key lets a refresh token pass as an access token).
pub fn distinct_secrets(
    (first_variable, first): (&str, Option<&SecretString>),
    (second_variable, second): (&str, Option<&SecretString>),
) -> impl ProductionCheck + Send + Sync + 'static {
    let same = match (first, second) {
        (Some(first), Some(second)) => !first.is_empty() && first.ct_eq(second),
        _ => false,
    };
    let message = format!(
        "{first_variable} and {second_variable} hold the same secret; give each role its own"
    );
    let variable = second_variable.to_owned();
    move |findings: &mut Findings| {
        if same {
            findings.error(&variable, "secret_shared_between_roles", message.clone());
        }
    }
}

/// Well-known defaults and examples (compared case-insensitively).
const KNOWN_WEAK: &[&str] = &[
    "secret",
    "secretkey",
    "secret-key",
    "secret_key",
    "mysecret",
    "supersecret",
    "your-secret-key",
    "your-256-bit-secret",
    "your_jwt_secret",
    "jwt-secret",
    "jwt_secret",
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "password",
    "passw0rd",
    "password1",
    "default",
    "development",
    "dev",
    "test",
    "testing",
    "example",
    "admin",
    "root",
    "postgres",
    "mysql",
    "redis",
    "guest",
    "letmein",
    "qwerty",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "insecure",
    "notasecret",
    "keyboardcat",
    "keyboard cat",
];

/// Whether `value` is a well-known default or example value.
pub fn is_known_weak(value: &str) -> bool {
    let value = value.trim();
    KNOWN_WEAK
        .iter()
        .any(|weak| value.eq_ignore_ascii_case(weak))
        || value.to_ascii_lowercase().starts_with("django-insecure")
}

/// The Shannon entropy of the byte distribution times the length: a rough
/// upper bound on the secret's entropy that catches `aaaa...`, `abab...` and
/// words repeated to reach a length.
pub fn estimated_entropy_bits(secret: &[u8]) -> f64 {
    if secret.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &byte in secret {
        counts[usize::from(byte)] += 1;
    }
    let len = secret.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / len;
            -p * p.log2()
        })
        .sum();
    per_byte * len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_url_protection_reads_scheme_and_password() {
        assert_eq!(
            redis_url_protection("redis://127.0.0.1:6379/0"),
            (false, false)
        );
        assert_eq!(
            redis_url_protection("rediss://:pw@cache:6380"),
            (true, true)
        );
        assert_eq!(
            redis_url_protection("redis://user:pw@cache/0"),
            (false, true)
        );
        assert_eq!(redis_url_protection("redis://user@cache/0"), (false, false));
        // A cluster's seed list: TLS by its scheme, the password once.
        assert_eq!(
            redis_url_protection("rediss+cluster://app:pw@10.0.0.1:7000,10.0.0.2:7000"),
            (true, true)
        );
        assert_eq!(
            redis_url_protection("redis+cluster://10.0.0.1:7000,10.0.0.2:7000"),
            (false, false)
        );
    }
}
