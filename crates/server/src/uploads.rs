//! `POST /uploads` and `GET /uploads/{id}`: files checked by
//! palisade-validate's [`UploadPolicy`] (PNG, JPEG, PDF, plain text, zip
//! after inspection), kept in a bounded in-memory store under a random
//! name, served back to their owner only, as attachments.
//!
//! The store is this process's memory in every mode (Redis holds no
//! files): a deployment of several instances would put the bytes in object
//! storage under the same random names.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_axum::auth::Authenticated;
use palisade_axum::validate::Id;
use palisade_axum::{ApiError, Json};
use palisade_errors::{Error, ErrorKind, SecurityEvent, SubjectHash};
use palisade_validate::{
    AcceptedUpload, ArchiveLimits, DisplayName, FileType, HexId, UploadMetadata, UploadPolicy,
    download_headers,
};
use serde::Serialize;

use crate::state::{App, Stores};

/// The bytes one user may keep stored (past it: 413 `payload_too_large`
/// with the detail `quota_exceeded`).
pub const USER_QUOTA_BYTES: u64 = 64 * 1024 * 1024;
/// The files one user may keep stored.
pub const USER_QUOTA_FILES: usize = 100;
/// The bytes all users together may keep stored (the process's memory).
pub const TOTAL_QUOTA_BYTES: u64 = 512 * 1024 * 1024;
/// Uploads read at once: each holds up to `PALISADE_MAX_UPLOAD_BYTES` in
/// memory while it is checked, so 16 bound that memory (160 MiB at the
/// default) whatever the number of connections; the next one is a 503 with
/// `Retry-After`.
pub const MAX_UPLOADS_IN_FLIGHT: usize = 16;
/// The form field that carries the file.
pub const FILE_FIELD: &str = "file";

/// The upload policy of `POST /uploads`: PNG, JPEG (`.jpg`, `.jpeg`), PDF,
/// plain text (`.txt`) and zip (inspected: at most 1,000 entries, 64 MiB
/// per entry and 256 MiB in all, counted while inflating; no nested
/// archives, no zip-slip names, no symlinks), up to `max_bytes`.
///
/// # Errors
///
/// A size the validate crate refuses (0 or over 1 GiB).
pub fn policy(max_bytes: u64) -> Result<UploadPolicy, palisade_validate::ConfigError> {
    UploadPolicy::builder()
        .max_bytes(max_bytes)
        .allow(FileType::Png)
        .allow_with_extensions(FileType::Jpeg, ["jpg", "jpeg"])
        .allow(FileType::Pdf)
        .allow(FileType::Text)
        .allow(FileType::Zip)
        .archive_limits(ArchiveLimits::default())
        .build()
}

/// One stored file.
#[derive(Clone, Debug)]
struct StoredFile {
    owner: String,
    display_name: DisplayName,
    file_type: FileType,
    bytes: Bytes,
}

#[derive(Debug, Default)]
struct Usage {
    bytes: u64,
    files: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// By the random part of the stored name (the public id).
    files: HashMap<String, StoredFile>,
    usage: HashMap<String, Usage>,
    total_bytes: u64,
}

/// Why a file was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// The user's bytes or file count.
    User,
    /// The process's total.
    Total,
}

/// The bounds of an [`UploadStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadQuotas {
    /// Bytes one user may keep stored.
    pub user_bytes: u64,
    /// Files one user may keep stored.
    pub user_files: usize,
    /// Bytes all users together may keep stored.
    pub total_bytes: u64,
    /// Uploads read and checked at once.
    pub in_flight: usize,
}

impl Default for UploadQuotas {
    fn default() -> UploadQuotas {
        UploadQuotas {
            user_bytes: USER_QUOTA_BYTES,
            user_files: USER_QUOTA_FILES,
            total_bytes: TOTAL_QUOTA_BYTES,
            in_flight: MAX_UPLOADS_IN_FLIGHT,
        }
    }
}

/// The in-memory upload store, bounded per user ([`USER_QUOTA_BYTES`],
/// [`USER_QUOTA_FILES`]), in total ([`TOTAL_QUOTA_BYTES`]) and in uploads
/// being read at once ([`MAX_UPLOADS_IN_FLIGHT`]).
#[derive(Debug, Default)]
pub struct UploadStore {
    inner: Mutex<Inner>,
    quotas: UploadQuotas,
    in_flight: AtomicUsize,
}

/// A slot of [`UploadStore::begin`], given back on drop.
#[derive(Debug)]
pub struct UploadSlot<'s>(&'s AtomicUsize);

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl UploadStore {
    /// An empty store with the default quotas.
    pub fn new() -> UploadStore {
        UploadStore::default()
    }

    /// An empty store with `quotas`.
    pub fn with_quotas(quotas: UploadQuotas) -> UploadStore {
        UploadStore {
            quotas,
            ..UploadStore::default()
        }
    }

    /// A slot to read one upload in, or `None` when
    /// [`UploadQuotas::in_flight`] uploads are already being read.
    pub fn begin(&self) -> Option<UploadSlot<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = UploadSlot(&self.in_flight);
        (before < self.quotas.in_flight).then_some(slot)
    }

    /// Stores `bytes` for `owner` under the accepted upload's random name;
    /// returns the public id (the name's 32 hex characters).
    ///
    /// # Errors
    ///
    /// A quota that the file would exceed (nothing is stored).
    pub fn put(
        &self,
        owner: &str,
        accepted: &AcceptedUpload,
        bytes: Bytes,
    ) -> Result<String, QuotaExceeded> {
        let size = bytes.len() as u64;
        let stored_name = accepted.stored_name().as_str();
        let id = stored_name
            .split_once('.')
            .map_or(stored_name, |(random, _)| random)
            .to_owned();
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *guard;
        if inner.total_bytes.saturating_add(size) > self.quotas.total_bytes {
            return Err(QuotaExceeded::Total);
        }
        let (files, used) = inner
            .usage
            .get(owner)
            .map_or((0, 0), |usage| (usage.files, usage.bytes));
        if files >= self.quotas.user_files || used.saturating_add(size) > self.quotas.user_bytes {
            return Err(QuotaExceeded::User);
        }
        let usage = inner.usage.entry(owner.to_owned()).or_default();
        usage.files += 1;
        usage.bytes += size;
        inner.total_bytes += size;
        inner.files.insert(
            id.clone(),
            StoredFile {
                owner: owner.to_owned(),
                display_name: accepted.display_name().clone(),
                file_type: accepted.file_type(),
                bytes,
            },
        );
        Ok(id)
    }

    /// The file `id` if `owner` stored it (another user's id is `None`, as
    /// an unknown one is).
    fn get(&self, owner: &str, id: &str) -> Option<StoredFile> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .files
            .get(id)
            .filter(|file| file.owner == owner)
            .cloned()
    }

    /// Files stored, all users.
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.files.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The answer to an accepted upload.
#[derive(Debug, Serialize)]
pub struct UploadView {
    /// The id to fetch it with (random; not derived from the file name).
    pub id: String,
    /// The client's file name, sanitised for display.
    pub filename: String,
    /// The type detected from the bytes (the one it is served as).
    pub content_type: &'static str,
    /// Bytes.
    pub size: u64,
}

fn form_error(code: &'static str) -> ApiError {
    tracing::warn!(
        event = SecurityEvent::InputValidationFail.as_str(),
        reason = code,
        field = FILE_FIELD,
        "upload form refused"
    );
    ApiError(
        Error::new(ErrorKind::ValidationFailed)
            .with_detail(FILE_FIELD, code)
            .logged(),
    )
}

/// A multipart body that could not be read: over the route's cap 413
/// (the limits layer answers it itself when the stream trips the cap),
/// otherwise malformed, 400.
fn multipart_error(error: &MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError(palisade_validate::limits::body_too_large().into());
    }
    tracing::info!(
        event = SecurityEvent::InputValidationFail.as_str(),
        reason = "malformed_multipart",
        field = FILE_FIELD,
        "upload form unreadable"
    );
    ApiError(Error::new(ErrorKind::BadRequest).logged())
}

/// The one `file` part of the form: its name, declared type and bytes.
/// Any other part, or a second file, is a 422.
async fn read_form(mut form: Multipart) -> Result<(UploadMetadata, Bytes), ApiError> {
    let mut found = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|error| multipart_error(&error))?
    {
        if field.name() != Some(FILE_FIELD) {
            return Err(form_error("unexpected_field"));
        }
        if found.is_some() {
            return Err(form_error("one_file_only"));
        }
        let mut metadata = UploadMetadata::new(field.file_name().unwrap_or_default());
        if let Some(declared) = field.content_type() {
            metadata = metadata.with_content_type(declared);
        }
        let bytes = field
            .bytes()
            .await
            .map_err(|error| multipart_error(&error))?;
        found = Some((metadata, bytes));
    }
    found.ok_or_else(|| form_error("missing"))
}

/// `POST /uploads` (Bearer): a `multipart/form-data` body with one `file`
/// part. 201 `{id, filename, content_type, size}`; refusals are the
/// upload policy's (413 too large, 415 a type not accepted, 422 content
/// that contradicts its name, scriptable markup or a bad archive) and 413
/// `quota_exceeded` when the user's (or the process's) quota is full.
pub async fn upload<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let form = form.map_err(|_| {
        // Not multipart/form-data with a boundary.
        tracing::info!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason = "not_multipart",
            field = FILE_FIELD,
            "upload refused: not a multipart form"
        );
        ApiError(Error::new(ErrorKind::UnsupportedMediaType).logged())
    })?;
    // Held while the form is read and checked: the memory of the uploads in
    // flight stays bounded however many connections send one.
    let _slot = app.uploads.begin().ok_or_else(|| {
        tracing::warn!(
            reason = "uploads_in_flight",
            limit = MAX_UPLOADS_IN_FLIGHT,
            "upload refused: too many uploads in flight"
        );
        ApiError(Error::new(ErrorKind::Unavailable).with_retry_after(1))
    })?;
    let (metadata, bytes) = read_form(form).await?;
    let accepted = app
        .upload_policy
        .check(&metadata, &bytes)
        .map_err(|error| ApiError(error.into()))?;
    let owner = &who.claims.sub;
    let id = app.uploads.put(owner, &accepted, bytes).map_err(|which| {
        tracing::warn!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason = "upload_quota",
            quota = match which {
                QuotaExceeded::User => "user",
                QuotaExceeded::Total => "total",
            },
            field = FILE_FIELD,
            subject_hash = %SubjectHash::of(owner),
            "upload refused: quota exceeded"
        );
        ApiError(
            Error::new(ErrorKind::PayloadTooLarge)
                .with_detail(FILE_FIELD, "quota_exceeded")
                .logged(),
        )
    })?;
    tracing::info!(
        subject_hash = %SubjectHash::of(owner),
        file_type = accepted.file_type().mime(),
        size = accepted.size(),
        "upload stored"
    );
    let view = UploadView {
        id,
        filename: accepted.display_name().as_str().to_owned(),
        content_type: accepted.file_type().mime(),
        size: accepted.size(),
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /uploads/{id}` (Bearer): the file, to its owner only (another
/// user's id is a 404, as an unknown one), as an attachment with the
/// validate crate's [`download_headers`] (detected type, `nosniff`,
/// `Content-Disposition: attachment` with `filename*`, a `sandbox` CSP).
pub async fn download<St: Stores>(
    State(app): State<Arc<App<St>>>,
    who: Authenticated,
    Id(id): Id<HexId<32>>,
) -> Result<Response, ApiError> {
    let file = app
        .uploads
        .get(&who.claims.sub, id.as_str())
        .ok_or_else(|| ApiError(Error::new(ErrorKind::NotFound)))?;
    let mut response = file.bytes.into_response();
    let headers = response.headers_mut();
    headers.extend(download_headers(&file.display_name, file.file_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn accepted(text: &[u8]) -> AcceptedUpload {
        policy(1024)
            .unwrap()
            .check(&UploadMetadata::new("notes.txt"), text)
            .unwrap()
    }

    fn store(
        bytes: &UploadStore,
        owner: &str,
        text: &'static [u8],
    ) -> Result<String, QuotaExceeded> {
        bytes.put(owner, &accepted(text), Bytes::from_static(text))
    }

    #[test]
    fn quotas_bound_each_user_and_the_process() {
        // Attack: memory exhaustion by storing files until the process dies.
        let uploads = UploadStore::with_quotas(UploadQuotas {
            user_bytes: 10,
            user_files: 2,
            total_bytes: 15,
            in_flight: 1,
        });
        let id = store(&uploads, "alice", b"hello").unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(
            store(&uploads, "alice", b"world!"),
            Err(QuotaExceeded::User)
        );
        store(&uploads, "alice", b"world").unwrap();
        assert_eq!(store(&uploads, "alice", b"x"), Err(QuotaExceeded::User));
        store(&uploads, "bob", b"12345").unwrap();
        assert_eq!(store(&uploads, "carol", b"z"), Err(QuotaExceeded::Total));
        assert_eq!(uploads.len(), 3);
        // Owner only: another user's id is not there.
        assert!(uploads.get("alice", &id).is_some());
        assert!(uploads.get("bob", &id).is_none());
    }

    #[test]
    fn uploads_in_flight_are_bounded() {
        // Attack: thousands of connections each holding a large body in memory.
        let uploads = UploadStore::with_quotas(UploadQuotas {
            in_flight: 2,
            ..UploadQuotas::default()
        });
        let first = uploads.begin().unwrap();
        let second = uploads.begin().unwrap();
        assert!(uploads.begin().is_none());
        assert!(uploads.begin().is_none());
        drop(first);
        let third = uploads.begin().unwrap();
        assert!(uploads.begin().is_none());
        drop((second, third));
        assert!(uploads.begin().is_some());
    }
}
