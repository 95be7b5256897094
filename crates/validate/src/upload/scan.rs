//! The malware-scanner hook: a ClamAV daemon, a cloud scanning API, or
//! nothing.

use std::borrow::Cow;
use std::future::Future;

/// Scans an upload's bytes for malware. Called by
/// [`UploadPolicy::check_scanned`](super::UploadPolicy::check_scanned) after
/// every other check passed, so the scanner only sees files that are what
/// they claim to be.
///
/// An [`Infected`](ScanVerdict::Infected) verdict refuses the upload (422);
/// an `Err` refuses it too (503 `unavailable`): a scanner that cannot answer
/// fails closed, never waving a file through.
///
/// ```
/// use palisade_validate::{ScanError, ScanVerdict, UploadScanner};
///
/// /// Refuses the EICAR test string, as every antivirus does.
/// struct Eicar;
///
/// impl UploadScanner for Eicar {
///     async fn scan(&self, bytes: &[u8]) -> Result<ScanVerdict, ScanError> {
///         let eicar: &[u8] = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE";
///         Ok(if bytes.windows(eicar.len()).any(|w| w == eicar) {
///             ScanVerdict::infected("Eicar-Test-Signature")
///         } else {
///             ScanVerdict::Clean
///         })
///     }
/// }
/// ```
///
/// A ClamAV implementation sends the bytes to `clamd` with `INSTREAM` over
/// its socket and maps `stream: OK` to `Clean`, `stream: <name> FOUND` to
/// `Infected`, and anything else (a timeout, a refused connection, `size
/// limit exceeded`) to an `Err`.
pub trait UploadScanner {
    /// The verdict on `bytes`, or why there is none.
    fn scan(&self, bytes: &[u8]) -> impl Future<Output = Result<ScanVerdict, ScanError>> + Send;
}

/// A scanner's answer. Non-exhaustive: a future verdict (say, "suspicious")
/// must not be taken for clean by a `match` written today.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanVerdict {
    /// Nothing found.
    Clean,
    /// Malware found; the signature's name is for the operator's log.
    Infected {
        /// The scanner's name for what it found (e.g. `Win.Test.EICAR_HDB-1`).
        signature: Cow<'static, str>,
    },
}

impl ScanVerdict {
    /// An infected verdict naming `signature`.
    pub fn infected(signature: impl Into<Cow<'static, str>>) -> ScanVerdict {
        ScanVerdict::Infected {
            signature: signature.into(),
        }
    }
}

/// The scanner could not give a verdict (down, timed out, over its own size
/// limit). The upload is refused with a 503.
#[derive(Debug)]
pub struct ScanError {
    detail: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ScanError {
    /// A failure described by `detail` (an operation, never file content).
    pub fn new(detail: impl Into<Cow<'static, str>>) -> ScanError {
        ScanError {
            detail: detail.into(),
            source: None,
        }
    }

    /// Attaches the underlying error (an I/O error talking to `clamd`).
    #[must_use]
    pub fn with_source<E>(mut self, source: E) -> ScanError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.source = Some(Box::new(source));
        self
    }
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upload scanner failed: {}", self.detail)
    }
}

impl std::error::Error for ScanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The default scanner: finds nothing. Use it where uploads are not
/// scanned, so the code path is the same once a scanner is configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoScanner;

impl UploadScanner for NoScanner {
    async fn scan(&self, _bytes: &[u8]) -> Result<ScanVerdict, ScanError> {
        Ok(ScanVerdict::Clean)
    }
}
