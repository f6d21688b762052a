//! ZITADEL's side of the token exchange and of `/connections`: introspection of an opaque subject
//! token (RFC 7662, as an API application), and a user's Microsoft token metadata, read and
//! removed with the worker's API credentials.

use serde::{Deserialize, Serialize};

use super::zitadel::{basic_credentials, zitadel_id, Api, MetadataSearch, ZitadelClient};
use super::{check_status, UpstreamError};
use crate::config::ExchangeClient;
use crate::port::{Clock, Http, HttpRequest, Timer};
use crate::runtime::backoff::Backoff;

/// What introspection says of a token, as far as the exchange reads it (RFC 7662 §2.2; ZITADEL
/// adds `act` for a token of its token exchange).
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Introspection {
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub exp: Option<f64>,
    /// Present when the token was issued to someone acting for the user (impersonation).
    #[serde(default)]
    pub act: Option<serde::de::IgnoredAny>,
}

/// The most pages of a user's metadata read (of 100 entries each).
const MAX_USER_METADATA_PAGES: u32 = 10;

impl ZitadelClient {
    /// Asks ZITADEL's introspection endpoint (`{ZITADEL_DOMAIN}/oauth/v2/introspect`) about
    /// `token`, authenticated as the API application `client` with HTTP Basic (RFC 6749 §2.3.1:
    /// id and secret form-encoded first).
    pub async fn introspect<R: Http + Clock>(
        &self,
        runtime: &R,
        client: &ExchangeClient,
        token: &str,
    ) -> Result<Introspection, UpstreamError> {
        let basic = basic_credentials(&client.id, client.secret.expose());
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let request = HttpRequest {
            method: "POST",
            url: format!("{}/oauth/v2/introspect", self.base_url()),
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".to_string()),
                ("accept", "application/json".to_string()),
                ("authorization", format!("Basic {basic}")),
            ],
            body: body.into_bytes(),
        };
        let response = runtime.send(request).await?;
        if response.status == 400 {
            return Err(UpstreamError::Unauthorized(400)); // invalid_client, RFC 6749 §5.2
        }
        // A 429 from the OIDC endpoint is not the API's: it does not hold back API calls.
        check_status(&response, &Backoff::default(), runtime.now_ms())?;
        serde_json::from_slice(&response.body).map_err(|_| UpstreamError::Malformed)
    }

    /// The user's metadata entries under `keys`, values as ZITADEL gives them (standard base64):
    /// `POST /v2/users/{id}/metadata/search`, or on an instance without it management v1's
    /// `POST /management/v1/users/{id}/metadata/_search` (both `user.read`), filtered by the keys'
    /// common prefix.
    pub async fn user_metadata<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        user_id: &str,
        keys: &[&str],
    ) -> Result<Vec<(String, String)>, UpstreamError> {
        let user_id = zitadel_id(user_id)?;
        self.v2_or_v1(
            || self.search_user_metadata(runtime, user_id, keys, Api::V2),
            || self.search_user_metadata(runtime, user_id, keys, Api::ManagementV1),
        )
        .await
    }

    async fn search_user_metadata<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        user_id: &str,
        keys: &[&str],
        which: Api,
    ) -> Result<Vec<(String, String)>, UpstreamError> {
        let url = match which {
            Api::V2 => format!("{}/v2/users/{user_id}/metadata/search", self.base_url()),
            Api::ManagementV1 => format!("{}/management/v1/users/{user_id}/metadata/_search", self.base_url()),
        };
        let prefix = common_prefix(keys);
        let search = MetadataSearch { url: &url, org_header: None, which, prefix, max_pages: MAX_USER_METADATA_PAGES };
        let mut found = Vec::new();
        self.search_metadata(runtime, search, |entry| {
            if keys.contains(&entry.key.as_ref()) {
                found.push((entry.key.into_owned(), entry.value.into_owned()));
            }
            Ok(())
        })
        .await?;
        Ok(found)
    }

    /// Removes the user's metadata entries `keys` (`DELETE /v2/users/{id}/metadata`, or on an
    /// instance without it management v1's `DELETE /management/v1/users/{id}/metadata/_bulk`,
    /// both `user.write`).
    pub async fn delete_user_metadata<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        user_id: &str,
        keys: &[&str],
    ) -> Result<(), UpstreamError> {
        #[derive(Serialize)]
        struct DeleteUserMetadata<'a> {
            keys: &'a [&'a str],
        }
        let user_id = zitadel_id(user_id)?;
        let body = serde_json::to_vec(&DeleteUserMetadata { keys }).map_err(|_| UpstreamError::Malformed)?;
        let base = self.base_url();
        let (v2, v1) = (
            format!("{base}/v2/users/{user_id}/metadata"),
            format!("{base}/management/v1/users/{user_id}/metadata/_bulk"),
        );
        self.v2_or_v1(
            || self.authorized(runtime, "DELETE", &v2, body.clone(), None),
            || self.authorized(runtime, "DELETE", &v1, body.clone(), None),
        )
        .await
        .map(|_| ())
    }
}

/// The longest prefix every key starts with (on a character boundary).
fn common_prefix<'k>(keys: &[&'k str]) -> &'k str {
    let Some(first) = keys.first() else { return "" };
    let mut end = first.len();
    for key in &keys[1..] {
        end = first
            .char_indices()
            .zip(key.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, c), _)| i + c.len_utf8())
            .min(end);
    }
    &first[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Credentials, ZitadelApiConfig};
    use crate::secret::Secret;
    use crate::testing::{live_for_ms, FakeRuntime, Reply};
    use base64::Engine;
    use futures::executor::block_on;
    use serde_json::json;

    fn client() -> ZitadelClient {
        let api = ZitadelApiConfig {
            base_url: "https://z.example".into(),
            credentials: Credentials::AccessToken(Secret::new("pat")),
        };
        ZitadelClient::new(api, live_for_ms())
    }

    #[test]
    fn the_keys_common_prefix_filters_the_search() {
        assert_eq!(common_prefix(&["microsoft_access_token", "microsoft_refresh_token"]), "microsoft_");
        assert_eq!(common_prefix(&["abc", "abd", "ab"]), "ab");
        assert_eq!(common_prefix(&["x", "y"]), "");
        assert_eq!(common_prefix(&["één", "éé"]), "éé");
        assert_eq!(common_prefix(&["only"]), "only");
    }

    #[test]
    fn introspection_is_asked_as_the_api_application_with_form_encoded_basic() {
        let runtime = FakeRuntime::new(vec![Reply::json(
            200,
            json!({"active": true, "client_id": "app@p", "sub": "u1", "exp": 1_900_000_000, "act": {"sub": "admin"}}),
        )]);
        let api_app = ExchangeClient { id: "api@project".into(), secret: Secret::new("s e:cret") };
        let answer = block_on(client().introspect(&runtime, &api_app, "opaque-token")).unwrap();
        assert!(answer.active && answer.act.is_some());
        assert_eq!((answer.client_id.as_deref(), answer.sub.as_deref()), (Some("app@p"), Some("u1")));
        let sent = &runtime.sent()[0];
        assert_eq!(sent.url, "https://z.example/oauth/v2/introspect");
        let basic = sent.header("authorization").unwrap().strip_prefix("Basic ").unwrap().to_string();
        let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(basic).unwrap()).unwrap();
        assert_eq!(decoded, "api%40project:s+e%3Acret");
        let form: Vec<(String, String)> = form_urlencoded::parse(&sent.body).into_owned().collect();
        assert_eq!(form[0], ("token".to_string(), "opaque-token".to_string()));
        let inactive = FakeRuntime::new(vec![Reply::json(200, json!({"active": false}))]);
        let answer = block_on(client().introspect(&inactive, &api_app, "t")).unwrap();
        assert!(!answer.active && answer.act.is_none());
        let refused = FakeRuntime::new(vec![Reply::json(401, json!({"error": "invalid_client"}))]);
        assert_eq!(block_on(client().introspect(&refused, &api_app, "t")), Err(UpstreamError::Unauthorized(401)));
        let down = FakeRuntime::new(vec![Reply::json(503, json!({}))]);
        assert_eq!(block_on(client().introspect(&down, &api_app, "t")), Err(UpstreamError::Status(503)));
    }

    #[test]
    fn a_users_token_metadata_is_searched_by_prefix_and_paged() {
        let runtime = FakeRuntime::new(vec![
            Reply::json(
                200,
                json!({"pagination": {"totalResult": "101"}, "metadata":
                    (0..100).map(|i| json!({"key": format!("ms_other{i}"), "value": "eA=="})).collect::<Vec<_>>()}),
            ),
            Reply::json(
                200,
                json!({"pagination": {"totalResult": "101"}, "metadata": [{"key": "ms_at", "value": "YQ=="}]}),
            ),
        ]);
        let found = block_on(client().user_metadata(&runtime, "u-1", &["ms_at", "ms_rt"])).unwrap();
        assert_eq!(found, [("ms_at".to_string(), "YQ==".to_string())]);
        let sent = runtime.sent();
        assert_eq!(sent[0].url, "https://z.example/v2/users/u-1/metadata/search");
        let body: serde_json::Value = serde_json::from_slice(&sent[1].body).unwrap();
        assert_eq!(
            body,
            json!({"pagination": {"offset": "100", "limit": 100, "asc": true},
                   "filters": [{"keyFilter": {"key": "ms_", "method": "TEXT_FILTER_METHOD_STARTS_WITH"}}]})
        );
        let forbidden = FakeRuntime::new(vec![Reply::json(403, json!({"code": 7}))]);
        assert_eq!(block_on(client().user_metadata(&forbidden, "u1", &["a"])), Err(UpstreamError::Unauthorized(403)));
    }

    #[test]
    fn without_the_v2_user_metadata_api_management_v1_reads_and_removes() {
        let missing = || Reply::json(404, json!({"code": 5, "message": "Not Found"}));
        let runtime = FakeRuntime::new(vec![
            missing(),
            Reply::json(200, json!({"details": {"totalResult": "1"}, "result": [{"key": "ms_at", "value": "YQ=="}]})),
            Reply::json(200, json!({"details": {}})),
        ]);
        let client = client();
        let found = block_on(client.user_metadata(&runtime, "u1", &["ms_at", "ms_rt"])).unwrap();
        assert_eq!(found, [("ms_at".to_string(), "YQ==".to_string())]);
        block_on(client.delete_user_metadata(&runtime, "u1", &["ms_at"])).unwrap();
        let sent = runtime.sent();
        assert_eq!(sent[1].url, "https://z.example/management/v1/users/u1/metadata/_search");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&sent[1].body).unwrap(),
            json!({"query": {"offset": "0", "limit": 100, "asc": true},
                   "queries": [{"keyQuery": {"key": "ms_", "method": "TEXT_QUERY_METHOD_STARTS_WITH"}}]})
        );
        assert_eq!(
            (sent[2].method, sent[2].url.as_str()),
            ("DELETE", "https://z.example/management/v1/users/u1/metadata/_bulk")
        );
        assert!(client.uses_management_v1());
    }

    #[test]
    fn token_metadata_is_removed_by_key() {
        let runtime = FakeRuntime::new(vec![Reply::json(200, json!({"details": {}}))]);
        block_on(client().delete_user_metadata(&runtime, "u1", &["ms_at", "ms_rt"])).unwrap();
        let sent = &runtime.sent()[0];
        assert_eq!((sent.method, sent.url.as_str()), ("DELETE", "https://z.example/v2/users/u1/metadata"));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap(),
            json!({"keys": ["ms_at", "ms_rt"]})
        );
    }
}
