//! Limits keyed by a verified identity in the request extensions.

use std::sync::Arc;

use actix_web::HttpMessage;
use palisade_ratelimit::keys;

use super::KeyFn;
use crate::AnonymousCaller;

/// Keys by a value an earlier, verifying middleware put into the request
/// extensions (the `Principal` the `auth` feature's `Authentication`
/// inserts, an API key id): never by an unverified token, or an attacker
/// could spend a victim's quota.
///
/// The result is not a [`KeyFn`] yet: say what a request without the value
/// gets, with [`ByExtension::or_key`] or [`ByExtension::or_refuse`]. There
/// is no choice that passes it unmetered.
///
/// The identity middleware must run before the limit (registered after it:
/// `.wrap(limit).wrap(auth)`). actix composes middleware by type, so a wrong
/// order cannot be seen at start-up; it is caught per request: a request
/// without the value and without an [`AnonymousCaller`] marker is answered
/// 500 with a `sys_misconfigured` event, whichever choice was made.
pub fn by_extension<T, F>(key: F) -> ByExtension<T>
where
    T: 'static,
    F: Fn(&T) -> String + Send + Sync + 'static,
{
    ByExtension(Arc::new(key))
}

/// A limit keyed by an extension, waiting for the choice of what a request
/// without it gets (see [`by_extension`]).
#[must_use = "choose or_key or or_refuse to get a KeyFn"]
pub struct ByExtension<T>(Arc<dyn Fn(&T) -> String + Send + Sync>);

impl<T: 'static> ByExtension<T> {
    /// An anonymous caller (one the identity middleware let through) is
    /// keyed by `fallback` instead, e.g. [`by_ip`](super::by_ip): its budget is its
    /// address's.
    pub fn or_key(self, fallback: KeyFn) -> KeyFn {
        Arc::new(move |request| {
            let anonymous = {
                let extensions = request.extensions();
                if let Some(value) = extensions.get::<T>() {
                    return Ok(Some((self.0)(value)));
                }
                extensions.contains::<AnonymousCaller>()
            };
            if anonymous {
                fallback(request)
            } else {
                Err(keys::identity_layer_missing())
            }
        })
    }

    /// An anonymous caller is refused with the identity middleware's answer
    /// (401 and its challenge).
    pub fn or_refuse(self) -> KeyFn {
        Arc::new(move |request| {
            let extensions = request.extensions();
            match (extensions.get::<T>(), extensions.get::<AnonymousCaller>()) {
                (Some(value), _) => Ok(Some((self.0)(value))),
                (None, Some(anonymous)) => Err(anonymous.refusal()),
                (None, None) => Err(keys::identity_layer_missing()),
            }
        })
    }
}
