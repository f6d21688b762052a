//! Reading the parts of a JSON message that the worker passes on: named members of an object, as
//! raw text borrowed from the input, so that everything it does not change goes back byte for
//! byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of the object `raw` named in `names`, matched as Go's `encoding/json` matches a
/// struct field (ignoring ASCII case; of repeated keys the last counts); `None` if `raw` is not
/// an object.
pub fn members<'a>(raw: &'a RawValue, names: &[&str]) -> Option<Vec<Option<&'a RawValue>>> {
    read_members(raw, names, false)
}

/// The members of the object `raw` named in `names`, matched exactly, as JOSE headers and keys are
/// (RFC 7515 §4: their names are case-sensitive; of repeated keys the last counts); `None` if
/// `raw` is not an object.
pub fn exact_members<'a>(raw: &'a RawValue, names: &[&str]) -> Option<Vec<Option<&'a RawValue>>> {
    read_members(raw, names, true)
}

fn read_members<'a>(raw: &'a RawValue, names: &[&str], exact: bool) -> Option<Vec<Option<&'a RawValue>>> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    Members { names, exact }.deserialize(&mut de).ok()
}

/// The kind of JSON value `raw` is, in words for messages (never the value itself).
pub fn kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// True for JSON `null`.
pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

struct Members<'n> {
    names: &'n [&'n str],
    exact: bool,
}

impl<'de> DeserializeSeed<'de> for Members<'_> {
    type Value = Vec<Option<&'de RawValue>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Members<'_> {
    type Value = Vec<Option<&'de RawValue>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = vec![None; self.names.len()];
        let same = |name: &str, key: &str| if self.exact { name == key } else { name.eq_ignore_ascii_case(key) };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match self.names.iter().position(|name| same(name, &key)) {
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn named_members_are_found_as_go_finds_struct_fields() {
        let object = raw(r#"{"Key":"k","other":[1,{"key":2}],"VALUE": {"a" : 1},"key":"last"}"#);
        let found = members(&object, &["key", "value", "absent"]).unwrap();
        let texts: Vec<Option<&str>> = found.iter().map(|m| m.map(RawValue::get)).collect();
        assert_eq!(texts, [Some(r#""last""#), Some(r#"{"a" : 1}"#), None], "raw text, the last of repeated keys");
        assert_eq!(members(&raw(r#"{"k\u0065y":1}"#), &["key"]).unwrap()[0].map(RawValue::get), Some("1"));
    }

    #[test]
    fn exact_members_match_the_name_as_written() {
        let object = raw(r#"{"ALG":"none","alg":"RS256","Kid":"1","k\u0069d":"2","alg":"ES256"}"#);
        let found = exact_members(&object, &["alg", "kid", "crit"]).unwrap();
        let texts: Vec<Option<&str>> = found.iter().map(|m| m.map(RawValue::get)).collect();
        assert_eq!(texts, [Some(r#""ES256""#), Some(r#""2""#), None]);
        assert!(exact_members(&raw("[]"), &["alg"]).is_none());
    }

    #[test]
    fn anything_but_an_object_has_no_members() {
        for text in ["[]", "\"x\"", "1", "null", "true"] {
            assert!(members(&raw(text), &["key"]).is_none(), "{text}");
        }
        assert_eq!([kind(&raw("[]")), kind(&raw("-1")), kind(&raw("null"))], ["an array", "a number", "null"]);
    }
}
