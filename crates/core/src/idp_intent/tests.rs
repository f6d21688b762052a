use super::*;
use crate::testing::{self, b64, FakeRuntime, Reply};
use base64::Engine;
use futures::executor::block_on;
fn config(extra: &[(&str, &str)]) -> Config {
    let mut settings = vec![
        ("ZITADEL_SIGNING_KEY", "k"),
        ("ZITADEL_DOMAIN", "https://z"),
        ("ZITADEL_ACCESS_TOKEN", "pat"),
        ("PERMISSIONS_CLAIM", ""),
    ];
    if !extra.iter().any(|(name, _)| *name == "MS_IDP_ID") {
        settings.push(("MS_IDP_ID", "ms-idp"));
    }
    settings.extend_from_slice(extra);
    testing::settings(&settings).unwrap()
}

fn response(access: &str, refresh: Option<&str>, user_id: Option<&str>) -> String {
    let mut oauth = serde_json::json!({"accessToken": access, "idToken": "eyJ.id.token"});
    if let Some(r) = refresh {
        oauth["refreshToken"] = r.into();
    }
    let mut body = serde_json::json!({
        "details": {"sequence": "12", "changeDate": "2026-11-23T10:00:00Z", "resourceOwner": "o1"},
        "idpInformation": {"oauth": oauth, "idpId": "ms-idp", "userId": "entra-oid", "userName": "ada@contoso.example",
                           "rawInformation": {"RawInfo": {"sub": "x"}}}
    });
    if let Some(u) = user_id {
        body["userId"] = u.into();
    }
    body.to_string()
}

/// The entries to store for a linked user, or why there are none.
fn entries(config: &Config, response: &str) -> Result<(String, Vec<Metadata>), &'static str> {
    match plan(config, response)? {
        Plan::Store { user_id, entries } => Ok((user_id, entries)),
        Plan::Answer { .. } | Plan::Update { .. } => panic!("expected a linked user without updateUser"),
    }
}

/// The message answered for a first sign-in.
fn answered(config: &Config, response: &str) -> (serde_json::Value, usize) {
    match plan(config, response).unwrap() {
        Plan::Answer { message, added } => (serde_json::from_str(&message).unwrap(), added),
        Plan::Store { .. } | Plan::Update { .. } => panic!("expected a first sign-in"),
    }
}

/// The response of a first sign-in (no `userId`) with `request` under `name`.
fn first_sign_in(name: &str, request: serde_json::Value) -> String {
    let mut body: serde_json::Value = serde_json::from_str(&response("EwB-first", Some("rt-first"), None)).unwrap();
    body[name] = request;
    body.to_string()
}

fn ours() -> serde_json::Value {
    serde_json::json!([
        {"key": "microsoft_access_token", "value": b64("EwB-first")},
        {"key": "microsoft_refresh_token", "value": b64("rt-first")},
        {"key": "microsoft_access_token_expires_at", "value": b64("0")}
    ])
}

#[test]
fn a_new_user_is_created_with_the_tokens_in_add_human_user() {
    let request = serde_json::json!({"username": "ada", "profile": {"givenName": "Ada"},
        "metadata": [{"key": "organization", "value": "Y29tcGFueQ=="}, {"key": "microsoft_access_token", "value": "b2xk"}],
        "idpLinks": [{"idpId": "ms-idp", "userId": "entra-oid"}]});
    let body = first_sign_in("addHumanUser", request.clone());
    let (answer, added) = answered(&config(&[]), &body);
    assert_eq!(added, 3);
    let mut expected: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut metadata = vec![serde_json::json!({"key": "organization", "value": "Y29tcGFueQ=="})];
    metadata.extend(ours().as_array().unwrap().iter().cloned());
    expected["addHumanUser"]["metadata"] = metadata.into();
    assert_eq!(answer, expected, "only the metadata changed; ours replaced the stale entry of its key");
}

#[test]
fn the_rest_of_the_message_is_kept_byte_for_byte() {
    let body = r#"{"details":{"sequence":"1"},  "idpInformation":{"idpId":"ms-idp","oauth":{"accessToken":"EwB-x"}},"addHumanUser":{"username":"ada" ,"profile":{"givenName":"Ada"}} ,"z":1.50}"#;
    let Plan::Answer { message, .. } = plan(&config(&[]), body).unwrap() else { panic!() };
    let (before, after) = body.split_at(body.find(r#"}} ,"z""#).unwrap() + 1);
    assert!(message.starts_with(before), "{message}");
    assert!(message.ends_with(after), "{message}");
    let inserted = &message[before.len()..message.len() - after.len()];
    assert!(inserted.starts_with(r#","metadata":[{"key":"microsoft_access_token","value":"#), "{inserted}");
}

#[test]
fn a_new_user_is_created_with_the_tokens_in_create_user() {
    // Top-level metadata, absent at first.
    let (answer, _) = answered(
        &config(&[]),
        &first_sign_in("createUser", serde_json::json!({"username": "ada", "human": {"profile": {}}})),
    );
    assert_eq!(answer["createUser"]["metadata"], ours());
    assert_eq!(answer["createUser"]["human"], serde_json::json!({"profile": {}}));
    // The deprecated human.metadata, when that is the list in use (ZITADEL refuses both).
    let old = serde_json::json!({"human": {"metadata": [{"key": "a", "value": "Yg=="}]}});
    let (answer, _) = answered(&config(&[]), &first_sign_in("createUser", old));
    assert_eq!(answer["createUser"].get("metadata"), None);
    assert_eq!(answer["createUser"]["human"]["metadata"].as_array().unwrap().len(), 4);
    // Empty, null and an empty list.
    for request in [serde_json::json!({}), serde_json::json!({"metadata": null}), serde_json::json!({"metadata": []})] {
        let (answer, _) = answered(&config(&[]), &first_sign_in("createUser", request.clone()));
        assert_eq!(answer["createUser"]["metadata"], ours(), "{request}");
    }
}

#[test]
fn both_creating_requests_get_the_tokens() {
    let mut body: serde_json::Value =
        serde_json::from_str(&first_sign_in("createUser", serde_json::json!({}))).unwrap();
    body["addHumanUser"] = serde_json::json!({"username": "ada"});
    let (answer, added) = answered(&config(&[]), &body.to_string());
    assert_eq!((added, &answer["createUser"]["metadata"], &answer["addHumanUser"]["metadata"]), (6, &ours(), &ours()));
}

#[test]
fn a_first_sign_in_respects_the_identity_provider_setting() {
    let body = first_sign_in("addHumanUser", serde_json::json!({"username": "ada"}));
    assert_eq!(plan(&config(&[("MS_IDP_ID", "other")]), &body).unwrap_err(), "another identity provider (MS_IDP_ID)");
    assert!(matches!(plan(&config(&[("MS_IDP_ID", "ms-idp")]), &body), Ok(Plan::Answer { .. })));
}

#[test]
fn a_malformed_creating_request_is_skipped() {
    for request in
        [serde_json::json!("x"), serde_json::json!({"metadata": {"key": "a"}}), serde_json::json!({"metadata": [7]})]
    {
        let body = first_sign_in("addHumanUser", request.clone());
        assert_eq!(plan(&config(&[]), &body).unwrap_err(), "the user to create is not the expected JSON", "{request}");
    }
}

#[test]
fn a_first_sign_in_is_answered_without_an_api_call() {
    let runtime = FakeRuntime::new(vec![]);
    let body = first_sign_in("createUser", serde_json::json!({"username": "ada"}));
    let (outcome, message) =
        block_on(capture(&config(&[]), testing::zitadel_client(&config(&[])).as_ref(), &runtime, &body, u64::MAX));
    assert_eq!(outcome, Capture::Added(3));
    assert_eq!(outcome.describe(), "added");
    assert!(message.unwrap().contains("microsoft_refresh_token"));
    assert!(runtime.sent().is_empty());
}

#[test]
fn tokens_of_a_linked_user_are_stored_as_metadata() {
    let runtime = FakeRuntime::new(vec![Reply::json(200, serde_json::json!({"setDate": "x"}))]);
    let (outcome, message) = block_on(capture(
        &config(&[]),
        testing::zitadel_client(&config(&[])).as_ref(),
        &runtime,
        &response("EwB-opaque", Some("rt-1"), Some("u1")),
        u64::MAX,
    ));
    assert_eq!((outcome, message), (Capture::Stored(3), None), "a linked user's message goes back unchanged");
    let sent = runtime.sent();
    assert_eq!(sent[0].url, "https://z/v2/users/u1/metadata");
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"metadata": [
            {"key": "microsoft_access_token", "value": b64("EwB-opaque")},
            {"key": "microsoft_refresh_token", "value": b64("rt-1")},
            {"key": "microsoft_access_token_expires_at", "value": b64("0")}
        ]})
    );
}

#[test]
fn a_jwt_access_token_stores_its_exp() {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1800000000}"#);
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig");
    let (user, entries) = entries(&config(&[]), &response(&jwt, None, Some("u1"))).unwrap();
    assert_eq!(user, "u1");
    let keys: Vec<(&str, String)> = entries.iter().map(|m| (m.key.as_str(), m.value.clone())).collect();
    assert_eq!(keys, [("microsoft_access_token", b64(&jwt)), ("microsoft_access_token_expires_at", b64("1800000000"))]);
}

#[test]
fn configured_keys_are_used() {
    let c = config(&[
        ("MS_TOKEN_METADATA_KEY", "ms_at"),
        ("MS_CLIENT_ID", "app"),
        ("MS_CLIENT_SECRET", "s"),
        ("MS_REFRESH_TOKEN_METADATA_KEY", "ms_rt"),
        ("MS_TOKEN_EXPIRES_AT_METADATA_KEY", "ms_exp"),
    ]);
    let (_, entries) = entries(&c, &response("t", Some("r"), Some("u1"))).unwrap();
    let keys: Vec<&str> = entries.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["ms_at", "ms_rt", "ms_exp"]);
}

#[test]
fn nothing_is_stored_without_a_user_a_token_or_for_another_idp() {
    assert_eq!(
        plan(&config(&[]), &response("t", None, None)).unwrap_err(),
        "no linked user, and no user to create in the response"
    );
    assert_eq!(entries(&config(&[]), &response("", None, Some("u1"))).unwrap_err(), "no access token in the response");
    let ldap = serde_json::json!({"userId": "u1", "idpInformation": {"ldap": {"attributes": {}}}}).to_string();
    assert_eq!(entries(&config(&[]), &ldap).unwrap_err(), "another identity provider (MS_IDP_ID)");
    let other = config(&[("MS_IDP_ID", "the-microsoft-idp")]);
    assert_eq!(entries(&other, &response("t", None, Some("u1"))).unwrap_err(), "another identity provider (MS_IDP_ID)");
    let same = config(&[("MS_IDP_ID", "ms-idp")]);
    assert!(entries(&same, &response("t", None, Some("u1"))).is_ok());
    assert_eq!(
        entries(&config(&[("MS_IDP_ID", "")]), &response("t", None, Some("u1"))).unwrap_err(),
        "the sign-in capture is off (MS_IDP_ID is not set)"
    );
    assert_eq!(
        entries(&config(&[("MS_TOKEN_CLAIM", "")]), &response("t", None, Some("u1"))).unwrap_err(),
        "the Microsoft token claim is off"
    );
}

#[test]
fn a_failed_store_is_reported_not_raised() {
    let runtime = FakeRuntime::new(vec![Reply::json(403, serde_json::json!({"code": 7}))]);
    let (outcome, _) = block_on(capture(
        &config(&[]),
        testing::zitadel_client(&config(&[])).as_ref(),
        &runtime,
        &response("t", None, Some("u1")),
        u64::MAX,
    ));
    assert_eq!(outcome, Capture::Failed(UpstreamError::Unauthorized(403)));
    let runtime = FakeRuntime::new(vec![Reply::Hang]);
    let (outcome, _) = block_on(capture(
        &config(&[]),
        testing::zitadel_client(&config(&[])).as_ref(),
        &runtime,
        &response("t", None, Some("u1")),
        0,
    ));
    assert_eq!(outcome, Capture::Failed(UpstreamError::Timeout));
}

#[test]
fn the_configured_key_names_are_used_without_refresh_settings() {
    let c = config(&[("MS_REFRESH_TOKEN_METADATA_KEY", "ms_rt"), ("MS_TOKEN_EXPIRES_AT_METADATA_KEY", "ms_exp")]);
    assert!(c.ms_token.as_ref().unwrap().refresh.is_none());
    let (_, stored) = entries(&c, &response("at-1", Some("rt-1"), Some("u1"))).unwrap();
    let keys: Vec<_> = stored.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["microsoft_access_token", "ms_rt", "ms_exp"]);
}

#[test]
fn with_a_sealing_key_a_linked_users_tokens_are_stored_sealed_for_that_user() {
    use crate::seal::{self, Aad};
    const KEYS: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let sealing = config(&[("TOKEN_SEALING_KEY", KEYS)]);
    let runtime = FakeRuntime::new(vec![Reply::json(200, serde_json::json!({"setDate": "x"}))]);
    let (outcome, message) = block_on(capture(
        &sealing,
        testing::zitadel_client(&sealing).as_ref(),
        &runtime,
        &response("EwB-opaque", None, Some("u1")),
        u64::MAX,
    ));
    assert_eq!((outcome, message), (Capture::Stored(2), None));
    let body: serde_json::Value = serde_json::from_slice(&runtime.sent()[0].body).unwrap();
    let keys = sealing.sealing.as_ref().unwrap();
    for (entry, plaintext) in body["metadata"].as_array().unwrap().iter().zip(["EwB-opaque", "0"]) {
        let key = entry["key"].as_str().unwrap();
        let stored = base64::engine::general_purpose::STANDARD.decode(entry["value"].as_str().unwrap()).unwrap();
        assert!(seal::is_sealed_bytes(&stored), "{key} is stored sealed");
        let opened = block_on(seal::open_bytes(&runtime, keys, &Aad::metadata("u1", key), &stored)).unwrap();
        assert_eq!(opened, plaintext.as_bytes());
    }
}

#[test]
fn with_a_sealing_key_a_first_sign_in_stores_nothing_and_says_needs_connect() {
    let sealing = config(&[("TOKEN_SEALING_KEY", "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")]);
    let runtime = FakeRuntime::new(vec![]);
    let body = first_sign_in("createUser", serde_json::json!({"username": "ada"}));
    let (outcome, message) =
        block_on(capture(&sealing, testing::zitadel_client(&sealing).as_ref(), &runtime, &body, u64::MAX));
    assert_eq!((outcome, message), (Capture::Skipped(NEEDS_CONNECT), None), "the message goes back unchanged");
    assert_eq!(outcome.describe(), "needs_connect");
    assert!(runtime.sent().is_empty());
}

/// The response for the linked user `u1` in newer versions (ZITADEL #11810): `updateHumanUser`
/// (deprecated) beside `updateUser` (UpdateUserRequest, the oneof `user_action`), as
/// `idpUserToUpdateUser` fills it; protojson leaves the empty `metadata` out.
fn linked_with_update_user(update_user: serde_json::Value) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&response("EwB-first", Some("rt-first"), Some("u1"))).unwrap();
    body["updateHumanUser"] =
        serde_json::json!({"userId": "u1", "profile": {"givenName": "Ada", "familyName": "Lovelace"}});
    body["updateUser"] = update_user;
    body.to_string()
}

fn update_user() -> serde_json::Value {
    serde_json::json!({"userId": "u1", "username": "ada@contoso.example",
        "human": {"profile": {"givenName": "Ada", "familyName": "Lovelace"},
                  "email": {"email": "ada@contoso.example", "isVerified": true}}})
}

#[test]
fn a_linked_user_with_update_user_gets_the_tokens_in_its_metadata_and_through_the_api_when_there_is_one() {
    // Without the API: the update is the only way, and no call is made.
    let runtime = FakeRuntime::new(vec![]);
    let body = linked_with_update_user(update_user());
    let (outcome, message) = block_on(capture(&config(&[]), None, &runtime, &body, u64::MAX));
    assert_eq!(outcome, Capture::AddedToUpdate(3));
    assert_eq!(outcome.describe(), "added_to_update");
    assert!(runtime.sent().is_empty(), "no API call");
    // With it: stored through the API too, since Login V2 applies updateUser only when the
    // provider's automatic update is on; the message carries them all the same.
    let with_api = FakeRuntime::new(vec![Reply::json(200, serde_json::json!({"setDate": "x"}))]);
    let (stored, same) =
        block_on(capture(&config(&[]), testing::zitadel_client(&config(&[])).as_ref(), &with_api, &body, u64::MAX));
    assert_eq!(stored, Capture::Stored(3));
    assert_eq!(with_api.sent()[0].url, "https://z/v2/users/u1/metadata");
    assert_eq!(same, message);
    let answer: serde_json::Value = serde_json::from_str(&message.unwrap()).unwrap();
    let mut expected: serde_json::Value = serde_json::from_str(&body).unwrap();
    expected["updateUser"]["metadata"] = ours();
    assert_eq!(answer, expected, "only updateUser.metadata changed; updateHumanUser and human untouched");
}

#[test]
fn the_update_is_the_top_level_metadata_list_and_the_rest_is_kept_byte_for_byte() {
    let body = r#"{"details":{"sequence":"1"},"idpInformation":{"idpId":"ms-idp","oauth":{"accessToken":"EwB-x"}},"userId":"u1" ,"updateHumanUser":{"userId":"u1"},"updateUser":{"userId":"u1","human":{"profile":{"givenName":"Ada"}}}  ,"z":1.50}"#;
    let Plan::Update { user_id, entries } = plan(&config(&[]), body).unwrap() else { panic!() };
    assert_eq!(user_id, "u1");
    let message = with_update_metadata(body, &entries).unwrap();
    let (before, after) = body.split_at(body.find(r#"}  ,"z""#).unwrap());
    assert!(message.starts_with(before), "{message}");
    assert!(message.ends_with(after), "{message}");
    let inserted = &message[before.len()..message.len() - after.len()];
    assert!(inserted.starts_with(r#","metadata":[{"key":"microsoft_access_token","value":"#), "{inserted}");
    // Never in `human`: UpdateUserRequest.Human has no metadata, and protojson refuses it.
    let answer: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(answer["updateUser"]["human"], serde_json::json!({"profile": {"givenName": "Ada"}}));
}

#[test]
fn the_update_keeps_metadata_already_there_and_replaces_entries_of_its_keys() {
    let mut request = update_user();
    request["metadata"] = serde_json::json!([
        {"key": "organization", "value": "Y29tcGFueQ=="},
        {"key": "microsoft_access_token", "value": "b2xk"},
        {"key": "department", "value": "ZW5n"}
    ]);
    let body = linked_with_update_user(request);
    let Plan::Update { entries, .. } = plan(&config(&[]), &body).unwrap() else { panic!() };
    let answer: serde_json::Value = serde_json::from_str(&with_update_metadata(&body, &entries).unwrap()).unwrap();
    let mut metadata = vec![
        serde_json::json!({"key": "organization", "value": "Y29tcGFueQ=="}),
        serde_json::json!({"key": "department", "value": "ZW5n"}),
    ];
    metadata.extend(ours().as_array().unwrap().iter().cloned());
    assert_eq!(answer["updateUser"]["metadata"], serde_json::Value::from(metadata));
    // Null and an empty list are replaced by ours alone.
    for list in [serde_json::Value::Null, serde_json::json!([])] {
        let mut request = update_user();
        request["metadata"] = list.clone();
        let body = linked_with_update_user(request);
        let answer: serde_json::Value = serde_json::from_str(&with_update_metadata(&body, &entries).unwrap()).unwrap();
        assert_eq!(answer["updateUser"]["metadata"], ours(), "{list}");
    }
}

#[test]
fn with_a_sealing_key_the_update_carries_the_tokens_sealed_for_the_linked_user() {
    use crate::seal::{self, Aad};
    let sealing = config(&[("TOKEN_SEALING_KEY", "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")]);
    let runtime = FakeRuntime::new(vec![]);
    let body = linked_with_update_user(update_user());
    let (outcome, message) = block_on(capture(&sealing, None, &runtime, &body, u64::MAX));
    assert_eq!(outcome, Capture::AddedToUpdate(3));
    assert!(runtime.sent().is_empty());
    let message = message.unwrap();
    assert!(!message.contains(&b64("EwB-first")) && !message.contains(&b64("rt-first")), "no token in clear");
    let answer: serde_json::Value = serde_json::from_str(&message).unwrap();
    let keys = sealing.sealing.as_ref().unwrap();
    let metadata = answer["updateUser"]["metadata"].as_array().unwrap();
    assert_eq!(metadata.len(), 3);
    for (entry, plaintext) in metadata.iter().zip(["EwB-first", "rt-first", "0"]) {
        let key = entry["key"].as_str().unwrap();
        let stored = base64::engine::general_purpose::STANDARD.decode(entry["value"].as_str().unwrap()).unwrap();
        assert!(seal::is_sealed_bytes(&stored), "{key} is sealed");
        let opened = block_on(seal::open_bytes(&runtime, keys, &Aad::metadata("u1", key), &stored)).unwrap();
        assert_eq!(opened, plaintext.as_bytes());
    }
}

#[test]
fn the_update_needs_no_api_settings() {
    let runtime = FakeRuntime::new(vec![]);
    let body = linked_with_update_user(update_user());
    let (outcome, message) = block_on(capture(&config(&[]), None, &runtime, &body, u64::MAX));
    assert_eq!(outcome, Capture::AddedToUpdate(3));
    assert!(message.is_some());
}

#[test]
fn without_update_user_a_linked_user_is_stored_through_the_api_as_before() {
    // Older versions: `updateHumanUser` only (it has no metadata), or a null `updateUser`.
    for update_user in [None, Some(serde_json::Value::Null)] {
        let mut body: serde_json::Value = serde_json::from_str(&response("EwB-opaque", None, Some("u1"))).unwrap();
        body["updateHumanUser"] = serde_json::json!({"userId": "u1", "profile": {"givenName": "Ada"}});
        if let Some(u) = update_user {
            body["updateUser"] = u;
        }
        let runtime = FakeRuntime::new(vec![Reply::json(200, serde_json::json!({"setDate": "x"}))]);
        let (outcome, message) = block_on(capture(
            &config(&[]),
            testing::zitadel_client(&config(&[])).as_ref(),
            &runtime,
            &body.to_string(),
            u64::MAX,
        ));
        assert_eq!((outcome, message), (Capture::Stored(2), None), "the message goes back unchanged");
        assert_eq!(runtime.sent()[0].url, "https://z/v2/users/u1/metadata");
    }
}

#[test]
fn a_malformed_update_is_skipped_and_the_message_kept() {
    for request in [
        serde_json::json!("x"),
        serde_json::json!({"userId": "u1", "metadata": {"key": "a"}}),
        serde_json::json!({"userId": "u1", "metadata": [7]}),
    ] {
        let runtime = FakeRuntime::new(vec![]);
        let body = linked_with_update_user(request.clone());
        let (outcome, message) =
            block_on(capture(&config(&[]), testing::zitadel_client(&config(&[])).as_ref(), &runtime, &body, u64::MAX));
        assert_eq!(
            (outcome, message),
            (Capture::Skipped("the user to update is not the expected JSON"), None),
            "{request}"
        );
        assert!(runtime.sent().is_empty());
    }
}

#[test]
fn an_update_of_another_identity_providers_user_is_left_alone() {
    let runtime = FakeRuntime::new(vec![]);
    let body = linked_with_update_user(update_user());
    let other = config(&[("MS_IDP_ID", "the-microsoft-idp")]);
    let (outcome, message) =
        block_on(capture(&other, testing::zitadel_client(&other).as_ref(), &runtime, &body, u64::MAX));
    assert_eq!((outcome, message), (Capture::Skipped("another identity provider (MS_IDP_ID)"), None));
    assert!(runtime.sent().is_empty());
}

#[test]
fn a_first_sign_in_of_newer_versions_fills_both_creating_requests_and_no_update() {
    // ZITADEL #11810 sends the deprecated `addHumanUser` beside `createUser`; Login V2 reads
    // `createUser` since #12433 and `addHumanUser` before.
    let mut body: serde_json::Value = serde_json::from_str(&first_sign_in(
        "createUser",
        serde_json::json!({"username": "ada", "human": {"profile": {"givenName": "Ada"}, "idpLinks": [{"idpId": "ms-idp"}]}}),
    ))
    .unwrap();
    body["addHumanUser"] = serde_json::json!({"username": "ada", "profile": {"givenName": "Ada"}});
    let (answer, added) = answered(&config(&[]), &body.to_string());
    assert_eq!(added, 6);
    assert_eq!((&answer["createUser"]["metadata"], &answer["addHumanUser"]["metadata"]), (&ours(), &ours()));
    assert_eq!(answer["createUser"]["human"].get("metadata"), None, "the top-level list, not the deprecated one");
    assert_eq!(answer.get("updateUser"), None);
}
