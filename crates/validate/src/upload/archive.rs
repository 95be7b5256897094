//! Zip inspection in memory: nothing is written to disk, nothing inflated is
//! kept, and no size a header declares is trusted.
//!
//! The archive is read the strict way, so that what is inspected here is
//! what any extractor will see: one end record, ending the file; a central
//! directory right before it; every entry's local header where the central
//! directory says, naming the same file. Anything a lenient reader could
//! read two ways (a second end record, a local name that differs from the
//! central one, a Unicode Path extra field, local or central, naming another
//! file, duplicate names, overlapping entries) is refused.
//!
//! Zip64 is refused: the caps make it unnecessary, and its extra fields are
//! one more place for the central and local views to disagree.

use std::collections::HashSet;

use flate2::{Decompress, FlushDecompress, Status};
use serde::Deserialize;

/// Output buffer of the inflater: the only memory inflating uses besides the
/// inflater's own window, whatever the archive claims or holds.
pub const INFLATE_CHUNK: usize = 32 * 1024;

const LOCAL_HEADER: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_HEADER: &[u8; 4] = b"PK\x01\x02";
const END_OF_CENTRAL_DIRECTORY: &[u8; 4] = b"PK\x05\x06";
const ZIP64_END_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const DATA_DESCRIPTOR: &[u8; 4] = b"PK\x07\x08";

const LOCAL_HEADER_LEN: usize = 30;
const CENTRAL_HEADER_LEN: usize = 46;
const END_RECORD_LEN: usize = 22;

/// General-purpose flag bits (APPNOTE 4.4.4).
const FLAG_ENCRYPTED: u16 = 1 << 0;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_MASKED_DIRECTORY: u16 = 1 << 13;

const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
const METHOD_AES: u16 = 99;

/// Info-ZIP Unicode Path extra field: extractors that know it use its name
/// instead of the header's, so its name must be the header's.
const EXTRA_UNICODE_PATH: u16 = 0x7075;
/// Zip64 extended information extra field: some readers take sizes and
/// offsets from it whatever the header says, so it is refused.
const EXTRA_ZIP64: u16 = 0x0001;

/// Extensions of archive formats an entry may be (a nested archive).
const ARCHIVE_EXTENSIONS: &[&str] = &[
    "zip", "jar", "war", "ear", "apk", "ipa", "xpi", "7z", "rar", "gz", "tgz", "bz2", "tbz2", "xz",
    "txz", "zst", "tar", "cab", "lz", "lzma", "z", "iso", "cpio",
];

/// Caps on what a zip may hold. The defaults suit user uploads of documents
/// and images; raise them per route where bigger archives are expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveLimits {
    /// Entries (files and directories) at most. Default 1,000.
    pub max_entries: usize,
    /// Bytes one entry may inflate to, counted while inflating. Default 64 MiB.
    pub max_entry_bytes: u64,
    /// Bytes all entries together may inflate to, counted while inflating.
    /// Default 256 MiB.
    pub max_total_bytes: u64,
    /// Entries that are archives themselves (by name or by their first
    /// inflated bytes) at most; they are counted, not opened. Default 0:
    /// a nested archive is refused, since its contents escape these caps.
    pub max_nested_archives: usize,
}

impl Default for ArchiveLimits {
    fn default() -> ArchiveLimits {
        ArchiveLimits {
            max_entries: 1_000,
            max_entry_bytes: 64 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            max_nested_archives: 0,
        }
    }
}

/// What an accepted archive holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveSummary {
    entries: usize,
    total_bytes: u64,
    nested_archives: usize,
}

impl ArchiveSummary {
    /// Entries in the central directory (files and directories).
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Bytes all entries inflated to (measured, not declared).
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Entries that are archives themselves (not opened).
    pub fn nested_archives(&self) -> usize {
        self.nested_archives
    }
}

/// Why a zip was refused. The detail is the kind; never an entry's name or
/// content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveError {
    kind: ArchiveErrorKind,
    inflated: u64,
}

/// The class of an [`ArchiveError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArchiveErrorKind {
    /// Not a zip this reader reads the one unambiguous way: no end record,
    /// two of them, a truncated or inconsistent structure, a local header
    /// that disagrees with the central directory, a Unicode Path extra field
    /// whose name is not the header's, bytes before, between or
    /// after the entries (where a streaming extractor could find a local
    /// header the central directory does not list), a corrupt deflate
    /// stream.
    Malformed,
    /// Zip64 records, sizes or extra fields (unneeded under the caps).
    Zip64,
    /// More entries than [`ArchiveLimits::max_entries`].
    TooManyEntries,
    /// An entry inflates (or claims to) past [`ArchiveLimits::max_entry_bytes`].
    EntryTooLarge,
    /// The entries inflate past [`ArchiveLimits::max_total_bytes`] together:
    /// a zip bomb.
    TotalTooLarge,
    /// An entry name that leaves the extraction directory (zip-slip): `..`,
    /// an absolute path, a drive letter, a backslash, a control character.
    PathTraversal,
    /// Two entries with the same name (ASCII case ignored): extractors
    /// disagree on which one wins.
    DuplicateName,
    /// A symbolic-link entry: extracting it and then a file "inside" it
    /// writes through the link, anywhere.
    Symlink,
    /// An encrypted entry (it cannot be inspected).
    Encrypted,
    /// A compression method other than stored and deflate.
    UnsupportedCompression,
    /// Two entries whose local header and data overlap: the overlapping
    /// zip bomb (David Fifield, "A better zip bomb", 2019) reuses one
    /// compressed stream for thousands of entries.
    OverlappingEntries,
    /// An entry whose header or data lies outside the archive's data area.
    OutsideArchive,
    /// An entry inflated to a size other than the one its header declares
    /// (headers lie; the archive is refused when they do).
    SizeMismatch,
    /// More nested archives than [`ArchiveLimits::max_nested_archives`].
    NestedArchive,
}

impl ArchiveErrorKind {
    /// A stable snake_case name (the `reason` of the event).
    pub const fn as_str(self) -> &'static str {
        match self {
            ArchiveErrorKind::Malformed => "archive_malformed",
            ArchiveErrorKind::Zip64 => "archive_zip64",
            ArchiveErrorKind::TooManyEntries => "archive_too_many_entries",
            ArchiveErrorKind::EntryTooLarge => "archive_entry_too_large",
            ArchiveErrorKind::TotalTooLarge => "archive_too_large",
            ArchiveErrorKind::PathTraversal => "archive_path_traversal",
            ArchiveErrorKind::DuplicateName => "archive_duplicate_name",
            ArchiveErrorKind::Symlink => "archive_symlink",
            ArchiveErrorKind::Encrypted => "archive_encrypted",
            ArchiveErrorKind::UnsupportedCompression => "archive_unsupported_compression",
            ArchiveErrorKind::OverlappingEntries => "archive_overlapping_entries",
            ArchiveErrorKind::OutsideArchive => "archive_entry_outside",
            ArchiveErrorKind::SizeMismatch => "archive_size_mismatch",
            ArchiveErrorKind::NestedArchive => "archive_nested",
        }
    }
}

impl ArchiveError {
    fn new(kind: ArchiveErrorKind) -> ArchiveError {
        ArchiveError { kind, inflated: 0 }
    }

    /// The class of the error.
    pub fn kind(&self) -> ArchiveErrorKind {
        self.kind
    }

    /// Bytes inflated (and thrown away) before the archive was refused: at
    /// most the total cap plus one [`INFLATE_CHUNK`], however much the
    /// archive would inflate to.
    pub fn bytes_inflated(&self) -> u64 {
        self.inflated
    }
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zip refused: {}", self.kind.as_str())
    }
}

impl std::error::Error for ArchiveError {}

/// One entry of the central directory, as far as inspection needs it.
struct Entry<'a> {
    name: &'a [u8],
    local_name_matches: bool,
    method: u16,
    compressed: usize,
    uncompressed: u64,
    data: std::ops::Range<usize>,
}

/// Inspects a zip held in memory against `limits`: structure, names, and
/// every entry inflated into a counting sink that stops at the caps.
///
/// ```
/// use palisade_validate::{ArchiveErrorKind, ArchiveLimits, inspect_zip};
///
/// // An empty archive: just the end record.
/// let empty = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
/// assert_eq!(inspect_zip(empty, &ArchiveLimits::default())?.entries(), 0);
///
/// let refused = inspect_zip(b"PK\x03\x04 not really", &ArchiveLimits::default());
/// assert_eq!(refused.unwrap_err().kind(), ArchiveErrorKind::Malformed);
/// # Ok::<(), palisade_validate::ArchiveError>(())
/// ```
pub fn inspect_zip(bytes: &[u8], limits: &ArchiveLimits) -> Result<ArchiveSummary, ArchiveError> {
    use ArchiveErrorKind as K;
    let end = find_end_record(bytes)?;
    let field16 = |at| read_u16(bytes, end + at);
    let field32 = |at| read_u32(bytes, end + at);
    let (disk, directory_disk) = (field16(4)?, field16(6)?);
    let (on_this_disk, count) = (field16(8)?, field16(10)?);
    let (directory_size, directory_offset) = (field32(12)?, field32(16)?);
    if on_this_disk == u16::MAX
        || count == u16::MAX
        || directory_size == u32::MAX
        || directory_offset == u32::MAX
    {
        return Err(ArchiveError::new(K::Zip64));
    }
    if disk != 0 || directory_disk != 0 || on_this_disk != count {
        return Err(ArchiveError::new(K::Malformed));
    }
    let count = usize::from(count);
    // Refused before anything per entry is read or allocated.
    if count > limits.max_entries {
        return Err(ArchiveError::new(K::TooManyEntries));
    }
    let directory_start = directory_offset as usize;
    if directory_start.checked_add(directory_size as usize) != Some(end)
        || count.saturating_mul(CENTRAL_HEADER_LEN) > directory_size as usize
    {
        return Err(ArchiveError::new(K::Malformed));
    }

    let mut entries = Vec::with_capacity(count);
    let mut ranges = Vec::with_capacity(count);
    let mut at = directory_start;
    for _ in 0..count {
        let (entry, range, next) = central_entry(bytes, at, directory_start, end)?;
        ranges.push(range);
        entries.push(entry);
        at = next;
    }
    if at != end {
        return Err(ArchiveError::new(K::Malformed));
    }
    // Overlap is structural: the overlapping bomb is refused here, before a
    // single byte is inflated (and before the names, which differ between
    // the central entries of its simplest form and their one local header).
    ranges.sort_unstable_by_key(|range: &std::ops::Range<usize>| range.start);
    if ranges.windows(2).any(|pair| pair[0].end > pair[1].start) {
        return Err(ArchiveError::new(K::OverlappingEntries));
    }
    // The entries must tile the data area: no bytes before the first, none
    // between two, none before the central directory. A streaming extractor
    // (one that reads local headers in order) would extract a local header
    // hidden in a gap that this inspection, going by the central
    // directory, never saw.
    let mut covered = 0;
    for range in &ranges {
        if range.start != covered {
            return Err(ArchiveError::new(K::Malformed));
        }
        covered = range.end;
    }
    if covered != directory_start {
        return Err(ArchiveError::new(K::Malformed));
    }
    let mut names = HashSet::with_capacity(count);
    for entry in &entries {
        // The local name must be the central one: an extractor that reads
        // local headers (streaming unzip) would otherwise write a name
        // never checked.
        if !entry.local_name_matches {
            return Err(ArchiveError::new(K::Malformed));
        }
        if !names.insert(entry.name.to_ascii_lowercase()) {
            return Err(ArchiveError::new(K::DuplicateName));
        }
        if entry.uncompressed > limits.max_entry_bytes {
            return Err(ArchiveError::new(K::EntryTooLarge));
        }
    }

    let mut sink = CountingSink::new(limits);
    let mut inflater = Inflater::new();
    let mut nested = 0usize;
    for entry in &entries {
        let head = sink.inflate(&mut inflater, bytes, entry)?;
        if is_archive(entry.name, &head) {
            nested += 1;
            if nested > limits.max_nested_archives {
                return Err(sink.refuse(K::NestedArchive));
            }
        }
    }
    Ok(ArchiveSummary {
        entries: entries.len(),
        total_bytes: sink.total,
        nested_archives: nested,
    })
}

/// The offset of the one end-of-central-directory record, which must end
/// the file exactly (its comment running to the last byte). Two records
/// that would both do are refused: readers that scan from different ends
/// would see different archives.
fn find_end_record(bytes: &[u8]) -> Result<usize, ArchiveError> {
    let malformed = ArchiveError::new(ArchiveErrorKind::Malformed);
    let last = bytes.len().checked_sub(END_RECORD_LEN).ok_or(malformed)?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    let mut found = None;
    for at in (first..=last).rev() {
        if bytes.get(at..at + 4) != Some(END_OF_CENTRAL_DIRECTORY) {
            continue;
        }
        let comment = usize::from(read_u16(bytes, at + 20)?);
        if at + END_RECORD_LEN + comment == bytes.len() {
            if found.is_some() {
                return Err(malformed);
            }
            found = Some(at);
        }
    }
    let end = found.ok_or(malformed)?;
    if end >= 20 && bytes.get(end - 20..end - 16) == Some(ZIP64_END_LOCATOR) {
        return Err(ArchiveError::new(ArchiveErrorKind::Zip64));
    }
    Ok(end)
}

/// The central-directory entry at `at`, the byte range its local header,
/// data and data descriptor occupy, and where the next entry starts.
fn central_entry(
    bytes: &[u8],
    at: usize,
    data_area_end: usize,
    directory_end: usize,
) -> Result<(Entry<'_>, std::ops::Range<usize>, usize), ArchiveError> {
    use ArchiveErrorKind as K;
    let malformed = ArchiveError::new(K::Malformed);
    if bytes.get(at..at + 4) != Some(CENTRAL_HEADER) {
        return Err(malformed);
    }
    let made_by = read_u16(bytes, at + 4)?;
    let flags = read_u16(bytes, at + 8)?;
    let method = read_u16(bytes, at + 10)?;
    let compressed = read_u32(bytes, at + 20)?;
    let uncompressed = read_u32(bytes, at + 24)?;
    let name_len = usize::from(read_u16(bytes, at + 28)?);
    let extra_len = usize::from(read_u16(bytes, at + 30)?);
    let comment_len = usize::from(read_u16(bytes, at + 32)?);
    let start_disk = read_u16(bytes, at + 34)?;
    let external = read_u32(bytes, at + 38)?;
    let local = read_u32(bytes, at + 42)?;
    let name_at = at + CENTRAL_HEADER_LEN;
    let extra_at = name_at + name_len;
    let next = extra_at + extra_len + comment_len;
    if next > directory_end {
        return Err(malformed);
    }
    let name = bytes.get(name_at..extra_at).ok_or(malformed)?;
    let extra = bytes.get(extra_at..extra_at + extra_len).ok_or(malformed)?;

    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_DIRECTORY) != 0
        || method == METHOD_AES
    {
        return Err(ArchiveError::new(K::Encrypted));
    }
    if method != METHOD_STORED && method != METHOD_DEFLATED {
        return Err(ArchiveError::new(K::UnsupportedCompression));
    }
    if compressed == u32::MAX || uncompressed == u32::MAX || local == u32::MAX {
        return Err(ArchiveError::new(K::Zip64));
    }
    if start_disk != 0 {
        return Err(malformed);
    }
    check_entry_name(name)?;
    check_extra_fields(extra, name)?;
    // Unix (3) and OS X (19) hosts keep the mode in the high half.
    let host = made_by >> 8;
    if (host == 3 || host == 19) && (external >> 16) & 0o170_000 == 0o120_000 {
        return Err(ArchiveError::new(K::Symlink));
    }

    // The local header: where the data really starts.
    let local = local as usize;
    let outside = ArchiveError::new(K::OutsideArchive);
    if local
        .checked_add(LOCAL_HEADER_LEN)
        .is_none_or(|e| e > data_area_end)
    {
        return Err(outside);
    }
    if bytes.get(local..local + 4) != Some(LOCAL_HEADER) {
        return Err(malformed);
    }
    let local_flags = read_u16(bytes, local + 6)?;
    let local_method = read_u16(bytes, local + 8)?;
    let local_name_len = usize::from(read_u16(bytes, local + 26)?);
    let local_extra_len = usize::from(read_u16(bytes, local + 28)?);
    if local_flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 {
        return Err(ArchiveError::new(K::Encrypted));
    }
    let local_name_at = local + LOCAL_HEADER_LEN;
    let data_start = local_name_at + local_name_len + local_extra_len;
    let compressed = compressed as usize;
    let data_end = data_start
        .checked_add(compressed)
        .filter(|&e| e <= data_area_end)
        .ok_or(outside)?;
    if local_method != method {
        return Err(malformed);
    }
    // A streaming extractor reads the local extra fields, not the central
    // ones: they get the same checks.
    let local_extra_at = local_name_at + local_name_len;
    let local_extra = bytes.get(local_extra_at..data_start).ok_or(malformed)?;
    check_extra_fields(local_extra, name)?;
    let local_name_matches = bytes.get(local_name_at..local_name_at + local_name_len) == Some(name);
    let mut range_end = data_end;
    if flags & FLAG_DATA_DESCRIPTOR != 0 || local_flags & FLAG_DATA_DESCRIPTOR != 0 {
        let signed = bytes.get(data_end..data_end + 4) == Some(DATA_DESCRIPTOR);
        range_end += if signed { 16 } else { 12 };
        if range_end > data_area_end {
            return Err(outside);
        }
    }
    let entry = Entry {
        name,
        local_name_matches,
        method,
        compressed,
        uncompressed: u64::from(uncompressed),
        data: data_start..data_end,
    };
    Ok((entry, local..range_end, next))
}

/// Refuses names that would leave the extraction directory on any system
/// (zip-slip): absolute paths (`/x`, `\x`), drive letters (`C:`), any
/// backslash (a separator on Windows, a file-name character elsewhere),
/// a `..` component, control characters and empty names or components.
fn check_entry_name(name: &[u8]) -> Result<(), ArchiveError> {
    let traversal = ArchiveError::new(ArchiveErrorKind::PathTraversal);
    if name.is_empty()
        || name.starts_with(b"/")
        || name.contains(&b'\\')
        || name.contains(&b':')
        || name.iter().any(|&b| b < 0x20 || b == 0x7F)
    {
        return Err(traversal);
    }
    // A trailing `/` marks a directory; every other component is a name.
    let body = name.strip_suffix(b"/").unwrap_or(name);
    if body
        .split(|&b| b == b'/')
        .any(|part| part.is_empty() || part == b"." || part == b"..")
    {
        return Err(traversal);
    }
    Ok(())
}

/// The extra fields of an entry's central or local header (`name` is the
/// header's name) must parse exactly. A Unicode Path field's name, which
/// extractors that know the field write instead of the header's, is checked
/// like it and must be the header's name: otherwise two entries could
/// extract to one name, or the name written would not be the one checked
/// for duplicates. A Zip64 field is refused (Zip64 archives are; readers
/// that know the field take sizes from it).
fn check_extra_fields(mut extra: &[u8], name: &[u8]) -> Result<(), ArchiveError> {
    let malformed = ArchiveError::new(ArchiveErrorKind::Malformed);
    while !extra.is_empty() {
        let id = read_u16(extra, 0)?;
        let len = usize::from(read_u16(extra, 2)?);
        let data = extra.get(4..4 + len).ok_or(malformed)?;
        if id == EXTRA_ZIP64 {
            return Err(ArchiveError::new(ArchiveErrorKind::Zip64));
        }
        if id == EXTRA_UNICODE_PATH {
            // version (1), CRC-32 of the header name (4), UTF-8 name.
            let unicode_name = data.get(5..).ok_or(malformed)?;
            check_entry_name(unicode_name)?;
            if unicode_name != name {
                return Err(malformed);
            }
        }
        extra = extra.get(4 + len..).unwrap_or_default();
    }
    Ok(())
}

/// Whether an entry is an archive itself, by its name's extension or its
/// first inflated bytes.
fn is_archive(name: &[u8], head: &[u8]) -> bool {
    let extension = name
        .rsplit(|&b| b == b'.')
        .next()
        .filter(|ext| ext.len() < name.len())
        .map(<[u8]>::to_ascii_lowercase);
    let by_name = extension.is_some_and(|ext| {
        ARCHIVE_EXTENSIONS
            .iter()
            .any(|known| known.as_bytes() == ext.as_slice())
    });
    by_name
        || infer::archive::is_zip(head)
        || infer::archive::is_gz(head)
        || infer::archive::is_7z(head)
        || infer::archive::is_rar(head)
        || infer::archive::is_bz2(head)
        || infer::archive::is_xz(head)
        || infer::archive::is_zst(head)
        || infer::archive::is_cab(head)
}

/// Counts inflated bytes against the caps and throws them away.
struct CountingSink<'l> {
    limits: &'l ArchiveLimits,
    total: u64,
}

/// The inflater and its output buffer, allocated once per archive and
/// reset per entry.
struct Inflater {
    buffer: Vec<u8>,
    state: Decompress,
}

impl Inflater {
    fn new() -> Inflater {
        Inflater {
            buffer: vec![0; INFLATE_CHUNK],
            state: Decompress::new(false),
        }
    }
}

impl CountingSink<'_> {
    fn new(limits: &ArchiveLimits) -> CountingSink<'_> {
        CountingSink { limits, total: 0 }
    }

    fn refuse(&self, kind: ArchiveErrorKind) -> ArchiveError {
        ArchiveError {
            kind,
            inflated: self.total,
        }
    }

    /// Counts `produced` more bytes of the current entry (`entry_total` so
    /// far, this chunk included), refusing past a cap.
    fn count(&mut self, produced: u64, entry_total: u64) -> Result<(), ArchiveError> {
        self.total = self.total.saturating_add(produced);
        if entry_total > self.limits.max_entry_bytes {
            return Err(self.refuse(ArchiveErrorKind::EntryTooLarge));
        }
        if self.total > self.limits.max_total_bytes {
            return Err(self.refuse(ArchiveErrorKind::TotalTooLarge));
        }
        Ok(())
    }

    /// Inflates `entry`, counting; returns its first 16 bytes (for nested
    /// archive detection).
    fn inflate(
        &mut self,
        inflater: &mut Inflater,
        bytes: &[u8],
        entry: &Entry<'_>,
    ) -> Result<Vec<u8>, ArchiveError> {
        let data = bytes
            .get(entry.data.clone())
            .ok_or(ArchiveError::new(ArchiveErrorKind::OutsideArchive))?;
        if entry.method == METHOD_STORED {
            let size = entry.compressed as u64;
            self.count(size, size)?;
            if size != entry.uncompressed {
                return Err(self.refuse(ArchiveErrorKind::SizeMismatch));
            }
            return Ok(data.get(..16).unwrap_or(data).to_vec());
        }
        let Inflater { buffer, state } = inflater;
        let inflater = state;
        inflater.reset(false);
        let mut head = Vec::with_capacity(16);
        loop {
            let consumed = inflater.total_in() as usize;
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let input = data.get(consumed..).unwrap_or_default();
            let status = inflater
                .decompress(input, buffer, FlushDecompress::None)
                .map_err(|_| self.refuse(ArchiveErrorKind::Malformed))?;
            let produced = inflater.total_out() - before_out;
            if head.len() < 16 {
                let want = (16 - head.len()).min(produced as usize);
                head.extend_from_slice(buffer.get(..want).unwrap_or_default());
            }
            self.count(produced, inflater.total_out())?;
            match status {
                Status::StreamEnd => break,
                // No input left and no output made: the stream is cut short.
                _ if produced == 0 && inflater.total_in() == before_in => {
                    return Err(self.refuse(ArchiveErrorKind::Malformed));
                }
                _ => {}
            }
        }
        if inflater.total_in() as usize != entry.compressed {
            return Err(self.refuse(ArchiveErrorKind::Malformed));
        }
        if inflater.total_out() != entry.uncompressed {
            return Err(self.refuse(ArchiveErrorKind::SizeMismatch));
        }
        Ok(head)
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Result<u16, ArchiveError> {
    bytes
        .get(at..at.wrapping_add(2))
        .and_then(|b| b.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(ArchiveError::new(ArchiveErrorKind::Malformed))
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, ArchiveError> {
    bytes
        .get(at..at.wrapping_add(4))
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(ArchiveError::new(ArchiveErrorKind::Malformed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_names_are_refused() {
        for name in [
            &b"../evil"[..],
            b"a/../../evil",
            b"/etc/passwd",
            b"C:/Windows/x",
            b"c:x",
            b"a\\..\\evil",
            b"\\\\server\\share",
            b"a//b",
            b"./a",
            b"a\nb",
            b"",
        ] {
            assert_eq!(
                check_entry_name(name).map_err(|e| e.kind()),
                Err(ArchiveErrorKind::PathTraversal),
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
        for name in [&b"a.txt"[..], b"dir/", b"dir/sub/file.png", b"..a", b"a.."] {
            assert!(
                check_entry_name(name).is_ok(),
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn archives_are_known_by_name_or_magic() {
        assert!(is_archive(b"x/inner.ZIP", b""));
        assert!(is_archive(b"data.bin", b"\x1f\x8b\x08\0"));
        assert!(!is_archive(b"zip", b"hello"));
        assert!(!is_archive(b"a.txt", b"hello"));
    }
}
