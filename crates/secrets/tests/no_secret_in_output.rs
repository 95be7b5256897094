//! Renders the errors and `Debug` of every settings type and asserts that no
//! secret value appears; the crate's own log events carry none either.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_errors::testing::EventCapture;
use palisade_secrets::checks::{self, SecretRules};
use palisade_secrets::{
    EnvSettings, MapEnv, MountedDir, Profile, Redactor, SecretProvider, SecretSource, SecretString,
    StartupChecks, VersionedSecret, dotenv,
};

const SECRETS: &[&str] = &[
    "inline-Secret-Value-1",
    "previous-Secret-Value-2",
    "dotenv-Secret-Value-3",
    "db-Secret-Value-4",
];

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} appears in: {text}");
    }
}

#[test]
fn no_error_or_debug_output_holds_a_secret_value() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let mut rendered = Vec::new();

    let env = MapEnv::from_iter([
        ("PALISADE_ENV", "production"),
        ("PALISADE_API_SECRET", SECRETS[0]),
        ("PALISADE_API_SECRET_FILE", "/nonexistent"),
        ("PALISADE_API_SECRET_PREVIOUS", SECRETS[1]),
        ("PALISADE_DB_PASSWORD", SECRETS[3]),
        ("PALISADE_PORT", SECRETS[3]),
        ("PALISADE_DEBUG", SECRETS[0]),
    ]);
    rendered.push(format!("{env:?}"));

    let source = SecretSource::new(&env);
    rendered.push(format!("{source:?}"));
    rendered.push(format!("{:?}", source.get("PALISADE_API_SECRET")));
    let db = source.require("PALISADE_DB_PASSWORD").unwrap();
    rendered.push(format!("{db:?} {:?}", Some(&db)));
    rendered.push(serde_json::to_string(&db).unwrap());

    let versions = VersionedSecret::new(
        SecretString::from(SECRETS[0]),
        Some(SecretString::from(SECRETS[1])),
    );
    rendered.push(format!("{versions:?}"));

    let mut settings = EnvSettings::new(&env, "PALISADE_");
    let _: u16 = settings.get("PORT", 1);
    let _: bool = settings.get("DEBUG", false);
    let _ = settings.versioned_secret("API_SECRET");
    rendered.push(format!("{settings:?}"));
    let errors = settings.finish(()).unwrap_err();
    assert_eq!(errors.len(), 3);
    rendered.push(format!("{errors} {errors:?}"));
    rendered.push(palisade_errors::Error::from(errors).to_string());

    let dotenv_errors =
        dotenv::parse(&format!("A=\"{}\nB={}\nB=again\n", SECRETS[2], SECRETS[2])).unwrap_err();
    rendered.push(format!("{dotenv_errors} {dotenv_errors:?}"));
    let parsed = dotenv::parse(&format!("A={}\n", SECRETS[2])).unwrap();
    rendered.push(format!("{parsed:?}"));

    let weak = SecretString::from(SECRETS[3]);
    let checks = StartupChecks::new()
        .with(checks::secret_strength(
            "PALISADE_DB_PASSWORD",
            Some(&weak),
            SecretRules::min_len(64),
        ))
        .with(checks::distinct_secrets(
            ("PALISADE_A", Some(&weak)),
            ("PALISADE_B", Some(&weak)),
        ))
        .with(checks::redis_url(
            "PALISADE_REDIS_URL",
            Some(&SecretString::from(format!(
                "redis://:{}@cache/0",
                SECRETS[3]
            ))),
        ));
    rendered.push(format!("{checks:?} {:?}", checks.findings()));
    let refused = checks.run(Profile::Production).unwrap_err();
    rendered.push(format!("{refused} {refused:?}"));

    let redactor = Redactor::new().with_secret(&weak);
    rendered.push(format!("{redactor:?}"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api"), SECRETS[0]).unwrap();
    let mounted = MountedDir::new(dir.path());
    rendered.push(format!("{mounted:?} {:?}", mounted.versioned("api")));

    assert_no_secret(&rendered.join("\n"));
    for secret in SECRETS {
        capture.assert_absent(secret);
    }
    capture.assert_vocabulary();
}
