//! Fixed-width base62 (`0-9A-Za-z`) of byte strings as one big-endian
//! number: a big-number base conversion, so 32 bytes fit 43 characters
//! (the `base62` crate stops at `u128`).

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The value of one base62 character, `None` outside the alphabet.
pub(crate) const fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'Z' => Some(c - b'A' + 10),
        b'a'..=b'z' => Some(c - b'a' + 36),
        _ => None,
    }
}

/// Writes `bytes` (big-endian) as exactly `out.len()` base62 characters,
/// zero-padded on the left. `out` must be long enough for the largest value
/// of `bytes.len()` bytes (22 for 16, 43 for 32, 6 for 4): the callers'
/// widths are constants checked by the tests.
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    let mut number = zeroize::Zeroizing::new(bytes.to_vec());
    for slot in out.iter_mut().rev() {
        // Divide the whole number by 62, keeping the remainder.
        let mut remainder: u32 = 0;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            // acc < 62 * 256, so the quotient fits a byte.
            *byte = u8::try_from(acc / 62).unwrap_or(u8::MAX);
            remainder = acc % 62;
        }
        *slot = ALPHABET[remainder as usize];
    }
}

/// Reads exactly `text.len()` base62 characters into `out` (big-endian).
/// `None` for a character outside the alphabet or a value too large for
/// `out.len()` bytes.
pub(crate) fn decode_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    out.fill(0);
    for &c in text {
        let mut carry = u32::from(digit(c)?);
        for byte in out.iter_mut().rev() {
            let acc = u32::from(*byte) * 62 + carry;
            *byte = (acc & 0xff) as u8;
            carry = acc >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn encode(bytes: &[u8], width: usize) -> String {
        let mut out = vec![0u8; width];
        encode_into(bytes, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// A reference conversion through `u128`, independent of the big-number one.
    fn encode_u128(mut n: u128, width: usize) -> String {
        let mut out = vec![b'0'; width];
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(n % 62) as usize];
            n /= 62;
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_values() {
        // Computed independently (Python: int.from_bytes + divmod).
        assert_eq!(encode(&[0u8; 16], 22), "0".repeat(22));
        assert_eq!(encode(&[0xff; 16], 22), "7n42DGM5Tflk9n8mt7Fhc7");
        assert_eq!(
            encode(&[0xff; 32], 43),
            "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1"
        );
        let counting: Vec<u8> = (0..32).collect();
        assert_eq!(
            encode(&counting, 43),
            "003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf"
        );
        assert_eq!(encode(&u32::MAX.to_be_bytes(), 6), "4gfFC3");
    }

    #[test]
    fn too_large_or_foreign_characters_do_not_decode() {
        let mut out = [0u8; 16];
        // One more than u128::MAX.
        assert!(decode_into(b"7n42DGM5Tflk9n8mt7Fhc8", &mut out).is_none());
        assert!(decode_into(b"zzzzzzzzzzzzzzzzzzzzzz", &mut out).is_none());
        assert!(decode_into(b"000000000000000000000_", &mut out).is_none());
        assert!(decode_into(b"7n42DGM5Tflk9n8mt7Fhc7", &mut out).is_some());
        assert_eq!(out, [0xff; 16]);
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_u128_and_round_trips(n: u128, wide: [u8; 32]) {
            let text = encode(&n.to_be_bytes(), 22);
            proptest::prop_assert_eq!(&text, &encode_u128(n, 22));
            let mut back = [0u8; 16];
            proptest::prop_assert!(decode_into(text.as_bytes(), &mut back).is_some());
            proptest::prop_assert_eq!(u128::from_be_bytes(back), n);
            let text = encode(&wide, 43);
            let mut back = [0u8; 32];
            proptest::prop_assert!(decode_into(text.as_bytes(), &mut back).is_some());
            proptest::prop_assert_eq!(back, wide);
        }
    }
}
