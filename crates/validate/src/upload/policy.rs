//! The upload policy: what may be uploaded, and the one check that decides.

use serde::Deserialize;

use palisade_errors::SecurityEvent;

use super::{
    ArchiveLimits, ArchiveSummary, DisplayName, FileType, MAX_DISPLAY_NAME_BYTES, ScanVerdict,
    UploadError, UploadErrorKind, UploadScanner, download_headers, inspect_zip,
};
use crate::{ConfigError, ConfigErrorKind};

/// The default size cap: 10 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;

/// The largest size cap a policy accepts: 1 GiB. The check works on bytes
/// in memory; bigger files belong in a streaming pipeline.
pub const MAX_UPLOAD_BYTES: u64 = 1024 * 1024 * 1024;

/// What the client said about the file: its name and, optionally, the
/// `Content-Type` of its multipart part. Both are untrusted; neither is used
/// to store or serve the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct UploadMetadata {
    /// The client's file name (`filename` of the multipart part).
    pub filename: String,
    /// The part's declared `Content-Type`, if any.
    pub content_type: Option<String>,
}

impl UploadMetadata {
    /// Metadata with a file name and no declared type.
    pub fn new(filename: impl Into<String>) -> UploadMetadata {
        UploadMetadata {
            filename: filename.into(),
            content_type: None,
        }
    }

    /// Adds the declared `Content-Type`.
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> UploadMetadata {
        self.content_type = Some(content_type.into());
        self
    }
}

/// The random name a file is stored under: 32 lowercase hex characters
/// (128 bits from the operating system's CSPRNG) and the type's canonical
/// extension. Never derived from the client's name, so no client can
/// choose, guess or collide with a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredName(String);

impl StoredName {
    /// A fresh name for a file of `file_type`.
    pub fn generate(file_type: FileType) -> Result<StoredName, getrandom::Error> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)?;
        let mut name = String::with_capacity(40);
        for byte in random {
            name.push(hex_digit(byte >> 4));
            name.push(hex_digit(byte & 0x0F));
        }
        name.push('.');
        name.push_str(file_type.canonical_extension());
        Ok(StoredName(name))
    }

    /// Parses a stored name (from a URL path or a database row): exactly 32
    /// lowercase hex characters, a dot and a canonical extension. Anything
    /// else (`../x`, a client's name) is `None`.
    pub fn parse(candidate: &str) -> Option<StoredName> {
        let (random, extension) = candidate.split_once('.')?;
        let ok = random.len() == 32
            && random
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && FileType::ALL
                .iter()
                .any(|t| t.canonical_extension() == extension);
        ok.then(|| StoredName(candidate.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StoredName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0F)])
}

/// One accepted type: the extensions a client's name may carry for it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowedType {
    file_type: FileType,
    extensions: Vec<String>,
}

/// What uploads a route accepts. Build it with [`UploadPolicy::builder`],
/// a preset ([`images`](Self::images), [`documents`](Self::documents)), or
/// deserialize it:
///
/// ```
/// use palisade_validate::{FileType, UploadPolicy};
///
/// let policy: UploadPolicy = serde_json::from_str(r#"{
///     "max_bytes": 5242880,
///     "allow": ["png", {"type": "jpeg", "extensions": ["jpg", "jpeg", "jfif"]}, "zip"],
///     "archive": {"max_entries": 100}
/// }"#)?;
/// assert_eq!(policy.max_bytes(), 5 * 1024 * 1024);
/// assert!(policy.allows(FileType::Zip));
/// assert_eq!(policy.archive_limits().max_entries, 100);
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// [`check`](Self::check) decides, in this order:
///
/// 1. size: over [`max_bytes`](Self::max_bytes) → 413; empty → 422;
/// 2. the extension of the client's (sanitised) file name must be one the
///    policy accepts → else 415;
/// 3. the bytes are sniffed for markup a browser would run (SVG, HTML,
///    XML), whatever the name says → 422 unless the name's type is that
///    very markup type and the policy allows it;
/// 4. the type detected from the bytes (magic bytes, via `infer`) must be
///    the extension's type: a PNG renamed `.pdf` → 422;
/// 5. a declared `Content-Type` may be absent or `application/octet-stream`
///    (what browsers send when they do not know); otherwise it must name
///    the same type (aliases such as `image/jpg` accepted) → else 422. It
///    is never trusted: the type served later is the detected one;
/// 6. a zip is inspected ([`inspect_zip`]) → 422 on any refusal;
/// 7. a random stored name is drawn → 503 if the OS random source fails.
///
/// Every refusal is logged once as an `input_validation_fail` event with a
/// `reason` (the [`UploadErrorKind::as_str`]) and `field = "file"`; never
/// the file's name or content.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "UploadPolicyConfig")]
pub struct UploadPolicy {
    max_bytes: u64,
    allowed: Vec<AllowedType>,
    archive: ArchiveLimits,
    max_display_name_bytes: usize,
}

impl UploadPolicy {
    /// A builder with the default size cap, archive limits and display-name
    /// cap, and no type allowed yet.
    pub fn builder() -> UploadPolicyBuilder {
        UploadPolicyBuilder {
            max_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            allowed: Vec::new(),
            archive: ArchiveLimits::default(),
            max_display_name_bytes: MAX_DISPLAY_NAME_BYTES,
        }
    }

    /// PNG, JPEG, GIF and WebP up to 10 MiB (no SVG: it can hold script).
    pub fn images() -> UploadPolicy {
        UploadPolicy::preset(&[FileType::Png, FileType::Jpeg, FileType::Gif, FileType::Webp])
    }

    /// PDF and plain text up to 10 MiB.
    pub fn documents() -> UploadPolicy {
        UploadPolicy::preset(&[FileType::Pdf, FileType::Text])
    }

    /// A policy of fixed, valid parts (distinct non-scriptable types with
    /// their default extensions), so no check can fail.
    fn preset(types: &[FileType]) -> UploadPolicy {
        UploadPolicy {
            max_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            allowed: types
                .iter()
                .map(|&file_type| AllowedType {
                    file_type,
                    extensions: default_extensions(file_type),
                })
                .collect(),
            archive: ArchiveLimits::default(),
            max_display_name_bytes: MAX_DISPLAY_NAME_BYTES,
        }
    }

    /// The size cap in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The caps zips are inspected against.
    pub fn archive_limits(&self) -> &ArchiveLimits {
        &self.archive
    }

    /// Whether the policy accepts `file_type`.
    pub fn allows(&self, file_type: FileType) -> bool {
        self.allowed.iter().any(|a| a.file_type == file_type)
    }

    /// The accepted type a (lowercase) extension names.
    fn by_extension(&self, extension: &str) -> Option<FileType> {
        self.allowed
            .iter()
            .find(|a| a.extensions.iter().any(|e| e == extension))
            .map(|a| a.file_type)
    }

    /// Checks an upload (see the [type's documentation](Self) for the
    /// steps), logging a refusal.
    ///
    /// ```
    /// use palisade_validate::{FileType, UploadErrorKind, UploadMetadata, UploadPolicy};
    ///
    /// let policy = UploadPolicy::images();
    /// let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    ///
    /// let accepted = policy.check(&UploadMetadata::new("../../cat.PNG"), png)?;
    /// assert_eq!(accepted.file_type(), FileType::Png);
    /// assert_eq!(accepted.display_name().as_str(), "_._cat.PNG");
    /// assert!(accepted.stored_name().as_str().ends_with(".png"));
    ///
    /// // The same bytes under another name: refused, 422.
    /// let refused = policy.check(&UploadMetadata::new("cat.gif"), png).unwrap_err();
    /// assert_eq!(refused.kind(), UploadErrorKind::TypeMismatch);
    /// # Ok::<(), palisade_validate::UploadError>(())
    /// ```
    pub fn check(
        &self,
        metadata: &UploadMetadata,
        bytes: &[u8],
    ) -> Result<AcceptedUpload, UploadError> {
        self.decide(metadata, bytes).inspect_err(log_refusal)
    }

    /// [`check`](Self::check), then `scanner`: an infected verdict refuses
    /// the upload (422), a scanner error refuses it too (503, fail closed).
    pub async fn check_scanned<S: UploadScanner>(
        &self,
        metadata: &UploadMetadata,
        bytes: &[u8],
        scanner: &S,
    ) -> Result<AcceptedUpload, UploadError> {
        let accepted = self.check(metadata, bytes)?;
        match scanner.scan(bytes).await {
            Ok(ScanVerdict::Clean) => Ok(accepted),
            Ok(ScanVerdict::Infected { signature }) => {
                tracing::warn!(
                    event = SecurityEvent::InputValidationFail.as_str(),
                    reason = UploadErrorKind::Infected.as_str(),
                    field = "file",
                    signature = %signature,
                    "upload refused"
                );
                Err(UploadError::new(UploadErrorKind::Infected))
            }
            Err(error) => {
                let error = UploadError::scanner(error);
                log_refusal(&error);
                Err(error)
            }
        }
    }

    fn decide(
        &self,
        metadata: &UploadMetadata,
        bytes: &[u8],
    ) -> Result<AcceptedUpload, UploadError> {
        use UploadErrorKind as K;
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(UploadError::new(K::TooLarge));
        }
        if bytes.is_empty() {
            return Err(UploadError::new(K::Empty));
        }
        let display_name =
            DisplayName::sanitize_with_cap(&metadata.filename, self.max_display_name_bytes);
        let file_type = display_name
            .extension()
            .and_then(|extension| self.by_extension(&extension))
            .ok_or(UploadError::new(K::TypeNotAllowed))?;
        if let Some(markup) = super::sniff_markup(bytes)
            && markup != file_type
        {
            // A page or SVG wearing another name: dangerous unless the
            // policy takes that markup (then it is only a wrong name).
            let kind = if self.allows(markup) {
                K::TypeMismatch
            } else {
                K::ScriptableContent
            };
            return Err(UploadError::new(kind));
        }
        if FileType::detect(bytes) != Some(file_type) {
            return Err(UploadError::new(K::TypeMismatch));
        }
        if let Some(declared) = &metadata.content_type
            && !declared_type_agrees(declared, file_type)
        {
            return Err(UploadError::new(K::ContentTypeMismatch));
        }
        let archive = if file_type == FileType::Zip {
            Some(inspect_zip(bytes, &self.archive).map_err(UploadError::archive)?)
        } else {
            None
        };
        let stored_name = StoredName::generate(file_type).map_err(UploadError::random)?;
        Ok(AcceptedUpload {
            file_type,
            stored_name,
            display_name,
            size,
            archive,
        })
    }
}

/// Whether a declared `Content-Type` is compatible with `file_type`: absent
/// parameters aside, one of its aliases, or the generic
/// `application/octet-stream`.
fn declared_type_agrees(declared: &str, file_type: FileType) -> bool {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence == "application/octet-stream"
        || file_type.declared_aliases().contains(&essence.as_str())
}

fn log_refusal(error: &UploadError) {
    let reason = error.kind().as_str();
    let event = SecurityEvent::InputValidationFail.as_str();
    if error.kind().error_kind() == palisade_errors::ErrorKind::Unavailable {
        tracing::error!(event, reason, field = "file", "upload refused: fail closed");
    } else {
        tracing::warn!(event, reason, field = "file", "upload refused");
    }
}

fn default_extensions(file_type: FileType) -> Vec<String> {
    file_type
        .default_extensions()
        .iter()
        .map(|&e| e.to_owned())
        .collect()
}

/// An upload that passed the policy.
#[derive(Clone, Debug)]
pub struct AcceptedUpload {
    file_type: FileType,
    stored_name: StoredName,
    display_name: DisplayName,
    size: u64,
    archive: Option<ArchiveSummary>,
}

impl AcceptedUpload {
    /// The type detected from the bytes (and agreed by the extension).
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// The random name to store the file under.
    pub fn stored_name(&self) -> &StoredName {
        &self.stored_name
    }

    /// The client's name, sanitised, for display and download.
    pub fn display_name(&self) -> &DisplayName {
        &self.display_name
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// What the zip holds, for a zip.
    pub fn archive(&self) -> Option<&ArchiveSummary> {
        self.archive.as_ref()
    }

    /// Whether the file is markup a browser could run script from (an SVG
    /// or HTML the policy explicitly allowed): serve it only with
    /// [`download_headers`] (its `sandbox` CSP), from another origin if you
    /// can, and never inline.
    pub fn requires_sandbox(&self) -> bool {
        self.file_type.is_scriptable()
    }

    /// The headers to serve this file with ([`download_headers`]).
    pub fn download_headers(&self) -> http::HeaderMap {
        download_headers(&self.display_name, self.file_type)
    }
}

/// Builds an [`UploadPolicy`].
#[derive(Clone, Debug)]
pub struct UploadPolicyBuilder {
    max_bytes: u64,
    allowed: Vec<(FileType, Vec<String>, bool)>,
    archive: ArchiveLimits,
    max_display_name_bytes: usize,
}

impl UploadPolicyBuilder {
    /// The size cap in bytes (1 to [`MAX_UPLOAD_BYTES`]).
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: u64) -> UploadPolicyBuilder {
        self.max_bytes = max_bytes;
        self
    }

    /// Accepts `file_type` under its default extensions. SVG and HTML are
    /// refused here (see [`allow_scriptable_dangerously`](Self::allow_scriptable_dangerously)).
    #[must_use]
    pub fn allow(self, file_type: FileType) -> UploadPolicyBuilder {
        self.allow_with_extensions(file_type, file_type.default_extensions().iter().copied())
    }

    /// Accepts `file_type` under these extensions (no dot, any case). An
    /// extension that is another type's (`png` for a PDF) is a
    /// configuration error.
    #[must_use]
    pub fn allow_with_extensions<'e>(
        mut self,
        file_type: FileType,
        extensions: impl IntoIterator<Item = &'e str>,
    ) -> UploadPolicyBuilder {
        let extensions = extensions
            .into_iter()
            .map(str::to_ascii_lowercase)
            .collect();
        self.allowed.push((file_type, extensions, false));
        self
    }

    /// Accepts SVG or HTML, which can run script in your origin when a
    /// browser renders them. Serve them only with [`download_headers`]
    /// (attachment, `nosniff`, `sandbox` CSP), ideally from a separate
    /// origin; [`AcceptedUpload::requires_sandbox`] flags them.
    #[must_use]
    pub fn allow_scriptable_dangerously(mut self, file_type: FileType) -> UploadPolicyBuilder {
        self.allowed
            .push((file_type, default_extensions(file_type), true));
        self
    }

    /// The caps zips are inspected against.
    #[must_use]
    pub fn archive_limits(mut self, limits: ArchiveLimits) -> UploadPolicyBuilder {
        self.archive = limits;
        self
    }

    /// The byte cap of display names (default [`MAX_DISPLAY_NAME_BYTES`]).
    #[must_use]
    pub fn max_display_name_bytes(mut self, max: usize) -> UploadPolicyBuilder {
        self.max_display_name_bytes = max;
        self
    }

    /// The policy, or the setting that cannot work.
    pub fn build(self) -> Result<UploadPolicy, ConfigError> {
        let limit = |detail| ConfigError::new(ConfigErrorKind::InvalidLimit, detail);
        let policy = |detail| ConfigError::new(ConfigErrorKind::InvalidUploadPolicy, detail);
        if self.max_bytes == 0 || self.max_bytes > MAX_UPLOAD_BYTES {
            return Err(limit("upload max_bytes must be between 1 and 1 GiB"));
        }
        let archive = &self.archive;
        if archive.max_entries == 0 || archive.max_entry_bytes == 0 || archive.max_total_bytes == 0
        {
            return Err(limit(
                "upload archive limits (max_entries, max_entry_bytes, max_total_bytes) must be at least 1",
            ));
        }
        if self.allowed.is_empty() {
            return Err(policy("upload policy allows no file type"));
        }
        let mut allowed: Vec<AllowedType> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (file_type, extensions, scriptable_ok) in self.allowed {
            if file_type.is_scriptable() && !scriptable_ok {
                return Err(policy(
                    "upload policy: svg and html can carry script; accept them with allow_scriptable_dangerously",
                ));
            }
            if extensions.is_empty() {
                return Err(policy("upload policy: an allowed type has no extension"));
            }
            for extension in &extensions {
                if extension.is_empty()
                    || extension.len() > 10
                    || !extension.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(policy(
                        "upload policy: an extension must be 1 to 10 ASCII letters or digits, without the dot",
                    ));
                }
                if FileType::from_extension(extension).is_some_and(|t| t != file_type) {
                    return Err(policy(
                        "upload policy: an extension belongs to another file type than the one it is allowed for",
                    ));
                }
                if !seen.insert(extension.clone()) {
                    return Err(policy("upload policy: an extension is allowed twice"));
                }
            }
            allowed.push(AllowedType {
                file_type,
                extensions,
            });
        }
        Ok(UploadPolicy {
            max_bytes: self.max_bytes,
            allowed,
            archive: self.archive,
            max_display_name_bytes: self.max_display_name_bytes,
        })
    }
}

/// The serialized form of a policy.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadPolicyConfig {
    #[serde(default = "default_max_bytes")]
    max_bytes: u64,
    #[serde(default)]
    allow: Vec<AllowedTypeConfig>,
    #[serde(default)]
    allow_scriptable_dangerously: Vec<FileType>,
    #[serde(default)]
    archive: ArchiveLimits,
    #[serde(default = "default_display_name_bytes")]
    max_display_name_bytes: usize,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AllowedTypeConfig {
    Default(FileType),
    WithExtensions {
        #[serde(rename = "type")]
        file_type: FileType,
        extensions: Vec<String>,
    },
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_UPLOAD_BYTES
}

fn default_display_name_bytes() -> usize {
    MAX_DISPLAY_NAME_BYTES
}

impl TryFrom<UploadPolicyConfig> for UploadPolicy {
    type Error = ConfigError;

    fn try_from(config: UploadPolicyConfig) -> Result<UploadPolicy, ConfigError> {
        let mut builder = UploadPolicy::builder()
            .max_bytes(config.max_bytes)
            .archive_limits(config.archive)
            .max_display_name_bytes(config.max_display_name_bytes);
        for allowed in config.allow {
            builder = match allowed {
                AllowedTypeConfig::Default(file_type) => builder.allow(file_type),
                AllowedTypeConfig::WithExtensions {
                    file_type,
                    extensions,
                } => {
                    builder.allow_with_extensions(file_type, extensions.iter().map(String::as_str))
                }
            };
        }
        for file_type in config.allow_scriptable_dangerously {
            builder = builder.allow_scriptable_dangerously(file_type);
        }
        builder.build()
    }
}
