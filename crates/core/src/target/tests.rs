use super::*;
use crate::contract::signature::{header_for, SignatureError};
use crate::port::Clock;
use crate::testing::{self, FakeRuntime};
use futures::executor::block_on;

const FULL: &[u8] = include_bytes!("../../../../tests/fixtures/payloads/preaccesstoken.json");

/// Every claim off: these tests are about the endpoint, not the claims.
fn config() -> Config {
    testing::settings(&[
        ("ZITADEL_SIGNING_KEY", "k1"),
        ("PERMISSIONS_CLAIM", ""),
        ("FLAT_ROLES_CLAIM", ""),
        ("MS_TOKEN_CLAIM", ""),
    ])
    .unwrap()
}

fn handle(header: Option<&str>, body: &[u8]) -> (Result<Answer, Error>, Trace) {
    let runtime = FakeRuntime::new(vec![]);
    block_on(Target::new(config()).handle(&runtime, header, body))
}

fn call(body: &[u8]) -> (Result<Answer, Error>, Trace) {
    let now = (FakeRuntime::new(vec![]).now_ms() / 1000) as i64;
    handle(Some(&header_for(now, body, &config().signing_keys)), body)
}

#[test]
fn signed_preaccesstoken_answers_and_logs_ids() {
    let (result, trace) = call(FULL);
    assert_eq!(result.unwrap().to_json(), "{}");
    assert_eq!(trace.function, Some("function/preaccesstoken"));
    assert_eq!(trace.user_id.as_deref(), Some("312909075212468632"));
    assert_eq!(trace.org_id.as_deref(), Some("312909075211944344"));
}

#[test]
fn bare_function_names_are_dispatched_too() {
    for (name, logged) in [
        ("preuserinfo", "function/preuserinfo"),
        ("function/preuserinfo", "function/preuserinfo"),
        ("preaccesstoken", "function/preaccesstoken"),
        ("presamlresponse", "function/presamlresponse"),
    ] {
        let (result, trace) = call(format!(r#"{{"function":"{name}"}}"#).as_bytes());
        assert!(result.is_ok(), "{name}");
        assert_eq!(trace.function, Some(logged));
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
    let (result, trace) = call(body);
    assert_eq!(
        result.unwrap(),
        Answer::Message(r#"{"users": [ {"userId":"1"} ],"details":{"totalResult":"1"}}"#.into())
    );
    assert_eq!(trace.api_method.as_deref(), Some("/zitadel.user.v2.UserService/ListUsers"));
    let request = br#"{"fullMethod":"/zitadel.user.v2.UserService/AddHumanUser","request":{"username":"ada"}}"#;
    assert_eq!(call(request).0.unwrap(), Answer::Message(r#"{"username":"ada"}"#.into()));
    let neither = br#"{"fullMethod":"/x"}"#;
    assert!(matches!(call(neither).0, Err(Error::InvalidPayload { ref path, .. }) if path == "response"));
}

#[test]
fn the_intent_response_comes_back_even_when_nothing_is_captured() {
    // The endpoint tests' config has the Microsoft token claim off: nothing to capture.
    let body = br#"{"fullMethod":"/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent","response":{"userId":"u1","idpInformation":{"oauth":{"accessToken":"t"}}}}"#;
    let (result, trace) = call(body);
    assert_eq!(
        result.unwrap(),
        Answer::Message(r#"{"userId":"u1","idpInformation":{"oauth":{"accessToken":"t"}}}"#.into())
    );
    assert_eq!(trace.ms_token, Some("the Microsoft token claim is off"));
}
