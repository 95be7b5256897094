//! The memory store under the shared store behaviour tests, and the usage
//! batching limits.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[macro_use]
#[path = "shared/store_behaviour.rs"]
mod store_behaviour;

use std::time::Duration;

use palisade_apikeys::{ApiKeys, ManualClock, MemoryKeyStore};
use store_behaviour::{Fixture, pepper};

struct Memory;

impl Fixture for Memory {
    type Store = MemoryKeyStore<ManualClock>;

    async fn store(_: &str, clock: ManualClock) -> Option<Self::Store> {
        Some(MemoryKeyStore::with_clock(clock))
    }
}

store_behaviour_tests!(memory_store_behaviour, Memory);

#[test]
fn usage_limits_out_of_range_are_config_errors() {
    let keys = || ApiKeys::new(MemoryKeyStore::new(), pepper());
    for interval in [Duration::ZERO, Duration::from_secs(3601)] {
        let error = keys().with_usage_flush_interval(interval).unwrap_err();
        assert_eq!(
            error.kind(),
            palisade_apikeys::ConfigErrorKind::InvalidLimit
        );
    }
    for max in [0, 1_000_001] {
        let error = keys().with_max_pending_usage(max).unwrap_err();
        assert_eq!(
            error.kind(),
            palisade_apikeys::ConfigErrorKind::InvalidLimit
        );
    }
}
