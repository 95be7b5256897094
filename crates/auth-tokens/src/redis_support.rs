//! What the Redis stores of this crate share: from `palisade_errors::redis`
//! the connection (single node or Cluster), calls with a timeout and the
//! per-subject hash tag; here the key prefix rule and the epoch sentinels'
//! layout, one per Cluster slot.

use std::sync::Arc;

use palisade_errors::redis::{SLOTS, tag_slot as slot};
pub(crate) use palisade_errors::redis::{
    connect as connection, connect_lazy as lazy_connection, each, hex, invoke, log_failure, query,
    query_pipeline, subject_key_prefix,
};

use crate::config::{ConfigError, ConfigErrorKind};
use crate::refresh::token_hash;

/// `prefix`, if it passes the shared key-prefix rule
/// ([`palisade_errors::check_key_prefix`]: not empty, no braces, whitespace
/// or control characters).
pub(crate) fn key_prefix(prefix: &str) -> Result<Arc<str>, ConfigError> {
    palisade_errors::check_key_prefix(prefix).map_err(|problem| {
        ConfigError::new(
            ConfigErrorKind::InvalidKeyPrefix,
            format!(
                "Redis key prefix {:?} {problem}",
                prefix.chars().take(64).collect::<String>()
            ),
        )
    })?;
    Ok(Arc::from(prefix))
}

/// For each Cluster slot, the smallest `n` whose tag `e<n>` hashes to it:
/// the hash tag of that slot's epoch sentinel. Found once (about 170,000
/// CRC16 of a few bytes, a few milliseconds).
fn epoch_tags() -> &'static [u32] {
    static TAGS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![u32::MAX; usize::from(SLOTS)];
        let mut missing = usize::from(SLOTS);
        let mut n = 0u32;
        while missing > 0 {
            let entry = &mut tags[usize::from(slot(&format!("e{n}")))];
            if *entry == u32::MAX {
                *entry = n;
                missing -= 1;
            }
            n += 1;
        }
        tags
    })
}

/// `<prefix>:{e<n>}:epoch`, the epoch sentinel of the Cluster slot that
/// `subject`'s keys (`<prefix>:{<16 hex>}…`) live on: the tag `e<n>` is
/// chosen to hash to the same slot, so a script can touch both (Cluster
/// refuses only keys of different slots).
pub(crate) fn epoch_key(prefix: &str, subject: &str) -> String {
    let digest = token_hash(subject);
    let (tag, _) = digest.split_at(8);
    epoch_key_of_slot(prefix, slot(&hex(tag)))
}

/// The epoch sentinel of Cluster slot `slot`.
pub(crate) fn epoch_key_of_slot(prefix: &str, slot: u16) -> String {
    let n = epoch_tags()[usize::from(slot % SLOTS)];
    format!("{prefix}:{{e{n}}}:epoch")
}

/// Every slot's epoch sentinel, in slot order.
pub(crate) fn epoch_keys(prefix: &str) -> impl Iterator<Item = String> + '_ {
    (0..SLOTS).map(move |slot| epoch_key_of_slot(prefix, slot))
}

/// The SHA-256 of an id, in hex: ids never appear in Redis as themselves.
pub(crate) fn hashed_id(id: &str) -> String {
    hex(&token_hash(id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_an_epoch_sentinel_on_that_slot() {
        for (index, &n) in epoch_tags().iter().enumerate() {
            assert_eq!(usize::from(slot(&format!("e{n}"))), index);
        }
        let key = epoch_key("p", "user-42");
        let subject = subject_key_prefix("p", "user-42");
        let tag = |key: &str| {
            let (_, rest) = key.split_once('{').unwrap();
            let (tag, _) = rest.split_once('}').unwrap();
            tag.to_owned()
        };
        assert_eq!(slot(&tag(&key)), slot(&tag(&subject)));
    }
}
