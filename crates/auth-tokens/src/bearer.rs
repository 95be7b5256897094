//! Bearer authentication for the adapters: from an `Authorization` header
//! to a verified, unrevoked identity, or the RFC 6750 response.
//!
//! The adapters' extractors call [`Authenticate::authenticate`] and only
//! move the result in and out of their framework.

use std::future::Future;
use std::pin::Pin;

use palisade_errors::{Error, ErrorKind, SecurityEvent, SubjectHash};

use crate::Clock;
use crate::authz::{Authorizer, Principal, Role};
use crate::revocation::RevocationStore;
use crate::token::{Claims, TokenVerifier};

/// Application claims kept as JSON, so one extractor type serves every app.
pub type CustomClaims = serde_json::Map<String, serde_json::Value>;

/// A caller whose access token verified and is not revoked.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: Claims<CustomClaims>,
    /// What authorization checks run against (role, permissions, scopes).
    pub principal: Principal,
}

/// A boxed future, so [`Authenticate`] can be used as `dyn`.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Authenticated, Error>> + Send + 'a>>;

/// Turns an `Authorization` header into an [`Authenticated`] caller or the
/// error response. Object-safe, so adapters can hold `Arc<dyn Authenticate>`.
pub trait Authenticate: Send + Sync + 'static {
    /// `credentials` comes from [`credentials`] over the request's
    /// `Authorization` lines.
    fn authenticate<'a>(&'a self, credentials: Credentials<'a>) -> AuthFuture<'a>;

    /// The authorizer (role hierarchy, permissions, realm) for guards.
    fn authorizer(&self) -> &Authorizer;
}

/// The standard [`Authenticate`]: a verifier, an authorizer, and (unless
/// the application has no logout) a revocation store.
pub struct BearerAuth<S, C: Clock> {
    verifier: TokenVerifier<C>,
    authorizer: Authorizer,
    revocations: Option<S>,
}

impl<S, C: Clock> std::fmt::Debug for BearerAuth<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("realm", &self.authorizer.realm())
            .field("revocation_checks", &self.revocations.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: RevocationStore, C: Clock> BearerAuth<S, C> {
    /// Verifies with `verifier`, checks revocations in `revocations`.
    pub fn new(verifier: TokenVerifier<C>, authorizer: Authorizer, revocations: S) -> Self {
        BearerAuth {
            verifier,
            authorizer,
            revocations: Some(revocations),
        }
    }

    /// Without revocation checks: logout then only ends a session when the
    /// access token expires. For services that accept that.
    pub fn without_revocation_dangerously(
        verifier: TokenVerifier<C>,
        authorizer: Authorizer,
    ) -> Self {
        BearerAuth {
            verifier,
            authorizer,
            revocations: None,
        }
    }

    /// The verifier: what a logout handler revokes with
    /// ([`TokenVerifier::revoke`]), against [`revocations`](Self::revocations).
    pub fn verifier(&self) -> &TokenVerifier<C> {
        &self.verifier
    }

    /// The revocation store checked on every request (`None` when built
    /// [`without_revocation_dangerously`](Self::without_revocation_dangerously)).
    pub fn revocations(&self) -> Option<&S> {
        self.revocations.as_ref()
    }
}

/// Whether an authentication layer lets a request without bearer
/// credentials through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// No credentials: 401 with the bare challenge.
    Required,
    /// No credentials: an anonymous caller, passed on without a principal.
    /// Malformed or invalid credentials are still refused: a forged token is
    /// never downgraded to anonymous.
    Optional,
}

/// The decision of an authentication layer: `Ok(Some(..))` an authenticated
/// caller, `Ok(None)` an anonymous one (only in [`AuthMode::Optional`], only
/// without credentials; no event), `Err` the RFC 6750 refusal (its event
/// logged by `auth`).
pub async fn authenticate_request(
    auth: &dyn Authenticate,
    credentials: Credentials<'_>,
    mode: AuthMode,
) -> Result<Option<Authenticated>, Error> {
    if mode == AuthMode::Optional && credentials == Credentials::None {
        return Ok(None);
    }
    auth.authenticate(credentials).await.map(Some)
}

/// The refusal of an anonymous caller where an identity is needed after an
/// optional authentication layer let it through (an identity-keyed rate
/// limit told to refuse): 401 with the bare challenge, and the same event
/// as a request without credentials at a required layer.
pub fn refuse_anonymous(authorizer: &Authorizer) -> Error {
    crate::token::log_refusal_reason("missing", None);
    authorizer.challenge_missing().logged()
}

/// What an `Authorization` header holds, as far as bearer auth is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No header, or another scheme (`Basic ...`): no bearer credentials.
    None,
    /// A bearer token (RFC 6750 §2.1: scheme case-insensitive, then the
    /// b64token).
    Bearer(&'a str),
    /// A bearer header that is not a valid b64token, or several
    /// `Authorization` headers (a proxy reading the last one and this
    /// service the first would judge different tokens).
    Malformed,
}

/// The bytes of an RFC 6750 `b64token` before its `=` padding (one lookup a
/// byte: a bearer token is a few hundred bytes on every request).
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        byte += 1;
    }
    table
};

/// Reads the request's `Authorization` header lines (all of them).
pub fn credentials<'a>(mut lines: impl Iterator<Item = &'a [u8]>) -> Credentials<'a> {
    let header = match (lines.next(), lines.next()) {
        (None, _) => return Credentials::None,
        (Some(header), None) => header,
        (Some(_), Some(_)) => return Credentials::Malformed,
    };
    let Ok(text) = std::str::from_utf8(header) else {
        return Credentials::Malformed;
    };
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::None;
    }
    let token = token.trim_start_matches(' ');
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)]);
    if valid {
        Credentials::Bearer(token)
    } else {
        Credentials::Malformed
    }
}

impl<S: RevocationStore, C: Clock> Authenticate for BearerAuth<S, C> {
    fn authenticate<'a>(&'a self, credentials: Credentials<'a>) -> AuthFuture<'a> {
        Box::pin(async move {
            let token = match credentials {
                // No bearer credentials: a bare challenge, no error code
                // (RFC 6750 §3.1).
                Credentials::None => {
                    crate::token::log_refusal_reason("missing", None);
                    return Err(self.authorizer.challenge_missing().logged());
                }
                Credentials::Malformed => {
                    crate::token::log_refusal_reason("malformed_header", None);
                    return Err(self.authorizer.challenge_invalid_token().logged());
                }
                Credentials::Bearer(token) => token,
            };
            let claims: Claims<CustomClaims> = match &self.revocations {
                Some(store) => self.verifier.verify_access_unrevoked(token, store).await,
                None => self.verifier.verify_access(token),
            }
            // The verifier logged the refusal (one event per refusal).
            .map_err(|error| error.to_error_for(&self.authorizer))?;
            let mut principal = Principal::new(claims.sub.clone())
                .with_permissions(claims.permissions.iter().map(String::as_str))
                .with_scopes(Principal::scopes_from_claim(
                    claims.scope.as_deref().unwrap_or_default(),
                ));
            if let Some(role) = claims.role.as_deref() {
                match Role::new(role) {
                    Ok(role) => principal = principal.with_role(role),
                    // A role name that is not even valid grants nothing.
                    Err(_) => tracing::info!(
                        event = SecurityEvent::InputValidationFail.as_str(),
                        reason = "invalid_role_claim",
                        subject_hash = %SubjectHash::of(&claims.sub),
                        "token carries an invalid role name: no role granted"
                    ),
                }
            }
            Ok(Authenticated { claims, principal })
        })
    }

    fn authorizer(&self) -> &Authorizer {
        &self.authorizer
    }
}

/// A role a route requires, as a type (`RequireRole<Admin>` in the adapters).
pub trait RoleRequirement: Send + Sync + 'static {
    /// The role (higher roles in the hierarchy pass too).
    fn role() -> Role;
}

/// The `admin` role.
#[derive(Debug)]
pub struct Admin;
/// The `moderator` role.
#[derive(Debug)]
pub struct Moderator;
/// The `user` role.
#[derive(Debug)]
pub struct User;

impl RoleRequirement for Admin {
    fn role() -> Role {
        Role::admin()
    }
}

impl RoleRequirement for Moderator {
    fn role() -> Role {
        Role::moderator()
    }
}

impl RoleRequirement for User {
    fn role() -> Role {
        Role::user()
    }
}

/// The error an adapter answers when no [`Authenticate`] was installed: a
/// server misconfiguration, never "allowed".
pub fn not_configured() -> Error {
    tracing::error!(
        event = SecurityEvent::SysMisconfigured.as_str(),
        reason = "authenticator_missing",
        "no Authenticate installed for a protected route"
    );
    Error::new(ErrorKind::Internal)
}

#[cfg(test)]
mod tests {
    use super::{
        AuthFuture, AuthMode, Authenticate, Authenticated, Credentials, authenticate_request,
        credentials,
    };
    use crate::authz::{Authorizer, Principal, RoleHierarchy, RolePermissions};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Every byte inside a token is accepted exactly when RFC 6750's
    /// `b64token` allows it: a space, quote, comma or control byte smuggled
    /// into the token (header splitting, a second scheme) is malformed.
    #[test]
    fn every_byte_is_judged_by_the_b64token_grammar() {
        for byte in 0_u8..=255 {
            let allowed = byte.is_ascii_alphanumeric()
                || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            let line = [b"Bearer a".as_slice(), &[byte], b"b"].concat();
            let judged = credentials(std::iter::once(line.as_slice()));
            match judged {
                Credentials::Bearer(token) => {
                    assert!(allowed, "byte {byte:#04x} accepted");
                    assert_eq!(token.as_bytes(), &line[7..]);
                }
                Credentials::Malformed => assert!(!allowed, "byte {byte:#04x} refused"),
                Credentials::None => panic!("byte {byte:#04x}: no credentials"),
            }
        }
    }

    /// Counts calls; accepts the token `good`, refuses anything else.
    struct Counting(AtomicU32, Authorizer);

    impl Authenticate for Counting {
        fn authenticate<'a>(&'a self, credentials: Credentials<'a>) -> AuthFuture<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match credentials {
                    Credentials::Bearer("good") => Ok(Authenticated {
                        claims: serde_json::from_value(serde_json::json!({
                            "iss": "i", "sub": "alice", "aud": "a", "exp": 2, "nbf": 0,
                            "iat": 0, "jti": "j", "type": "access"
                        }))
                        .map_err(|_| self.1.challenge_invalid_token())?,
                        principal: Principal::new("alice"),
                    }),
                    Credentials::None => Err(self.1.challenge_missing()),
                    _ => Err(self.1.challenge_invalid_token()),
                }
            })
        }

        fn authorizer(&self) -> &Authorizer {
            &self.1
        }
    }

    #[test]
    fn optional_mode_passes_only_the_caller_without_credentials() {
        let authorizer =
            Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), "api");
        let auth = Counting(AtomicU32::new(0), authorizer.expect("authorizer"));
        let run =
            |credentials, mode| futures_executor(authenticate_request(&auth, credentials, mode));
        assert!(matches!(
            run(Credentials::None, AuthMode::Optional),
            Ok(None)
        ));
        assert_eq!(
            auth.0.load(Ordering::SeqCst),
            0,
            "anonymous: nothing verified"
        );
        let required = run(Credentials::None, AuthMode::Required);
        assert_eq!(required.map(|_| ()).expect_err("refused").status(), 401);
        for mode in [AuthMode::Optional, AuthMode::Required] {
            let forged = run(Credentials::Bearer("forged"), mode);
            assert_eq!(forged.map(|_| ()).expect_err("refused").status(), 401);
            assert!(run(Credentials::Malformed, mode).is_err(), "{mode:?}");
            let good = run(Credentials::Bearer("good"), mode);
            assert!(matches!(good, Ok(Some(a)) if a.principal.subject == "alice"));
        }
    }

    /// Polls a future that never waits (the fake authenticator's).
    fn futures_executor<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("the fake authenticator never waits"),
        }
    }

    #[test]
    fn authorization_lines_are_read_per_rfc_6750() {
        fn read<'a>(lines: &[&'a str]) -> Credentials<'a> {
            credentials(lines.iter().map(|line| line.as_bytes()))
        }
        assert_eq!(read(&[]), Credentials::None);
        assert_eq!(read(&["Basic dXNlcjpwYXNz"]), Credentials::None);
        assert_eq!(
            read(&["Bearer abc.DEF-_~+/=="]),
            Credentials::Bearer("abc.DEF-_~+/==")
        );
        assert_eq!(read(&["bearer   abc"]), Credentials::Bearer("abc"));
        for malformed in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a=b",
            "Bearer ===",
            "Bearer \u{e9}",
        ] {
            assert_eq!(read(&[malformed]), Credentials::Malformed, "{malformed:?}");
        }
        assert_eq!(read(&["Bearer a", "Bearer b"]), Credentials::Malformed);
    }
}
