//! The shared case table of authentication as a layer and identity-keyed
//! rate limits, included by both adapters' `tests/identity.rs` with
//!
//! ```ignore
//! #[path = "../../../tests/identity_cases.rs"]
//! mod identity_cases;
//! ```
//!
//! so their parity is by construction. Each adapter builds, for a case's
//! [`Setup`], a route behind its real authentication layer (a real
//! [`BearerAuth`], real signed tokens) and a [`limiter`] keyed by the
//! [`Principal`] ([`subject_key`]), whose handler answers the principal's
//! subject or `anonymous`. It sends the [`Call`]s in order (a fresh app per
//! case), turns each response into an [`Outcome`] and calls [`check`].
//!
//! Decisions the table pins down:
//! - behind the layer, a per-subject limit applies (the old extractor-only
//!   authentication ran after every layer, and the limit never did);
//! - a limit keyed by a missing identity never passes a request unmetered:
//!   it falls back to the client IP or refuses (401 with the challenge)
//!   for an anonymous caller, as configured, and answers 500 with
//!   `sys_misconfigured` when the authentication layer did not run first;
//! - optional authentication lets a caller without credentials through, but
//!   a forged token is a 401, never downgraded to anonymous;
//! - one refusal, one security event.

#![allow(dead_code)] // each adapter uses the whole table; Cargo may not

use std::sync::Arc;

use palisade_auth_tokens::authz::{Authorizer, Principal, Role, RoleHierarchy, RolePermissions};
use palisade_auth_tokens::bearer::{AuthMode, BearerAuth};
use palisade_auth_tokens::revocation::MemoryRevocationStore;
use palisade_auth_tokens::{
    Algorithm, Grant, Keyring, NoCustomClaims, SigningKey, SystemClock, TokenIssuer, TokenPolicy,
    TokenVerifier,
};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};
use secrecy::SecretSlice;

/// Which layer runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Authentication, then the limit: the order to use.
    AuthFirst,
    /// The limit, then authentication: a wrong order.
    LimitFirst,
}

/// What the limit does when the principal is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// `by_extension(..).or_refuse()`.
    Refuse,
    /// `by_extension(..).or_key(by_ip(ClientIpResolver::peer_only()))`.
    FallbackToIp,
}

/// How a case's route is built.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Required or optional authentication.
    pub mode: AuthMode,
    /// The limit's choice for a missing principal.
    pub missing: Missing,
    /// The order of the two layers.
    pub order: Order,
}

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No `Authorization` header.
    Anonymous,
    /// A valid token for `alice`.
    Alice,
    /// A valid token for `bob`.
    Bob,
    /// A well-formed token signed with a key the service does not know.
    Forged,
}

/// One request and what it must get.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// Who sends it.
    pub caller: Caller,
    /// The socket peer (`ip:port`).
    pub peer: &'static str,
    /// The expected status.
    pub status: u16,
    /// The one security event it must log, if any.
    pub event: Option<&'static str>,
}

const fn call(
    caller: Caller,
    peer: &'static str,
    status: u16,
    event: Option<&'static str>,
) -> Call {
    Call {
        caller,
        peer,
        status,
        event,
    }
}

/// A case: a route and the requests sent to it in order.
#[derive(Debug)]
pub struct Case {
    /// For the failure report.
    pub name: &'static str,
    /// How the route is built.
    pub setup: Setup,
    /// Sent in order to one app.
    pub calls: &'static [Call],
}

const LIMITED: Option<&str> = Some("excess_rate_limit_exceeded");
const TOKEN: Option<&str> = Some("authn_token_invalid");
const MISCONFIGURED: Option<&str> = Some("sys_misconfigured");

use Caller::{Alice, Anonymous, Bob, Forged};

/// Every case.
pub const CASES: &[Case] = &[
    Case {
        name: "per_subject_limit_behind_required_auth",
        setup: Setup {
            mode: AuthMode::Required,
            missing: Missing::Refuse,
            order: Order::AuthFirst,
        },
        calls: &[
            // 3/minute for alice, from any address.
            call(Alice, "198.51.100.1:1000", 200, None),
            call(Alice, "198.51.100.2:1000", 200, None),
            call(Alice, "198.51.100.3:1000", 200, None),
            call(Alice, "198.51.100.4:1000", 429, LIMITED),
            call(Alice, "198.51.100.4:1000", 429, LIMITED),
            // Bob's budget is his own.
            call(Bob, "198.51.100.4:1000", 200, None),
            call(Bob, "198.51.100.4:1000", 200, None),
            call(Bob, "198.51.100.4:1000", 200, None),
            call(Bob, "198.51.100.4:1000", 429, LIMITED),
            call(Anonymous, "198.51.100.5:1000", 401, TOKEN),
            call(Forged, "198.51.100.5:1000", 401, TOKEN),
        ],
    },
    Case {
        name: "optional_auth_anonymous_falls_back_to_the_client_ip",
        setup: Setup {
            mode: AuthMode::Optional,
            missing: Missing::FallbackToIp,
            order: Order::AuthFirst,
        },
        calls: &[
            call(Anonymous, "203.0.113.7:1000", 200, None),
            call(Anonymous, "203.0.113.7:1001", 200, None),
            call(Anonymous, "203.0.113.7:1002", 200, None),
            call(Anonymous, "203.0.113.7:1003", 429, LIMITED),
            call(Anonymous, "203.0.113.8:1000", 200, None),
            // Alice from the same address has her own budget.
            call(Alice, "203.0.113.7:1004", 200, None),
            // A forged token is not downgraded to anonymous.
            call(Forged, "203.0.113.9:1000", 401, TOKEN),
        ],
    },
    Case {
        name: "optional_auth_anonymous_refused_by_the_limit",
        setup: Setup {
            mode: AuthMode::Optional,
            missing: Missing::Refuse,
            order: Order::AuthFirst,
        },
        calls: &[
            call(Anonymous, "203.0.113.7:1000", 401, TOKEN),
            call(Alice, "203.0.113.7:1000", 200, None),
            call(Forged, "203.0.113.7:1000", 401, TOKEN),
        ],
    },
    Case {
        name: "limit_before_auth_refusing_is_a_500",
        setup: Setup {
            mode: AuthMode::Required,
            missing: Missing::Refuse,
            order: Order::LimitFirst,
        },
        calls: &[
            call(Alice, "198.51.100.1:1000", 500, MISCONFIGURED),
            call(Anonymous, "198.51.100.1:1000", 500, MISCONFIGURED),
        ],
    },
    Case {
        name: "limit_before_auth_with_fallback_is_a_500",
        setup: Setup {
            mode: AuthMode::Optional,
            missing: Missing::FallbackToIp,
            order: Order::LimitFirst,
        },
        calls: &[
            call(Alice, "198.51.100.1:1000", 500, MISCONFIGURED),
            call(Anonymous, "198.51.100.1:1000", 500, MISCONFIGURED),
        ],
    },
];

/// What an adapter observed for one call.
#[derive(Debug)]
pub struct Outcome {
    /// The status.
    pub status: u16,
    /// `WWW-Authenticate`, if sent.
    pub www_authenticate: Option<String>,
    /// `Retry-After`, if sent.
    pub retry_after: Option<String>,
    /// `RateLimit`, if sent.
    pub ratelimit: Option<String>,
    /// `X-Request-Id`, if sent.
    pub request_id: Option<String>,
    /// The body as text.
    pub body: String,
    /// The `event` field of every security event the call logged.
    pub events: Vec<String>,
}

/// The realm of [`authenticator`].
pub const REALM: &str = "api";

/// Checks one call's outcome.
pub fn check(case: &Case, index: usize, outcome: &Outcome) {
    let call = &case.calls[index];
    let at = format!("{} call {index} ({call:?}): {outcome:?}", case.name);
    assert_eq!(outcome.status, call.status, "{at}");
    let expected: Vec<&str> = call.event.into_iter().collect();
    assert_eq!(outcome.events, expected, "one refusal, one event: {at}");
    let json: serde_json::Value = serde_json::from_str(&outcome.body).unwrap_or_default();
    let code = json["error"]["code"].as_str();
    match call.status {
        200 => {
            let subject = match call.caller {
                Alice => "alice",
                Bob => "bob",
                _ => "anonymous",
            };
            assert_eq!(outcome.body, subject, "{at}");
            let ratelimit = outcome.ratelimit.as_deref().unwrap_or_default();
            assert!(ratelimit.starts_with("\"user-60s\""), "metered: {at}");
        }
        429 => {
            assert_eq!(code, Some("rate_limited"), "{at}");
            assert!(outcome.retry_after.is_some(), "Retry-After: {at}");
        }
        401 => {
            assert_eq!(code, Some("unauthorized"), "{at}");
            let challenge = if call.caller == Anonymous {
                format!("Bearer realm=\"{REALM}\"")
            } else {
                format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
            };
            assert_eq!(
                outcome.www_authenticate.as_deref(),
                Some(&*challenge),
                "{at}"
            );
        }
        500 => assert_eq!(code, Some("internal"), "{at}"),
        other => panic!("no rule for {other}: {at}"),
    }
    if call.status != 200 {
        assert_eq!(
            json["error"]["request_id"].as_str(),
            outcome.request_id.as_deref(),
            "the envelope repeats the request id: {at}"
        );
    }
}

fn ring(kid: &str, secret: &[u8]) -> Keyring {
    let key = SigningKey::hmac(kid, Algorithm::HS256, &SecretSlice::from(secret.to_vec()));
    Keyring::new([key.expect("test key")]).expect("test keyring")
}

fn policy() -> TokenPolicy {
    TokenPolicy::new("https://auth.example.com", "api").expect("test policy")
}

fn access_ring() -> Keyring {
    ring("a1", b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa")
}

fn refresh_ring() -> Keyring {
    ring("r1", b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa")
}

/// The authenticator of every case.
pub type Auth = BearerAuth<MemoryRevocationStore, SystemClock>;

/// The service's authenticator, checking revocations in `revocations`.
pub fn authenticator(revocations: MemoryRevocationStore) -> Auth {
    let verifier = TokenVerifier::new(access_ring(), refresh_ring(), policy());
    let authorizer = Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), REALM)
        .expect("test authorizer");
    BearerAuth::new(verifier, authorizer, revocations)
}

/// The `Authorization` header value a caller sends.
pub fn authorization(caller: Caller) -> Option<String> {
    let (subject, issuer) = match caller {
        Anonymous => return None,
        Alice => (
            "alice",
            TokenIssuer::new(access_ring(), refresh_ring(), policy()),
        ),
        Bob => (
            "bob",
            TokenIssuer::new(access_ring(), refresh_ring(), policy()),
        ),
        Forged => (
            "alice",
            TokenIssuer::new(
                ring("a1", b"an-attacker-key-0123456789abcdef"),
                refresh_ring(),
                policy(),
            ),
        ),
    };
    let grant = Grant {
        subject: subject.into(),
        role: Some(Role::user()),
        ..Grant::default()
    };
    let token = issuer
        .issue_access(&grant, NoCustomClaims {})
        .expect("test token");
    Some(format!("Bearer {}", token.token))
}

/// 3/minute, named `user`.
pub fn limiter() -> Arc<RateLimiter<MemoryStore>> {
    Arc::new(RateLimiter::new(
        "user",
        Policy::parse(["3/minute"]).expect("test quota"),
        MemoryStore::new().with_max_entries(1000),
    ))
}

/// The limit's key for a principal.
pub fn subject_key(principal: &Principal) -> String {
    format!("sub:{}", principal.subject)
}

/// What the case handler answers.
pub fn answer(principal: Option<&Principal>) -> String {
    principal.map_or_else(|| "anonymous".to_owned(), |p| p.subject.clone())
}
