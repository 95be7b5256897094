//! API-key authentication as a tower layer: the key is verified once,
//! before the layers inside it (a per-key rate limit) and the handler.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Request};
use palisade_apikeys::request::{self, KeyMode, VerifyKey};
use palisade_ratelimit::client_ip::ClientIpResolver;
use tower_layer::Layer;
use tower_service::Service;

use super::VerifiedKey;
use crate::{AnonymousCaller, ApiError};

/// The address a request without a peer address is verified from: inside
/// no allow-list a key should hold (`::`), so such a key is refused 403
/// rather than checked against nothing.
pub(super) const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// Marks a caller the optional layer let through without a key (its
/// address, for the refusal's event).
#[derive(Clone, Copy, Debug)]
pub(super) struct NoKey(pub(super) IpAddr);

/// Verifies the API key before the inner layers run and puts the
/// [`KeyInfo`](super::KeyInfo) and the [`VerifiedKey`] into the request
/// extensions (the extractors then read them instead of verifying again).
///
/// - The key comes from `X-API-Key` ([`header`](Self::header) to rename
///   it) or `Authorization: ApiKey <key>`.
/// - The client address for the key's allow-list is the socket peer
///   (axum's `ConnectInfo`; serve with
///   `into_make_service_with_connect_info::<SocketAddr>()`), or behind
///   trusted proxies the address the [`client_ip`](Self::client_ip)
///   resolver takes from the forwarding header. A forwarding header from a
///   peer that is not a trusted proxy is never read. Without
///   `ConnectInfo` the address is unknown (`::`, a `sys_misconfigured`
///   event): a key with an allow-list is then refused.
/// - A missing key (required mode) and a malformed, unknown, wrongly
///   keyed, revoked, expired or rotated-out key are one 401 envelope with
///   `WWW-Authenticate: ApiKey`; an address outside the key's allow-list
///   is a 403; a key together with other credentials (`Authorization:
///   Bearer` or a second key) is a 400 `bad_request`, whatever either is
///   worth (which identity would the request have?); a store that does
///   not answer is a 503. The inner service never runs.
///
/// Add it after (outside) the layers that key on the identity:
/// `.route_layer(RateLimitLayer::new(..)).route_layer(ApiKeyLayer::required(..))`.
pub struct ApiKeyLayer {
    keys: Arc<dyn VerifyKey>,
    mode: KeyMode,
    header: HeaderName,
    resolver: Arc<ClientIpResolver>,
}

impl Clone for ApiKeyLayer {
    fn clone(&self) -> Self {
        ApiKeyLayer {
            keys: Arc::clone(&self.keys),
            mode: self.mode,
            header: self.header.clone(),
            resolver: Arc::clone(&self.resolver),
        }
    }
}

impl ApiKeyLayer {
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

    /// The layer over the [`ApiKeys`](super::ApiKeys) the application
    /// shares (to issue, rotate and revoke keys from its handlers).
    pub fn new<K: VerifyKey>(keys: Arc<K>, mode: KeyMode) -> Self {
        ApiKeyLayer {
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

impl<I> Layer<I> for ApiKeyLayer {
    type Service = ApiKeyService<I>;

    fn layer(&self, inner: I) -> ApiKeyService<I> {
        ApiKeyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ApiKeyLayer`].
#[derive(Clone)]
pub struct ApiKeyService<I> {
    inner: I,
    layer: ApiKeyLayer,
}

fn client_ip(resolver: &ClientIpResolver, request: &Request<Body>) -> IpAddr {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => resolver.resolve(peer.ip(), request.headers()).ip(),
        None => {
            tracing::error!(
                event = palisade_errors::SecurityEvent::SysMisconfigured.as_str(),
                reason = "apikey_no_peer_address",
                "no ConnectInfo<SocketAddr>: serve with into_make_service_with_connect_info"
            );
            UNKNOWN_CLIENT
        }
    }
}

impl<I> Service<Request<Body>> for ApiKeyService<I>
where
    I: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Keep the service polled ready, give the clone to the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let client_ip = client_ip(&layer.resolver, &request);
            let headers = request.headers();
            let credentials = request::credentials(
                headers
                    .get_all(&layer.header)
                    .iter()
                    .map(HeaderValue::as_bytes),
                headers
                    .get_all(AUTHORIZATION)
                    .iter()
                    .map(HeaderValue::as_bytes),
            );
            let decision =
                request::authenticate_request(&*layer.keys, credentials, client_ip, layer.mode)
                    .await;
            match decision {
                Ok(Some(info)) => {
                    let extensions = request.extensions_mut();
                    extensions.insert(info.clone());
                    extensions.insert(VerifiedKey { info, client_ip });
                    inner.call(request).await
                }
                Ok(None) => {
                    let extensions = request.extensions_mut();
                    extensions.insert(NoKey(client_ip));
                    extensions.insert(AnonymousCaller::new(move || {
                        request::refuse_anonymous(client_ip)
                    }));
                    inner.call(request).await
                }
                Err(error) => Ok(ApiError(error).into_response()),
            }
        })
    }
}
