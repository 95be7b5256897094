//! Arbitrary environment values through the typed parsers (`FromEnvValue`),
//! the profile parser, the secret-strength rules and the log redactor:
//! never a panic, an accepted value is what it claims to be, and a
//! registered secret never survives redaction.

use std::sync::OnceLock;
use std::time::Duration;

use palisade_secrets::checks::{
    SecretRules, estimated_entropy_bits, is_known_weak, secret_weakness,
};
use palisade_secrets::{EnvSettings, FromEnvValue, MapEnv, Profile, Redactor, SecretString};

/// A registered secret: no character of `[REDACTED]` is in it, so no
/// replacement can rebuild it from its neighbours.
const REGISTERED: &str = "zq9-secret-value";

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    if let Ok(flag) = bool::from_env_value(&text) {
        let word = text.trim().to_ascii_lowercase();
        let truthy = ["true", "1", "yes", "on"].contains(&word.as_str());
        let falsy = ["false", "0", "no", "off"].contains(&word.as_str());
        assert!(if flag { truthy } else { falsy }, "{word:?} read as {flag}");
    }
    if let Ok(port) = u16::from_env_value(&text) {
        assert_eq!(text.trim().parse::<u16>().ok(), Some(port));
    }
    let _ = u64::from_env_value(&text);
    if let Ok(duration) = Duration::from_env_value(&text) {
        assert!(text.trim().starts_with(|c: char| c.is_ascii_digit()));
        let _ = duration.as_secs();
    }
    if let Ok(list) = Vec::<String>::from_env_value(&text) {
        assert!(
            list.iter()
                .all(|entry| !entry.is_empty() && !entry.contains(','))
        );
    }
    let _ = Vec::<u16>::from_env_value(&text);
    if let Some(profile) = Profile::parse(&text) {
        assert_eq!(Profile::parse(profile.as_str()), Some(profile));
    }

    // The same text in every field of a derived settings struct: a result
    // or a list of problems, never a panic, and never both.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // read by serde only
    struct Fields {
        flag: bool,
        port: u16,
        list: Vec<u32>,
        name: Option<String>,
        key: SecretString,
        profile: Profile,
    }
    let env: MapEnv = ["FLAG", "PORT", "LIST", "NAME", "KEY", "PROFILE"]
        .into_iter()
        .map(|field| (format!("F_{field}"), text.to_string()))
        .collect();
    let mut settings = EnvSettings::new(&env, "F_");
    let read = settings.deserialize::<Fields>();
    assert_eq!(read.is_some(), settings.errors().is_empty());

    let min_len = data.first().map_or(0, |&byte| usize::from(byte % 64));
    let bits = estimated_entropy_bits(data);
    assert!(bits >= 0.0 && bits <= 8.0 * data.len() as f64 + 1e-6);
    if secret_weakness(data, SecretRules::min_len(min_len)).is_none() {
        assert!(data.len() >= min_len && !data.is_empty());
        assert!(!is_known_weak(&text));
    }

    // Built once: compiling its patterns per input would make the fuzzer crawl.
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    let redactor =
        REDACTOR.get_or_init(|| Redactor::new().with_secret(&SecretString::from(REGISTERED)));
    let split = text
        .char_indices()
        .nth(data.len() / 2)
        .map_or(text.len(), |(at, _)| at);
    let (head, tail) = text.split_at(split);
    let line = format!("{head}{REGISTERED}{tail}");
    let clean = redactor.redact(&line);
    assert!(
        !clean.contains(REGISTERED),
        "a registered secret survived redaction"
    );
}
