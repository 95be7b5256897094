//! The service's own layer and keys: the trusted-host check over
//! palisade-validate's `TrustedHosts` with proxies given as CIDRs (the
//! adapter's `TrustedHostLayer` takes single addresses), and the rate-limit
//! keys.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use palisade_auth_tokens::authz::Principal;
use palisade_axum::ApiError;
use palisade_axum::ratelimit::{ClientIpResolver, KeyFn, by_ip};
use palisade_errors::Error;
use palisade_ratelimit::client_ip::IpNet;
use palisade_validate::hosts::TrustedHosts;

/// The paths that skip the trusted-host check and the per-IP limit:
/// load-balancer probes send an IP as `Host` and poll often.
pub const HEALTH_PREFIX: &str = "/health/";

/// The trusted-host check and what it needs to believe `X-Forwarded-Host`.
#[derive(Debug)]
pub struct HostGuard {
    /// The allow-list (exempting `/health/*`).
    pub hosts: TrustedHosts,
    /// The proxies whose `X-Forwarded-Host` is read.
    pub proxies: Vec<IpNet>,
}

/// Refuses a request whose `Host` (or, from a trusted proxy,
/// `X-Forwarded-Host`) is not allowed: 400, before any other work.
pub async fn trusted_host(
    State(guard): State<Arc<HostGuard>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let forwarded_trusted = peer.is_some_and(|ip| guard.proxies.iter().any(|net| net.contains(ip)));
    let (parts, body) = request.into_parts();
    if let Err(refusal) = guard.hosts.check(&parts, forwarded_trusted) {
        return ApiError(Error::from(refusal)).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

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
