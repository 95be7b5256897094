//! `#[derive(Deserialize)]` settings through `EnvSettings::deserialize`:
//! typed fields under a prefix, `_FILE` for any field, every problem at once.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_secrets::{ConfigErrorKind, EnvSettings, MapEnv, SecretString};

#[derive(Debug, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, serde::Deserialize)]
struct AppSettings {
    port: u16,
    #[serde(default)]
    debug: bool,
    log_format: LogFormat,
    cors_origins: Vec<String>,
    #[serde(default)]
    worker_threads: Option<u8>,
    timeout_secs: u64,
    db_password: SecretString,
}

fn read(env: &MapEnv) -> Result<Option<AppSettings>, palisade_secrets::ConfigErrors> {
    let mut s = EnvSettings::new(env, "PALISADE_");
    let settings = s.deserialize::<AppSettings>();
    s.finish(settings)
}

#[test]
fn a_derived_struct_reads_its_typed_fields_under_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let env = MapEnv::from_iter([
        ("PALISADE_PORT", "8443".to_owned()),
        ("PALISADE_LOG_FORMAT", "JSON".to_owned()),
        (
            "PALISADE_CORS_ORIGINS",
            "https://a.example, https://b.example".to_owned(),
        ),
        ("PALISADE_WORKER_THREADS", "4".to_owned()),
        ("PALISADE_TIMEOUT_SECS", "30".to_owned()),
        ("PALISADE_DB_PASSWORD_FILE", file.display().to_string()),
    ]);
    let settings = read(&env).unwrap().unwrap();
    assert_eq!(settings.port, 8443);
    assert!(!settings.debug, "a #[serde(default)] field may be unset");
    assert_eq!(settings.log_format, LogFormat::Json);
    assert_eq!(
        settings.cors_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(settings.worker_threads, Some(4));
    assert_eq!(settings.timeout_secs, 30);
    assert_eq!(settings.db_password.expose_secret(), "from-a-file");
}

#[test]
fn every_problem_of_a_derived_struct_is_reported_at_once() {
    let env = MapEnv::from_iter([
        ("PALISADE_PORT", "http"),
        ("PALISADE_DEBUG", "yes please"),
        ("PALISADE_LOG_FORMAT", "xml"),
        ("PALISADE_WORKER_THREADS", "300"),
        ("PALISADE_DB_PASSWORD", "inline-Secret-Value"),
        ("PALISADE_DB_PASSWORD_FILE", "/run/secrets/db"),
    ]);
    let errors = read(&env).unwrap_err();
    let reported: Vec<(&str, ConfigErrorKind)> = errors
        .errors()
        .iter()
        .map(|e| (e.variable(), e.kind()))
        .collect();
    assert_eq!(
        reported,
        [
            ("PALISADE_DB_PASSWORD", ConfigErrorKind::BothValueAndFile),
            ("PALISADE_PORT", ConfigErrorKind::Invalid),
            ("PALISADE_DEBUG", ConfigErrorKind::Invalid),
            ("PALISADE_LOG_FORMAT", ConfigErrorKind::Invalid),
            ("PALISADE_WORKER_THREADS", ConfigErrorKind::Invalid),
            ("PALISADE_CORS_ORIGINS", ConfigErrorKind::Missing),
            ("PALISADE_TIMEOUT_SECS", ConfigErrorKind::Missing),
        ]
    );
    let text = errors.to_string();
    assert!(text.contains("expected one of: text, json"), "{text}");
    for value in ["http", "yes please", "xml", "300", "inline-Secret-Value"] {
        assert!(!text.contains(value), "{value} leaked: {text}");
    }
}

#[test]
fn a_struct_that_is_not_flat_is_refused_with_a_reason() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        inner: std::collections::BTreeMap<String, String>,
    }
    let mut s = EnvSettings::new(MapEnv::from_iter([("X_INNER", "a")]), "X_");
    assert!(s.deserialize::<Nested>().is_none());
    let errors = s.finish(()).unwrap_err();
    assert_eq!(errors.errors()[0].variable(), "X_INNER");
    assert!(errors.to_string().contains("nested settings"), "{errors}");
}

#[test]
fn a_field_whose_own_deserialize_fails_is_named_and_the_rest_still_read() {
    use palisade_secrets::Profile;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct WithProfile {
        #[serde(default)]
        profile: Profile,
        port: u16,
        name: String,
    }
    let env = MapEnv::from_iter([("X_PROFILE", "prodution-typo-value"), ("X_PORT", "x")]);
    let mut s = EnvSettings::new(env, "X_");
    assert!(s.deserialize::<WithProfile>().is_none());
    let errors = s.finish(()).unwrap_err();
    let variables: Vec<&str> = errors.errors().iter().map(|e| e.variable()).collect();
    assert_eq!(variables, ["X_PORT", "X_PROFILE", "X_NAME"]);
    assert!(
        !errors.to_string().contains("prodution-typo-value"),
        "{errors}"
    );
}
