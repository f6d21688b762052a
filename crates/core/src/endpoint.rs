//! The endpoint, without the runtime: which path does what, how a signed call becomes an answer,
//! and what `/healthz` reports. The worker crate (the glue, `src/lib.rs` at the root) feeds it
//! bytes, headers and the clock.

use std::borrow::Cow;

use serde::Serialize;

use crate::claims::{self, ClaimsCache};
use crate::config::{Config, Problem};
use crate::contract::chain;
use crate::contract::jose::PayloadKind;
use crate::contract::payload::{self, Function};
use crate::contract::response::ContextInfoResponse;
use crate::contract::signature;
use crate::envelope;
use crate::error::Error;
use crate::idp_intent;
use crate::log::RequestLog;
use crate::port::Runtime;
use crate::runtime::deadline::flight_lifetime_ms;
use crate::upstream::jwks::JwksCache;
use crate::upstream::zitadel::ZitadelClient;
use crate::upstream::UpstreamError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The target ZITADEL calls.
    Call,
    /// The configuration check.
    Health,
}

/// The path of a request URL as the runtime gives it (absolute, already serialized): what follows
/// the host, up to `?` or `#`.
pub fn path_of(url: &str) -> &str {
    let Some(host_start) = url.find("://").map(|i| i + 3) else {
        return if url.starts_with('/') { url } else { "/" };
    };
    match url[host_start..].find('/') {
        Some(i) => {
            let path = &url[host_start + i..];
            &path[..path.find(['?', '#']).unwrap_or(path.len())]
        }
        None => "/",
    }
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

/// What the worker keeps per isolate, shared by all its requests: the ZITADEL API client, the
/// instance's key set and the claims' caches.
#[derive(Default)]
pub struct IsolateState {
    pub zitadel: ZitadelClient,
    pub jwks: JwksCache,
    pub claims: ClaimsCache,
}

impl IsolateState {
    /// The state of an isolate running with `config`: every request's upstream work ends within
    /// `UPSTREAM_TIMEOUT_MS` plus a margin, so a single flight running longer was abandoned.
    pub fn new(config: &Config) -> Self {
        let live_for_ms = flight_lifetime_ms(config.upstream_timeout_ms);
        IsolateState {
            zitadel: ZitadelClient::new(live_for_ms),
            jwks: JwksCache::new(live_for_ms),
            claims: ClaimsCache::new(live_for_ms),
        }
    }
}

/// What a call is answered with.
#[cfg_attr(test, derive(Debug))]
#[derive(PartialEq)]
pub enum Answer {
    /// The claims or attributes of a function execution (`preaccesstoken`, `preuserinfo`,
    /// `presamlresponse`).
    Claims(ContextInfoResponse),
    /// The message of a request or response execution, passed back as received.
    Message(String),
}

impl Answer {
    pub fn to_json(&self) -> String {
        match self {
            Answer::Claims(response) => response.to_json(),
            Answer::Message(raw) => raw.clone(),
        }
    }
}

/// Answers one call: the signature first (over the raw bytes), then, for a signed or encrypted
/// payload, its JWS and JWE, then the payload, then the claims, or, for an API (request/response)
/// execution, the token capture. Fills in `log` as far as it
/// gets.
pub async fn handle_call<R: Runtime>(
    config: &Config,
    state: &IsolateState,
    runtime: &R,
    signature_header: Option<&str>,
    body: &[u8],
    log: &mut RequestLog,
) -> Result<Answer, Error> {
    let now_ms = runtime.now_ms();
    signature::verify(
        runtime,
        signature_header,
        body,
        &config.signing_keys,
        (now_ms / 1000) as i64,
        config.signature_tolerance_seconds,
    )
    .await?;
    let kind = PayloadKind::of(body);
    log.payload = Some(kind.name());
    let opened = match kind {
        PayloadKind::Json if config.payload.json => Cow::Borrowed(body),
        // Boxed: opening a JWT or JWE awaits the runtime's crypto and perhaps the key set, and the
        // plain JSON path should not carry that future.
        _ => {
            let deadline_ms = now_ms + config.upstream_timeout_ms;
            Box::pin(envelope::open(&config.payload, &state.jwks, runtime, kind, body, deadline_ms)).await?
        }
    };
    let info = payload::decode(&opened)?;
    if let Some(method) = info.full_method.as_deref() {
        let deadline_ms = now_ms + config.upstream_timeout_ms;
        // Boxed: the token capture's future is large, and the claims' path should not carry it.
        return Box::pin(api_execution(config, &state.zitadel, runtime, method, &info, deadline_ms, log)).await;
    }
    log.user_id = info.user_id().map(str::to_string);
    log.org_id = info.org_id().map(str::to_string);
    let function = match info.function.as_deref() {
        None => return Err(Error::UnsupportedFunction { received: None }),
        Some(name) => {
            Function::from_name(name).ok_or_else(|| Error::UnsupportedFunction { received: Some(name.to_string()) })?
        }
    };
    log.function = Some(function.name());
    let earlier = chain::earlier(function, info.response)?;
    claims::build(config, &state.claims, &state.zitadel, runtime, function, &info, earlier, log)
        .await
        .map(Answer::Claims)
        .map_err(Error::UpstreamUnavailable)
}

/// A request or response execution: the response of RetrieveIdentityProviderIntent has its tokens
/// captured (for a first sign-in, into the user the message creates); every other message goes
/// back unchanged, so binding the target to more methods than that one changes nothing.
async fn api_execution<R: Runtime>(
    config: &Config,
    zitadel: &ZitadelClient,
    runtime: &R,
    method: &str,
    info: &payload::ContextInfo<'_>,
    deadline_ms: u64,
    log: &mut RequestLog,
) -> Result<Answer, Error> {
    log.api_method = Some(method.chars().take(200).collect());
    let message = match (info.response, info.request) {
        (Some(response), _) => response,
        (None, Some(request)) => return Ok(Answer::Message(request.get().to_string())),
        (None, None) => {
            return Err(Error::InvalidPayload {
                path: "response".into(),
                problem: "is missing, and so is `request`: an API execution carries one of them".into(),
            })
        }
    };
    if method == idp_intent::METHOD {
        let (capture, changed) = idp_intent::capture(config, zitadel, runtime, message.get(), deadline_ms).await;
        log.ms_token = Some(capture.describe());
        if let idp_intent::Capture::Failed(e) = capture {
            log.upstream_error = Some(e.code());
            if e == UpstreamError::Unauthorized(403) {
                log.notes.push("storing the tokens needs user.write (e.g. the ORG_USER_MANAGER role)".into());
            }
        }
        if let Some(changed) = changed {
            return Ok(Answer::Message(changed));
        }
    }
    Ok(Answer::Message(message.get().to_string()))
}

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
}

#[derive(Serialize)]
struct HealthProblem<'a> {
    setting: &'a str,
    problem: &'a str,
}

/// `200 {"status":"ok","version":..}`, or `503` listing each problem by setting name; with the
/// size of the wasm memory when the runtime knows it, and how the isolate computed its last
/// signature MAC once it has checked one.
pub fn health(
    config: &Result<Config, Vec<Problem>>,
    wasm_memory_bytes: Option<u64>,
    mac: Option<&'static str>,
) -> (u16, String) {
    let version = env!("CARGO_PKG_VERSION");
    let (status, state, problems) = match config {
        Ok(_) => (200, "ok", Vec::new()),
        Err(problems) => (
            503,
            "misconfigured",
            problems.iter().map(|p| HealthProblem { setting: p.setting, problem: &p.problem }).collect(),
        ),
    };
    let body = serde_json::to_string(&Health { status: state, version, wasm_memory_bytes, mac, problems: &problems })
        .unwrap_or_else(|_| format!(r#"{{"status":"{state}"}}"#));
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::signature::{header_for, SignatureError};
    use crate::port::Clock;
    use crate::testing::FakeRuntime;
    use futures::executor::block_on;

    #[test]
    fn path_is_read_from_the_url_without_query_or_fragment() {
        for (url, path) in [
            ("http://127.0.0.1:8787/", "/"),
            ("https://worker.example/zitadel/complement-token", "/zitadel/complement-token"),
            ("https://worker.example/healthz?x=/y", "/healthz"),
            ("https://worker.example/a#/b?c", "/a"),
            ("https://worker.example:8443/a%3F%23b?c", "/a%3F%23b"),
            ("https://worker.example?query", "/"),
            ("https://worker.example#fragment", "/"),
            ("/already/a/path", "/already/a/path"),
            ("no-scheme", "/"),
        ] {
            assert_eq!(path_of(url), path, "{url}");
        }
    }

    const FULL: &[u8] = include_bytes!("../../../tests/fixtures/payloads/preaccesstoken.json");

    /// Every claim off: these tests are about the endpoint, not the claims.
    fn config() -> Config {
        let settings = [
            ("ZITADEL_SIGNING_KEY", "k1"),
            ("PERMISSIONS_CLAIM", ""),
            ("FLAT_ROLES_CLAIM", ""),
            ("MS_TOKEN_CLAIM", ""),
        ];
        Config::from_lookup(|name| settings.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())).unwrap()
    }

    fn handle(header: Option<&str>, body: &[u8]) -> (Result<Answer, Error>, RequestLog) {
        let runtime = FakeRuntime::new(vec![]);
        let mut log = RequestLog::new("POST", "/");
        let result = block_on(handle_call(&config(), &IsolateState::default(), &runtime, header, body, &mut log));
        (result, log)
    }

    fn call(body: &[u8]) -> (Result<Answer, Error>, RequestLog) {
        let now = (FakeRuntime::new(vec![]).now_ms() / 1000) as i64;
        handle(Some(&header_for(now, body, &config().signing_keys)), body)
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
        assert_eq!(result.unwrap().to_json(), "{}");
        assert_eq!(log.function, Some("function/preaccesstoken"));
        assert_eq!(log.user_id.as_deref(), Some("312909075212468632"));
        assert_eq!(log.org_id.as_deref(), Some("312909075211944344"));
    }

    #[test]
    fn bare_function_names_are_dispatched_too() {
        for (name, logged) in [
            ("preuserinfo", "function/preuserinfo"),
            ("function/preuserinfo", "function/preuserinfo"),
            ("preaccesstoken", "function/preaccesstoken"),
            ("presamlresponse", "function/presamlresponse"),
        ] {
            let (result, log) = call(format!(r#"{{"function":"{name}"}}"#).as_bytes());
            assert!(result.is_ok(), "{name}");
            assert_eq!(log.function, Some(logged));
        }
    }

    #[test]
    fn signature_is_checked_before_the_body_is_parsed() {
        assert_eq!(handle(None, b"not json").0, Err(Error::Signature(SignatureError::Missing)));
        assert!(matches!(handle(Some("t=1,v1=00"), b"not json").0, Err(Error::Signature(_))));
    }

    #[test]
    fn unsupported_or_missing_function_is_refused() {
        assert_eq!(
            call(br#"{"function":"function/preotpsmscode"}"#).0,
            Err(Error::UnsupportedFunction { received: Some("function/preotpsmscode".into()) })
        );
        assert_eq!(call(b"{}").0, Err(Error::UnsupportedFunction { received: None }));
    }

    #[test]
    fn bad_json_and_bad_fields_map_to_their_errors() {
        assert!(matches!(call(b"{").0, Err(Error::InvalidJson { line: 1, column: 1, .. })));
        assert!(
            matches!(call(br#"{"user_grants":"x"}"#).0, Err(Error::InvalidPayload { ref path, .. }) if path == "user_grants")
        );
    }

    #[test]
    fn api_executions_get_their_message_back_unchanged() {
        let body = br#"{"fullMethod":"/zitadel.user.v2.UserService/ListUsers","instanceID":"i","userID":"caller","response":{"users": [ {"userId":"1"} ],"details":{"totalResult":"1"}}}"#;
        let (result, log) = call(body);
        assert_eq!(
            result.unwrap(),
            Answer::Message(r#"{"users": [ {"userId":"1"} ],"details":{"totalResult":"1"}}"#.into())
        );
        assert_eq!(log.api_method.as_deref(), Some("/zitadel.user.v2.UserService/ListUsers"));
        let request = br#"{"fullMethod":"/zitadel.user.v2.UserService/AddHumanUser","request":{"username":"ada"}}"#;
        assert_eq!(call(request).0.unwrap(), Answer::Message(r#"{"username":"ada"}"#.into()));
        let neither = br#"{"fullMethod":"/x"}"#;
        assert!(matches!(call(neither).0, Err(Error::InvalidPayload { ref path, .. }) if path == "response"));
    }

    #[test]
    fn the_intent_response_comes_back_even_when_nothing_is_captured() {
        // The endpoint tests' config has the Microsoft token claim off: nothing to capture.
        let body = br#"{"fullMethod":"/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent","response":{"userId":"u1","idpInformation":{"oauth":{"accessToken":"t"}}}}"#;
        let (result, log) = call(body);
        assert_eq!(
            result.unwrap(),
            Answer::Message(r#"{"userId":"u1","idpInformation":{"oauth":{"accessToken":"t"}}}"#.into())
        );
        assert_eq!(log.ms_token, Some("the Microsoft token claim is off"));
    }

    #[test]
    fn health_reports_ok_or_the_problems_by_name() {
        let (status, body) = health(&Ok(config()), None, None);
        assert_eq!(status, 200);
        assert_eq!(body, format!(r#"{{"status":"ok","version":"{}"}}"#, env!("CARGO_PKG_VERSION")));
        let (_, body) = health(&Ok(config()), Some(1_114_112), None);
        assert!(body.ends_with(r#""wasm_memory_bytes":1114112}"#), "{body}");
        let (_, body) = health(&Ok(config()), Some(1_114_112), Some("webcrypto"));
        assert!(body.ends_with(r#""wasm_memory_bytes":1114112,"mac":"webcrypto"}"#), "{body}");
        let problems = vec![Problem { setting: "ZITADEL_SIGNING_KEY", problem: "is not set".into() }];
        let (status, body) = health(&Err(problems), None, None);
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "misconfigured");
        assert_eq!(v["problems"][0]["setting"], "ZITADEL_SIGNING_KEY");
    }
}
