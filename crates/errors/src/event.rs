//! One vocabulary for security events, so a SIEM rule written for one
//! Palisade crate works for all of them.

use sha2::{Digest, Sha256};

/// The name of a security decision, logged as the `event` field of one
/// `tracing` event by the core that made the decision.
///
/// Names follow the [OWASP Application Logging Vocabulary] where it has one;
/// where it has none, the Palisade name is built the same way
/// (`<area>_<object>_<what happened>`) and marked "Palisade" below.
///
/// Every event uses the same field names, so a query never depends on the
/// crate that logged it:
///
/// | field | what |
/// |---|---|
/// | `event` | [`SecurityEvent::as_str`] |
/// | `reason` | a stable snake_case reason (`expired`, `bad_signature`, `missing_role`, ...) |
/// | `subject_hash` | [`SubjectHash`] of the user or account concerned, never the name itself |
/// | `client_ip` | the client address, where the core knows it (adapters also put it in the span) |
/// | `request_id` | set in the span by the adapters, which know it |
///
/// Never a secret, token, password, API key, cookie or body: the tests of
/// each core capture its events and look for the secrets they used.
///
/// [OWASP Application Logging Vocabulary]: https://cheatsheetseries.owasp.org/cheatsheets/Logging_Vocabulary_Cheat_Sheet.html
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityEvent {
    /// `authn_login_fail` (OWASP): a login attempt failed (bad password,
    /// unknown user).
    AuthnLoginFail,
    /// `authn_login_lock` (OWASP): a login attempt was refused before the
    /// password was checked, because the throttle or lockout holds it back.
    AuthnLoginLock,
    /// `authn_password_change` (OWASP): a password change was authorised
    /// (a reset token was redeemed; the caller stores the new hash).
    AuthnPasswordChange,
    /// `authn_password_change_fail` (OWASP): a password change was refused
    /// (a reset token that is malformed, unknown, expired, used or bound to
    /// an older password); `reason` says which.
    AuthnPasswordChangeFail,
    /// `authn_password_rehash` (Palisade): a verified password's stored
    /// hash is below the current scheme or parameters, so the caller is
    /// asked to store a fresh hash; `reason` says why.
    AuthnPasswordRehash,
    /// `authn_token_invalid` (Palisade): a presented token was refused
    /// (missing, malformed, bad signature, expired, wrong audience, revoked);
    /// `reason` says which.
    AuthnTokenInvalid,
    /// `authn_token_revoked` (OWASP): tokens or a refresh family were revoked
    /// (logout, logout everywhere, a detected reuse).
    AuthnTokenRevoked,
    /// `authn_token_reuse` (OWASP): a refresh token already rotated away was
    /// presented again — the signature of a stolen token.
    AuthnTokenReuse,
    /// `authz_fail` (OWASP): an authenticated caller lacked the role,
    /// permission or scope a resource requires.
    AuthzFail,
    /// `excess_rate_limit_exceeded` (OWASP): a rate limit refused a request.
    ExcessRateLimitExceeded,
    /// `input_validation_fail` (OWASP): input was refused by a validator or
    /// a parser (an unusable forwarding header, an oversized body).
    InputValidationFail,
    /// `malicious_cors` (OWASP): a cross-origin request from an origin, method
    /// or header the policy does not allow.
    MaliciousCors,
    /// `session_created` (OWASP): a login started a refresh family.
    SessionCreated,
    /// `session_renewed` (OWASP): a refresh token was rotated.
    SessionRenewed,
    /// `session_expired` (OWASP): a session ended because it expired or was
    /// pushed out of a bounded store; `reason` says which.
    SessionExpired,
    /// `session_use_after_expire` (OWASP): a refresh token of an ended or
    /// unknown family was presented.
    SessionUseAfterExpire,
    /// `store_unavailable` (Palisade): a store (Redis, memory) could not
    /// answer, and the decision followed its fail mode.
    StoreUnavailable,
    /// `store_recovered` (Palisade): a store answers again after a failure.
    StoreRecovered,
    /// `store_eviction` (Palisade): a bounded memory store dropped live
    /// security state to stay within its bound.
    StoreEviction,
    /// `sys_crash` (OWASP): a handler panicked; the request got a 500.
    SysCrash,
    /// `sys_misconfigured` (Palisade): a component is used in a way that
    /// cannot work (a layer missing its prerequisite), so it refuses.
    SysMisconfigured,
}

impl SecurityEvent {
    /// Every event, for exhaustive tests and metrics registration.
    pub const ALL: [SecurityEvent; 21] = [
        SecurityEvent::AuthnLoginFail,
        SecurityEvent::AuthnLoginLock,
        SecurityEvent::AuthnPasswordChange,
        SecurityEvent::AuthnPasswordChangeFail,
        SecurityEvent::AuthnPasswordRehash,
        SecurityEvent::AuthnTokenInvalid,
        SecurityEvent::AuthnTokenRevoked,
        SecurityEvent::AuthnTokenReuse,
        SecurityEvent::AuthzFail,
        SecurityEvent::ExcessRateLimitExceeded,
        SecurityEvent::InputValidationFail,
        SecurityEvent::MaliciousCors,
        SecurityEvent::SessionCreated,
        SecurityEvent::SessionRenewed,
        SecurityEvent::SessionExpired,
        SecurityEvent::SessionUseAfterExpire,
        SecurityEvent::StoreUnavailable,
        SecurityEvent::StoreRecovered,
        SecurityEvent::StoreEviction,
        SecurityEvent::SysCrash,
        SecurityEvent::SysMisconfigured,
    ];

    /// The stable name logged as the `event` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            SecurityEvent::AuthnLoginFail => "authn_login_fail",
            SecurityEvent::AuthnLoginLock => "authn_login_lock",
            SecurityEvent::AuthnPasswordChange => "authn_password_change",
            SecurityEvent::AuthnPasswordChangeFail => "authn_password_change_fail",
            SecurityEvent::AuthnPasswordRehash => "authn_password_rehash",
            SecurityEvent::AuthnTokenInvalid => "authn_token_invalid",
            SecurityEvent::AuthnTokenRevoked => "authn_token_revoked",
            SecurityEvent::AuthnTokenReuse => "authn_token_reuse",
            SecurityEvent::AuthzFail => "authz_fail",
            SecurityEvent::ExcessRateLimitExceeded => "excess_rate_limit_exceeded",
            SecurityEvent::InputValidationFail => "input_validation_fail",
            SecurityEvent::MaliciousCors => "malicious_cors",
            SecurityEvent::SessionCreated => "session_created",
            SecurityEvent::SessionRenewed => "session_renewed",
            SecurityEvent::SessionExpired => "session_expired",
            SecurityEvent::SessionUseAfterExpire => "session_use_after_expire",
            SecurityEvent::StoreUnavailable => "store_unavailable",
            SecurityEvent::StoreRecovered => "store_recovered",
            SecurityEvent::StoreEviction => "store_eviction",
            SecurityEvent::SysCrash => "sys_crash",
            SecurityEvent::SysMisconfigured => "sys_misconfigured",
        }
    }

    /// Whether OWASP's vocabulary defines this name (otherwise it is Palisade's).
    pub const fn is_owasp(self) -> bool {
        !matches!(
            self,
            SecurityEvent::AuthnPasswordRehash
                | SecurityEvent::AuthnTokenInvalid
                | SecurityEvent::StoreUnavailable
                | SecurityEvent::StoreRecovered
                | SecurityEvent::StoreEviction
                | SecurityEvent::SysMisconfigured
        )
    }

    /// The event with this name, if it is one of Palisade's.
    pub fn from_name(name: &str) -> Option<SecurityEvent> {
        SecurityEvent::ALL
            .into_iter()
            .find(|event| event.as_str() == name)
    }
}

impl std::fmt::Display for SecurityEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short, stable stand-in for a user id or submitted username in logs: the
/// first 8 bytes of `SHA-256("palisade-subject:" || subject)`, in hex.
///
/// Usernames are personal data and attacker-chosen text (log injection); the
/// hash lets an operator follow one account across every Palisade crate's
/// events (the same input gives the same hash everywhere) without logging
/// it. It is not a secret: anyone who guesses the name can recompute it.
///
/// ```
/// use palisade_errors::SubjectHash;
///
/// let hash = SubjectHash::of("alice@example.com");
/// assert_eq!(hash.as_str().len(), 16);
/// assert_eq!(hash, SubjectHash::of("alice@example.com"));
/// assert!(!hash.to_string().contains("alice"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectHash([u8; 16]);

impl SubjectHash {
    /// The hash of `subject`.
    pub fn of(subject: &str) -> SubjectHash {
        let digest = Sha256::new()
            .chain_update(b"palisade-subject:")
            .chain_update(subject.as_bytes())
            .finalize();
        let mut text = [0u8; 16];
        for (pair, byte) in text.chunks_exact_mut(2).zip(digest.iter()) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        SubjectHash(text)
    }

    /// The 16 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        // Invariant: every byte was taken from HEX, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl std::fmt::Display for SubjectHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for SubjectHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubjectHash({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for event in SecurityEvent::ALL {
            let name = event.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(SecurityEvent::from_name(name), Some(event));
        }
        assert_eq!(SecurityEvent::from_name("login_failed"), None);
    }

    #[test]
    fn owasp_names_are_the_vocabulary_s() {
        // The OWASP Logging Vocabulary names this crate uses, copied from the
        // cheat sheet: a rename here would break SIEM rules written for it.
        let owasp = [
            "authn_login_fail",
            "authn_login_lock",
            "authn_password_change",
            "authn_password_change_fail",
            "authn_token_revoked",
            "authn_token_reuse",
            "authz_fail",
            "excess_rate_limit_exceeded",
            "input_validation_fail",
            "malicious_cors",
            "session_created",
            "session_renewed",
            "session_expired",
            "session_use_after_expire",
            "sys_crash",
        ];
        for event in SecurityEvent::ALL {
            assert_eq!(owasp.contains(&event.as_str()), event.is_owasp(), "{event}");
        }
    }

    #[test]
    fn subject_hash_is_stable_and_hides_the_subject() {
        // A known answer: other implementations (a SIEM enrichment script)
        // must be able to compute the same value.
        let hash = SubjectHash::of("alice");
        let digest = Sha256::digest(b"palisade-subject:alice");
        let expected: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash.as_str(), expected);
        assert_ne!(SubjectHash::of("alice"), SubjectHash::of("alice "));
        assert!(!format!("{hash:?}").contains("alice"));
    }
}
