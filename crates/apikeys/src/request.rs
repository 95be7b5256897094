//! What the web adapters share: reading a key from a request's headers,
//! the authentication decision of a layer (required or optional), the
//! object-safe verifier the layers hold, and scope guards.
//!
//! `palisade-axum` and `palisade-actix` (feature `apikeys`) call these, so
//! both adapters read the same headers and make the same decisions.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use http::{HeaderValue, header::WWW_AUTHENTICATE};
use palisade_errors::{Error, ErrorKind, SecurityEvent, SubjectHash};

use crate::clock::Clock;
use crate::error::{ApiKeyError, ApiKeyErrorKind};
use crate::keys::{ApiKeys, KeyInfo};
use crate::store::KeyStore;

/// The header a key is read from by default (`Authorization: ApiKey <key>`
/// is accepted too).
pub const DEFAULT_HEADER: &str = "x-api-key";

/// The `Authorization` scheme of a key.
pub const SCHEME: &str = "ApiKey";

/// What a request presents, as far as API keys are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No key header and no `Authorization: ApiKey` (another
    /// `Authorization` scheme alone is no key).
    None,
    /// One key, from the key header or `Authorization: ApiKey`.
    Key(&'a str),
    /// A key header or `ApiKey` authorization that is empty or not UTF-8,
    /// or several key headers or `Authorization` headers (a proxy reading
    /// the last one and this service the first would judge different
    /// keys).
    Malformed,
    /// Two credentials: a key in both places, or a key and another
    /// `Authorization` scheme (`Bearer`). Which identity would the request
    /// have? Refused, never guessed.
    Ambiguous,
}

/// Reads a request's key header lines and `Authorization` lines (all of
/// each).
pub fn credentials<'a>(
    mut key_lines: impl Iterator<Item = &'a [u8]>,
    mut authorization_lines: impl Iterator<Item = &'a [u8]>,
) -> Credentials<'a> {
    let header = match (key_lines.next(), key_lines.next()) {
        (None, _) => None,
        (Some(line), None) => Some(key_text(line)),
        (Some(_), Some(_)) => Some(None),
    };
    let authorization = match (authorization_lines.next(), authorization_lines.next()) {
        (None, _) => Authorization::Absent,
        (Some(line), None) => authorization(line),
        (Some(_), Some(_)) => Authorization::Malformed,
    };
    match (header, authorization) {
        (None, Authorization::Absent | Authorization::Other) => Credentials::None,
        (None, Authorization::Key(key)) | (Some(Some(key)), Authorization::Absent) => {
            Credentials::Key(key)
        }
        (Some(None), Authorization::Absent) | (None, Authorization::Malformed) => {
            Credentials::Malformed
        }
        (Some(_), _) => Credentials::Ambiguous,
    }
}

enum Authorization<'a> {
    Absent,
    Key(&'a str),
    /// Another scheme (`Bearer`, `Basic`).
    Other,
    Malformed,
}

fn authorization(line: &[u8]) -> Authorization<'_> {
    let Ok(text) = std::str::from_utf8(line) else {
        return Authorization::Malformed;
    };
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Authorization::Other;
    }
    match key_text(rest.as_bytes()) {
        Some(key) => Authorization::Key(key),
        None => Authorization::Malformed,
    }
}

/// The key in a header value: UTF-8, without surrounding spaces or tabs,
/// not empty. The format itself is the parser's business (`verify`).
fn key_text(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    let text = text.trim_matches([' ', '\t']);
    (!text.is_empty()).then_some(text)
}

/// Whether an API-key layer lets a request without a key through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// No key: 401 with `WWW-Authenticate: ApiKey`.
    Required,
    /// No key: an anonymous caller, passed on without a key. A malformed,
    /// unknown, revoked or expired key (or an ambiguous request) is still
    /// refused: a bad key is never downgraded to anonymous.
    Optional,
}

/// The future of [`VerifyKey::verify_key`].
pub type VerifyFuture<'a> = Pin<Box<dyn Future<Output = Result<KeyInfo, ApiKeyError>> + Send + 'a>>;

/// An [`ApiKeys`] behind a trait object, so a layer holds it without its
/// store and clock types.
pub trait VerifyKey: Send + Sync + 'static {
    /// [`ApiKeys::verify`] with no scope required (the guards check scopes
    /// on the [`KeyInfo`]).
    fn verify_key<'a>(&'a self, presented: &'a str, client_ip: IpAddr) -> VerifyFuture<'a>;
}

impl<S: KeyStore + 'static, C: Clock> VerifyKey for ApiKeys<S, C> {
    fn verify_key<'a>(&'a self, presented: &'a str, client_ip: IpAddr) -> VerifyFuture<'a> {
        Box::pin(self.verify(presented, client_ip, &[]))
    }
}

/// The 401 a request without a key gets (and its event, reason
/// `missing`).
pub fn refuse_missing(client_ip: IpAddr) -> Error {
    tracing::info!(
        event = SecurityEvent::AuthnTokenInvalid.as_str(),
        reason = "missing",
        client_ip = %client_ip,
        "API key refused"
    );
    Error::new(ErrorKind::Unauthorized)
        .with_header(WWW_AUTHENTICATE, HeaderValue::from_static(SCHEME))
        .logged()
}

/// The refusal of an anonymous caller where a key is needed after an
/// optional layer let it through (a key-keyed rate limit told to refuse):
/// the same 401 and event as a request without a key at a required layer.
pub fn refuse_anonymous(client_ip: IpAddr) -> Error {
    refuse_missing(client_ip)
}

/// The decision of an API-key layer: `Ok(Some(..))` a verified key,
/// `Ok(None)` an anonymous caller (only in [`KeyMode::Optional`], only
/// without any key; no event), `Err` the refusal with its event logged:
/// 401 `WWW-Authenticate: ApiKey` for a missing or bad key (one body for
/// malformed, unknown, revoked, expired), 403 for an address outside the
/// key's allow-list, 400 for an ambiguous request, 503 when the store does
/// not answer.
pub async fn authenticate_request(
    keys: &dyn VerifyKey,
    credentials: Credentials<'_>,
    client_ip: IpAddr,
    mode: KeyMode,
) -> Result<Option<KeyInfo>, Error> {
    match credentials {
        Credentials::None if mode == KeyMode::Optional => Ok(None),
        Credentials::None => Err(refuse_missing(client_ip)),
        Credentials::Malformed => {
            tracing::info!(
                event = SecurityEvent::AuthnTokenInvalid.as_str(),
                reason = ApiKeyErrorKind::Malformed.as_str(),
                problem = "header",
                client_ip = %client_ip,
                "API key refused"
            );
            Err(ApiKeyError::new(ApiKeyErrorKind::Malformed).into())
        }
        Credentials::Ambiguous => {
            tracing::info!(
                event = SecurityEvent::AuthnTokenInvalid.as_str(),
                reason = "ambiguous_credentials",
                client_ip = %client_ip,
                "a request with an API key and other credentials refused"
            );
            Err(Error::new(ErrorKind::BadRequest)
                .with_detail("authorization", "ambiguous_credentials")
                .logged())
        }
        Credentials::Key(presented) => keys
            .verify_key(presented, client_ip)
            .await
            .map(Some)
            .map_err(Error::from),
    }
}

/// The error an adapter answers when a key extractor finds no verified key
/// and no API-key layer ran: a server misconfiguration, never "allowed".
pub fn not_configured() -> Error {
    tracing::error!(
        event = SecurityEvent::SysMisconfigured.as_str(),
        reason = "api_key_layer_missing",
        "an API-key extractor without the API-key layer before it"
    );
    Error::new(ErrorKind::Internal)
}

/// A scope a route requires, as a type (`RequireScope<Write>` in the
/// adapters):
///
/// ```
/// use palisade_apikeys::request::Scope;
///
/// /// May change items.
/// pub struct Write;
///
/// impl Scope for Write {
///     const NAME: &'static str = "items:write";
/// }
/// ```
pub trait Scope: Send + Sync + 'static {
    /// The scope's name, as granted to keys.
    const NAME: &'static str;
}

impl KeyInfo {
    /// Whether the key holds every scope in `required`; otherwise one
    /// `authz_fail` event (reason `missing_scope`, the key id and owner
    /// hash, never the key) and [`ApiKeyErrorKind::MissingScope`] (403).
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::MissingScope`].
    pub fn require_scopes(&self, required: &[&str], client_ip: IpAddr) -> Result<(), ApiKeyError> {
        let Some(missing) = required.iter().find(|scope| !self.has_scope(scope)) else {
            return Ok(());
        };
        tracing::debug!(scope = %missing, "the missing scope");
        tracing::warn!(
            event = SecurityEvent::AuthzFail.as_str(),
            reason = ApiKeyErrorKind::MissingScope.as_str(),
            key_id = %self.key_id,
            subject_hash = %SubjectHash::of(&self.owner),
            client_ip = %client_ip,
            "API key refused"
        );
        Err(ApiKeyError::new(ApiKeyErrorKind::MissingScope))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Credentials, credentials};
    use proptest::prelude::*;

    fn read<'a>(key: &[&'a str], authorization: &[&'a str]) -> Credentials<'a> {
        credentials(
            key.iter().map(|line| line.as_bytes()),
            authorization.iter().map(|line| line.as_bytes()),
        )
    }

    #[test]
    fn the_key_header_and_the_apikey_scheme() {
        assert_eq!(read(&[], &[]), Credentials::None);
        assert_eq!(read(&["k1"], &[]), Credentials::Key("k1"));
        assert_eq!(read(&[" k1\t"], &[]), Credentials::Key("k1"));
        assert_eq!(read(&[], &["ApiKey k1"]), Credentials::Key("k1"));
        assert_eq!(read(&[], &["apikey   k1"]), Credentials::Key("k1"));
        // Another scheme alone is no key.
        assert_eq!(read(&[], &["Bearer t"]), Credentials::None);
        assert_eq!(read(&[], &["Basic dTpw"]), Credentials::None);
    }

    #[test]
    fn empty_or_repeated_headers_are_malformed() {
        assert_eq!(read(&[""], &[]), Credentials::Malformed);
        assert_eq!(read(&["  "], &[]), Credentials::Malformed);
        assert_eq!(read(&["k1", "k2"], &[]), Credentials::Malformed);
        assert_eq!(read(&[], &["ApiKey"]), Credentials::Malformed);
        assert_eq!(read(&[], &["ApiKey  "]), Credentials::Malformed);
        assert_eq!(
            read(&[], &["ApiKey k1", "ApiKey k2"]),
            Credentials::Malformed
        );
        assert_eq!(
            credentials(std::iter::once(&b"\xff"[..]), std::iter::empty()),
            Credentials::Malformed
        );
    }

    /// Attack: identity confusion. A key and a bearer token (or two keys)
    /// in one request: a layer that picked one would let another layer
    /// (or a proxy) judge the other.
    #[test]
    fn two_credentials_are_ambiguous() {
        assert_eq!(read(&["k1"], &["Bearer t"]), Credentials::Ambiguous);
        assert_eq!(read(&["k1"], &["ApiKey k1"]), Credentials::Ambiguous);
        assert_eq!(read(&["k1"], &["Basic dTpw"]), Credentials::Ambiguous);
        assert_eq!(read(&[""], &["Bearer t"]), Credentials::Ambiguous);
        assert_eq!(read(&["k1"], &["a", "b"]), Credentials::Ambiguous);
    }

    proptest! {
        /// Never panics; a key found is a piece of what was sent.
        #[test]
        fn any_header_bytes(
            key in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..3),
            auth in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..3),
        ) {
            let found = credentials(
                key.iter().map(Vec::as_slice),
                auth.iter().map(Vec::as_slice),
            );
            if let Credentials::Key(text) = found {
                prop_assert!(!text.is_empty());
                let sent = key.iter().chain(&auth).any(|line| {
                    line.windows(text.len()).any(|window| window == text.as_bytes())
                });
                prop_assert!(sent);
            }
        }
    }
}
