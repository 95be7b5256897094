//! ES256 signatures in low-S form only.
//!
//! An ECDSA signature `(r, s)` has a twin `(r, n − s)` that verifies as
//! well, so every ES256 token would have a second string with the same
//! claims and `jti` (a different cache key, a different replay record, the
//! same token). RFC 7518 §3.4 allows both; Palisade, deliberately stricter,
//! issues only `s ≤ n/2` (normalising when the backend picks the other)
//! and refuses `s > n/2` on verify, so each token has exactly one string.

/// The order `n` of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `⌊n/2⌋` for P-256, big-endian: the largest low `s`.
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether a raw ES256 signature (`r ‖ s`, 32 bytes each, RFC 7518 §3.4)
/// has the low `s`. Anything not 64 bytes long is not one.
pub(super) fn is_low_s(signature: &[u8]) -> bool {
    // Fixed-width big-endian byte strings compare as the numbers they are.
    signature.len() == 64 && signature[32..] <= P256_HALF_N[..]
}

/// Replaces a high `s` by `n − s` in a raw ES256 signature (the same
/// signature, in low-S form). Leaves anything else unchanged.
pub(super) fn normalise_s(signature: &mut [u8]) {
    if signature.len() != 64 || is_low_s(signature) {
        return;
    }
    let s = &mut signature[32..];
    let mut borrow = 0u16;
    for index in (0..32).rev() {
        let subtrahend = u16::from(s[index]) + borrow;
        let minuend = u16::from(P256_N[index]);
        let (digit, next_borrow) = if minuend >= subtrahend {
            (minuend - subtrahend, 0)
        } else {
            (minuend + 256 - subtrahend, 1)
        };
        s[index] = digit.to_le_bytes()[0];
        borrow = next_borrow;
    }
}

#[cfg(test)]
mod tests {
    use super::{P256_HALF_N, P256_N, is_low_s, normalise_s};

    #[test]
    fn half_n_is_the_floor_of_n_over_two() {
        // 2 · ⌊n/2⌋ + 1 = n (n is odd).
        let mut doubled = [0u8; 32];
        let mut carry = 1u16;
        for index in (0..32).rev() {
            let sum = u16::from(P256_HALF_N[index]) * 2 + carry;
            doubled[index] = sum.to_le_bytes()[0];
            carry = sum >> 8;
        }
        assert_eq!((doubled, carry), (P256_N, 0));
    }

    #[test]
    fn normalising_maps_high_s_to_n_minus_s() {
        let mut signature = [0u8; 64];
        signature[32..].copy_from_slice(&P256_N);
        signature[63] -= 1; // s = n − 1, the highest s
        assert!(!is_low_s(&signature));
        normalise_s(&mut signature);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(signature[32..], one);
        assert!(is_low_s(&signature));
        // ⌊n/2⌋ is low and stays; ⌊n/2⌋ + 1 is high and becomes ⌊n/2⌋.
        signature[32..].copy_from_slice(&P256_HALF_N);
        normalise_s(&mut signature);
        assert_eq!(signature[32..], P256_HALF_N);
        signature[63] += 1;
        assert!(!is_low_s(&signature));
        normalise_s(&mut signature);
        assert_eq!(signature[32..], P256_HALF_N);
        assert!(!is_low_s(&[0u8; 63]));
    }
}
