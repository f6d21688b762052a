use super::permission_cache::{shared_key, SharedEntry};
use super::*;
use crate::config::{Credentials, MsTokenConfig, PermissionsConfig, ZitadelApiConfig};
use crate::contract::payload;
use crate::secret::Secret;
use crate::secret::SigningKey;
use crate::testing::{self, b64, live_for_ms, FakeRuntime, Reply};
use base64::Engine;
use futures::executor::block_on;

const ORG: &str = "312909075211944344";
const FULL: &str = include_str!("../../../../tests/fixtures/payloads/preaccesstoken.json");

fn config() -> Config {
    let api =
        ZitadelApiConfig { base_url: "https://z".into(), credentials: Credentials::AccessToken(Secret::new("pat")) };
    Config {
        signing_keys: vec![SigningKey::new("k")],
        signature_tolerance_seconds: 300,
        zitadel: Some(api),
        permissions: Some(PermissionsConfig {
            claim: "permissions".into(),
            project_id: None,
            org_id: None,
            metadata_prefix: String::new(),
            mapping_max_bytes: 1 << 20,
            cache_max_bytes: 16 << 20,
            claim_max_bytes: 64 << 10,
        }),
        flat_roles_claim: Some("my:zitadel:grants".into()),
        groups_claim: None,
        ms_token: Some(MsTokenConfig {
            metadata_key: "microsoft_access_token".into(),
            refresh_token_metadata_key: "microsoft_refresh_token".into(),
            expires_at_metadata_key: "microsoft_access_token_expires_at".into(),
            claim: "urn:custom:ms_access_token".into(),
            in_userinfo: false,
            clients: Some(MsTokenClients::All),
            idp_id: None,
            refresh: None,
            accept_unsealed: false,
        }),
        sealing: None,
        connect: None,
        exchange: None,
        cache_ttl_seconds: 60,
        stale_if_error_seconds: 0,
        upstream_timeout_ms: 2000,
        on_upstream_error: UpstreamPolicy::Omit,
        impersonation_permissions: crate::config::ImpersonationPolicy::Keep,
        log_claims: false,
        payload: crate::config::PayloadConfig {
            json: true,
            jwt: false,
            jwe: false,
            jwks_url: None,
            decryption_keys: vec![],
        },
    }
}

fn metadata_page(entries: &[(&str, &str)]) -> Reply {
    let metadata: Vec<_> = entries
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": base64::engine::general_purpose::STANDARD.encode(v)}))
        .collect();
    Reply::json(
        200,
        serde_json::json!({"pagination": {"totalResult": entries.len().to_string()}, "metadata": metadata}),
    )
}

fn mapping() -> Reply {
    metadata_page(&[
        ("admin", r#"["posts:read","posts:write","users:manage"]"#),
        ("editor", r#"["posts:read","posts:write"]"#),
        ("viewer", "posts:read"),
    ])
}

/// What an isolate keeps for the claims, as the target holds it: built from the first config it
/// is asked for, as an isolate is from its first request's settings.
#[derive(Default)]
struct Caches {
    built: std::cell::OnceCell<(ClaimsCache, Option<ZitadelClient>)>,
}

impl Caches {
    fn of(&self, config: &Config) -> &(ClaimsCache, Option<ZitadelClient>) {
        self.built.get_or_init(|| (ClaimsCache::new(config, live_for_ms()), testing::zitadel_client(config)))
    }
}

fn run(
    config: &Config,
    isolate: &Caches,
    runtime: &FakeRuntime,
    body: &str,
) -> (Result<ContextInfoResponse, UpstreamError>, Trace) {
    let info = payload::decode(body.as_bytes()).unwrap();
    let function = Function::from_name(info.function.as_deref().unwrap()).unwrap();
    let earlier = crate::contract::chain::earlier(function, info.response).unwrap();
    let (claims, zitadel) = isolate.of(config);
    block_on(claims.build(config, zitadel.as_ref(), runtime, Call { function, info: &info, earlier }))
}

fn claim<'a>(response: &'a ContextInfoResponse, key: &str) -> Option<&'a ClaimValue> {
    response.append_claims.iter().find(|c| c.key == key).map(|c| &c.value)
}

fn list(values: &[&str]) -> ClaimValue {
    ClaimValue::List(values.iter().collect())
}

#[test]
fn full_payload_gets_every_claim() {
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, trace) = run(&config(), &Caches::default(), &runtime, FULL);
    let response = result.unwrap();
    assert_eq!(claim(&response, "permissions"), Some(&list(&["posts:read", "posts:write", "users:manage"])));
    assert_eq!(
        claim(&response, "my:zitadel:grants"),
        Some(&list(&["312909075212861848:admin", "312909075212861848:editor", "312909075214958999:viewer"]))
    );
    let ClaimValue::Text(token) = claim(&response, "urn:custom:ms_access_token").unwrap() else { panic!() };
    assert!(token.starts_with("EwBwA8l6") && !token.starts_with('"'), "the V1 JSON quotes are removed");
    assert_eq!(response.claim_keys(), ["permissions", "my:zitadel:grants", "urn:custom:ms_access_token"]);
    assert_eq!(trace.cache, Some("miss"));
    assert_eq!(trace.roles, 3);
    assert_eq!(runtime.sent()[0].url, format!("https://z/v2/organizations/{ORG}/metadata/search"));
}

/// The full payload as ZITADEL sends it for a token issued to someone impersonating the user
/// (`actor`, a domain.TokenActor).
fn impersonated() -> String {
    let mut payload: serde_json::Value = serde_json::from_str(FULL).unwrap();
    payload["actor"] = serde_json::json!({"user_id": "312909075212468999", "issuer": "https://z"});
    payload.to_string()
}

#[test]
fn an_impersonator_never_gets_the_microsoft_token_and_keeps_the_permissions_by_default() {
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, trace) = run(&config(), &Caches::default(), &runtime, &impersonated());
    let response = result.unwrap();
    assert_eq!(claim(&response, "urn:custom:ms_access_token"), None);
    assert_eq!(trace.ms_token, Some("impersonated"));
    assert!(trace.log_claims().iter().any(|l| l.starts_with("urn:custom:ms_access_token omitted: ")));
    assert!(claim(&response, "permissions").is_some(), "IMPERSONATION_PERMISSIONS=keep (the default)");
    let mut null_actor: serde_json::Value = serde_json::from_str(FULL).unwrap();
    null_actor["actor"] = serde_json::Value::Null;
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, _) = run(&config(), &Caches::default(), &runtime, &null_actor.to_string());
    assert!(claim(&result.unwrap(), "urn:custom:ms_access_token").is_some(), "a null actor is no actor");
}

#[test]
fn impersonation_permissions_omit_leaves_the_permissions_out_without_a_call() {
    let mut config = config();
    config.impersonation_permissions = crate::config::ImpersonationPolicy::Omit;
    let runtime = FakeRuntime::new(vec![]);
    let (result, trace) = run(&config, &Caches::default(), &runtime, &impersonated());
    let response = result.unwrap();
    assert_eq!(claim(&response, "permissions"), None);
    assert!(claim(&response, "my:zitadel:grants").is_some(), "the roles ZITADEL asserts stay");
    assert_eq!(runtime.sends(), 0);
    assert!(trace.log_claims().iter().any(|l| l.starts_with("permissions omitted: ")));
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, _) = run(&config, &Caches::default(), &runtime, FULL);
    assert!(claim(&result.unwrap(), "permissions").is_some(), "the user's own token keeps them");
}

#[test]
fn no_grants_means_no_permissions_and_no_call() {
    let runtime = FakeRuntime::new(vec![]);
    let body = r#"{"function":"preaccesstoken","org":{"id":"o"}}"#;
    let (result, _) = run(&config(), &Caches::default(), &runtime, body);
    assert_eq!(result.unwrap().append_claims, vec![]);
    assert!(runtime.sent().is_empty());
    let body = r#"{"function":"preaccesstoken","org":{"id":"o"},"user_grants":[{"project_id":"p","roles":[]}]}"#;
    let (result, _) = run(&config(), &Caches::default(), &runtime, body);
    assert_eq!(result.unwrap().append_claims, vec![]);
    assert!(runtime.sent().is_empty());
}

#[test]
fn roles_without_a_mapping_give_no_permissions_claim() {
    let runtime = FakeRuntime::new(vec![metadata_page(&[("other", "x")])]);
    let body = r#"{"function":"preaccesstoken","org":{"id":"o"},"user_grants":[{"project_id":"p","roles":["admin"]}]}"#;
    let (result, _) = run(&config(), &Caches::default(), &runtime, body);
    assert_eq!(claim(&result.unwrap(), "permissions"), None);
}

#[test]
fn project_filter_and_fixed_org() {
    let mut c = config();
    let p = c.permissions.as_mut().unwrap();
    p.project_id = Some("312909075214958999".into());
    p.org_id = Some("owner-org".into());
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, _) = run(&c, &Caches::default(), &runtime, FULL);
    assert_eq!(
        claim(&result.unwrap(), "permissions"),
        Some(&list(&["posts:read"])),
        "only the viewer grant of that project"
    );
    assert_eq!(runtime.sent()[0].url, "https://z/v2/organizations/owner-org/metadata/search");
}

#[test]
fn prefix_is_sent_as_filter_and_stripped() {
    let mut c = config();
    c.permissions.as_mut().unwrap().metadata_prefix = "permissions:".into();
    let runtime = FakeRuntime::new(vec![metadata_page(&[("permissions:viewer", "reports:read")])]);
    let body =
        r#"{"function":"preaccesstoken","org":{"id":"o"},"user_grants":[{"project_id":"p","roles":["viewer"]}]}"#;
    let (result, _) = run(&c, &Caches::default(), &runtime, body);
    assert_eq!(claim(&result.unwrap(), "permissions"), Some(&list(&["reports:read"])));
    let sent: serde_json::Value = serde_json::from_slice(&runtime.sent()[0].body).unwrap();
    assert_eq!(sent["filters"][0]["keyFilter"]["key"], "permissions:");
}

#[test]
fn unreadable_mapping_entries_are_logged_by_key_and_skipped() {
    let runtime = FakeRuntime::new(vec![metadata_page(&[("admin", r#"{"not":"a list"}"#), ("editor", "posts:read")])]);
    let body = r#"{"function":"preaccesstoken","org":{"id":"o"},"user_grants":[{"roles":["admin","editor"]}]}"#;
    let (result, trace) = run(&config(), &Caches::default(), &runtime, body);
    assert_eq!(claim(&result.unwrap(), "permissions"), Some(&list(&["posts:read"])));
    assert_eq!(trace.skipped_metadata_keys, ["admin (the value is a JSON object, not a list)"]);
}

#[test]
fn second_call_within_the_ttl_is_served_from_the_isolate_cache() {
    let runtime = FakeRuntime::new(vec![mapping(), mapping()]);
    let isolate = Caches::default();
    run(&config(), &isolate, &runtime, FULL).0.unwrap();
    runtime.advance_ms(59_000);
    let (result, trace) = run(&config(), &isolate, &runtime, FULL);
    assert!(claim(&result.unwrap(), "permissions").is_some());
    assert_eq!(trace.cache, Some("hit"));
    assert_eq!(runtime.sent().len(), 1);
    runtime.advance_ms(1_000);
    let (_, trace) = run(&config(), &isolate, &runtime, FULL);
    assert_eq!(trace.cache, Some("miss"));
    assert_eq!(runtime.sent().len(), 2, "after the TTL a new call");
}

#[test]
fn ttl_zero_disables_caching() {
    let mut c = config();
    c.cache_ttl_seconds = 0;
    let runtime = FakeRuntime::new(vec![mapping(), mapping()]).with_kv();
    let isolate = Caches::default();
    run(&c, &isolate, &runtime, FULL).0.unwrap();
    let (_, trace) = run(&c, &isolate, &runtime, FULL);
    assert_eq!(trace.cache, Some("off"));
    assert_eq!(runtime.sent().len(), 2);
    assert!(runtime.kv_entry(&shared_key("https://z", ORG, "")).is_none(), "nothing is written to KV");
}

#[test]
fn kv_is_written_after_a_fetch_and_read_by_a_fresh_isolate() {
    let runtime = FakeRuntime::new(vec![mapping()]).with_kv();
    run(&config(), &Caches::default(), &runtime, FULL).0.unwrap();
    let (text, ttl) = runtime.kv_entry(&shared_key("https://z", ORG, "")).unwrap();
    assert_eq!(ttl, 60);
    assert!(text.contains("users:manage"));
    let (result, trace) = run(&config(), &Caches::default(), &runtime, FULL);
    assert_eq!(trace.cache, Some("kv"));
    assert!(claim(&result.unwrap(), "permissions").is_some());
    assert_eq!(runtime.sent().len(), 1, "the second isolate did not call ZITADEL");
}

#[test]
fn an_old_kv_entry_is_not_used_while_zitadel_answers() {
    let runtime = FakeRuntime::new(vec![mapping()]).with_kv();
    let old = SharedEntry {
        fetched_at_ms: runtime.now_ms() - 61_000,
        roles: [("admin".to_string(), vec!["old".to_string()])].into(),
    };
    runtime.kv_insert(&shared_key("https://z", ORG, ""), serde_json::to_string(&old).unwrap());
    let (result, trace) = run(&config(), &Caches::default(), &runtime, FULL);
    assert_eq!(trace.cache, Some("miss"));
    assert_eq!(claim(&result.unwrap(), "permissions"), Some(&list(&["posts:read", "posts:write", "users:manage"])));
}

#[test]
fn a_kv_entry_stamped_ahead_of_the_clock_is_absent() {
    let runtime = FakeRuntime::new(vec![mapping()]).with_kv();
    let ahead = SharedEntry {
        fetched_at_ms: runtime.now_ms() + 3_600_000,
        roles: [("admin".to_string(), vec!["planted".to_string()])].into(),
    };
    runtime.kv_insert(&shared_key("https://z", ORG, ""), serde_json::to_string(&ahead).unwrap());
    let (result, trace) = run(&config(), &Caches::default(), &runtime, FULL);
    assert_eq!(trace.cache, Some("miss"));
    assert_eq!(claim(&result.unwrap(), "permissions"), Some(&list(&["posts:read", "posts:write", "users:manage"])));
}

#[test]
fn an_empty_mapping_is_noted_kept_ten_seconds_and_never_put_in_kv() {
    let empty = || metadata_page(&[]);
    let runtime = FakeRuntime::new(vec![empty(), empty()]).with_kv();
    let caches = Caches::default();
    let (result, trace) = run(&config(), &caches, &runtime, FULL);
    assert_eq!(claim(&result.unwrap(), "permissions"), None);
    assert!(trace.notes.iter().any(|n| n == "empty_mapping"), "{:?}", trace.notes);
    assert!(trace.log_claims().iter().any(|l| l.contains("org.read")));
    assert!(runtime.kv_entry(&shared_key("https://z", ORG, "")).is_none());
    runtime.advance_ms(9_000);
    let _ = run(&config(), &caches, &runtime, FULL);
    assert_eq!(runtime.sends(), 1, "kept for a while");
    runtime.advance_ms(1_000);
    let _ = run(&config(), &caches, &runtime, FULL);
    assert_eq!(runtime.sends(), 2, "asked again after 10 s, though the TTL is 60 s");
}

#[test]
fn a_mapping_over_its_budget_is_left_out_even_when_failures_fail() {
    let mut config = config();
    config.on_upstream_error = UpstreamPolicy::Fail;
    if let Some(p) = config.permissions.as_mut() {
        p.mapping_max_bytes = 20;
    }
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, trace) = run(&config, &Caches::default(), &runtime, FULL);
    let response = result.expect("no 502 for a tenant's oversized mapping");
    assert_eq!(claim(&response, "permissions"), None);
    assert!(claim(&response, "my:zitadel:grants").is_some());
    assert_eq!(trace.upstream_error, Some("mapping_too_large"));
}

#[test]
fn a_permissions_claim_over_its_cap_is_left_out() {
    let mut config = config();
    if let Some(p) = config.permissions.as_mut() {
        p.claim_max_bytes = 20;
    }
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, trace) = run(&config, &Caches::default(), &runtime, FULL);
    assert_eq!(claim(&result.unwrap(), "permissions"), None);
    assert!(trace.log_claims().iter().any(|l| l.contains("PERMISSIONS_CLAIM_MAX_BYTES")));
}

#[test]
fn upstream_failure_omits_permissions_by_default_and_keeps_the_rest() {
    for reply in [
        Reply::json(500, serde_json::json!({})),
        Reply::json(401, serde_json::json!({})),
        Reply::raw(200, b"not json"),
        Reply::Hang,
    ] {
        let runtime = FakeRuntime::new(vec![reply]);
        let (result, trace) = run(&config(), &Caches::default(), &runtime, FULL);
        let response = result.unwrap();
        assert_eq!(claim(&response, "permissions"), None);
        assert!(claim(&response, "my:zitadel:grants").is_some());
        assert!(response.append_log_claims.is_empty(), "LOG_CLAIMS is off");
        assert!(trace.upstream_error.is_some());
    }
}

#[test]
fn log_claims_say_why_permissions_are_missing_without_values() {
    let mut c = config();
    c.log_claims = true;
    let runtime = FakeRuntime::new(vec![Reply::Hang]);
    let (result, trace) = run(&c, &Caches::default(), &runtime, FULL);
    assert_eq!(result.unwrap().append_log_claims, ["permissions omitted: ZITADEL API timeout"]);
    assert_eq!(trace.upstream_error, Some("timeout"));
}

#[test]
fn fail_policy_answers_upstream_unavailable() {
    let mut c = config();
    c.on_upstream_error = UpstreamPolicy::Fail;
    let runtime = FakeRuntime::new(vec![Reply::json(500, serde_json::json!({}))]);
    let (result, _) = run(&c, &Caches::default(), &runtime, FULL);
    assert_eq!(result, Err(UpstreamError::Status(500)));
    // Without roles there is nothing to fail.
    let (result, _) = run(&c, &Caches::default(), &runtime, r#"{"function":"preaccesstoken"}"#);
    assert!(result.is_ok());
}

#[test]
fn stale_map_is_served_during_an_outage_within_the_window() {
    let mut c = config();
    c.stale_if_error_seconds = 300;
    let runtime = FakeRuntime::new(vec![
        mapping(),
        Reply::json(503, serde_json::json!({})),
        Reply::json(503, serde_json::json!({})),
    ]);
    let isolate = Caches::default();
    run(&c, &isolate, &runtime, FULL).0.unwrap();
    runtime.advance_ms(61_000);
    let (result, trace) = run(&c, &isolate, &runtime, FULL);
    assert!(claim(&result.unwrap(), "permissions").is_some());
    assert_eq!((trace.cache, trace.upstream_error), (Some("stale"), Some("bad_status")));
    runtime.advance_ms(300_000);
    let (result, trace) = run(&c, &isolate, &runtime, FULL);
    assert_eq!(claim(&result.unwrap(), "permissions"), None, "past the window nothing stale is used");
    assert_eq!(trace.upstream_error, Some("bad_status"));
}

#[test]
fn stale_map_is_served_when_zitadel_hangs_past_the_deadline() {
    let mut c = config();
    c.stale_if_error_seconds = 300;
    let runtime = FakeRuntime::new(vec![mapping(), Reply::Hang]);
    let isolate = Caches::default();
    run(&c, &isolate, &runtime, FULL).0.unwrap();
    runtime.advance_ms(61_000);
    let (result, trace) = run(&c, &isolate, &runtime, FULL);
    assert!(claim(&result.unwrap(), "permissions").is_some());
    assert_eq!((trace.cache, trace.upstream_error), (Some("stale"), Some("timeout")));
}

#[test]
fn stale_map_in_kv_is_served_during_an_outage() {
    let mut c = config();
    c.stale_if_error_seconds = 300;
    let runtime = FakeRuntime::new(vec![Reply::json(503, serde_json::json!({}))]).with_kv();
    let old = SharedEntry {
        fetched_at_ms: runtime.now_ms() - 120_000,
        roles: [("admin".to_string(), vec!["kept".to_string()])].into(),
    };
    runtime.kv_insert(&shared_key("https://z", ORG, ""), serde_json::to_string(&old).unwrap());
    let (result, trace) = run(&c, &Caches::default(), &runtime, FULL);
    assert_eq!(claim(&result.unwrap(), "permissions"), Some(&list(&["kept"])));
    assert_eq!(trace.cache, Some("stale"));
}

#[test]
fn groups_are_bare_role_names_when_enabled() {
    let mut c = config();
    c.groups_claim = Some("groups".into());
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, _) = run(&c, &Caches::default(), &runtime, FULL);
    assert_eq!(claim(&result.unwrap(), "groups"), Some(&list(&["admin", "editor", "viewer"])));
}

#[test]
fn flat_roles_over_the_size_limit_are_omitted_and_said_so() {
    let mut body: serde_json::Value = serde_json::from_str(FULL).unwrap();
    let roles: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    body["user_grants"] = serde_json::json!([{ "project_id": "p".repeat(2048), "roles": roles }]);
    let mut c = config();
    c.log_claims = true;
    c.groups_claim = Some("groups".into());
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, trace) = run(&c, &Caches::default(), &runtime, &body.to_string());
    let result = result.unwrap();
    assert_eq!(claim(&result, "my:zitadel:grants"), None);
    assert_eq!(trace.notes, ["flat roles: more than 1 MiB"]);
    assert_eq!(result.append_log_claims, ["my:zitadel:grants omitted: more than 1 MiB"]);
    assert!(claim(&result, "groups").is_some(), "the other claims are still there");
}

#[test]
fn ms_token_goes_into_userinfo_only_when_asked() {
    let body = FULL.replace("function/preaccesstoken", "function/preuserinfo");
    let runtime = FakeRuntime::new(vec![mapping(), mapping()]);
    let (result, _) = run(&config(), &Caches::default(), &runtime, &body);
    assert_eq!(claim(&result.unwrap(), "urn:custom:ms_access_token"), None);
    let mut c = config();
    c.ms_token.as_mut().unwrap().in_userinfo = true;
    let (result, _) = run(&c, &Caches::default(), &runtime, &body);
    assert!(claim(&result.unwrap(), "urn:custom:ms_access_token").is_some());
}

#[test]
fn unreadable_token_metadata_is_omitted_and_noted() {
    let mut c = config();
    c.log_claims = true;
    let body = r#"{"function":"preaccesstoken","user_metadata":[{"key":"microsoft_access_token","value":"%%%"}]}"#;
    let (result, trace) = run(&c, &Caches::default(), &FakeRuntime::new(vec![]), body);
    let response = result.unwrap();
    assert!(response.append_claims.is_empty());
    assert_eq!(
        response.append_log_claims,
        ["urn:custom:ms_access_token omitted: the token metadata is not valid base64"]
    );
    assert_eq!(trace.notes, ["the token metadata is not valid base64"]);
}

/// The test config with Microsoft token refresh on, failing as `on_error` says.
fn refreshing(on_error: crate::config::MsRefreshPolicy) -> Config {
    let mut c = config();
    c.ms_token.as_mut().unwrap().refresh = Some(crate::config::MsRefreshConfig {
        client_id: "app".into(),
        client_secret: Secret::new("s"),
        token_url: "https://login.example/token".into(),
        scopes: "offline_access User.Read".into(),
        skew_seconds: 300,
        on_error,
    });
    c
}

/// A preaccesstoken call whose stored Microsoft token expires at `expires_at` (Unix seconds).
fn with_stored_token(expires_at: &str) -> String {
    serde_json::json!({
        "function": "function/preaccesstoken",
        "user_metadata": [
            {"key": "microsoft_access_token", "value": b64("\"old-token\"")},
            {"key": "microsoft_refresh_token", "value": b64("\"old-refresh\"")},
            {"key": "microsoft_access_token_expires_at", "value": b64(expires_at)}
        ]
    })
    .to_string()
}

#[test]
fn a_refreshed_token_is_claimed_and_written_back_in_set_user_metadata() {
    let c = refreshing(crate::config::MsRefreshPolicy::Omit);
    let body = with_stored_token("1");
    let runtime = FakeRuntime::new(vec![Reply::json(
        200,
        serde_json::json!({"access_token": "new-token", "refresh_token": "new-refresh", "expires_in": 3600}),
    )]);
    let (result, trace) = run(&c, &Caches::default(), &runtime, &body);
    let expires_at = (runtime.now_ms() / 1000 + 3600).to_string();
    assert_eq!(
        result.unwrap().to_json(),
        format!(
            r#"{{"append_claims":[{{"key":"urn:custom:ms_access_token","value":"new-token"}}],"set_user_metadata":[{{"key":"microsoft_access_token","value":"{}"}},{{"key":"microsoft_refresh_token","value":"{}"}},{{"key":"microsoft_access_token_expires_at","value":"{}"}}]}}"#,
            b64("new-token"),
            b64("new-refresh"),
            b64(&expires_at)
        )
    );
    assert_eq!(trace.ms_token, Some("refreshed"));
}

#[test]
fn a_stale_token_passed_after_a_failed_refresh_is_logged_as_stale_with_the_failure() {
    let c = refreshing(crate::config::MsRefreshPolicy::Stale);
    let body = with_stored_token(&(FakeRuntime::new(vec![]).now_ms() / 1000 + 60).to_string());
    let runtime = FakeRuntime::new(vec![Reply::json(503, serde_json::json!({}))]);
    let (result, trace) = run(&c, &Caches::default(), &runtime, &body);
    let result = result.unwrap();
    assert_eq!(claim(&result, "urn:custom:ms_access_token"), Some(&ClaimValue::Text("old-token".into())));
    assert!(result.set_user_metadata.is_empty());
    assert_eq!((trace.ms_token, trace.notes), (Some("stale"), vec![std::borrow::Cow::from("bad_status")]));
}

#[test]
fn claims_turned_off_are_absent() {
    let mut c = config();
    c.permissions = None;
    c.flat_roles_claim = None;
    c.ms_token = None;
    let runtime = FakeRuntime::new(vec![]);
    let (result, _) = run(&c, &Caches::default(), &runtime, FULL);
    assert!(result.unwrap().append_claims.is_empty());
    assert!(runtime.sent().is_empty());
}

/// FULL with `changes` merged in at the top level.
fn full_with(changes: serde_json::Value) -> String {
    let mut body: serde_json::Value = serde_json::from_str(FULL).unwrap();
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string()
}

#[test]
fn earlier_targets_entries_are_carried_forward_and_their_claims_kept() {
    let mut c = config();
    c.log_claims = true;
    let body = full_with(serde_json::json!({"response": {
        "append_claims": [{"key": "permissions", "value": ["from:earlier"]}, {"key": "other", "value": {"x": 1}}],
        "set_user_metadata": [{"State": 0, "Key": "k", "Value": "dg=="}],
        "append_log_claims": ["earlier line"]
    }}));
    let runtime = FakeRuntime::new(vec![]);
    let (result, trace) = run(&c, &Caches::default(), &runtime, &body);
    let json: serde_json::Value = serde_json::from_str(&result.unwrap().to_json()).unwrap();
    let keys: Vec<&str> =
        json["append_claims"].as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["permissions", "other", "my:zitadel:grants", "urn:custom:ms_access_token"]);
    assert_eq!(
        json["append_claims"][0]["value"],
        serde_json::json!(["from:earlier"]),
        "the first target's value stays"
    );
    assert_eq!(json["set_user_metadata"], serde_json::json!([{"State": 0, "Key": "k", "Value": "dg=="}]));
    assert_eq!(json["append_log_claims"], serde_json::json!(["earlier line"]));
    assert!(runtime.sent().is_empty(), "no lookup for a claim that an earlier target gave");
    assert_eq!(trace.notes, [r#"key "permissions" already exists (an earlier target gave it)"#]);
    assert_eq!(trace.earlier_entries, 4);
    assert_eq!(trace.claims, ["my:zitadel:grants", "urn:custom:ms_access_token"], "the trace names our own claims");
}

#[test]
fn saml_gets_attributes_and_no_microsoft_token() {
    let mut c = config();
    c.groups_claim = Some("groups".into());
    let body = serde_json::json!({
        "function": "function/presamlresponse",
        "user": {"id": "u1", "resource_owner": ORG},
        "user_grants": [{"project_id": "p1", "roles": ["admin", "viewer"]}],
        "response": {"append_attribute": [{"name": "groups", "name_format": "x", "value": ["earlier"]}]}
    });
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, trace) = run(&c, &Caches::default(), &runtime, &body.to_string());
    let response = result.unwrap();
    assert!(response.append_claims.is_empty() && response.append_log_claims.is_empty());
    let names: Vec<&str> = response.append_attribute.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(names, ["permissions", "my:zitadel:grants"], "groups was given by an earlier target");
    assert_eq!(response.append_attribute[0].value, list(&["posts:read", "posts:write", "users:manage"]));
    assert_eq!(
        runtime.sent()[0].url,
        format!("https://z/v2/organizations/{ORG}/metadata/search"),
        "the user's organization"
    );
    assert_eq!(trace.function, None, "set by the endpoint, not here");
    assert_eq!(trace.claims, ["permissions", "my:zitadel:grants"]);
    let json: serde_json::Value = serde_json::from_str(&response.to_json()).unwrap();
    assert_eq!(
        json["append_attribute"][0],
        serde_json::json!({"name": "groups", "name_format": "x", "value": ["earlier"]})
    );
    assert_eq!(json["append_attribute"][1]["name_format"], crate::contract::response::SAML_NAME_FORMAT);
}

#[test]
fn the_microsoft_token_goes_only_to_the_listed_clients() {
    let mut c = config();
    c.log_claims = true;
    c.ms_token.as_mut().unwrap().clients =
        Some(MsTokenClients::Only(vec!["backend".into(), "312909075213386136".into()]));
    let runtime = FakeRuntime::new(vec![mapping(), mapping(), mapping()]);
    // The fixture's application is the second client.
    let (result, trace) = run(&c, &Caches::default(), &runtime, FULL);
    assert!(claim(&result.unwrap(), "urn:custom:ms_access_token").is_some());
    assert_eq!(trace.ms_token, Some("passed"));

    let spa = full_with(serde_json::json!({"application": {"client_id": "spa"}}));
    let (result, trace) = run(&c, &Caches::default(), &runtime, &spa);
    let response = result.unwrap();
    assert_eq!(claim(&response, "urn:custom:ms_access_token"), None);
    assert!(response.append_log_claims.is_empty(), "another client is not a failure");
    assert_eq!((trace.ms_token, trace.notes.len()), (Some("other_client"), 0));

    let older = full_with(serde_json::json!({"application": null}));
    let (result, trace) = run(&c, &Caches::default(), &runtime, &older);
    let response = result.unwrap();
    assert_eq!(claim(&response, "urn:custom:ms_access_token"), None);
    let why = "the payload names no application (older ZITADEL), and MS_TOKEN_CLIENT_IDS lists clients";
    assert_eq!((trace.ms_token, trace.notes), (Some("omitted"), vec![std::borrow::Cow::from(why)]));
    assert_eq!(response.append_log_claims, [format!("urn:custom:ms_access_token omitted: {why}")]);

    // `*`: every client, and payloads that name none.
    c.ms_token.as_mut().unwrap().clients = Some(MsTokenClients::All);
    for payload in [&spa, &older] {
        let (result, trace) = run(&c, &Caches::default(), &runtime, payload);
        assert!(claim(&result.unwrap(), "urn:custom:ms_access_token").is_some());
        assert_eq!(trace.ms_token, Some("passed"));
    }
}

#[test]
fn without_ms_token_client_ids_the_microsoft_token_goes_to_no_client() {
    let mut c = config();
    c.log_claims = true;
    c.ms_token.as_mut().unwrap().clients = None;
    let runtime = FakeRuntime::new(vec![mapping()]);
    let (result, trace) = run(&c, &Caches::default(), &runtime, FULL);
    let response = result.unwrap();
    assert_eq!(claim(&response, "urn:custom:ms_access_token"), None);
    assert!(claim(&response, "permissions").is_some());
    assert_eq!((trace.ms_token, trace.notes.len()), (None, 0));
    assert!(response.append_log_claims.is_empty(), "off is not a failure");
}

/// Sealed tokens (TOKEN_SEALING_KEY): what a call with sealed or cleartext metadata gets.
mod sealed {
    use super::*;
    use crate::seal::{self, Aad, SealingKeys};

    const USER: &str = "u-ada";
    const KEYS: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    fn keys() -> SealingKeys {
        SealingKeys::parse(KEYS).unwrap()
    }

    fn sealing(mut c: Config) -> Config {
        c.sealing = Some(keys());
        c
    }

    /// `value` sealed for `user` under `key`, as the base64 of a metadata value.
    fn sealed_for(user: &str, key: &str, value: &str) -> String {
        let runtime = FakeRuntime::new(vec![]);
        b64(block_on(seal::seal_bytes(&runtime, &keys(), &Aad::metadata(user, key), value.as_bytes())).unwrap())
    }

    /// A preaccesstoken call of `user` with these metadata entries (already base64).
    fn call_with(user: &str, metadata: &[(&str, String)]) -> String {
        let metadata: Vec<_> = metadata.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect();
        serde_json::json!({"function": "function/preaccesstoken", "user": {"id": user}, "user_metadata": metadata})
            .to_string()
    }

    fn token_of(result: &ContextInfoResponse) -> Option<&ClaimValue> {
        claim(result, "urn:custom:ms_access_token")
    }

    #[test]
    fn a_sealed_token_opens_for_its_user_and_is_passed_on() {
        let c = sealing(config());
        let body = call_with(USER, &[("microsoft_access_token", sealed_for(USER, "microsoft_access_token", "tok"))]);
        let (result, trace) = run(&c, &Caches::default(), &FakeRuntime::new(vec![]), &body);
        assert_eq!(token_of(&result.unwrap()), Some(&ClaimValue::Text("tok".into())));
        assert_eq!(trace.ms_token, Some("passed"));
    }

    #[test]
    fn a_sealed_token_copied_to_another_user_or_key_does_not_open() {
        let c = sealing(config());
        for (user, key) in [("u-eve", "microsoft_access_token"), (USER, "microsoft_refresh_token")] {
            let body = call_with(USER, &[("microsoft_access_token", sealed_for(user, key, "tok"))]);
            let (result, trace) = run(&c, &Caches::default(), &FakeRuntime::new(vec![]), &body);
            assert_eq!(token_of(&result.unwrap()), None, "sealed for {user} under {key}");
            assert_eq!(trace.ms_token, Some("omitted"));
            assert!(trace.notes.iter().any(|n| n.contains("does not open here")), "{:?}", trace.notes);
        }
    }

    #[test]
    fn a_cleartext_token_is_passed_on_only_with_ms_accept_unsealed() {
        let mut c = sealing(config());
        let body = call_with(USER, &[("microsoft_access_token", b64("clear-token"))]);
        let (result, trace) = run(&c, &Caches::default(), &FakeRuntime::new(vec![]), &body);
        assert_eq!(token_of(&result.unwrap()), None);
        assert!(trace.notes.iter().any(|n| n.contains("MS_ACCEPT_UNSEALED")), "{:?}", trace.notes);
        c.ms_token.as_mut().unwrap().accept_unsealed = true;
        let (result, _) = run(&c, &Caches::default(), &FakeRuntime::new(vec![]), &body);
        assert_eq!(token_of(&result.unwrap()), Some(&ClaimValue::Text("clear-token".into())));
    }

    #[test]
    fn a_planted_cleartext_refresh_token_is_never_sent_to_microsoft() {
        let mut c = sealing(refreshing(crate::config::MsRefreshPolicy::Omit));
        c.ms_token.as_mut().unwrap().accept_unsealed = true;
        let body = call_with(
            USER,
            &[("microsoft_access_token", b64("clear-token")), ("microsoft_refresh_token", b64("planted-refresh"))],
        );
        let runtime = FakeRuntime::new(vec![]);
        let (result, trace) = run(&c, &Caches::default(), &runtime, &body);
        // Passed on (MS_ACCEPT_UNSEALED, expiry unknown, nothing to refresh with).
        assert_eq!(token_of(&result.unwrap()), Some(&ClaimValue::Text("clear-token".into())));
        assert!(runtime.sent().is_empty(), "nothing may reach Microsoft");
        assert!(trace.notes.iter().any(|n| n.contains("never redeemed")), "{:?}", trace.notes);
    }

    #[test]
    fn without_a_sealing_key_a_sealed_token_cannot_be_read() {
        let c = config();
        let body = call_with(USER, &[("microsoft_access_token", sealed_for(USER, "microsoft_access_token", "tok"))]);
        let (result, trace) = run(&c, &Caches::default(), &FakeRuntime::new(vec![]), &body);
        assert_eq!(token_of(&result.unwrap()), None);
        assert!(trace.notes.iter().any(|n| n.contains("TOKEN_SEALING_KEY is not set")), "{:?}", trace.notes);
    }

    #[test]
    fn a_stale_token_is_refreshed_with_the_sealed_refresh_token_and_written_back_sealed() {
        let c = sealing(refreshing(crate::config::MsRefreshPolicy::Omit));
        let body = call_with(
            USER,
            &[
                ("microsoft_access_token", sealed_for(USER, "microsoft_access_token", "old-token")),
                ("microsoft_refresh_token", sealed_for(USER, "microsoft_refresh_token", "sealed-refresh")),
                ("microsoft_access_token_expires_at", sealed_for(USER, "microsoft_access_token_expires_at", "1")),
            ],
        );
        let runtime = FakeRuntime::new(vec![Reply::json(
            200,
            serde_json::json!({"access_token": "new-token", "refresh_token": "new-refresh", "expires_in": 3600}),
        )]);
        let (result, trace) = run(&c, &Caches::default(), &runtime, &body);
        let result = result.unwrap();
        assert_eq!(trace.ms_token, Some("refreshed"));
        assert_eq!(token_of(&result), Some(&ClaimValue::Text("new-token".into())));
        let sent: Vec<(String, String)> = form_urlencoded::parse(&runtime.sent()[0].body).into_owned().collect();
        assert!(sent.contains(&("refresh_token".into(), "sealed-refresh".into())), "the opened refresh token is used");
        // Written back sealed, each for this user and its own key.
        let expires_at = (runtime.now_ms() / 1000 + 3600).to_string();
        let expected = [
            ("microsoft_access_token", "new-token"),
            ("microsoft_refresh_token", "new-refresh"),
            ("microsoft_access_token_expires_at", expires_at.as_str()),
        ];
        assert_eq!(result.set_user_metadata.len(), expected.len());
        for (entry, (key, plaintext)) in result.set_user_metadata.iter().zip(expected) {
            assert_eq!(entry.key, key);
            let bytes = base64::engine::general_purpose::STANDARD.decode(&entry.value).unwrap();
            assert!(seal::is_sealed_bytes(&bytes), "{key} is written sealed");
            let opened = block_on(seal::open_bytes(&runtime, &keys(), &Aad::metadata(USER, key), &bytes)).unwrap();
            assert_eq!(opened, plaintext.as_bytes(), "{key}");
        }
    }
}
