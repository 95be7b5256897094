//! Arbitrary bytes as a bearer token through the full verifier (HMAC and
//! RSA keys in the keyring): never a panic, whatever the header, payload or
//! signature hold.

use std::sync::OnceLock;

use palisade_auth_tokens::{
    Algorithm, Keyring, ManualClock, NoCustomClaims, SigningKey, TokenPolicy, TokenType,
    TokenVerifier,
};
use secrecy::SecretSlice;

const RS_PUBLIC: &[u8] = include_bytes!("../../auth-tokens/tests/keys/rs256-public.pem");

fn verifier() -> &'static TokenVerifier<ManualClock> {
    static VERIFIER: OnceLock<TokenVerifier<ManualClock>> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let secret = SecretSlice::from(b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa".to_vec());
        let ring = Keyring::new([
            SigningKey::hmac("a1", Algorithm::HS256, &secret).expect("test key"),
            SigningKey::from_pem("rsa", Algorithm::RS256, None, RS_PUBLIC).expect("test key"),
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
    let _ = verifier.verify_access::<NoCustomClaims>(&token);
    let _ = verifier.verify_refresh(&token);
    let _ = verifier.verify::<serde_json::Value>(&token, TokenType::Access);
}
