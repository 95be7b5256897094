//! A simple detector of credential stuffing and user enumeration: many
//! accounts failing to log in, or many unknown usernames, from one client
//! network (one IPv4 address, one IPv6 /56) within a minute raise one
//! `warn`-level alert per network and window.
//!
//! The login throttle already slows each account and address down; this
//! tells the operator that an attack is under way.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use palisade_errors::{SecurityEvent, SubjectHash};

/// The window, in seconds.
pub const WINDOW_SECS: u64 = 60;
/// Failures in a window that raise an alert.
pub const THRESHOLD: usize = 20;
/// Networks tracked at once (past it, the oldest windows are dropped).
pub const MAX_NETWORKS: usize = 10_000;

/// What kind of attack an alert reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attack {
    /// Many different existing accounts failing from one network.
    CredentialStuffing,
    /// Many unknown usernames tried from one network.
    Enumeration,
}

impl Attack {
    /// The alert's `reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Attack::CredentialStuffing => "credential_stuffing",
            Attack::Enumeration => "user_enumeration",
        }
    }
}

#[derive(Default)]
struct Window {
    started: u64,
    /// Hashes of the accounts (or unknown names) that failed.
    accounts: HashSet<SubjectHash>,
    alerted: bool,
}

/// The detector (share one per process).
#[derive(Default)]
pub struct Detector {
    windows: Mutex<HashMap<(IpAddr, Attack), Window>>,
    stuffing_alerts: AtomicU64,
    enumeration_alerts: AtomicU64,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("stuffing_alerts", &self.alerts(Attack::CredentialStuffing))
            .field("enumeration_alerts", &self.alerts(Attack::Enumeration))
            .finish_non_exhaustive()
    }
}

/// The network an address is counted in: the address for IPv4, its /56 for
/// IPv6 (a subscriber chooses freely inside its prefix).
pub fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 72) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

impl Detector {
    /// An empty detector.
    pub fn new() -> Detector {
        Detector::default()
    }

    /// Alerts raised so far of `attack`.
    pub fn alerts(&self, attack: Attack) -> u64 {
        match attack {
            Attack::CredentialStuffing => self.stuffing_alerts.load(Ordering::Relaxed),
            Attack::Enumeration => self.enumeration_alerts.load(Ordering::Relaxed),
        }
    }

    /// Records a failed login of `account` (normalised, or the raw name when
    /// invalid) from `ip` at `now` (Unix seconds). Returns the attack it
    /// raised an alert for, once per network and window.
    pub fn record_failure(
        &self,
        account: &str,
        known: bool,
        ip: IpAddr,
        now: u64,
    ) -> Option<Attack> {
        let attack = if known {
            Attack::CredentialStuffing
        } else {
            Attack::Enumeration
        };
        let net = network(ip);
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_NETWORKS && !windows.contains_key(&(net, attack)) {
            windows.retain(|_, window| now.saturating_sub(window.started) < WINDOW_SECS);
            if windows.len() >= MAX_NETWORKS {
                // Still full of live windows: drop them all rather than grow
                // (an attacker spreading over 10 000 networks is past what
                // this detector reports anyway).
                windows.clear();
            }
        }
        let window = windows.entry((net, attack)).or_default();
        if now.saturating_sub(window.started) >= WINDOW_SECS {
            *window = Window {
                started: now,
                ..Window::default()
            };
        }
        window.accounts.insert(SubjectHash::of(account));
        if window.alerted || window.accounts.len() < THRESHOLD {
            return None;
        }
        window.alerted = true;
        let distinct = window.accounts.len();
        drop(windows);
        match attack {
            Attack::CredentialStuffing => self.stuffing_alerts.fetch_add(1, Ordering::Relaxed),
            Attack::Enumeration => self.enumeration_alerts.fetch_add(1, Ordering::Relaxed),
        };
        tracing::warn!(
            event = SecurityEvent::AuthnLoginFail.as_str(),
            reason = attack.as_str(),
            alert = true,
            client_network = %net,
            accounts = distinct,
            window_secs = WINDOW_SECS,
            "alert: {} suspected from one network",
            attack.as_str()
        );
        Some(attack)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use palisade_errors::testing::EventCapture;

    use super::*;

    const T0: u64 = 1_700_000_000;

    #[test]
    fn enumeration_from_one_slash_56_raises_exactly_one_alert() {
        // Attack: user enumeration spread over the addresses of one /56.
        let detector = Detector::new();
        let capture = EventCapture::new();
        {
            let _guard = capture.set_default();
            let mut raised = Vec::new();
            for n in 0..30u64 {
                let ip: IpAddr = format!("2001:db8:0:{:x}::{:x}", n % 200, n + 1)
                    .parse()
                    .unwrap();
                let name = format!("nobody-{n}");
                raised.extend(detector.record_failure(&name, false, ip, T0 + n));
            }
            assert_eq!(raised, [Attack::Enumeration]);
        }
        assert_eq!(detector.alerts(Attack::Enumeration), 1);
        assert_eq!(detector.alerts(Attack::CredentialStuffing), 0);
        let alerts = capture.named(SecurityEvent::AuthnLoginFail);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].field("reason"), Some("user_enumeration"));
        assert_eq!(alerts[0].field("client_network"), Some("2001:db8::"));
        capture.assert_absent("nobody-");
    }

    #[test]
    fn nineteen_failures_or_a_slow_trickle_raise_nothing() {
        let detector = Detector::new();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for n in 0..19u64 {
            assert_eq!(
                detector.record_failure(&format!("u{n}"), false, ip, T0),
                None
            );
        }
        // One name retried many times is the throttle's business, not this.
        for _ in 0..50 {
            assert_eq!(detector.record_failure("u0", true, ip, T0), None);
        }
        // 40 names over 40 minutes: never 20 in one window.
        let slow = Detector::new();
        for n in 0..40u64 {
            assert_eq!(
                slow.record_failure(&format!("v{n}"), false, ip, T0 + n * 60),
                None
            );
        }
        assert_eq!(slow.alerts(Attack::Enumeration), 0);
    }

    #[test]
    fn stuffing_of_known_accounts_alerts_per_network_and_window() {
        // Attack: credential stuffing, a leaked list tried account by account.
        let detector = Detector::new();
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        for n in 0..25u64 {
            detector.record_failure(&format!("user{n}"), true, a, T0 + n);
            detector.record_failure(&format!("user{n}"), true, b, T0 + n);
        }
        // Two IPv4 addresses are two networks: one alert each.
        assert_eq!(detector.alerts(Attack::CredentialStuffing), 2);
        // A new window alerts again.
        for n in 0..20u64 {
            detector.record_failure(&format!("user{n}"), true, a, T0 + 120 + n);
        }
        assert_eq!(detector.alerts(Attack::CredentialStuffing), 3);
    }

    #[test]
    fn networks_group_ipv6_by_slash_56_and_ipv4_by_address() {
        assert_eq!(
            network("2001:db8:0:ff12:1::9".parse().unwrap()),
            "2001:db8:0:ff00::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            network("192.0.2.9".parse().unwrap()),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
    }
}
