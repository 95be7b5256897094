//! What login state is keyed by: keyed hashes of what users typed (never the
//! text itself) and client addresses grouped the way attackers get them.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv6Addr};

use crate::{ConfigError, ConfigErrorKind};

/// Shortest secret [`IdHasher::from_secret`] accepts: 128 bits.
pub const MIN_ID_SECRET_LEN: usize = 16;

/// Domain separation: an account name and a device id that happen to be the
/// same string must not share state.
const ACCOUNT_DOMAIN: &[u8] = b"palisade-login-account\0";
const DEVICE_DOMAIN: &[u8] = b"palisade-login-device\0";
#[cfg(feature = "redis")]
const IP_DOMAIN: &[u8] = b"palisade-login-ip\0";

/// Turns submitted usernames and device ids into fixed-size store keys with
/// SipHash-2-4 under a secret 128-bit key.
///
/// Why keyed: a store key is shared by everything that hashes to it. With a
/// public hash (FNV, an unkeyed SHA) an attacker could register an account
/// whose name collides with the victim's, log into it successfully, and so
/// reset the victim's failure counters and mark the attacker's addresses as
/// trusted for the victim. With a secret key, collisions cannot be aimed
/// (and accidental ones, at 64 bits, only merge two accounts' counters).
/// The key also keeps usernames from being recovered from a Redis dump or a
/// log line by hashing guesses.
///
/// Every process that shares a store must use the same key:
/// [`IdHasher::from_secret`] with one configured secret for Redis;
/// [`IdHasher::random`] is right for a store that lives in one process.
///
/// ```
/// use palisade_ratelimit::login::IdHasher;
///
/// let hasher = IdHasher::from_secret(b"a dedicated 32-byte login secret")?;
/// let key = hasher.account("alice@example.com");
/// assert_eq!(key, hasher.account("alice@example.com"));
/// assert_ne!(key, hasher.account("bob@example.com"));
/// assert!(!key.to_string().contains("alice"));
/// # Ok::<(), palisade_ratelimit::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct IdHasher {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdHasher { key: [redacted] }")
    }
}

impl IdHasher {
    /// A hasher with a fresh random key from the operating system (through
    /// `std`'s `RandomState`): for stores that live in one process.
    pub fn random() -> IdHasher {
        let state = RandomState::new();
        let mut first = state.build_hasher();
        first.write_u64(0);
        let mut second = state.build_hasher();
        second.write_u64(1);
        IdHasher {
            k0: first.finish(),
            k1: second.finish(),
        }
    }

    /// A hasher whose key is derived from `secret`, so every instance
    /// configured with the same secret computes the same keys. Use a
    /// dedicated random secret of at least 16 bytes (not a signing key that
    /// is used elsewhere).
    pub fn from_secret(secret: &[u8]) -> Result<IdHasher, ConfigError> {
        if secret.len() < MIN_ID_SECRET_LEN {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidSecret,
                format!(
                    "login id secret is {} bytes; at least {MIN_ID_SECRET_LEN} are needed \
                 so that store keys cannot be predicted",
                    secret.len()
                ),
            ));
        }
        // Compress the secret into a 128-bit key. SipHash under public keys is
        // not collision resistant, but the secret is high-entropy and what is
        // needed is only that the derived key is unknown without it.
        let mut first = SipHash24::new(0x7061_6c69_7361_6465, 0x6c6f_6769_6e2d_6b30);
        first.write(secret);
        let mut second = SipHash24::new(0x7061_6c69_7361_6465, 0x6c6f_6769_6e2d_6b31);
        second.write(secret);
        Ok(IdHasher {
            k0: first.finish(),
            k1: second.finish(),
        })
    }

    /// The key of an account name as submitted.
    pub fn account(&self, account: &str) -> AccountKey {
        AccountKey(self.hash(ACCOUNT_DOMAIN, account.as_bytes()))
    }

    /// The key of a device id.
    pub fn device(&self, device: &str) -> DeviceKey {
        DeviceKey(self.hash(DEVICE_DOMAIN, device.as_bytes()))
    }

    /// The keyed hash of a client address (the Redis hash tag of its
    /// budget, so that IPs, personal data, stay out of key names that
    /// Cluster routing and `redis-cli` show).
    #[cfg(feature = "redis")]
    pub(crate) fn ip(&self, ip: IpKey) -> u64 {
        self.hash(IP_DOMAIN, ip.to_string().as_bytes())
    }

    fn hash(&self, domain: &[u8], text: &[u8]) -> u64 {
        let mut hasher = SipHash24::new(self.k0, self.k1);
        hasher.write(domain);
        hasher.write(text);
        hasher.finish()
    }
}

/// The store key of one account name: a keyed 64-bit hash, shown as 16 hex
/// digits (what logs and Redis keys carry instead of the username).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountKey(u64);

impl AccountKey {
    /// The hash value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The store key of one device id: a keyed 64-bit hash, shown as 16 hex
/// digits. A device cookie is a bearer secret, so it is never stored or
/// logged as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceKey(u64);

impl DeviceKey {
    /// The hash value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A client address as the login rules count it.
///
/// IPv4 addresses (and IPv4-mapped IPv6 ones) count one by one. IPv6
/// addresses count by their /56 network: a single host is routinely given a
/// whole /56 or /64, so counting single IPv6 addresses would give an attacker 2^72
/// fresh budgets. The same grouping keeps a user's device trusted when its
/// privacy address rotates.
///
/// ```
/// use std::net::IpAddr;
/// use palisade_ratelimit::login::IpKey;
///
/// // Two /64s of the same /56: one client.
/// let a: IpAddr = "2001:db8:1:2:aaaa::1".parse()?;
/// let b: IpAddr = "2001:db8:1:7f:bbbb::2".parse()?;
/// assert_eq!(IpKey::from(a), IpKey::from(b));
/// assert_eq!(IpKey::from(a).to_string(), "2001:db8:1::/56");
///
/// let mapped: IpAddr = "::ffff:192.0.2.1".parse()?;
/// assert_eq!(IpKey::from(mapped).to_string(), "192.0.2.1");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpKey(IpAddr);

impl IpKey {
    /// The address (for IPv6, the first address of the /56).
    pub const fn addr(self) -> IpAddr {
        self.0
    }
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey(IpAddr::V4(v4)),
                None => {
                    // The /56, as the request limiter keys IPv6 (one customer
                    // gets a /56 or a /64 and can rotate through all of it).
                    let [a, b, c, d, ..] = v6.segments();
                    IpKey(IpAddr::V6(Ipv6Addr::new(a, b, c, d & 0xff00, 0, 0, 0, 0)))
                }
            },
        }
    }
}

impl std::fmt::Display for IpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/56"),
        }
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012), streaming.
///
/// `std` has no stable, non-deprecated SipHash with a caller-chosen key, and
/// a Redis key must be the same in every process, so the 40 lines are here,
/// checked against the reference test vectors below.
struct SipHash24 {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
    tail: u64,
    length: u64,
}

impl SipHash24 {
    fn new(k0: u64, k1: u64) -> SipHash24 {
        SipHash24 {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
            tail: 0,
            length: 0,
        }
    }

    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    fn compress(&mut self, word: u64) {
        self.v3 ^= word;
        self.round();
        self.round();
        self.v0 ^= word;
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.tail |= u64::from(byte) << (8 * (self.length % 8));
            self.length = self.length.wrapping_add(1);
            if self.length.is_multiple_of(8) {
                let word = self.tail;
                self.compress(word);
                self.tail = 0;
            }
        }
    }

    fn finish(mut self) -> u64 {
        let last = ((self.length & 0xff) << 56) | self.tail;
        self.compress(last);
        self.v2 ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

#[cfg(test)]
mod tests {
    use super::SipHash24;

    /// The reference key 00 01 .. 0f.
    fn reference(message: &[u8]) -> u64 {
        let key: Vec<u8> = (0u8..16).collect();
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(key.get(..8).unwrap_or_default());
        k1.copy_from_slice(key.get(8..).unwrap_or_default());
        let mut hasher = SipHash24::new(u64::from_le_bytes(k0), u64::from_le_bytes(k1));
        hasher.write(message);
        hasher.finish()
    }

    #[test]
    fn siphash_matches_the_reference_vectors() {
        // vectors_sip64 from the reference implementation: messages 00 01 ..
        // (n-1) under key 00 .. 0f, outputs as little-endian bytes.
        let message: Vec<u8> = (0u8..64).collect();
        let expected: [(usize, [u8; 8]); 4] = [
            (0, [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72]),
            (1, [0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74]),
            (8, [0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93]),
            (15, [0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1]),
        ];
        for (len, bytes) in expected {
            let input = message.get(..len).unwrap_or_default();
            assert_eq!(reference(input), u64::from_le_bytes(bytes), "length {len}");
        }
    }

    #[test]
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4: a second opinion
    fn siphash_agrees_with_std() {
        use std::hash::Hasher as _;
        for text in [
            "",
            "a",
            "alice@example.com",
            "a much longer account name, over 16 bytes",
        ] {
            let mut ours = SipHash24::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
            ours.write(text.as_bytes());
            let mut theirs =
                std::hash::SipHasher::new_with_keys(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
            theirs.write(text.as_bytes());
            assert_eq!(ours.finish(), theirs.finish(), "{text:?}");
        }
    }

    #[test]
    fn streaming_in_pieces_equals_one_write() {
        let mut whole = SipHash24::new(1, 2);
        whole.write(b"palisade-login-account\0alice");
        let mut pieces = SipHash24::new(1, 2);
        pieces.write(b"palisade-login-");
        pieces.write(b"account\0");
        pieces.write(b"alice");
        assert_eq!(whole.finish(), pieces.finish());
    }
}
