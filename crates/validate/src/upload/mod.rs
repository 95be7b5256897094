//! Upload checks: size, type by magic bytes *and* extension, scriptable
//! markup, zip inspection, a malware-scanner hook, random stored names,
//! sanitised display names, and the headers to serve a stored file safely.
//!
//! The flow of an upload handler:
//!
//! 1. cap the body on the stream (the request limits of this crate);
//! 2. [`UploadPolicy::check`] (or [`check_scanned`](UploadPolicy::check_scanned))
//!    the bytes with the client's [`UploadMetadata`];
//! 3. store the bytes under [`AcceptedUpload::stored_name`], and keep the
//!    [`display_name`](AcceptedUpload::display_name) and
//!    [`file_type`](AcceptedUpload::file_type) beside it;
//! 4. serve it with [`download_headers`].

mod archive;
mod error;
mod filename;
mod policy;
mod scan;
mod serve;
mod sniff;

pub use archive::{
    ArchiveError, ArchiveErrorKind, ArchiveLimits, ArchiveSummary, INFLATE_CHUNK, inspect_zip,
};
pub use error::{UploadError, UploadErrorKind};
pub use filename::{
    DEFAULT_DISPLAY_NAME, DisplayName, MAX_DISPLAY_NAME_BYTES, MIN_DISPLAY_NAME_BYTES,
};
pub use policy::{
    AcceptedUpload, DEFAULT_MAX_UPLOAD_BYTES, MAX_UPLOAD_BYTES, StoredName, UploadMetadata,
    UploadPolicy, UploadPolicyBuilder,
};
pub use scan::{NoScanner, ScanError, ScanVerdict, UploadScanner};
pub use serve::{UPLOAD_CSP, download_headers};
pub use sniff::{FileType, sniff_markup};
