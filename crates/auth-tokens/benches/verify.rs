//! Palisade's verify + validate against raw `jsonwebtoken::decode` with the
//! equivalent validation (algorithm, exp, nbf, iss, aud, leeway) into a
//! plain `#[derive(Deserialize)]` struct of the same claims (what a user of
//! jsonwebtoken writes; Palisade's own strict reader is part of what is
//! measured, so the peer must not use it), same run; `cargo xtask bench` prints the ratios (goal for
//! HS256 ≤ 1.1×). EdDSA and ES256 are reported too.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation};
use palisade_auth_tokens::{
    Algorithm, Grant, Keyring, NoCustomClaims, SigningKey, TokenIssuer, TokenPolicy, TokenVerifier,
};
use secrecy::SecretSlice;

/// The claims as a jsonwebtoken user declares them: serde's derive, the
/// audience as one string or many, the application's claims flattened in.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // read by serde; the benchmark only needs them decoded
struct PeerClaims {
    sub: String,
    jti: String,
    sid: Option<String>,
    iat: Option<u64>,
    nbf: Option<u64>,
    exp: u64,
    iss: String,
    aud: OneOrMany,
    #[serde(rename = "type")]
    token_type: String,
    role: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    scope: Option<String>,
    #[serde(flatten)]
    custom: NoCustomClaims,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

const SECRET: &[u8] = b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const ED_PRIVATE: &[u8] = include_bytes!("../tests/keys/ed25519-private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../tests/keys/ed25519-public.pem");
const ES_PRIVATE: &[u8] = include_bytes!("../tests/keys/es256-private.pem");
const ES_PUBLIC: &[u8] = include_bytes!("../tests/keys/es256-public.pem");

fn bench_algorithm(
    c: &mut Criterion,
    name: &str,
    signing: SigningKey,
    verifying: SigningKey,
    peer_key: DecodingKey,
    alg: jsonwebtoken::Algorithm,
) {
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let refresh = Keyring::new([SigningKey::hmac(
        "r",
        Algorithm::HS256,
        &SecretSlice::from(b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa".to_vec()),
    )
    .unwrap()])
    .unwrap();
    let issuer = TokenIssuer::new(
        Keyring::new([signing]).unwrap(),
        refresh.clone(),
        policy.clone(),
    );
    let verifier = TokenVerifier::new(Keyring::new([verifying]).unwrap(), refresh, policy);
    let grant = Grant {
        subject: "user-42".into(),
        session: Some("s1".into()),
        role: Some(palisade_auth_tokens::authz::Role::user()),
        permissions: vec!["posts:read".into()],
        scope: Some("reports:read".into()),
    };
    let token = issuer
        .issue_access(&grant, NoCustomClaims {})
        .unwrap()
        .token;

    let mut validation = Validation::new(alg);
    validation.leeway = 30;
    validation.validate_nbf = true;
    validation.set_issuer(&["https://auth.example.com"]);
    validation.set_audience(&["api"]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    assert!(jsonwebtoken::decode::<PeerClaims>(&token, &peer_key, &validation).is_ok());

    let mut group = c.benchmark_group(format!("jwt_verify_{name}"));
    group.bench_function("palisade", |b| {
        b.iter(|| {
            black_box(
                verifier
                    .verify_access::<NoCustomClaims>(black_box(&token))
                    .unwrap(),
            )
        });
    });
    group.bench_function("peer", |b| {
        b.iter(|| {
            black_box(
                jsonwebtoken::decode::<PeerClaims>(black_box(&token), &peer_key, &validation)
                    .unwrap(),
            )
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let hmac =
        || SigningKey::hmac("a1", Algorithm::HS256, &SecretSlice::from(SECRET.to_vec())).unwrap();
    bench_algorithm(
        c,
        "hs256",
        hmac(),
        hmac(),
        DecodingKey::from_secret(SECRET),
        jsonwebtoken::Algorithm::HS256,
    );
    let ed = |private| SigningKey::from_pem("ed", Algorithm::EdDSA, private, ED_PUBLIC).unwrap();
    let ed_private = SecretSlice::from(ED_PRIVATE.to_vec());
    bench_algorithm(
        c,
        "eddsa",
        ed(Some(&ed_private)),
        ed(None),
        DecodingKey::from_ed_pem(ED_PUBLIC).unwrap(),
        jsonwebtoken::Algorithm::EdDSA,
    );
    let es = |private| SigningKey::from_pem("es", Algorithm::ES256, private, ES_PUBLIC).unwrap();
    let es_private = SecretSlice::from(ES_PRIVATE.to_vec());
    bench_algorithm(
        c,
        "es256",
        es(Some(&es_private)),
        es(None),
        DecodingKey::from_ec_pem(ES_PUBLIC).unwrap(),
        jsonwebtoken::Algorithm::ES256,
    );
}

criterion_group!(verify, benches);
criterion_main!(verify);
