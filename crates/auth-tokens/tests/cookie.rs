//! The refresh cookie, its CSRF rule, and the device binding of families
//! (issue #11, item 1).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use http::{HeaderMap, HeaderValue};
use palisade_auth_tokens::cookie::{DeviceIdFrom, RefreshCookie, RefreshSource, body_token};
use palisade_auth_tokens::refresh::{DeviceId, FamilyConfig, MemoryFamilyStore, RefreshFamilies};
use palisade_auth_tokens::revocation::{MemoryRevocationStore, RevocationStore, TokenRef};
use palisade_auth_tokens::{
    Algorithm, ConfigErrorKind, Grant, Keyring, ManualClock, SigningKey, TokenErrorKind,
    TokenIssuer, TokenPolicy, TokenVerifier,
};
use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use secrecy::SecretSlice;

const NOW: u64 = 1_800_000_000;
const APP: &str = "https://app.example.com";
const DEVICE: &str = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
const OTHER_DEVICE: &str = "ffffffff-4b5a-4c6d-8e7f-9a0b1c2d3e4f";

fn policy() -> TokenPolicy {
    TokenPolicy::builder("https://auth.example.com", "api")
        .refresh_ttl(1_209_600)
        .build()
        .unwrap()
}

fn cookie() -> RefreshCookie {
    RefreshCookie::new(&policy(), [APP, "http://localhost:8080"]).unwrap()
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

type Families = RefreshFamilies<MemoryFamilyStore<ManualClock>, ManualClock>;

fn families() -> (Families, MemoryRevocationStore<ManualClock>, ManualClock) {
    let clock = ManualClock::from_unix_secs(NOW);
    let secret = |byte: u8| SecretSlice::from((0..32).map(|i| byte ^ i).collect::<Vec<u8>>());
    let access =
        Keyring::new([SigningKey::hmac("a1", Algorithm::HS256, &secret(0x5a)).unwrap()]).unwrap();
    let refresh =
        Keyring::new([SigningKey::hmac("r1", Algorithm::HS256, &secret(0xa5)).unwrap()]).unwrap();
    let issuer = TokenIssuer::with_clock(access.clone(), refresh.clone(), policy(), clock.clone());
    let verifier = TokenVerifier::with_clock(access, refresh, policy(), clock.clone());
    let families = RefreshFamilies::new(
        issuer,
        verifier,
        MemoryFamilyStore::with_clock(clock.clone()),
        &secret(0x3c),
        FamilyConfig::default(),
    )
    .unwrap();
    (
        families,
        MemoryRevocationStore::with_clock(clock.clone()),
        clock,
    )
}

fn user() -> Grant {
    Grant {
        subject: "user-42".into(),
        ..Grant::default()
    }
}

async fn lookup(subject: String) -> Option<Grant> {
    Some(Grant {
        subject,
        ..Grant::default()
    })
}

#[test]
fn set_cookie_has_exactly_the_host_prefix_attributes_and_the_refresh_ttl() {
    let cookie = cookie();
    assert_eq!(
        cookie.set_cookie("a.b.c").unwrap(),
        "__Host-refresh=a.b.c; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=1209600"
    );
    assert_eq!(
        cookie.clear_cookie(),
        "__Host-refresh=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    );
    // A value that is not a cookie-octet string is never written.
    assert_eq!(cookie.set_cookie("a;b").unwrap_err().status(), 500);
    assert_eq!(cookie.set_cookie("").unwrap_err().status(), 500);
}

#[test]
fn a_name_without_the_host_prefix_needs_the_dangerous_opt_in() {
    let error = cookie().with_name("refresh").unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidCookie);
    assert!(error.to_string().contains("__Host-"));
    assert_eq!(cookie().with_name("__Host-rt").unwrap().name(), "__Host-rt");
    let dangerous = cookie().with_name_dangerously("rt").unwrap();
    assert!(
        dangerous
            .set_cookie("t")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("rt=t;")
    );
    assert!(cookie().with_name_dangerously("a b").is_err());
    assert!(cookie().with_name_dangerously("").is_err());
}

#[test]
fn allowed_origins_must_be_origins() {
    for bad in [&["*"][..], &["null"], &["https://a.example/path"], &[]] {
        let error = RefreshCookie::new(&policy(), bad.iter().copied()).unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::InvalidCookie, "{bad:?}");
    }
    assert!(cookie().with_csrf_header("content-type", "x").is_err());
    assert!(cookie().with_csrf_header("x-csrf", "").is_err());
    assert!(
        cookie()
            .with_csrf_header("sec-fetch-site", "same-origin")
            .is_err()
    );
}

#[test]
fn a_cookie_needs_an_allowed_origin_and_the_custom_header() {
    let cookie = cookie();
    let capture = EventCapture::new();
    let _g = capture.set_default();
    let ok = headers(&[
        ("cookie", "theme=dark; __Host-refresh=r.t.1"),
        ("origin", "https://APP.example.com:443"),
        ("x-requested-with", "palisade"),
    ]);
    let presented = cookie.from_request(&ok, None).unwrap().unwrap();
    assert_eq!(presented.token, "r.t.1");
    assert_eq!(presented.source, RefreshSource::Cookie);
    assert!(capture.security_events().is_empty());

    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("cookie", "__Host-refresh=r"),
                ("x-requested-with", "palisade"),
            ],
            "csrf_origin",
        ),
        (
            &[
                ("cookie", "__Host-refresh=r"),
                ("origin", "null"),
                ("x-requested-with", "palisade"),
            ],
            "csrf_origin",
        ),
        (
            &[
                ("cookie", "__Host-refresh=r"),
                ("origin", "https://blog.example.com"),
                ("x-requested-with", "palisade"),
            ],
            "csrf_origin",
        ),
        (
            &[
                ("cookie", "__Host-refresh=r"),
                ("origin", "http://localhost:8081"),
                ("x-requested-with", "palisade"),
            ],
            "csrf_origin",
        ),
        (
            &[
                ("cookie", "__Host-refresh=r"),
                ("origin", APP),
                ("origin", APP),
                ("x-requested-with", "palisade"),
            ],
            "csrf_origin",
        ),
        (
            &[("cookie", "__Host-refresh=r"), ("origin", APP)],
            "csrf_header",
        ),
        (
            &[
                ("cookie", "__Host-refresh=r"),
                ("origin", APP),
                ("x-requested-with", "XMLHttpRequest"),
            ],
            "csrf_header",
        ),
    ];
    for (pairs, reason) in cases {
        let mut map = HeaderMap::new();
        for (name, value) in *pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        let before = capture.security_events().len();
        let error = cookie.from_request(&map, None).unwrap_err();
        assert_eq!(error.status(), 403, "{pairs:?}");
        assert!(error.is_logged());
        let events = capture.security_events();
        assert_eq!(events.len(), before + 1, "{pairs:?}: one event per refusal");
        let event = events.last().unwrap();
        assert_eq!(event.event(), Some(SecurityEvent::AuthzFail));
        assert_eq!(event.field("reason"), Some(*reason), "{pairs:?}");
    }
    capture.assert_absent("__Host-refresh=r");
}

#[test]
fn a_body_token_is_not_ambient_and_needs_no_csrf_check() {
    let cookie = cookie();
    let body = body_token(br#"{"refresh_token": "b.o.dy"}"#)
        .unwrap()
        .unwrap();
    // A cookie is there too, without Origin or header: the body wins.
    let map = headers(&[("cookie", "__Host-refresh=c.o.okie")]);
    let presented = cookie.from_request(&map, Some(&body)).unwrap().unwrap();
    assert_eq!(
        (presented.token, presented.source),
        ("b.o.dy", RefreshSource::Body)
    );
    // Neither: no token.
    assert_eq!(cookie.from_request(&HeaderMap::new(), None).unwrap(), None);
    assert_eq!(body_token(b"").unwrap(), None);
    assert_eq!(body_token(b"{}").unwrap(), None);
    // Type confusion: `["<token>"]` read by position as `{refresh_token}`.
    for bad in [
        &b"[1]"[..],
        b"{\"refresh_token\": 1}",
        b"nope",
        b"[\"b.o.dy\"]",
        b" [\"b.o.dy\"]",
    ] {
        assert_eq!(body_token(bad).unwrap_err().status(), 400);
    }
    // The cookie twice (one a sibling host may have set): which is ours
    // cannot be told.
    let twice = headers(&[
        ("cookie", "__Host-refresh=a"),
        ("cookie", "__Host-refresh=b"),
    ]);
    assert_eq!(cookie.from_request(&twice, None).unwrap_err().status(), 400);
}

#[test]
fn the_device_id_is_read_from_the_configured_header_or_cookie() {
    let from_header = cookie();
    assert_eq!(from_header.device_id(&HeaderMap::new()).unwrap(), None);
    let map = headers(&[("x-device-id", DEVICE)]);
    assert_eq!(
        from_header.device_id(&map).unwrap(),
        DeviceId::parse(DEVICE)
    );
    let short = headers(&[("x-device-id", "short")]);
    assert_eq!(from_header.device_id(&short).unwrap_err().status(), 400);

    let from_cookie = cookie().with_device_id_from(DeviceIdFrom::Cookie("__Host-device".into()));
    let map = headers(&[(
        "cookie",
        "__Host-device=3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
    )]);
    assert_eq!(
        from_cookie.device_id(&map).unwrap(),
        DeviceId::parse(DEVICE)
    );
    assert_eq!(
        format!("{:?}", DeviceId::parse(DEVICE).unwrap()),
        "DeviceId(..)"
    );
}

#[tokio::test]
async fn a_bound_family_refreshes_only_from_its_device() {
    let (families, revocations, _clock) = families();
    let device = DeviceId::parse(DEVICE).unwrap();
    let login = families.login_bound(&user(), &device).await.unwrap();
    // The token carries a keyed hash, never the id.
    assert!(!login.pair.refresh.token.contains(DEVICE));

    let next = families
        .refresh_unrevoked_bound(
            &login.pair.refresh.token,
            Some(&device),
            lookup,
            &revocations,
        )
        .await
        .unwrap();
    // The successor keeps the binding: the next refresh still needs the device.
    let capture = EventCapture::new();
    let _g = capture.set_default();
    let other = DeviceId::parse(OTHER_DEVICE).unwrap();
    let error = families
        .refresh_unrevoked_bound(&next.refresh.token, Some(&other), lookup, &revocations)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Revoked);
    let reuse = capture.named(SecurityEvent::AuthnTokenReuse);
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].field("reason"), Some("device_mismatch"));
    capture.assert_absent(DEVICE);
    capture.assert_absent(OTHER_DEVICE);

    // The family is ended and revoked: the right device is refused now too,
    // and so are the access tokens already issued in it.
    let error = families
        .refresh_unrevoked_bound(&next.refresh.token, Some(&device), lookup, &revocations)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Revoked);
    let access = TokenRef {
        subject: "user-42",
        jti: &next.access.jti,
        sid: Some(&next.sid),
        issued_at: NOW,
    };
    assert!(revocations.is_revoked(access).await.unwrap());
}

#[tokio::test]
async fn a_bound_family_refuses_a_refresh_without_a_device_id() {
    let (families, revocations, _clock) = families();
    let device = DeviceId::parse(DEVICE).unwrap();
    let login = families.login_bound(&user(), &device).await.unwrap();
    let capture = EventCapture::new();
    let _g = capture.set_default();
    // The plain refresh presents no device: refused as well.
    let error = families
        .refresh_unrevoked(&login.pair.refresh.token, lookup, &revocations)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Revoked);
    let reuse = capture.named(SecurityEvent::AuthnTokenReuse);
    assert_eq!(reuse[0].field("reason"), Some("device_missing"));
}

#[tokio::test]
async fn an_unbound_family_ignores_a_device_id() {
    let (families, revocations, _clock) = families();
    let login = families.login(&user()).await.unwrap();
    let other = DeviceId::parse(OTHER_DEVICE).unwrap();
    let next = families
        .refresh_unrevoked_bound(
            &login.pair.refresh.token,
            Some(&other),
            lookup,
            &revocations,
        )
        .await
        .unwrap();
    families
        .refresh_unrevoked(&next.refresh.token, lookup, &revocations)
        .await
        .unwrap();
}

#[tokio::test]
async fn logout_with_the_refresh_token_ends_and_revokes_the_family() {
    let (families, revocations, _clock) = families();
    let login = families.login(&user()).await.unwrap();
    let sid = families
        .logout_unrevoked(&login.pair.refresh.token, &revocations)
        .await
        .unwrap();
    assert_eq!(sid, login.pair.sid);
    let error = families
        .refresh_unrevoked(&login.pair.refresh.token, lookup, &revocations)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Revoked);
    // A second logout with the same token: it is revoked now.
    assert!(
        families
            .logout_unrevoked(&login.pair.refresh.token, &revocations)
            .await
            .is_err()
    );
    // The plain logout on another family.
    let login = families.login(&user()).await.unwrap();
    assert_eq!(
        families.logout(&login.pair.refresh.token).await.unwrap(),
        login.pair.sid
    );
    assert!(
        families
            .refresh_unrevoked(&login.pair.refresh.token, lookup, &revocations)
            .await
            .is_err()
    );
}
