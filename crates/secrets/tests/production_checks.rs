//! Every production check refuses its insecure setting with its own
//! message; staging warns; development keeps quiet.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use palisade_secrets::checks::{self, SecretRules};
use palisade_secrets::{
    ConfigErrorKind, DEV_SECRET_PREFIX, Findings, MapEnv, Profile, SecretString, Severity,
    StartupChecks, generate_dev_secret,
};

const STRONG: &str = "k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const STRONG_2: &str = "Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa";

/// The one error a check gives in production: (variable, reason text, kind).
fn refused(checks: StartupChecks) -> (String, String, ConfigErrorKind) {
    let errors = checks.run(Profile::Production).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    let error = &errors.errors()[0];
    (
        error.variable().to_owned(),
        error.reason().to_owned(),
        error.kind(),
    )
}

fn passes(checks: StartupChecks) {
    let findings = checks.run(Profile::Production).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
}

fn secret_refusal(value: &str, min_len: usize) -> String {
    let secret = SecretString::from(value);
    let (variable, reason, kind) = refused(StartupChecks::new().with(checks::secret_strength(
        "PALISADE_JWT_SECRET",
        Some(&secret),
        SecretRules::min_len(min_len),
    )));
    assert_eq!(variable, "PALISADE_JWT_SECRET");
    assert_eq!(kind, ConfigErrorKind::WeakSecret);
    // Short weak values ("secret") are ordinary words of the messages.
    assert!(value.len() < 10 || !reason.contains(value), "{reason}");
    reason
}

#[test]
fn debug_on_is_refused_in_production() {
    let (variable, reason, kind) =
        refused(StartupChecks::new().with(checks::debug_off("PALISADE_DEBUG", true)));
    assert_eq!(variable, "PALISADE_DEBUG");
    assert!(reason.contains("debug must be off in production"));
    assert_eq!(kind, ConfigErrorKind::Insecure);
    passes(StartupChecks::new().with(checks::debug_off("PALISADE_DEBUG", false)));
}

#[test]
fn a_cors_wildcard_is_refused_in_production() {
    let origins = vec!["https://app.example.com".to_owned(), "*".to_owned()];
    let (variable, reason, _) = refused(StartupChecks::new().with(checks::no_wildcard_cors(
        "PALISADE_CORS",
        &origins,
        false,
    )));
    assert_eq!(variable, "PALISADE_CORS");
    assert!(reason.contains("any origin"));
    passes(StartupChecks::new().with(checks::no_wildcard_cors(
        "PALISADE_CORS",
        &["https://app.example.com".to_owned()],
        true,
    )));
}

#[test]
fn credentials_with_a_cors_wildcard_get_their_own_message() {
    let (_, reason, _) = refused(StartupChecks::new().with(checks::no_wildcard_cors(
        "PALISADE_CORS",
        &["*".to_owned()],
        true,
    )));
    assert!(reason.contains("credentials"));
}

#[test]
fn a_missing_secret_is_refused_naming_the_variable() {
    let (variable, reason, kind) = refused(StartupChecks::new().with(checks::secret_strength(
        "PALISADE_JWT_SECRET",
        None,
        SecretRules::min_len(32),
    )));
    assert_eq!(
        (variable.as_str(), kind),
        ("PALISADE_JWT_SECRET", ConfigErrorKind::WeakSecret)
    );
    assert!(reason.contains("not set"));
    assert!(secret_refusal("", 32).contains("empty"));
}

#[test]
fn a_default_or_example_secret_is_refused() {
    for weak in [
        "secret",
        "CHANGEME",
        "your-256-bit-secret",
        "password",
        "django-insecure-abc",
    ] {
        assert!(secret_refusal(weak, 8).contains("well-known"), "{weak}");
    }
}

#[test]
fn a_secret_shorter_than_the_consumer_minimum_is_refused() {
    let reason = secret_refusal("k7Qp2vX9mR4tL8wZ", 32);
    assert!(
        reason.contains("16 bytes, fewer than the 32 required"),
        "{reason}"
    );
}

#[test]
fn a_low_entropy_secret_is_refused() {
    for weak in [
        "a".repeat(40),
        "ab".repeat(20),
        "passwordpasswordpasswordpassword".to_owned(),
    ] {
        assert!(
            secret_refusal(&weak, 32).contains("low in entropy"),
            "{weak}"
        );
    }
}

#[test]
fn a_development_secret_is_refused_in_production() {
    let dev = generate_dev_secret("PALISADE_JWT_SECRET");
    assert!(dev.expose_secret().starts_with(DEV_SECRET_PREFIX));
    assert!(secret_refusal(dev.expose_secret(), 32).contains("each environment needs its own"));
}

#[test]
fn a_strong_secret_passes() {
    let secret = SecretString::from(STRONG);
    passes(StartupChecks::new().with(checks::secret_strength(
        "PALISADE_JWT_SECRET",
        Some(&secret),
        SecretRules::min_len(32),
    )));
    // 32 random hex characters (128 bits) pass a 16-byte minimum.
    let hex = SecretString::from("9f86d081884c7d659a2feaa0c55ad015");
    passes(StartupChecks::new().with(checks::secret_strength(
        "PALISADE_PEPPER",
        Some(&hex),
        SecretRules::min_len(16),
    )));
}

#[test]
fn one_secret_for_access_and_refresh_tokens_is_refused() {
    let access = SecretString::from(STRONG);
    let refresh = SecretString::from(STRONG);
    let (variable, reason, kind) = refused(StartupChecks::new().with(checks::distinct_secrets(
        ("PALISADE_JWT_ACCESS_SECRET", Some(&access)),
        ("PALISADE_JWT_REFRESH_SECRET", Some(&refresh)),
    )));
    assert_eq!(variable, "PALISADE_JWT_REFRESH_SECRET");
    assert!(reason.contains(
        "PALISADE_JWT_ACCESS_SECRET and PALISADE_JWT_REFRESH_SECRET hold the same secret"
    ));
    assert_eq!(kind, ConfigErrorKind::WeakSecret);
    let other = SecretString::from(STRONG_2);
    passes(StartupChecks::new().with(checks::distinct_secrets(
        ("PALISADE_JWT_ACCESS_SECRET", Some(&access)),
        ("PALISADE_JWT_REFRESH_SECRET", Some(&other)),
    )));
}

#[test]
fn a_default_or_short_database_password_is_refused() {
    for (password, expected) in [
        (None, "not set"),
        (Some("postgres"), "well-known default"),
        (Some("s3cr3t!"), "shorter than 8 characters"),
    ] {
        let password = password.map(SecretString::from);
        let (variable, reason, _) = refused(StartupChecks::new().with(checks::database_password(
            "PALISADE_DB_PASSWORD",
            password.as_ref(),
        )));
        assert_eq!(variable, "PALISADE_DB_PASSWORD");
        assert!(reason.contains(expected), "{reason}");
    }
    let good = SecretString::from("tL8wZ3nB6y");
    passes(StartupChecks::new().with(checks::database_password(
        "PALISADE_DB_PASSWORD",
        Some(&good),
    )));
}

#[test]
fn trusted_hosts_enabled_but_empty_is_refused() {
    let (variable, reason, _) = refused(StartupChecks::new().with(checks::trusted_hosts(
        "PALISADE_TRUSTED_HOSTS",
        true,
        &[],
    )));
    assert_eq!(variable, "PALISADE_TRUSTED_HOSTS");
    assert!(reason.contains("none is listed"));
    passes(StartupChecks::new().with(checks::trusted_hosts("PALISADE_TRUSTED_HOSTS", false, &[])));
    passes(StartupChecks::new().with(checks::trusted_hosts(
        "PALISADE_TRUSTED_HOSTS",
        true,
        &["api.example.com".to_owned()],
    )));
}

#[test]
fn hsts_off_is_refused_in_production() {
    let (variable, reason, _) =
        refused(StartupChecks::new().with(checks::hsts_on("PALISADE_HSTS", false)));
    assert_eq!(variable, "PALISADE_HSTS");
    assert!(reason.contains("HSTS must be on"));
}

#[test]
fn a_redis_url_without_password_or_tls_is_a_warning_not_a_refusal() {
    let url = SecretString::from("redis://cache:6379/0");
    let capture = EventCapture::new();
    let findings = {
        let _guard = capture.set_default();
        StartupChecks::new()
            .with(checks::redis_url("PALISADE_REDIS_URL", Some(&url)))
            .run(Profile::Production)
            .unwrap()
    };
    let reasons: Vec<&str> = findings.iter().map(|f| f.reason).collect();
    assert_eq!(reasons, ["redis_no_password", "redis_no_tls"]);
    assert!(findings.iter().all(|f| f.severity == Severity::Warning));
    assert_eq!(capture.named(SecurityEvent::SysMisconfigured).len(), 2);
    let safe = SecretString::from("rediss://:k7Qp2vX9@cache:6380/0");
    passes(StartupChecks::new().with(checks::redis_url("PALISADE_REDIS_URL", Some(&safe))));
    capture.assert_absent("k7Qp2vX9");
}

#[test]
fn revocations_in_a_redis_without_persistence_are_a_warning() {
    let findings = StartupChecks::new()
        .with(checks::redis_persistence("PALISADE_REDIS_URL", false, 0))
        .run(Profile::Production)
        .unwrap();
    assert_eq!(findings[0].reason, "redis_not_persistent");
    assert_eq!(findings[0].severity, Severity::Warning);
    passes(StartupChecks::new().with(checks::redis_persistence("PALISADE_REDIS_URL", true, 0)));
    passes(StartupChecks::new().with(checks::redis_persistence("PALISADE_REDIS_URL", false, 1)));
}

#[test]
fn backtraces_on_in_production_are_a_warning() {
    let env = MapEnv::from_iter([("RUST_BACKTRACE", "1")]);
    let findings = StartupChecks::new()
        .with(checks::no_backtraces(&env))
        .run(Profile::Production)
        .unwrap();
    assert_eq!(findings[0].variable, "RUST_BACKTRACE");
    passes(
        StartupChecks::new().with(checks::no_backtraces(&MapEnv::from_iter([(
            "RUST_BACKTRACE",
            "0",
        )]))),
    );
}

#[test]
fn a_registered_closure_check_of_another_crate_runs() {
    // What the server does with palisade-headers' `CorsPolicy::is_production_safe()`.
    let cors_is_production_safe = false;
    let (variable, reason, _) =
        refused(StartupChecks::new().with(move |findings: &mut Findings| {
            if !cors_is_production_safe {
                findings.error(
                    "PALISADE_CORS",
                    "cors_unsafe",
                    "the CORS policy is not production-safe",
                );
            }
        }));
    assert_eq!(
        (variable.as_str(), reason.as_str()),
        ("PALISADE_CORS", "the CORS policy is not production-safe")
    );
}

fn insecure_everything() -> StartupChecks {
    StartupChecks::new()
        .with(checks::debug_off("PALISADE_DEBUG", true))
        .with(checks::no_wildcard_cors(
            "PALISADE_CORS",
            &["*".to_owned()],
            false,
        ))
        .with(checks::hsts_on("PALISADE_HSTS", false))
        .with(checks::trusted_hosts("PALISADE_TRUSTED_HOSTS", true, &[]))
        .with(checks::secret_strength(
            "PALISADE_JWT_SECRET",
            None,
            SecretRules::min_len(32),
        ))
        .with(checks::redis_persistence("PALISADE_REDIS_URL", false, 0))
}

#[test]
fn production_lists_every_refusal_at_once() {
    let capture = EventCapture::new();
    let errors = {
        let _guard = capture.set_default();
        insecure_everything().run(Profile::Production).unwrap_err()
    };
    let variables: Vec<&str> = errors.errors().iter().map(|e| e.variable()).collect();
    assert_eq!(
        variables,
        [
            "PALISADE_DEBUG",
            "PALISADE_CORS",
            "PALISADE_HSTS",
            "PALISADE_TRUSTED_HOSTS",
            "PALISADE_JWT_SECRET"
        ]
    );
    // Five refusals logged as errors, the persistence warning as a warning.
    let events = capture.named(SecurityEvent::SysMisconfigured);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.level == tracing::Level::ERROR)
            .count(),
        5
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.level == tracing::Level::WARN)
            .count(),
        1
    );
    capture.assert_vocabulary();
}

#[test]
fn staging_warns_about_the_same_settings_and_starts() {
    let capture = EventCapture::new();
    let findings = {
        let _guard = capture.set_default();
        insecure_everything().run(Profile::Staging).unwrap()
    };
    assert_eq!(findings.len(), 6);
    let events = capture.named(SecurityEvent::SysMisconfigured);
    assert_eq!(events.len(), 6);
    assert!(events.iter().all(|e| e.level == tracing::Level::WARN));
}

#[test]
fn development_starts_quietly() {
    let capture = EventCapture::new();
    let findings = {
        let _guard = capture.set_default();
        insecure_everything().run(Profile::Development).unwrap()
    };
    assert_eq!(findings.len(), 6);
    assert!(capture.events().is_empty());
}
