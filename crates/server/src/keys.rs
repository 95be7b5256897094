//! API keys: issued, listed, rotated and revoked by their owner (Bearer),
//! and `GET /reports/{id}` reachable with a key holding `reports:read` (or a
//! bearer token), rate-limited per key.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palisade_axum::apikeys::{Cidr, KeyId, KeyInfo, KeyRequest, KeyStatus, VerifiedKey};
use palisade_axum::auth::Authenticated;
use palisade_axum::validate::{Id, ValidJson};
use palisade_axum::{ApiError, Json, Path};
use palisade_errors::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

use palisade_auth_tokens::revocation::RevocationStore as _;

use crate::state::{App, Stores};
use crate::users::Role;

/// The scope a key needs for `GET /reports/{id}`.
pub const REPORTS_READ: &str = "reports:read";
/// The longest lifetime a key may be given.
pub const MAX_KEY_DAYS: u64 = 365;

/// `POST /api-keys` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_days: Option<u64>,
    #[serde(default)]
    allowed_ips: Vec<String>,
}

/// A key as its owner sees it (never its secret).
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// The public key id.
    pub id: String,
    /// The owner's label.
    pub name: String,
    /// The scopes.
    pub scopes: Vec<String>,
    /// Created at (Unix seconds).
    pub created_at: u64,
    /// Expires at (Unix seconds), if ever.
    pub expires_at: Option<u64>,
    /// Last used at (Unix seconds).
    pub last_used_at: Option<u64>,
    /// Uses counted.
    pub use_count: u64,
    /// `active`, `revoked` or `rotated`.
    pub status: &'static str,
}

impl From<&KeyInfo> for KeyView {
    fn from(info: &KeyInfo) -> KeyView {
        KeyView {
            id: info.key_id.to_string(),
            name: info.name.clone(),
            scopes: info.scopes.clone(),
            created_at: info.created_at,
            expires_at: info.expires_at,
            last_used_at: info.last_used_at,
            use_count: info.use_count,
            status: match info.status {
                KeyStatus::Active => "active",
                KeyStatus::Revoked => "revoked",
                _ => "rotated",
            },
        }
    }
}

/// The answer of an issue or a rotation: the key, shown this once.
#[derive(Serialize)]
pub struct IssuedKey {
    /// The public key id.
    pub id: String,
    /// The whole key (`pal_live_...`): shown once, never stored.
    pub key: String,
    /// The scopes.
    pub scopes: Vec<String>,
    /// Expires at (Unix seconds), if ever.
    pub expires_at: Option<u64>,
}

fn api(error: impl Into<Error>) -> ApiError {
    ApiError(error.into())
}

fn invalid(field: &str, code: &'static str) -> ApiError {
    ApiError(Error::new(ErrorKind::ValidationFailed).with_detail(field, code))
}

async fn caller_role<St: Stores>(app: &App<St>, subject: &str) -> Result<Role, ApiError> {
    Ok(app
        .users
        .by_id(subject)
        .await
        .map_err(api)?
        .ok_or_else(|| ApiError(Error::new(ErrorKind::Unauthorized)))?
        .role)
}

fn key_id(raw: &str) -> Result<KeyId, ApiError> {
    KeyId::parse(raw).ok_or_else(|| ApiError(Error::new(ErrorKind::NotFound)))
}

/// `POST /api-keys` (Bearer): 201 with the key, shown once. Scopes beyond
/// the caller's role's permissions are a 422.
pub async fn create<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
    ValidJson(body): ValidJson<NewKeyBody>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(invalid("name", "invalid"));
    }
    if body.scopes.is_empty() {
        return Err(invalid("scopes", "empty"));
    }
    let role = caller_role(&app, &who.claims.sub).await?;
    let mut request = KeyRequest::new(who.claims.sub.clone(), name).scopes(body.scopes.iter());
    if let Some(days) = body.expires_in_days {
        if !(1..=MAX_KEY_DAYS).contains(&days) {
            return Err(invalid("expires_in_days", "out_of_range"));
        }
        request = request.expires_in(std::time::Duration::from_secs(days * 86_400));
    }
    let mut blocks = Vec::new();
    for (n, text) in body.allowed_ips.iter().enumerate() {
        let block: Cidr = text
            .parse()
            .map_err(|_| invalid(&format!("allowed_ips[{n}]"), "invalid_cidr"))?;
        blocks.push(block);
    }
    if !blocks.is_empty() {
        request = request.allowed_ips(blocks);
    }
    let issued = app
        .keys
        .issue(request, role.permissions())
        .await
        .map_err(api)?;
    keep_if_session_lives(&app, &who, issued.info.key_id).await?;
    let answer = IssuedKey {
        id: issued.info.key_id.to_string(),
        key: issued.key.expose_secret().to_owned(),
        scopes: issued.info.scopes.clone(),
        expires_at: issued.info.expires_at,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `GET /api-keys` (Bearer): the caller's keys, without secrets.
pub async fn list<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
) -> Result<Response, ApiError> {
    let keys: Vec<KeyView> = app
        .keys
        .list(&who.claims.sub)
        .await
        .map_err(api)?
        .iter()
        .map(KeyView::from)
        .collect();
    Ok(Json(keys).into_response())
}

/// `DELETE /api-keys/{id}` (Bearer): 204; another owner's key is a 404, as
/// an unknown one.
pub async fn revoke<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = key_id(&id)?;
    app.keys.revoke(&who.claims.sub, id).await.map_err(api)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether `scopes` hold one that `allowed` (a role's permissions) does not.
fn beyond(scopes: &[String], allowed: &[&str]) -> bool {
    scopes
        .iter()
        .any(|scope| !allowed.contains(&scope.as_str()))
}

/// Revokes `owner`'s live keys that hold a scope `allowed` does not (a role
/// change's new permissions); returns how many. A key keeps the scopes it
/// was minted with, so without this a demoted moderator's `users:read` key
/// would go on acting with the old role. `ApiKeys::revoke_where` lists
/// again until a pass finds nothing: a rotation in flight may write a
/// successor behind a pass (and a request in flight revokes what it mints
/// once its session is found ended: see `keep_if_session_lives`).
///
/// # Errors
///
/// 503 when the key store cannot answer (some keys may be revoked already:
/// call again).
pub async fn revoke_beyond<St: Stores>(
    app: &App<St>,
    owner: &str,
    allowed: &[&str],
) -> Result<usize, Error> {
    Ok(app
        .keys
        .revoke_where(owner, "role_change", |scopes| beyond(scopes, allowed))
        .await?)
}

/// Keeps the key `minted` only if the caller's session still lives. A role
/// change, a password reset or a logout everywhere that lands while the
/// request runs ends the session first and then revokes the keys it finds:
/// a key this request read the old role for and wrote after that listing
/// would outlive them. So the session is checked again once the key is
/// written, and the key revoked (401) if it ended.
async fn keep_if_session_lives<St: Stores>(
    app: &App<St>,
    who: &Authenticated,
    minted: KeyId,
) -> Result<(), ApiError> {
    let token = app.auth.verifier().revocation_ref(&who.claims);
    let ended = match app.revocations.is_revoked(token).await {
        Ok(false) => return Ok(()),
        Ok(true) => Error::new(ErrorKind::Unauthorized),
        // Unknown: the key is not handed out (fail closed).
        Err(error) => Error::from(error),
    };
    match app.keys.revoke(&who.claims.sub, minted).await {
        Ok(()) => Err(ApiError(ended)),
        Err(error) if error.kind() == palisade_apikeys::ApiKeyErrorKind::NotFound => {
            Err(ApiError(ended))
        }
        Err(error) => Err(api(error)),
    }
}

/// `POST /api-keys/{id}/rotate` (Bearer): 201 with the new key; the old one
/// works until its grace ends.
pub async fn rotate<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = key_id(&id)?;
    // A key's scopes are copied to its successor: none beyond what the
    // caller's role may grant now (a key kept from an older role).
    let role = caller_role(&app, &who.claims.sub).await?;
    let keys = app.keys.list(&who.claims.sub).await.map_err(api)?;
    if let Some(key) = keys.iter().find(|key| key.key_id == id)
        && beyond(&key.scopes, role.permissions())
    {
        return Err(ApiError(
            Error::new(ErrorKind::Forbidden).with_detail("scopes", "beyond_role"),
        ));
    }
    let issued = app.keys.rotate(&who.claims.sub, id).await.map_err(api)?;
    keep_if_session_lives(&app, &who, issued.info.key_id).await?;
    let answer = IssuedKey {
        id: issued.info.key_id.to_string(),
        key: issued.key.expose_secret().to_owned(),
        scopes: issued.info.scopes.clone(),
        expires_at: issued.info.expires_at,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// A report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The report id (24 lowercase hex characters).
    pub id: String,
    /// Who asked (user id), and how.
    pub requested_by: String,
    /// `api_key` or `bearer`.
    pub via: &'static str,
}

/// `GET /reports/{id}`: `{id}` a 24-character lowercase hex id (anything
/// else 404 before the handler); an API key with `reports:read` (403
/// without) or a bearer token.
pub async fn report(
    Id(id): Id<palisade_validate::HexId<24>>,
    key: Option<Extension<VerifiedKey>>,
    user: Option<Extension<Authenticated>>,
) -> Result<Response, ApiError> {
    let (requested_by, via) = match (key, user) {
        (Some(Extension(key)), _) => {
            key.info()
                .require_scopes(&[REPORTS_READ], key.client_ip())
                .map_err(api)?;
            (key.info().owner.clone(), "api_key")
        }
        (None, Some(Extension(user))) => (user.claims.sub.clone(), "bearer"),
        (None, None) => {
            return Err(ApiError(Error::new(ErrorKind::Unauthorized).with_header(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("ApiKey"),
            )));
        }
    };
    Ok(Json(Report {
        id: id.to_string(),
        requested_by,
        via,
    })
    .into_response())
}
