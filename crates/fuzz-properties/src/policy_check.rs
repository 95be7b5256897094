//! Arbitrary UTF-8 passwords, with a username and an email as context,
//! through the NIST and classic policies (and NIST with a zxcvbn threshold):
//! never a panic, never slow (zxcvbn sees 64 characters at most), every
//! failure a documented detail code, and no error text with the password.

use palisade_errors::{Error, ErrorKind};
use palisade_passwords::{PasswordPolicy, PolicyContext, PolicyFailure, PolicyViolation};
use secrecy::SecretString;

/// The documented codes (the crate README and `PolicyFailure::code`).
pub const CODES: &[&str] = &[
    "too_short",
    "too_long",
    "missing_uppercase",
    "missing_lowercase",
    "missing_digit",
    "missing_special",
    "too_common",
    "contains_username",
    "contains_email",
    "contains_service_name",
    "too_weak",
    "recently_used",
];

fn policies() -> [PasswordPolicy; 3] {
    // Invariant: a fixed, valid configuration.
    #[allow(clippy::expect_used)]
    let strength = PasswordPolicy::builder()
        .min_strength(3)
        .build()
        .expect("valid policy");
    [PasswordPolicy::nist(), PasswordPolicy::classic(), strength]
}

/// Every text a refusal can reach a client or a log with.
fn texts(violation: &PolicyViolation) -> Vec<String> {
    let error = Error::from(violation.clone());
    vec![
        violation.to_string(),
        format!("{violation:?}"),
        error.to_string(),
        String::from_utf8_lossy(&error.to_json(None)).into_owned(),
    ]
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    // `password \n username \n email`
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let password = parts.next().unwrap_or_default();
    let username = parts.next().unwrap_or_default();
    let email = parts.next().unwrap_or_default();
    let context = PolicyContext::new()
        .username(username)
        .email(email)
        .service_name("palisade");
    let secret = SecretString::from(password);

    // An ASCII username inside an ASCII password is always found (no NFKC
    // or case-folding subtleties), unless the password is too long.
    let must_name_username = password.is_ascii()
        && password.len() <= PasswordPolicy::nist().max_length()
        && username.len() >= 3
        && username.bytes().all(|b| b.is_ascii_alphanumeric())
        && password
            .to_ascii_lowercase()
            .contains(&username.to_ascii_lowercase());

    for policy in policies() {
        let violation = match policy.check(&secret, &context) {
            Ok(()) => {
                assert!(!must_name_username, "a password with the username passed");
                continue;
            }
            Err(violation) => violation,
        };
        let failures = violation.failures();
        if must_name_username {
            assert!(failures.contains(&PolicyFailure::ContainsUsername));
        }
        assert!(!failures.is_empty(), "a refusal names its reasons");
        let codes: Vec<&str> = failures.iter().map(|failure| failure.code()).collect();
        for (at, code) in codes.iter().enumerate() {
            assert!(CODES.contains(code), "undocumented code {code}");
            assert!(!codes[..at].contains(code), "{code} twice");
        }
        assert!(!failures.contains(&PolicyFailure::RecentlyUsed));

        // The texts are functions of the codes alone ...
        let expected: String = codes.iter().map(|code| format!(" {code}")).collect();
        assert_eq!(
            violation.to_string(),
            format!("password refused by policy:{expected}")
        );
        let error = Error::from(violation.clone());
        assert_eq!(error.kind(), ErrorKind::ValidationFailed);
        let details: Vec<(&str, &str)> = error
            .details()
            .iter()
            .map(|detail| (detail.field(), detail.code()))
            .collect();
        let wanted: Vec<(&str, &str)> = codes.iter().map(|code| ("password", *code)).collect();
        assert_eq!(details, wanted);
        let baseline = codes
            .iter()
            .fold(Error::new(ErrorKind::ValidationFailed), |error, code| {
                error.with_detail("password", code)
            });
        assert_eq!(error.to_json(None), baseline.to_json(None));
        assert_eq!(
            format!("{violation:?}"),
            format!("PolicyViolation {{ failures: {failures:?} }}")
        );
        assert_eq!(error.to_string(), baseline.to_string());
        // ... so the password is in none, unless it is a word of the
        // texts' own vocabulary ("too_short" as a password).
        let vocabulary = format!(
            "password refused by policy:{expected} PolicyViolation {{ failures: {failures:?} }} {baseline} {}",
            String::from_utf8_lossy(&baseline.to_json(None))
        );
        if !password.is_empty() && !vocabulary.contains(password) {
            for text in texts(&violation) {
                assert!(!text.contains(password), "the password in {text:?}");
            }
        }
    }
}
