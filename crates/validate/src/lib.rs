#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;

// Typed input: ids, PATCH tri-state, strings, URLs, redirects, LIKE, HTML.
mod field_reason;
mod html;
mod ids;
mod json_objects;
mod like;
mod patch;
mod redirect;
mod ssrf;
mod text;
mod urls;
pub use field_reason::FieldReason;
pub use html::escape_html;
#[cfg(feature = "html")]
pub use html::{HtmlSanitizer, STRICT_TAGS};
pub use ids::{HexId, HexIdAnyCase, IdError, IdErrorKind, IdRejection, PathId, Ulid, Uuid};
pub use like::{LikeEscape, SqlDialect};
pub use patch::{Patch, UpdateMode, UpdateRefused, UpdateRules};
pub use redirect::{MAX_REDIRECT_LEN, RedirectError, RedirectErrorKind, RedirectPolicy};
pub use ssrf::{
    BlockedRange, DEFAULT_MAX_LOOKUPS_IN_FLIGHT, DEFAULT_MAX_REDIRECTS, ResolveFuture, Resolver,
    SsrfError, SsrfErrorKind, SsrfGuard, StaticResolver, SystemResolver, Target, blocked_range,
};
pub use text::{
    Email, MAX_EMAIL_LEN, MAX_EMAIL_LOCAL_LEN, Slug, TextError, TextErrorKind, Username,
    clean_line, is_control_or_format, nfc, nfkc, strip_controls, strip_controls_multiline,
};
pub use urls::{DEFAULT_MAX_URL_LEN, UrlError, UrlErrorKind, UrlPolicy};

// Request limits: body, headers, URL, query, content type, JSON shape, hosts.
pub mod content_type;
pub mod hosts;
pub mod json;
pub mod limits;
mod refusal;

// Uploads.
#[cfg(feature = "uploads")]
mod upload;
#[cfg(feature = "uploads")]
pub use upload::{
    AcceptedUpload, ArchiveError, ArchiveErrorKind, ArchiveLimits, ArchiveSummary,
    DEFAULT_DISPLAY_NAME, DEFAULT_MAX_UPLOAD_BYTES, DisplayName, FileType, INFLATE_CHUNK,
    MAX_DISPLAY_NAME_BYTES, MAX_UPLOAD_BYTES, MIN_DISPLAY_NAME_BYTES, NoScanner, ScanError,
    ScanVerdict, StoredName, UPLOAD_CSP, UploadError, UploadErrorKind, UploadMetadata,
    UploadPolicy, UploadPolicyBuilder, UploadScanner, download_headers, inspect_zip, sniff_markup,
};

pub use error::{ConfigError, ConfigErrorKind};
pub use refusal::Refusal;
