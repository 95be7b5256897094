//! Headers for errors that leave a middleware as `Err`.
//!
//! A middleware that gets `Err` from the service it wraps has no response to
//! add its headers to (the request was moved into that service). It wraps the
//! error in [`Decorated`] instead; [`Harden`](crate::Harden) looks through
//! the wrapping to classify the original error and applies the collected
//! headers when it renders the envelope.

use std::rc::Rc;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{HttpResponse, ResponseError};

/// Adds a middleware's headers to a rendered error response.
pub(crate) type Decorator = Rc<dyn Fn(&mut HeaderMap)>;

/// An error with the headers a middleware would have added to its response.
pub(crate) struct Decorated {
    pub(crate) error: actix_web::Error,
    pub(crate) decorate: Decorator,
}

impl std::fmt::Debug for Decorated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.error, f)
    }
}

impl std::fmt::Display for Decorated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for Decorated {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = self.error.error_response();
        (self.decorate)(response.headers_mut());
        response
    }
}

/// Wraps `error` so `decorate` runs on its response.
#[cfg_attr(not(feature = "headers"), allow(dead_code))]
pub(crate) fn decorated(
    error: actix_web::Error,
    decorate: impl Fn(&mut HeaderMap) + 'static,
) -> actix_web::Error {
    Decorated {
        error,
        decorate: Rc::new(decorate),
    }
    .into()
}

/// The innermost error under any [`Decorated`] layers, and their decorators
/// from the innermost out (the order the middlewares would have run in).
pub(crate) fn unwrap(error: &actix_web::Error) -> (&actix_web::Error, Vec<Decorator>) {
    let mut decorators = Vec::new();
    let mut current = error;
    while let Some(decorated) = current.as_error::<Decorated>() {
        decorators.push(Rc::clone(&decorated.decorate));
        current = &decorated.error;
    }
    decorators.reverse();
    (current, decorators)
}
