//! The answer a `restCall` target gives ZITADEL for a function (ContextInfoResponse).
//!
//! The entries the earlier targets of the execution gave come first, as received (see
//! [`crate::contract::chain`]), then this worker's own. A list is left out only when it is empty in total:
//! ZITADEL replaces the shared list with any list present in an answer. Metadata values are
//! standard padded base64, the only form ZITADEL accepts. `presamlresponse` answers carry
//! `set_user_metadata` and `append_attribute`; the OIDC functions the other three lists.
//!
//! The answer is written by serde_json, as every JSON the worker writes; the earlier entries as
//! [`serde_json::value::RawValue`]s, so that they are copied byte for byte.

use base64::Engine;
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use crate::contract::chain::{Earlier, Entry};

/// The name format of every SAML attribute the worker adds.
pub const SAML_NAME_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";

#[cfg_attr(test, derive(Debug))]
#[derive(Default, Clone, PartialEq)]
pub struct ContextInfoResponse {
    pub append_claims: Vec<Claim>,
    pub set_user_metadata: Vec<Metadata>,
    pub append_log_claims: Vec<String>,
    /// SAML attributes: each a name (its `name_format` is [`SAML_NAME_FORMAT`]) and its values.
    pub append_attribute: Vec<Claim>,
    /// What the earlier targets answered, written before the worker's own entries.
    pub earlier: Earlier,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Clone, PartialEq, Serialize)]
pub struct Claim {
    pub key: String,
    pub value: ClaimValue,
}

/// Claim values this worker produces: a string or a list of strings. Equality is by value: a
/// shared list equals a plain list of the same strings.
#[cfg_attr(test, derive(Debug))]
#[derive(Clone)]
pub enum ClaimValue {
    Text(String),
    List(StrList),
    /// A list of strings shared with a cached permission map (no copies per call).
    Shared(Vec<std::rc::Rc<str>>),
}

/// Outside unit tests a claim value prints only its size: it may be a token or metadata values.
#[cfg(not(test))]
impl std::fmt::Debug for ClaimValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimValue::Text(text) => write!(f, "Text(<{} bytes>)", text.len()),
            ClaimValue::List(_) | ClaimValue::Shared(_) => {
                write!(f, "List(<{} items>)", self.items().map_or(0, |items| items.len()))
            }
        }
    }
}

impl ClaimValue {
    fn items(&self) -> Option<Vec<&str>> {
        match self {
            ClaimValue::Text(_) => None,
            ClaimValue::List(items) => Some(items.iter().collect()),
            ClaimValue::Shared(items) => Some(items.iter().map(|i| &**i).collect()),
        }
    }
}

impl PartialEq for ClaimValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ClaimValue::Text(a), ClaimValue::Text(b)) => a == b,
            _ => self.items().is_some() && self.items() == other.items(),
        }
    }
}

/// Strings kept end to end in one buffer: a claim of many short values (flat roles, groups) costs
/// two allocations instead of one per value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrList {
    text: String,
    ends: Vec<usize>,
}

impl StrList {
    /// Appends one string, given in parts.
    pub fn push(&mut self, parts: &[&str]) {
        parts.iter().for_each(|part| self.text.push_str(part));
        self.ends.push(self.text.len());
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            // Every end is where a whole string ended, so always a character boundary.
            let item = self.text.get(start..end).unwrap_or_default();
            start = end;
            item
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The bytes of all strings together.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for StrList {
    fn from_iter<I: IntoIterator<Item = S>>(items: I) -> Self {
        let mut list = StrList::default();
        items.into_iter().for_each(|item| list.push(&[item.as_ref()]));
        list
    }
}

/// A metadata entry, `{"key":…,"value":…}`: in the answer's `set_user_metadata`, in the
/// `metadata` of a user Login V2 creates, and in the body of the v2 user metadata API.
#[derive(Clone, PartialEq, Serialize)]
pub struct Metadata {
    pub key: String,
    /// Standard padded base64 of the bytes to store.
    pub value: String,
}

impl Metadata {
    pub fn new(key: impl Into<String>, raw: &[u8]) -> Self {
        Metadata { key: key.into(), value: base64::engine::general_purpose::STANDARD.encode(raw) }
    }
}

// Metadata values are tokens more often than not: Debug shows only the key.
impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata").field("key", &self.key).finish_non_exhaustive()
    }
}

impl ContextInfoResponse {
    /// The keys of this worker's own claims and attributes, for the log line (never the values).
    pub fn claim_keys(&self) -> Vec<&str> {
        self.append_claims.iter().chain(&self.append_attribute).map(|c| c.key.as_str()).collect()
    }

    pub fn to_json(&self) -> String {
        // Sized up front: the answer carries a token of a few KB, and growing to it copies it.
        let mut out = Vec::with_capacity(self.estimated_len());
        let e = &self.earlier;
        let answer = Answer {
            append_claims: Carried { earlier: &e.append_claims, own: self.append_claims.iter() },
            set_user_metadata: Carried { earlier: &e.set_user_metadata, own: self.set_user_metadata.iter() },
            append_log_claims: Carried { earlier: &e.append_log_claims, own: self.append_log_claims.iter() },
            append_attribute: Carried {
                earlier: &e.append_attribute,
                own: self.append_attribute.iter().map(Attribute as fn(_) -> _),
            },
        };
        // Writing strings and raw JSON into a Vec cannot fail, and leaves UTF-8.
        match serde_json::to_writer(&mut out, &answer) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The answer's length without escapes: its strings plus their quotes and punctuation.
    fn estimated_len(&self) -> usize {
        let value = |value: &ClaimValue| match value {
            ClaimValue::Text(text) => text.len() + 2,
            ClaimValue::List(items) => items.text.len() + 3 * items.len() + 2,
            ClaimValue::Shared(items) => items.iter().map(|i| i.len() + 3).sum::<usize>() + 2,
        };
        let claims: usize = self.append_claims.iter().map(|c| c.key.len() + value(&c.value) + 20).sum();
        let metadata: usize = self.set_user_metadata.iter().map(|m| m.key.len() + m.value.len() + 24).sum();
        let log_claims: usize = self.append_log_claims.iter().map(|l| l.len() + 3).sum();
        let attributes: usize = self.append_attribute.iter().map(|a| a.key.len() + value(&a.value) + 100).sum();
        let e = &self.earlier;
        let earlier: usize = [&e.append_claims, &e.set_user_metadata, &e.append_log_claims, &e.append_attribute]
            .into_iter()
            .flatten()
            .map(|entry| entry.raw.get().len() + 1)
            .sum();
        96 + claims + metadata + log_claims + attributes + earlier
    }
}

/// The answer as written: each list the earlier targets' entries then the worker's own, and none
/// that would be empty.
#[derive(Serialize)]
struct Answer<'a> {
    #[serde(skip_serializing_if = "Carried::is_empty")]
    append_claims: Carried<'a, Entry, std::slice::Iter<'a, Claim>>,
    #[serde(skip_serializing_if = "Carried::is_empty")]
    set_user_metadata: Carried<'a, Entry, std::slice::Iter<'a, Metadata>>,
    #[serde(skip_serializing_if = "Carried::is_empty")]
    append_log_claims: Carried<'a, Entry, std::slice::Iter<'a, String>>,
    #[serde(skip_serializing_if = "Carried::is_empty")]
    append_attribute: Carried<'a, Entry, Attributes<'a>>,
}

type Attributes<'a> = std::iter::Map<std::slice::Iter<'a, Claim>, fn(&'a Claim) -> Attribute<'a>>;

/// A JSON list of entries carried forward as they came (each serialized as its raw JSON), then
/// new ones: an answer's lists, and the `metadata` of a user Login V2 creates.
pub struct Carried<'a, E, I> {
    pub earlier: &'a [E],
    pub own: I,
}

impl<E, I: ExactSizeIterator> Carried<'_, E, I> {
    pub fn is_empty(&self) -> bool {
        self.earlier.is_empty() && self.own.len() == 0
    }
}

impl<E: Serialize, I: ExactSizeIterator + Clone> Serialize for Carried<'_, E, I>
where
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.earlier.len() + self.own.len()))?;
        for entry in self.earlier {
            list.serialize_element(entry)?;
        }
        for entry in self.own.clone() {
            list.serialize_element(&entry)?;
        }
        list.end()
    }
}

impl Serialize for ClaimValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ClaimValue::Text(text) => serialize_text(text, serializer),
            ClaimValue::List(items) => serializer.collect_seq(items.iter()),
            ClaimValue::Shared(items) => serializer.collect_seq(items.iter().map(|i| &**i)),
        }
    }
}

/// A claim's string. serde_json looks up every byte of a string in its escape table, which for
/// the few KB of a Microsoft token cost more than the rest of the answer (callgrind: 21 k of the
/// 24 k instructions per request that serde's writer added over the hand-written one). A long
/// string without a backslash is therefore handed over quoted as raw JSON: serde's reader checks
/// it a word at a time, and refuses a quote or a control character in it, which then goes the
/// usual way. The bytes written are the same either way.
fn serialize_text<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    const LONG: usize = 256;
    if text.len() >= LONG && !text.as_bytes().contains(&b'\\') {
        if let Ok(raw) = serde_json::value::RawValue::from_string(format!("\"{text}\"")) {
            return raw.serialize(serializer);
        }
    }
    serializer.serialize_str(text)
}

/// A claim as a SAML attribute: `{"name":…,"name_format":…,"value":[…]}`, its values always a list.
struct Attribute<'a>(&'a Claim);

impl Serialize for Attribute<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            name: &'a str,
            name_format: &'static str,
            value: Values<'a>,
        }
        struct Values<'a>(&'a ClaimValue);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self.0 {
                    // Attribute values are lists of strings.
                    ClaimValue::Text(text) => serializer.collect_seq([text]),
                    list => list.serialize(serializer),
                }
            }
        }
        let Claim { key, value } = self.0;
        Wire { name: key, name_format: SAML_NAME_FORMAT, value: Values(value) }.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_answer_leaves_every_list_out() {
        // An absent list keeps what the earlier targets gave; `[]` would erase it.
        assert_eq!(ContextInfoResponse::default().to_json(), "{}");
    }

    #[test]
    fn a_long_string_is_written_as_serde_writes_it_whatever_it_holds() {
        let token = "eyJ0eXAiOiJKV1QifQ.".to_string() + &"aB-_9".repeat(100);
        let cases = [
            token.clone(),
            format!("{token}\"}}],\"x\":[{{\""),
            format!("{token}\\n"),
            format!("{token}\\\""),
            format!("{token}\u{1}\n\t"),
            format!("{token}ü€😀\u{7f}"),
            "short \"one\"".to_string(),
        ];
        for text in cases {
            let answer = ContextInfoResponse {
                append_claims: vec![Claim { key: "k".into(), value: ClaimValue::Text(text.clone()) }],
                ..Default::default()
            };
            let expected = serde_json::json!({"append_claims": [{"key": "k", "value": text}]});
            assert_eq!(
                answer.to_json(),
                serde_json::to_string(&expected).unwrap(),
                "{}",
                &text[token.len().min(text.len())..]
            );
        }
    }

    fn earlier(response: &str) -> crate::contract::chain::Earlier {
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(response).unwrap();
        crate::contract::chain::earlier(crate::contract::payload::Function::PreAccessToken, Some(&raw)).unwrap()
    }

    #[test]
    fn earlier_entries_come_first_byte_for_byte_then_ours() {
        let response = ContextInfoResponse {
            append_claims: vec![Claim { key: "permissions".into(), value: ClaimValue::Text("p".into()) }],
            append_log_claims: vec!["ours".into()],
            earlier: earlier(
                r#"{"append_claims":[{"key":"groups","value":{"n": 1.0}}],"set_user_metadata":[{"State":0,"Key":"k","Value":"dg=="}],"append_log_claims":["theirs"]}"#,
            ),
            ..Default::default()
        };
        assert_eq!(
            response.to_json(),
            r#"{"append_claims":[{"key":"groups","value":{"n": 1.0}},{"key":"permissions","value":"p"}],"set_user_metadata":[{"State":0,"Key":"k","Value":"dg=="}],"append_log_claims":["theirs","ours"]}"#
        );
        let only_earlier =
            ContextInfoResponse { earlier: earlier(r#"{"append_log_claims":["theirs"]}"#), ..Default::default() };
        assert_eq!(only_earlier.to_json(), r#"{"append_log_claims":["theirs"]}"#);
    }

    #[test]
    fn saml_attributes_have_a_name_the_basic_name_format_and_string_values() {
        let response = ContextInfoResponse {
            append_attribute: vec![
                Claim { key: "permissions".into(), value: ClaimValue::List(StrList::from_iter(["a", "b"])) },
                Claim { key: "one".into(), value: ClaimValue::Text("x".into()) },
            ],
            ..Default::default()
        };
        assert_eq!(
            response.to_json(),
            r#"{"append_attribute":[{"name":"permissions","name_format":"urn:oasis:names:tc:SAML:2.0:attrname-format:basic","value":["a","b"]},{"name":"one","name_format":"urn:oasis:names:tc:SAML:2.0:attrname-format:basic","value":["x"]}]}"#
        );
        assert!(response.to_json().len() <= response.estimated_len());
    }

    #[test]
    fn full_response_has_the_shape_zitadel_reads() {
        let response = ContextInfoResponse {
            append_claims: vec![
                Claim { key: "permissions".into(), value: ClaimValue::List(StrList::from_iter(["posts:read"])) },
                Claim { key: "urn:custom:ms_access_token".into(), value: ClaimValue::Text("tok".into()) },
            ],
            set_user_metadata: vec![Metadata::new("k", b"\xffbytes")],
            append_log_claims: vec!["text".into()],
            ..Default::default()
        };
        assert_eq!(
            response.to_json(),
            r#"{"append_claims":[{"key":"permissions","value":["posts:read"]},{"key":"urn:custom:ms_access_token","value":"tok"}],"set_user_metadata":[{"key":"k","value":"/2J5dGVz"}],"append_log_claims":["text"]}"#
        );
        assert_eq!(response.claim_keys(), ["permissions", "urn:custom:ms_access_token"]);
        // Sized up front: without escapes the buffer never grows.
        assert!(response.to_json().len() <= response.estimated_len());
    }

    #[test]
    fn shared_and_plain_lists_serialize_and_compare_alike() {
        let shared = ClaimValue::Shared(vec![std::rc::Rc::from("a"), std::rc::Rc::from("b")]);
        let plain = ClaimValue::List(StrList::from_iter(["a", "b"]));
        assert_eq!(shared, plain);
        let answer =
            |value| ContextInfoResponse { append_claims: vec![Claim { key: "k".into(), value }], ..Default::default() };
        assert_eq!(answer(shared).to_json(), answer(plain.clone()).to_json());
        assert_ne!(plain, ClaimValue::Text("a".into()));
        assert_ne!(ClaimValue::List(StrList::default()), ClaimValue::List(StrList::from_iter(["a"])));
    }

    #[test]
    fn str_list_gives_back_each_string_as_pushed() {
        let mut list = StrList::default();
        assert!(list.is_empty() && list.iter().next().is_none());
        list.push(&["p1", ":", "admin"]);
        list.push(&[]);
        list.push(&["é", "😀"]);
        assert_eq!(list.iter().collect::<Vec<_>>(), ["p1:admin", "", "é😀"]);
        assert_eq!(list.len(), 3);
        assert_eq!(StrList::from_iter(["a", "b"]).iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn metadata_is_standard_padded_base64() {
        assert_eq!(Metadata::new("k", b"a").value, "YQ==");
        assert_eq!(Metadata::new("k", &[0xfb, 0xff]).value, "+/8=");
    }

    #[test]
    fn metadata_debug_hides_the_value() {
        let debug = format!("{:?}", Metadata::new("microsoft_access_token", b"secret-token"));
        assert!(debug.contains("microsoft_access_token") && !debug.contains(&Metadata::new("", b"secret-token").value));
    }
}
