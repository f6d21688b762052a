//! Login V2: capturing the Microsoft tokens when a user signs in through an identity provider.
//!
//! V1 actions do not run with Login V2. There, the tokens arrive in the answer to
//! `/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent`; bound as a response execution,
//! the worker receives that answer (`response`) and answers it back, as a `restCall` target of a
//! response execution must (ZITADEL reads the answer as the whole message). The tokens
//! (`idpInformation.oauth.accessToken`, and `refreshToken` where a ZITADEL version includes it)
//! are kept as the user's metadata:
//! - a user linked to the external identity (`userId` set) gets them through the v2 user metadata
//!   API, and the message goes back unchanged; a failure to store is logged and never fails the
//!   sign-in;
//! - a user signing in for the first time has no id yet. The message then carries the request
//!   Login V2 will create the user with (`addHumanUser`, or `createUser` in newer versions); the
//!   entries are added to that request's `metadata`, so the user is created with them, and
//!   nothing else of the message changes. No API call is made.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::claims::microsoft::jwt_expiry;
use crate::claims::Isolate;
use crate::config::{Config, MsTokenConfig};
use crate::contract::response::Metadata;
use crate::runtime::{before, Platform};
use crate::upstream::zitadel::{self, UpstreamError};

/// The API method whose response carries the identity provider's tokens.
pub const METHOD: &str = "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent";

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct IntentResponse<'a> {
    /// The ZITADEL user linked to the external identity; absent for a user yet to be created.
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    idp_information: Option<IdpInformation<'a>>,
    /// The AddHumanUserRequest Login V2 creates a new user with (older versions).
    #[serde(borrow)]
    add_human_user: Option<&'a RawValue>,
    /// The CreateUserRequest Login V2 creates a new user with (newer versions).
    #[serde(borrow)]
    create_user: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct IdpInformation<'a> {
    #[serde(borrow)]
    idp_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    oauth: Option<OAuthInformation<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct OAuthInformation<'a> {
    #[serde(borrow)]
    access_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refresh_token: Option<Cow<'a, str>>,
}

/// What happened to the tokens of one sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// This many metadata entries were written for a linked user.
    Stored(usize),
    /// This many metadata entries were added to the request that creates the user.
    Added(usize),
    /// Nothing to store, for this reason.
    Skipped(&'static str),
    /// Storing failed.
    Failed(UpstreamError),
}

impl Capture {
    pub fn describe(self) -> &'static str {
        match self {
            Capture::Stored(_) => "stored",
            Capture::Added(_) => "added",
            Capture::Skipped(reason) => reason,
            Capture::Failed(e) => e.code(),
        }
    }
}

/// What to do with the tokens of one sign-in.
#[cfg_attr(test, derive(Debug))]
#[derive(PartialEq)]
pub enum Plan {
    /// Store these entries on the linked user through the API.
    Store { user_id: String, entries: Vec<Metadata> },
    /// Answer this message instead: the response with `added` entries in its user-creating
    /// request(s).
    Answer { message: String, added: usize },
}

/// The metadata to store for one sign-in: the access token, the refresh token when there is one,
/// and the expiry (a JWT's `exp`, else `0`, which makes the worker refresh, and so learn the
/// expiry, on the next token, instead of trusting an expiry left over from an earlier sign-in).
fn token_entries(ms: &MsTokenConfig, oauth: &OAuthInformation<'_>, access: &str) -> Vec<Metadata> {
    let mut entries = vec![Metadata::new(&ms.metadata_key, access.as_bytes())];
    if let Some(refresh) = oauth.refresh_token.as_deref().filter(|t| !t.is_empty()) {
        entries.push(Metadata::new(&ms.refresh_token_metadata_key, refresh.as_bytes()));
    }
    let expires_at = jwt_expiry(access).unwrap_or(0);
    entries.push(Metadata::new(&ms.expires_at_metadata_key, expires_at.to_string().as_bytes()));
    entries
}

/// Decides what becomes of the tokens in `response` (the raw JSON of a
/// RetrieveIdentityProviderIntent answer), or why nothing does.
pub fn plan(config: &Config, response: &str) -> Result<Plan, &'static str> {
    let Some(ms) = &config.ms_token else { return Err("the Microsoft token claim is off") };
    let parsed: IntentResponse = serde_json::from_str(response).map_err(|_| "the response is not the expected JSON")?;
    let information = parsed.idp_information.unwrap_or_default();
    if let Some(wanted) = &ms.idp_id {
        if information.idp_id.as_deref() != Some(wanted.as_str()) {
            return Err("another identity provider (MS_IDP_ID)");
        }
    }
    let oauth = information.oauth.unwrap_or_default();
    let access = oauth.access_token.as_deref().filter(|t| !t.is_empty()).ok_or("no access token in the response")?;
    let entries = token_entries(ms, &oauth, access);
    if let Some(user_id) = parsed.user_id.filter(|u| !u.is_empty()) {
        return Ok(Plan::Store { user_id: user_id.into_owned(), entries });
    }
    // A first sign-in: into every user-creating request the message carries (Login V2 uses
    // `createUser` where there is one, `addHumanUser` otherwise).
    let mut edits = Vec::new();
    if let Some(request) = parsed.add_human_user.filter(|r| r.get() != "null") {
        edits.push(metadata_edit(response, request, &entries, false)?);
    }
    if let Some(request) = parsed.create_user.filter(|r| r.get() != "null") {
        edits.push(metadata_edit(response, request, &entries, true)?);
    }
    if edits.is_empty() {
        return Err("no linked user, and no user to create in the response");
    }
    edits.sort_by_key(|edit| edit.at);
    let mut message = String::with_capacity(response.len() + edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut copied = 0;
    for edit in &edits {
        message.push_str(&response[copied..edit.at]);
        message.push_str(&edit.text);
        copied = edit.at + edit.replaces;
    }
    message.push_str(&response[copied..]);
    Ok(Plan::Answer { message, added: entries.len() * edits.len() })
}

/// Replace `replaces` bytes of the message at byte `at` with `text`.
struct Edit {
    at: usize,
    replaces: usize,
    text: String,
}

/// Where `part` (borrowed from `message`) starts in it.
fn offset(message: &str, part: &str) -> usize {
    part.as_ptr() as usize - message.as_ptr() as usize
}

/// The edit that puts `entries` into the `metadata` list of a user-creating `request` (an object
/// within `message`): its own entries of other keys first, then ours (replacing any of the same
/// key). A CreateUserRequest may hold its metadata at the top or, deprecated, in `human` (ZITADEL
/// refuses both at once), so there the list that has entries is the one extended.
fn metadata_edit(
    message: &str,
    request: &RawValue,
    entries: &[Metadata],
    create_user: bool,
) -> Result<Edit, &'static str> {
    const NOT_A_REQUEST: &str = "the user to create is not the expected JSON";
    type Members<'a> = HashMap<Cow<'a, str>, &'a RawValue>;
    let members: Members = serde_json::from_str(request.get()).map_err(|_| NOT_A_REQUEST)?;
    let has_entries = |list: Option<&&RawValue>| list.is_some_and(|l| !matches!(l.get(), "null" | "[]"));
    let mut target = (request, members.get("metadata").copied());
    if create_user && !has_entries(members.get("metadata")) {
        if let Some(human) = members.get("human").filter(|h| h.get() != "null") {
            let human_members: Members = serde_json::from_str(human.get()).map_err(|_| NOT_A_REQUEST)?;
            if has_entries(human_members.get("metadata")) {
                target = (*human, human_members.get("metadata").copied());
            }
        }
    }
    let ours = entries.iter().map(|e| serde_json::to_string(e).map_err(|_| NOT_A_REQUEST));
    match target {
        (_, Some(list)) if list.get() != "null" => {
            #[derive(Deserialize)]
            struct Entry<'a> {
                #[serde(borrow, default)]
                key: Option<Cow<'a, str>>,
            }
            let theirs: Vec<&RawValue> = serde_json::from_str(list.get()).map_err(|_| NOT_A_REQUEST)?;
            let mut items = Vec::new();
            for entry in theirs {
                let key = serde_json::from_str::<Entry>(entry.get()).map_err(|_| NOT_A_REQUEST)?.key;
                if !entries.iter().any(|e| Some(e.key.as_str()) == key.as_deref()) {
                    items.push(entry.get().to_string());
                }
            }
            items.extend(ours.collect::<Result<Vec<_>, _>>()?);
            Ok(Edit {
                at: offset(message, list.get()),
                replaces: list.get().len(),
                text: format!("[{}]", items.join(",")),
            })
        }
        (_, Some(null)) => {
            let text = format!("[{}]", ours.collect::<Result<Vec<_>, _>>()?.join(","));
            Ok(Edit { at: offset(message, null.get()), replaces: null.get().len(), text })
        }
        (object, None) => {
            let list = ours.collect::<Result<Vec<_>, _>>()?.join(",");
            let empty = serde_json::from_str::<Members>(object.get()).map_or(true, |m| m.is_empty());
            let text = format!("{}\"metadata\":[{list}]", if empty { "" } else { "," });
            // Just before the object's closing brace.
            Ok(Edit { at: offset(message, object.get()) + object.get().len() - 1, replaces: 0, text })
        }
    }
}

/// Captures the tokens of `response` (the raw JSON of a RetrieveIdentityProviderIntent answer).
/// Returns what happened and, for a first sign-in, the message to answer instead of `response`.
pub async fn capture<P: Platform>(
    config: &Config,
    isolate: &Isolate,
    platform: &P,
    response: &str,
    deadline_ms: u64,
) -> (Capture, Option<String>) {
    let (user_id, entries) = match plan(config, response) {
        Ok(Plan::Store { user_id, entries }) => (user_id, entries),
        Ok(Plan::Answer { message, added }) => return (Capture::Added(added), Some(message)),
        Err(reason) => return (Capture::Skipped(reason), None),
    };
    let Some(api) = &config.zitadel else {
        return (Capture::Skipped("no ZITADEL API settings (ZITADEL_DOMAIN)"), None);
    };
    let store = zitadel::set_user_metadata(platform, api, &isolate.session, &user_id, &entries);
    let capture = match before(platform, deadline_ms, store).await.unwrap_or(Err(UpstreamError::Timeout)) {
        Ok(()) => Capture::Stored(entries.len()),
        Err(e) => Capture::Failed(e),
    };
    (capture, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, Reply};
    use base64::Engine;
    use futures::executor::block_on;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut settings = vec![
            ("ZITADEL_SIGNING_KEY", "k"),
            ("ZITADEL_DOMAIN", "https://z"),
            ("ZITADEL_ACCESS_TOKEN", "pat"),
            ("PERMISSIONS_CLAIM", ""),
        ];
        settings.extend_from_slice(extra);
        Config::from_lookup(|n| settings.iter().rev().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())).unwrap()
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

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// The entries to store for a linked user, or why there are none.
    fn entries(config: &Config, response: &str) -> Result<(String, Vec<Metadata>), &'static str> {
        match plan(config, response)? {
            Plan::Store { user_id, entries } => Ok((user_id, entries)),
            Plan::Answer { .. } => panic!("expected a linked user"),
        }
    }

    /// The message answered for a first sign-in.
    fn answered(config: &Config, response: &str) -> (serde_json::Value, usize) {
        match plan(config, response).unwrap() {
            Plan::Answer { message, added } => (serde_json::from_str(&message).unwrap(), added),
            Plan::Store { .. } => panic!("expected a message"),
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
        for request in
            [serde_json::json!({}), serde_json::json!({"metadata": null}), serde_json::json!({"metadata": []})]
        {
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
        assert_eq!(
            (added, &answer["createUser"]["metadata"], &answer["addHumanUser"]["metadata"]),
            (6, &ours(), &ours())
        );
    }

    #[test]
    fn a_first_sign_in_respects_the_identity_provider_setting() {
        let body = first_sign_in("addHumanUser", serde_json::json!({"username": "ada"}));
        assert_eq!(
            plan(&config(&[("MS_IDP_ID", "other")]), &body).unwrap_err(),
            "another identity provider (MS_IDP_ID)"
        );
        assert!(matches!(plan(&config(&[("MS_IDP_ID", "ms-idp")]), &body), Ok(Plan::Answer { .. })));
    }

    #[test]
    fn a_malformed_creating_request_is_skipped() {
        for request in [
            serde_json::json!("x"),
            serde_json::json!({"metadata": {"key": "a"}}),
            serde_json::json!({"metadata": [7]}),
        ] {
            let body = first_sign_in("addHumanUser", request.clone());
            assert_eq!(
                plan(&config(&[]), &body).unwrap_err(),
                "the user to create is not the expected JSON",
                "{request}"
            );
        }
    }

    #[test]
    fn a_first_sign_in_is_answered_without_an_api_call() {
        let platform = FakePlatform::new(vec![]);
        let body = first_sign_in("createUser", serde_json::json!({"username": "ada"}));
        let (outcome, message) = block_on(capture(&config(&[]), &Isolate::default(), &platform, &body, u64::MAX));
        assert_eq!(outcome, Capture::Added(3));
        assert_eq!(outcome.describe(), "added");
        assert!(message.unwrap().contains("microsoft_refresh_token"));
        assert!(platform.sent().is_empty());
    }

    #[test]
    fn tokens_of_a_linked_user_are_stored_as_metadata() {
        let platform = FakePlatform::new(vec![Reply::json(200, serde_json::json!({"setDate": "x"}))]);
        let (outcome, message) = block_on(capture(
            &config(&[]),
            &Isolate::default(),
            &platform,
            &response("EwB-opaque", Some("rt-1"), Some("u1")),
            u64::MAX,
        ));
        assert_eq!((outcome, message), (Capture::Stored(3), None), "a linked user's message goes back unchanged");
        let sent = platform.sent();
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
        assert_eq!(
            keys,
            [("microsoft_access_token", b64(&jwt)), ("microsoft_access_token_expires_at", b64("1800000000"))]
        );
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
        assert_eq!(
            entries(&config(&[]), &response("", None, Some("u1"))).unwrap_err(),
            "no access token in the response"
        );
        let ldap = serde_json::json!({"userId": "u1", "idpInformation": {"ldap": {"attributes": {}}}}).to_string();
        assert_eq!(entries(&config(&[]), &ldap).unwrap_err(), "no access token in the response");
        let other = config(&[("MS_IDP_ID", "the-microsoft-idp")]);
        assert_eq!(
            entries(&other, &response("t", None, Some("u1"))).unwrap_err(),
            "another identity provider (MS_IDP_ID)"
        );
        let same = config(&[("MS_IDP_ID", "ms-idp")]);
        assert!(entries(&same, &response("t", None, Some("u1"))).is_ok());
        assert_eq!(
            entries(&config(&[("MS_TOKEN_CLAIM", "")]), &response("t", None, Some("u1"))).unwrap_err(),
            "the Microsoft token claim is off"
        );
    }

    #[test]
    fn a_failed_store_is_reported_not_raised() {
        let platform = FakePlatform::new(vec![Reply::json(403, serde_json::json!({"code": 7}))]);
        let (outcome, _) =
            block_on(capture(&config(&[]), &Isolate::default(), &platform, &response("t", None, Some("u1")), u64::MAX));
        assert_eq!(outcome, Capture::Failed(UpstreamError::Unauthorized(403)));
        let platform = FakePlatform::new(vec![Reply::Hang]);
        let (outcome, _) =
            block_on(capture(&config(&[]), &Isolate::default(), &platform, &response("t", None, Some("u1")), 0));
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
}
