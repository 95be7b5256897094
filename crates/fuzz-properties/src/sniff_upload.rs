//! Arbitrary uploads through `UploadPolicy::check`: never a panic, and the
//! verdict is consistent with the policy — an accepted file is within the
//! size cap, its bytes are detected as the type its (sanitised) name's
//! extension names, that type is allowed, it is not markup of another type,
//! a zip passed inspection, the stored name is a fresh random one, and the
//! download headers carry `nosniff` and the sandbox CSP; a refusal for size
//! happens exactly when the file is over the cap.
//!
//! The first byte picks the file name, the second the declared
//! `Content-Type` and the policy (with or without SVG); the rest is the
//! file.

use palisade_validate::{
    ArchiveLimits, DisplayName, FileType, StoredName, UploadErrorKind, UploadMetadata,
    UploadPolicy, inspect_zip, sniff_markup,
};

const NAMES: &[&str] = &[
    "a.png",
    "b.jpg",
    "c.jpeg",
    "d.pdf",
    "e.txt",
    "f.zip",
    "g.svg",
    "h.html",
    "i.gif",
    "j.webp",
    "k.exe",
    "noext",
    "../../l.png",
    "CON.pdf",
    "m.PNG.",
    "n\u{202e}gnp.txt",
];

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/octet-stream"),
    Some("image/png"),
    Some("application/pdf"),
    Some("text/html"),
    Some("application/zip; charset=binary"),
    Some("text/plain"),
    Some("image/svg+xml"),
];

const MAX_BYTES: u64 = 64 * 1024;

fn policy(with_svg: bool) -> UploadPolicy {
    let mut builder = UploadPolicy::builder()
        .max_bytes(MAX_BYTES)
        .allow(FileType::Png)
        .allow(FileType::Jpeg)
        .allow(FileType::Pdf)
        .allow(FileType::Text)
        .allow(FileType::Zip)
        .archive_limits(ArchiveLimits {
            max_entries: 16,
            max_entry_bytes: 64 * 1024,
            max_total_bytes: 256 * 1024,
            max_nested_archives: 0,
        });
    if with_svg {
        builder = builder.allow_scriptable_dangerously(FileType::Svg);
    }
    // Invariant: a fixed, valid configuration.
    #[allow(clippy::expect_used)]
    builder.build().expect("valid fuzz policy")
}

/// Checks the property on `data`; panics when it does not hold.
pub fn run(data: &[u8]) {
    let (name_byte, rest) = data.split_first().map_or((0, data), |(b, r)| (*b, r));
    let (choice, bytes) = rest.split_first().map_or((0, rest), |(b, r)| (*b, r));
    let name = NAMES[usize::from(name_byte) % NAMES.len()];
    let content_type = CONTENT_TYPES[usize::from(choice) % CONTENT_TYPES.len()];
    let with_svg = choice & 0x80 != 0;
    let policy = policy(with_svg);
    let mut metadata = UploadMetadata::new(name);
    metadata.content_type = content_type.map(str::to_owned);

    match policy.check(&metadata, bytes) {
        Ok(accepted) => {
            let file_type = accepted.file_type();
            assert!(accepted.size() <= MAX_BYTES && accepted.size() == bytes.len() as u64);
            assert!(
                policy.allows(file_type),
                "accepted a type the policy does not allow"
            );
            assert_eq!(
                FileType::detect(bytes),
                Some(file_type),
                "bytes and type disagree"
            );
            let extension = DisplayName::sanitize(name).extension();
            assert!(
                extension
                    .as_deref()
                    .is_some_and(|e| file_type.default_extensions().contains(&e)),
                "name {name:?} does not name {file_type:?}"
            );
            match sniff_markup(bytes) {
                Some(markup) => assert_eq!(markup, file_type, "markup accepted as another type"),
                None => assert!(!file_type.is_scriptable()),
            }
            assert_eq!(accepted.requires_sandbox(), file_type.is_scriptable());
            if file_type == FileType::Zip {
                assert!(inspect_zip(bytes, policy.archive_limits()).is_ok());
            }
            let stored = accepted.stored_name().as_str();
            assert!(
                StoredName::parse(stored).is_some(),
                "stored name {stored:?}"
            );
            assert!(stored.ends_with(file_type.canonical_extension()));
            let headers = accepted.download_headers();
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert_eq!(
                headers["content-security-policy"],
                "sandbox; default-src 'none'"
            );
            assert_eq!(headers["content-type"], file_type.mime());
        }
        Err(error) => {
            let over = bytes.len() as u64 > MAX_BYTES;
            assert_eq!(
                error.kind() == UploadErrorKind::TooLarge,
                over,
                "{:?}",
                error.kind()
            );
        }
    }
}
