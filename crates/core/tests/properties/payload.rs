//! Decoding the body (properties 7 to 8b).

use proptest::prelude::*;

use crate::support::*;

/// JSON bodies for the decoder: payload-shaped, any shape, or nested past serde_json's limit.
fn json_body() -> BoxedStrategy<Value> {
    prop_oneof![3 => marked_payload(), 1 => any_json(), 1 => deeply_nested()].boxed()
}

/// Known object fields given as arrays are type errors, not read by position (serde's derived
/// structs would), and never `invalid_json` for valid JSON.
#[test]
fn nested_objects_given_as_arrays_are_invalid_payload() {
    let array = |path: &str| DecodeError::Field {
        path: path.into(),
        problem: "is an array where an object is expected".into(),
    };
    let cases: [(&[u8], DecodeError); 5] = [
        (br#"{"org":["312909075211944344"]}"#, array("org")),
        (br#"{"org":["x",null]}"#, array("org")),
        (br#"{"user":["u1","o1"]}"#, array("user")),
        (br#"{"user_grants":[["p",["admin"]]]}"#, array("user_grants[0]")),
        (br#"{"user_metadata":[["microsoft_access_token","dG9rZW4="]]}"#, array("user_metadata[0]")),
    ];
    for (body, expected) in cases {
        let got = payload::decode(body).map(|info| format!("{info:?}"));
        assert_eq!(got, Err(expected), "{}", String::from_utf8_lossy(body));
    }
}

/// Strings of the fixture long enough that they cannot turn up in a message by chance.
fn fixture_strings() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() >= 8 => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::from_str(FIXTURE).unwrap(), &mut out);
    out
}

/// The message of a decode error as the worker would answer it, checked for being an answer.
fn decode_error_message(e: &DecodeError) -> String {
    let error = Error::from(e.clone());
    assert_eq!(error.status(), 400);
    serde_json::from_str::<Value>(&error.to_json()).expect("error body is JSON");
    error.message()
}

proptest! {
    #![proptest_config(cases(256))]

    /// 7. Decoding any bytes never panics; decoding edits of the real payload never panics and
    /// no error repeats one of its values.
    #[test]
    fn decode_never_panics_on_bytes(
        raw in prop::collection::vec(any::<u8>(), 0..1024),
        edited in mutated_fixture(),
    ) {
        if let Err(e) = payload::decode(&raw) {
            decode_error_message(&e);
        }
        if let Err(e) = payload::decode(&edited) {
            let message = decode_error_message(&e);
            for value in fixture_strings() {
                prop_assert!(!message.contains(&value), "{} repeats {}", message, value);
            }
        }
    }

    /// 8. Decoding any JSON never panics, and an error message never repeats a string that was
    /// in the body, key or value.
    #[test]
    fn decode_errors_never_repeat_input(value in json_body(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value).unwrap() } else { value.to_string() };
        if let Err(e) = payload::decode(text.as_bytes()) {
            let message = decode_error_message(&e);
            prop_assert!(!message.contains(MARK), "{} repeats input of {}", message, text);
        }
    }

    /// 8b. Valid JSON is never answered `invalid_json`: a wrong shape is `invalid_payload`.
    #[test]
    fn valid_json_is_never_invalid_json(value in json_body()) {
        if let Err(e) = payload::decode(value.to_string().as_bytes()) {
            prop_assert!(matches!(e, DecodeError::Field { .. }), "{:?} for valid JSON {}", e, value);
        }
    }
}
