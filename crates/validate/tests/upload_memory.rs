//! A zip bomb costs bounded memory: allocations made while inspecting an
//! archive that would inflate to 1 GiB stay under 128 KiB (measured: ~89 KB: the
//! inflate buffer, the inflater's window, the entry table), because inflated
//! bytes are counted and dropped, never kept. Its own test binary: the
//! counting allocator is process-wide.

#![cfg(feature = "uploads")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::alloc::System;

use palisade_validate::{ArchiveErrorKind, ArchiveLimits, inspect_zip};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

mod support;
use support::zip_bytes::{deflate_zeros, raw_zip};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn zip_bomb_inspection_allocates_kilobytes_not_gigabytes() {
    // Attack: a zip bomb aimed at memory — 64 entries of 16 MiB of zeros.
    let (stream, size) = deflate_zeros(16 << 20);
    let names: Vec<String> = (0..64).map(|i| format!("part{i}.bin")).collect();
    let entries: Vec<(&str, &[u8], usize)> = names
        .iter()
        .map(|n| (n.as_str(), stream.as_slice(), size))
        .collect();
    let zip = raw_zip(&entries);
    let limits = ArchiveLimits {
        max_total_bytes: 48 << 20,
        ..ArchiveLimits::default()
    };

    let region = Region::new(GLOBAL);
    let error = inspect_zip(&zip, &limits).unwrap_err();
    let stats = region.change();

    assert_eq!(error.kind(), ArchiveErrorKind::TotalTooLarge);
    assert!(error.bytes_inflated() > 48 << 20);
    // Every byte allocated during the inspection, freed or not: an upper
    // bound on its peak.
    let allocated = stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize;
    assert!(
        allocated < 128 * 1024,
        "inspection allocated {allocated} bytes for {} inflated",
        error.bytes_inflated()
    );
}
