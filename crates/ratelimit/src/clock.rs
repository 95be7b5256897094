//! Time, injected: every time-based rule is tested with [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: microseconds since the Unix epoch.
///
/// Microseconds, not nanoseconds, so that the same arithmetic runs exactly in
/// Redis' Lua (whose numbers are doubles, exact up to 2^53: ~285 years of
/// microseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded up.
    pub const fn as_secs_ceil(self) -> u64 {
        self.0.div_ceil(1_000_000)
    }

    /// This time plus `duration` (saturating).
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(micros(duration)))
    }
}

impl From<SystemTime> for Timestamp {
    /// Whole microseconds since the epoch; a time before 1970 is the epoch.
    fn from(time: SystemTime) -> Timestamp {
        Timestamp(micros(time.duration_since(UNIX_EPOCH).unwrap_or_default()))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(time.0)
    }
}

/// A duration in whole microseconds, saturating at `u64::MAX`.
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Where the current time comes from.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock before 1970 is a broken host; treat it as the epoch rather
        // than panic (limits then err on the strict side).
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(micros(since_epoch))
    }
}

/// The wall clock read through the CPU's timestamp counter (via `quanta`, as
/// governor does): anchored to [`SystemClock`] once per process, then about
/// 10 ns a read instead of a `clock_gettime` call (35 ns on the 2-core CI
/// machines). It follows the timestamp counter, not NTP adjustments, so it
/// can drift from wall time by parts per million over a long uptime: right
/// for deciding limits, not for showing timestamps. The default clock of
/// [`MemoryStore`](crate::MemoryStore) and [`RateLimiter`](crate::RateLimiter).
#[derive(Clone, Copy, Debug, Default)]
pub struct FastClock;

struct Anchor {
    clock: quanta::Clock,
    start_raw: u64,
    start_micros: u64,
}

impl Clock for FastClock {
    fn now(&self) -> Timestamp {
        static ANCHOR: OnceLock<Anchor> = OnceLock::new();
        let anchor = ANCHOR.get_or_init(|| {
            let clock = quanta::Clock::new();
            Anchor {
                start_raw: clock.raw(),
                start_micros: SystemClock.now().as_micros(),
                clock,
            }
        });
        let nanos = anchor
            .clock
            .delta_as_nanos(anchor.start_raw, anchor.clock.raw());
        Timestamp(anchor.start_micros.saturating_add(nanos / 1000))
    }
}

/// A clock that moves only when told to: for tests. Driven like the test
/// clock of every Palisade core (see `CONTRIBUTING.md`), in
/// [`SystemTime`]s; it reads as microseconds ([`Timestamp`]).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use palisade_ratelimit::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// let same = ManualClock::from_unix_secs(1_700_000_000);
/// assert_eq!(clock.now(), same.now());
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), Timestamp(1_700_000_030_000_000));
/// clock.set(UNIX_EPOCH + Duration::from_secs(1_700_000_000)); // may go back
/// assert_eq!(clock.now(), same.now());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start` (a time before 1970 counts as the epoch).
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(Timestamp::from(start).0)),
        }
    }

    /// A clock standing `secs` seconds after the Unix epoch.
    pub fn from_unix_secs(secs: u64) -> ManualClock {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(micros(by), Ordering::SeqCst);
    }

    /// Sets the clock (it may go backwards, as wall clocks do).
    pub fn set(&self, to: SystemTime) {
        self.now.store(Timestamp::from(to).0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}
