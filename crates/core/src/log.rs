//! The one structured log line written per request: what was asked, of whom, and how it ended.
//! It holds ids, names, counts and timings; never a token, key or metadata value.

use std::borrow::Cow;

use serde::Serialize;

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct RequestLog {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<&'static str>,
    /// What the body was: `json`, `jwt` (signed) or `jwe` (encrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'static str>,
    /// The method of a request or response execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// `ok`, or the error code of the answer.
    pub outcome: &'static str,
    pub status: u16,
    /// Keys of the claims returned.
    pub claims: Vec<String>,
    /// How many distinct roles the permissions claim looked up.
    #[serde(skip_serializing_if = "is_zero")]
    pub roles: usize,
    /// Where the permission map came from: hit, miss, kv, shared, stale or off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// Why the ZITADEL API gave no usable answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_error: Option<&'static str>,
    /// Outbound requests made for this call.
    #[serde(skip_serializing_if = "is_zero")]
    pub upstream_calls: usize,
    /// Mapping metadata keys that could not be read, with the reason (never the value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_metadata_keys: Vec<String>,
    /// The Microsoft token claim: passed, refreshed, stale, omitted or other_client; for a token
    /// capture: stored, added (to the user about to be created), or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms_token: Option<&'static str>,
    /// How many entries the earlier targets of the execution gave (carried forward in the answer).
    #[serde(skip_serializing_if = "is_zero")]
    pub earlier_entries: usize,
    /// Why a claim was left out, when it is not an error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Cow<'static, str>>,
    pub duration_ms: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RequestLog {
    pub fn new(method: &str, path: &str) -> Self {
        RequestLog {
            method: method.to_string(),
            path: path.to_string(),
            outcome: "ok",
            status: 200,
            ..Default::default()
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_is_one_json_object_without_absent_fields() {
        let mut log = RequestLog::new("POST", "/");
        log.function = Some("function/preaccesstoken");
        log.user_id = Some("u1".into());
        log.claims = vec!["permissions".into()];
        log.duration_ms = 3;
        assert_eq!(
            log.to_json(),
            r#"{"method":"POST","path":"/","function":"function/preaccesstoken","user_id":"u1","outcome":"ok","status":200,"claims":["permissions"],"duration_ms":3}"#
        );
    }
}
