//! Interop with PyJWT, the reference Python implementation: tokens issued
//! here verify there (same secret, `typ`, `aud` and `iss` checked), and
//! PyJWT tokens with the right headers and claims verify here.
//!
//! `cargo xtask ci` provides a venv with PyJWT (`PALISADE_PYTHON`). Without
//! it the tests skip, except under `CI=true`, where they fail.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report; skips say why

use std::process::Command;

use palisade_auth_tokens::{
    Algorithm, Claims, Grant, Keyring, NoCustomClaims, SigningKey, SystemClock, TokenErrorKind,
    TokenIssuer, TokenPolicy, TokenVerifier,
};
use secrecy::SecretSlice;

const SECRET: &str = "k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const ISSUER: &str = "https://auth.example.com";

fn python() -> Option<String> {
    let python = std::env::var("PALISADE_PYTHON")
        .ok()
        .filter(|path| !path.is_empty());
    let works = python.as_ref().is_some_and(|python| {
        Command::new(python)
            .args(["-c", "import jwt"])
            .status()
            .is_ok_and(|status| status.success())
    });
    if works {
        return python;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "PyJWT is required under CI=true (cargo xtask ci sets PALISADE_PYTHON)"
    );
    eprintln!("skipping: no PALISADE_PYTHON with PyJWT");
    None
}

fn run_python(python: &str, script: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn keyring() -> Keyring {
    Keyring::new([SigningKey::hmac(
        "a1",
        Algorithm::HS256,
        &SecretSlice::from(SECRET.as_bytes().to_vec()),
    )
    .unwrap()])
    .unwrap()
}

fn refresh() -> Keyring {
    Keyring::new([SigningKey::hmac(
        "r1",
        Algorithm::HS256,
        &SecretSlice::from(b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa".to_vec()),
    )
    .unwrap()])
    .unwrap()
}

const PYJWT_VERIFY: &str = r#"
import sys, jwt
token, secret, issuer = sys.argv[1], sys.argv[2], sys.argv[3]
header = jwt.get_unverified_header(token)
assert header["typ"] == "at+jwt", header
assert header["kid"] == "a1", header
claims = jwt.decode(token, secret, algorithms=["HS256"], audience="api", issuer=issuer,
                    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
print(claims["sub"], claims["type"], claims["role"])
"#;

const PYJWT_ISSUE: &str = r#"
import sys, time, jwt, uuid
secret, issuer, typ, token_type = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
now = int(time.time())
claims = {"sub": "user-7", "jti": uuid.uuid4().hex, "iat": now, "nbf": now, "exp": now + 300,
          "iss": issuer, "aud": ["api"], "type": token_type, "role": "moderator",
          "scope": "reports:read"}
print(jwt.encode(claims, secret, algorithm="HS256", headers={"typ": typ, "kid": "a1"}))
"#;

#[test]
fn tokens_issued_here_verify_with_pyjwt() {
    let Some(python) = python() else { return };
    let issuer = TokenIssuer::new(
        keyring(),
        refresh(),
        TokenPolicy::new(ISSUER, "api").unwrap(),
    );
    let grant = Grant {
        subject: "user-42".into(),
        role: Some(palisade_auth_tokens::authz::Role::admin()),
        ..Grant::default()
    };
    let token = issuer.issue_access(&grant, NoCustomClaims {}).unwrap();
    let out = run_python(&python, PYJWT_VERIFY, &[&token.token, SECRET, ISSUER]).unwrap();
    assert_eq!(out, "user-42 access admin");
    // PyJWT refuses it under another secret or issuer too: the checks are real.
    assert!(
        run_python(
            &python,
            PYJWT_VERIFY,
            &[&token.token, "another-secret-of-32-bytes-long!", ISSUER]
        )
        .is_err()
    );
    assert!(
        run_python(
            &python,
            PYJWT_VERIFY,
            &[&token.token, SECRET, "https://evil.example"]
        )
        .is_err()
    );
}

#[test]
fn pyjwt_tokens_with_the_right_headers_verify_here() {
    let Some(python) = python() else { return };
    let verifier = TokenVerifier::with_clock(
        keyring(),
        refresh(),
        TokenPolicy::new(ISSUER, "api").unwrap(),
        SystemClock,
    );
    let token = run_python(&python, PYJWT_ISSUE, &[SECRET, ISSUER, "at+jwt", "access"]).unwrap();
    let claims: Claims = verifier.verify_access(&token).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.role.as_deref()),
        ("user-7", Some("moderator"))
    );
    assert_eq!(claims.scope.as_deref(), Some("reports:read"));
    // PyJWT's default `typ: JWT` is not an access token.
    let plain = run_python(&python, PYJWT_ISSUE, &[SECRET, ISSUER, "JWT", "access"]).unwrap();
    assert_eq!(
        verifier
            .verify_access::<NoCustomClaims>(&plain)
            .unwrap_err()
            .kind(),
        TokenErrorKind::WrongType
    );
}
