//! A key's record as the fields of its Redis hash, and back. A hash this
//! store did not write is an error, never a key.

use std::collections::HashMap;
use std::net::IpAddr;

use palisade_errors::StoreError;

use crate::cidr::Cidr;
use crate::key::KeyId;
use crate::redis_support::{self, hex};
use crate::store::{KeyRecord, KeyStatus};

pub(crate) fn status_text(status: KeyStatus) -> String {
    match status {
        KeyStatus::Active => "active".to_owned(),
        KeyStatus::Revoked => "revoked".to_owned(),
        KeyStatus::RotatedGrace { until } => format!("grace:{until}"),
    }
}

fn parse_status(text: &str) -> Option<KeyStatus> {
    match text {
        "active" => Some(KeyStatus::Active),
        "revoked" => Some(KeyStatus::Revoked),
        _ => text
            .strip_prefix("grace:")?
            .parse()
            .ok()
            .map(|until| KeyStatus::RotatedGrace { until }),
    }
}

/// Scopes as `<byte length>:<scope>` one after another (a scope may hold
/// any character).
fn encode_scopes(scopes: &[String]) -> String {
    scopes
        .iter()
        .map(|scope| format!("{}:{scope}", scope.len()))
        .collect()
}

fn decode_scopes(mut text: &str) -> Option<Vec<String>> {
    let mut scopes = Vec::new();
    while !text.is_empty() {
        let (len, rest) = text.split_once(':')?;
        let len: usize = len.parse().ok()?;
        scopes.push(rest.get(..len)?.to_owned());
        text = rest.get(len..)?;
    }
    Some(scopes)
}

fn optional(value: Option<impl ToString>) -> String {
    value.map_or_else(String::new, |value| value.to_string())
}

pub(crate) fn encode(record: &KeyRecord) -> Vec<(&'static str, String)> {
    let cidrs: Vec<String> = record.allowed_ips.iter().map(ToString::to_string).collect();
    vec![
        ("v", "1".to_owned()),
        ("pepper", record.pepper_id.clone()),
        ("hmac", hex(&record.secret_hmac)),
        ("owner", record.owner.clone()),
        ("name", record.name.clone()),
        ("scopes", encode_scopes(&record.scopes)),
        ("created_at", record.created_at.to_string()),
        ("expires_at", optional(record.expires_at)),
        ("last_used_at", optional(record.last_used_at)),
        ("use_count", record.use_count.to_string()),
        ("last_used_ip", optional(record.last_used_ip)),
        ("allowed_ips", cidrs.join(",")),
        ("status", status_text(record.status)),
    ]
}

/// A record from its hash; `None` for an empty one (no such key). A hash
/// this store did not write is an `unexpected_reply` error, never a key.
pub(crate) fn decode(
    key_id: KeyId,
    fields: &HashMap<String, String>,
) -> Result<Option<KeyRecord>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let corrupt = || StoreError::unexpected_reply("api key record");
    let field = |name: &str| fields.get(name).map(String::as_str).ok_or_else(corrupt);
    let number = |name: &str| -> Result<Option<u64>, StoreError> {
        match fields.get(name).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| corrupt()),
        }
    };
    if field("v")? != "1" {
        return Err(corrupt());
    }
    let allowed_ips = match field("allowed_ips")? {
        "" => Vec::new(),
        text => text
            .split(',')
            .map(|cidr| cidr.parse::<Cidr>().map_err(|_| corrupt()))
            .collect::<Result<_, _>>()?,
    };
    let last_used_ip = match fields.get("last_used_ip").map(String::as_str) {
        None | Some("") => None,
        Some(text) => Some(text.parse::<IpAddr>().map_err(|_| corrupt())?),
    };
    Ok(Some(KeyRecord {
        key_id,
        pepper_id: field("pepper")?.to_owned(),
        secret_hmac: redis_support::unhex32(field("hmac")?).ok_or_else(corrupt)?,
        owner: field("owner")?.to_owned(),
        name: field("name")?.to_owned(),
        scopes: decode_scopes(field("scopes")?).ok_or_else(corrupt)?,
        created_at: number("created_at")?.ok_or_else(corrupt)?,
        expires_at: number("expires_at")?,
        last_used_at: number("last_used_at")?,
        use_count: number("use_count")?.unwrap_or(0),
        last_used_ip,
        allowed_ips,
        status: parse_status(field("status")?).ok_or_else(corrupt)?,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn scopes_with_any_character_round_trip() {
        let scopes = vec![
            String::new(),
            "read".to_owned(),
            "a:b,c".to_owned(),
            "12:x".to_owned(),
            "é🙂".to_owned(),
        ];
        assert_eq!(decode_scopes(&encode_scopes(&scopes)).unwrap(), scopes);
        for bad in ["5:abc", "x:abc", "3:é", ":a"] {
            assert_eq!(decode_scopes(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_round_trip_and_junk_is_refused() {
        for status in [
            KeyStatus::Active,
            KeyStatus::Revoked,
            KeyStatus::RotatedGrace { until: 17 },
        ] {
            assert_eq!(parse_status(&status_text(status)), Some(status));
        }
        for junk in ["", "Active", "grace:", "grace:-1", "grace:x"] {
            assert_eq!(parse_status(junk), None);
        }
    }
}
