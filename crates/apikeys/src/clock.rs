//! Time, injected: expiry and rotation grace are tested with
//! [`ManualClock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the current time comes from, in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        unix_secs(SystemTime::now())
    }
}

/// A clock that moves only when told to: for tests. Clones share the time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use palisade_apikeys::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// assert_eq!(clock.now(), ManualClock::from_unix_secs(1_700_000_000).now());
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), 1_700_000_030);
/// clock.set(UNIX_EPOCH + Duration::from_secs(1_700_000_000)); // may go back
/// assert_eq!(clock.now(), 1_700_000_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start` (whole seconds; a time before the epoch
    /// stands at the epoch).
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock::from_unix_secs(unix_secs(start))
    }

    /// A clock standing at `secs` seconds since the Unix epoch.
    pub fn from_unix_secs(secs: u64) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(secs)),
        }
    }

    /// Moves the clock forward by `by` (whole seconds).
    pub fn advance(&self, by: Duration) {
        let secs = by.as_secs();
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(secs))
            });
    }

    /// Sets the clock to `to`, forwards or backwards.
    pub fn set(&self, to: SystemTime) {
        self.now.store(unix_secs(to), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

pub(crate) fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}
