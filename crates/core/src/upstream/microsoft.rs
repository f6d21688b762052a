//! Microsoft's token endpoint (the v2.0 identity runtime): the `refresh_token` grant.

use crate::config::MsRefreshConfig;
use crate::port::{Clock, Http, HttpRequest};
use crate::runtime::backoff::Backoff;
use crate::upstream::{check_status, TokenAnswer, UpstreamError};

/// The longest `expires_in` believed from Microsoft (Entra ID tokens live 60 to 90 minutes).
const MAX_TOKEN_LIFETIME_SECONDS: i64 = 86_400;

/// What a refresh gives.
#[cfg_attr(test, derive(Debug))]
#[derive(Clone, PartialEq)]
pub struct Refreshed {
    pub access_token: String,
    /// Microsoft usually rotates the refresh token; absent when it did not.
    pub refresh_token: Option<String>,
    pub expires_at: i64,
    /// The scopes Microsoft says the access token carries, when it says.
    pub scope: Option<String>,
}

/// Why a refresh failed. Never carries a token or Microsoft's error description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshError {
    /// The refresh token is no longer good (`invalid_grant`, `interaction_required`): the user
    /// must sign in again.
    SignInAgain(&'static str),
    /// Microsoft refused our client or request (`invalid_client`, `unauthorized_client`, ...):
    /// a configuration problem.
    Refused(&'static str),
    /// Timeout, network error, 429, 5xx or a malformed answer: may work on the next try.
    Transient(UpstreamError),
}

impl RefreshError {
    pub fn code(self) -> &'static str {
        match self {
            RefreshError::SignInAgain(code) | RefreshError::Refused(code) => code,
            RefreshError::Transient(e) => e.code(),
        }
    }
}

/// Microsoft's token endpoint for the Entra app of ZITADEL's Microsoft identity provider: the
/// app's credentials and scopes. It remembers nothing between calls: a 429's `Retry-After` and a
/// refusal are remembered per refresh token by its caller (the `Refresher` of
/// `claims::microsoft`), so that one user's 429 does not hold back the other users' refreshes.
pub struct MicrosoftClient {
    config: MsRefreshConfig,
}

impl MicrosoftClient {
    pub fn new(config: MsRefreshConfig) -> Self {
        MicrosoftClient { config }
    }

    /// The settings the client was built with (skew and policy are read by its callers).
    pub fn config(&self) -> &MsRefreshConfig {
        &self.config
    }

    /// The `refresh_token` grant against the Microsoft identity platform (v2.0 token endpoint),
    /// for `scopes` (the same as or fewer than consented), or else `MS_SCOPES`. A 429 is noted in
    /// `backoff` (the refresh token's own).
    pub async fn refresh<R: Http + Clock>(
        &self,
        runtime: &R,
        refresh_token: &str,
        scopes: Option<&str>,
        backoff: &Backoff,
        now: i64,
    ) -> Result<Refreshed, RefreshError> {
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        let scope = [("scope", scopes.unwrap_or(&self.config.scopes))];
        self.token(runtime, &grant, &scope, backoff, now).await.map(|(refreshed, _)| refreshed)
    }

    /// The `authorization_code` grant of the connect flow (with its PKCE verifier): the tokens,
    /// and the ID token when Microsoft gave one. A 429 here fails this exchange only (the user
    /// tries again from the browser); it holds back no refresh.
    pub async fn exchange_code<R: Http + Clock>(
        &self,
        runtime: &R,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        now: i64,
    ) -> Result<(Refreshed, Option<String>), RefreshError> {
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        self.token(runtime, &grant, &[], &Backoff::default(), now).await
    }

    /// One request to the token endpoint: the `grant`'s parameters, the app's credentials, then
    /// `extra` ones; a 429 is noted in `backoff`.
    async fn token<R: Http + Clock>(
        &self,
        runtime: &R,
        grant: &[(&str, &str)],
        extra: &[(&str, &str)],
        backoff: &Backoff,
        now: i64,
    ) -> Result<(Refreshed, Option<String>), RefreshError> {
        let config = &self.config;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(grant.iter().copied())
            .append_pair("client_id", &config.client_id)
            .append_pair("client_secret", config.client_secret.expose())
            .extend_pairs(extra.iter().copied())
            .finish();
        let request = HttpRequest {
            method: "POST",
            url: config.token_url.clone(),
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".to_string()),
                ("accept", "application/json".to_string()),
            ],
            body: body.into_bytes(),
        };
        let response = runtime.send(request).await.map_err(|e| RefreshError::Transient(e.into()))?;
        let mut answer = TokenAnswer::parse(&response.body);
        match response.status {
            200..=299 | 429 | 500..=599 => {
                check_status(&response, backoff, runtime.now_ms()).map_err(RefreshError::Transient)?
            }
            _ => return Err(refusal(answer.and_then(|a| a.error).as_deref())),
        }
        let answer = answer.as_mut().ok_or(RefreshError::Transient(UpstreamError::Malformed))?;
        let access_token = answer.access_token().map_err(RefreshError::Transient)?;
        // An hour if absent (or unreadable); Entra ID access tokens live at most a day, so anything
        // beyond is nonsense, cut to that.
        let expires_in = answer.expires_in().ok().flatten().unwrap_or(3600).clamp(0, MAX_TOKEN_LIFETIME_SECONDS);
        let refreshed = Refreshed {
            access_token,
            refresh_token: answer.refresh_token.take().filter(|t| !t.is_empty()),
            expires_at: now.saturating_add(expires_in),
            scope: answer.scope.take().filter(|s| !s.is_empty()),
        };
        Ok((refreshed, answer.id_token.take().filter(|t| !t.is_empty())))
    }
}

/// What Microsoft's OAuth error code (RFC 6749 §5.2) says about a refused refresh.
fn refusal(error: Option<&str>) -> RefreshError {
    match error {
        Some("invalid_grant") => RefreshError::SignInAgain("invalid_grant"),
        Some("interaction_required") => RefreshError::SignInAgain("interaction_required"),
        Some("consent_required") => RefreshError::SignInAgain("consent_required"),
        Some("invalid_client") => RefreshError::Refused("invalid_client"),
        Some("unauthorized_client") => RefreshError::Refused("unauthorized_client"),
        Some("invalid_scope") => RefreshError::Refused("invalid_scope"),
        Some("invalid_request") => RefreshError::Refused("invalid_request"),
        _ => RefreshError::Refused("refused"),
    }
}
