//! ZITADEL's side of the connect flow: the authorization-code grant of the worker's own OIDC
//! client (a public client with PKCE), and the user's links to identity providers, through which
//! the worker checks that the Microsoft account connected is the one linked.

use serde::{Deserialize, Serialize};

use super::zitadel::{zitadel_id, ZitadelClient};
use super::{check_status, TokenAnswer, UpstreamError};
use crate::port::{Clock, Http, HttpRequest, Timer};
use crate::runtime::backoff::Backoff;

/// Why a code was not exchanged for an ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    /// The token endpoint refused the grant (`invalid_grant` for a code that is spent, expired or
    /// whose PKCE verifier does not match; the OAuth error code as given when it is a known one).
    Refused(&'static str),
    /// Timeout, network error, 429, 5xx, or an answer without an ID token.
    Upstream(UpstreamError),
}

/// One link of a user to an identity provider: the provider's id, and the user's id and name
/// there (for Microsoft: the Graph `/me` id and the user principal name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdpLink {
    #[serde(default)]
    pub idp_id: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
}

/// The most links read for one user (one page).
const MAX_LINKS: u32 = 100;

impl ZitadelClient {
    /// Exchanges `code` at `{ZITADEL_DOMAIN}/oauth/v2/token` as the public client `client_id`
    /// (RFC 6749 §4.1.3 with RFC 7636's `code_verifier`) and returns the ID token, unverified.
    pub async fn exchange_code<R: Http + Clock>(
        &self,
        runtime: &R,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, CodeError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("client_id", client_id)
            .append_pair("code_verifier", verifier)
            .finish();
        let request = HttpRequest {
            method: "POST",
            url: format!("{}/oauth/v2/token", self.base_url()),
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".to_string()),
                ("accept", "application/json".to_string()),
            ],
            body: body.into_bytes(),
        };
        let response = runtime.send(request).await.map_err(|e| CodeError::Upstream(e.into()))?;
        let answer = TokenAnswer::parse(&response.body);
        if (400..500).contains(&response.status) && response.status != 429 {
            return Err(CodeError::Refused(oauth_error(answer.and_then(|a| a.error).as_deref())));
        }
        // A 429 from the OIDC endpoint is not the API's: it does not hold back API calls.
        check_status(&response, &Backoff::default(), runtime.now_ms()).map_err(CodeError::Upstream)?;
        answer.and_then(|a| a.id_token).filter(|t| !t.is_empty()).ok_or(CodeError::Upstream(UpstreamError::Malformed))
    }

    /// The user's links to identity providers (`POST /v2/users/{id}/links/_search`, `user.read`).
    pub async fn idp_links<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        user_id: &str,
    ) -> Result<Vec<IdpLink>, UpstreamError> {
        #[derive(Serialize)]
        struct Query {
            limit: u32,
        }
        #[derive(Serialize)]
        struct ListIdpLinks {
            query: Query,
        }
        #[derive(Deserialize)]
        struct Links {
            #[serde(default)]
            result: Vec<IdpLink>,
        }
        let url = format!("{}/v2/users/{}/links/_search", self.base_url(), zitadel_id(user_id)?);
        let body = serde_json::to_vec(&ListIdpLinks { query: Query { limit: MAX_LINKS } })
            .map_err(|_| UpstreamError::Malformed)?;
        let response = self.authorized_post(runtime, &url, body, None).await?;
        let links: Links = serde_json::from_slice(&response.body).map_err(|_| UpstreamError::Malformed)?;
        Ok(links.result)
    }
}

/// An OAuth error code (RFC 6749 §5.2) as a fixed text; an unknown one is `refused`.
pub fn oauth_error(error: Option<&str>) -> &'static str {
    match error {
        Some("invalid_grant") => "invalid_grant",
        Some("invalid_request") => "invalid_request",
        Some("invalid_client") => "invalid_client",
        Some("unauthorized_client") => "unauthorized_client",
        Some("unsupported_grant_type") => "unsupported_grant_type",
        Some("invalid_scope") => "invalid_scope",
        Some("access_denied") => "access_denied",
        Some("interaction_required") => "interaction_required",
        Some("consent_required") => "consent_required",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{live_for_ms, FakeRuntime, Reply};
    use futures::executor::block_on;
    use serde_json::json;

    fn client() -> ZitadelClient {
        use crate::config::{Credentials, ZitadelApiConfig};
        let api = ZitadelApiConfig {
            base_url: "https://z.example".into(),
            credentials: Credentials::AccessToken(crate::secret::Secret::new("pat")),
        };
        ZitadelClient::new(api, live_for_ms())
    }

    fn form(body: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(body).into_owned().collect()
    }

    #[test]
    fn a_code_is_exchanged_as_a_public_client_with_its_verifier() {
        let runtime = FakeRuntime::new(vec![Reply::json(
            200,
            json!({"access_token": "at", "token_type": "Bearer", "expires_in": 43199, "id_token": "h.p.s"}),
        )]);
        let id_token = block_on(client().exchange_code(&runtime, "connect-app", "c0de", "https://w/cb", "v3rifier"));
        assert_eq!(id_token, Ok("h.p.s".to_string()));
        let sent = &runtime.sent()[0];
        assert_eq!(sent.url, "https://z.example/oauth/v2/token");
        assert_eq!(sent.header("authorization"), None, "a public client sends no credentials");
        let pairs = form(&sent.body);
        let expected = [
            ("grant_type", "authorization_code"),
            ("code", "c0de"),
            ("redirect_uri", "https://w/cb"),
            ("client_id", "connect-app"),
            ("code_verifier", "v3rifier"),
        ];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn a_refused_code_says_why_and_a_failure_upstream_is_not_a_refusal() {
        let refused =
            FakeRuntime::new(vec![Reply::json(400, json!({"error": "invalid_grant", "error_description": "x"}))]);
        let result = block_on(client().exchange_code(&refused, "a", "c", "r", "v"));
        assert_eq!(result, Err(CodeError::Refused("invalid_grant")));
        let odd = FakeRuntime::new(vec![Reply::json(401, json!({"error": "something <new>"}))]);
        assert_eq!(block_on(client().exchange_code(&odd, "a", "c", "r", "v")), Err(CodeError::Refused("refused")));
        let down = FakeRuntime::new(vec![Reply::json(503, json!({}))]);
        let result = block_on(client().exchange_code(&down, "a", "c", "r", "v"));
        assert_eq!(result, Err(CodeError::Upstream(UpstreamError::Status(503))));
        let no_id_token = FakeRuntime::new(vec![Reply::json(200, json!({"access_token": "at"}))]);
        let result = block_on(client().exchange_code(&no_id_token, "a", "c", "r", "v"));
        assert_eq!(result, Err(CodeError::Upstream(UpstreamError::Malformed)));
    }

    #[test]
    fn links_are_read_with_the_api_credentials() {
        let runtime = FakeRuntime::new(vec![Reply::json(
            200,
            json!({"details": {"totalResult": "2"}, "result": [
                {"idpId": "ms-idp", "userId": "0f1e", "userName": "ada@contoso.example"},
                {"idpId": "google"}
            ]}),
        )]);
        let links = block_on(client().idp_links(&runtime, "u-1")).unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[0],
            IdpLink { idp_id: "ms-idp".into(), user_id: "0f1e".into(), user_name: "ada@contoso.example".into() }
        );
        let sent = &runtime.sent()[0];
        assert_eq!(sent.url, "https://z.example/v2/users/u-1/links/_search");
        assert!(sent.header("authorization").is_some_and(|a| a.starts_with("Bearer ")));
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap(), json!({"query": {"limit": 100}}));
        let none = FakeRuntime::new(vec![Reply::json(200, json!({"details": {}}))]);
        assert_eq!(block_on(client().idp_links(&none, "u1")), Ok(vec![]));
        let forbidden = FakeRuntime::new(vec![Reply::json(403, json!({"code": 7}))]);
        assert_eq!(block_on(client().idp_links(&forbidden, "u1")), Err(UpstreamError::Unauthorized(403)));
    }

    #[test]
    fn microsoft_exchanges_a_code_with_the_app_secret_and_gives_the_id_token() {
        use crate::config::{MsRefreshConfig, MsRefreshPolicy};
        use crate::secret::Secret;
        use crate::upstream::microsoft::MicrosoftClient;
        let ms = MicrosoftClient::new(MsRefreshConfig {
            client_id: "entra-app".into(),
            client_secret: Secret::new("entra secret"),
            token_url: "https://login.example/common/oauth2/v2.0/token".into(),
            scopes: "offline_access User.Read".into(),
            skew_seconds: 300,
            on_error: MsRefreshPolicy::Omit,
        });
        let runtime = FakeRuntime::new(vec![Reply::json(
            200,
            json!({"access_token": "at", "refresh_token": "rt", "expires_in": 3600, "id_token": "h.p.s"}),
        )]);
        let (tokens, id_token) =
            block_on(ms.exchange_code(&runtime, "c0de", "https://w/cb", "v3rifier", 1_000)).unwrap();
        assert_eq!(
            (tokens.access_token.as_str(), tokens.refresh_token.as_deref(), tokens.expires_at),
            ("at", Some("rt"), 4_600)
        );
        assert_eq!(id_token.as_deref(), Some("h.p.s"));
        let pairs = form(&runtime.sent()[0].body);
        let expected = [
            ("grant_type", "authorization_code"),
            ("code", "c0de"),
            ("redirect_uri", "https://w/cb"),
            ("code_verifier", "v3rifier"),
            ("client_id", "entra-app"),
            ("client_secret", "entra secret"),
        ];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        let denied = FakeRuntime::new(vec![Reply::json(400, json!({"error": "invalid_grant"}))]);
        let result = block_on(ms.exchange_code(&denied, "c", "r", "v", 0));
        assert_eq!(result.map(|_| ()), Err(crate::upstream::microsoft::RefreshError::SignInAgain("invalid_grant")));
    }
}
