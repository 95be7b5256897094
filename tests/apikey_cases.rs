//! The shared case table of API-key authentication as a layer, scope guards
//! and per-key rate limits, included by both adapters' `tests/apikeys.rs`
//! with
//!
//! ```ignore
//! #[path = "../../../tests/apikey_cases.rs"]
//! mod apikey_cases;
//! ```
//!
//! so their parity is by construction. Each adapter builds, for a case's
//! [`Setup`], two routes behind its real API-key layer over the real
//! [`ApiKeys`] of a [`Fixture`] (a memory store, real issued keys, a manual
//! clock) and its real rate-limit layer over [`limiter`], keyed by the
//! verified [`KeyInfo`] ([`key_key`]): `/items` answers [`answer`] (the
//! key's owner and id, or `anonymous`), `/write` does too behind
//! `RequireScope<Write>` ([`WRITE`]). It sends the [`Call`]s in order (a
//! fresh app and fixture per case), turns each response into an
//! [`Outcome`] and calls [`check`].
//!
//! Decisions the table pins down:
//! - a valid key reaches the handler, from `X-API-Key` (or the configured
//!   header) or `Authorization: ApiKey`;
//! - missing, malformed, mistyped (checksum), unknown, wrong-secret,
//!   revoked and expired keys are one 401 with `WWW-Authenticate: ApiKey`
//!   and one body (the plain `unauthorized` envelope);
//! - an address outside the key's allow-list and a missing scope are 403;
//!   the client address is the trusted-proxy resolver's (a spoofed
//!   `X-Forwarded-For` from an untrusted peer is never read);
//! - a key together with a bearer token, or two keys, is a 400: the
//!   request's identity would be ambiguous;
//! - the per-key limit applies behind the layer, on the verified key only:
//!   a second key keeps its own budget, and a forged key carrying a valid
//!   key id spends nothing;
//! - optional mode lets a caller without a key through (the limit falls
//!   back to its address or refuses it, as configured), never a bad key;
//! - one refusal, one security event; no key secret in any log line.

#![allow(dead_code)] // each adapter uses the whole table; Cargo may not

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use palisade_apikeys::request::{KeyMode, Scope};
use palisade_apikeys::{
    ApiKeys, KeyId, KeyInfo, KeyRecord, KeyRequest, KeyStatus, KeyStore, KeyUsage, ManualClock,
    MemoryKeyStore, Pepper, StoreError,
};
use palisade_errors::testing::EventCapture;
use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};

/// What the limit does when no key was verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// `by_extension(key_key).or_refuse()`.
    Refuse,
    /// `by_extension(key_key).or_key(by_ip(ClientIpResolver::peer_only()))`.
    FallbackToIp,
}

/// Where client addresses come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxies {
    /// `ClientIpResolver::peer_only()`: forwarding headers are never read.
    None,
    /// Behind proxies in `10.0.0.0/8` writing `X-Forwarded-For` ([`resolver`]).
    Trusted,
}

/// How a case's routes are built.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Required or optional keys.
    pub mode: KeyMode,
    /// The limit's choice for a request without a verified key.
    pub missing: Missing,
    /// The client-address resolver of the layer.
    pub proxies: Proxies,
    /// The key header (`x-api-key` unless renamed).
    pub header: &'static str,
}

/// Which key a call presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// No key at all.
    Nothing,
    /// Alice's first key: scope `read`.
    Alice1,
    /// Alice's second key: scopes `read` and `items:write`.
    Alice2,
    /// Carol's key, revoked.
    Revoked,
    /// Carol's key, expired (the clock moved past it).
    Expired,
    /// Dave's key, usable only from `203.0.113.0/24`.
    IpLocked,
    /// A well-formed key this service never issued.
    Unknown,
    /// Alice1's key id with another secret and a valid checksum (a forger
    /// who knows the public id).
    WrongSecret,
    /// Alice1's key with one character changed (the checksum fails).
    Typo,
    /// Not a key.
    Garbage,
}

/// How the key is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// In the key header.
    Header,
    /// In `X-API-Key`, whatever the configured header.
    XApiKey,
    /// As `Authorization: ApiKey <key>`.
    Authorization,
    /// In the key header, with `Authorization: Bearer <token>` too.
    WithBearer,
    /// Only `Authorization: Bearer <token>`, no key.
    BearerOnly,
    /// In the key header twice.
    Twice,
}

/// The route called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/items`: any verified key.
    Items,
    /// `/write`: `RequireScope<Write>`.
    Write,
}

impl Route {
    /// The path.
    pub fn path(self) -> &'static str {
        match self {
            Route::Items => "/items",
            Route::Write => "/write",
        }
    }
}

/// One request and what it must get.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// The key presented.
    pub key: Key,
    /// How.
    pub sent: Sent,
    /// Where to.
    pub route: Route,
    /// The socket peer (`ip:port`).
    pub peer: &'static str,
    /// An `X-Forwarded-For` value, if sent.
    pub forwarded: Option<&'static str>,
    /// The expected status.
    pub status: u16,
    /// The one security event it must log, if any.
    pub event: Option<&'static str>,
}

const fn call(key: Key, peer: &'static str, status: u16, event: Option<&'static str>) -> Call {
    Call {
        key,
        sent: Sent::Header,
        route: Route::Items,
        peer,
        forwarded: None,
        status,
        event,
    }
}

const fn sent(mut call: Call, sent: Sent) -> Call {
    call.sent = sent;
    call
}

const fn to(mut call: Call, route: Route) -> Call {
    call.route = route;
    call
}

const fn via(mut call: Call, forwarded: &'static str) -> Call {
    call.forwarded = Some(forwarded);
    call
}

/// A case: routes and the requests sent to them in order.
#[derive(Debug)]
pub struct Case {
    /// For the failure report.
    pub name: &'static str,
    /// How the routes are built.
    pub setup: Setup,
    /// Sent in order to one app.
    pub calls: &'static [Call],
}

const LIMITED: Option<&str> = Some("excess_rate_limit_exceeded");
const INVALID: Option<&str> = Some("authn_token_invalid");
const AUTHZ: Option<&str> = Some("authz_fail");

const REQUIRED: Setup = Setup {
    mode: KeyMode::Required,
    missing: Missing::Refuse,
    proxies: Proxies::None,
    header: "x-api-key",
};

use Key::{
    Alice1, Alice2, Expired, Garbage, IpLocked, Nothing, Revoked, Typo, Unknown, WrongSecret,
};

/// Every case.
pub const CASES: &[Case] = &[
    Case {
        name: "valid_keys_pass_and_every_bad_key_is_one_401",
        setup: REQUIRED,
        calls: &[
            call(Alice1, "198.51.100.1:1000", 200, None),
            sent(
                call(Alice2, "198.51.100.1:1000", 200, None),
                Sent::Authorization,
            ),
            call(Nothing, "198.51.100.1:1000", 401, INVALID),
            call(Garbage, "198.51.100.1:1000", 401, INVALID),
            call(Typo, "198.51.100.1:1000", 401, INVALID),
            call(Unknown, "198.51.100.1:1000", 401, INVALID),
            call(WrongSecret, "198.51.100.1:1000", 401, INVALID),
            call(Revoked, "198.51.100.1:1000", 401, INVALID),
            call(Expired, "198.51.100.1:1000", 401, INVALID),
            sent(
                call(Garbage, "198.51.100.1:1000", 401, INVALID),
                Sent::Authorization,
            ),
            // Two key headers: a proxy and this service could read different ones.
            sent(call(Alice1, "198.51.100.1:1000", 401, INVALID), Sent::Twice),
            // A bearer token is no key.
            sent(
                call(Nothing, "198.51.100.1:1000", 401, INVALID),
                Sent::BearerOnly,
            ),
        ],
    },
    Case {
        // Attack: identity confusion. One request, two identities: the
        // bearer layer would see one caller, this layer another.
        name: "a_key_with_other_credentials_is_ambiguous",
        setup: REQUIRED,
        calls: &[
            sent(
                call(Alice1, "198.51.100.1:1000", 400, INVALID),
                Sent::WithBearer,
            ),
            sent(
                call(Garbage, "198.51.100.1:1000", 400, INVALID),
                Sent::WithBearer,
            ),
            call(Alice1, "198.51.100.1:1000", 200, None),
        ],
    },
    Case {
        // Attack: a key stolen from a CI system used from elsewhere, the
        // thief writing the allowed address into X-Forwarded-For.
        name: "ip_allow_list_with_no_trusted_proxy",
        setup: REQUIRED,
        calls: &[
            call(IpLocked, "203.0.113.9:1000", 200, None),
            // A dual-stack socket reports the same client IPv4-mapped.
            call(IpLocked, "[::ffff:203.0.113.9]:1000", 200, None),
            call(IpLocked, "[::ffff:198.51.100.1]:1000", 403, AUTHZ),
            call(IpLocked, "198.51.100.1:1000", 403, AUTHZ),
            via(
                call(IpLocked, "198.51.100.1:1000", 403, AUTHZ),
                "203.0.113.9",
            ),
            // An unrestricted key is not affected by the header either.
            via(call(Alice1, "198.51.100.1:1000", 200, None), "203.0.113.9"),
        ],
    },
    Case {
        name: "ip_allow_list_behind_a_trusted_proxy",
        setup: Setup {
            proxies: Proxies::Trusted,
            ..REQUIRED
        },
        calls: &[
            via(call(IpLocked, "10.0.0.5:1000", 200, None), "203.0.113.9"),
            via(call(IpLocked, "10.0.0.5:1000", 403, AUTHZ), "198.51.100.1"),
            // The client wrote the left part; the proxy appended its peer.
            via(
                call(IpLocked, "10.0.0.5:1000", 403, AUTHZ),
                "203.0.113.9, 198.51.100.1",
            ),
            // Not from the proxy: the header is the client's own writing.
            via(
                call(IpLocked, "198.51.100.1:1000", 403, AUTHZ),
                "203.0.113.9",
            ),
            // The proxy itself is not in the allow-list.
            call(IpLocked, "10.0.0.5:1000", 403, AUTHZ),
        ],
    },
    Case {
        // Attack: scope escalation with a read-only key.
        name: "require_scope",
        setup: REQUIRED,
        calls: &[
            to(call(Alice1, "198.51.100.1:1000", 403, AUTHZ), Route::Write),
            to(call(Alice2, "198.51.100.1:1000", 200, None), Route::Write),
            to(
                call(Nothing, "198.51.100.1:1000", 401, INVALID),
                Route::Write,
            ),
            to(
                call(Revoked, "198.51.100.1:1000", 401, INVALID),
                Route::Write,
            ),
        ],
    },
    Case {
        // Attacks: one key hammering the API from many addresses; a
        // forger sending a victim's (public) key id to spend its budget.
        name: "per_key_limit_on_the_verified_key_only",
        setup: REQUIRED,
        calls: &[
            call(WrongSecret, "192.0.2.1:1000", 401, INVALID),
            call(WrongSecret, "192.0.2.1:1000", 401, INVALID),
            call(WrongSecret, "192.0.2.1:1000", 401, INVALID),
            call(WrongSecret, "192.0.2.1:1000", 401, INVALID),
            // 3/minute for Alice1, from any address: all still there.
            call(Alice1, "198.51.100.1:1000", 200, None),
            call(Alice1, "198.51.100.2:1000", 200, None),
            sent(
                call(Alice1, "198.51.100.3:1000", 200, None),
                Sent::Authorization,
            ),
            call(Alice1, "198.51.100.4:1000", 429, LIMITED),
            call(Alice1, "198.51.100.5:1000", 429, LIMITED),
            // Her second key has its own budget.
            call(Alice2, "198.51.100.4:1000", 200, None),
            call(Alice2, "198.51.100.4:1000", 200, None),
            call(Alice2, "198.51.100.4:1000", 200, None),
            call(Alice2, "198.51.100.4:1000", 429, LIMITED),
        ],
    },
    Case {
        name: "optional_keys_anonymous_falls_back_to_the_client_ip",
        setup: Setup {
            mode: KeyMode::Optional,
            missing: Missing::FallbackToIp,
            ..REQUIRED
        },
        calls: &[
            call(Nothing, "203.0.113.7:1000", 200, None),
            sent(
                call(Nothing, "203.0.113.7:1001", 200, None),
                Sent::BearerOnly,
            ),
            call(Nothing, "203.0.113.7:1002", 200, None),
            call(Nothing, "203.0.113.7:1003", 429, LIMITED),
            call(Nothing, "203.0.113.8:1000", 200, None),
            // A key from the same address has its own budget.
            call(Alice1, "203.0.113.7:1004", 200, None),
            // A bad key is not downgraded to anonymous.
            call(WrongSecret, "203.0.113.9:1000", 401, INVALID),
            call(Expired, "203.0.113.9:1000", 401, INVALID),
            call(Garbage, "203.0.113.9:1000", 401, INVALID),
            sent(
                call(Alice1, "203.0.113.9:1000", 400, INVALID),
                Sent::WithBearer,
            ),
            // The scope guard refuses an anonymous caller with the challenge.
            to(
                call(Nothing, "203.0.113.9:1000", 401, INVALID),
                Route::Write,
            ),
        ],
    },
    Case {
        name: "optional_keys_anonymous_refused_by_the_limit",
        setup: Setup {
            mode: KeyMode::Optional,
            missing: Missing::Refuse,
            ..REQUIRED
        },
        calls: &[
            call(Nothing, "203.0.113.7:1000", 401, INVALID),
            call(Alice1, "203.0.113.7:1000", 200, None),
        ],
    },
    Case {
        name: "a_renamed_key_header",
        setup: Setup {
            header: "x-service-key",
            ..REQUIRED
        },
        calls: &[
            call(Alice1, "198.51.100.1:1000", 200, None),
            sent(
                call(Alice1, "198.51.100.1:1000", 200, None),
                Sent::Authorization,
            ),
            // X-API-Key is not read any more: no key.
            sent(
                call(Alice1, "198.51.100.1:1000", 401, INVALID),
                Sent::XApiKey,
            ),
        ],
    },
];

/// The scope of `/write`.
pub struct Write;

impl Scope for Write {
    const NAME: &'static str = WRITE;
}

/// The name of [`Write`].
pub const WRITE: &str = "items:write";

/// The key store of every case.
pub type Keys = ApiKeys<MemoryKeyStore, ManualClock>;

/// A case's keys: issued for real, then revoked or left to expire.
pub struct Fixture {
    /// The service's keys.
    pub keys: Arc<Keys>,
    /// Their clock.
    pub clock: ManualClock,
    presented: Vec<(Key, String)>,
    infos: Vec<(Key, KeyInfo)>,
}

fn pepper(byte: u8) -> Pepper {
    Pepper::new("p1", vec![byte; 32]).expect("test pepper")
}

impl Fixture {
    /// Issues the keys of [`Key`] into a fresh memory store.
    pub async fn new() -> Fixture {
        let clock = ManualClock::from_unix_secs(1_700_000_000);
        let keys = ApiKeys::new(MemoryKeyStore::new(), pepper(7)).with_clock(clock.clone());
        let grantable = ["read", WRITE];
        let issue = |request: KeyRequest| {
            let keys = &keys;
            async move { keys.issue(request, &grantable).await.expect("test key") }
        };
        let alice1 = issue(KeyRequest::new("alice", "one").scopes(["read"])).await;
        let alice2 = issue(KeyRequest::new("alice", "two").scopes(["read", WRITE])).await;
        let revoked = issue(KeyRequest::new("carol", "revoked")).await;
        keys.revoke("carol", revoked.info.key_id)
            .await
            .expect("revoke");
        let expired =
            issue(KeyRequest::new("carol", "short").expires_in(Duration::from_secs(60))).await;
        let ip_locked = issue(
            KeyRequest::new("dave", "ci")
                .allowed_ips(["203.0.113.0/24".parse().expect("test block")]),
        )
        .await;
        clock.advance(Duration::from_secs(120));
        // A real key of another service (another store and pepper).
        let elsewhere = ApiKeys::new(MemoryKeyStore::new(), pepper(8));
        let unknown = elsewhere
            .issue(KeyRequest::new("mallory", "x"), &[])
            .await
            .expect("test key");
        let alice1_text = alice1.key.expose_secret().to_owned();
        let unknown_text = unknown.key.expose_secret().to_owned();
        let wrong_secret = forge(&alice1_text, &unknown_text);
        let typo = one_char_changed(&alice1_text);
        let presented = vec![
            (Alice1, alice1_text),
            (Alice2, alice2.key.expose_secret().to_owned()),
            (Revoked, revoked.key.expose_secret().to_owned()),
            (Expired, expired.key.expose_secret().to_owned()),
            (IpLocked, ip_locked.key.expose_secret().to_owned()),
            (Unknown, unknown_text),
            (WrongSecret, wrong_secret),
            (Typo, typo),
            (Garbage, "not-a-key".to_owned()),
        ];
        let infos = vec![
            (Alice1, alice1.info),
            (Alice2, alice2.info),
            (IpLocked, ip_locked.info),
        ];
        Fixture {
            keys: Arc::new(keys),
            clock,
            presented,
            infos,
        }
    }

    /// The text `key` presents (`None` for [`Key::Nothing`]).
    pub fn presented(&self, key: Key) -> Option<&str> {
        self.presented
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, text)| text.as_str())
    }

    /// The headers of `call` under `setup` (name, value), in order.
    pub fn headers(&self, setup: &Setup, call: &Call) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        let key = self.presented(call.key).map(str::to_owned);
        let bearer = ("authorization", format!("Bearer {BEARER}"));
        match (call.sent, key) {
            (Sent::BearerOnly, _) => headers.push(bearer),
            (_, None) => {}
            (Sent::Header, Some(key)) => headers.push((setup.header, key)),
            (Sent::XApiKey, Some(key)) => headers.push(("x-api-key", key)),
            (Sent::Authorization, Some(key)) => {
                headers.push(("authorization", format!("ApiKey {key}")));
            }
            (Sent::WithBearer, Some(key)) => {
                headers.push((setup.header, key));
                headers.push(bearer);
            }
            (Sent::Twice, Some(key)) => {
                headers.push((setup.header, key.clone()));
                headers.push((setup.header, key));
            }
        }
        if let Some(forwarded) = call.forwarded {
            headers.push(("x-forwarded-for", forwarded.to_owned()));
        }
        headers
    }

    fn info(&self, key: Key) -> &KeyInfo {
        self.infos
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, info)| info)
            .expect("an issued key")
    }

    /// Panics if any key's secret (or the key) reached `capture`.
    pub fn assert_no_secret_logged(&self, capture: &EventCapture) {
        for (_, text) in &self.presented {
            capture.assert_absent(text);
            if let Some((_, secret)) = text.rsplit_once('_') {
                capture.assert_absent(secret);
            }
        }
    }
}

/// A well-formed bearer token (its worth does not matter: the request is
/// refused as ambiguous before either is judged).
pub const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";

/// `victim`'s key id with `other`'s secret and a valid checksum.
fn forge(victim: &str, other: &str) -> String {
    let (victim_prefix, _) = victim.rsplit_once('_').expect("a key");
    let (_, other_tail) = other.rsplit_once('_').expect("a key");
    let secret: String = other_tail.chars().take(43).collect();
    let body = format!("{victim_prefix}_{secret}");
    let sum = base62_6(crc32(body.as_bytes()));
    format!("{body}{sum}")
}

fn one_char_changed(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).expect("ASCII")
}

/// CRC-32 (IEEE), as the key format's checksum.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn base62_6(mut value: u32) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// The layer's client-address resolver for `proxies`.
pub fn resolver(proxies: Proxies) -> ClientIpResolver {
    match proxies {
        Proxies::None => ClientIpResolver::peer_only(),
        Proxies::Trusted => ClientIpResolver::behind_proxies(
            [IpNet::parse("10.0.0.0/8").expect("test net")],
            ForwardedHeader::XForwardedFor,
        ),
    }
}

/// 3/minute, named `key`.
pub fn limiter() -> Arc<RateLimiter<MemoryStore>> {
    Arc::new(RateLimiter::new(
        "key",
        Policy::parse(["3/minute"]).expect("test quota"),
        MemoryStore::new().with_max_entries(1000),
    ))
}

/// The limit's key for a verified key: its public id.
pub fn key_key(info: &KeyInfo) -> String {
    format!("key:{}", info.key_id)
}

/// What the case handlers answer.
pub fn answer(info: Option<&KeyInfo>) -> String {
    info.map_or_else(
        || "anonymous".to_owned(),
        |info| format!("{} {}", info.owner, info.key_id),
    )
}

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

/// The plain 401 envelope (no reason, no detail), as JSON without its
/// request id.
fn plain_unauthorized() -> serde_json::Value {
    let error = palisade_errors::Error::new(palisade_errors::ErrorKind::Unauthorized);
    serde_json::from_slice(error.to_response(None).body()).expect("envelope")
}

fn without_request_id(body: &str) -> serde_json::Value {
    let mut json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(error) = json.get_mut("error") {
        error["request_id"] = serde_json::Value::Null;
    }
    json
}

/// Checks one call's outcome (the adapter checks its log with
/// [`Fixture::assert_no_secret_logged`]).
pub fn check(fixture: &Fixture, case: &Case, index: usize, outcome: &Outcome) {
    let call = &case.calls[index];
    let at = format!("{} call {index} ({call:?}): {outcome:?}", case.name);
    assert_eq!(outcome.status, call.status, "{at}");
    let expected: Vec<&str> = call.event.into_iter().collect();
    assert_eq!(outcome.events, expected, "one refusal, one event: {at}");
    let json: serde_json::Value = serde_json::from_str(&outcome.body).unwrap_or_default();
    let code = json["error"]["code"].as_str();
    match call.status {
        200 => {
            let info = (call.key != Nothing).then(|| fixture.info(call.key));
            assert_eq!(outcome.body, answer(info), "the handler sees the key: {at}");
            let ratelimit = outcome.ratelimit.as_deref().unwrap_or_default();
            assert!(ratelimit.starts_with("\"key-60s\""), "metered: {at}");
        }
        429 => {
            assert_eq!(code, Some("rate_limited"), "{at}");
            assert!(outcome.retry_after.is_some(), "Retry-After: {at}");
        }
        401 => {
            // One body for every reason: nothing tells a prober which.
            assert_eq!(
                without_request_id(&outcome.body),
                plain_unauthorized(),
                "{at}"
            );
            assert_eq!(outcome.www_authenticate.as_deref(), Some("ApiKey"), "{at}");
        }
        403 => {
            assert_eq!(code, Some("forbidden"), "{at}");
            assert_eq!(outcome.www_authenticate, None, "{at}");
        }
        400 => assert_eq!(code, Some("bad_request"), "{at}"),
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

/// The client address a key check sees for `peer` under `proxies` when no
/// header is sent (for adapter-specific tests).
pub fn peer_ip(peer: &str) -> IpAddr {
    peer.parse::<std::net::SocketAddr>().expect("peer").ip()
}

/// A key store that never answers (Redis down).
pub struct Down;

impl KeyStore for Down {
    async fn insert(&self, _: KeyRecord) -> Result<(), StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn insert_capped(&self, _: KeyRecord, _: usize) -> Result<bool, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn get(&self, _: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn set_status(&self, _: &KeyId, _: KeyStatus) -> Result<bool, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn replace_status(
        &self,
        _: &KeyId,
        _: KeyStatus,
        _: KeyStatus,
    ) -> Result<bool, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn record_usage(&self, _: &[KeyUsage]) -> Result<(), StoreError> {
        Err(StoreError::timeout("api key store"))
    }
    async fn list_owner(&self, _: &str) -> Result<Vec<KeyRecord>, StoreError> {
        Err(StoreError::timeout("api key store"))
    }
}

/// The keys of a service whose store is down.
pub fn keys_down() -> Arc<ApiKeys<Down>> {
    Arc::new(ApiKeys::new(Down, pepper(7)))
}

/// Attack: waiting for (or causing) a store outage to get in. Behind a
/// required layer over [`keys_down`], the keys sent in `X-API-Key` and
/// what each must get: a well-formed key is a 503 (fail closed, never
/// let through), while a malformed one is refused before any store call.
pub const OUTAGE: &[(Key, u16, Option<&str>)] = &[
    (Alice1, 503, Some("store_unavailable")),
    (Garbage, 401, INVALID),
    (Typo, 401, INVALID),
    (Nothing, 401, INVALID),
];

/// Checks one [`OUTAGE`] call.
pub fn check_outage(index: usize, outcome: &Outcome) {
    let (key, status, event) = OUTAGE[index];
    let at = format!("outage call {index} ({key:?}): {outcome:?}");
    assert_eq!(outcome.status, status, "{at}");
    let expected: Vec<&str> = event.into_iter().collect();
    assert_eq!(outcome.events, expected, "{at}");
    let json: serde_json::Value = serde_json::from_str(&outcome.body).unwrap_or_default();
    if status == 503 {
        assert_eq!(json["error"]["code"].as_str(), Some("unavailable"), "{at}");
        assert!(outcome.retry_after.is_some(), "Retry-After: {at}");
    } else {
        assert_eq!(outcome.www_authenticate.as_deref(), Some("ApiKey"), "{at}");
    }
}
