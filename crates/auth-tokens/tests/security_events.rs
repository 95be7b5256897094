//! The security events of this crate, captured: each refusal is one event
//! of the shared vocabulary with its `reason` and the subject's hash, and no
//! token, secret or subject reaches the log (CONTRIBUTING.md, "Security
//! events").

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use palisade_auth_tokens::authz::{Authorizer, Principal, Role, RoleHierarchy, RolePermissions};
use palisade_auth_tokens::bearer::{Authenticate, BearerAuth, Credentials};
use palisade_auth_tokens::refresh::{FamilyConfig, MemoryFamilyStore, RefreshFamilies};
use palisade_auth_tokens::revocation::{MemoryRevocationStore, RevocationStore};
use palisade_auth_tokens::{
    Algorithm, Claims, Grant, Keyring, ManualClock, NoCustomClaims, SigningKey, TokenErrorKind,
    TokenIssuer, TokenPolicy, TokenVerifier,
};
use palisade_errors::testing::{CapturedEvent, EventCapture};
use palisade_errors::{SecurityEvent, SubjectHash};
use secrecy::SecretSlice;

const NOW: u64 = 1_700_000_000;
const SUBJECT: &str = "alice@example.com";
const ACCESS_SECRET: &str = "k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const REFRESH_SECRET: &str = "Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa";
const SEALING_KEY: &str = "Qm3Zr7Tw1Yp5Ks9Lx2Vb6Nc0Hd4Jf8Ga";

fn secret(text: &str) -> SecretSlice<u8> {
    SecretSlice::from(text.as_bytes().to_vec())
}

struct Setup {
    clock: ManualClock,
    issuer: TokenIssuer<ManualClock>,
    verifier: TokenVerifier<ManualClock>,
}

fn setup() -> Setup {
    let access =
        Keyring::new([SigningKey::hmac("a1", Algorithm::HS256, &secret(ACCESS_SECRET)).unwrap()])
            .unwrap();
    let refresh =
        Keyring::new([SigningKey::hmac("r1", Algorithm::HS256, &secret(REFRESH_SECRET)).unwrap()])
            .unwrap();
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let clock = ManualClock::from_unix_secs(NOW);
    Setup {
        issuer: TokenIssuer::with_clock(
            access.clone(),
            refresh.clone(),
            policy.clone(),
            clock.clone(),
        ),
        verifier: TokenVerifier::with_clock(access, refresh, policy, clock.clone()),
        clock,
    }
}

fn grant() -> Grant {
    Grant {
        subject: SUBJECT.into(),
        role: Some(Role::user()),
        ..Grant::default()
    }
}

/// The one event named `event`; panics unless there is exactly one.
fn one(capture: &EventCapture, event: SecurityEvent) -> CapturedEvent {
    let named = capture.named(event);
    assert_eq!(named.len(), 1, "{event}: {:?}", capture.events());
    named.into_iter().next().unwrap()
}

fn subject_hash() -> String {
    SubjectHash::of(SUBJECT).to_string()
}

/// No token, secret or raw subject anywhere in the log.
fn assert_nothing_secret(capture: &EventCapture, tokens: &[&str]) {
    capture.assert_vocabulary();
    for token in tokens {
        capture.assert_absent(token);
    }
    for secret in [ACCESS_SECRET, REFRESH_SECRET, SEALING_KEY, SUBJECT] {
        capture.assert_absent(secret);
    }
}

#[tokio::test]
async fn an_expired_token_is_one_authn_token_invalid_expired() {
    let s = setup();
    let token = s.issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
    let capture = EventCapture::new();
    let _g = capture.set_default();
    s.clock.advance(Duration::from_secs(31 * 60 + 30));
    let refused = s.verifier.verify_access::<NoCustomClaims>(&token.token);
    assert_eq!(refused.unwrap_err().kind(), TokenErrorKind::Expired);
    let event = one(&capture, SecurityEvent::AuthnTokenInvalid);
    assert_eq!(event.field("reason"), Some("expired"));
    assert_eq!(event.field("subject_hash"), Some(subject_hash().as_str()));
    assert_eq!(capture.security_events().len(), 1);
    assert_nothing_secret(&capture, &[&token.token]);
}

#[tokio::test]
async fn a_bad_signature_is_one_authn_token_invalid_without_the_forged_subject() {
    let s = setup();
    let token = s.issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
    let (signed, signature) = token.token.rsplit_once('.').unwrap();
    let mut chars = signature.chars();
    let flipped = if chars.next() == Some('A') { 'B' } else { 'A' };
    let forged = format!("{signed}.{flipped}{}", chars.as_str());
    let capture = EventCapture::new();
    let _g = capture.set_default();
    let refused = s.verifier.verify_access::<NoCustomClaims>(&forged);
    assert_eq!(refused.unwrap_err().kind(), TokenErrorKind::BadSignature);
    let event = one(&capture, SecurityEvent::AuthnTokenInvalid);
    assert_eq!(event.field("reason"), Some("bad_signature"));
    // The `sub` of a token whose signature failed is the forger's word.
    assert_eq!(event.field("subject_hash"), None);
    assert_nothing_secret(&capture, &[&token.token, &forged]);
}

#[tokio::test]
async fn a_revoked_token_is_one_authn_token_invalid_revoked() {
    let s = setup();
    let store = MemoryRevocationStore::with_clock(s.clock.clone());
    let token = s.issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
    let claims: Claims = s.verifier.verify_access(&token.token).unwrap();
    let capture = EventCapture::new();
    let _g = capture.set_default();
    s.verifier.revoke(&claims, &store, None).await.unwrap();
    let logout = one(&capture, SecurityEvent::AuthnTokenRevoked);
    assert_eq!(logout.field("reason"), Some("logout"));
    assert_eq!(logout.field("subject_hash"), Some(subject_hash().as_str()));
    let refused = s
        .verifier
        .verify_access_unrevoked::<NoCustomClaims, _>(&token.token, &store)
        .await;
    assert_eq!(refused.unwrap_err().kind(), TokenErrorKind::Revoked);
    let event = one(&capture, SecurityEvent::AuthnTokenInvalid);
    assert_eq!(event.field("reason"), Some("revoked"));
    assert_eq!(event.field("subject_hash"), Some(subject_hash().as_str()));
    // Logout everywhere, from the store.
    store.revoke_subject(SUBJECT).await.unwrap();
    let revoked = capture.named(SecurityEvent::AuthnTokenRevoked);
    assert_eq!(revoked.len(), 2);
    assert_eq!(revoked[1].field("reason"), Some("logout_everywhere"));
    assert_nothing_secret(&capture, &[&token.token, &claims.jti]);
}

#[tokio::test]
async fn a_bearer_refusal_is_one_event_not_two() {
    let s = setup();
    let token = s.issuer.issue_access(&grant(), NoCustomClaims {}).unwrap();
    let authorizer =
        Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), "api").unwrap();
    let auth = BearerAuth::new(
        s.verifier,
        authorizer,
        MemoryRevocationStore::with_clock(s.clock.clone()),
    );
    let capture = EventCapture::new();
    let _g = capture.set_default();
    s.clock.advance(Duration::from_secs(24 * 60 * 60));
    let refused = auth.authenticate(Credentials::Bearer(&token.token)).await;
    assert_eq!(refused.unwrap_err().status(), 401);
    let event = one(&capture, SecurityEvent::AuthnTokenInvalid);
    assert_eq!(event.field("reason"), Some("expired"));
    let missing = auth.authenticate(Credentials::None).await;
    assert_eq!(missing.unwrap_err().status(), 401);
    let malformed = auth.authenticate(Credentials::Malformed).await;
    assert_eq!(malformed.unwrap_err().status(), 401);
    let reasons: Vec<String> = capture
        .named(SecurityEvent::AuthnTokenInvalid)
        .iter()
        .map(|event| event.field("reason").unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["expired", "missing", "malformed_header"]);
    assert_nothing_secret(&capture, &[&token.token]);
}

#[tokio::test]
async fn a_reused_refresh_token_is_one_authn_token_reuse() {
    let s = setup();
    let families = RefreshFamilies::new(
        s.issuer,
        s.verifier,
        MemoryFamilyStore::with_clock(s.clock.clone()),
        &secret(SEALING_KEY),
        FamilyConfig::default(),
    )
    .unwrap();
    let capture = EventCapture::new();
    let _g = capture.set_default();
    let login = families.login(&grant()).await.unwrap();
    let created = one(&capture, SecurityEvent::SessionCreated);
    assert_eq!(created.field("subject_hash"), Some(subject_hash().as_str()));
    let lookup = |subject: String| async move {
        Some(Grant {
            subject,
            role: Some(Role::user()),
            ..Grant::default()
        })
    };
    let next = families
        .refresh_without_revocation_dangerously(&login.pair.refresh.token, lookup)
        .await
        .unwrap();
    let renewed = one(&capture, SecurityEvent::SessionRenewed);
    assert_eq!(renewed.field("subject_hash"), Some(subject_hash().as_str()));
    // Past the grace window, the rotated token again: a thief's copy.
    s.clock.advance(Duration::from_secs(60));
    let reused = families
        .refresh_without_revocation_dangerously(&login.pair.refresh.token, lookup)
        .await;
    assert_eq!(reused.unwrap_err().kind(), TokenErrorKind::Revoked);
    let event = one(&capture, SecurityEvent::AuthnTokenReuse);
    assert_eq!(event.field("subject_hash"), Some(subject_hash().as_str()));
    assert!(capture.named(SecurityEvent::AuthnTokenInvalid).is_empty());
    // The family is gone: the user's own token now finds nothing.
    let ended = families
        .refresh_without_revocation_dangerously(&next.refresh.token, lookup)
        .await;
    assert_eq!(ended.unwrap_err().kind(), TokenErrorKind::Revoked);
    let after = one(&capture, SecurityEvent::SessionUseAfterExpire);
    assert_eq!(after.field("subject_hash"), Some(subject_hash().as_str()));
    assert_nothing_secret(
        &capture,
        &[
            &login.pair.access.token,
            &login.pair.refresh.token,
            &next.access.token,
            &next.refresh.token,
            &login.pair.sid,
        ],
    );
}

#[tokio::test]
async fn an_authorization_denial_is_one_authz_fail() {
    let authorizer =
        Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), "api").unwrap();
    let user = Principal::new(SUBJECT).with_role(Role::user());
    let capture = EventCapture::new();
    let _g = capture.set_default();
    let denied = authorizer.require_role(&user, &Role::admin()).unwrap_err();
    assert_eq!(denied.status(), 403);
    let event = one(&capture, SecurityEvent::AuthzFail);
    assert_eq!(event.field("reason"), Some("insufficient_role"));
    assert_eq!(event.field("subject_hash"), Some(subject_hash().as_str()));
    let denied = authorizer
        .require_permission(&user, "users:ban")
        .unwrap_err();
    assert_eq!(denied.status(), 403);
    let denied = authorizer.require_scope(&user, "reports:read").unwrap_err();
    assert_eq!(denied.status(), 403);
    let reasons: Vec<String> = capture
        .named(SecurityEvent::AuthzFail)
        .iter()
        .map(|event| event.field("reason").unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        ["insufficient_role", "missing_permission", "missing_scope"]
    );
    assert_nothing_secret(&capture, &[]);
}

#[test]
fn an_authenticator_missing_is_sys_misconfigured() {
    let capture = EventCapture::new();
    let _g = capture.set_default();
    let error = palisade_auth_tokens::bearer::not_configured();
    assert_eq!(error.status(), 500);
    let event = one(&capture, SecurityEvent::SysMisconfigured);
    assert_eq!(event.field("reason"), Some("authenticator_missing"));
    capture.assert_vocabulary();
}
