//! The exchange and `/connections` against the fake runtime: ZITADEL's key set, metadata API and
//! introspection, and Microsoft's token endpoint answer from a script.

use base64::Engine;
use futures::executor::block_on;
use p256::ecdsa::signature::Signer;
use serde_json::json;

use super::*;
use crate::port::Clock;
use crate::seal::{self, Aad};
use crate::testing::{b64, b64url, settings, FakeRuntime, Reply};

const Z: &str = "https://z.example";
const WORKER: &str = "https://claims.example";
const USER: &str = "u-ada";
const BACK_END: &str = "312@backend";
const SECRET: &str = "be-secret";

fn target(extra: &[(&str, &str)]) -> Target {
    let mut pairs = vec![
        ("ZITADEL_SIGNING_KEY", "k"),
        ("ZITADEL_DOMAIN", Z),
        ("ZITADEL_ACCESS_TOKEN", "pat"),
        ("PERMISSIONS_CLAIM", ""),
        ("MS_CLIENT_ID", "entra-app"),
        ("MS_CLIENT_SECRET", "entra-secret"),
        ("MS_SCOPES", "offline_access User.Read Mail.Read"),
        ("TOKEN_SEALING_KEY", "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
        ("CONNECT_CLIENT_ID", "connect-app"),
        ("CONNECT_RETURN_URLS", "https://app.example/"),
        ("TOKEN_EXCHANGE_CLIENTS", "312@backend:be-secret,other:two"),
    ];
    pairs.extend_from_slice(extra);
    Target::new(settings(&pairs).unwrap())
}

/// A request: its headers, and its body.
struct Request {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Incoming for Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }

    async fn body(&self, limit: usize) -> Result<Vec<u8>, Error> {
        if self.body.len() > limit {
            return Err(Error::PayloadTooLarge { limit });
        }
        Ok(self.body.clone())
    }
}

fn basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", b64(format!("{}:{}", encode(id), encode(secret))))
}

/// `POST /token` by the back end with these form parameters.
fn exchange_request(params: &[(&str, &str)]) -> Request {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter().copied()).finish();
    Request {
        headers: vec![
            ("authorization", basic(BACK_END, SECRET)),
            ("content-type", "application/x-www-form-urlencoded".into()),
        ],
        body: body.into_bytes(),
    }
}

fn exchange_of(subject_token: &str) -> Request {
    exchange_request(&[
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ])
}

fn post_token(target: &Target, runtime: &FakeRuntime, request: &Request) -> (Response, Trace, serde_json::Value) {
    let (result, trace) = block_on(token(target, runtime, &format!("{WORKER}/token"), request));
    let response = result.unwrap();
    let body = serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null);
    (response, trace, body)
}

fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_ref())
}

fn signing_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap()
}

fn key_set() -> Reply {
    let point = signing_key().verifying_key().to_encoded_point(false);
    Reply::json(
        200,
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "zk1", "alg": "ES256", "use": "sig",
            "x": b64url(point.x().unwrap()), "y": b64url(point.y().unwrap())}]}),
    )
}

fn jwt(claims: serde_json::Value) -> String {
    let input = format!("{}.{}", b64url(r#"{"alg":"ES256","kid":"zk1","typ":"JWT"}"#), b64url(claims.to_string()));
    let signature: p256::ecdsa::Signature = signing_key().sign(input.as_bytes());
    format!("{input}.{}", b64url(signature.to_bytes()))
}

/// ZITADEL's JWT access token for the user, issued to `client_id`, with `extra` claims.
fn access_token(runtime: &FakeRuntime, client_id: &str, extra: serde_json::Value) -> String {
    let now = runtime.now_ms() / 1000;
    let mut claims = json!({"iss": Z, "sub": USER, "client_id": client_id, "aud": [client_id, "connect-app", "project"],
        "exp": now + 3600, "iat": now, "nbf": now, "jti": "j1"});
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    jwt(claims)
}

/// The user's metadata listing: these (key, plaintext) entries, sealed for the user.
fn metadata(target: &Target, runtime: &FakeRuntime, entries: &[(&str, &str)]) -> Reply {
    let keys = target.config().sealing.clone().unwrap();
    let metadata: Vec<_> = entries
        .iter()
        .map(|(key, plain)| {
            let sealed =
                block_on(seal::seal_bytes(runtime, &keys, &Aad::metadata(USER, key), plain.as_bytes())).unwrap();
            json!({"key": key, "value": b64(sealed)})
        })
        .collect();
    Reply::json(200, json!({"pagination": {"totalResult": metadata.len().to_string()}, "metadata": metadata}))
}

fn connected(target: &Target, runtime: &FakeRuntime, expires_at: u64) -> Reply {
    let expires = expires_at.to_string();
    metadata(
        target,
        runtime,
        &[
            ("microsoft_access_token", "ms-at"),
            ("microsoft_refresh_token", "ms-rt"),
            ("microsoft_access_token_expires_at", &expires),
        ],
    )
}

fn now_s(runtime: &FakeRuntime) -> u64 {
    runtime.now_ms() / 1000
}

#[test]
fn a_fresh_stored_token_is_exchanged_then_served_from_memory() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    runtime.push(connected(&target, &runtime, now_s(&runtime) + 3000));
    let request = exchange_of(&access_token(&runtime, BACK_END, json!({})));
    let (response, trace, body) = post_token(&target, &runtime, &request);
    assert_eq!(response.status, 200, "{body}");
    assert_eq!(body["access_token"], "ms-at");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3000);
    assert_eq!(body["scope"], "User.Read Mail.Read");
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(
        (trace.ms_token, trace.user_id.as_deref(), trace.client_id.as_deref()),
        (Some("stored"), Some(USER), Some(BACK_END))
    );
    let sent = runtime.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].url, format!("{Z}/v2/users/{USER}/metadata/search"));

    runtime.advance_ms(60_000);
    let request = exchange_of(&access_token(&runtime, BACK_END, json!({})));
    let (response, trace, body) = post_token(&target, &runtime, &request);
    assert_eq!((response.status, trace.ms_token), (200, Some("cached")));
    assert_eq!((body["access_token"].as_str(), body["expires_in"].as_i64()), (Some("ms-at"), Some(2940)));
    assert_eq!(runtime.sends(), 2, "a warm exchange makes no outbound call");
    assert!(!format!("{trace:?}").contains("ms-at"), "the trace holds no token");
}

#[test]
fn a_stale_token_is_refreshed_and_the_rotated_tokens_are_written_back_sealed() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    runtime.push(connected(&target, &runtime, now_s(&runtime) + 100));
    runtime.push(Reply::json(
        200,
        json!({"access_token": "ms-at-2", "refresh_token": "ms-rt-2", "expires_in": 3600, "scope": "User.Read Mail.Read profile openid email"}),
    ));
    runtime.push(Reply::json(200, json!({"setDate": "x"})));
    let request = exchange_of(&access_token(&runtime, BACK_END, json!({})));
    let (response, trace, body) = post_token(&target, &runtime, &request);
    assert_eq!(response.status, 200, "{body}");
    assert_eq!((body["access_token"].as_str(), body["scope"].as_str()), (Some("ms-at-2"), Some("User.Read Mail.Read")));
    assert_eq!((trace.ms_token, trace.metadata_written), (Some("refreshed"), Some(true)));
    let sent = runtime.sent();
    let refresh: Vec<(String, String)> = form_urlencoded::parse(&sent[2].body).into_owned().collect();
    assert!(refresh.contains(&("refresh_token".into(), "ms-rt".into())));
    assert!(refresh.contains(&("scope".into(), "offline_access User.Read Mail.Read".into())));
    let write: serde_json::Value = serde_json::from_slice(&sent[3].body).unwrap();
    let keys = target.config().sealing.clone().unwrap();
    let stored: Vec<(String, String)> = write["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let key = e["key"].as_str().unwrap().to_string();
            let sealed = base64::engine::general_purpose::STANDARD.decode(e["value"].as_str().unwrap()).unwrap();
            let plain = block_on(seal::open_bytes(&runtime, &keys, &Aad::metadata(USER, &key), &sealed)).unwrap();
            (key, String::from_utf8(plain).unwrap())
        })
        .collect();
    assert_eq!(stored[0], ("microsoft_access_token".into(), "ms-at-2".into()));
    assert_eq!(stored[1], ("microsoft_refresh_token".into(), "ms-rt-2".into()));
}

#[test]
fn a_narrower_scope_is_refreshed_for_and_only_the_refresh_token_is_kept() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    runtime.push(connected(&target, &runtime, now_s(&runtime) + 3000));
    runtime.push(Reply::json(200, json!({"access_token": "ms-mail", "refresh_token": "ms-rt-3", "expires_in": 3600})));
    runtime.push(Reply::json(200, json!({"setDate": "x"})));
    let subject = access_token(&runtime, BACK_END, json!({}));
    let request = exchange_request(&[
        ("grant_type", GRANT_TYPE),
        ("subject_token", &subject),
        ("subject_token_type", JWT_TYPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("audience", GRAPH),
        ("scope", "Mail.Read"),
    ]);
    let (response, trace, body) = post_token(&target, &runtime, &request);
    assert_eq!(response.status, 200, "{body}");
    assert_eq!((body["access_token"].as_str(), body["scope"].as_str()), (Some("ms-mail"), Some("Mail.Read")));
    assert_eq!(trace.metadata_written, Some(true));
    let sent = runtime.sent();
    let refresh: Vec<(String, String)> = form_urlencoded::parse(&sent[2].body).into_owned().collect();
    assert!(refresh.contains(&("scope".into(), "Mail.Read offline_access".into())), "{refresh:?}");
    let write: serde_json::Value = serde_json::from_slice(&sent[3].body).unwrap();
    let keys: Vec<&str> = write["metadata"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["microsoft_refresh_token"]);
    // The default token is another cache entry: it is read, not the narrower one.
    runtime.push(connected(&target, &runtime, now_s(&runtime) + 3000));
    let (_, trace, body) = post_token(&target, &runtime, &exchange_of(&subject));
    assert_eq!((body["access_token"].as_str(), trace.ms_token), (Some("ms-at"), Some("stored")));
}

#[test]
fn the_client_must_authenticate_and_nothing_is_called_before() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    let subject = access_token(&runtime, BACK_END, json!({}));
    for authorization in [Some(basic(BACK_END, "wrong")), Some(basic("other", SECRET)), None, Some("Bearer x".into())] {
        let mut request = exchange_of(&subject);
        request.headers.retain(|(n, _)| *n != "authorization");
        if let Some(a) = authorization {
            request.headers.push(("authorization", a));
        }
        let (response, trace, body) = post_token(&target, &runtime, &request);
        assert_eq!((response.status, body["error"].as_str()), (401, Some("invalid_client")));
        assert_eq!(header(&response, "www-authenticate"), Some("Basic realm=\"zitadel-claims\""));
        assert_eq!(trace.outcome, "invalid_client");
    }
    assert_eq!(runtime.sends(), 0);
}

#[test]
fn a_subject_token_of_another_client_or_impersonated_or_expired_or_forged_is_an_invalid_request() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    let now = now_s(&runtime);
    let forged = {
        let good = access_token(&runtime, BACK_END, json!({}));
        let (input, _) = good.rsplit_once('.').unwrap();
        let other: p256::ecdsa::Signature =
            p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap().sign(input.as_bytes());
        format!("{input}.{}", b64url(other.to_bytes()))
    };
    let cases = [
        (access_token(&runtime, "other", json!({})), "subject_token_other_client"),
        (access_token(&runtime, BACK_END, json!({"act": {"sub": "admin"}})), "subject_token_impersonated"),
        (access_token(&runtime, BACK_END, json!({"exp": now - 3600})), "subject_token_expired"),
        (access_token(&runtime, BACK_END, json!({"iss": "https://evil.example"})), "subject_token_issuer"),
        (forged, "subject_token_signature"),
    ];
    for (subject, note) in cases {
        let (response, trace, body) = post_token(&target, &runtime, &exchange_of(&subject));
        assert_eq!((response.status, body["error"].as_str()), (400, Some("invalid_request")), "{note}");
        assert!(trace.notes.iter().any(|n| n == note), "{note}: {:?}", trace.notes);
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(runtime.sends(), 1, "the key set only: no metadata is read for a refused token");
}

#[test]
fn an_opaque_token_is_introspected_when_configured_and_refused_clearly_when_not() {
    let (target_jwt_only, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    let (response, _, body) = post_token(&target_jwt_only, &runtime, &exchange_of("opaque-zitadel-token"));
    assert_eq!((response.status, body["error"].as_str()), (400, Some("invalid_request")));
    assert!(body["error_description"].as_str().unwrap().contains("INTROSPECTION_CLIENT_ID"));
    assert_eq!(runtime.sends(), 0);

    let target = target(&[("INTROSPECTION_CLIENT_ID", "api@p"), ("INTROSPECTION_CLIENT_SECRET", "api-secret")]);
    runtime.push(Reply::json(
        200,
        json!({"active": true, "sub": USER, "client_id": BACK_END, "exp": now_s(&runtime) + 600}),
    ));
    runtime.push(connected(&target, &runtime, now_s(&runtime) + 3000));
    let (response, _, body) = post_token(&target, &runtime, &exchange_of("opaque-zitadel-token"));
    assert_eq!((response.status, body["access_token"].as_str()), (200, Some("ms-at")), "{body}");
    assert_eq!(runtime.sent()[0].url, format!("{Z}/oauth/v2/introspect"));

    for answer in [json!({"active": false}), json!({"active": true, "sub": USER, "client_id": "other"})] {
        runtime.push(Reply::json(200, answer));
        let (response, _, body) = post_token(&target, &runtime, &exchange_of("opaque-2"));
        assert_eq!((response.status, body["error"].as_str()), (400, Some("invalid_request")));
    }
    let jwt_announced =
        exchange_request(&[("grant_type", GRANT_TYPE), ("subject_token", "opaque"), ("subject_token_type", JWT_TYPE)]);
    let (response, _, _) = post_token(&target, &runtime, &jwt_announced);
    assert_eq!(response.status, 400);
}

#[test]
fn a_user_who_never_connected_or_whose_grant_microsoft_refused_must_connect() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    runtime.push(metadata(&target, &runtime, &[]));
    let subject = access_token(&runtime, BACK_END, json!({}));
    let (response, trace, body) = post_token(&target, &runtime, &exchange_of(&subject));
    assert_eq!((response.status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(body["connect_uri"], format!("{WORKER}/connect/microsoft"));
    assert_eq!(trace.ms_token, Some("not_connected"));

    runtime.push(connected(&target, &runtime, 0));
    runtime.push(Reply::json(400, json!({"error": "invalid_grant", "error_description": "AADSTS70000"})));
    let (response, trace, body) = post_token(&target, &runtime, &exchange_of(&subject));
    assert_eq!((response.status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert!(body["connect_uri"].is_string());
    assert_eq!(trace.upstream_error, Some("invalid_grant"));
    assert!(!response.body.contains("AADSTS"), "Microsoft's description is not passed on");
}

#[test]
fn microsoft_or_zitadel_down_is_temporarily_unavailable() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    runtime.push(Reply::json(503, json!({})));
    let subject = access_token(&runtime, BACK_END, json!({}));
    let (response, trace, body) = post_token(&target, &runtime, &exchange_of(&subject));
    assert_eq!((response.status, body["error"].as_str()), (503, Some("temporarily_unavailable")));
    assert_eq!(trace.upstream_error, Some("bad_status"));

    runtime.push(connected(&target, &runtime, 0));
    runtime.push(Reply::json(503, json!({})));
    let (response, _, body) = post_token(&target, &runtime, &exchange_of(&subject));
    assert_eq!((response.status, body["error"].as_str()), (503, Some("temporarily_unavailable")));
}

#[test]
fn the_form_is_checked_as_rfc_8693_and_6749_say() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    let subject = access_token(&runtime, BACK_END, json!({}));
    let base =
        [("grant_type", GRANT_TYPE), ("subject_token", subject.as_str()), ("subject_token_type", ACCESS_TOKEN_TYPE)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut params: Vec<(&str, &str)> = base.to_vec();
        for (name, value) in extra {
            params.retain(|(n, _)| n != name);
            params.push((name, value));
        }
        exchange_request(&params)
    };
    let cases: Vec<(Request, u16, &str)> = vec![
        (with(&[("grant_type", "client_credentials")]), 400, "unsupported_grant_type"),
        (with(&[("grant_type", "")]), 400, "invalid_request"),
        (with(&[("subject_token", "")]), 400, "invalid_request"),
        (with(&[("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")]), 400, "invalid_request"),
        (with(&[("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")]), 400, "invalid_request"),
        (with(&[("audience", "https://management.azure.com")]), 400, "invalid_target"),
        (with(&[("scope", "Files.ReadWrite.All")]), 400, "invalid_scope"),
        (with(&[("actor_token", "x")]), 400, "invalid_request"),
        (exchange_request(&[base[0], base[0], base[1], base[2]]), 400, "invalid_request"),
    ];
    for (request, status, error) in cases {
        let (response, _, body) = post_token(&target, &runtime, &request);
        assert_eq!((response.status, body["error"].as_str()), (status, Some(error)), "{body}");
    }
    let mut json_body = with(&[]);
    json_body.headers.retain(|(n, _)| *n != "content-type");
    json_body.headers.push(("content-type", "application/json".into()));
    assert_eq!(post_token(&target, &runtime, &json_body).0.status, 400);
    assert_eq!(runtime.sends(), 0);
}

#[test]
fn the_exchange_is_off_without_its_settings_and_says_what_it_needs() {
    let target = target(&[("TOKEN_EXCHANGE_CLIENTS", "")]);
    let runtime = FakeRuntime::new(vec![]);
    let (result, _) = block_on(token(&target, &runtime, "https://w/token", &exchange_of("x")));
    assert_eq!(
        result.unwrap_err(),
        Error::FeatureOff { feature: "token_exchange", needs: vec!["TOKEN_EXCHANGE_CLIENTS"] }
    );
}

fn connection_request(token: &str) -> Request {
    Request { headers: vec![("authorization", format!("Bearer {token}"))], body: Vec::new() }
}

fn call_connection(
    target: &Target,
    runtime: &FakeRuntime,
    method: &str,
    request: &Request,
) -> (Response, Trace, serde_json::Value) {
    let (result, trace) = block_on(connection(target, runtime, method, "microsoft", request));
    let response = result.unwrap();
    let body = serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null);
    (response, trace, body)
}

#[test]
fn the_user_sees_and_removes_the_connection_and_no_token_is_served_from_memory_after() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    let expires_at = now_s(&runtime) + 3000;
    runtime.push(connected(&target, &runtime, expires_at));
    let user_token = access_token(&runtime, "connect-app", json!({}));
    let (response, _, body) = call_connection(&target, &runtime, "GET", &connection_request(&user_token));
    assert_eq!(response.status, 200);
    assert_eq!(body, json!({"connected": true, "expires_at": expires_at}));

    // The back end exchanges: the token is now in memory.
    runtime.push(connected(&target, &runtime, expires_at));
    let (response, _, _) = post_token(&target, &runtime, &exchange_of(&access_token(&runtime, BACK_END, json!({}))));
    assert_eq!(response.status, 200);

    runtime.push(connected(&target, &runtime, expires_at));
    runtime.push(Reply::json(200, json!({"details": {}})));
    let (response, trace, body) = call_connection(&target, &runtime, "DELETE", &connection_request(&user_token));
    assert_eq!((response.status, trace.outcome, trace.metadata_written), (200, "disconnected", Some(true)));
    assert_eq!(body, json!({"connected": false, "expires_at": null}));
    let delete = runtime.sent().pop().unwrap();
    assert_eq!((delete.method, delete.url.as_str()), ("DELETE", format!("{Z}/v2/users/{USER}/metadata").as_str()));
    let removed: serde_json::Value = serde_json::from_slice(&delete.body).unwrap();
    assert_eq!(removed["keys"].as_array().unwrap().len(), 3);

    runtime.push(metadata(&target, &runtime, &[]));
    let (response, trace, body) =
        post_token(&target, &runtime, &exchange_of(&access_token(&runtime, BACK_END, json!({}))));
    assert_eq!(
        (response.status, body["error"].as_str(), trace.ms_token),
        (400, Some("invalid_grant"), Some("not_connected"))
    );
}

#[test]
fn the_connection_needs_a_bearer_of_the_connect_app_or_a_back_end_and_never_an_impersonator() {
    let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
    runtime.push(key_set());
    for (request, note) in [
        (connection_request(&access_token(&runtime, "stranger", json!({}))), Some("subject_token_other_client")),
        (
            connection_request(&access_token(&runtime, "connect-app", json!({"act": {"sub": "admin"}}))),
            Some("subject_token_impersonated"),
        ),
        (Request { headers: vec![], body: vec![] }, None),
    ] {
        let (response, trace, body) = call_connection(&target, &runtime, "GET", &request);
        assert_eq!((response.status, body["error"].as_str()), (401, Some("invalid_token")));
        assert_eq!(header(&response, "www-authenticate"), Some("Bearer error=\"invalid_token\""));
        assert_eq!(trace.notes.first().map(|n| n.as_ref()), note);
    }
    runtime.push(metadata(&target, &runtime, &[]));
    let back_end = connection_request(&access_token(&runtime, BACK_END, json!({})));
    let (response, _, body) = call_connection(&target, &runtime, "GET", &back_end);
    assert_eq!((response.status, body), (200, json!({"connected": false, "expires_at": null})));
    let (result, _) = block_on(connection(&target, &runtime, "GET", "google", &back_end));
    assert_eq!(result.unwrap_err(), Error::NotFound);
}
