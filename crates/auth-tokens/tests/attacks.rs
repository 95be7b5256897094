//! The attack suite: each test names the attack on JWT verification it
//! stops. Tokens are forged by hand (header and payload JSON signed with
//! `jsonwebtoken::crypto::sign`), so every check is reached on its own.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use palisade_auth_tokens::{
    Algorithm, Claims, Grant, KeyStatus, Keyring, ManualClock, NoCustomClaims, SigningKey,
    TokenErrorKind, TokenIssuer, TokenPolicy, TokenType, TokenVerifier,
};
use secrecy::SecretSlice;
use serde_json::json;

const NOW: u64 = 1_800_000_000;
const ACCESS_SECRET: &[u8] = b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const REFRESH_SECRET: &[u8] = b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa";
const ED_PRIVATE: &[u8] = include_bytes!("keys/ed25519-private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("keys/ed25519-public.pem");
const ES_PRIVATE: &[u8] = include_bytes!("keys/es256-private.pem");
const ES_PUBLIC: &[u8] = include_bytes!("keys/es256-public.pem");
const RS_PRIVATE: &[u8] = include_bytes!("keys/rs256-private.pem");
const RS_PUBLIC: &[u8] = include_bytes!("keys/rs256-public.pem");

fn secret(bytes: &[u8]) -> SecretSlice<u8> {
    SecretSlice::from(bytes.to_vec())
}

fn hmac(kid: &str, bytes: &[u8]) -> SigningKey {
    SigningKey::hmac(kid, Algorithm::HS256, &secret(bytes)).unwrap()
}

fn access_ring() -> Keyring {
    Keyring::new([
        hmac("a1", ACCESS_SECRET),
        SigningKey::from_pem("rsa", Algorithm::RS256, None, RS_PUBLIC).unwrap(),
        SigningKey::from_pem("ed", Algorithm::EdDSA, None, ED_PUBLIC).unwrap(),
    ])
    .unwrap()
}

fn refresh_ring() -> Keyring {
    Keyring::new([hmac("r1", REFRESH_SECRET)]).unwrap()
}

fn policy() -> TokenPolicy {
    TokenPolicy::new("https://auth.example.com", "api")
}

fn clock() -> ManualClock {
    ManualClock::from_unix_secs(NOW)
}

fn verifier() -> TokenVerifier<ManualClock> {
    TokenVerifier::with_clock(access_ring(), refresh_ring(), policy(), clock())
}

fn issuer() -> TokenIssuer<ManualClock> {
    TokenIssuer::with_clock(access_ring(), refresh_ring(), policy(), clock())
}

fn grant() -> Grant {
    Grant {
        subject: "user-42".into(),
        session: Some("s1".into()),
        role: Some("user".into()),
        permissions: vec!["posts:read".into()],
        scope: Some("reports:read profile".into()),
    }
}

fn valid_claims() -> serde_json::Value {
    json!({
        "sub": "user-42", "jti": "j1", "sid": "s1", "iat": NOW, "nbf": NOW, "exp": NOW + 600,
        "iss": "https://auth.example.com", "aud": "api", "type": "access", "role": "user"
    })
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

/// A compact JWS of exactly this header and payload, signed with `key`.
fn forge(
    header: serde_json::Value,
    payload: serde_json::Value,
    key: &EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> String {
    let message = format!("{}.{}", b64(&header), b64(&payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn access_key() -> EncodingKey {
    EncodingKey::from_secret(ACCESS_SECRET)
}

fn forge_access(payload: serde_json::Value) -> String {
    forge(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"}),
        payload,
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    )
}

fn refused(token: &str) -> TokenErrorKind {
    verifier()
        .verify_access::<NoCustomClaims>(token)
        .unwrap_err()
        .kind()
}

#[test]
fn issued_tokens_verify_with_every_claim() {
    let issued = issuer().issue_access(&grant(), NoCustomClaims {}).unwrap();
    let claims: Claims = verifier().verify_access(&issued.token).unwrap();
    assert_eq!(claims.sub, "user-42");
    assert_eq!(claims.jti, issued.jti);
    assert_eq!(claims.jti.len(), 22, "128 random bits, base64url");
    assert_eq!((claims.iat, claims.nbf, claims.exp), (NOW, NOW, NOW + 1800));
    assert_eq!(claims.aud, ["api"]);
    assert_eq!(claims.token_type, TokenType::Access);
    assert_eq!(claims.scope.as_deref(), Some("reports:read profile"));
    assert_ne!(
        issuer()
            .issue_access(&grant(), NoCustomClaims {})
            .unwrap()
            .jti,
        issued.jti
    );
    // The forged baseline passes too, so every refusal below is its check's.
    assert!(
        verifier()
            .verify_access::<NoCustomClaims>(&forge_access(valid_claims()))
            .is_ok()
    );
}

#[test]
fn alg_none_in_every_casing_is_refused() {
    for alg in ["none", "None", "NONE", "nOnE", "hs256", "HS256 "] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "a1"});
        let payload = b64(&valid_claims());
        // Unsigned, as `none` tokens are: refused before anything else.
        let unsigned = format!("{}.{payload}.", b64(&header));
        assert_eq!(refused(&unsigned), TokenErrorKind::BadSignature, "{alg}");
        // Even carrying a valid HS256 signature of the key, the algorithm
        // is not the key's, so it is refused for that.
        let signed = forge(
            header,
            valid_claims(),
            &access_key(),
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(
            refused(&signed),
            TokenErrorKind::UnsupportedAlgorithm,
            "{alg}"
        );
    }
}

#[test]
fn stripped_signature_is_refused() {
    let token = forge_access(valid_claims());
    let (unsigned, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        refused(&format!("{unsigned}.")),
        TokenErrorKind::BadSignature
    );
    assert_eq!(refused(unsigned), TokenErrorKind::Malformed);
}

#[test]
fn signature_of_another_key_is_refused() {
    let token = forge(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"}),
        valid_claims(),
        &EncodingKey::from_secret(b"Zq3Wm8Rt1Yp6Lk4Nc9Vb2Hx7Jd5Fs0Ga"),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(refused(&token), TokenErrorKind::BadSignature);
    // A refresh secret does not sign access tokens either.
    let token = forge(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"}),
        valid_claims(),
        &EncodingKey::from_secret(REFRESH_SECRET),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(refused(&token), TokenErrorKind::BadSignature);
}

#[test]
fn hs256_signed_with_a_public_key_is_refused() {
    // Algorithm confusion: the RSA/Ed25519 public key is public; a verifier
    // that let the token pick HS256 would check an HMAC keyed with it.
    for (kid, public) in [("rsa", RS_PUBLIC), ("ed", ED_PUBLIC)] {
        let token = forge(
            json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            valid_claims(),
            &EncodingKey::from_secret(public),
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(refused(&token), TokenErrorKind::AlgorithmMismatch, "{kid}");
    }
}

#[test]
fn algorithms_outside_the_key_are_refused() {
    for alg in ["HS512", "RS256", "ES256"] {
        let header = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": "a1"}));
        let token = format!("{header}.{}.c2ln", b64(&valid_claims()));
        assert_eq!(refused(&token), TokenErrorKind::AlgorithmMismatch, "{alg}");
    }
    for alg in ["PS256", "HS1", "", "RS256 "] {
        let header = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": "a1"}));
        let token = format!("{header}.{}.c2ln", b64(&valid_claims()));
        assert_eq!(
            refused(&token),
            TokenErrorKind::UnsupportedAlgorithm,
            "{alg:?}"
        );
    }
}

#[test]
fn short_and_known_weak_secrets_are_refused_at_build() {
    let short = SigningKey::hmac(
        "k",
        Algorithm::HS256,
        &secret(b"only-31-bytes-long-secret-value"),
    )
    .unwrap_err();
    assert!(short.to_string().contains("at least 32 bytes"), "{short}");
    assert!(
        SigningKey::hmac("k", Algorithm::HS384, &secret(ACCESS_SECRET)).is_err(),
        "HS384 needs 48"
    );
    assert!(SigningKey::hmac("k", Algorithm::HS512, &secret(&[7; 64])).is_err());
    for weak in [
        b"secretsecretsecretsecretsecretse".to_vec(),
        b"changemechangemechangemechangeme".to_vec(),
        b"your-256-bit-secretyour-256-bit-".to_vec(),
        vec![0u8; 32],
        b"abababababababababababababababab".to_vec(),
    ] {
        let error = SigningKey::hmac("k", Algorithm::HS256, &secret(&weak)).unwrap_err();
        // The message says why; it never shows the value.
        assert!(!error.to_string().contains("secretsecret"), "{error}");
        assert!(!error.to_string().contains("changeme"), "{error}");
    }
    assert!(SigningKey::hmac("k", Algorithm::RS256, &secret(ACCESS_SECRET)).is_err());
}

#[test]
fn embedded_jwk_and_jku_are_never_trusted() {
    // The attacker signs with its own key and ships that key in the header.
    let attacker = b"Pw7Ly2Kq9Xt4Bn6Mv1Hc3Jf8Dg5Sa0Zr";
    let jwk = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(attacker)});
    for extra in [
        json!({"jwk": jwk}),
        json!({"jku": "https://evil.example/keys.json"}),
        json!({"x5u": "https://evil.example/cert"}),
    ] {
        let mut header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"});
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let token = forge(
            header,
            valid_claims(),
            &EncodingKey::from_secret(attacker),
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(refused(&token), TokenErrorKind::BadSignature);
    }
}

#[test]
fn hostile_or_unknown_kid_is_refused() {
    for kid in [
        "../../../../dev/null",
        "1' OR '1'='1",
        "a1 ",
        "A1",
        "unknown",
        "",
    ] {
        let token = forge(
            json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            valid_claims(),
            &access_key(),
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(refused(&token), TokenErrorKind::UnknownKey, "{kid:?}");
    }
    let no_kid = forge(
        json!({"alg": "HS256", "typ": "at+jwt"}),
        valid_claims(),
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(refused(&no_kid), TokenErrorKind::UnknownKey);
    let kid_not_string = forge(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": 1}),
        valid_claims(),
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(refused(&kid_not_string), TokenErrorKind::Malformed);
}

#[test]
fn retired_keys_verify_nothing_and_verify_only_keys_still_do() {
    let old = hmac("old", b"Mq4Nw9Ry2Tz7Lp1Xk6Bv3Cj8Hd5Fg0Sa");
    let token = forge(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "old"}),
        valid_claims(),
        &EncodingKey::from_secret(b"Mq4Nw9Ry2Tz7Lp1Xk6Bv3Cj8Hd5Fg0Sa"),
        jsonwebtoken::Algorithm::HS256,
    );
    for (status, ok) in [(KeyStatus::VerifyOnly, true), (KeyStatus::Retired, false)] {
        let ring =
            Keyring::new([hmac("a1", ACCESS_SECRET), old.clone().with_status(status)]).unwrap();
        let verifier = TokenVerifier::with_clock(ring, refresh_ring(), policy(), clock());
        assert_eq!(
            verifier.verify_access::<NoCustomClaims>(&token).is_ok(),
            ok,
            "{status:?}"
        );
    }
    assert!(
        Keyring::new([hmac("a", ACCESS_SECRET), hmac("a", REFRESH_SECRET)]).is_err(),
        "duplicate kid"
    );
    assert!(
        Keyring::new([hmac("a", ACCESS_SECRET), hmac("b", REFRESH_SECRET)]).is_err(),
        "two active keys"
    );
}

#[test]
fn crit_is_refused_whatever_its_value() {
    for crit in [json!(null), json!([]), json!("exp")] {
        let token = forge(
            json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1", "crit": crit}),
            valid_claims(),
            &access_key(),
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(
            refused(&token),
            TokenErrorKind::UnsupportedCritical,
            "{crit}"
        );
    }
    let duplicate_alg = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","alg":"HS256","typ":"at+jwt","kid":"a1"}"#),
        b64(&valid_claims())
    );
    assert_eq!(
        refused(&duplicate_alg),
        TokenErrorKind::Malformed,
        "duplicate header keys"
    );
}

#[test]
fn unknown_crit_extension_is_refused() {
    let token = forge(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1", "crit": ["exp"], "exp": 1}),
        valid_claims(),
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(refused(&token), TokenErrorKind::UnsupportedCritical);
}

#[test]
fn refresh_as_access_and_access_as_refresh_are_refused() {
    let issuer = issuer();
    let verifier = verifier();
    let refresh = issuer.issue_refresh("user-42", "s1").unwrap();
    let access = issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
    assert!(verifier.verify_refresh(&refresh.token).is_ok());
    assert_eq!(
        verifier
            .verify_access::<NoCustomClaims>(&refresh.token)
            .unwrap_err()
            .kind(),
        TokenErrorKind::UnknownKey
    );
    assert_eq!(
        verifier.verify_refresh(&access.token).unwrap_err().kind(),
        TokenErrorKind::UnknownKey
    );

    // Even with one keyring for both, the typ header and the type claim
    // keep them apart.
    let shared = TokenVerifier::with_clock(access_ring(), access_ring(), policy(), clock());
    let mut claims = valid_claims();
    claims["type"] = json!("refresh");
    let refresh_typ = forge(
        json!({"alg": "HS256", "typ": "rt+jwt", "kid": "a1"}),
        claims.clone(),
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(
        shared
            .verify_access::<NoCustomClaims>(&refresh_typ)
            .unwrap_err()
            .kind(),
        TokenErrorKind::WrongType
    );
    let access_typ_refresh_claim = forge_access(claims);
    assert_eq!(
        shared
            .verify_access::<NoCustomClaims>(&access_typ_refresh_claim)
            .unwrap_err()
            .kind(),
        TokenErrorKind::WrongType
    );
    for typ in ["AT+JWT", "application/at+jwt", "Application/AT+jwt"] {
        let token = forge(
            json!({"alg": "HS256", "typ": typ, "kid": "a1"}),
            valid_claims(),
            &access_key(),
            jsonwebtoken::Algorithm::HS256,
        );
        assert!(
            shared.verify_access::<NoCustomClaims>(&token).is_ok(),
            "{typ}"
        );
    }
    for typ in [json!("JWT"), json!(null), json!("at+jwt2")] {
        let token = forge(
            json!({"alg": "HS256", "typ": typ, "kid": "a1"}),
            valid_claims(),
            &access_key(),
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(
            shared
                .verify_access::<NoCustomClaims>(&token)
                .unwrap_err()
                .kind(),
            TokenErrorKind::WrongType,
            "{typ}"
        );
    }
}

#[test]
fn expired_not_yet_valid_and_future_issued_tokens_are_refused() {
    let with = |field: &str, value: serde_json::Value| {
        let mut claims = valid_claims();
        claims[field] = value;
        forge_access(claims)
    };
    // 30 s of leeway either side, and no more.
    assert!(
        verifier()
            .verify_access::<NoCustomClaims>(&with("exp", json!(NOW - 29)))
            .is_ok()
    );
    assert_eq!(
        refused(&with("exp", json!(NOW - 30))),
        TokenErrorKind::Expired
    );
    assert_eq!(
        refused(&with("nbf", json!(NOW + 31))),
        TokenErrorKind::NotYetValid
    );
    assert!(
        verifier()
            .verify_access::<NoCustomClaims>(&with("nbf", json!(NOW + 30)))
            .is_ok()
    );
    assert_eq!(
        refused(&with("iat", json!(NOW + 3600))),
        TokenErrorKind::IssuedInFuture
    );
    let mut no_exp = valid_claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        refused(&forge_access(no_exp)),
        TokenErrorKind::InvalidClaims
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let with = |field: &str, value: serde_json::Value| {
        let mut claims = valid_claims();
        claims[field] = value;
        forge_access(claims)
    };
    assert_eq!(
        refused(&with("iss", json!("https://evil.example.com"))),
        TokenErrorKind::WrongIssuer
    );
    assert_eq!(
        refused(&with("aud", json!("other-api"))),
        TokenErrorKind::WrongAudience
    );
    assert_eq!(
        refused(&with("aud", json!([]))),
        TokenErrorKind::WrongAudience
    );
    assert!(
        verifier()
            .verify_access::<NoCustomClaims>(&with("aud", json!(["other", "api"])))
            .is_ok()
    );
    let mut no_iss = valid_claims();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert_eq!(refused(&forge_access(no_iss)), TokenErrorKind::WrongIssuer);
}

#[test]
fn claims_of_the_wrong_json_type_are_refused() {
    for (field, value) in [
        ("exp", json!("1800000600")),
        ("exp", json!(-1)),
        ("exp", json!(1.5e9)),
        ("sub", json!({"id": "admin"})),
        ("aud", json!(42)),
        ("nbf", json!(true)),
        ("type", json!("admin")),
        ("permissions", json!("posts:delete")),
    ] {
        let mut claims = valid_claims();
        claims[field] = value.clone();
        assert_eq!(
            refused(&forge_access(claims)),
            TokenErrorKind::InvalidClaims,
            "{field}: {value}"
        );
    }
}

#[test]
fn oversized_and_malformed_tokens_are_refused_before_decoding() {
    let huge = format!(
        "{}.{}.{}",
        "a".repeat(4000),
        "b".repeat(4000),
        "c".repeat(300)
    );
    assert_eq!(refused(&huge), TokenErrorKind::TooLarge);
    for token in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "!!!.???.***",
        "e30.e30.e30.e30",
    ] {
        let kind = refused(token);
        assert!(
            matches!(
                kind,
                TokenErrorKind::Malformed | TokenErrorKind::BadSignature
            ),
            "{token:?}: {kind:?}"
        );
    }
    let not_json = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(b"not json"),
        b64(&valid_claims())
    );
    assert_eq!(refused(&not_json), TokenErrorKind::Malformed);
    let header = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"}));
    let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(b"{not json"));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(
        refused(&format!("{message}.{signature}")),
        TokenErrorKind::InvalidClaims
    );
}

#[test]
fn every_refusal_is_one_indistinct_401_challenge() {
    let error = verifier()
        .verify_access::<NoCustomClaims>("a.b.c")
        .unwrap_err()
        .to_error("api");
    assert_eq!(error.status(), 401);
    assert_eq!(
        error.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(
        !body.contains("Malformed") && !body.contains("signature"),
        "{body}"
    );
}

#[test]
fn asymmetric_keys_sign_and_verify() {
    for (alg, private, public) in [
        (Algorithm::EdDSA, ED_PRIVATE, ED_PUBLIC),
        (Algorithm::ES256, ES_PRIVATE, ES_PUBLIC),
        (Algorithm::RS256, RS_PRIVATE, RS_PUBLIC),
    ] {
        let signing = SigningKey::from_pem("k", alg, Some(&secret(private)), public).unwrap();
        let verifying = SigningKey::from_pem("k", alg, None, public).unwrap();
        assert_eq!(verifying.status(), KeyStatus::VerifyOnly);
        let issuer = TokenIssuer::with_clock(
            Keyring::new([signing]).unwrap(),
            refresh_ring(),
            policy(),
            clock(),
        );
        let verifier = TokenVerifier::with_clock(
            Keyring::new([verifying]).unwrap(),
            refresh_ring(),
            policy(),
            clock(),
        );
        let token = issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
        let claims: Claims = verifier.verify_access(&token.token).unwrap();
        assert_eq!(claims.sub, "user-42", "{alg:?}");
        assert!(
            SigningKey::from_pem(
                "k",
                alg,
                None,
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            )
            .is_err()
        );
    }
}

mod revocation {
    use palisade_auth_tokens::revocation::{
        MemoryRevocationStore, RevocationStore, StoreError, TokenRef,
    };

    use super::*;

    #[tokio::test]
    async fn stolen_token_replayed_after_logout_is_refused() {
        let clock = clock();
        let store = MemoryRevocationStore::with_clock(clock.clone());
        let issued = issuer().issue_access(&grant(), NoCustomClaims {}).unwrap();
        let verifier = verifier();
        assert!(
            verifier
                .verify_access_unrevoked::<NoCustomClaims, _>(&issued.token, &store)
                .await
                .is_ok()
        );
        store
            .revoke_token("user-42", &issued.jti, issued.expires_at)
            .await
            .unwrap();
        let error = verifier
            .verify_access_unrevoked::<NoCustomClaims, _>(&issued.token, &store)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::Revoked);
        assert_eq!(error.to_error("api").status(), 401);
    }

    #[tokio::test]
    async fn token_issued_at_or_before_not_before_is_refused() {
        // Log out everywhere (or a password change) in the same second the
        // attacker's token was issued: equal seconds count as revoked.
        let clock = clock();
        let store = MemoryRevocationStore::with_clock(clock.clone());
        let issued = issuer().issue_access(&grant(), NoCustomClaims {}).unwrap();
        store.revoke_subject("user-42").await.unwrap();
        let error = verifier()
            .verify_access_unrevoked::<NoCustomClaims, _>(&issued.token, &store)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::Revoked);
        // A token issued a second later (the user's new login) is valid.
        clock.advance(Duration::from_secs(1));
        let later = TokenIssuer::with_clock(access_ring(), refresh_ring(), policy(), clock.clone())
            .issue_access(&grant(), NoCustomClaims {})
            .unwrap();
        let verifier = TokenVerifier::with_clock(access_ring(), refresh_ring(), policy(), clock);
        assert!(
            verifier
                .verify_access_unrevoked::<NoCustomClaims, _>(&later.token, &store)
                .await
                .is_ok()
        );
    }

    /// A revocation store that cannot answer (Redis down).
    struct Down;

    impl RevocationStore for Down {
        async fn is_revoked(&self, _: TokenRef<'_>) -> Result<bool, StoreError> {
            Err(StoreError::unavailable("connection refused"))
        }
        async fn revoke_token(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
            Err(StoreError::unavailable("connection refused"))
        }
        async fn revoke_family(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
            Err(StoreError::unavailable("connection refused"))
        }
        async fn revoke_subject(&self, _: &str) -> Result<u64, StoreError> {
            Err(StoreError::unavailable("connection refused"))
        }
        async fn not_before(&self, _: &str) -> Result<Option<u64>, StoreError> {
            Err(StoreError::unavailable("connection refused"))
        }
    }

    #[tokio::test]
    async fn an_unreachable_revocation_store_fails_closed() {
        let issued = issuer().issue_access(&grant(), NoCustomClaims {}).unwrap();
        let error = verifier()
            .verify_access_unrevoked::<NoCustomClaims, _>(&issued.token, &Down)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::StoreUnavailable);
        assert_eq!(error.to_error("api").status(), 503);
    }
}

#[test]
fn a_configured_leeway_cannot_switch_expiry_off() {
    // A leeway of u64::MAX would make every expired token valid.
    let huge: Result<TokenPolicy, _> =
        serde_json::from_str(r#"{"issuer": "i", "audience": "a", "leeway": 18446744073709551615}"#);
    assert!(huge.is_err());
    for bad in [
        r#"{"issuer": "", "audience": "a"}"#,
        r#"{"issuer": "i"}"#,
        r#"{"issuer": "i", "audience": "a", "access_ttl": 0}"#,
        r#"{"issuer": "i", "audience": "a", "typo": 1}"#,
    ] {
        assert!(serde_json::from_str::<TokenPolicy>(bad).is_err(), "{bad}");
    }
    // Built in code, the verifier caps it.
    let mut policy = policy();
    policy.leeway = u64::MAX;
    let lenient = TokenVerifier::with_clock(access_ring(), refresh_ring(), policy, clock());
    let mut claims = valid_claims();
    claims["exp"] = json!(NOW - 3600);
    assert_eq!(
        lenient
            .verify_access::<NoCustomClaims>(&forge_access(claims))
            .unwrap_err()
            .kind(),
        TokenErrorKind::Expired
    );
    let family: palisade_auth_tokens::refresh::FamilyConfig =
        serde_json::from_str(r#"{"grace_secs": 5}"#).unwrap();
    assert_eq!((family.grace_secs, family.max_sessions), (5, 10));
}
