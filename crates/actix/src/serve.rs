//! Connection protection for an actix-web server (feature `serve`).
//!
//! actix-http already closes a connection whose head does not arrive within
//! `client_request_timeout` (a bare 408 on the first request, a silent close on
//! an idle keep-alive one), refuses an HTTP/1.1 request without `Host` (a bare
//! 400: it is rejected while parsing, before any middleware) and keeps
//! answering a client that half-closes. What it does not bound is a request
//! body that stalls: [`BodyDeadline`] does.
//!
//! - [`configure`] applies a [`ServeConfig`] to an `HttpServer`: head timeout,
//!   keep-alive idle timeout, disconnect timeout, shutdown timeout, per-worker
//!   connection bound.
//! - [`BodyDeadline`] fails a request body that has not fully arrived
//!   [`body_read_timeout`](ServeConfig::body_read_timeout) after the request
//!   reached the app: the handler's read fails, the client gets the 408
//!   envelope and the connection is closed.
//!
//! Not covered on actix: actix-http writes `100 Continue` before any
//! middleware runs, so an `Expect: 100-continue` request over the body cap is
//! refused (413 by the payload extractors) only after the `100`.
//! actix-web's graceful shutdown (on SIGINT/SIGTERM, or
//! `ServerHandle::stop(true)`) finishes in-flight requests for up to
//! `shutdown_timeout`.

use std::cell::Cell;
use std::future::{Future, Ready, ready};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::Request;
use actix_service::IntoServiceFactory;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{
    AppConfig, Payload, Service, ServiceFactory, ServiceRequest, ServiceResponse, Transform,
    forward_ready,
};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, KeepAlive};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpServer};
use futures_util::Stream;
use futures_util::future::LocalBoxFuture;
use palisade_errors::{Error, ErrorKind, RequestId, SecurityEvent};
use serde::{Deserialize, Deserializer};

use crate::error::render;

/// The connection limits applied by [`configure`] and [`BodyDeadline`].
/// Durations are milliseconds in a config file (`header_read_timeout_ms`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Time for the first head to arrive (`client_request_timeout`). Default 10 s.
    #[serde(rename = "header_read_timeout_ms", deserialize_with = "millis")]
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection is kept (`keep_alive`). Default 10 s;
    /// zero disables keep-alive.
    #[serde(rename = "keep_alive_timeout_ms", deserialize_with = "millis")]
    pub keep_alive_timeout: Duration,
    /// Time for a whole request body to arrive ([`BodyDeadline`]). Default 30 s.
    #[serde(rename = "body_read_timeout_ms", deserialize_with = "millis")]
    pub body_read_timeout: Duration,
    /// Time to finish writing to a client that is going away
    /// (`client_disconnect_timeout`). Default 1 s.
    #[serde(rename = "client_disconnect_timeout_ms", deserialize_with = "millis")]
    pub client_disconnect_timeout: Duration,
    /// Time in-flight requests get after shutdown begins, rounded up to whole
    /// seconds (`shutdown_timeout`). Default 30 s.
    #[serde(rename = "shutdown_timeout_ms", deserialize_with = "millis")]
    pub shutdown_timeout: Duration,
    /// The most connections served at once by each worker. Default 10 000.
    pub max_connections: usize,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            client_disconnect_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

/// Builds a [`ServeConfig`] from the secure defaults.
#[derive(Clone, Debug, Default)]
pub struct ServeConfigBuilder(ServeConfig);

macro_rules! setters {
    ($($name:ident: $ty:ty),* $(,)?) => {
        impl ServeConfigBuilder {
            $(#[doc = concat!("See [`ServeConfig::", stringify!($name), "`].")]
            pub fn $name(mut self, value: $ty) -> ServeConfigBuilder {
                self.0.$name = value;
                self
            })*
        }
    };
}

setters! {
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    body_read_timeout: Duration,
    client_disconnect_timeout: Duration,
    shutdown_timeout: Duration,
    max_connections: usize,
}

impl ServeConfigBuilder {
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

    /// Refuses settings that switch a protection off (a zero head or body
    /// timeout, no connection bound).
    pub fn validate(&self) -> Result<(), io::Error> {
        let zero = [
            ("header_read_timeout", self.header_read_timeout.is_zero()),
            ("body_read_timeout", self.body_read_timeout.is_zero()),
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

    /// The [`BodyDeadline`] middleware for this configuration.
    pub fn body_deadline(&self) -> BodyDeadline {
        BodyDeadline::new(self.body_read_timeout)
    }
}

/// Applies `config` to `server` (call it before `bind`). Wrap the app in
/// [`BodyDeadline`] too, for the body deadline.
pub fn configure<F, I, S, B>(
    server: HttpServer<F, I, S, B>,
    config: &ServeConfig,
) -> HttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_web::dev::Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let keep_alive = if config.keep_alive_timeout.is_zero() {
        KeepAlive::Disabled
    } else {
        KeepAlive::Timeout(config.keep_alive_timeout)
    };
    server
        .client_request_timeout(config.header_read_timeout)
        .keep_alive(keep_alive)
        .client_disconnect_timeout(config.client_disconnect_timeout)
        .shutdown_timeout(config.shutdown_timeout.as_secs_f64().ceil() as u64)
        .max_connections(config.max_connections)
}

/// Middleware: a request body must have fully arrived `timeout` after the
/// request reached the app. Past it the handler's body read fails, and
/// whatever the handler answers is replaced by the 408 `request_timeout`
/// envelope with `Connection: close`. (Unlike the axum `serve`, a handler
/// that ignores the error and keeps running is not dropped: actix-web gives
/// a middleware no request to answer with before the handler returns.)
///
/// Register it before [`Harden`](crate::Harden) (`App::new().wrap(BodyDeadline::new(..)).wrap(Harden::new())`),
/// so the 408 carries the request id.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline {
    timeout: Duration,
}

impl BodyDeadline {
    /// The middleware with a body deadline of `timeout`.
    pub fn new(timeout: Duration) -> BodyDeadline {
        BodyDeadline { timeout }
    }
}

impl<S, B> Transform<S, ServiceRequest> for BodyDeadline
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = BodyDeadlineMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<BodyDeadlineMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(BodyDeadlineMiddleware {
            service,
            timeout: self.timeout,
        }))
    }
}

/// The service made by [`BodyDeadline`].
#[derive(Debug)]
pub struct BodyDeadlineMiddleware<S> {
    service: S,
    timeout: Duration,
}

impl<S, B> Service<ServiceRequest> for BodyDeadlineMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let timed_out = Rc::new(Cell::new(false));
        let payload = DeadlinePayload {
            inner: request.take_payload(),
            deadline: Box::pin(tokio::time::sleep(self.timeout)),
            timed_out: Rc::clone(&timed_out),
        };
        request.set_payload(Payload::from(
            Box::pin(payload) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
        ));
        let response = self.service.call(request);
        Box::pin(async move {
            let response = response.await?;
            if !timed_out.get() {
                return Ok(response.map_into_boxed_body());
            }
            // The handler got the payload error; whatever it answered, the
            // client gets the 408 envelope and the connection is closed.
            let (http_request, _) = response.into_parts();
            let id = http_request.extensions().get::<RequestId>().cloned();
            tracing::info!(
                event = SecurityEvent::InputValidationFail.as_str(),
                reason = "body_read_timeout",
                request_id = id.as_ref().map(RequestId::as_str),
                "request refused by the server"
            );
            let error = Error::new(ErrorKind::RequestTimeout);
            let mut response = render(&error, id.as_ref());
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            response.extensions_mut().insert(error);
            Ok(ServiceResponse::new(http_request, response))
        })
    }
}

/// The request payload with a read deadline.
struct DeadlinePayload {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Rc<Cell<bool>>,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.timed_out.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(chunk) = Pin::new(&mut this.inner).poll_next(cx) {
            return Poll::Ready(chunk);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timed_out.set(true);
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body read deadline passed",
            )))));
        }
        Poll::Pending
    }
}
