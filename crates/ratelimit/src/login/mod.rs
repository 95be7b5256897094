//! Login throttling and lockout that cannot be turned against the real user.
//!
//! [`LoginThrottle::check`] runs **before** the password is verified and
//! answers [`Allow`](LoginDecision::Allow), [`Challenge`](LoginDecision::Challenge)
//! (a CAPTCHA or second factor first) or 429 with `Retry-After` straight
//! away (the server never sleeps, so a throttled attacker costs no worker).
//! It applies three rules:
//!
//! 1. **Per (account, IP)** — online guessing: the first
//!    [`free_failures_per_account_ip`](LoginThrottleConfig::free_failures_per_account_ip)
//!    (5) failures are free; after the n-th consecutive failure (n ≥ 5) that
//!    account is refused to that IP for 2^(n−5) seconds (1, 2, 4, 8 s, ...),
//!    capped at [`max_backoff_secs`](LoginThrottleConfig::max_backoff_secs)
//!    (1 h).
//! 2. **Per account, all IPs** — distributed guessing: once the account has
//!    had [`account_failure_threshold`](LoginThrottleConfig::account_failure_threshold)
//!    (20) failures per [`account_window_secs`](LoginThrottleConfig::account_window_secs)
//!    (15 min), the account is under attack: one attempt per
//!    [`account_slowdown_secs`](LoginThrottleConfig::account_slowdown_secs)
//!    (10 s) goes on as usual and every other one is answered
//!    [`Challenge`](LoginDecision::Challenge). It is never a lock: a botnet
//!    that keeps the account under attack makes its own guesses cost a
//!    challenge each, and the real user on a new device gets the same
//!    challenge, passes it and logs in. A device that logged into the
//!    account within [`trusted_device_ttl_secs`](LoginThrottleConfig::trusted_device_ttl_secs)
//!    (30 days) skips the rule. (With
//!    [`challenge_during_slowdown`](LoginThrottleConfig::challenge_during_slowdown)
//!    off, for an application with no challenge to offer, the other
//!    attempts get 429 instead, as a plain slowdown.)
//! 3. **Per IP, all accounts** — credential stuffing: an IP gets
//!    [`ip_failures_per_window`](LoginThrottleConfig::ip_failures_per_window)
//!    (100) failures per [`ip_window_secs`](LoginThrottleConfig::ip_window_secs)
//!    (24 h).
//!
//! The throttle knows nothing about which accounts exist: it is keyed by the
//! username *as submitted*, so an unknown username is counted and refused
//! exactly like a real one and 429-versus-401 reveals nothing.
//!
//! # Trusted devices, not addresses
//!
//! An exemption from the account-wide rule must be something an unknown
//! username can have too, or something the attacker cannot present;
//! otherwise the answers tell real names from unknown ones. A trusted *IP*
//! fails this: once the real user has logged in from a shared address (an
//! office, a carrier NAT), a guesser at that address would be let through
//! on the real name and slowed on an unknown one, during an attack on both.
//! So an address is never trusted: the only exemption is a *device token*,
//! a random value the application sets (in a signed cookie, say) on a
//! successful login and passes to `check` and `record_success` as `device`.
//! A guesser does not hold the real user's token, and an unknown name has
//! no trusted token at all, so whatever address a guess comes from, the
//! real name and an unknown one get the same answers and the same
//! `Retry-After`. The real user at a new address with her usual device is
//! still let straight through; on a new device she gets the challenge.
//!
//! A token can be stolen (a cookie, or the token a former intruder got with
//! a login of their own), so the pass is not unconditional: each attempt
//! with a trusted device counts against it too, and after
//! [`trusted_device_failures`](LoginThrottleConfig::trusted_device_failures)
//! (10) since its last success the device is slowed like any other until
//! its next success. An application also ends a device's trust when the
//! password changes, by binding the token it passes to the credential (see
//! palisade-server's login).
//!
//! What is left: a success resets its own (account, IP) backoff and gives
//! one attempt back to the account's budget, so a guesser at the same
//! address as the real user who watches its own backoff on a name can tell
//! that someone just logged into it from there. That needs the right
//! password typed at that address while the guesser watches.
//!
//! # A success does not end an attack
//!
//! [`record_success`](LoginThrottle::record_success) forgets only its own
//! (account, IP) failures and gives back the successful attempt itself. It
//! does not clear the account's budget: the failures from other addresses
//! stay, so a distributed attack in progress stays slowed and challenged
//! (were every login of the real user to wipe the budget, each would give
//! the botnet a fresh 20 unchallenged guesses). The budget empties by
//! itself at most one window after the failures stop.
//!
//! # Counting attempts, not reported failures
//!
//! `check` counts the attempt it lets through as a failure right away, in the
//! same atomic step as the decision; [`record_success`](LoginThrottle::record_success)
//! takes it back. Were failures counted only when reported after the
//! (deliberately slow) password check, an attacker could send a thousand
//! guesses in parallel and all of them would pass `check` before the first
//! failure was recorded. An attempt that never reaches the password check
//! (the client hangs up) therefore counts as a failure: the strict side.
//!
//! The two rate rules are GCRA budgets (the algorithm of the request
//! limiter): "20 per 15 minutes" is a budget of 20 that refills by one every
//! 45 s, so a burst of 20 failures starts the slowdown, which lasts as long as
//! failures keep coming faster than the budget refills and ends at most one
//! window after they stop.
//!
//! # Where the state lives
//!
//! [`MemoryLoginStore`] (bounded, one process) or, with the `redis` feature,
//! `RedisLoginStore` (shared by every instance, Redis server time). When the
//! store cannot answer the throttle fails closed by default: 503
//! `unavailable`, because letting every guess through while Redis is down is
//! what a brute-force attacker wants.
//!
//! ```
//! use std::net::IpAddr;
//! use palisade_ratelimit::login::{LoginThrottle, LoginThrottleConfig, MemoryLoginStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let throttle = LoginThrottle::new(MemoryLoginStore::new(), LoginThrottleConfig::default())?;
//! let ip: IpAddr = "203.0.113.7".parse()?;
//!
//! // The device token from this browser's signed cookie, if it has one.
//! let device: Option<&str> = None;
//! // Before the password is even looked at; a 429 carries Retry-After.
//! let decision = throttle.check("alice@example.com", ip, device).await?;
//! if decision.is_challenge() {
//!     // Ask for a CAPTCHA or second factor and look at the password only
//!     // once it is passed (here: answer "challenge required" and return).
//! }
//! let password_ok = false; // verify the password here
//! if password_ok {
//!     // Set (or renew) the device token and trust it from now on.
//!     throttle.record_success("alice@example.com", ip, Some("new-device-token")).await;
//! } else {
//!     throttle.record_failure("alice@example.com", ip).await;
//! }
//! # Ok(())
//! # }
//! ```

mod config;
pub(crate) mod decide;
mod keys;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;
mod store;
mod throttle;

pub use config::{LoginRules, LoginThrottleConfig};
pub use decide::ThrottleReason;
pub use keys::{AccountKey, DeviceKey, IdHasher, IpKey, MIN_ID_SECRET_LEN};
pub use memory::{DEFAULT_MAX_LOGIN_ENTRIES, MemoryLoginStore};
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_LOGIN_KEY_PREFIX, DEFAULT_LOGIN_REDIS_TIMEOUT, RedisLoginStore};
#[cfg(feature = "test-util")]
pub use store::FailingLoginStore;
pub use store::{LoginStore, LoginVerdict};
pub use throttle::{LoginDecision, LoginThrottle};
