//! Arbitrary text as an e-mail address: never a panic (IDNA on any
//! Unicode); an accepted address is ASCII, has one `@`, a dot-atom local
//! part of at most 64 octets, LDH labels of at most 63, 254 octets in all,
//! no control character, and parsing it again gives it back unchanged.

use palisade_validate::{Email, MAX_EMAIL_LEN, MAX_EMAIL_LOCAL_LEN};

const ATEXT_SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(email) = Email::parse(&text) else {
        return;
    };
    let address = email.as_str();
    assert!(address.is_ascii(), "a non-ASCII address was accepted");
    assert!(address.len() <= MAX_EMAIL_LEN);
    assert_eq!(address.matches('@').count(), 1);
    let local = email.local_part();
    let domain = email.domain();
    assert_eq!(format!("{local}@{domain}"), address);
    assert!(!local.is_empty() && local.len() <= MAX_EMAIL_LOCAL_LEN);
    assert!(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."));
    assert!(
        local
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(&b))
    );
    let labels: Vec<&str> = domain.split('.').collect();
    assert!(labels.len() >= 2);
    for label in &labels {
        assert!(!label.is_empty() && label.len() <= 63);
        assert!(!label.starts_with('-') && !label.ends_with('-'));
        assert!(
            label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }
    // The local part is kept as sent.
    assert!(text.starts_with(local));
    let again = Email::parse(address).expect("a normalised address parses again");
    assert_eq!(again, email);
}
