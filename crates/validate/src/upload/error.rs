//! Why an upload was refused.

use palisade_errors::ErrorKind;

use super::{ArchiveError, ArchiveErrorKind, ScanError};

/// Why [`UploadPolicy`](super::UploadPolicy) refused an upload. The detail is
/// the kind; never the file's name or content.
///
/// Into the envelope, each with the detail `{"field": "file", "code":
/// <reason>}`:
///
/// | kind | status |
/// |---|---|
/// | [`TooLarge`](UploadErrorKind::TooLarge) | 413 `payload_too_large` |
/// | [`TypeNotAllowed`](UploadErrorKind::TypeNotAllowed): an extension the policy does not accept | 415 `unsupported_media_type` |
/// | [`Empty`](UploadErrorKind::Empty), [`TypeMismatch`](UploadErrorKind::TypeMismatch), [`ContentTypeMismatch`](UploadErrorKind::ContentTypeMismatch), [`ScriptableContent`](UploadErrorKind::ScriptableContent), [`Archive`](UploadErrorKind::Archive), [`Infected`](UploadErrorKind::Infected): content that contradicts its name or is dangerous | 422 `validation_failed` |
/// | [`ScannerUnavailable`](UploadErrorKind::ScannerUnavailable), [`RandomUnavailable`](UploadErrorKind::RandomUnavailable): fail closed | 503 `unavailable` |
///
/// 415 means "we do not take this kind of file" (the client can pick
/// another); 422 means "this file is not what it says, or is dangerous"
/// (no other name would help).
#[derive(Debug)]
pub struct UploadError {
    kind: UploadErrorKind,
    source: Option<Source>,
}

#[derive(Debug)]
enum Source {
    Archive(ArchiveError),
    Scan(ScanError),
    Random(RandomFailure),
}

/// The system random source's error, as a `std` error (getrandom's own
/// implements it only with its `std` feature).
#[derive(Debug)]
struct RandomFailure(getrandom::Error);

impl std::fmt::Display for RandomFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "system random source failed: {}", self.0)
    }
}

impl std::error::Error for RandomFailure {}

/// The class of an [`UploadError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UploadErrorKind {
    /// Bigger than the policy's size cap (413).
    TooLarge,
    /// No bytes at all (422).
    Empty,
    /// The file name's extension is missing or not one the policy accepts
    /// (415).
    TypeNotAllowed,
    /// The bytes are not the type the extension names: a PNG renamed `.pdf`
    /// (422).
    TypeMismatch,
    /// The declared `Content-Type` contradicts the file's type (422).
    ContentTypeMismatch,
    /// The bytes are SVG or HTML (markup a browser would run script from)
    /// and the policy does not accept that type (422).
    ScriptableContent,
    /// The zip failed inspection (422); the archive kind says why.
    Archive(ArchiveErrorKind),
    /// The scanner found malware (422).
    Infected,
    /// The scanner could not answer (503, fail closed).
    ScannerUnavailable,
    /// The system's random source failed, so no stored name could be made
    /// (503).
    RandomUnavailable,
}

impl UploadErrorKind {
    /// A stable snake_case name (the `reason` of the event and the `code`
    /// of the envelope's detail).
    pub const fn as_str(self) -> &'static str {
        match self {
            UploadErrorKind::TooLarge => "too_large",
            UploadErrorKind::Empty => "empty",
            UploadErrorKind::TypeNotAllowed => "type_not_allowed",
            UploadErrorKind::TypeMismatch => "type_mismatch",
            UploadErrorKind::ContentTypeMismatch => "content_type_mismatch",
            UploadErrorKind::ScriptableContent => "scriptable_content",
            UploadErrorKind::Archive(kind) => kind.as_str(),
            UploadErrorKind::Infected => "malware_found",
            UploadErrorKind::ScannerUnavailable => "scanner_unavailable",
            UploadErrorKind::RandomUnavailable => "random_unavailable",
        }
    }

    /// The envelope kind (and so the status) of this refusal.
    pub const fn error_kind(self) -> ErrorKind {
        match self {
            UploadErrorKind::TooLarge => ErrorKind::PayloadTooLarge,
            UploadErrorKind::TypeNotAllowed => ErrorKind::UnsupportedMediaType,
            UploadErrorKind::Empty
            | UploadErrorKind::TypeMismatch
            | UploadErrorKind::ContentTypeMismatch
            | UploadErrorKind::ScriptableContent
            | UploadErrorKind::Archive(_)
            | UploadErrorKind::Infected => ErrorKind::ValidationFailed,
            UploadErrorKind::ScannerUnavailable | UploadErrorKind::RandomUnavailable => {
                ErrorKind::Unavailable
            }
        }
    }
}

impl UploadError {
    pub(crate) fn new(kind: UploadErrorKind) -> UploadError {
        UploadError { kind, source: None }
    }

    pub(crate) fn archive(error: ArchiveError) -> UploadError {
        UploadError {
            kind: UploadErrorKind::Archive(error.kind()),
            source: Some(Source::Archive(error)),
        }
    }

    pub(crate) fn scanner(error: ScanError) -> UploadError {
        UploadError {
            kind: UploadErrorKind::ScannerUnavailable,
            source: Some(Source::Scan(error)),
        }
    }

    pub(crate) fn random(error: getrandom::Error) -> UploadError {
        UploadError {
            kind: UploadErrorKind::RandomUnavailable,
            source: Some(Source::Random(RandomFailure(error))),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> UploadErrorKind {
        self.kind
    }

    /// The archive inspection's error, for an [`Archive`](UploadErrorKind::Archive) refusal.
    pub fn archive_error(&self) -> Option<&ArchiveError> {
        match &self.source {
            Some(Source::Archive(error)) => Some(error),
            _ => None,
        }
    }
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upload refused: {}", self.kind.as_str())
    }
}

impl std::error::Error for UploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.source {
            Some(Source::Archive(error)) => Some(error),
            Some(Source::Scan(error)) => Some(error),
            Some(Source::Random(error)) => Some(error),
            None => None,
        }
    }
}

/// A refusal becomes its status (see [`UploadError`]) with the detail
/// `{"field": "file", "code": <reason>}`; its event was already logged.
impl From<UploadError> for palisade_errors::Error {
    fn from(error: UploadError) -> palisade_errors::Error {
        let kind = error.kind.error_kind();
        let mut envelope = palisade_errors::Error::new(kind);
        if kind == ErrorKind::Unavailable {
            envelope = envelope.with_retry_after(1);
        } else {
            envelope = envelope.with_detail("file", error.kind.as_str());
        }
        envelope.logged().with_source(error)
    }
}
