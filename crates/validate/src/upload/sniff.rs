//! What the bytes of an upload are, whatever its name says.
//!
//! Binary formats are recognised by their magic bytes (`infer`'s matchers);
//! markup (HTML, XML, SVG) by the WHATWG MIME-sniffing rules a browser
//! applies, because a browser is who would run its script.

use serde::{Deserialize, Serialize};

/// How far into the bytes markup is looked for (`<svg` after a prolog,
/// comments and a doctype).
const MARKUP_WINDOW: usize = 8 * 1024;

/// A file type an [`UploadPolicy`](super::UploadPolicy) can accept: its
/// magic bytes, canonical extension and `Content-Type`.
///
/// [`Svg`](Self::Svg) and [`Html`](Self::Html) can carry script that runs in
/// your origin when a browser renders them; a policy accepts them only
/// through [`UploadPolicyBuilder::allow_scriptable_dangerously`](super::UploadPolicyBuilder::allow_scriptable_dangerously).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FileType {
    /// PNG image (`\x89PNG\r\n\x1a\n`).
    Png,
    /// JPEG image (`FF D8 FF`).
    Jpeg,
    /// GIF image (`GIF8`).
    Gif,
    /// WebP image (`RIFF....WEBP`).
    Webp,
    /// PDF document (`%PDF` in the first KiB).
    Pdf,
    /// Zip archive (`PK\x03\x04`, or `PK\x05\x06` when empty); accepted only
    /// after [`inspect_zip`](super::inspect_zip) passes.
    Zip,
    /// Plain text: UTF-8 without NUL bytes, and no markup a browser would
    /// sniff as HTML or XML.
    Text,
    /// SVG image: XML that can hold `<script>` and event handlers.
    Svg,
    /// HTML document.
    Html,
}

impl FileType {
    /// Every type, for tables and exhaustive tests.
    pub const ALL: [FileType; 9] = [
        FileType::Png,
        FileType::Jpeg,
        FileType::Gif,
        FileType::Webp,
        FileType::Pdf,
        FileType::Zip,
        FileType::Text,
        FileType::Svg,
        FileType::Html,
    ];

    /// The extension a stored file of this type gets (lowercase, no dot).
    pub const fn canonical_extension(self) -> &'static str {
        match self {
            FileType::Png => "png",
            FileType::Jpeg => "jpg",
            FileType::Gif => "gif",
            FileType::Webp => "webp",
            FileType::Pdf => "pdf",
            FileType::Zip => "zip",
            FileType::Text => "txt",
            FileType::Svg => "svg",
            FileType::Html => "html",
        }
    }

    /// The extensions a client's file name may carry for this type by
    /// default (lowercase, no dot).
    pub const fn default_extensions(self) -> &'static [&'static str] {
        match self {
            FileType::Png => &["png"],
            FileType::Jpeg => &["jpg", "jpeg"],
            FileType::Gif => &["gif"],
            FileType::Webp => &["webp"],
            FileType::Pdf => &["pdf"],
            FileType::Zip => &["zip"],
            FileType::Text => &["txt"],
            FileType::Svg => &["svg"],
            FileType::Html => &["html", "htm"],
        }
    }

    /// The `Content-Type` a stored file of this type is served with.
    pub const fn mime(self) -> &'static str {
        match self {
            FileType::Png => "image/png",
            FileType::Jpeg => "image/jpeg",
            FileType::Gif => "image/gif",
            FileType::Webp => "image/webp",
            FileType::Pdf => "application/pdf",
            FileType::Zip => "application/zip",
            FileType::Text => "text/plain; charset=utf-8",
            FileType::Svg => "image/svg+xml",
            FileType::Html => "text/html; charset=utf-8",
        }
    }

    /// The media types (essence only, lowercase) a client may declare for
    /// this type: the registered one and the aliases browsers send.
    pub const fn declared_aliases(self) -> &'static [&'static str] {
        match self {
            FileType::Png => &["image/png", "image/x-png"],
            FileType::Jpeg => &["image/jpeg", "image/jpg", "image/pjpeg"],
            FileType::Gif => &["image/gif"],
            FileType::Webp => &["image/webp"],
            FileType::Pdf => &["application/pdf", "application/x-pdf"],
            FileType::Zip => &[
                "application/zip",
                "application/x-zip-compressed",
                "application/x-zip",
            ],
            FileType::Text => &["text/plain"],
            FileType::Svg => &["image/svg+xml"],
            FileType::Html => &["text/html", "application/xhtml+xml"],
        }
    }

    /// Whether a browser rendering this type in your origin could run
    /// script from it (SVG, HTML).
    pub const fn is_scriptable(self) -> bool {
        matches!(self, FileType::Svg | FileType::Html)
    }

    /// Whether `bytes` are this type by their content. For the binary
    /// types, their magic bytes; [`Text`](Self::Text) is UTF-8 without NUL
    /// and without markup; [`Svg`](Self::Svg) and [`Html`](Self::Html) are
    /// what [`sniff_markup`] finds.
    pub fn matches(self, bytes: &[u8]) -> bool {
        match self {
            FileType::Png => infer::image::is_png(bytes),
            FileType::Jpeg => infer::image::is_jpeg(bytes),
            FileType::Gif => infer::image::is_gif(bytes),
            FileType::Webp => infer::image::is_webp(bytes),
            FileType::Pdf => infer::archive::is_pdf(bytes),
            // `infer` also calls a spanned-archive marker and a WinZip
            // prefix a zip; the inspector wants a local header or an
            // empty archive's end record at offset 0.
            FileType::Zip => bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06"),
            FileType::Text => {
                !bytes.contains(&0)
                    && std::str::from_utf8(bytes).is_ok()
                    && sniff_markup(bytes).is_none()
            }
            FileType::Svg | FileType::Html => sniff_markup(bytes) == Some(self),
        }
    }

    /// The type `bytes` are, when it is one of these: the first binary
    /// type whose magic bytes match, else markup, else text.
    pub fn detect(bytes: &[u8]) -> Option<FileType> {
        const BINARY: [FileType; 6] = [
            FileType::Png,
            FileType::Jpeg,
            FileType::Gif,
            FileType::Webp,
            FileType::Zip,
            FileType::Pdf,
        ];
        BINARY
            .into_iter()
            .find(|t| t.matches(bytes))
            .or_else(|| sniff_markup(bytes))
            .or_else(|| FileType::Text.matches(bytes).then_some(FileType::Text))
    }

    /// The type whose canonical or default extension is `extension`
    /// (lowercase, no dot).
    pub fn from_extension(extension: &str) -> Option<FileType> {
        FileType::ALL
            .into_iter()
            .find(|t| t.default_extensions().contains(&extension))
    }
}

/// Whether a browser would take `bytes` for scriptable markup, and which:
/// [`FileType::Svg`] when an `<svg` element appears in the first 8 KiB of
/// something that starts as markup, [`FileType::Html`] for the WHATWG HTML
/// patterns (`<!DOCTYPE HTML`, `<script`, `<iframe`, `<body`, `<!--`, ...
/// after whitespace) and for XML (`<?xml`, which a browser renders as XHTML
/// or SVG by its root element).
///
/// The check runs on every upload, whatever type its name and magic bytes
/// claim, so a polyglot (`%PDF` in an HTML comment, a `.txt` that is a page)
/// is refused unless markup is explicitly allowed.
pub fn sniff_markup(bytes: &[u8]) -> Option<FileType> {
    let window = bytes.get(..MARKUP_WINDOW).unwrap_or(bytes);
    let start = trim_bom_and_whitespace(window);
    if !start.starts_with(b"<") {
        return None;
    }
    if contains_ignore_ascii_case(start, b"<svg") {
        return Some(FileType::Svg);
    }
    let html_like = infer::text::is_html(start)
        || infer::text::is_xml(start)
        || contains_ignore_ascii_case(start, b"<script")
        || contains_ignore_ascii_case(start, b"<html");
    html_like.then_some(FileType::Html)
}

/// `bytes` after a UTF-8 BOM and WHATWG whitespace (tab, LF, FF, CR,
/// space), repeated.
fn trim_bom_and_whitespace(mut bytes: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
            bytes = rest;
        } else if let Some((&first, rest)) = bytes.split_first()
            && matches!(first, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
        {
            bytes = rest;
        } else {
            return bytes;
        }
    }
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn magic_bytes_decide_the_binary_types() {
        assert_eq!(FileType::detect(PNG), Some(FileType::Png));
        assert_eq!(FileType::detect(b"%PDF-1.7\n"), Some(FileType::Pdf));
        assert_eq!(FileType::detect(b"PK\x05\x06"), Some(FileType::Zip));
        assert_eq!(FileType::detect(b"\xFF\xD8\xFF\xE0"), Some(FileType::Jpeg));
        assert_eq!(FileType::detect(b"GIF89a"), Some(FileType::Gif));
        assert_eq!(
            FileType::detect(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(FileType::Webp)
        );
        assert_eq!(FileType::detect(b"hello"), Some(FileType::Text));
        assert_eq!(FileType::detect(b"\x7fELF\x02\x01\x01\0"), None);
    }

    #[test]
    fn markup_is_sniffed_like_a_browser_would() {
        assert_eq!(
            sniff_markup(b"\xEF\xBB\xBF  <svg xmlns=\"x\">"),
            Some(FileType::Svg)
        );
        assert_eq!(
            sniff_markup(b"<?xml version=\"1.0\"?><!-- c --><svg>"),
            Some(FileType::Svg)
        );
        assert_eq!(sniff_markup(b"\n<!DOCTYPE html>"), Some(FileType::Html));
        assert_eq!(
            sniff_markup(b"<script>alert(1)</script>"),
            Some(FileType::Html)
        );
        assert_eq!(
            sniff_markup(b"<?xml version=\"1.0\"?><r/>"),
            Some(FileType::Html)
        );
        assert_eq!(sniff_markup(b"<3 plain text"), None);
        assert_eq!(sniff_markup(b"plain <script>"), None);
    }

    #[test]
    fn html_polyglot_with_pdf_magic_is_still_markup() {
        // `infer` accepts %PDF anywhere in the first KiB; the markup sniff
        // is what stops this page from passing as a PDF.
        let polyglot = b"<html><!-- %PDF-1.4 --><script>alert(1)</script>";
        assert!(FileType::Pdf.matches(polyglot));
        assert_eq!(sniff_markup(polyglot), Some(FileType::Html));
    }
}
