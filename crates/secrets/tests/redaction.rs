//! Log redaction: a log line with a JWT, a Bearer header, an API key and a
//! password field comes out without any of them, through the formatter a
//! service installs.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use http::{HeaderMap, HeaderValue};
use palisade_secrets::{REDACTED, Redactor, SecretString};

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const BEARER_TOKEN: &str = "opaque-Tok3n.value_123";
const API_KEY: &str = "pal_live_7Hq2Xw9Lm4Rt8Zp3Vb6N";
const PASSWORD: &str = "hunter2-correct-horse";
const REGISTERED: &str = "db-conn-S3cr3tV4lue";

fn attack_line() -> String {
    format!(
        "request from 203.0.113.9 id_token={JWT} Authorization: Bearer {BEARER_TOKEN} \
         key {API_KEY} password=\"{PASSWORD}\" db {REGISTERED} user=ann"
    )
}

fn redactor() -> Redactor {
    Redactor::new().with_secret(&SecretString::from(REGISTERED))
}

fn assert_clean(text: &str) {
    for secret in [JWT, BEARER_TOKEN, API_KEY, PASSWORD, REGISTERED] {
        assert!(!text.contains(secret), "{secret} survived in {text}");
    }
}

#[test]
fn a_jwt_a_bearer_header_an_api_key_and_a_password_field_are_redacted() {
    let clean = redactor().redact(&attack_line()).into_owned();
    assert_clean(&clean);
    assert!(clean.contains("Authorization: [REDACTED] key"), "{clean}");
    assert!(clean.contains("id_token=[REDACTED] "), "{clean}");
    let free = Redactor::new()
        .redact(&format!("sent Bearer {BEARER_TOKEN} upstream"))
        .into_owned();
    assert_eq!(free, "sent Bearer [REDACTED] upstream");
    assert!(
        clean.contains("user=ann"),
        "ordinary fields survive: {clean}"
    );
    assert!(clean.contains("203.0.113.9"));
}

#[test]
fn field_names_match_inside_longer_names_and_in_json() {
    let r = Redactor::new();
    let clean = r.redact(r#"{"db_password":"p@ss w0rd","refresh_token":"abc123","user":"ann"}"#);
    assert!(
        !clean.contains("p@ss w0rd") && !clean.contains("abc123"),
        "{clean}"
    );
    assert!(clean.contains(r#""user":"ann""#));
    let clean = r.redact("x-api-key: k-123456 client_secret='quoted value' session=s1&next=/home");
    assert!(
        !clean.contains("k-123456") && !clean.contains("quoted value") && !clean.contains("s1&"),
        "{clean}"
    );
    assert!(clean.contains("next=/home"));
}

/// Attack on availability of the audit trail: a module path that holds a
/// sensitive name (`palisade_secrets::dev`, `my_app::password_reset`) read
/// as `secrets: value` cut the log line, so a service had to drop the
/// target. A path is not a key; a real field next to it still is.
#[test]
fn module_paths_are_not_fields_but_real_fields_still_are() {
    let r = Redactor::new();
    for line in [
        r#"{"target":"palisade_secrets::dev","level":"INFO"}"#,
        r#"{"target":"my_app::password_reset","span":{"name":"token_refresh::run"}}"#,
        "INFO palisade_secrets::dev: generated a development secret",
        "INFO my_app::password_reset: reset requested for user 7",
        "INFO my_app::session::store: swept 3 entries",
    ] {
        assert_eq!(r.redact(line), line, "a module path was redacted");
    }
    let clean = r.redact(
        "INFO my_app::password_reset: password: hunter2 user:password=pw-1 db_password=pw-2 \
         my_app::secrets=pw-3",
    );
    for secret in ["hunter2", "pw-1", "pw-2", "pw-3"] {
        assert!(!clean.contains(secret), "{secret} survived in {clean}");
    }
    assert!(
        clean.contains("my_app::password_reset: password: [REDACTED]"),
        "{clean}"
    );
}

#[test]
fn configured_field_names_and_patterns_are_redacted() {
    let r = Redactor::with_names(["ssn"])
        .with_field_name("pin")
        .with_pattern(regex::Regex::new(r"\bINT-[0-9]{6}\b").unwrap());
    let clean = r.redact("ssn=123-45-6789 pin: 0000 ref INT-123456 password=visible");
    assert!(
        !clean.contains("123-45-6789") && !clean.contains("0000") && !clean.contains("INT-123456"),
        "{clean}"
    );
    assert!(
        clean.contains("password=visible"),
        "only the configured names: {clean}"
    );
}

#[test]
fn a_line_without_secrets_is_unchanged_and_not_copied() {
    for line in [
        "GET /health 200 in 3ms user=ann",
        "basic authentication is disabled; the bearer scheme is used",
    ] {
        assert!(
            matches!(Redactor::new().redact(line), std::borrow::Cow::Borrowed(_)),
            "{line}"
        );
    }
}

#[test]
fn sensitive_headers_are_hidden_when_a_header_map_is_logged() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {JWT}")).unwrap(),
    );
    headers.insert(
        "cookie",
        HeaderValue::from_static("__Host-refresh=r3fr3sh-value"),
    );
    headers.insert("x-api-key", HeaderValue::from_static(API_KEY));
    headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    headers.insert(
        "x-debug",
        HeaderValue::from_str(&format!("forwarded Bearer {BEARER_TOKEN}")).unwrap(),
    );
    let r = Redactor::new();
    let view = r.headers(&headers);
    for text in [format!("{view}"), format!("{view:?}")] {
        assert_clean(&text);
        assert!(!text.contains("r3fr3sh-value"), "{text}");
        assert!(text.contains("203.0.113.9"));
        assert!(text.contains(REDACTED));
    }
}

/// The output of the formatter a service installs, captured.
#[cfg(feature = "tracing-subscriber")]
mod formatted {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use palisade_secrets::{REDACTED, RedactingMakeWriter};

    use super::*;

    /// A `MakeWriter` into a shared buffer: the captured output of the
    /// formatter a service installs.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn every_formatted_log_line_is_redacted() {
        for with_target in [false, true] {
            let buffer = Buffer::default();
            let writer = RedactingMakeWriter::new(buffer.clone(), redactor());
            let subscriber = tracing_subscriber::fmt()
                .with_writer(writer)
                .with_ansi(false)
                .with_target(with_target)
                .finish();
            let dispatch = tracing::Dispatch::new(subscriber);
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(
                    password = PASSWORD,
                    api_key = API_KEY,
                    user = "ann",
                    "login"
                );
                tracing::warn!("{}", attack_line());
                tracing::error!(authorization = %format!("Bearer {BEARER_TOKEN}"), token = JWT, "refused");
                tracing::info!(db = REGISTERED, "connected");
            });
            let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert_eq!(output.lines().count(), 4, "{output}");
            assert_clean(&output);
            assert!(output.contains("ann"), "{output}");
            assert!(output.contains(REDACTED));
        }
    }

    /// Attack: a log line cut by the redactor — `"target":"palisade_secrets::dev"`
    /// read as `secrets: value` — is no longer JSON, so the log pipeline drops
    /// it (and a service turned its targets off). The JSON lines of events
    /// from modules whose paths hold sensitive names parse, keep their
    /// target, and still lose the password in a field or in the message.
    #[test]
    fn json_lines_from_sensitive_module_paths_stay_json_and_keep_their_target() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_target(true)
            .with_writer(RedactingMakeWriter::new(buffer.clone(), redactor()))
            .finish();
        let dispatch = tracing::Dispatch::new(subscriber);
        let targets = [
            "palisade_secrets::dev",
            "my_app::password_reset",
            "my_app::api_token::refresh",
        ];
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(target: "palisade_secrets::dev", user = "ann", "generated");
            tracing::info!(target: "my_app::password_reset", password = "hunter2", "reset");
            tracing::warn!(target: "my_app::api_token::refresh", "password: hunter2 refused");
        });
        let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(output.lines().count(), 3, "{output}");
        for (line, target) in output.lines().zip(targets) {
            let json: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
            assert_eq!(json["target"], target, "{line}");
        }
        assert!(!output.contains("hunter2"), "{output}");
        assert!(output.contains(r#""password":"[REDACTED]""#), "{output}");
        assert!(output.contains("password: [REDACTED]"), "{output}");
        assert!(output.contains(r#""user":"ann""#), "{output}");
    }
}
