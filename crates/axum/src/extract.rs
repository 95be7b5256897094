//! Extractors whose rejections are envelope errors with the statuses the
//! Palisade design prescribes.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::IntoResponse;
use http::request::Parts;
use palisade_errors::{Error, ErrorKind};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body. Malformed JSON → 400 `bad_request`, well-formed JSON of the
/// wrong shape or types → 422 `validation_failed`, a missing or wrong
/// `Content-Type` → 415, a body over the limit → 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// A typed path. A segment that does not parse (`/items/abc` for a numeric id)
/// is 404 `not_found`: an id that cannot exist is not found, and answering 400
/// would let a prober tell well-formed ids from the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

/// A typed query string. A value that does not fit its type is 422
/// `validation_failed`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

/// Maps an axum rejection by its status and keeps it as the (logged) source.
fn rejected<R>(kind: ErrorKind, rejection: R) -> ApiError
where
    R: std::error::Error + Send + Sync + 'static,
{
    // A refusal no core made: the adapter's event (the source, which can
    // quote the input, stays at `debug` in `ApiError`'s log line).
    tracing::info!(
        event = palisade_errors::SecurityEvent::InputValidationFail.as_str(),
        reason = kind.code(),
        "request refused by an extractor"
    );
    ApiError(Error::new(kind).with_source(rejection))
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => {
                // axum already distinguishes syntax (400), data (422), content
                // type (415) and length (413) errors by status.
                let status = rejection.status();
                let kind = ErrorKind::from_status(status).unwrap_or(ErrorKind::BadRequest);
                Err(rejected(kind, rejection))
            }
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| rejected(ErrorKind::NotFound, rejection))
    }
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| rejected(ErrorKind::ValidationFailed, rejection))
    }
}
