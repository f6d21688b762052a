//! The answer a `restCall` target gives ZITADEL (ContextInfoResponse).
//!
//! `append_claims` is always written, so "no claims" is an explicit `[]`; the other two fields are
//! left out when empty. Metadata values are standard padded base64, the only form ZITADEL accepts.
//!
//! The answer is written by hand rather than through serde: it is a fixed shape of strings, and
//! checking a whole string for characters to escape at once (instead of serde_json's byte by
//! byte) is most of the time spent on it, as the answer carries a token of a few KB.

use base64::Engine;
use serde::Serialize;

#[cfg_attr(test, derive(Debug))]
#[derive(Default, Clone, PartialEq)]
pub struct ContextInfoResponse {
    pub append_claims: Vec<Claim>,
    pub set_user_metadata: Vec<Metadata>,
    pub append_log_claims: Vec<String>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Clone, PartialEq)]
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
    /// The claim keys, for the log line (never the values).
    pub fn claim_keys(&self) -> Vec<&str> {
        self.append_claims.iter().map(|c| c.key.as_str()).collect()
    }

    pub fn to_json(&self) -> String {
        // Sized up front: the answer carries a token of a few KB, and growing to it copies it.
        let mut out = String::with_capacity(self.estimated_len());
        out.push_str(r#"{"append_claims":["#);
        for (i, claim) in self.append_claims.iter().enumerate() {
            push_entry_key(&mut out, i, &claim.key);
            match &claim.value {
                ClaimValue::Text(text) => push_json_str(&mut out, text),
                ClaimValue::List(items) => push_json_list(&mut out, items.iter()),
                ClaimValue::Shared(items) => push_json_list(&mut out, items.iter().map(|i| &**i)),
            }
            out.push('}');
        }
        out.push(']');
        if !self.set_user_metadata.is_empty() {
            out.push_str(r#","set_user_metadata":["#);
            for (i, entry) in self.set_user_metadata.iter().enumerate() {
                push_entry_key(&mut out, i, &entry.key);
                push_json_str(&mut out, &entry.value);
                out.push('}');
            }
            out.push(']');
        }
        if !self.append_log_claims.is_empty() {
            out.push_str(r#","append_log_claims":"#);
            push_json_list(&mut out, self.append_log_claims.iter().map(String::as_str));
        }
        out.push('}');
        out
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
        64 + claims + metadata + log_claims
    }
}

/// Opens the `i`th `{"key":…,"value":` entry of a list; the caller writes the value and `}`.
fn push_entry_key(out: &mut String, i: usize, key: &str) {
    out.push_str(if i == 0 { r#"{"key":"# } else { r#",{"key":"# });
    push_json_str(out, key);
    out.push_str(r#","value":"#);
}

fn push_json_list<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, item);
    }
    out.push(']');
}

/// Appends `text` as a JSON string, escaped exactly as serde_json escapes it: `"`, `\` and the
/// control characters below U+0020, nothing else.
pub fn push_json_str(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    if !needs_escape(text.as_bytes()) {
        out.push_str(text);
    } else {
        let mut plain_from = 0;
        for (at, byte) in text.bytes().enumerate() {
            let short = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Escaped bytes are ASCII, so `at` is always a character boundary.
            out.push_str(&text[plain_from..at]);
            if short.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(byte >> 4) as usize] as char);
                out.push(HEX[(byte & 0xf) as usize] as char);
            } else {
                out.push_str(short);
            }
            plain_from = at + 1;
        }
        out.push_str(&text[plain_from..]);
    }
    out.push('"');
}

/// True if any byte must be escaped. Looks at eight bytes at a time (serde_json's own trick for
/// reading strings), as a token is a few KB that never needs escaping.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero exactly when some byte of `x` is below `n` (for n <= 128).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * n as u64) & !x & HIGH;
    let special = |x: u64| below(x, 0x20) | below(x ^ (ONES * b'"' as u64), 1) | below(x ^ (ONES * b'\\' as u64), 1);
    let mut words = bytes.chunks_exact(8);
    let found = words.by_ref().any(|word| word.try_into().map_or(true, |w| special(u64::from_le_bytes(w)) != 0));
    found || words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_response_is_an_explicit_empty_claim_list() {
        assert_eq!(ContextInfoResponse::default().to_json(), r#"{"append_claims":[]}"#);
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
