//! Arbitrary bytes through `inspect_zip` under small caps: never a panic;
//! an accepted archive is within every cap, and its entries' local headers
//! are distinct and do not overlap (checked here by an independent walk of
//! the central directory); a refused one stopped inflating within one
//! buffer of the total cap, so memory and work stay bounded whatever the
//! input declares.

use palisade_validate::{ArchiveLimits, INFLATE_CHUNK, inspect_zip};

/// The caps the fuzzer runs under: small, so bombs reach them fast.
pub const LIMITS: ArchiveLimits = ArchiveLimits {
    max_entries: 16,
    max_entry_bytes: 64 * 1024,
    max_total_bytes: 256 * 1024,
    max_nested_archives: 1,
};

/// Checks the property on `data`; panics when it does not hold.
pub fn run(data: &[u8]) {
    match inspect_zip(data, &LIMITS) {
        Ok(summary) => {
            assert!(summary.entries() <= LIMITS.max_entries);
            assert!(summary.total_bytes() <= LIMITS.max_total_bytes);
            assert!(summary.nested_archives() <= LIMITS.max_nested_archives);
            let offsets = local_header_offsets(data);
            assert_eq!(
                offsets.len(),
                summary.entries(),
                "the walk sees every entry"
            );
            for pair in offsets.windows(2) {
                assert!(
                    pair[0] + 30 <= pair[1],
                    "accepted overlapping local headers at {} and {}",
                    pair[0],
                    pair[1]
                );
            }
        }
        Err(error) => {
            assert!(
                error.bytes_inflated() <= LIMITS.max_total_bytes + INFLATE_CHUNK as u64,
                "inflated {} bytes before refusing",
                error.bytes_inflated()
            );
        }
    }
}

/// The local header offsets of an accepted archive's entries, sorted, read
/// straight from the end record and the central directory.
fn local_header_offsets(data: &[u8]) -> Vec<usize> {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([data[at], data[at + 1]]));
    let u32_at = |at: usize| {
        u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize
    };
    let end = (0..=data.len() - 22)
        .rev()
        .find(|&at| &data[at..at + 4] == b"PK\x05\x06" && at + 22 + u16_at(at + 20) == data.len())
        .expect("an accepted archive has an end record");
    let count = u16_at(end + 10);
    let mut at = u32_at(end + 16);
    let mut offsets = Vec::with_capacity(count);
    for _ in 0..count {
        assert_eq!(&data[at..at + 4], b"PK\x01\x02");
        offsets.push(u32_at(at + 42));
        at += 46 + u16_at(at + 28) + u16_at(at + 30) + u16_at(at + 32);
    }
    offsets.sort_unstable();
    offsets
}
