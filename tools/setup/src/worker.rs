//! The worker as the tool sees it: its `GET /healthz`, and one signed sample call like
//! `npm run sample`'s. The checks of a run are built from these: before any write in ZITADEL the
//! worker must answer as itself; after `wrangler secret put` it must have picked up what was
//! stored; after binding, a call signed with the target's key must pass.
//!
//! Nothing here sends the PAT: the worker is another party. The sample is signed with the key the
//! run stored (the HMAC goes out, never the key), and what comes back is printed as claim names
//! and values, without the answer's other fields.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use url::Url;

use crate::api::Answer;
use crate::error::Error;
use crate::secret::Secret;

/// The header ZITADEL signs its calls with.
pub const SIGNATURE_HEADER: &str = "ZITADEL-Signature";

/// The sample of `npm run sample` (a `preaccesstoken` call of a user with two roles), without its
/// user metadata: nothing in the sample looks like a token.
const SAMPLE: &str = include_str!("../../../tests/fixtures/payloads/preaccesstoken.json");

/// Calls to the worker.
pub trait Probe {
    /// `GET url`: the answer, whatever its status, or [`Error::WorkerUnreachable`].
    fn get(&mut self, url: &str) -> Result<Answer, Error>;
    /// `POST url` with a JSON `body` and the `ZITADEL-Signature` header `signature`.
    fn post(&mut self, url: &str, signature: &str, body: &str) -> Result<Answer, Error>;
}

/// What `/healthz` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `200 {"status":"ok"}`.
    Ready,
    /// `503 {"status":"misconfigured","problems":[...]}`: each problem as `(setting, problem)`.
    Misconfigured(Vec<(String, String)>),
}

impl Health {
    /// The settings its problems name.
    pub fn settings(&self) -> Vec<&str> {
        match self {
            Health::Ready => Vec::new(),
            Health::Misconfigured(problems) => problems.iter().map(|(s, _)| s.as_str()).collect(),
        }
    }
}

/// `<origin of endpoint>/healthz`: the worker's routes are at the root of its origin.
pub fn health_url(endpoint: &str) -> Result<String, Error> {
    let url = Url::parse(endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| Error::NotTheWorker { url: endpoint.to_string(), detail: "is not an http(s) URL".into() })?;
    Ok(format!("{}/healthz", url.origin().ascii_serialization()))
}

/// Reads the answer of `/healthz`: the worker's JSON, or the reason it is not the worker.
pub fn read_health(url: &str, answer: &Answer) -> Result<Health, Error> {
    let not_the_worker = |detail: String| Error::NotTheWorker { url: url.to_string(), detail };
    let body: Option<Value> = serde_json::from_str(&answer.body).ok();
    let status = body.as_ref().and_then(|b| b.get("status")).and_then(Value::as_str);
    match (answer.status, status) {
        (200, Some("ok")) => Ok(Health::Ready),
        (503, Some("misconfigured")) => {
            let problems = body
                .as_ref()
                .and_then(|b| b.get("problems"))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|p| Some((text(p.get("setting")?)?, text(p.get("problem")?)?)))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if problems.is_empty() {
                return Err(not_the_worker("answered 503 without the problems the worker lists".into()));
            }
            Ok(Health::Misconfigured(problems))
        }
        (404, _) => Err(not_the_worker(
            "answered 404: no worker of this project is there (deploy it with `npm run deploy`, and check the URL)"
                .into(),
        )),
        (code, _) if body.is_none() => Err(not_the_worker(format!("answered {code} with something that is not JSON"))),
        (code, _) => Err(not_the_worker(format!("answered {code} without the worker's {{\"status\"}}"))),
    }
}

/// A string of an answer, shortened and without control characters (it is printed).
fn text(value: &Value) -> Option<String> {
    value.as_str().map(|s| s.chars().filter(|c| !c.is_control()).take(300).collect())
}

/// The sample's body, as sent.
pub fn sample_body() -> String {
    let mut payload: Value = serde_json::from_str(SAMPLE).unwrap_or(Value::Null);
    if let Some(object) = payload.as_object_mut() {
        object.remove("user_metadata");
    }
    payload.to_string()
}

/// The `ZITADEL-Signature` of `body` at `t` (unix seconds) under `key`, as ZITADEL writes it:
/// `t=<t>,v1=<hex of HMAC-SHA256(key, "<t>.<body>")>`.
pub fn signature(key: &Secret, t: u64, body: &str) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// What the worker made of the sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// 200: the claims it adds (`append_claims`), each as name and compact JSON value, and the
    /// log claims (`append_log_claims`).
    Answered { claims: Vec<(String, String)>, log_claims: Vec<(String, String)> },
    /// 401 `invalid_signature`: the worker does not have the key (yet).
    KeyRefused,
    /// 400 `unsupported_payload_type`: the worker takes no plain JSON (`PAYLOAD_TYPES`).
    JsonRefused,
    /// Any other answer: its status and the worker's `error` code and `message`, if any.
    Failed { status: u16, error: Option<String>, message: Option<String> },
}

/// Reads the worker's answer to the sample.
pub fn read_sample(answer: &Answer) -> Sample {
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(text);
    match (answer.status, field("error").as_deref()) {
        (200, _) => {
            Sample::Answered { claims: claims(&body, "append_claims"), log_claims: claims(&body, "append_log_claims") }
        }
        (401, Some("invalid_signature")) => Sample::KeyRefused,
        (400, Some("unsupported_payload_type")) => Sample::JsonRefused,
        (status, error) => Sample::Failed { status, error: error.map(str::to_string), message: field("message") },
    }
}

/// The `{key, value}` items of the list `name`, each value as compact JSON of at most 200
/// characters. A string that looks like a token (40 characters or more, no space: the Microsoft
/// access token claim, say) is not shown, only its length: the output may be shared.
fn claims(body: &Value, name: &str) -> Vec<(String, String)> {
    let Some(items) = body.get(name).and_then(Value::as_array) else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let key = text(item.get("key")?)?;
            let value = match item.get("value") {
                Some(Value::String(s)) if s.chars().count() >= 40 && !s.contains(char::is_whitespace) => {
                    return Some((key, format!("<not shown: a token-like value of {} characters>", s.chars().count())));
                }
                Some(value) => value.to_string(),
                None => "null".into(),
            };
            let mut shown: String = value.chars().filter(|c| !c.is_control()).take(200).collect();
            if shown.len() < value.len() {
                shown.push('…');
            }
            Some((key, shown))
        })
        .collect()
}

/// The worker at `endpoint` (the target's), over a probe.
pub struct Worker<'p> {
    endpoint: String,
    health_url: String,
    probe: &'p mut dyn Probe,
}

impl<'p> Worker<'p> {
    pub fn new(endpoint: &str, probe: &'p mut dyn Probe) -> Result<Self, Error> {
        Ok(Worker { endpoint: endpoint.to_string(), health_url: health_url(endpoint)?, probe })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn health_url(&self) -> &str {
        &self.health_url
    }

    /// `GET /healthz`, read.
    pub fn health(&mut self) -> Result<Health, Error> {
        let answer = self.probe.get(&self.health_url)?;
        read_health(&self.health_url, &answer)
    }

    /// The sample, signed with `key` now, sent to the endpoint and read.
    pub fn sample(&mut self, key: &Secret) -> Result<Sample, Error> {
        let body = sample_body();
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let answer = self.probe.post(&self.endpoint, &signature(key, t, &body), &body)?;
        Ok(read_sample(&answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, body: body.into(), location: None }
    }

    #[test]
    fn the_health_url_is_at_the_root_of_the_endpoints_origin() {
        assert_eq!(health_url("https://w.example.workers.dev/").unwrap(), "https://w.example.workers.dev/healthz");
        assert_eq!(
            health_url("http://127.0.0.1:8787/zitadel/complement-token").unwrap(),
            "http://127.0.0.1:8787/healthz"
        );
        assert!(matches!(health_url("ftp://x/"), Err(Error::NotTheWorker { .. })));
    }

    #[test]
    fn health_is_the_workers_json_or_a_named_refusal() {
        let url = "https://w/healthz";
        assert_eq!(read_health(url, &answer(200, r#"{"status":"ok","version":"0.1.0"}"#)).unwrap(), Health::Ready);
        let misconfigured =
            r#"{"status":"misconfigured","problems":[{"setting":"ZITADEL_SIGNING_KEY","problem":"is not set"}]}"#;
        assert_eq!(
            read_health(url, &answer(503, misconfigured)).unwrap(),
            Health::Misconfigured(vec![("ZITADEL_SIGNING_KEY".into(), "is not set".into())])
        );
        for (status, body, says) in [
            (404, r#"{"error":"not_found"}"#, "answered 404: no worker"),
            (404, "Not Found", "answered 404: no worker"),
            (200, "<html>hello</html>", "answered 200 with something that is not JSON"),
            (200, r#"{"ok":true}"#, "answered 200 without the worker's {\"status\"}"),
            (503, r#"{"status":"misconfigured"}"#, "answered 503 without the problems"),
            (502, "Bad gateway", "answered 502 with something that is not JSON"),
        ] {
            let err = read_health(url, &answer(status, body)).unwrap_err().to_string();
            assert!(err.starts_with("https://w/healthz "), "{err}");
            assert!(err.contains(says), "{status} {body}: {err}");
        }
    }

    #[test]
    fn the_signature_is_zitadels_hmac_over_the_timestamp_and_body() {
        // HMAC-SHA256("key", "1700000000.{}"), computed with `openssl dgst -sha256 -hmac key`.
        let expected = "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae";
        let got = signature(&Secret::new("key"), 1_700_000_000, "{}");
        assert_eq!(got, expected);
        assert_ne!(got, signature(&Secret::new("other"), 1_700_000_000, "{}"));
        assert_ne!(got, signature(&Secret::new("key"), 1_700_000_001, "{}"));
    }

    #[test]
    fn the_sample_is_npm_run_samples_without_user_metadata() {
        let body: Value = serde_json::from_str(&sample_body()).unwrap();
        assert_eq!(body["function"], "function/preaccesstoken");
        assert!(body.get("user_metadata").is_none());
        assert!(body["user_grants"].as_array().is_some_and(|g| !g.is_empty()));
    }

    #[test]
    fn the_answer_to_the_sample_is_read_as_claims_or_a_reason() {
        let ok = r#"{"append_claims":[{"key":"permissions","value":["read","write"]}],"append_log_claims":[{"key":"zitadel-claims","value":"ok"}]}"#;
        assert_eq!(
            read_sample(&answer(200, ok)),
            Sample::Answered {
                claims: vec![("permissions".into(), r#"["read","write"]"#.into())],
                log_claims: vec![("zitadel-claims".into(), r#""ok""#.into())]
            }
        );
        assert_eq!(read_sample(&answer(200, "{}")), Sample::Answered { claims: vec![], log_claims: vec![] });
        assert_eq!(read_sample(&answer(401, r#"{"error":"invalid_signature","message":"x"}"#)), Sample::KeyRefused);
        assert_eq!(read_sample(&answer(400, r#"{"error":"unsupported_payload_type"}"#)), Sample::JsonRefused);
        assert_eq!(
            read_sample(&answer(502, r#"{"error":"upstream_unavailable","message":"the ZITADEL API failed"}"#)),
            Sample::Failed {
                status: 502,
                error: Some("upstream_unavailable".into()),
                message: Some("the ZITADEL API failed".into())
            }
        );
        let long = format!(r#"{{"append_claims":[{{"key":"k","value":["{}"]}}]}}"#, "a".repeat(500));
        let Sample::Answered { claims, .. } = read_sample(&answer(200, &long)) else { panic!() };
        assert_eq!(claims[0].1.chars().count(), 201, "200 characters and an ellipsis");
        let token = r#"{"append_claims":[{"key":"urn:custom:ms_access_token","value":"eyJ0eXAiOiJKV1QiLCJub25jZSI6Ik1TIn0.eyJhdWQiOiJncmFwaCJ9.c2ln"},{"key":"short","value":"a b"}]}"#;
        let Sample::Answered { claims, .. } = read_sample(&answer(200, token)) else { panic!() };
        assert_eq!(claims[0].1, "<not shown: a token-like value of 61 characters>");
        assert_eq!(claims[1].1, r#""a b""#);
    }
}
