//! Arbitrary text as a path id (`HexId<8>`, `HexIdAnyCase<8>`, `Uuid`,
//! `Ulid`): never a panic (non-ASCII, multi-byte characters); an id is
//! accepted exactly when a plain reference check says it is well-formed;
//! an accepted id displays canonically, round-trips through its text and
//! serde; a refused path id is a 404 without details.

use palisade_validate::{HexId, HexIdAnyCase, PathId, Ulid, Uuid};

const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn reference_hex(text: &str, any_case: bool) -> bool {
    text.len() == 8
        && text.bytes().all(|b| {
            b.is_ascii_digit()
                || (b'a'..=b'f').contains(&b)
                || (any_case && (b'A'..=b'F').contains(&b))
        })
}

fn reference_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, b)| {
            if matches!(index, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

fn reference_ulid(text: &str) -> bool {
    text.len() == 26
        && text
            .chars()
            .all(|c| CROCKFORD.contains(c.to_ascii_uppercase()))
        && text
            .bytes()
            .next()
            .is_some_and(|b| (b'0'..=b'7').contains(&b))
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    match HexId::<8>::parse(&text) {
        Ok(id) => {
            assert!(reference_hex(&text, false), "accepted a malformed HexId");
            assert_eq!(id.as_str(), text);
            let json = serde_json::to_string(&id).expect("an id serializes");
            assert_eq!(serde_json::from_str::<HexId<8>>(&json).ok(), Some(id));
            let mut bytes = [0u8; 4];
            assert!(id.decode_into(&mut bytes).is_some());
        }
        Err(_) => assert!(!reference_hex(&text, false), "refused a well-formed HexId"),
    }
    match HexIdAnyCase::<8>::parse(&text) {
        Ok(id) => {
            assert!(reference_hex(&text, true));
            assert_eq!(id.as_str(), text.to_ascii_lowercase());
        }
        Err(_) => assert!(!reference_hex(&text, true)),
    }
    match Uuid::parse(&text) {
        Ok(id) => {
            assert!(reference_uuid(&text), "accepted a malformed Uuid");
            assert_eq!(id.to_string(), text.to_ascii_lowercase());
            assert_eq!(Uuid::parse(&id.to_string()), Ok(id));
        }
        Err(_) => assert!(!reference_uuid(&text), "refused a well-formed Uuid"),
    }
    match Ulid::parse(&text) {
        Ok(id) => {
            assert!(reference_ulid(&text), "accepted a malformed Ulid");
            assert_eq!(id.to_string(), text.to_ascii_uppercase());
            assert_eq!(Ulid::parse(&id.to_string()), Ok(id));
            assert_eq!(Ulid::from_u128(id.to_u128()), id);
        }
        Err(_) => assert!(!reference_ulid(&text), "refused a well-formed Ulid"),
    }

    if let Err(rejection) = Uuid::from_param("id", &text) {
        let error = palisade_errors::Error::from(rejection);
        assert_eq!(error.status(), 404);
        assert!(error.details().is_empty());
    }
    // Serde from any JSON value: never a panic, and the error never echoes it.
    // (Checked for JSON strings longer than any error message.)
    if let Err(error) = serde_json::from_slice::<Uuid>(data)
        && let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && inner.len() > 100
        && !inner.contains('\\')
    {
        assert!(!error.to_string().contains(inner), "serde echoed the value");
    }
}
