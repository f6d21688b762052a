//! The answer ZITADEL reads (property 12).

use proptest::prelude::*;

use crate::support::*;

/// Text that is mostly what JSON escapes: quotes, backslashes, control characters (DEL and
/// non-ASCII too, which it does not), at every position around the 16-byte blocks.
fn escapable_text() -> BoxedStrategy<String> {
    let special =
        select(vec!['"', '\\', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', '\u{7f}', 'é', '😀', 'a']);
    prop::collection::vec(prop_oneof![3 => special, 1 => any::<char>()], 0..70).prop_map(String::from_iter).boxed()
}

fn claim_value() -> BoxedStrategy<(ClaimValue, Value)> {
    let list = || prop::collection::vec(escapable_text(), 0..4);
    prop_oneof![
        escapable_text().prop_map(|t| (ClaimValue::Text(t.clone()), json!(t))),
        list().prop_map(|l| (ClaimValue::List(l.iter().collect()), json!(l))),
        list().prop_map(|l| (ClaimValue::Shared(l.iter().map(|t| Rc::from(t.as_str())).collect()), json!(l))),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(cases(512))]

    /// 12. The answer escapes every string exactly as serde_json does, and is
    /// the JSON object ZITADEL reads: each list holds the earlier targets' entries as they came,
    /// then the worker's own, and is left out only when it is empty in total.
    #[test]
    fn answer_is_the_json_serde_would_write(
        text in escapable_text(),
        claims in prop::collection::vec((escapable_text(), claim_value()), 0..4),
        metadata in prop::collection::vec((escapable_text(), prop::collection::vec(any::<u8>(), 0..40)), 0..3),
        log_claims in prop::collection::vec(escapable_text(), 0..3),
        attributes in prop::collection::vec((escapable_text(), claim_value()), 0..3),
        earlier_claims in prop::collection::vec((escapable_text(), any_json()), 0..3),
        earlier_logs in prop::collection::vec(escapable_text(), 0..3),
        earlier_attributes in prop::collection::vec(escapable_text(), 0..2),
    ) {
        let written = ContextInfoResponse { append_log_claims: vec![text.clone()], ..Default::default() }.to_json();
        prop_assert_eq!(written, format!(r#"{{"append_log_claims":[{}]}}"#, serde_json::to_string(&text).unwrap()));

        // Compared after the same trip through text as the answer's (serde_json's float parsing
        // does not round-trip every f64); the entries themselves are echoed byte for byte.
        let sent_claims: Vec<Value> = earlier_claims.iter().map(|(key, value)| json!({ "value": value, "key": key })).collect();
        let earlier_claims: Vec<Value> = sent_claims.iter().map(|c| serde_json::from_str(&c.to_string()).unwrap()).collect();
        let earlier_attributes: Vec<Value> =
            earlier_attributes.iter().map(|name| json!({ "name": name, "name_format": "", "value": [name] })).collect();
        let earlier_response = json!({ "append_claims": sent_claims, "append_log_claims": earlier_logs, "append_attribute": earlier_attributes });
        let raw = serde_json::value::RawValue::from_string(earlier_response.to_string()).unwrap();
        let oidc = chain::earlier(Function::PreAccessToken, Some(&raw)).unwrap();
        let saml = chain::earlier(Function::PreSamlResponse, Some(&raw)).unwrap();
        let earlier = chain::Earlier { append_attribute: saml.append_attribute, ..oidc };

        let answer = ContextInfoResponse {
            append_claims: claims.iter().map(|(key, (value, _))| Claim { key: key.clone(), value: value.clone() }).collect(),
            set_user_metadata: metadata.iter().map(|(key, raw)| Metadata::new(key.as_str(), raw)).collect(),
            append_log_claims: log_claims.clone(),
            append_attribute: attributes.iter().map(|(key, (value, _))| Claim { key: key.clone(), value: value.clone() }).collect(),
            earlier,
        };
        let mut expected = Map::new();
        let mut list = |name: &str, items: Vec<Value>| {
            if !items.is_empty() {
                expected.insert(name.into(), Value::Array(items));
            }
        };
        let own_claims = claims.iter().map(|(key, (_, value))| json!({ "key": key, "value": value }));
        list("append_claims", earlier_claims.iter().cloned().chain(own_claims).collect());
        list("set_user_metadata", metadata.iter().map(|(key, raw)| json!({ "key": key, "value": STANDARD.encode(raw) })).collect());
        list("append_log_claims", earlier_logs.iter().chain(&log_claims).map(|l| json!(l)).collect());
        let own_attributes = attributes.iter().map(|(name, (_, value))| {
            let values = if value.is_string() { json!([value]) } else { value.clone() };
            json!({ "name": name, "name_format": response::SAML_NAME_FORMAT, "value": values })
        });
        list("append_attribute", earlier_attributes.iter().cloned().chain(own_attributes).collect());
        let parsed: Value = serde_json::from_str(&answer.to_json()).unwrap();
        prop_assert_eq!(parsed, Value::Object(expected));
    }
}
