use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A per-response CSP nonce: 16 bytes from the operating system's CSPRNG,
/// base64-encoded (CSP3 §2.3.1 asks for at least 128 bits).
///
/// The headers layer makes a fresh one for every response that uses nonces,
/// puts it into the request extensions for the handler (to write into
/// `<script nonce="…">`) and into `script-src`/`style-src`. A nonce that is
/// reused or guessable lets an injected script carry it, so there is no way
/// to build one from caller-chosen bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CspNonce(Box<str>);

impl CspNonce {
    /// A fresh nonce, or `None` if the operating system's random source
    /// failed. Callers then send the CSP without nonce sources (scripts are
    /// blocked rather than protected by a predictable nonce).
    pub fn generate() -> Option<CspNonce> {
        let mut bytes = [0u8; 16];
        match getrandom::fill(&mut bytes) {
            Ok(()) => Some(CspNonce(STANDARD.encode(bytes).into())),
            Err(error) => {
                tracing::error!(%error, "OS random source failed; CSP sent without nonce");
                None
            }
        }
    }

    /// The base64 text to put into the `nonce` attribute.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CspNonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for CspNonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not a long-lived secret, but no reason to spray it into logs either.
        f.write_str("CspNonce(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_128_bit_base64_and_differ() {
        let a = CspNonce::generate().unwrap();
        let b = CspNonce::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
        assert_eq!(STANDARD.decode(a.as_str()).unwrap().len(), 16);
        assert_eq!(format!("{a:?}"), "CspNonce(..)");
    }
}
