//! Arbitrary bytes as a bearer token through the full verifier (HMAC, RSA
//! and ES256 keys in the keyring): never a panic, whatever the header,
//! payload or signature hold; and a token that verifies has one reading
//! and one string (issue #11): its header is a UTF-8 JSON object, and an
//! ES256 signature is in low-S form (its high-S twin is not accepted).

use std::sync::OnceLock;

use palisade_auth_tokens::{
    Algorithm, Keyring, ManualClock, NoCustomClaims, SigningKey, TokenPolicy, TokenType,
    TokenVerifier,
};
use secrecy::SecretSlice;

const RS_PUBLIC: &[u8] = include_bytes!("../../auth-tokens/tests/keys/rs256-public.pem");
const ES_PUBLIC: &[u8] = include_bytes!("../../auth-tokens/tests/keys/es256-public.pem");

/// `⌊n/2⌋` of P-256, big-endian: the largest low `s`.
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// base64url without padding, for checking what was accepted (`None` for
/// anything else).
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count).to_le_bytes()[0]);
        }
    }
    Some(out)
}

/// What every accepted token satisfies.
fn check_accepted(token: &str) {
    let mut parts = token.split('.');
    let header = parts
        .next()
        .and_then(base64url)
        .expect("accepted: base64url header");
    let header = std::str::from_utf8(&header).expect("accepted: a UTF-8 header");
    let header: serde_json::Value = serde_json::from_str(header).expect("accepted: JSON header");
    assert!(header.is_object(), "accepted: a header object");
    assert!(header.get("cty").is_none(), "accepted: no cty");
    if header["alg"] == "ES256" {
        let signature = parts
            .nth(1)
            .and_then(base64url)
            .expect("accepted: signature");
        assert!(
            signature.len() == 64 && signature[32..] <= P256_HALF_N[..],
            "accepted: a low-S ES256 signature"
        );
    }
}

fn verifier() -> &'static TokenVerifier<ManualClock> {
    static VERIFIER: OnceLock<TokenVerifier<ManualClock>> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let secret = SecretSlice::from(b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa".to_vec());
        let ring = Keyring::new([
            SigningKey::hmac("a1", Algorithm::HS256, &secret).expect("test key"),
            SigningKey::from_pem("rsa", Algorithm::RS256, None, RS_PUBLIC).expect("test key"),
            SigningKey::from_pem("es", Algorithm::ES256, None, ES_PUBLIC).expect("test key"),
        ])
        .expect("test keyring");
        TokenVerifier::with_clock(
            ring.clone(),
            ring,
            TokenPolicy::new("iss", "aud").expect("test policy"),
            ManualClock::from_unix_secs(1_800_000_000),
        )
    })
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    let verifier = verifier();
    let access = verifier.verify_access::<NoCustomClaims>(&token);
    let refresh = verifier.verify_refresh(&token);
    let generic = verifier.verify::<serde_json::Value>(&token, TokenType::Access);
    if access.is_ok() || refresh.is_ok() || generic.is_ok() {
        check_accepted(&token);
    }
}
