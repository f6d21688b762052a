//! What one request did, returned by the code that did it: the [`Trace`]. The request's log line
//! ([`LogLine`]) and a call's `append_log_claims` ([`Trace::log_claims`]) are both made from it,
//! each in one place. It holds ids, names, counts and timings; never a token, key or metadata
//! value.

use std::borrow::Cow;

use serde::Serialize;

/// What happened while a request was answered. Each step returns the part it knows; the caller
/// adds them in order with [`Trace::absorb`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Trace {
    pub function: Option<&'static str>,
    /// What the body was: `json`, `jwt` (signed) or `jwe` (encrypted).
    pub payload: Option<&'static str>,
    /// The method of a request or response execution.
    pub api_method: Option<String>,
    pub user_id: Option<String>,
    pub org_id: Option<String>,
    /// The client a token exchange or a `/connections` call was made for.
    pub client_id: Option<String>,
    /// `ok`, or the error code of the answer.
    pub outcome: &'static str,
    pub status: u16,
    /// Keys of the claims returned.
    pub claims: Vec<String>,
    /// How many distinct roles the permissions claim looked up.
    pub roles: usize,
    /// Where the permission map came from: hit, miss, kv, shared, stale or off.
    pub cache: Option<&'static str>,
    /// Why the ZITADEL API gave no usable answer.
    pub upstream_error: Option<&'static str>,
    /// Mapping metadata keys that could not be read, with the reason (never the value).
    pub skipped_metadata_keys: Vec<String>,
    /// The Microsoft token claim: passed, refreshed, stale, omitted or other_client; for a token
    /// capture: stored, added (to the user about to be created), or why not.
    pub ms_token: Option<&'static str>,
    /// How many entries the earlier targets of the execution gave (carried forward in the answer).
    pub earlier_entries: usize,
    /// Why a claim was left out, when it is not an error.
    pub notes: Vec<Cow<'static, str>>,
    /// The claims left out, each with why: with `LOG_CLAIMS`, the call's log claims.
    pub omitted: Vec<Omitted>,
    /// The connect flow's last step: whether the tokens were written to the user's metadata.
    pub metadata_written: Option<bool>,
}

/// A claim the call left out, and why (a fixed text or a code, never a value).
#[derive(Debug, Clone, PartialEq)]
pub struct Omitted {
    pub claim: String,
    pub why: Cow<'static, str>,
}

impl Trace {
    /// Adds what a later step says: its values win, its lists come after these.
    pub fn absorb(&mut self, later: Trace) {
        let Trace {
            function,
            payload,
            api_method,
            user_id,
            org_id,
            client_id,
            outcome,
            status,
            claims,
            roles,
            cache,
            upstream_error,
            skipped_metadata_keys,
            ms_token,
            earlier_entries,
            notes,
            omitted,
            metadata_written,
        } = later;
        self.function = function.or(self.function);
        self.payload = payload.or(self.payload);
        if api_method.is_some() {
            self.api_method = api_method;
        }
        if user_id.is_some() {
            self.user_id = user_id;
        }
        if org_id.is_some() {
            self.org_id = org_id;
        }
        if client_id.is_some() {
            self.client_id = client_id;
        }
        if !outcome.is_empty() {
            (self.outcome, self.status) = (outcome, status);
        }
        self.claims.extend(claims);
        self.roles = if roles > 0 { roles } else { self.roles };
        self.cache = cache.or(self.cache);
        self.upstream_error = upstream_error.or(self.upstream_error);
        self.skipped_metadata_keys.extend(skipped_metadata_keys);
        self.ms_token = ms_token.or(self.ms_token);
        self.earlier_entries = if earlier_entries > 0 { earlier_entries } else { self.earlier_entries };
        self.notes.extend(notes);
        self.omitted.extend(omitted);
        self.metadata_written = metadata_written.or(self.metadata_written);
    }

    /// Notes that `claim` was left out, and why.
    pub fn omit(&mut self, claim: &str, why: impl Into<Cow<'static, str>>) {
        self.omitted.push(Omitted { claim: claim.to_string(), why: why.into() });
    }

    /// The call's log claims (`append_log_claims`): one line per claim left out.
    pub fn log_claims(&self) -> Vec<String> {
        self.omitted.iter().map(|o| format!("{} omitted: {}", o.claim, o.why)).collect()
    }
}

/// The one structured log line written per request: what was asked, of whom, and how it ended.
#[derive(Serialize)]
pub struct LogLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    outcome: &'static str,
    status: u16,
    claims: &'a [String],
    #[serde(skip_serializing_if = "is_zero")]
    roles: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_error: Option<&'static str>,
    /// Outbound requests made for this request.
    #[serde(skip_serializing_if = "is_zero")]
    upstream_calls: usize,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    skipped_metadata_keys: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    ms_token: Option<&'static str>,
    #[serde(skip_serializing_if = "is_zero")]
    earlier_entries: usize,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'a [Cow<'static, str>],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata_written: Option<bool>,
    duration_ms: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl<'a> LogLine<'a> {
    /// The line of a request to `method` `path` that made `upstream_calls` outbound requests and
    /// took `duration_ms`, with what its trace says.
    pub fn new(method: &'a str, path: &'a str, trace: &'a Trace, upstream_calls: usize, duration_ms: u64) -> Self {
        LogLine {
            method,
            path,
            function: trace.function,
            payload: trace.payload,
            api_method: trace.api_method.as_deref(),
            user_id: trace.user_id.as_deref(),
            org_id: trace.org_id.as_deref(),
            client_id: trace.client_id.as_deref(),
            outcome: trace.outcome,
            status: trace.status,
            claims: &trace.claims,
            roles: trace.roles,
            cache: trace.cache,
            upstream_error: trace.upstream_error,
            upstream_calls,
            skipped_metadata_keys: &trace.skipped_metadata_keys,
            ms_token: trace.ms_token,
            earlier_entries: trace.earlier_entries,
            notes: &trace.notes,
            metadata_written: trace.metadata_written,
            duration_ms,
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
        let trace = Trace {
            function: Some("function/preaccesstoken"),
            user_id: Some("u1".into()),
            outcome: "ok",
            status: 200,
            claims: vec!["permissions".into()],
            ..Trace::default()
        };
        assert_eq!(
            LogLine::new("POST", "/", &trace, 0, 3).to_json(),
            r#"{"method":"POST","path":"/","function":"function/preaccesstoken","user_id":"u1","outcome":"ok","status":200,"claims":["permissions"],"duration_ms":3}"#
        );
    }

    #[test]
    fn a_later_step_wins_and_its_lists_come_after() {
        let mut joined = Trace {
            cache: Some("stale"),
            upstream_error: Some("timeout"),
            notes: vec!["a".into()],
            ..Trace::default()
        };
        joined.absorb(Trace {
            upstream_error: Some("rate_limited"),
            roles: 2,
            notes: vec!["b".into()],
            ..Trace::default()
        });
        assert_eq!((joined.cache, joined.upstream_error, joined.roles), (Some("stale"), Some("rate_limited"), 2));
        assert_eq!(joined.notes, ["a", "b"]);
    }

    #[test]
    fn log_claims_are_made_of_the_claims_left_out() {
        let mut trace = Trace::default();
        trace.omit("permissions", "ZITADEL API timeout");
        trace.omit("groups", "more than 1 MiB");
        assert_eq!(trace.log_claims(), ["permissions omitted: ZITADEL API timeout", "groups omitted: more than 1 MiB"]);
    }
}
