//! `PALISADE_ENV` parsing and `.env` files (development only).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_secrets::{ConfigErrorKind, EnvSource, Layered, MapEnv, Profile, dotenv};

fn profile_of(value: &str) -> Result<Profile, palisade_secrets::ConfigError> {
    Profile::from_env(&MapEnv::from_iter([("PALISADE_ENV", value)]))
}

#[test]
fn an_unset_or_empty_profile_is_development() {
    assert_eq!(
        Profile::from_env(&MapEnv::new()).unwrap(),
        Profile::Development
    );
    assert_eq!(profile_of("").unwrap(), Profile::Development);
}

#[test]
fn profile_names_and_short_forms_parse_case_insensitively() {
    for (value, profile) in [
        ("development", Profile::Development),
        ("dev", Profile::Development),
        ("Staging", Profile::Staging),
        ("PRODUCTION", Profile::Production),
        (" prod ", Profile::Production),
    ] {
        assert_eq!(profile_of(value).unwrap(), profile, "{value}");
    }
}

#[test]
fn a_misspelt_profile_is_an_error_not_a_silent_development() {
    let error = profile_of("prodution").unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::UnknownProfile);
    assert_eq!(error.variable(), "PALISADE_ENV");
}

#[test]
fn dotenv_reads_the_common_subset() {
    let text = "\u{feff}# comment\n\nexport A=1\nB = two words # note\nC='single #kept'\nD=\"line\\nnext \\\"q\\\" \\$HOME\"\nE=\nF=x#y\r\n";
    let env = dotenv::parse(text).unwrap();
    assert_eq!(env.var("A").as_deref(), Some("1"));
    assert_eq!(env.var("B").as_deref(), Some("two words"));
    assert_eq!(env.var("C").as_deref(), Some("single #kept"));
    assert_eq!(env.var("D").as_deref(), Some("line\nnext \"q\" $HOME"));
    assert_eq!(env.var("E").as_deref(), Some(""));
    assert_eq!(env.var("F").as_deref(), Some("x#y"));
}

#[test]
fn dotenv_does_not_expand_variables() {
    let env = dotenv::parse("HOME=/root\nA=${HOME}\nB=\"$HOME\"\n").unwrap();
    assert_eq!(env.var("A").as_deref(), Some("${HOME}"));
    assert_eq!(env.var("B").as_deref(), Some("$HOME"));
}

#[test]
fn dotenv_reports_every_bad_line_without_its_value() {
    let errors =
        dotenv::parse("GOOD=1\nnot a line\n1BAD=x\nQ=\"open-secret-value\nK=a\nK=b\n").unwrap_err();
    let variables: Vec<&str> = errors.errors().iter().map(|e| e.variable()).collect();
    assert_eq!(
        variables,
        [".env line 2", ".env line 3", ".env line 4", ".env line 6"]
    );
    assert!(
        errors
            .errors()
            .iter()
            .all(|e| e.kind() == ConfigErrorKind::DotenvSyntax)
    );
    assert!(!errors.to_string().contains("open-secret-value"));
}

#[test]
fn dotenv_quote_round_trips() {
    let value = "a\"b\\c$d\ne\tf #g 'h'";
    let env = dotenv::parse(&format!("K={}", dotenv::quote(value))).unwrap();
    assert_eq!(env.var("K").as_deref(), Some(value));
}

#[test]
fn a_dotenv_file_is_refused_outside_development() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, "PALISADE_DB_PASSWORD=from-dotenv\n").unwrap();
    for profile in [Profile::Staging, Profile::Production] {
        let errors = dotenv::load(profile, &path).unwrap_err();
        assert_eq!(
            errors.errors()[0].kind(),
            ConfigErrorKind::DotenvOutsideDevelopment
        );
        assert!(!errors.to_string().contains("from-dotenv"));
    }
    let env = dotenv::load(Profile::Development, &path).unwrap().unwrap();
    assert_eq!(
        env.var("PALISADE_DB_PASSWORD").as_deref(),
        Some("from-dotenv")
    );
}

#[test]
fn a_missing_dotenv_file_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    assert!(dotenv::load(Profile::Development, &path).unwrap().is_none());
    assert!(dotenv::load(Profile::Production, &path).unwrap().is_none());
}

#[test]
fn the_process_environment_wins_over_the_dotenv_file() {
    let file = dotenv::parse("A=file\nB=file\n").unwrap();
    let process = MapEnv::from_iter([("A", "process")]);
    let env = Layered::new(process, file);
    assert_eq!(env.var("A").as_deref(), Some("process"));
    assert_eq!(env.var("B").as_deref(), Some("file"));
}
