//! Arbitrary request-id candidates and validation field paths → the envelope
//! is always valid JSON of the schema, and an id that does not parse never
//! reaches the body or the headers.

use palisade_errors::{Error, ErrorKind, RequestId};

/// The property: panics when it does not hold. The bytes are decoded the
/// way libFuzzer's typed `fuzz_target!` decodes them, so a corpus file
/// replays the same input here and in the fuzzer.
pub fn run(data: &[u8]) {
    use arbitrary::{Arbitrary, Unstructured};
    let Ok(input) = <(u8, String, Vec<String>)>::arbitrary_take_rest(Unstructured::new(data))
    else {
        return;
    };
    let (kind_index, id_candidate, fields) = input;
    let kind = ErrorKind::ALL[usize::from(kind_index) % ErrorKind::ALL.len()];
    let mut error = Error::new(kind);
    for field in fields.iter().take(8) {
        error = error.with_detail(field, "invalid");
    }
    let id = RequestId::parse(&id_candidate);
    let response = error.to_response(id.as_ref());

    let json: serde_json::Value =
        serde_json::from_slice(response.body()).expect("the envelope is always JSON");
    let body = json["error"].as_object().expect("an error object");
    assert_eq!(json.as_object().map(|root| root.len()), Some(1));
    assert_eq!(body["code"], kind.code());
    assert_eq!(body["message"], kind.message());
    match &id {
        Some(id) => {
            assert_eq!(body["request_id"], id.as_str());
            assert_eq!(response.headers()["x-request-id"], id.as_str());
        }
        None => {
            assert!(
                body["request_id"].is_null(),
                "an invalid id is never echoed"
            );
            assert!(!response.headers().contains_key("x-request-id"));
        }
    }
    let details = body.get("details").and_then(|d| d.as_array());
    assert_eq!(details.map_or(0, Vec::len), fields.len().min(8));
    for detail in details.into_iter().flatten() {
        let field = detail["field"].as_str().expect("field is a string");
        assert!(field.chars().count() <= 128);
        assert!(!field.chars().any(char::is_control));
    }
}
