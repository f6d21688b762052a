//! Login V2: capturing the Microsoft tokens when a user signs in through an identity provider.
//!
//! V1 actions do not run with Login V2. There, the tokens arrive in the answer to
//! `/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent`; bound as a response execution,
//! the worker receives that answer (`response`), stores `idpInformation.oauth.accessToken` (and
//! `refreshToken`, which newer ZITADEL versions include) as the user's metadata through the v2
//! user metadata API, and answers the response unchanged, as a `restCall` target of a response
//! execution must. A failure to store is logged and never fails the sign-in.

use std::borrow::Cow;

use serde::Deserialize;

use crate::claims::Isolate;
use crate::config::Config;
use crate::microsoft::jwt_expiry;
use crate::platform::{before, Platform};
use crate::response::Metadata;
use crate::zitadel::{self, UpstreamError};

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
    /// This many metadata entries were written.
    Stored(usize),
    /// Nothing to store, for this reason.
    Skipped(&'static str),
    /// Storing failed.
    Failed(UpstreamError),
}

impl Capture {
    pub fn describe(self) -> &'static str {
        match self {
            Capture::Stored(_) => "stored",
            Capture::Skipped(reason) => reason,
            Capture::Failed(e) => e.code(),
        }
    }
}

/// The metadata to store for one sign-in: the access token, the refresh token when there is one,
/// and the expiry (a JWT's `exp`, else `0`, which makes the worker refresh, and so learn the
/// expiry, on the next token, instead of trusting an expiry left over from an earlier sign-in).
pub fn entries(config: &Config, response: &str) -> Result<(String, Vec<Metadata>), &'static str> {
    let Some(ms) = &config.ms_token else { return Err("the Microsoft token claim is off") };
    let parsed: IntentResponse = serde_json::from_str(response).map_err(|_| "the response is not the expected JSON")?;
    let information = parsed.idp_information.unwrap_or_default();
    if let Some(wanted) = &ms.idp_id {
        if information.idp_id.as_deref() != Some(wanted.as_str()) {
            return Err("another identity provider (MS_IDP_ID)");
        }
    }
    let oauth = information.oauth.unwrap_or_default();
    let access = oauth.access_token.filter(|t| !t.is_empty()).ok_or("no access token in the response")?;
    let user_id = parsed.user_id.filter(|u| !u.is_empty()).ok_or("no linked user yet")?;
    let mut entries = vec![Metadata::new(&ms.metadata_key, access.as_bytes())];
    if let Some(refresh) = oauth.refresh_token.filter(|t| !t.is_empty()) {
        entries.push(Metadata::new(&ms.refresh_token_metadata_key, refresh.as_bytes()));
    }
    let expires_at = jwt_expiry(&access).unwrap_or(0);
    entries.push(Metadata::new(&ms.expires_at_metadata_key, expires_at.to_string().as_bytes()));
    Ok((user_id.into_owned(), entries))
}

/// Stores the tokens of `response` (the raw JSON of a RetrieveIdentityProviderIntent answer).
pub async fn capture<P: Platform>(
    config: &Config,
    isolate: &Isolate,
    platform: &P,
    response: &str,
    deadline_ms: u64,
) -> Capture {
    let (user_id, entries) = match entries(config, response) {
        Ok(found) => found,
        Err(reason) => return Capture::Skipped(reason),
    };
    let Some(api) = &config.zitadel else { return Capture::Skipped("no ZITADEL API settings (ZITADEL_DOMAIN)") };
    let store = zitadel::set_user_metadata(platform, api, &isolate.session, &user_id, &entries);
    match before(platform, deadline_ms, store).await.unwrap_or(Err(UpstreamError::Timeout)) {
        Ok(()) => Capture::Stored(entries.len()),
        Err(e) => Capture::Failed(e),
    }
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

    #[test]
    fn tokens_of_a_linked_user_are_stored_as_metadata() {
        let platform = FakePlatform::new(vec![Reply::json(200, serde_json::json!({"setDate": "x"}))]);
        let outcome = block_on(capture(
            &config(&[]),
            &Isolate::default(),
            &platform,
            &response("EwB-opaque", Some("rt-1"), Some("u1")),
            u64::MAX,
        ));
        assert_eq!(outcome, Capture::Stored(3));
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
        assert_eq!(entries(&config(&[]), &response("t", None, None)).unwrap_err(), "no linked user yet");
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
        let outcome =
            block_on(capture(&config(&[]), &Isolate::default(), &platform, &response("t", None, Some("u1")), u64::MAX));
        assert_eq!(outcome, Capture::Failed(UpstreamError::Unauthorized(403)));
        let platform = FakePlatform::new(vec![Reply::Hang]);
        let outcome =
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
