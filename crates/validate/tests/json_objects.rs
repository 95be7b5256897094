//! Type confusion through positional JSON: a struct read from an array.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_validate::Patch;
use palisade_validate::json::{self, JsonLimits};
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Order {
    items: Vec<Item>,
    buyer: Option<Login>,
    #[serde(default)]
    note: Patch<String>,
    at: (u32, u32),
    kind: Kind,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Item {
    sku: String,
    count: u32,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Pickup,
    Ship { street: String },
    Gift(String),
}

fn read<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, json::JsonError> {
    json::from_slice(text.as_bytes(), &JsonLimits::default())
}

/// Attack: a body given as an array bound to the struct by position
/// (`["mallory","hunter2"]` as `{username, password}`), past every check
/// that goes by field name: `deny_unknown_fields`, duplicate keys, a WAF's
/// or a reviewer's reading of the request. It is the wrong type, a 422.
#[test]
fn a_struct_is_never_read_from_an_array() {
    let refused = read::<Login>(r#"["mallory","hunter2"]"#).unwrap_err();
    assert_eq!((refused.reason(), refused.path()), ("invalid", "$"));
    assert_eq!(refused.kind().error_kind().status(), 422);
    // An extra element was a 400 where an unknown field is a 422.
    let refused = read::<Login>(r#"["mallory","hunter2","admin"]"#).unwrap_err();
    assert_eq!(refused.reason(), "invalid");
    // Deeper: in a sequence, behind an Option, in a struct variant.
    let nested = [
        (
            r#"{"items":[["a",1]],"buyer":null,"at":[1,2],"kind":"pickup"}"#,
            "$.items[0]",
        ),
        (
            r#"{"items":[],"buyer":["m","p"],"at":[1,2],"kind":"pickup"}"#,
            "$.buyer",
        ),
        (
            r#"{"items":[],"buyer":null,"at":[1,2],"kind":{"ship":["Main St"]}}"#,
            "$.kind.ship",
        ),
    ];
    for (text, path) in nested {
        let refused = read::<Order>(text).unwrap_err();
        assert_eq!(
            (refused.reason(), refused.path()),
            ("invalid", path),
            "{text}"
        );
    }
}

/// What takes arrays still does, and objects read as before: sequences,
/// tuples, `Option`, `Patch`'s three states, enum variants.
#[test]
fn arrays_where_arrays_belong_and_objects_read_as_before() {
    let order: Order = read(
        r#"{"items":[{"sku":"a","count":2}],"buyer":{"username":"m","password":"p"},
            "note":null,"at":[3,4],"kind":{"ship":{"street":"Main St"}}}"#,
    )
    .unwrap();
    assert_eq!(
        order.items,
        [Item {
            sku: "a".into(),
            count: 2
        }]
    );
    assert_eq!(order.buyer.unwrap().username, "m");
    assert_eq!(order.note, Patch::Null);
    assert_eq!(order.at, (3, 4));
    assert_eq!(
        order.kind,
        Kind::Ship {
            street: "Main St".into()
        }
    );
    let order: Order =
        read(r#"{"items":[],"buyer":null,"note":"hi","at":[0,0],"kind":{"gift":"card"}}"#).unwrap();
    assert_eq!(order.note, Patch::Value("hi".into()));
    assert_eq!(order.kind, Kind::Gift("card".into()));
    let order: Order = read(r#"{"items":[],"buyer":null,"at":[0,0],"kind":"pickup"}"#).unwrap();
    assert_eq!(order.note, Patch::Absent);
    let pairs: Vec<(String, u8)> = read(r#"[["a",1],["b",2]]"#).unwrap();
    assert_eq!(pairs.len(), 2);
    // Unknown fields and duplicate keys are still refused by name.
    assert!(read::<Login>(r#"{"username":"m","password":"p","role":"admin"}"#).is_err());
    assert!(read::<Login>(r#"{"username":"m","username":"root","password":"p"}"#).is_err());
}
