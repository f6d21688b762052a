//! `GET /healthz`: whether the settings are good (each problem by setting name), the version, and
//! what the isolate knows of itself.

use serde::Serialize;

use crate::config::{Feature, Problem};

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    version: &'static str,
    /// The isolate's wasm linear memory, which only grows: a leak in the worker shows here.
    #[serde(skip_serializing_if = "Option::is_none")]
    wasm_memory_bytes: Option<u64>,
    /// How this isolate computed its last signature MAC ("webcrypto", or "wasm" after a fallback).
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [HealthProblem<'a>],
    /// Each feature, on or off, when the settings are good.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    features: &'a [Feature],
}

#[derive(Serialize)]
struct HealthProblem<'a> {
    setting: &'a str,
    problem: &'a str,
}

/// `200 {"status":"ok","version":..}`, or `503` listing each problem by setting name; with the
/// size of the wasm memory when the runtime knows it, and how the isolate computed its last
/// signature MAC once it has checked one, and the features, each on or off.
pub fn health(
    problems: &[Problem],
    features: &[Feature],
    wasm_memory_bytes: Option<u64>,
    mac: Option<&'static str>,
) -> (u16, String) {
    let version = env!("CARGO_PKG_VERSION");
    let (status, state) = if problems.is_empty() { (200, "ok") } else { (503, "misconfigured") };
    let problems: Vec<_> = problems.iter().map(|p| HealthProblem { setting: p.setting, problem: &p.problem }).collect();
    let body = serde_json::to_string(&Health {
        status: state,
        version,
        wasm_memory_bytes,
        mac,
        problems: &problems,
        features,
    })
    .unwrap_or_else(|_| format!(r#"{{"status":"{state}"}}"#));
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reports_ok_or_the_problems_by_name() {
        let (status, body) = health(&[], &[], None, None);
        assert_eq!(status, 200);
        assert_eq!(body, format!(r#"{{"status":"ok","version":"{}"}}"#, env!("CARGO_PKG_VERSION")));
        let (_, body) = health(&[], &[], Some(1_114_112), None);
        assert!(body.ends_with(r#""wasm_memory_bytes":1114112}"#), "{body}");
        let (_, body) = health(&[], &[], Some(1_114_112), Some("webcrypto"));
        assert!(body.ends_with(r#""wasm_memory_bytes":1114112,"mac":"webcrypto"}"#), "{body}");
        let features = [
            Feature { name: "groups", on: true, needs: vec![] },
            Feature { name: "microsoft_token_claim", on: false, needs: vec!["MS_TOKEN_CLIENT_IDS"] },
        ];
        let (_, body) = health(&[], &features, None, None);
        assert!(
            body.ends_with(r#""features":[{"name":"groups","on":true},{"name":"microsoft_token_claim","on":false,"needs":["MS_TOKEN_CLIENT_IDS"]}]}"#),
            "{body}"
        );
        let problems = vec![Problem { setting: "ZITADEL_SIGNING_KEY", problem: "is not set".into() }];
        let (status, body) = health(&problems, &[], None, None);
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "misconfigured");
        assert_eq!(v["problems"][0]["setting"], "ZITADEL_SIGNING_KEY");
    }
}
