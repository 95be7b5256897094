//! The attack suite: each test names the attack on JWT verification it
//! stops. Tokens are forged by hand (header and payload JSON signed with
//! `jsonwebtoken::crypto::sign`), so every check is reached on its own.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use palisade_auth_tokens::{
    Algorithm, Claims, ConfigErrorKind, Grant, KeyStatus, Keyring, MAX_LEEWAY, ManualClock,
    NoCustomClaims, SigningKey, TokenErrorKind, TokenIssuer, TokenPolicy, TokenType, TokenVerifier,
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
    TokenPolicy::new("https://auth.example.com", "api").unwrap()
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
        role: Some(palisade_auth_tokens::authz::Role::user()),
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
    assert_eq!(
        (claims.iat, claims.nbf, claims.exp),
        (Some(NOW), Some(NOW), NOW + 1800)
    );
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
        let not_before = store.revoke_subject("user-42").await.unwrap();
        let error = verifier()
            .verify_access_unrevoked::<NoCustomClaims, _>(&issued.token, &store)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::Revoked);
        // A token issued a second later for the user's new login, stamped
        // past the not_before, is valid. (Issue #11: a plain token a second
        // later is no longer valid: it cannot be told from one minted before
        // the revocation by an instance whose clock runs ahead.)
        clock.advance(Duration::from_secs(1));
        let later = TokenIssuer::with_clock(access_ring(), refresh_ring(), policy(), clock.clone())
            .issue_access_after(&grant(), NoCustomClaims {}, Some(not_before))
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
    // Built in code, the same rules: there is no policy with a huge leeway
    // to hand a verifier (issue #11: the public fields bypassed them).
    for built in [
        TokenPolicy::builder("i", "a").leeway(u64::MAX).build(),
        TokenPolicy::builder("i", "a")
            .leeway(MAX_LEEWAY + 1)
            .build(),
        TokenPolicy::builder("i", "a").access_ttl(0).build(),
        TokenPolicy::builder("i", "a")
            .refresh_ttl(10)
            .access_ttl(11)
            .build(),
        TokenPolicy::builder("i", "a").max_token_len(0).build(),
        TokenPolicy::new("", "a"),
        TokenPolicy::new("i", ""),
    ] {
        assert_eq!(built.unwrap_err().kind(), ConfigErrorKind::InvalidPolicy);
    }
    let strictest = TokenPolicy::builder("https://auth.example.com", "api")
        .leeway(MAX_LEEWAY)
        .build()
        .unwrap();
    let lenient = TokenVerifier::with_clock(access_ring(), refresh_ring(), strictest, clock());
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

// --- Issue #11: malleability, strict JOSE parsing, RFC 9068 time claims -----

/// The order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `n - s` for a big-endian scalar `s < n`.
fn negate_mod_n(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for index in (0..32).rev() {
        let mut digit = i16::from(P256_N[index]) - i16::from(s[index]) - borrow;
        borrow = i16::from(digit < 0);
        if digit < 0 {
            digit += 256;
        }
        out[index] = u8::try_from(digit).unwrap();
    }
    out
}

fn is_low_s(s: &[u8]) -> bool {
    // s <= n / 2  <=>  2s <= n - 1 (n is odd): compare s with n - s.
    s <= negate_mod_n(s).as_slice()
}

fn es256_pair() -> (TokenIssuer<ManualClock>, TokenVerifier<ManualClock>) {
    let signing =
        SigningKey::from_pem("es", Algorithm::ES256, Some(&secret(ES_PRIVATE)), ES_PUBLIC).unwrap();
    let verifying = SigningKey::from_pem("es", Algorithm::ES256, None, ES_PUBLIC).unwrap();
    (
        TokenIssuer::with_clock(
            Keyring::new([signing]).unwrap(),
            refresh_ring(),
            policy(),
            clock(),
        ),
        TokenVerifier::with_clock(
            Keyring::new([verifying]).unwrap(),
            refresh_ring(),
            policy(),
            clock(),
        ),
    )
}

/// The same token with the signature's `s` replaced by `n - s`.
fn high_s_twin(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert_eq!(bytes.len(), 64);
    let twin_s = negate_mod_n(&bytes[32..]);
    bytes[32..].copy_from_slice(&twin_s);
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[test]
fn es256_high_s_twin_is_refused() {
    let (issuer, verifier) = es256_pair();
    let issued = issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
    let twin = high_s_twin(&issued.token);
    assert_ne!(twin, issued.token);
    // The twin is a valid ECDSA signature: the malleability is real...
    let (message, signature) = twin.rsplit_once('.').unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_ec_pem(ES_PUBLIC).unwrap();
    assert!(
        jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &decoding,
            jsonwebtoken::Algorithm::ES256
        )
        .unwrap()
    );
    // ...and exactly one of the two strings is accepted: the low-S one.
    let (low, high) = if verifier
        .verify_access::<NoCustomClaims>(&issued.token)
        .is_ok()
    {
        (issued.token.clone(), twin)
    } else {
        (twin, issued.token.clone())
    };
    assert!(verifier.verify_access::<NoCustomClaims>(&low).is_ok());
    assert_eq!(
        verifier
            .verify_access::<NoCustomClaims>(&high)
            .unwrap_err()
            .kind(),
        TokenErrorKind::BadSignature
    );
}

#[test]
fn es256_issuer_only_makes_low_s_signatures() {
    let (issuer, verifier) = es256_pair();
    for _ in 0..200 {
        let issued = issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
        let signature = URL_SAFE_NO_PAD
            .decode(issued.token.rsplit_once('.').unwrap().1)
            .unwrap();
        assert!(is_low_s(&signature[32..]), "{}", issued.token);
        assert!(
            verifier
                .verify_access::<NoCustomClaims>(&issued.token)
                .is_ok()
        );
    }
}

#[test]
fn every_accepted_token_has_exactly_one_accepted_string() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (es_issuer, es_verifier) = es256_pair();
    let ed_signing =
        SigningKey::from_pem("ed", Algorithm::EdDSA, Some(&secret(ED_PRIVATE)), ED_PUBLIC).unwrap();
    let ed_issuer = TokenIssuer::with_clock(
        Keyring::new([ed_signing]).unwrap(),
        refresh_ring(),
        policy(),
        clock(),
    );
    let cases: Vec<(String, TokenVerifier<ManualClock>)> = vec![
        (
            issuer()
                .issue_access(&grant(), NoCustomClaims {})
                .unwrap()
                .token,
            verifier(),
        ),
        (
            es_issuer
                .issue_access(&grant(), NoCustomClaims {})
                .unwrap()
                .token,
            es_verifier,
        ),
        (
            ed_issuer
                .issue_access(&grant(), NoCustomClaims {})
                .unwrap()
                .token,
            verifier(),
        ),
    ];
    for (token, verifier) in cases {
        let accepted =
            |candidate: &str| verifier.verify_access::<NoCustomClaims>(candidate).is_ok();
        assert!(accepted(&token), "{token}");
        let signature_at = token.rfind('.').unwrap() + 1;
        let mut variants = vec![
            format!("{token}="),
            format!("{token}=="),
            format!("{token}."),
            format!("{token} "),
            format!(" {token}"),
            high_s_twin_if_es256(&token),
        ];
        // Every single-character change of the signature, the last one
        // (whose low bits are padding) included.
        for position in signature_at..token.len() {
            for &replacement in ALPHABET {
                if token.as_bytes()[position] != replacement {
                    let mut bytes = token.clone().into_bytes();
                    bytes[position] = replacement;
                    variants.push(String::from_utf8(bytes).unwrap());
                }
            }
        }
        for variant in variants.iter().filter(|variant| **variant != token) {
            assert!(!accepted(variant), "a second string is accepted: {variant}");
        }
    }
}

fn high_s_twin_if_es256(token: &str) -> String {
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    if header["alg"] == "ES256" {
        high_s_twin(token)
    } else {
        token.to_owned()
    }
}

/// A token whose header is exactly these bytes, correctly signed.
fn forge_raw_header(header: &[u8], payload: &serde_json::Value) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

/// A token whose payload is exactly these bytes, correctly signed.
fn forge_raw_payload(payload: &[u8]) -> String {
    let header = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"}));
    let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &access_key(),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[test]
fn array_header_is_refused() {
    // serde's derived structs read a JSON array by position.
    let token = forge_raw_header(br#"["HS256","at+jwt","a1"]"#, &valid_claims());
    assert_eq!(refused(&token), TokenErrorKind::Malformed);
}

#[test]
fn non_utf8_header_is_refused() {
    // An ignored header string holding bytes that are not UTF-8 (RFC 7515 §5.2).
    let mut header = br#"{"alg":"HS256","typ":"at+jwt","kid":"a1","x":""#.to_vec();
    header.extend_from_slice(b"\xff\xfe\"}");
    let token = forge_raw_header(&header, &valid_claims());
    assert_eq!(refused(&token), TokenErrorKind::Malformed);
    // The same with valid UTF-8 there is fine: only the bytes differ.
    let fine = forge_raw_header(
        br#"{"alg":"HS256","typ":"at+jwt","kid":"a1","x":"ok"}"#,
        &valid_claims(),
    );
    assert!(verifier().verify_access::<NoCustomClaims>(&fine).is_ok());
}

#[test]
fn duplicate_header_parameters_are_refused() {
    for header in [
        br#"{"alg":"HS256","typ":"at+jwt","kid":"a1","kid":"a1"}"#.as_slice(),
        br#"{"alg":"HS256","typ":"at+jwt","kid":"a1","alg":"HS256"}"#,
        br#"{"alg":"HS256","typ":"at+jwt","kid":"a1","x":1,"x":2}"#,
        br#"{"alg":"HS256","typ":"at+jwt","kid":"a1","\u0078":1,"x":2}"#,
    ] {
        let token = forge_raw_header(header, &valid_claims());
        assert_eq!(
            refused(&token),
            TokenErrorKind::Malformed,
            "{}",
            String::from_utf8_lossy(header)
        );
    }
}

#[test]
fn nested_jwt_cty_is_refused() {
    for cty in [json!("JWT"), json!("jwt"), json!(null), json!("text/plain")] {
        let token = forge(
            json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1", "cty": cty}),
            valid_claims(),
            &access_key(),
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(refused(&token), TokenErrorKind::Malformed, "{cty}");
    }
}

#[test]
fn payload_that_is_not_one_strict_json_object_is_refused() {
    let claims = serde_json::to_string(&valid_claims()).unwrap();
    let mut non_utf8 = claims.trim_end_matches('}').as_bytes().to_vec();
    non_utf8.extend_from_slice(b",\"x\":\"\xff\xfe\"}");
    let duplicate_exp = claims.replacen('{', &format!("{{\"exp\":{},", NOW + 99_999), 1);
    let duplicate_custom = claims.replacen('{', "{\"x\":1,\"x\":2,", 1);
    let duplicate_nested = claims.replacen('{', "{\"x\":{\"y\":1,\"y\":2},", 1);
    for payload in [
        non_utf8.as_slice(),
        duplicate_exp.as_bytes(),
        duplicate_custom.as_bytes(),
        duplicate_nested.as_bytes(),
        br#"["user-42","j1"]"#,
    ] {
        let token = forge_raw_payload(payload);
        assert_eq!(
            refused(&token),
            TokenErrorKind::InvalidClaims,
            "{}",
            String::from_utf8_lossy(payload)
        );
        let generic = verifier().verify::<serde_json::Value>(&token, TokenType::Access);
        assert_eq!(
            generic.unwrap_err().kind(),
            TokenErrorKind::InvalidClaims,
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn rfc9068_token_without_nbf_or_iat_is_accepted_and_still_time_checked() {
    for missing in [vec!["nbf"], vec!["iat"], vec!["nbf", "iat"]] {
        let mut claims = valid_claims();
        for field in &missing {
            claims.as_object_mut().unwrap().remove(*field);
        }
        let token = forge_access(claims);
        let verified: Claims = verifier().verify_access(&token).unwrap();
        assert_eq!(verified.sub, "user-42", "{missing:?}");
    }
    // Present, they are still checked (beyond the 30 s leeway).
    let mut future_nbf = valid_claims();
    future_nbf.as_object_mut().unwrap().remove("iat");
    future_nbf["nbf"] = json!(NOW + 31);
    assert_eq!(
        refused(&forge_access(future_nbf)),
        TokenErrorKind::NotYetValid
    );
    let mut future_iat = valid_claims();
    future_iat.as_object_mut().unwrap().remove("nbf");
    future_iat["iat"] = json!(NOW + 31);
    assert_eq!(
        refused(&forge_access(future_iat)),
        TokenErrorKind::IssuedInFuture
    );
}

#[tokio::test]
async fn token_without_iat_is_revoked_by_any_logout_everywhere() {
    use palisade_auth_tokens::revocation::{MemoryRevocationStore, RevocationStore};
    let store = MemoryRevocationStore::with_clock(clock());
    let mut claims = valid_claims();
    claims.as_object_mut().unwrap().remove("iat");
    let token = forge_access(claims);
    assert!(
        verifier()
            .verify_access_unrevoked::<NoCustomClaims, _>(&token, &store)
            .await
            .is_ok()
    );
    store.revoke_subject("user-42").await.unwrap();
    // Without `iat` the token counts as issued at the earliest possible
    // time: never fresher than a logout-everywhere, whenever it happened.
    let error = verifier()
        .verify_access_unrevoked::<NoCustomClaims, _>(&token, &store)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Revoked);
}

#[test]
fn to_error_realm_follows_the_authorizer_realm_rule() {
    use palisade_auth_tokens::authz::{Authorizer, RoleHierarchy, RolePermissions};
    let error = verifier()
        .verify_access::<NoCustomClaims>("a.b.c")
        .unwrap_err();
    for realm in ["api", "my api", "a\"b", "", "café", "ok.example-1"] {
        let accepted =
            Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), realm).is_ok();
        let challenge = error.to_error(realm).headers()["www-authenticate"].clone();
        let named = challenge == format!("Bearer realm=\"{realm}\", error=\"invalid_token\"");
        assert_eq!(accepted, named, "{realm:?}: {challenge:?}");
    }
}

#[test]
fn granted_role_is_never_silently_dropped() {
    use palisade_auth_tokens::authz::Role;
    // A Grant's role is a Role: "Admin" cannot be written into a token,
    // and every role that can is the role a later check reads back.
    assert!(Role::new("Admin").is_err());
    for role in [Role::admin(), Role::new("billing-admin").unwrap()] {
        let grant = Grant {
            role: Some(role.clone()),
            ..grant()
        };
        let issued = issuer().issue_access(&grant, NoCustomClaims {}).unwrap();
        let claims: Claims = verifier().verify_access(&issued.token).unwrap();
        let read_back = claims.role.as_deref().map(Role::new).transpose().unwrap();
        assert_eq!(read_back, Some(role));
    }
}

// --- HMAC tags: one spelling, full length ----------------------------------

/// A pair of HMAC keyrings for `algorithm` with a secret of `len` bytes.
fn hmac_pair(
    algorithm: Algorithm,
    len: usize,
) -> (TokenIssuer<ManualClock>, TokenVerifier<ManualClock>) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| u8::try_from(i * 37 % 251).unwrap())
        .collect();
    let ring =
        || Keyring::new([SigningKey::hmac("h", algorithm, &secret(&bytes)).unwrap()]).unwrap();
    (
        TokenIssuer::with_clock(ring(), refresh_ring(), policy(), clock()),
        TokenVerifier::with_clock(ring(), refresh_ring(), policy(), clock()),
    )
}

#[test]
fn hmac_tag_spelled_with_stray_bits_is_refused() {
    // Malleability: base64url of a 32-byte (HS256) or 64-byte (HS512) tag
    // ends in a character with unused low bits. A decoder that ignored them
    // would accept several spellings of one signature, so a token's string
    // (a revocation list's or a replay cache's key) would not be unique.
    for (algorithm, len) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let (issuer, verifier) = hmac_pair(algorithm, len);
        let token = issuer
            .issue_access(&grant(), NoCustomClaims {})
            .unwrap()
            .token;
        assert!(
            verifier.verify_access::<NoCustomClaims>(&token).is_ok(),
            "{algorithm:?}"
        );
        let (message, tag) = token.rsplit_once('.').unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let (kept, last) = tag.split_at(tag.len() - 1);
        let mut twins = 0;
        for other in alphabet.chars().filter(|&c| c.to_string() != last) {
            let twin_tag = format!("{kept}{other}");
            let twin = format!("{message}.{twin_tag}");
            // The same tag bytes when only the stray bits differ.
            let same_bytes = base64::engine::GeneralPurpose::new(
                &base64::alphabet::URL_SAFE,
                base64::engine::GeneralPurposeConfig::new()
                    .with_encode_padding(false)
                    .with_decode_allow_trailing_bits(true)
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
            )
            .decode(&twin_tag)
            .is_ok_and(|bytes| bytes == URL_SAFE_NO_PAD.decode(tag).unwrap());
            twins += usize::from(same_bytes);
            assert_eq!(
                verifier
                    .verify_access::<NoCustomClaims>(&twin)
                    .unwrap_err()
                    .kind(),
                TokenErrorKind::BadSignature,
                "{algorithm:?} {twin}"
            );
        }
        // HS384's 48 bytes have no stray bits; the others have twins.
        assert_eq!(
            twins,
            match algorithm {
                Algorithm::HS256 => 3,
                Algorithm::HS512 => 15,
                _ => 0,
            },
            "{algorithm:?}"
        );
    }
}

#[test]
fn hmac_truncated_or_extended_tag_is_refused() {
    // Truncation: a verifier that compared only the bytes given would let
    // an attacker guess a 1-byte tag in 256 tries.
    let (issuer, verifier) = hmac_pair(Algorithm::HS256, 32);
    let token = issuer
        .issue_access(&grant(), NoCustomClaims {})
        .unwrap()
        .token;
    let (message, tag) = token.rsplit_once('.').unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(tag).unwrap();
    for forged in [
        bytes[..1].to_vec(),
        bytes[..16].to_vec(),
        bytes[..31].to_vec(),
        [bytes.as_slice(), &[0]].concat(),
        [bytes.as_slice(), bytes.as_slice()].concat(),
    ] {
        let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&forged));
        assert_eq!(
            verifier
                .verify_access::<NoCustomClaims>(&forged)
                .unwrap_err()
                .kind(),
            TokenErrorKind::BadSignature,
            "{forged}"
        );
    }
    // Another key of the same algorithm and kid: the tag does not verify.
    let (_, other_verifier) = hmac_pair(Algorithm::HS256, 33);
    assert_eq!(
        other_verifier
            .verify_access::<NoCustomClaims>(&token)
            .unwrap_err()
            .kind(),
        TokenErrorKind::BadSignature
    );
}
