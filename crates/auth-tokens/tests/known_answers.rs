//! Known-answer tests: the example tokens of RFC 7515 (Appendix A.1) and
//! RFC 7519 (§3.1, the same JWS) verify with the clock set inside their
//! validity. They predate `typ`/`kid`/`iss`/`aud` requirements, so this test
//! (and only this one) relaxes those checks explicitly.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_auth_tokens::{
    Algorithm, Keyring, ManualClock, Relaxations, SigningKey, TokenErrorKind, TokenPolicy,
    TokenType, TokenVerifier,
};
use secrecy::SecretSlice;

/// RFC 7515 A.1: the HMAC key of the example, as its JWK `k`.
const RFC7515_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
/// RFC 7515 A.1 / RFC 7519 §3.1: `{"typ":"JWT",\r\n "alg":"HS256"}` over
/// `{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}`.
const RFC7515_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const EXP: u64 = 1_300_819_380;

fn verifier(now: u64, relaxations: Relaxations) -> TokenVerifier<ManualClock> {
    let key = URL_SAFE_NO_PAD.decode(RFC7515_K).unwrap();
    let key = SigningKey::hmac("rfc7515", Algorithm::HS256, &SecretSlice::from(key)).unwrap();
    let ring = Keyring::new([key.clone()]).unwrap();
    TokenVerifier::with_clock(
        ring.clone(),
        ring,
        TokenPolicy::new("joe", "unused").unwrap(),
        ManualClock::from_unix_secs(now),
    )
    .relax(relaxations)
}

fn relaxed() -> Relaxations {
    Relaxations {
        skip_type_check_dangerously: true,
        allow_missing_kid_dangerously: true,
        skip_issuer_check_dangerously: true,
        skip_audience_check_dangerously: true,
    }
}

#[test]
fn rfc7515_a1_hs256_example_verifies() {
    let claims: serde_json::Value = verifier(EXP - 600, relaxed())
        .verify(RFC7515_TOKEN, TokenType::Access)
        .unwrap();
    assert_eq!(claims["iss"], "joe");
    assert_eq!(claims["exp"], EXP);
    assert_eq!(claims["http://example.com/is_root"], true);
}

#[test]
fn rfc7515_a1_example_is_refused_outside_its_validity_or_tampered() {
    // Expired (30 s of leeway).
    let late =
        verifier(EXP + 30, relaxed()).verify::<serde_json::Value>(RFC7515_TOKEN, TokenType::Access);
    assert_eq!(late.unwrap_err().kind(), TokenErrorKind::Expired);
    // One changed signature character.
    let tampered = RFC7515_TOKEN.replace("Xk", "Xl");
    let error = verifier(EXP - 600, relaxed())
        .verify::<serde_json::Value>(&tampered, TokenType::Access)
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::BadSignature);
}

#[test]
fn without_the_relaxations_the_example_is_refused() {
    // The default checks stay on: no kid, no typ at+jwt, no aud.
    let strict = verifier(EXP - 600, Relaxations::default());
    let error = strict
        .verify::<serde_json::Value>(RFC7515_TOKEN, TokenType::Access)
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::UnknownKey);
    let no_kid_only = verifier(
        EXP - 600,
        Relaxations {
            allow_missing_kid_dangerously: true,
            ..Relaxations::default()
        },
    );
    let error = no_kid_only
        .verify::<serde_json::Value>(RFC7515_TOKEN, TokenType::Access)
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::WrongType);
}
