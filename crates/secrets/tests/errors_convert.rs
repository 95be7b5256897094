//! Every public error of the crate converts into the envelope with `?`, with
//! a fixed status (CONTRIBUTING.md, "Errors").

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::error::Error as _;

use palisade_errors::{Error, ErrorKind};
use palisade_secrets::checks;
use palisade_secrets::{
    ConfigErrorKind, EnvSettings, MapEnv, Profile, SecretSource, SecretString, StartupChecks,
};

fn assert_converted(error: &Error) {
    assert_eq!(error.kind(), ErrorKind::Internal, "{error:?}");
    assert_eq!(error.status(), 500);
    assert!(
        error.source().is_some(),
        "the core error is kept as the source"
    );
    // The envelope's body is the fixed message, never the configuration.
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(!body.contains("PALISADE_"), "{body}");
}

fn one_error() -> Result<SecretString, Error> {
    Ok(SecretSource::new(MapEnv::new()).require("PALISADE_JWT_SECRET")?)
}

fn every_error() -> Result<u16, Error> {
    let env = MapEnv::from_iter([("PALISADE_PORT", "x")]);
    let mut s = EnvSettings::new(&env, "PALISADE_");
    let port = s.get("PORT", 8080);
    Ok(s.finish(port)?)
}

fn startup_refused() -> Result<(), Error> {
    StartupChecks::new()
        .with(checks::debug_off("PALISADE_DEBUG", true))
        .run(Profile::Production)?;
    Ok(())
}

#[test]
fn configuration_errors_are_500s() {
    let typed = SecretSource::new(MapEnv::new())
        .require("PALISADE_JWT_SECRET")
        .unwrap_err();
    assert_eq!(typed.kind(), ConfigErrorKind::Missing);
    assert_converted(&one_error().unwrap_err());
    assert_converted(&every_error().unwrap_err());
    assert_converted(&startup_refused().unwrap_err());
}
