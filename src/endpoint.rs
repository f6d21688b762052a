//! The endpoint, without the runtime: which path does what, how a signed call becomes an answer,
//! and what `/healthz` reports. The glue in `lib.rs` feeds it bytes, headers and the clock.

use serde::Serialize;

use crate::config::{Config, Problem};
use crate::error::Error;
use crate::log::RequestLog;
use crate::payload::{self, Function};
use crate::response::ContextInfoResponse;
use crate::signature;

/// The largest body accepted. ZITADEL's payloads are a few KiB; metadata values are capped well
/// below this by ZITADEL itself.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The target ZITADEL calls.
    Call,
    /// The configuration check.
    Health,
}

/// `POST /` and `POST /zitadel/complement-token` are one target; `GET /healthz` reports config.
pub fn route(method: &str, path: &str) -> Result<Route, Error> {
    let (route, allow) = match path {
        "/" | "/zitadel/complement-token" => (Route::Call, "POST"),
        "/healthz" => (Route::Health, "GET"),
        _ => return Err(Error::NotFound),
    };
    if method.eq_ignore_ascii_case(allow) {
        Ok(route)
    } else {
        Err(Error::MethodNotAllowed { allow })
    }
}

/// Answers one call: the signature first (over the raw bytes), then the payload, then the claims.
/// Fills in `log` as far as it gets.
pub fn handle_call(
    config: &Config,
    signature_header: Option<&str>,
    body: &[u8],
    now: i64,
    log: &mut RequestLog,
) -> Result<ContextInfoResponse, Error> {
    signature::verify(signature_header, body, &config.signing_keys, now, config.signature_tolerance_seconds)?;
    let info = payload::decode(body)?;
    log.user_id = info.user_id().map(str::to_string);
    log.org_id = info.org_id().map(str::to_string);
    let function = match info.function.as_deref() {
        None => return Err(Error::UnsupportedFunction { received: None }),
        Some(name) => Function::from_name(name)
            .ok_or_else(|| Error::UnsupportedFunction { received: Some(name.to_string()) })?,
    };
    log.function = Some(function.name());
    // Claims arrive with the claims issue; until then both functions answer no claims.
    let response = ContextInfoResponse::default();
    log.claims = response.claim_keys().into_iter().map(str::to_string).collect();
    Ok(response)
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    version: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [HealthProblem<'a>],
}

#[derive(Serialize)]
struct HealthProblem<'a> {
    setting: &'a str,
    problem: &'a str,
}

/// `200 {"status":"ok","version":..}`, or `503` listing each problem by setting name.
pub fn health(config: &Result<Config, Vec<Problem>>) -> (u16, String) {
    let version = env!("CARGO_PKG_VERSION");
    let (status, state, problems) = match config {
        Ok(_) => (200, "ok", Vec::new()),
        Err(problems) => (
            503,
            "misconfigured",
            problems.iter().map(|p| HealthProblem { setting: p.setting, problem: &p.problem }).collect(),
        ),
    };
    let body = serde_json::to_string(&Health { status: state, version, problems: &problems })
        .unwrap_or_else(|_| format!(r#"{{"status":"{state}"}}"#));
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{header_for, SignatureError, SigningKey};

    const NOW: i64 = 1_800_000_000;
    const FULL: &[u8] = include_bytes!("../tests/fixtures/payloads/preaccesstoken.json");

    fn config() -> Config {
        Config { signing_keys: vec![SigningKey::new("k1")], signature_tolerance_seconds: 300 }
    }

    fn call(body: &[u8]) -> (Result<ContextInfoResponse, Error>, RequestLog) {
        let header = header_for(NOW, body, &config().signing_keys);
        let mut log = RequestLog::new("POST", "/");
        (handle_call(&config(), Some(&header), body, NOW, &mut log), log)
    }

    #[test]
    fn both_paths_are_the_call_and_only_post() {
        assert_eq!(route("POST", "/"), Ok(Route::Call));
        assert_eq!(route("POST", "/zitadel/complement-token"), Ok(Route::Call));
        assert_eq!(route("GET", "/"), Err(Error::MethodNotAllowed { allow: "POST" }));
        assert_eq!(route("PUT", "/zitadel/complement-token"), Err(Error::MethodNotAllowed { allow: "POST" }));
    }

    #[test]
    fn healthz_is_get_only_and_other_paths_are_not_found() {
        assert_eq!(route("GET", "/healthz"), Ok(Route::Health));
        assert_eq!(route("POST", "/healthz"), Err(Error::MethodNotAllowed { allow: "GET" }));
        assert_eq!(route("POST", "/zitadel"), Err(Error::NotFound));
        assert_eq!(route("POST", "/zitadel/complement-token/"), Err(Error::NotFound));
    }

    #[test]
    fn signed_preaccesstoken_answers_and_logs_ids() {
        let (result, log) = call(FULL);
        assert_eq!(result.unwrap().to_json(), r#"{"append_claims":[]}"#);
        assert_eq!(log.function, Some("function/preaccesstoken"));
        assert_eq!(log.user_id.as_deref(), Some("312909075212468632"));
        assert_eq!(log.org_id.as_deref(), Some("312909075211944344"));
    }

    #[test]
    fn bare_function_names_are_dispatched_too() {
        for (name, logged) in [("preuserinfo", "function/preuserinfo"), ("function/preuserinfo", "function/preuserinfo"), ("preaccesstoken", "function/preaccesstoken")] {
            let (result, log) = call(format!(r#"{{"function":"{name}"}}"#).as_bytes());
            assert!(result.is_ok(), "{name}");
            assert_eq!(log.function, Some(logged));
        }
    }

    #[test]
    fn signature_is_checked_before_the_body_is_parsed() {
        let mut log = RequestLog::new("POST", "/");
        let result = handle_call(&config(), None, b"not json", NOW, &mut log);
        assert_eq!(result, Err(Error::Signature(SignatureError::Missing)));
        let result = handle_call(&config(), Some("t=1,v1=00"), b"not json", NOW, &mut log);
        assert!(matches!(result, Err(Error::Signature(_))));
    }

    #[test]
    fn unsupported_or_missing_function_is_refused() {
        assert_eq!(
            call(br#"{"function":"function/presamlresponse"}"#).0,
            Err(Error::UnsupportedFunction { received: Some("function/presamlresponse".into()) })
        );
        assert_eq!(call(b"{}").0, Err(Error::UnsupportedFunction { received: None }));
    }

    #[test]
    fn bad_json_and_bad_fields_map_to_their_errors() {
        assert!(matches!(call(b"{").0, Err(Error::InvalidJson { line: 1, column: 1, .. })));
        assert!(matches!(call(br#"{"user_grants":"x"}"#).0, Err(Error::InvalidPayload { ref path, .. }) if path == "user_grants"));
    }

    #[test]
    fn health_reports_ok_or_the_problems_by_name() {
        let (status, body) = health(&Ok(config()));
        assert_eq!(status, 200);
        assert_eq!(body, format!(r#"{{"status":"ok","version":"{}"}}"#, env!("CARGO_PKG_VERSION")));
        let problems = vec![Problem { setting: "ZITADEL_SIGNING_KEY", problem: "is not set".into() }];
        let (status, body) = health(&Err(problems));
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "misconfigured");
        assert_eq!(v["problems"][0]["setting"], "ZITADEL_SIGNING_KEY");
    }
}
