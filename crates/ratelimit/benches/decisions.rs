//! A fixed number of keyed decisions, for counting instructions: noisy
//! machines make nanoseconds unreliable, instruction counts are not.
//!
//! ```text
//! cargo bench -p palisade-ratelimit --bench decisions --no-run
//! valgrind --tool=callgrind target/release/deps/decisions-* palisade 200000
//! valgrind --tool=callgrind target/release/deps/decisions-* palisade 400000
//! ```
//!
//! Instructions per decision = the difference of the two totals / 200,000
//! (the setup, 10k keys inserted, cancels out). `governor` runs the same
//! decisions through governor's keyed limiter; `palisade3` uses a policy of
//! three quotas. Without arguments (as `cargo bench` runs it) it does nothing.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on stdout

use std::hint::black_box;
use std::num::NonZeroU32;

use governor::{Quota as GovernorQuota, RateLimiter as Governor};
use palisade_ratelimit::{MemoryStore, Mode, Policy};

const KEYS: usize = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(side), Some(count)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        println!("decisions: usage: decisions palisade|palisade3|governor COUNT");
        return;
    };
    let count: usize = count;
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("ip4:10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    match side.as_str() {
        "palisade" | "palisade3" => {
            let policy = if side == "palisade" {
                Policy::parse(["1000000/second"]).unwrap()
            } else {
                Policy::parse(["1000000/second", "10000000/minute", "1000000000/day"]).unwrap()
            };
            let store = MemoryStore::new().with_max_entries(1_000_000);
            for key in &keys {
                store.decide_now(key, &policy, 1, Mode::Consume);
            }
            let mut allowed = 0usize;
            for i in 0..count {
                let decision = store.decide_now(&keys[i % KEYS], &policy, 1, Mode::Consume);
                allowed += usize::from(black_box(decision).allowed);
            }
            println!("{side}: {allowed} of {count} admitted");
        }
        "governor" => {
            let quota = GovernorQuota::per_second(NonZeroU32::new(1_000_000).unwrap());
            let governor = Governor::keyed(quota);
            for key in &keys {
                let _ = governor.check_key(key);
            }
            let mut allowed = 0usize;
            for i in 0..count {
                allowed += usize::from(black_box(governor.check_key(&keys[i % KEYS]).is_ok()));
            }
            println!("governor: {allowed} of {count} admitted");
        }
        other => println!("decisions: unknown side {other:?}"),
    }
}
