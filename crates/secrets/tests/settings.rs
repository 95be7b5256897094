//! `EnvSettings`: typed values under a prefix, every problem at once,
//! generated development secrets, per-profile feature toggles.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use palisade_secrets::{
    ConfigErrorKind, DEV_SECRET_PREFIX, EnvSettings, FeatureDefault, MapEnv, Profile, SecretString,
};

#[derive(Debug)]
struct AppSettings {
    port: u16,
    debug: bool,
    timeout: Duration,
    hosts: Vec<String>,
    db_password: SecretString,
    api_secret: SecretString,
}

fn load(env: &MapEnv) -> Result<AppSettings, palisade_secrets::ConfigErrors> {
    let mut s = EnvSettings::new(env, "PALISADE_");
    let settings = AppSettings {
        port: s.get("PORT", 8080),
        debug: s.get("DEBUG", false),
        timeout: s.get("TIMEOUT", Duration::from_secs(30)),
        hosts: s.get("TRUSTED_HOSTS", Vec::new()),
        db_password: s.required_secret("DB_PASSWORD"),
        api_secret: s.secret_or_dev_generated("API_SECRET"),
    };
    s.finish(settings)
}

#[test]
fn every_problem_is_reported_at_once_each_naming_its_variable() {
    let env = MapEnv::from_iter([
        ("PALISADE_ENV", "production"),
        ("PALISADE_PORT", "80800"),
        ("PALISADE_DEBUG", "flase"),
        ("PALISADE_TIMEOUT", "soon"),
        ("PALISADE_API_SECRET", "inline"),
        ("PALISADE_API_SECRET_FILE", "/run/secrets/api"),
    ]);
    let errors = load(&env).unwrap_err();
    let reported: Vec<(&str, ConfigErrorKind)> = errors
        .errors()
        .iter()
        .map(|e| (e.variable(), e.kind()))
        .collect();
    assert_eq!(
        reported,
        [
            ("PALISADE_PORT", ConfigErrorKind::Invalid),
            ("PALISADE_DEBUG", ConfigErrorKind::Invalid),
            ("PALISADE_TIMEOUT", ConfigErrorKind::Invalid),
            ("PALISADE_DB_PASSWORD", ConfigErrorKind::Missing),
            ("PALISADE_API_SECRET", ConfigErrorKind::BothValueAndFile),
        ]
    );
    let text = errors.to_string();
    assert!(text.starts_with("5 configuration problem(s):"));
    for value in ["80800", "flase", "soon", "inline"] {
        assert!(!text.contains(value), "{value} leaked into {text}");
    }
}

#[test]
fn typed_values_parse() {
    let env = MapEnv::from_iter([
        ("PALISADE_PORT", "9000"),
        ("PALISADE_DEBUG", "on"),
        ("PALISADE_TIMEOUT", "250ms"),
        (
            "PALISADE_TRUSTED_HOSTS",
            "api.example.com, www.example.com,",
        ),
        ("PALISADE_DB_PASSWORD", "db-password-1"),
    ]);
    let settings = load(&env).unwrap();
    assert_eq!(settings.port, 9000);
    assert!(settings.debug);
    assert_eq!(settings.timeout, Duration::from_millis(250));
    assert_eq!(settings.hosts, ["api.example.com", "www.example.com"]);
    assert_eq!(settings.db_password.expose_secret(), "db-password-1");
}

#[test]
fn a_misspelt_profile_reads_on_as_production_and_is_reported() {
    let env = MapEnv::from_iter([("PALISADE_ENV", "staging2")]);
    let mut s = EnvSettings::new(&env, "PALISADE_");
    assert_eq!(s.profile(), Profile::Production);
    let _ = s.secret_or_dev_generated("API_SECRET");
    let errors = s.finish(()).unwrap_err();
    assert_eq!(errors.errors()[0].kind(), ConfigErrorKind::UnknownProfile);
    assert_eq!(errors.len(), 2, "no generated secret outside development");
}

#[test]
fn development_generates_a_missing_secret_with_a_warning() {
    let capture = palisade_errors::testing::EventCapture::new();
    let env = MapEnv::from_iter([("PALISADE_DB_PASSWORD", "db-password-1")]);
    let settings = {
        let _guard = capture.set_default();
        load(&env).unwrap()
    };
    let secret = settings.api_secret.expose_secret().clone();
    assert!(secret.starts_with(DEV_SECRET_PREFIX));
    assert!(secret.len() >= DEV_SECRET_PREFIX.len() + 43);
    let events = capture.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].level, tracing::Level::WARN);
    assert_eq!(events[0].field("variable"), Some("PALISADE_API_SECRET"));
    capture.assert_absent(&secret);
    // Two starts, two different secrets.
    let again = load(&env).unwrap();
    assert!(!again.api_secret.ct_eq(&settings.api_secret));
}

#[test]
fn staging_and_production_do_not_generate_secrets() {
    for profile in ["staging", "production"] {
        let env = MapEnv::from_iter([("PALISADE_ENV", profile), ("PALISADE_DB_PASSWORD", "x")]);
        let errors = load(&env).unwrap_err();
        assert_eq!(errors.errors()[0].variable(), "PALISADE_API_SECRET");
        assert_eq!(errors.errors()[0].kind(), ConfigErrorKind::Missing);
    }
}

#[test]
fn feature_toggles_default_per_profile_and_obey_their_variable() {
    let read = |env: MapEnv| {
        let mut s = EnvSettings::new(&env, "PALISADE_");
        let on = s.feature("NEW_CHECKOUT", FeatureDefault::PREVIEW);
        s.finish(on)
    };
    assert!(read(MapEnv::new()).unwrap());
    assert!(read(MapEnv::from_iter([("PALISADE_ENV", "staging")])).unwrap());
    assert!(!read(MapEnv::from_iter([("PALISADE_ENV", "production")])).unwrap());
    assert!(
        read(MapEnv::from_iter([
            ("PALISADE_ENV", "production"),
            ("PALISADE_FEATURE_NEW_CHECKOUT", "true")
        ]))
        .unwrap()
    );
    let errors = read(MapEnv::from_iter([(
        "PALISADE_FEATURE_NEW_CHECKOUT",
        "perhaps",
    )]))
    .unwrap_err();
    assert_eq!(
        errors.errors()[0].variable(),
        "PALISADE_FEATURE_NEW_CHECKOUT"
    );
}

#[test]
fn a_rotated_secret_reads_through_the_settings() {
    let env = MapEnv::from_iter([
        ("PALISADE_JWT_SECRET", "current-secret"),
        ("PALISADE_JWT_SECRET_PREVIOUS", "previous-secret"),
    ]);
    let mut s = EnvSettings::new(&env, "PALISADE_");
    let versions = s.versioned_secret("JWT_SECRET").unwrap();
    s.finish(()).unwrap();
    assert_eq!(versions.current().expose_secret(), "current-secret");
    assert_eq!(
        versions.previous().unwrap().expose_secret(),
        "previous-secret"
    );
}
