//! A hardened HTTP/1.1 server loop for a Palisade [`Router`] (feature `serve`).
//!
//! `axum::serve` runs hyper without a timer, so hyper's header-read timeout is
//! silently off and nothing bounds a stalled body. [`serve`] runs hyper's
//! HTTP/1.1 server with [`TokioTimer`] and the limits of a [`ServeConfig`]:
//!
//! - a head (request line + headers) must arrive within
//!   [`header_read_timeout`](ServeConfig::header_read_timeout), or the
//!   connection is closed without an answer; the same budget bounds an idle
//!   keep-alive connection waiting for its next request (slowloris);
//! - a request body must arrive within
//!   [`body_read_timeout`](ServeConfig::body_read_timeout) of its head: past
//!   it the handler is dropped and the client gets the 408 envelope with
//!   `Connection: close`;
//! - a declared `Content-Length` over
//!   [`max_body_bytes`](ServeConfig::max_body_bytes) is answered 413 before
//!   any of the body is read (and so, with `Expect: 100-continue`, without a
//!   `100 Continue`);
//! - an HTTP/1.1 request without exactly one valid `Host` is answered 400
//!   (RFC 9112 §3.2), as is any request with several;
//! - a request target over [`max_uri_bytes`](ServeConfig::max_uri_bytes) is
//!   answered 414, and more than [`max_header_count`](ServeConfig::max_header_count)
//!   headers or more than [`max_header_bytes`](ServeConfig::max_header_bytes)
//!   of them 431;
//! - a client that half-closes its side after sending the request still gets
//!   the answer;
//! - at most [`max_connections`](ServeConfig::max_connections) connections are
//!   served at once (further ones wait in the listen backlog);
//! - [`Serve::with_graceful_shutdown`] stops accepting, lets in-flight requests
//!   finish for up to [`shutdown_timeout`](ServeConfig::shutdown_timeout), then
//!   drops what is left.
//!
//! Every refusal above is the Palisade envelope (with a request id, the
//! caller's valid `X-Request-Id` or a fresh one); give it the router's
//! security and CORS headers with [`Serve::decorate_refusals`], since the
//! router's layers never see a request the loop refused. hyper's own limits are set
//! above these (twice the header count, twice the head size), so only a
//! request hyper cannot parse at all gets hyper's bare answer with an empty
//! body and the connection closed: a malformed request line or header (400),
//! more than twice `max_header_count` header lines or a head over twice
//! `max_uri_bytes + max_header_bytes` (431), a target over 65534 bytes (414).
//!
//! With request validation (feature `validate`), `palisade_validate`'s
//! `RequestLimits` is the one source of these numbers:
//! `ServeConfig::builder().request_limits(&limits)` copies its target,
//! header and largest body limits here, so `serve` and the
//! `RequestLimitsLayer` refuse at the same sizes with the same envelope
//! (the layer adds the per-route body caps, one header value's length and
//! the query parameter count, and caps streamed bodies).
//!
//! The router sees `ConnectInfo<SocketAddr>` in its request extensions (for
//! the rate limits keyed by client IP). HTTP/2 is not served.

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::response::Response;
use http::header::{CONNECTION, EXPECT, HOST, ORIGIN};
use http::{HeaderMap, HeaderValue, Request, Version};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use palisade_errors::{Error, ErrorKind, REQUEST_ID_HEADER, RequestId, SecurityEvent};
use serde::{Deserialize, Deserializer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower_service::Service;

/// The connection limits of [`serve`]. Durations are milliseconds in a
/// config file (`header_read_timeout_ms = 10000`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Time for a whole head to arrive, and for an idle keep-alive connection
    /// to send its next one. Default 10 s.
    #[serde(rename = "header_read_timeout_ms", deserialize_with = "millis")]
    pub header_read_timeout: Duration,
    /// Time for a whole request body to arrive, counted from its head.
    /// Default 30 s.
    #[serde(rename = "body_read_timeout_ms", deserialize_with = "millis")]
    pub body_read_timeout: Duration,
    /// Whether connections are kept alive between requests. Default `true`.
    pub keep_alive: bool,
    /// The largest declared `Content-Length` accepted. Default 1 MiB.
    pub max_body_bytes: u64,
    /// The longest request target. Default 8 KiB.
    pub max_uri_bytes: usize,
    /// The most header fields in a request. Default 100.
    pub max_header_count: usize,
    /// The most bytes of header names and values in a request. Default 16 KiB.
    pub max_header_bytes: usize,
    /// The most connections served at once. Default 10 000.
    pub max_connections: usize,
    /// Time in-flight requests get to finish after shutdown begins. Default 30 s.
    #[serde(rename = "shutdown_timeout_ms", deserialize_with = "millis")]
    pub shutdown_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive: true,
            max_body_bytes: 1024 * 1024,
            max_uri_bytes: 8 * 1024,
            max_header_count: 100,
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl ServeConfigBuilder {
            $($(#[$doc])* pub fn $name(mut self, value: $ty) -> ServeConfigBuilder {
                self.0.$name = value;
                self
            })*
        }
    };
}

/// Builds a [`ServeConfig`] from the secure defaults.
#[derive(Clone, Debug, Default)]
pub struct ServeConfigBuilder(ServeConfig);

setters! {
    /// See [`ServeConfig::header_read_timeout`].
    header_read_timeout: Duration,
    /// See [`ServeConfig::body_read_timeout`].
    body_read_timeout: Duration,
    /// See [`ServeConfig::keep_alive`].
    keep_alive: bool,
    /// See [`ServeConfig::max_body_bytes`].
    max_body_bytes: u64,
    /// See [`ServeConfig::max_uri_bytes`].
    max_uri_bytes: usize,
    /// See [`ServeConfig::max_header_count`].
    max_header_count: usize,
    /// See [`ServeConfig::max_header_bytes`].
    max_header_bytes: usize,
    /// See [`ServeConfig::max_connections`].
    max_connections: usize,
    /// See [`ServeConfig::shutdown_timeout`].
    shutdown_timeout: Duration,
}

impl ServeConfigBuilder {
    /// Takes the head and body limits from the one source of truth, the
    /// application's [`RequestLimits`](palisade_validate::limits::RequestLimits)
    /// (feature `validate`): `max_uri_bytes`, `max_header_count` and
    /// `max_header_bytes` become RequestLimits' own, `max_body_bytes` its
    /// largest route cap (so an upload route's declared length gets
    /// through to the route's own check). Raise `max_header_bytes` after
    /// it to let heads larger than twice that reach the server at all (see
    /// the crate README: hyper answers a bare 431 above twice the head limits).
    #[cfg(feature = "validate")]
    pub fn request_limits(
        mut self,
        limits: &palisade_validate::limits::RequestLimits,
    ) -> ServeConfigBuilder {
        self.0.max_uri_bytes = limits.max_uri_bytes();
        self.0.max_header_count = limits.max_header_count();
        self.0.max_header_bytes = limits.max_header_bytes();
        self.0.max_body_bytes = limits.largest_body_cap();
        self
    }

    /// The configuration, or which setting is unusable and why.
    pub fn build(self) -> Result<ServeConfig, io::Error> {
        self.0.validate().map(|()| self.0)
    }
}

impl ServeConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ServeConfigBuilder {
        ServeConfigBuilder::default()
    }

    /// Refuses settings that switch a protection off (a zero timeout, limit or
    /// connection bound).
    pub fn validate(&self) -> Result<(), io::Error> {
        let zero = [
            ("header_read_timeout", self.header_read_timeout.is_zero()),
            ("body_read_timeout", self.body_read_timeout.is_zero()),
            ("max_uri_bytes", self.max_uri_bytes == 0),
            ("max_header_count", self.max_header_count == 0),
            ("max_header_bytes", self.max_header_bytes == 0),
            ("max_connections", self.max_connections == 0),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((name, _)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("serve: {name} must be greater than zero"),
            )),
            None => Ok(()),
        }
    }
}

/// Serves `router` on `listener` with the defaults of [`ServeConfig`]; await
/// the result (or call [`Serve::run`]) to run until shutdown.
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router,
        config: ServeConfig::default(),
        signal: Box::pin(std::future::pending()),
        decorate: None,
    }
}

/// What [`Serve::decorate_refusals`] runs on each of the loop's own
/// refusals: the request's headers (its `Origin`), then the refusal.
type Decorate = Arc<dyn Fn(&HeaderMap, &mut Response) + Send + Sync>;

/// The server made by [`serve`].
#[must_use = "a server does nothing until awaited"]
pub struct Serve {
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    decorate: Option<Decorate>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Serve {
    /// Replaces the limits.
    pub fn config(mut self, config: ServeConfig) -> Serve {
        self.config = config;
        self
    }

    /// Stops accepting when `signal` completes, then drains in-flight requests
    /// for up to [`ServeConfig::shutdown_timeout`].
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Serve
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.signal = Box::pin(signal);
        self
    }

    /// Gives the loop's own refusals what the router's outer layers give
    /// every response it makes. The loop answers some requests before the
    /// router sees them (400 `bad_host`, 408, 413, 414, 431), so the
    /// router's security-header and CORS layers never run on those: without
    /// this they go out as the bare envelope, with no `nosniff`, CSP or HSTS,
    /// and no `Access-Control-Allow-Origin`, so a front end cannot even read
    /// why it was refused. `decorate` gets the request's headers and the
    /// refusal (for a 408, the request's `Origin` alone); apply the
    /// same `SecurityHeaders` and `CorsPolicy` as the router's `Hardening`.
    pub fn decorate_refusals(
        mut self,
        decorate: impl Fn(&HeaderMap, &mut Response) + Send + Sync + 'static,
    ) -> Serve {
        self.decorate = Some(Arc::new(decorate));
        self
    }

    /// The address being listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs until the shutdown signal and the drain are done. Fails at once
    /// on an invalid [`ServeConfig`].
    pub async fn run(self) -> io::Result<()> {
        let Serve {
            listener,
            router,
            config,
            mut signal,
            decorate,
        } = self;
        config.validate()?;
        let config = Arc::new(config);
        let mut http = http1::Builder::new();
        let hyper_head = 2 * (config.max_uri_bytes + config.max_header_bytes);
        http.timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .keep_alive(config.keep_alive)
            .half_close(true)
            .max_headers(2 * config.max_header_count)
            .max_header_size(hyper_head)
            .max_buf_size((2 * hyper_head).max(400 * 1024));
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let slot = tokio::select! {
                _ = &mut signal => break,
                slot = Arc::clone(&slots).acquire_owned() => slot,
            };
            let Ok(slot) = slot else { break };
            let (stream, peer) = tokio::select! {
                _ = &mut signal => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let config = Arc::clone(&config);
            let router = router.clone();
            let decorate = decorate.clone();
            let service = hyper::service::service_fn(move |request| {
                handle(
                    request,
                    router.clone(),
                    Arc::clone(&config),
                    decorate.clone(),
                    peer,
                )
            });
            let connection = http.serve_connection(TokioIo::new(stream), service);
            let mut stopped = stopped.clone();
            connections.spawn(async move {
                let _slot = slot;
                tokio::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection closed with an error");
                }
            });
        }
        drop(listener);
        let _ = stop.send(true);
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "shutdown timeout: dropping connections still in flight"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

async fn handle(
    request: Request<Incoming>,
    mut router: Router,
    config: Arc<ServeConfig>,
    decorate: Option<Decorate>,
    peer: SocketAddr,
) -> Result<Response, Infallible> {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(RequestId::from_header)
        .unwrap_or_else(crate::request_id::generate);
    let decorated = |mut response: Response, headers: &HeaderMap| {
        if let Some(decorate) = &decorate {
            decorate(headers, &mut response);
        }
        response
    };
    if let Some((kind, reason)) = check_head(&request, &config) {
        return Ok(decorated(
            refuse(kind, reason, &id, peer),
            request.headers(),
        ));
    }
    // Kept for a 408 (the request moves into the router): its `Origin`
    // alone, the one header a decoration reads (a shared `Bytes`, no copy).
    let origin = decorate
        .as_ref()
        .and_then(|_| request.headers().get(ORIGIN).cloned());
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = (!request.body().is_end_stream())
        .then(|| Box::pin(tokio::time::sleep(config.body_read_timeout)));
    let flag = Arc::clone(&timed_out);
    let mut request = request.map(|incoming| {
        Body::new(DeadlineBody {
            body: Some(incoming),
            deadline,
            timed_out: flag,
        })
    });
    request.extensions_mut().insert(ConnectInfo(peer));
    // The router's request id layer takes this one: one id per request,
    // whoever answers.
    request.extensions_mut().insert(id.clone());
    let mut response = std::pin::pin!(router.call(request));
    // The handler is dropped as soon as its body missed the deadline, whatever
    // it does with the error it got.
    let response = std::future::poll_fn(|cx| {
        let polled = response.as_mut().poll(cx);
        if timed_out.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        polled.map(Some)
    })
    .await;
    Ok(match response {
        Some(Ok(response)) => response,
        Some(Err(never)) => match never {},
        None => {
            let mut head = HeaderMap::new();
            if let Some(origin) = origin {
                head.insert(ORIGIN, origin);
            }
            decorated(
                refuse(ErrorKind::RequestTimeout, "body_read_timeout", &id, peer),
                &head,
            )
        }
    })
}

/// The refusals made before the router runs: a framing or size problem of the head.
fn check_head<B: http_body::Body>(
    request: &Request<B>,
    config: &ServeConfig,
) -> Option<(ErrorKind, &'static str)> {
    let headers = request.headers();
    let mut hosts = headers.get_all(HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(host), None) => {
            host.is_empty() || http::uri::Authority::try_from(host.as_bytes()).is_ok()
        }
        (None, None) => request.version() < Version::HTTP_11,
        _ => false,
    };
    if !host_ok {
        return Some((ErrorKind::BadRequest, "bad_host"));
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target > config.max_uri_bytes {
        return Some((ErrorKind::UriTooLong, "uri_too_long"));
    }
    let head_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > config.max_header_count || head_bytes > config.max_header_bytes {
        return Some((ErrorKind::HeadersTooLarge, "headers_too_large"));
    }
    // Refused before a byte of the body is read, so hyper sends no `100 Continue`.
    if request.body().size_hint().lower() > config.max_body_bytes {
        let reason = if headers.contains_key(EXPECT) {
            "expect_body_too_large"
        } else {
            "body_too_large"
        };
        return Some((ErrorKind::PayloadTooLarge, reason));
    }
    None
}

/// The envelope for a refusal the server makes itself; the connection is closed
/// (the body, if any, is unread).
fn refuse(kind: ErrorKind, reason: &'static str, id: &RequestId, peer: SocketAddr) -> Response {
    tracing::info!(
        event = SecurityEvent::InputValidationFail.as_str(),
        reason,
        request_id = %id,
        client_ip = %peer.ip(),
        status = kind.status().as_u16(),
        "request refused by the server"
    );
    let error = Error::new(kind);
    let mut response = error.to_response(Some(id)).map(Body::from);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response.extensions_mut().insert(error);
    response
}

/// The request body with a read deadline; missing it fails the body and marks
/// the request timed out.
struct DeadlineBody {
    body: Option<Incoming>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body read deadline passed")
    }
}

impl std::error::Error for BodyTimeout {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.timed_out.store(true, Ordering::Release);
            this.body = None;
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}
