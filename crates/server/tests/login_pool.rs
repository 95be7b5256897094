//! A login flood that fills the hashing pool must not lock real users out:
//! the pool's 503 comes before the login throttle counts the attempt
//! (in process, through the same `authenticate` the `/auth/login` route and
//! the actix twin call).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::IpAddr;

use palisade_server::routes;
use secrecy::SecretString;
use support::{ADMIN_PASSWORD, in_process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_refused_by_a_full_hashing_pool_cost_the_account_nothing() {
    let (app, _) = in_process(&[
        ("PALISADE_ENV", "development"),
        ("PALISADE_ADMIN_USERNAME", "root"),
        ("PALISADE_ADMIN_PASSWORD", ADMIN_PASSWORD),
        // Refusals answered at once (30 held ones would take 7.5 s; the
        // hold has its own tests in `hash_busy.rs`).
        ("PALISADE_HASH_BUSY_DELAY", "0s"),
    ])
    .await;
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    let password = || SecretString::from(ADMIN_PASSWORD);

    // The flood holds every place in the pool.
    let flood: Vec<_> = std::iter::from_fn(|| app.hasher.reserve().ok()).collect();
    assert!(!flood.is_empty());
    // More attempts than the account's budget (20 per 15 minutes): each is
    // a 503, none a 429.
    for _ in 0..30 {
        let refused = routes::authenticate(&app, "root", password(), ip, None)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 503, "{refused:?}");
    }
    // The flood ends: the right password works at once, from the same
    // address.
    drop(flood);
    let user = routes::authenticate(&app, "root", password(), ip, None)
        .await
        .unwrap();
    assert_eq!(user.username, "root");
}

/// User enumeration: a password over the hasher's byte cap was refused by a
/// known account's verification (a 422, at once) but swallowed by an
/// unknown name's dummy verification (a 401): the answer told which names
/// exist. It is refused before the lookup, the same for every name, and
/// costs no account its throttle budget.
#[tokio::test]
async fn an_over_long_password_gets_one_answer_whether_the_name_exists_or_not() {
    let app = root_app().await;
    let ip: IpAddr = "203.0.113.8".parse().unwrap();
    // 1025 bytes in 342 characters: over the byte cap, under any
    // character count.
    let long = || SecretString::from("한".repeat(342) + "x");
    let answer = |error: palisade_errors::Error| (error.status(), error.to_json(None));
    let known = routes::authenticate(&app, "root", long(), ip, None)
        .await
        .unwrap_err();
    let unknown = routes::authenticate(&app, "nobody-here", long(), ip, None)
        .await
        .unwrap_err();
    assert_eq!(known.status(), 422, "{known:?}");
    assert_eq!(answer(known), answer(unknown));
    // More tries than the account's budget: none was charged, the right
    // password still works.
    for _ in 0..25 {
        let _ = routes::authenticate(&app, "root", long(), ip, None).await;
    }
    let user = routes::authenticate(&app, "root", SecretString::from(ADMIN_PASSWORD), ip, None)
        .await
        .unwrap();
    assert_eq!(user.username, "root");
}

/// The admin of `PALISADE_ADMIN_*` at a restart: the same password keeps
/// the account's hash and sessions; a new password replaces the hash (the
/// old one joins the history) and ends the sessions opened under the old
/// one. Neither logs a failed login: a start-up check is none, and a false
/// one would feed the stuffing alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_admin_quietly_and_a_new_password_replaces_it() {
    use palisade_auth_tokens::revocation::RevocationStore as _;
    use palisade_errors::SecurityEvent;
    use palisade_errors::testing::EventCapture;
    use palisade_server::state::ensure_admin;

    let env = |password| {
        vec![
            ("PALISADE_ENV", "development"),
            ("PALISADE_ADMIN_USERNAME", "root"),
            ("PALISADE_ADMIN_PASSWORD", password),
        ]
    };
    let (app, config) = in_process(&env(ADMIN_PASSWORD)).await;
    let before = app.users.by_username("root").await.unwrap().unwrap();
    let revoked_before = app.revocations.not_before(&before.id).await.unwrap();

    // Global: the verifications run on the pool's threads. (The test
    // runner gives each test its own process; this is the only global
    // subscriber in this binary.)
    let capture = EventCapture::new();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    ensure_admin(&app, &config).await.unwrap();
    let kept = app.users.by_username("root").await.unwrap().unwrap();
    assert_eq!(kept.password_hash, before.password_hash);
    assert_eq!(
        app.revocations.not_before(&before.id).await.unwrap(),
        revoked_before
    );

    let changed = "a different admin passphrase 55";
    let (_, new_config) = in_process(&env(changed)).await;
    ensure_admin(&app, &new_config).await.unwrap();
    assert!(capture.named(SecurityEvent::AuthnLoginFail).is_empty());
    let replaced = app.users.by_username("root").await.unwrap().unwrap();
    assert_ne!(replaced.password_hash, before.password_hash);
    assert_eq!(
        replaced.password_history.first(),
        Some(&before.password_hash)
    );
    assert!(app.revocations.not_before(&before.id).await.unwrap() > revoked_before);
    let ip: IpAddr = "203.0.113.8".parse().unwrap();
    routes::authenticate(&app, "root", SecretString::from(changed), ip, None)
        .await
        .unwrap();
}

/// Account lockout by a botnet: wrong passwords from many addresses put an
/// account under the throttle's account-wide slowdown, and every login to
/// it is then a 429, the real user's included (a helper reproduced 20
/// refusals in a row over a minute at 5 guesses a second). The device token
/// a login answers exempts that client from the slowdown: the real user's
/// usual client logs in from a new address while the attack goes on; a
/// login without it, or with a token the account never logged in with (a
/// guesser's), stays slowed; a malformed one is a 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_users_device_logs_in_while_a_botnet_slows_the_account() {
    let app = root_app().await;
    let body = |password: &str, device: Option<&str>| {
        let mut json = serde_json::json!({"username": "root", "password": password});
        if let Some(device) = device {
            json["device_token"] = device.into();
        }
        serde_json::from_value::<routes::LoginBody>(json).unwrap()
    };
    let home: IpAddr = "198.51.100.1".parse().unwrap();
    let first = routes::log_in(&app, &body(ADMIN_PASSWORD, None), home)
        .await
        .unwrap();
    let device = first.device_token.clone();
    assert!(routes::DeviceToken::parse(&device).is_some(), "{device}");

    // The botnet: one wrong password from each of 40 addresses.
    let mut refused = 0;
    for n in 1..=40u8 {
        let bot = IpAddr::from([203, 0, 113, n]);
        let status = routes::log_in(&app, &body("a wrong guess 123", None), bot)
            .await
            .unwrap_err()
            .status();
        assert!(status == 401 || status == 429, "{status}");
        refused += usize::from(status == 429);
    }
    assert!(refused > 10, "the account is slowed: {refused} refusals");

    let travelling: IpAddr = "192.0.2.77".parse().unwrap();
    let without = routes::log_in(&app, &body(ADMIN_PASSWORD, None), travelling).await;
    assert_eq!(without.unwrap_err().status(), 429);
    let forged = "0".repeat(64);
    let guessed = routes::log_in(&app, &body(ADMIN_PASSWORD, Some(&forged)), travelling).await;
    assert_eq!(guessed.unwrap_err().status(), 429);
    let mine = routes::log_in(&app, &body(ADMIN_PASSWORD, Some(&device)), travelling)
        .await
        .unwrap();
    assert_eq!(mine.device_token, device);
    let malformed = routes::log_in(&app, &body(ADMIN_PASSWORD, Some("not-hex")), home).await;
    assert_eq!(malformed.unwrap_err().status(), 422);
}

/// Puts `root` under the account-wide slowdown: one wrong password from
/// each of 40 addresses.
async fn botnet_slows_root<St: palisade_server::Stores>(app: &palisade_server::App<St>) {
    for n in 1..=40u8 {
        let bot = IpAddr::from([203, 0, 113, n]);
        let status = routes::log_in(app, &login_body("a wrong guess 123", None), bot)
            .await
            .unwrap_err()
            .status();
        assert!(status == 401 || status == 429, "{status}");
    }
}

fn login_body(password: &str, device: Option<&str>) -> routes::LoginBody {
    let mut json = serde_json::json!({"username": "root", "password": password});
    if let Some(device) = device {
        json["device_token"] = device.into();
    }
    serde_json::from_value(json).unwrap()
}

/// Attack: an intruder who once logged in (a phished password) keeps the
/// device token that login answered. The victim resets the password; the
/// token still exempted the intruder from the account's slowdown, so the
/// new password could be guessed at the per-address rate from any number
/// of addresses. A device is trusted for the password it logged in with:
/// after the change the intruder's token is slowed like a stranger's, and
/// the victim's device of the new password gets straight through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_the_trust_of_every_earlier_device() {
    let app = root_app().await;
    let intruder: IpAddr = "198.51.100.66".parse().unwrap();
    let stolen = routes::log_in(&app, &login_body(ADMIN_PASSWORD, None), intruder)
        .await
        .unwrap()
        .device_token;
    // The victim's reset stores a new hash (as `store_password` does).
    let new_password = "a brand new passphrase 77";
    let hash = app
        .hasher
        .hash(SecretString::from(new_password))
        .await
        .unwrap()
        .into_string();
    let root = app.users.by_username("root").await.unwrap().unwrap();
    app.users
        .modify(&root.id, |user| {
            user.password_hash.clone_from(&hash);
            Ok(())
        })
        .await
        .unwrap();
    let home: IpAddr = "198.51.100.1".parse().unwrap();
    let mine = routes::log_in(&app, &login_body(new_password, None), home)
        .await
        .unwrap()
        .device_token;

    botnet_slows_root(&app).await;
    let fresh: IpAddr = "192.0.2.200".parse().unwrap();
    let guess = routes::log_in(&app, &login_body("another guess 456", Some(&stolen)), fresh).await;
    assert_eq!(
        guess.unwrap_err().status(),
        429,
        "the old device is no pass"
    );
    let travelling: IpAddr = "192.0.2.77".parse().unwrap();
    routes::log_in(&app, &login_body(new_password, Some(&mine)), travelling)
        .await
        .unwrap();
}

/// Attack: a device token taken from the real user (a stolen cookie) as an
/// unthrottled guessing channel: every guess with it skipped the account's
/// slowdown, from as many addresses as the guesser has. It buys 10 wrong
/// guesses, then is slowed like a stranger's, from anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_device_token_buys_ten_guesses_then_is_slowed() {
    let app = root_app().await;
    let home: IpAddr = "198.51.100.1".parse().unwrap();
    let stolen = routes::log_in(&app, &login_body(ADMIN_PASSWORD, None), home)
        .await
        .unwrap()
        .device_token;
    botnet_slows_root(&app).await;
    let guess = login_body("a stolen-cookie guess", Some(&stolen));
    for n in 1..=10u8 {
        let from = IpAddr::from([192, 0, 2, n]);
        let answer = routes::log_in(&app, &guess, from).await;
        assert_eq!(answer.unwrap_err().status(), 401, "guess {n}");
    }
    for n in 11..=15u8 {
        let from = IpAddr::from([192, 0, 2, n]);
        let answer = routes::log_in(&app, &guess, from).await;
        assert_eq!(answer.unwrap_err().status(), 429, "guess {n}");
    }
}

/// Admin takeover by pre-registration: someone registers the name the
/// operator will later give `PALISADE_ADMIN_USERNAME`, mints an API key
/// and sets a display name. The start-up promotion ends the account's
/// sessions, revokes its API keys (they would act as the admin) and clears
/// the display name, and sets the configured password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_promoted_to_admin_at_start_keeps_nothing_of_its_past() {
    use palisade_apikeys::{ApiKeyErrorKind, KeyRequest};
    use palisade_server::state::ensure_admin;
    use palisade_server::users::{Role, User};

    let app = root_app().await;
    let hash = app
        .hasher
        .hash(SecretString::from("the squatter's own passphrase"))
        .await
        .unwrap();
    let mut squatter = User::new("boss".into(), hash.into_string(), Role::User).unwrap();
    squatter.display_name = Some("Operator (official)".into());
    app.users.create(&squatter).await.unwrap();
    let key = app
        .keys
        .issue(KeyRequest::new(&squatter.id, "planted"), &["reports:read"])
        .await
        .unwrap();
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    app.keys
        .verify(key.key.expose_secret(), ip, &[])
        .await
        .unwrap();

    let (_, boss) = in_process(&[
        ("PALISADE_ENV", "development"),
        ("PALISADE_ADMIN_USERNAME", "boss"),
        ("PALISADE_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await;
    ensure_admin(&app, &boss).await.unwrap();
    let promoted = app.users.by_username("boss").await.unwrap().unwrap();
    assert_eq!(promoted.role, Role::Admin);
    assert_eq!(promoted.display_name, None);
    let refused = app.keys.verify(key.key.expose_secret(), ip, &[]).await;
    assert_eq!(refused.unwrap_err().kind(), ApiKeyErrorKind::Revoked);
    routes::authenticate(&app, "boss", SecretString::from(ADMIN_PASSWORD), ip, None)
        .await
        .unwrap();
}

/// Attack: a demoted moderator (or an intruder during the victim's
/// password reset) fires key requests so that one reads the old role and
/// writes its key after the role change listed and revoked the account's
/// keys: the key kept the old role's scopes, or outlived the recovery. A
/// key request checks its session again once the key is written; ended
/// meanwhile, the key is revoked and the answer is a 401. (The handlers are
/// called as the router calls them, with the session ended between the
/// authentication and the key being written.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_minted_by_a_session_ended_mid_request_does_not_survive() {
    use axum::extract::State;
    use palisade_auth_tokens::revocation::RevocationStore as _;
    use palisade_axum::Path;
    use palisade_axum::validate::ValidJson;
    use palisade_server::keys;

    let app = root_app().await;
    let body = || {
        serde_json::from_value::<keys::NewKeyBody>(
            serde_json::json!({"name": "ci", "scopes": ["users:read"]}),
        )
        .unwrap()
    };
    let kept = keys::create(State(app.clone()), caller(&app).await, ValidJson(body()))
        .await
        .unwrap();
    assert_eq!(kept.status(), 201);
    let kept_id = app.keys.list(&login_subject(&app).await).await.unwrap()[0].key_id;

    // Authenticated, then the session ends (a role change, a reset), then
    // the handler writes its key.
    let who = caller(&app).await;
    let subject = who.claims.sub.clone();
    app.revocations.revoke_subject(&subject).await.unwrap();
    let minted = keys::create(State(app.clone()), who, ValidJson(body())).await;
    assert_eq!(minted.unwrap_err().0.status(), 401);
    // A rotation likewise: its successor is revoked (the key it rotated,
    // now in its grace, is the role change's own pass to revoke).
    let who = caller(&app).await;
    app.revocations.revoke_subject(&subject).await.unwrap();
    let rotated = keys::rotate(State(app.clone()), who, Path(kept_id.to_string())).await;
    assert_eq!(rotated.unwrap_err().0.status(), 401);
    let listed = app.keys.list(&subject).await.unwrap();
    let live = listed
        .iter()
        .filter(|key| key.status == palisade_apikeys::KeyStatus::Active)
        .count();
    assert_eq!(live, 0, "nothing minted survives: {listed:?}");
}

async fn login_subject<St: palisade_server::Stores>(app: &palisade_server::App<St>) -> String {
    app.users.by_username("root").await.unwrap().unwrap().id
}

/// The service in process, with `root` the admin from the environment.
async fn root_app() -> std::sync::Arc<palisade_server::App<palisade_server::state::Memory>> {
    in_process(&[
        ("PALISADE_ENV", "development"),
        ("PALISADE_ADMIN_USERNAME", "root"),
        ("PALISADE_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await
    .0
}

/// `root` logged in and authenticated as the router's auth layer does it.
async fn caller<St: palisade_server::Stores>(
    app: &palisade_server::App<St>,
) -> palisade_axum::auth::Authenticated {
    use palisade_auth_tokens::bearer::{Authenticate as _, Credentials};
    let home: IpAddr = "198.51.100.1".parse().unwrap();
    let login = routes::log_in(app, &login_body(ADMIN_PASSWORD, None), home)
        .await
        .unwrap();
    let token = serde_json::to_value(&login).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    palisade_axum::auth::Authenticated(
        app.auth
            .authenticate(Credentials::Bearer(&token))
            .await
            .unwrap(),
    )
}

/// A login that upgrades a stored hash made with other argon2 parameters
/// than the policy's keeps its device trusted under the new hash: during a botnet's
/// slowdown that device still gets straight through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehash_at_login_keeps_the_device_trusted() {
    use palisade_passwords::{Argon2Params, HasherConfig, PasswordHasher};

    let app = root_app().await;
    let weak = PasswordHasher::with_config(HasherConfig {
        argon2: Argon2Params {
            memory_kib: 12_288,
            iterations: 3,
            parallelism: 1,
        },
        ..HasherConfig::default()
    })
    .unwrap()
    .hash(&SecretString::from(ADMIN_PASSWORD))
    .unwrap()
    .into_string();
    let root = app.users.by_username("root").await.unwrap().unwrap();
    app.users
        .modify(&root.id, |user| {
            user.password_hash.clone_from(&weak);
            Ok(())
        })
        .await
        .unwrap();
    let home: IpAddr = "198.51.100.1".parse().unwrap();
    let device = routes::log_in(&app, &login_body(ADMIN_PASSWORD, None), home)
        .await
        .unwrap()
        .device_token;
    let upgraded = app.users.by_username("root").await.unwrap().unwrap();
    assert_ne!(upgraded.password_hash, weak, "the login rehashed");

    botnet_slows_root(&app).await;
    let travelling: IpAddr = "192.0.2.77".parse().unwrap();
    routes::log_in(&app, &login_body(ADMIN_PASSWORD, Some(&device)), travelling)
        .await
        .unwrap();
}

/// A key kept from an older role (made before role changes revoked such
/// keys, or written by a request that raced one) is not rotated into a
/// fresh one with the same scopes: a rotation copies them, so it must not
/// copy what the caller's role may no longer grant (403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_never_copies_scopes_beyond_the_callers_role() {
    use axum::extract::State;
    use palisade_apikeys::KeyRequest;
    use palisade_axum::Path;
    use palisade_server::keys;
    use palisade_server::users::Role;

    let app = root_app().await;
    let who = caller(&app).await;
    let subject = who.claims.sub.clone();
    // As if minted while an admin, then demoted to user.
    let kept = app
        .keys
        .issue(
            KeyRequest::new(subject.clone(), "old").scopes(["users:write"]),
            Role::Admin.permissions(),
        )
        .await
        .unwrap();
    app.users
        .modify(&subject, |user| {
            user.role = Role::User;
            Ok(())
        })
        .await
        .unwrap();
    let refused = keys::rotate(State(app.clone()), who, Path(kept.info.key_id.to_string())).await;
    assert_eq!(refused.unwrap_err().0.status(), 403);
    let listed = app.keys.list(&subject).await.unwrap();
    assert_eq!(listed.len(), 1, "no successor: {listed:?}");
}
