//! API-key authentication as actix-web middleware: the key is verified
//! once, before the middleware inside it (a per-key rate limit) and the
//! handler.

use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{AUTHORIZATION, HeaderName};
use futures_util::future::LocalBoxFuture;
use palisade_apikeys::request::{self, KeyMode, VerifyKey};
use palisade_ratelimit::client_ip::ClientIpResolver;

use super::VerifiedKey;
use crate::{AnonymousCaller, ApiError};

/// The address a request without a peer address is verified from: inside
/// no allow-list a key should hold (`::`), so such a key is refused 403
/// rather than checked against nothing.
pub(super) const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// Marks a caller the optional middleware let through without a key (its
/// address, for the refusal's event).
#[derive(Clone, Copy, Debug)]
pub(super) struct NoKey(pub(super) IpAddr);

/// Verifies the API key before the wrapped service runs and puts the
/// [`KeyInfo`](super::KeyInfo) and the [`VerifiedKey`] into the request
/// extensions (the extractors then read them instead of verifying again).
///
/// - The key comes from `X-API-Key` ([`header`](Self::header) to rename
///   it) or `Authorization: ApiKey <key>`.
/// - The client address for the key's allow-list is the socket peer, or
///   behind trusted proxies the address the
///   [`client_ip`](Self::client_ip) resolver takes from the forwarding
///   header. A forwarding header from a peer that is not a trusted proxy
///   is never read. Without a peer address the address is unknown (`::`,
///   a `sys_misconfigured` event): a key with an allow-list is then
///   refused.
/// - A missing key (required mode) and a malformed, unknown, wrongly
///   keyed, revoked, expired or rotated-out key are one 401 envelope with
///   `WWW-Authenticate: ApiKey`; an address outside the key's allow-list
///   is a 403; a key together with other credentials (`Authorization:
///   Bearer` or a second key) is a 400 `bad_request`, whatever either is
///   worth (which identity would the request have?); a store that does
///   not answer is a 503. The wrapped service never runs.
///
/// Register it after (outside) the middleware that keys on the identity:
/// `.wrap(RateLimit::new(..)).wrap(ApiKeyAuth::required(..))`.
pub struct ApiKeyAuth {
    keys: Arc<dyn VerifyKey>,
    mode: KeyMode,
    header: HeaderName,
    resolver: Arc<ClientIpResolver>,
}

impl Clone for ApiKeyAuth {
    fn clone(&self) -> Self {
        ApiKeyAuth {
            keys: Arc::clone(&self.keys),
            mode: self.mode,
            header: self.header.clone(),
            resolver: Arc::clone(&self.resolver),
        }
    }
}

impl ApiKeyAuth {
    /// Every request needs a valid key: without one, 401.
    pub fn required(keys: impl VerifyKey) -> Self {
        Self::new(Arc::new(keys), KeyMode::Required)
    }

    /// A request without any key passes on anonymous (no key, an
    /// [`AnonymousCaller`] marker instead); a bad key is still a 401,
    /// never downgraded to anonymous.
    pub fn optional(keys: impl VerifyKey) -> Self {
        Self::new(Arc::new(keys), KeyMode::Optional)
    }

    /// The middleware over the [`ApiKeys`](super::ApiKeys) the application
    /// shares (to issue, rotate and revoke keys from its handlers).
    pub fn new<K: VerifyKey>(keys: Arc<K>, mode: KeyMode) -> Self {
        ApiKeyAuth {
            keys,
            mode,
            header: HeaderName::from_static(request::DEFAULT_HEADER),
            resolver: Arc::new(ClientIpResolver::peer_only()),
        }
    }

    /// Reads the key from `header` instead of `X-API-Key`
    /// (`Authorization: ApiKey` is still accepted).
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// How the client address is found (the peer by default; behind your
    /// proxies, [`ClientIpResolver::behind_proxies`], the same resolver
    /// as the rate limits').
    pub fn client_ip(mut self, resolver: ClientIpResolver) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }
}

impl<I, B> Transform<I, ServiceRequest> for ApiKeyAuth
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = ApiKeyMiddleware<I>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: I) -> Self::Future {
        ready(Ok(ApiKeyMiddleware {
            service: Rc::new(service),
            layer: self.clone(),
        }))
    }
}

/// The service made by [`ApiKeyAuth`].
pub struct ApiKeyMiddleware<I> {
    service: Rc<I>,
    layer: ApiKeyAuth,
}

fn client_ip(resolver: &ClientIpResolver, request: &ServiceRequest) -> IpAddr {
    let Some(peer) = request.peer_addr() else {
        tracing::error!(
            event = palisade_errors::SecurityEvent::SysMisconfigured.as_str(),
            reason = "apikey_no_peer_address",
            "request without a peer address"
        );
        return UNKNOWN_CLIENT;
    };
    // Only the configured forwarding header is read, as raw lines (actix is
    // on `http` 0.2).
    match resolver.header() {
        Some(header) => resolver
            .resolve_lines(
                peer.ip(),
                request
                    .headers()
                    .get_all(header.header_name().as_str())
                    .map(|value| value.as_bytes()),
            )
            .ip(),
        None => resolver.resolve_lines(peer.ip(), std::iter::empty()).ip(),
    }
}

impl<I, B> Service<ServiceRequest> for ApiKeyMiddleware<I>
where
    I: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let layer = self.layer.clone();
        let client_ip = client_ip(&layer.resolver, &request);
        let copy = |name: &HeaderName| -> Vec<Vec<u8>> {
            request
                .headers()
                .get_all(name)
                .map(|value| value.as_bytes().to_vec())
                .collect()
        };
        let (key_lines, authorization_lines) = (copy(&layer.header), copy(&AUTHORIZATION));
        Box::pin(async move {
            let credentials = request::credentials(
                key_lines.iter().map(Vec::as_slice),
                authorization_lines.iter().map(Vec::as_slice),
            );
            let decision =
                request::authenticate_request(&*layer.keys, credentials, client_ip, layer.mode)
                    .await;
            match decision {
                Ok(Some(info)) => {
                    {
                        let mut extensions = request.extensions_mut();
                        extensions.insert(info.clone());
                        extensions.insert(VerifiedKey { info, client_ip });
                    }
                    Ok(service.call(request).await?.map_into_left_body())
                }
                Ok(None) => {
                    {
                        let mut extensions = request.extensions_mut();
                        extensions.insert(NoKey(client_ip));
                        extensions.insert(AnonymousCaller::new(move || {
                            request::refuse_anonymous(client_ip)
                        }));
                    }
                    Ok(service.call(request).await?.map_into_left_body())
                }
                // The error travels with the response, so `Harden` renders
                // it with the request id.
                Err(error) => Ok(request
                    .error_response(ApiError(error))
                    .map_into_right_body()),
            }
        })
    }
}
