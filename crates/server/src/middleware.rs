//! The service's rate-limit keys (the trusted-host check is the adapter's
//! `TrustedHostLayer`, with the configured proxy CIDRs).

use std::sync::Arc;

use palisade_auth_tokens::authz::Principal;
use palisade_axum::ratelimit::{ClientIpResolver, KeyFn, by_ip};

/// The paths that skip the per-IP limit (and, through `TrustedHosts`'
/// `exempt_path`, the trusted-host check): load-balancer probes send an IP
/// as `Host` and poll often.
pub const HEALTH_PREFIX: &str = "/health/";

/// Keys by client IP, except `/health/*` (left unmetered).
pub fn by_ip_except_health(resolver: ClientIpResolver) -> KeyFn {
    let by_ip = by_ip(resolver);
    Arc::new(move |request| {
        if request.uri().path().starts_with(HEALTH_PREFIX) {
            Ok(None)
        } else {
            by_ip(request)
        }
    })
}

/// Keys by the verified subject the authentication layer found; anonymous
/// requests are left to the per-IP limit (no identity, no budget of its own).
pub fn by_subject() -> KeyFn {
    Arc::new(|request| {
        Ok(request
            .extensions()
            .get::<Principal>()
            .map(|who| format!("sub:{}", who.subject)))
    })
}

/// Keys by the verified API key's public id (the layer's `KeyInfo`).
pub fn by_key() -> KeyFn {
    Arc::new(|request| {
        Ok(request
            .extensions()
            .get::<palisade_axum::apikeys::KeyInfo>()
            .map(|key| format!("key:{}", key.key_id)))
    })
}
