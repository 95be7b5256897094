//! Fixed-width base62 (`0-9A-Za-z`) of byte strings as one big-endian
//! number: a big-number base conversion, so 32 bytes fit 43 characters
//! (the `base62` crate stops at `u128`).

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Marks a byte outside the alphabet in [`DIGITS`].
const NOT_A_DIGIT: u8 = 0xff;

/// The value of every byte as a base62 digit: one table read, no branch
/// on the character (random characters made a branchy match mispredict on
/// most of a key's 71 digits).
const DIGITS: [u8; 256] = {
    let mut table = [NOT_A_DIGIT; 256];
    let mut n = 0;
    while n < ALPHABET.len() {
        table[ALPHABET[n] as usize] = n as u8;
        n += 1;
    }
    table
};

/// The value of one base62 character, `None` outside the alphabet.
pub(crate) const fn digit(c: u8) -> Option<u8> {
    match DIGITS[c as usize] {
        NOT_A_DIGIT => None,
        value => Some(value),
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

/// Reads exactly `text.len()` base62 characters into `out` (big-endian, at
/// most 32 bytes). `None` for a character outside the alphabet or a value
/// too large for `out.len()` bytes.
///
/// Ten characters at a time (62^10 < 2^60) into 64-bit limbs: verification
/// parses every presented key, and a byte-at-a-time conversion cost more
/// than the HMAC.
pub(crate) fn decode_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    use zeroize::Zeroize;

    const LIMBS: usize = 4;
    /// Characters per step: 62^10 fits a u64 with room for the carry.
    const CHUNK: usize = 10;
    if out.len() > LIMBS * 8 {
        return None;
    }
    let used = out.len().div_ceil(8);
    // Least significant limb first; secret bytes pass through, so wiped.
    let mut limbs = zeroize::Zeroizing::new([0u64; LIMBS]);
    for chunk in text.chunks(CHUNK) {
        let mut value: u64 = 0;
        let mut scale: u64 = 1;
        for &c in chunk {
            value = value * 62 + u64::from(digit(c)?);
            scale *= 62;
        }
        let mut carry = u128::from(value);
        value.zeroize();
        for limb in limbs.iter_mut().take(used) {
            let acc = u128::from(*limb) * u128::from(scale) + carry;
            *limb = acc as u64; // the low 64 bits; the rest carries
            carry = acc >> 64;
        }
        if carry != 0 {
            return None;
        }
    }
    let spare_bits = used * 64 - out.len() * 8;
    if spare_bits > 0 && limbs[used - 1] >> (64 - spare_bits) != 0 {
        return None;
    }
    for (n, byte) in out.iter_mut().rev().enumerate() {
        *byte = (limbs[n / 8] >> (8 * (n % 8))) as u8;
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
    fn the_digit_table_is_the_alphabet() {
        for c in 0..=255u8 {
            let expected = match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'A'..=b'Z' => Some(c - b'A' + 10),
                b'a'..=b'z' => Some(c - b'a' + 36),
                _ => None,
            };
            assert_eq!(digit(c), expected, "{c}");
        }
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

    /// The plain conversion (a byte at a time), as the reference.
    fn decode_bytewise(text: &[u8], out: &mut [u8]) -> Option<()> {
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

    #[test]
    fn the_largest_values_decode_and_one_more_does_not() {
        let mut out = [0u8; 32];
        let max = "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1";
        assert!(decode_into(max.as_bytes(), &mut out).is_some());
        assert_eq!(out, [0xff; 32]);
        assert!(decode_into(b"yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp2", &mut out).is_none());
        let mut sum = [0u8; 4];
        assert!(decode_into(b"4gfFC3", &mut sum).is_some());
        assert_eq!(sum, [0xff; 4]);
        assert!(decode_into(b"4gfFC4", &mut sum).is_none());
        assert!(decode_into(b"zzzzzz", &mut sum).is_none());
        assert!(decode_into(b"", &mut sum).is_some());
        assert_eq!(sum, [0; 4]);
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_bytewise_conversion(
            text in "[0-9A-Za-z]{0,44}",
            width in proptest::sample::select(vec![4usize, 16, 32]),
        ) {
            let mut fast = vec![0u8; width];
            let mut plain = vec![0u8; width];
            let a = decode_into(text.as_bytes(), &mut fast);
            let b = decode_bytewise(text.as_bytes(), &mut plain);
            proptest::prop_assert_eq!(a, b);
            if a.is_some() {
                proptest::prop_assert_eq!(fast, plain);
            }
        }

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
