//! Arbitrary bytes as a PATCH/PUT JSON body of `Patch<T>` fields: never a
//! panic; each field is `Absent` exactly when its key is missing, `Null`
//! exactly when it is `null`; serializing with absent fields skipped gives
//! the same state back; `UpdateRules` refuses exactly the fields a plain
//! reading of the rules says, with 422 and one detail each.

use palisade_validate::{Patch, UpdateRules};
use serde::{Deserialize, Serialize};

// deny_unknown_fields, as the crate's docs recommend: serde_json skips an
// unknown field's value without checking its UTF-8 (found by the fuzzer).
#[derive(Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    name: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    nickname: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    age: Patch<u32>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    tags: Patch<Vec<String>>,
}

fn state(value: &serde_json::Value, key: &str) -> u8 {
    match value.get(key) {
        None => 0,
        Some(serde_json::Value::Null) => 1,
        Some(_) => 2,
    }
}

fn patch_state<T>(patch: &Patch<T>) -> u8 {
    match patch {
        Patch::Absent => 0,
        Patch::Null => 1,
        Patch::Value(_) => 2,
    }
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Body>(data) else {
        return;
    };
    let value: serde_json::Value =
        serde_json::from_slice(data).expect("a body that parsed is JSON");
    // serde's derive also reads a struct from an array of its fields in
    // order (`["a", null]`): no keys to compare then (found by the fuzzer).
    if !value.is_object() {
        return;
    }
    assert_eq!(patch_state(&body.name), state(&value, "name"));
    assert_eq!(patch_state(&body.nickname), state(&value, "nickname"));
    assert_eq!(patch_state(&body.age), state(&value, "age"));
    assert_eq!(patch_state(&body.tags), state(&value, "tags"));

    let json = serde_json::to_vec(&body).expect("a body serializes");
    let again: Body = serde_json::from_slice(&json).expect("its own output parses");
    assert_eq!(again, body);

    for put in [false, true] {
        let rules = if put {
            UpdateRules::put()
        } else {
            UpdateRules::patch()
        };
        let verdict = rules
            .required("name", &body.name)
            .nullable("nickname", &body.nickname)
            .optional("age", &body.age)
            .nullable_optional("tags", &body.tags)
            .finish();
        let mut expected = Vec::new();
        if body.name.is_null() {
            expected.push(("name", "null_not_allowed"));
        }
        if put && body.name.is_absent() {
            expected.push(("name", "required"));
        }
        if put && body.nickname.is_absent() {
            expected.push(("nickname", "required"));
        }
        if body.age.is_null() {
            expected.push(("age", "null_not_allowed"));
        }
        match verdict {
            Ok(()) => assert!(expected.is_empty()),
            Err(refused) => {
                let got: Vec<_> = refused
                    .fields()
                    .iter()
                    .map(|f| (f.field(), f.code()))
                    .collect();
                assert_eq!(got, expected);
                let error = palisade_errors::Error::from(refused);
                assert_eq!(error.status(), 422);
                assert_eq!(error.details().len(), expected.len());
            }
        }
    }

    let mut nickname = Some(String::from("before"));
    body.nickname.clone().apply_to(&mut nickname);
    match &body.nickname {
        Patch::Absent => assert_eq!(nickname.as_deref(), Some("before")),
        Patch::Null => assert_eq!(nickname, None),
        Patch::Value(v) => assert_eq!(nickname.as_ref(), Some(v)),
    }
}
