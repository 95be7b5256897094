//! The handlers: registration, login, refresh, logout, the account, password
//! change and reset, the admin's user list and role change, health.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_auth_tokens::Grant;
use palisade_auth_tokens::refresh::TokenPair;
use palisade_auth_tokens::revocation::RevocationStore;
use palisade_axum::auth::{Admin, Authenticated, RequireRole};
use palisade_axum::validate::ValidJson;
use palisade_axum::{ApiError, Json, Path};
use palisade_errors::{Error, ErrorKind, SecurityEvent, SubjectHash};
use palisade_passwords::{HashError, HashErrorKind, PolicyContext};
use palisade_secrets::SecretString as Password;
use palisade_validate::{Patch, UpdateRules};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::redis_cluster::ClusterCheck;
use crate::state::{App, Stores};
use crate::users::{Role, User, is_user_id, normalize_username};

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// A request's password as the hasher takes it.
fn secret(password: &Password) -> SecretString {
    SecretString::from(password.expose_secret().as_str())
}

fn api(error: impl Into<Error>) -> ApiError {
    ApiError(error.into())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn grant_for(user: &User) -> Result<Grant, Error> {
    Ok(Grant {
        subject: user.id.clone(),
        role: Some(palisade_auth_tokens::authz::Role::new(user.role.as_str())?),
        ..Grant::default()
    })
}

/// The public view of an account.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// The id.
    pub id: String,
    /// The normalised username.
    pub username: String,
    /// The role.
    pub role: Role,
}

/// The caller's account (`GET /me`).
#[derive(Debug, Serialize)]
pub struct Me {
    /// The id.
    pub id: String,
    /// The normalised username.
    pub username: String,
    /// The role.
    pub role: Role,
    /// What the role may do (and the scopes an API key may be given).
    pub scopes: Vec<&'static str>,
    /// The display name, `null` when unset.
    pub display_name: Option<String>,
}

impl From<&User> for Me {
    fn from(user: &User) -> Me {
        Me {
            id: user.id.clone(),
            username: user.username.clone(),
            role: user.role,
            scopes: user.role.permissions().to_vec(),
            display_name: user.display_name.clone(),
        }
    }
}

/// A token pair as the login, refresh and password-change answers carry it.
#[derive(Debug, Serialize)]
pub struct PairView {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<&TokenPair> for PairView {
    fn from(pair: &TokenPair) -> PairView {
        PairView {
            access_token: pair.access.token.clone(),
            refresh_token: pair.refresh.token.clone(),
            token_type: "Bearer",
            expires_in: pair.access.expires_at.saturating_sub(now()),
        }
    }
}

/// `{username, password}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: Password,
}

/// `{username, password, device_token?}`: a login, with the device token
/// an earlier login of this client answered (if it has one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: Password,
    #[serde(default)]
    device_token: Option<Password>,
}

/// A client's device token: 32 random bytes in lowercase hex, answered by
/// every successful login and sent back by the client with its next ones.
///
/// Attack it stops: an account locked out by a botnet. Failures from many
/// addresses put an account under the login throttle's account-wide
/// slowdown (one attempt per 10 s, the rest 429), whoever logs in, the
/// real user included. A device that logged into the account before is
/// exempt: the real user's usual client gets straight through, and a
/// guesser, who does not hold its token, stays slowed. (An address is
/// never trusted: see `palisade_ratelimit::login`.) A token is trusted for
/// the password it logged in with: a password change or reset ends the
/// trust of every device (a former intruder's included), and one that
/// fails 10 times since its last success loses it until its next.
#[derive(Clone)]
pub struct DeviceToken(String);

impl DeviceToken {
    /// A fresh token.
    ///
    /// # Errors
    ///
    /// 503 when the system's random source fails.
    pub fn generate() -> Result<DeviceToken, Error> {
        crate::users::random_hex::<32>().map(DeviceToken)
    }

    /// A token as a client sent it, if it has the shape of one.
    pub fn parse(text: &str) -> Option<DeviceToken> {
        crate::users::is_lower_hex(text, 64).then(|| DeviceToken(text.to_owned()))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the login throttle trusts: this token for the account's
    /// current password (`password_hash`, its PHC string, which a change or
    /// a reset replaces, with a fresh salt). A password change or reset so
    /// ends every device's exemption, a former intruder's token among them,
    /// with no list of devices to keep per account.
    fn bound_to(&self, password_hash: &str) -> String {
        use sha2::Digest as _;
        use std::fmt::Write as _;
        let credential = sha2::Sha256::digest(password_hash.as_bytes());
        let mut bound = String::with_capacity(self.0.len() + 1 + 64);
        bound.push_str(&self.0);
        bound.push(':');
        for byte in credential {
            let _ = write!(bound, "{byte:02x}");
        }
        bound
    }
}

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceToken(..)")
    }
}

/// A login's answer: the pair, and the device token to send with the next
/// login.
#[derive(Debug, Serialize)]
pub struct LoginView {
    /// The pair.
    #[serde(flatten)]
    pub pair: PairView,
    /// The client's device token (the one it sent, or a new one).
    pub device_token: String,
}

/// The login flow, framework-free (the actix twin logs in through it
/// too): the device token checked or made, the password checked under the
/// throttle, a new session.
///
/// # Errors
///
/// 422 for a malformed device token; as [`authenticate`] and
/// [`start_session`].
pub async fn log_in<St: Stores>(
    app: &App<St>,
    body: &LoginBody,
    ip: IpAddr,
) -> Result<LoginView, Error> {
    let device = match &body.device_token {
        Some(sent) => DeviceToken::parse(sent.expose_secret()).ok_or_else(|| {
            Error::new(ErrorKind::ValidationFailed).with_detail("device_token", "invalid")
        })?,
        None => DeviceToken::generate()?,
    };
    let user = authenticate(
        app,
        &body.username,
        secret(&body.password),
        ip,
        Some(&device),
    )
    .await?;
    let pair = start_session(app, &user).await?;
    Ok(LoginView {
        pair: PairView::from(&pair),
        device_token: device.0,
    })
}

async fn check_policy<St: Stores>(
    app: &App<St>,
    password: &SecretString,
    username: &str,
    field: &str,
) -> Result<(), ApiError> {
    // The policy's checks run on the hashing pool too.
    let checked = app
        .policy
        .check_on(
            app.hasher.pool(),
            password.clone(),
            &PolicyContext::new().username(username),
        )
        .await;
    let verdict = hold_if_busy(app, checked).await.map_err(api)?;
    verdict.map_err(|violation| {
        let mut error = Error::new(ErrorKind::ValidationFailed);
        for failure in violation.failures() {
            error = error.with_detail(field, failure.code());
        }
        ApiError(error)
    })
}

/// `POST /auth/register`: 201 `{id, username, role}`; 422 with the policy's
/// failures; 409 for a taken username.
pub async fn register<St: Stores>(
    State(app): State<Arc<App<St>>>,
    ValidJson(body): ValidJson<Credentials>,
) -> Result<Response, ApiError> {
    let username = normalize_username(&body.username).ok_or_else(|| {
        ApiError(Error::new(ErrorKind::ValidationFailed).with_detail("username", "invalid"))
    })?;
    check_policy(&app, &secret(&body.password), &username, "password").await?;
    if app
        .users
        .by_username(&username)
        .await
        .map_err(api)?
        .is_some()
    {
        return Err(api(crate::users::UserStoreError::Conflict));
    }
    let hash = hash_password(&app, secret(&body.password)).await?;
    let user = User::new(username, hash, Role::User).map_err(api)?;
    app.users.create(&user).await.map_err(api)?;
    tracing::info!(subject_hash = %SubjectHash::of(&user.id), "account registered");
    let view = UserView {
        id: user.id,
        username: user.username,
        role: user.role,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

fn client_ip<St: Stores>(app: &App<St>, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    app.resolver.resolve(peer.ip(), headers).ip()
}

/// The one answer to a wrong password and an unknown user.
fn bad_credentials() -> Error {
    Error::new(ErrorKind::Unauthorized).logged()
}

/// Checks `password` for the account `username` (normalised or not) from
/// `ip` under the login throttle; `device`, a device token the account
/// logged in with before, exempts the attempt from the account-wide
/// slowdown (see [`DeviceToken`]), and a success trusts it. An unknown
/// user costs a dummy verification, so both failures take the same time
/// and give the same 401. A hash below the hashing policy is replaced on
/// success. Framework-free: the actix twin
/// (`crates/actix/examples/server.rs`) logs in through it too.
///
/// # Errors
///
/// 401 for a wrong password or an unknown user, 429 + Retry-After from the
/// throttle, 503 when a store or the hashing pool cannot answer.
pub async fn authenticate<St: Stores>(
    app: &App<St>,
    raw_username: &str,
    password: SecretString,
    ip: IpAddr,
    device: Option<&DeviceToken>,
) -> Result<User, Error> {
    let username = normalize_username(raw_username);
    // The throttle keys on the normalised name (`Alice` and `alice` share
    // one budget); an invalid name on its raw form.
    let account = username.clone().unwrap_or_else(|| raw_username.to_owned());
    // A password over the hasher's byte cap can match no account: refused
    // before anything depends on the account (a known name's verification
    // would refuse it with a 422, an unknown name's dummy one with a 401:
    // user enumeration).
    app.hasher.hasher().check_length(&password)?;
    // A place in the hashing pool first: the throttle charges every attempt
    // it lets through until it succeeds, so an attempt the pool then could
    // not check (a 503) would cost the account its budget, and a login
    // flood would lock real users out without one wrong password.
    let hashing = hold_if_busy(app, app.hasher.reserve()).await?;
    let user = match &username {
        Some(name) => app.users.by_username(name).await?,
        None => None,
    };
    // A device is trusted for the account's current password only (see
    // `DeviceToken::bound_to`). An unknown name's device is never trusted
    // whatever it is bound to: no login ever succeeded with it.
    let bound = device.map(|device| match &user {
        Some(user) => device.bound_to(&user.password_hash),
        None => device.as_str().to_owned(),
    });
    // Login throttle: 429 + Retry-After (a challenge is never returned: the
    // throttle is configured without one).
    let decision = app.throttle.check(&account, ip, bound.as_deref()).await?;
    if decision.is_challenge() {
        // Unreachable as configured; were it to happen, no password check
        // without the challenge this service cannot pose.
        let wait = app.throttle.rules().account_slowdown().as_secs().max(1);
        return Err(Error::new(ErrorKind::RateLimited).with_retry_after(wait));
    }
    let Some(user) = user else {
        let _ = hashing.dummy_verify(password).await;
        app.throttle.record_failure(&account, ip).await;
        app.detector.record_failure(&account, false, ip, now());
        return Err(bad_credentials());
    };
    match hashing
        .verify(password.clone(), user.password_hash.clone())
        .await
    {
        Ok(verified) => {
            // The password checked is the one a device becomes trusted
            // for: under its hash as checked (`bound`), or as rehashed.
            let mut bound = bound;
            let mut user = user;
            if verified.needs_rehash {
                // The login stands either way; a rehash the pool refused
                // (full) or could not make is retried at the next login.
                match app.hasher.hash(password).await {
                    Ok(hash) => {
                        // Only over the hash just verified: a password
                        // changed meanwhile stays changed.
                        let hash = hash.into_string();
                        let stored = app
                            .users
                            .modify(&user.id, |stored| {
                                if stored.password_hash == user.password_hash {
                                    stored.password_hash.clone_from(&hash);
                                }
                                Ok(())
                            })
                            .await;
                        match stored {
                            Ok(rehashed) => {
                                // The same password under its new hash; a
                                // password changed meanwhile is not it.
                                if rehashed.password_hash == hash {
                                    bound = device.map(|device| device.bound_to(&hash));
                                }
                                user = rehashed;
                            }
                            Err(error) => tracing::warn!(%error, "rehash not stored"),
                        }
                    }
                    Err(error) => tracing::warn!(
                        reason = error.kind().as_str(),
                        "rehash skipped; the next login retries it"
                    ),
                }
            }
            // One success (one attempt given back), the device trusted for
            // the hash now stored.
            app.throttle
                .record_success(&account, ip, bound.as_deref())
                .await;
            Ok(user)
        }
        Err(error) if error.is_mismatch() => {
            app.throttle.record_failure(&account, ip).await;
            app.detector.record_failure(&account, true, ip, now());
            Err(bad_credentials())
        }
        Err(error) => Err(error.into()),
    }
}

/// `hashed` as it is, after `PALISADE_HASH_BUSY_DELAY` when it is the full
/// pool's refusal ([`HashErrorKind::Busy`]).
///
/// A refusal is cheap, so a client that sends its next request as soon as
/// it has an answer (a credential-stuffing tool on keep-alive connections)
/// would otherwise loop on 503s as fast as the server answers them, taking
/// the CPU every other request needs while the pool works. Held, each of
/// its connections gets one refusal per delay. The hold takes no place in
/// the pool (the refusal took none) and no lock: a timer, and the
/// connection the client keeps open anyway.
pub async fn hold_if_busy<T, St: Stores>(
    app: &App<St>,
    hashed: Result<T, HashError>,
) -> Result<T, HashError> {
    if let Err(error) = &hashed
        && error.kind() == HashErrorKind::Busy
        && !app.hash_busy_delay.is_zero()
    {
        tokio::time::sleep(app.hash_busy_delay).await;
    }
    hashed
}

/// A new refresh family for `user`, stamped past the subject's
/// `not_before` (a revocation of every session) and answered once usable;
/// the families it evicts past the session limit are revoked.
/// Framework-free, like [`authenticate`].
///
/// # Errors
///
/// 503 when the revocation or family store cannot answer.
pub async fn start_session<St: Stores>(app: &App<St>, user: &User) -> Result<TokenPair, Error> {
    let not_before = app
        .revocations
        .not_before(&user.id)
        .await
        .map_err(|error| Error::new(ErrorKind::Unavailable).with_source(error))?;
    let grant = grant_for(user)?;
    let login = app.families.login_after(&grant, not_before).await?;
    // A pair issued after a revocation is stamped past it and is usable
    // from the second after it (see `RefreshFamilies::login_after`): answer
    // once it is, at most a second later, so the client's next call works.
    if let Some(not_before) = not_before {
        let usable_from = UNIX_EPOCH + std::time::Duration::from_secs(not_before.saturating_add(1));
        if let Ok(wait) = usable_from.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait.min(std::time::Duration::from_secs(2))).await;
        }
    }
    // Families past the session limit ended: their access tokens too.
    for sid in &login.evicted_sids {
        let until = now().saturating_add(app.families.config().absolute_secs);
        if let Err(error) = app.revocations.revoke_family(&user.id, sid, until).await {
            tracing::warn!(%error, "evicted session not revoked");
        }
    }
    Ok(login.pair)
}

/// `POST /auth/login`: 200 with a token pair; 401 for a wrong password and
/// an unknown user alike; 429 + Retry-After from the throttle.
pub async fn login<St: Stores>(
    State(app): State<Arc<App<St>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<LoginBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&app, peer, &headers);
    Ok(Json(log_in(&app, &body, ip).await?).into_response())
}

/// `{refresh_token}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// `POST /auth/refresh`: rotates the pair; reuse of a rotated token is a
/// 401 and ends (and revokes) its family. The role is re-read.
pub async fn refresh<St: Stores>(
    State(app): State<Arc<App<St>>>,
    ValidJson(body): ValidJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let users = app.users.clone();
    let lookup = |subject: String| async move {
        // A deleted user (or a store that cannot answer) gets no new pair.
        let user = users.by_id(&subject).await.ok()??;
        grant_for(&user).ok()
    };
    let pair = app
        .families
        .refresh_unrevoked(&body.refresh_token, lookup, &app.revocations)
        .await
        .map_err(api)?;
    Ok(Json(PairView::from(&pair)).into_response())
}

/// `POST /auth/logout` body: `{}` or `{refresh_token}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// `POST /auth/logout`: revokes the access token and its session at once
/// and, if a refresh token is given, ends its family. 204.
///
/// The caller's own session ends whatever the body holds: a client whose
/// stored refresh token is stale or corrupt still logs out (it used to get
/// a 401 and keep a live session). A body that is not `{}` or
/// `{refresh_token}` is then a 400, and a refresh token that does not
/// verify a 401 (another user's a 403, its family untouched): the session
/// is over either way, only that token's family was not ended.
pub async fn logout<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        palisade_validate::json::from_slice::<LogoutBody>(
            &body,
            &palisade_validate::json::JsonLimits::default(),
        )
        .map(|body| body.refresh_token)
        .map_err(|_| {
            ApiError(Error::new(ErrorKind::BadRequest).with_detail("refresh_token", "invalid"))
        })
    };
    // The refresh token's family first: ending the caller's session below
    // would end that family too and then refuse its token.
    let family = match &parsed {
        Ok(Some(token)) => end_family(&app, &who, token).await,
        Ok(None) | Err(_) => Ok(()),
    };
    // A store that could not end the family: answered before the session
    // ends too, so the client's retry does both.
    if let Err(error) = &family
        && error.0.kind() == ErrorKind::Unavailable
    {
        return family.map(|()| StatusCode::NO_CONTENT.into_response());
    }
    let session_until = now().saturating_add(app.families.config().absolute_secs);
    app.auth
        .verifier()
        .revoke(&who.claims, &app.revocations, Some(session_until))
        .await
        .map_err(api)?;
    if let Some(sid) = &who.claims.sid {
        app.families.end(&who.claims.sub, sid).await.map_err(api)?;
    }
    parsed?;
    family?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ends the family of `token`, a refresh token of the caller's.
async fn end_family<St: Stores>(
    app: &App<St>,
    who: &Authenticated,
    token: &str,
) -> Result<(), ApiError> {
    let claims = app.verifier.verify_refresh(token).map_err(api)?;
    if claims.sub != who.claims.sub {
        return Err(ErrorKind::Forbidden.into());
    }
    app.families
        .logout_unrevoked(token, &app.revocations)
        .await
        .map(|_| ())
        .map_err(api)
}

/// `POST /auth/logout-all`: every token of the caller stops working. 204.
pub async fn logout_all<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
) -> Result<Response, ApiError> {
    revoke_everywhere(&app, &who.claims.sub, "logout_all").await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_everywhere<St: Stores>(
    app: &App<St>,
    subject: &str,
    reason: &'static str,
) -> Result<u64, ApiError> {
    let not_before = app
        .revocations
        .revoke_subject(subject)
        .await
        .map_err(|error| ApiError(Error::new(ErrorKind::Unavailable).with_source(error)))?;
    tracing::info!(
        event = SecurityEvent::AuthnTokenRevoked.as_str(),
        reason,
        subject_hash = %SubjectHash::of(subject),
        "every session of the subject revoked"
    );
    Ok(not_before)
}

async fn current_user<St: Stores>(app: &App<St>, subject: &str) -> Result<User, ApiError> {
    // A token whose account is gone is refused like a revoked one.
    app.users
        .by_id(subject)
        .await
        .map_err(api)?
        .ok_or_else(|| ApiError(Error::new(ErrorKind::Unauthorized)))
}

/// `GET /me`.
pub async fn me<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
) -> Result<Response, ApiError> {
    let user = current_user(&app, &who.claims.sub).await?;
    Ok(Json(Me::from(&user)).into_response())
}

/// `PATCH /me`: `display_name` absent keeps it, `null` clears it, a string
/// sets it (1–64 characters after trimming, no control characters).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    #[serde(default)]
    display_name: Patch<String>,
}

/// Validates a display name: trimmed, 1–[`MAX_DISPLAY_NAME_CHARS`]
/// characters, something visible, no control or format characters.
pub fn valid_display_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    // Blank to the eye though not to `trim`: the Hangul fillers and the
    // braille blank (letters, not spaces, to Unicode).
    let blank = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
            )
    };
    if name.chars().all(blank) {
        return Err("empty");
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err("too_long");
    }
    // Control and format characters (palisade-validate's list): bidi
    // overrides, isolates and marks (Trojan-Source style spoofing of how a
    // name reads to an admin), zero-width characters (an invisible name, or
    // a twin of another), tag characters (hidden text).
    if name.chars().any(palisade_validate::is_control_or_format) {
        return Err("invalid_characters");
    }
    Ok(name.to_owned())
}

/// `PATCH /me`.
pub async fn patch_me<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
    ValidJson(body): ValidJson<MePatch>,
) -> Result<Response, ApiError> {
    UpdateRules::patch()
        .nullable("display_name", &body.display_name)
        .finish()
        .map_err(api)?;
    let patch = match body.display_name {
        Patch::Value(raw) => Patch::Value(valid_display_name(&raw).map_err(|code| {
            ApiError(Error::new(ErrorKind::ValidationFailed).with_detail("display_name", code))
        })?),
        Patch::Null => Patch::Null,
        Patch::Absent => Patch::Absent,
    };
    let user = if patch.is_absent() {
        current_user(&app, &who.claims.sub).await?
    } else {
        app.users
            .modify(&who.claims.sub, |stored| {
                patch.clone().apply_to(&mut stored.display_name);
                Ok(())
            })
            .await
            // A token whose account is gone is refused like a revoked one.
            .map_err(|error| match error.kind() {
                ErrorKind::NotFound => ApiError(Error::new(ErrorKind::Unauthorized)),
                _ => ApiError(error),
            })?
    };
    Ok(Json(Me::from(&user)).into_response())
}

/// `{current_password, new_password}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: Password,
    new_password: Password,
}

/// The 422 for a new password that is the current or a recent one,
/// logged for the account (repeated refusals on one account are someone
/// guessing its passwords).
fn recently_used(user: &User) -> ApiError {
    tracing::info!(
        event = SecurityEvent::InputValidationFail.as_str(),
        reason = "password_policy",
        failures = "recently_used",
        subject_hash = %SubjectHash::of(&user.id),
        "password refused by policy"
    );
    ApiError(Error::new(ErrorKind::ValidationFailed).with_detail("new_password", "recently_used"))
}

/// Whether `new_password` is `user`'s current password or one of the last
/// ones: all checked in one pool task, quietly (a history mismatch is no
/// failed login). A pool that refused the check (full) or could not run
/// it is no proof the password is new: that fails closed (503) instead of
/// skipping the rule (a flood that fills the pool would otherwise switch
/// it off).
async fn is_recent<St: Stores>(
    app: &App<St>,
    user: &User,
    new_password: &SecretString,
) -> Result<bool, ApiError> {
    let recent: Vec<String> = std::iter::once(&user.password_hash)
        .chain(user.password_history.iter())
        .take(app.policy.history().max(1) + 1)
        .cloned()
        .collect();
    let checked = app.hasher.is_reused(new_password.clone(), recent).await;
    hold_if_busy(app, checked).await.map_err(api)
}

/// A password's hash, made on the pool (a full pool's refusal held).
async fn hash_password<St: Stores>(
    app: &App<St>,
    new_password: SecretString,
) -> Result<String, ApiError> {
    let hash = hold_if_busy(app, app.hasher.hash(new_password).await)
        .await
        .map_err(api)?;
    Ok(hash.into_string())
}

/// Makes `hash` the password of `user`, if the stored account still has
/// the password `user` was read with (else 409: it changed meanwhile, and
/// this change was checked against the old one). The rest of the account
/// is taken as stored now, so a role change made while the hash was being
/// made is kept.
async fn store_password<St: Stores>(
    app: &App<St>,
    user: &User,
    hash: String,
) -> Result<User, ApiError> {
    app.users
        .modify(&user.id, |stored| {
            if stored.password_hash != user.password_hash {
                return Err(Error::new(ErrorKind::Conflict));
            }
            stored.change_password(hash.clone());
            Ok(())
        })
        .await
        .map_err(api)
}

/// `POST /me/password`: 200 with a fresh pair; every other session and
/// every token issued before the change is revoked.
pub async fn change_password<St: Stores>(
    State(app): State<Arc<App<St>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    who: Authenticated,
    ValidJson(body): ValidJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let account = current_user(&app, &who.claims.sub).await?;
    let ip = client_ip(&app, peer, &headers);
    // The current password is checked like a login (throttled): a stolen
    // access token must not become a password oracle.
    let user = authenticate(
        &app,
        &account.username,
        secret(&body.current_password),
        ip,
        None,
    )
    .await?;
    let new_password = secret(&body.new_password);
    check_policy(&app, &new_password, &user.username, "new_password").await?;
    if is_recent(&app, &user, &new_password).await? {
        return Err(recently_used(&user));
    }
    let hash = hash_password(&app, new_password).await?;
    // Sessions end before the password changes: if the revocation store
    // fails, nothing changed and the retry starts over (the other way, a
    // stolen session would outlive a change the client saw fail).
    revoke_everywhere(&app, &user.id, "password_change").await?;
    let user = store_password(&app, &user, hash).await?;
    tracing::info!(
        event = SecurityEvent::AuthnPasswordChange.as_str(),
        reason = "user",
        subject_hash = %SubjectHash::of(&user.id),
        "password changed"
    );
    let pair = start_session(&app, &user).await?;
    Ok(Json(PairView::from(&pair)).into_response())
}

/// `{username}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    username: String,
}

/// `POST /auth/password-reset/request`: 202 whatever the username (no
/// enumeration). In development the token is logged.
pub async fn reset_request<St: Stores>(
    State(app): State<Arc<App<St>>>,
    ValidJson(body): ValidJson<ResetRequest>,
) -> Result<Response, ApiError> {
    let user = match normalize_username(&body.username) {
        Some(name) => app.users.by_username(&name).await.map_err(api)?,
        None => None,
    };
    if let Some(user) = user {
        match app.resets.issue(&user.id, &user.password_hash).await {
            Ok(token) => {
                // The token names its user: `<id>.<secret>`.
                let token = format!(
                    "{}.{}",
                    user.id,
                    secrecy::ExposeSecret::expose_secret(&token)
                );
                if app.development {
                    // Under a field name the log redactor lets through:
                    // this line exists to be read, in development only.
                    tracing::warn!(
                        dev_reset_code = token.as_str(),
                        "development only: the password reset token (production would email it)"
                    );
                }
            }
            // Still 202: the answer must not depend on the account.
            Err(error) => tracing::warn!(%error, "reset token not issued"),
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `{token, new_password}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    token: Password,
    new_password: Password,
}

/// `POST /auth/password-reset/confirm`: 204; every session of the user is
/// revoked. A bad, used or expired token is a 401.
pub async fn reset_confirm<St: Stores>(
    State(app): State<Arc<App<St>>>,
    ValidJson(body): ValidJson<ResetConfirm>,
) -> Result<Response, ApiError> {
    let refused = || ApiError(Error::new(ErrorKind::Unauthorized));
    let (id, token) = body
        .token
        .expose_secret()
        .split_once('.')
        .ok_or_else(refused)?;
    if !is_user_id(id) {
        return Err(refused());
    }
    let user = app
        .users
        .by_id(id)
        .await
        .map_err(api)?
        .ok_or_else(refused)?;
    // The token is checked first (a caller without one gets no hashing
    // done) but spent last: a new password the policy refuses, a full
    // hashing pool or a hashing failure leaves the link working for a
    // retry. It is spent before the store, so one token changes the
    // password once even when two confirms race (the loser's redeem is
    // refused).
    app.resets
        .check(&user.id, token, &user.password_hash)
        .await
        .map_err(api)?;
    let new_password = secret(&body.new_password);
    check_policy(&app, &new_password, &user.username, "new_password").await?;
    if is_recent(&app, &user, &new_password).await? {
        // Except here: "recently used" tells the link's holder the
        // account's current or a past password. A link (mail read by
        // someone else, a leaked URL) must not become an oracle that
        // guesses them at the global rate for 30 minutes, so this answer
        // spends it: one guess a link, as before the check came first.
        app.resets
            .spend(&user.id, token, &user.password_hash, "recently_used")
            .await
            .map_err(api)?;
        return Err(recently_used(&user));
    }
    let hash = hash_password(&app, new_password).await?;
    app.resets
        .redeem(&user.id, token, &user.password_hash)
        .await
        .map_err(api)?;
    // Sessions end before the password changes (see `change_password`),
    // and so do the account's API keys: a reset is account recovery, and
    // keys an intruder minted while holding the account must not outlive
    // it. (A password change, by someone who knows the password, keeps
    // them.)
    revoke_everywhere(&app, &user.id, "password_reset").await?;
    app.keys
        .revoke_all(&user.id, "password_reset")
        .await
        .map_err(api)?;
    store_password(&app, &user, hash).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An account as the admin sees it.
#[derive(Debug, Serialize)]
pub struct AdminUserView {
    /// The id.
    pub id: String,
    /// The normalised username.
    pub username: String,
    /// The role.
    pub role: Role,
    /// The display name.
    pub display_name: Option<String>,
}

impl From<User> for AdminUserView {
    fn from(user: User) -> AdminUserView {
        AdminUserView {
            id: user.id,
            username: user.username,
            role: user.role,
            display_name: user.display_name,
        }
    }
}

/// `GET /admin/users` (admin; moderator and user 403).
pub async fn list_users<St: Stores>(
    State(app): State<Arc<App<St>>>,
    _admin: RequireRole<Admin>,
) -> Result<Response, ApiError> {
    let users: Vec<AdminUserView> = app
        .users
        .list()
        .await
        .map_err(api)?
        .into_iter()
        .map(AdminUserView::from)
        .collect();
    Ok(Json(users).into_response())
}

/// `{role}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: String,
}

/// `POST /admin/users/{id}/role` (admin): the user's sessions are revoked,
/// so the new role applies at once (the next refresh re-reads it).
pub async fn set_role<St: Stores>(
    State(app): State<Arc<App<St>>>,
    admin: RequireRole<Admin>,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<RoleChange>,
) -> Result<Response, ApiError> {
    if !is_user_id(&id) {
        return Err(ErrorKind::NotFound.into());
    }
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError(Error::new(ErrorKind::ValidationFailed).with_detail("role", "unknown"))
    })?;
    // An admin's own role stays: the last admin demoting themselves left
    // the service with none until a restart re-promoted
    // `PALISADE_ADMIN_USERNAME` (another admin can make the change).
    if id == admin.claims.sub {
        return Err(ApiError(
            Error::new(ErrorKind::Conflict).with_detail("id", "own_role"),
        ));
    }
    if app.users.by_id(&id).await.map_err(api)?.is_none() {
        return Err(ErrorKind::NotFound.into());
    }
    // Sessions end before the role changes (see `change_password`); the
    // next refresh re-reads the role. Changed as stored now: a password
    // change in flight is not undone.
    revoke_everywhere(&app, &id, "role_change").await?;
    let user = app
        .users
        .modify(&id, |stored| {
            stored.role = role;
            Ok(())
        })
        .await
        .map_err(api)?;
    // Then the API keys holding a scope the new role may not grant: a key
    // request that read the old role and writes after this finds its
    // session ended and revokes what it wrote. A failure here is a 503;
    // the retry (the role already set) revokes the rest.
    crate::keys::revoke_beyond(&app, &id, role.permissions())
        .await
        .map_err(api)?;
    tracing::info!(
        subject_hash = %SubjectHash::of(&user.id),
        actor_hash = %SubjectHash::of(&admin.claims.sub),
        role = role.as_str(),
        "role changed"
    );
    Ok(Json(UserView {
        id: user.id,
        username: user.username,
        role: user.role,
    })
    .into_response())
}

/// `{status: "ok"}`.
#[derive(Debug, Serialize)]
pub struct Liveness {
    /// Always `"ok"` when the endpoint answers at all.
    pub status: &'static str,
}

/// `GET /health/live`.
pub async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// The readiness answer (its own body, not the envelope).
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ok`, `unavailable` or `draining`.
    pub status: &'static str,
    /// Each dependency.
    pub checks: ReadinessChecks,
}

/// The dependencies readiness looks at.
#[derive(Debug, Serialize)]
pub struct ReadinessChecks {
    /// `ok`, `down` or `disabled` (memory stores).
    pub redis: &'static str,
    /// With a Redis Cluster only (`PALISADE_REDIS_URL=redis+cluster://…`):
    /// its state and masters, from `CLUSTER INFO`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_cluster: Option<ClusterCheck>,
}

/// `GET /health/ready`: 200 when serving and Redis (if configured)
/// answers — a Redis Cluster with `cluster_state:ok`; 503 otherwise, and
/// from the shutdown signal on.
pub async fn ready<St: Stores>(State(app): State<Arc<App<St>>>) -> Response {
    let (redis, redis_cluster) = match &app.redis {
        None => ("disabled", None),
        Some(connection) => {
            // PING reaches every master of a Cluster; CLUSTER INFO tells
            // whether every slot has one (see `redis_cluster`).
            let cluster = async {
                if connection.is_cluster() {
                    Some(crate::redis_cluster::check(connection).await)
                } else {
                    None
                }
            };
            let (ping, cluster) = tokio::join!(app.users.ping(), cluster);
            (if ping.is_ok() { "ok" } else { "down" }, cluster)
        }
    };
    let cluster_failing = redis_cluster.as_ref().is_some_and(|check| !check.is_ok());
    let (status, code) = if app.is_draining() {
        ("draining", StatusCode::SERVICE_UNAVAILABLE)
    } else if redis == "down" || cluster_failing {
        ("unavailable", StatusCode::SERVICE_UNAVAILABLE)
    } else {
        ("ok", StatusCode::OK)
    };
    let body = Readiness {
        status,
        checks: ReadinessChecks {
            redis,
            redis_cluster,
        },
    };
    let mut response = (
        code,
        [(http::header::CACHE_CONTROL, "no-store")],
        axum::Json(&body),
    )
        .into_response();
    if code.is_server_error() {
        // The envelope layer turns every 5xx into the envelope; readiness
        // keeps its own body, put back by `keep_readiness_body`.
        if let Ok(bytes) = serde_json::to_vec(&body) {
            response.extensions_mut().insert(ReadinessBody(bytes));
        }
    }
    response
}

/// The body of a failed readiness answer, restored outside the envelope
/// layer by [`keep_readiness_body`].
#[derive(Clone, Debug)]
pub struct ReadinessBody(Vec<u8>);

/// Outside the envelope layer (`tower::util::MapResponseLayer::new(keep_readiness_body)`):
/// a readiness 503 leaves with its own JSON body (`{status, checks}`), which
/// load balancers and operators read, instead of the error envelope; its
/// headers (request id, security headers) stay.
pub fn keep_readiness_body(response: Response) -> Response {
    let Some(ReadinessBody(bytes)) = response.extensions().get::<ReadinessBody>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
