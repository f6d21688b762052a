//! What the earlier targets of the same execution answered: the `response` of a function payload.
//!
//! ZITADEL calls the targets bound to a function one after another with one shared response. Before
//! each call it marshals the whole payload, so from the second target on `response` holds what
//! the earlier targets answered, accumulated. Each answer is decoded into that shared response
//! with Go's `encoding/json`: a list present in an answer replaces the earlier one, an absent key
//! keeps it, `null` clears it. A target that is not the only one must therefore answer the earlier
//! entries followed by its own; this module reads them so that the answer can echo them.
//!
//! Entries are kept as received, byte for byte: their values are arbitrary JSON, and ZITADEL
//! marshals metadata entries with Go's field names (`{"State":0,"Key":..,"Value":..}`), which its
//! decoder reads back case-insensitively. Only what the worker needs is checked: each list is a
//! list, each claim and metadata entry has a string `key`, each attribute a string `name`, each
//! log line is a string. Anything else is `invalid_payload`, naming the field, so that ZITADEL
//! skips this target's answer and keeps the chain as it was.

use serde_json::value::RawValue;

use crate::contract::json::{self, is_null};
use crate::contract::payload::{DecodeError, Function};

/// The earlier targets' entries, in the order received.
#[cfg_attr(test, derive(Debug))]
#[derive(Default, Clone, PartialEq)]
pub struct Earlier {
    pub append_claims: Vec<Entry>,
    pub set_user_metadata: Vec<Entry>,
    pub append_log_claims: Vec<Entry>,
    /// SAML (`presamlresponse`) only.
    pub append_attribute: Vec<Entry>,
}

/// One entry of an earlier answer.
#[cfg_attr(test, derive(Debug))]
#[derive(Clone)]
pub struct Entry {
    /// The entry exactly as it came, echoed in the answer.
    pub raw: Box<RawValue>,
    /// The claim's or metadata entry's `key`, or the attribute's `name`; empty for a log line.
    pub name: Box<str>,
    /// False for a claim whose value is `null`: ZITADEL lets a later claim of that key take its
    /// place (it checks `Claims[key] == nil`).
    pub holds: bool,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.raw.get() == other.raw.get() && self.name == other.name && self.holds == other.holds
    }
}

/// An entry is written as it came, byte for byte.
impl serde::Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl Earlier {
    /// True if an earlier target already gave the claim (OIDC) or attribute (SAML) `name`.
    /// ZITADEL keeps the first claim of a key and logs `key "<k>" already exists` for the rest;
    /// SAML attributes go into a map by name, where the last would silently replace the first.
    /// Either way the earlier target's value is the one to keep.
    pub fn has(&self, function: Function, name: &str) -> bool {
        let list = if function == Function::PreSamlResponse { &self.append_attribute } else { &self.append_claims };
        list.iter().any(|entry| entry.holds && &*entry.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.append_claims.is_empty()
            && self.set_user_metadata.is_empty()
            && self.append_log_claims.is_empty()
            && self.append_attribute.is_empty()
    }

    /// How many entries the earlier targets gave, for the log line.
    pub fn len(&self) -> usize {
        self.append_claims.len()
            + self.set_user_metadata.len()
            + self.append_log_claims.len()
            + self.append_attribute.len()
    }
}

/// What each list holds, and so what is checked of its entries.
#[derive(Clone, Copy)]
enum Kind {
    /// An object with a string `key` (claims, metadata).
    Keyed,
    /// An object with a string `name` (SAML attributes).
    Named,
    /// A string (log lines); `null` is Go's empty string.
    Text,
}

/// Reads the `response` of a function payload. Absent or `null` means no earlier target answered.
pub fn earlier(function: Function, response: Option<&RawValue>) -> Result<Earlier, DecodeError> {
    let Some(raw) = response.filter(|r| !is_null(r)) else { return Ok(Earlier::default()) };
    let (names, kinds): (&[&str], &[Kind]) = match function {
        Function::PreAccessToken | Function::PreUserinfo => {
            (&["append_claims", "set_user_metadata", "append_log_claims"], &[Kind::Keyed, Kind::Keyed, Kind::Text])
        }
        Function::PreSamlResponse => (&["set_user_metadata", "append_attribute"], &[Kind::Keyed, Kind::Named]),
    };
    let fields = json::members(raw, names).ok_or_else(|| wrong_type("response", raw, "an object"))?;
    let mut lists = Vec::with_capacity(names.len());
    for ((name, kind), value) in names.iter().zip(kinds).zip(fields) {
        lists.push(match value {
            Some(value) => entries(name, value, *kind)?,
            None => Vec::new(),
        });
    }
    let mut lists = lists.into_iter();
    let mut next = || lists.next().unwrap_or_default();
    Ok(match function {
        Function::PreAccessToken | Function::PreUserinfo => Earlier {
            append_claims: next(),
            set_user_metadata: next(),
            append_log_claims: next(),
            append_attribute: Vec::new(),
        },
        Function::PreSamlResponse => {
            Earlier { set_user_metadata: next(), append_attribute: next(), ..Earlier::default() }
        }
    })
}

fn entries(field: &str, value: &RawValue, kind: Kind) -> Result<Vec<Entry>, DecodeError> {
    if is_null(value) {
        return Ok(Vec::new()); // Go's null clears the list
    }
    let path = format!("response.{field}");
    let items: Vec<&RawValue> = serde_json::from_str(value.get()).map_err(|_| wrong_type(&path, value, "an array"))?;
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = || format!("{path}[{i}]");
        let (name, holds) = match kind {
            Kind::Text if matches!(json::kind(item), "a string" | "null") => (String::new(), true),
            Kind::Text => return Err(wrong_type(&path(), item, "a string")),
            Kind::Keyed | Kind::Named => {
                let wanted = if matches!(kind, Kind::Keyed) { "key" } else { "name" };
                let [name, value] = json::members(item, &[wanted, "value"])
                    .and_then(|found| <[_; 2]>::try_from(found).ok())
                    .ok_or_else(|| wrong_type(&path(), item, "an object"))?;
                let member_path = || format!("{}.{wanted}", path());
                let name = match name {
                    None => return Err(DecodeError::Field { path: member_path(), problem: "is missing".into() }),
                    Some(raw) => serde_json::from_str::<String>(raw.get())
                        .map_err(|_| wrong_type(&member_path(), raw, "a string"))?,
                };
                (name, value.is_some_and(|v| !is_null(v)))
            }
        };
        entries.push(Entry { raw: item.to_owned(), name: name.into(), holds });
    }
    Ok(entries)
}

/// `is <kind of raw> where <expected> is expected`, naming JSON kinds, never the value.
fn wrong_type(path: &str, raw: &RawValue, expected: &str) -> DecodeError {
    DecodeError::Field {
        path: path.to_string(),
        problem: format!("is {} where {expected} is expected", json::kind(raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(function: Function, response: &str) -> Result<Earlier, DecodeError> {
        let raw: Box<RawValue> = serde_json::from_str(response).unwrap();
        earlier(function, Some(&raw))
    }

    fn field_error(path: &str, problem: &str) -> DecodeError {
        DecodeError::Field { path: path.into(), problem: problem.into() }
    }

    #[test]
    fn no_response_means_no_earlier_target() {
        assert_eq!(earlier(Function::PreAccessToken, None), Ok(Earlier::default()));
        assert_eq!(read(Function::PreAccessToken, "null"), Ok(Earlier::default()));
        assert_eq!(read(Function::PreAccessToken, "{}"), Ok(Earlier::default()));
    }

    #[test]
    fn entries_are_kept_byte_for_byte_in_order() {
        let response = r#"{"append_claims":[{"key":"a","value":{"n":1.50,"x":[true]}},{"value":"\u00e9","key":"b"}],
            "set_user_metadata":[{"State":0,"Key":"k","Value":"dg=="}],"append_log_claims":["one",null]}"#;
        let e = read(Function::PreAccessToken, response).unwrap();
        let raws = |list: &[Entry]| list.iter().map(|e| e.raw.to_string()).collect::<Vec<_>>();
        assert_eq!(
            raws(&e.append_claims),
            [r#"{"key":"a","value":{"n":1.50,"x":[true]}}"#, r#"{"value":"\u00e9","key":"b"}"#]
        );
        assert_eq!(raws(&e.set_user_metadata), [r#"{"State":0,"Key":"k","Value":"dg=="}"#]);
        assert_eq!(raws(&e.append_log_claims), [r#""one""#, "null"]);
        assert_eq!(e.set_user_metadata[0].name.as_ref(), "k", "Go's field name, matched ignoring case");
        assert_eq!(e.len(), 5);
    }

    #[test]
    fn a_claim_with_a_null_value_does_not_hold_its_key() {
        let e = read(Function::PreUserinfo, r#"{"append_claims":[{"key":"a","value":null},{"key":"b","value":0}]}"#)
            .unwrap();
        assert!(!e.has(Function::PreUserinfo, "a"));
        assert!(e.has(Function::PreUserinfo, "b"));
        assert!(!e.has(Function::PreSamlResponse, "b"), "claims are not attributes");
    }

    #[test]
    fn null_lists_are_empty_and_other_functions_lists_are_not_read() {
        let e = read(Function::PreAccessToken, r#"{"append_claims":null,"append_attribute":[1]}"#).unwrap();
        assert!(e.is_empty());
        let saml = read(
            Function::PreSamlResponse,
            r#"{"append_claims":"ignored","append_attribute":[{"name":"groups","name_format":"f","value":["x"]}]}"#,
        )
        .unwrap();
        assert_eq!(saml.append_attribute.len(), 1);
        assert!(saml.has(Function::PreSamlResponse, "groups"));
    }

    #[test]
    fn malformed_responses_name_the_field_and_never_a_value() {
        let cases = [
            (r#""secret""#, "response", "is a string where an object is expected"),
            (
                r#"{"append_claims":{"key":"secret"}}"#,
                "response.append_claims",
                "is an object where an array is expected",
            ),
            (
                r#"{"append_claims":[{"key":"a"},"secret"]}"#,
                "response.append_claims[1]",
                "is a string where an object is expected",
            ),
            (r#"{"append_claims":[{"value":"secret"}]}"#, "response.append_claims[0].key", "is missing"),
            (
                r#"{"append_claims":[{"key":7}]}"#,
                "response.append_claims[0].key",
                "is a number where a string is expected",
            ),
            (r#"{"set_user_metadata":[{"Value":"c2VjcmV0"}]}"#, "response.set_user_metadata[0].key", "is missing"),
            (
                r#"{"append_log_claims":["a",["secret"]]}"#,
                "response.append_log_claims[1]",
                "is an array where a string is expected",
            ),
        ];
        for (response, path, problem) in cases {
            assert_eq!(read(Function::PreAccessToken, response), Err(field_error(path, problem)), "{response}");
        }
        assert_eq!(
            read(Function::PreSamlResponse, r#"{"append_attribute":[{"value":["secret"]}]}"#),
            Err(field_error("response.append_attribute[0].name", "is missing"))
        );
    }
}
