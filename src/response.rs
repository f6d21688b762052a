//! The answer a `restCall` target gives ZITADEL (ContextInfoResponse).
//!
//! `append_claims` is always written, so "no claims" is an explicit `[]`; the other two fields are
//! left out when empty. Metadata values are standard padded base64, the only form ZITADEL accepts.

use base64::Engine;
use serde::Serialize;

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ContextInfoResponse {
    pub append_claims: Vec<Claim>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_user_metadata: Vec<Metadata>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub append_log_claims: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub key: String,
    pub value: ClaimValue,
}

/// Claim values this worker produces: a string or a list of strings. Equality is by value: a
/// shared list equals a plain list of the same strings.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ClaimValue {
    Text(String),
    List(Vec<String>),
    /// A list of strings shared with a cached permission map (no copies per call).
    Shared(Vec<std::rc::Rc<str>>),
}

impl ClaimValue {
    fn items(&self) -> Option<Vec<&str>> {
        match self {
            ClaimValue::Text(_) => None,
            ClaimValue::List(items) => Some(items.iter().map(String::as_str).collect()),
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
        // Serializing strings and lists into a String cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"append_claims":[]}"#.to_string())
    }
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
                Claim { key: "permissions".into(), value: ClaimValue::List(vec!["posts:read".into()]) },
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
    }

    #[test]
    fn shared_and_plain_lists_serialize_and_compare_alike() {
        let shared = ClaimValue::Shared(vec![std::rc::Rc::from("a"), std::rc::Rc::from("b")]);
        let plain = ClaimValue::List(vec!["a".into(), "b".into()]);
        assert_eq!(shared, plain);
        assert_eq!(serde_json::to_string(&shared).unwrap(), serde_json::to_string(&plain).unwrap());
        assert_ne!(plain, ClaimValue::Text("a".into()));
        assert_ne!(ClaimValue::List(vec![]), ClaimValue::List(vec!["a".into()]));
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
