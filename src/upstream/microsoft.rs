//! Microsoft's token endpoint (the v2.0 identity platform): the `refresh_token` grant.

use serde::Deserialize;

use crate::config::MsRefreshConfig;
use crate::runtime::backoff::Backoff;
use crate::runtime::{HttpRequest, Platform, TransportError};
use crate::upstream::zitadel::form_encode;

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
    /// Timeout, network error, 429 or 5xx: may work on the next try.
    Transient(&'static str),
}

impl RefreshError {
    pub fn code(self) -> &'static str {
        match self {
            RefreshError::SignInAgain(c) | RefreshError::Refused(c) | RefreshError::Transient(c) => c,
        }
    }
}

/// The `refresh_token` grant against the Microsoft identity platform (v2.0 token endpoint).
pub async fn request_refresh<P: Platform>(
    platform: &P,
    config: &MsRefreshConfig,
    backoff: &Backoff,
    refresh_token: &str,
    now: i64,
) -> Result<Refreshed, RefreshError> {
    let body = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}&scope={}",
        form_encode(refresh_token),
        form_encode(&config.client_id),
        form_encode(config.client_secret.expose()),
        form_encode(&config.scopes),
    );
    let request = HttpRequest {
        method: "POST",
        url: config.token_url.clone(),
        headers: vec![
            ("content-type", "application/x-www-form-urlencoded".to_string()),
            ("accept", "application/json".to_string()),
        ],
        body: body.into_bytes(),
    };
    let response = platform.send(request).await.map_err(|e| match e {
        TransportError::Timeout => RefreshError::Transient("timeout"),
        TransportError::Network => RefreshError::Transient("network_error"),
        TransportError::TooLarge => RefreshError::Transient("response_too_large"),
    })?;
    #[derive(Deserialize)]
    struct TokenAnswer {
        access_token: Option<String>,
        refresh_token: Option<String>,
        expires_in: Option<Box<serde_json::value::RawValue>>,
        error: Option<String>,
    }
    let answer: Option<TokenAnswer> = serde_json::from_slice(&response.body).ok();
    match response.status {
        200..=299 => {
            let answer = answer.ok_or(RefreshError::Transient("malformed_response"))?;
            let access_token =
                answer.access_token.filter(|t| !t.is_empty()).ok_or(RefreshError::Transient("malformed_response"))?;
            // Microsoft sends expires_in as a number (older endpoints: a string); an hour if absent.
            // Entra ID access tokens live at most a day; anything beyond is nonsense, cut to that.
            let expires_in = answer
                .expires_in
                .and_then(|raw| raw.get().trim_matches('"').parse::<i64>().ok())
                .unwrap_or(3600)
                .clamp(0, MAX_TOKEN_LIFETIME_SECONDS);
            Ok(Refreshed {
                access_token,
                refresh_token: answer.refresh_token.filter(|t| !t.is_empty()),
                expires_at: now.saturating_add(expires_in),
            })
        }
        429 => {
            backoff.note(platform.now_ms(), response.retry_after);
            Err(RefreshError::Transient("rate_limited"))
        }
        500..=599 => Err(RefreshError::Transient("bad_status")),
        _ => Err(match answer.and_then(|a| a.error).as_deref() {
            Some("invalid_grant") => RefreshError::SignInAgain("invalid_grant"),
            Some("interaction_required") => RefreshError::SignInAgain("interaction_required"),
            Some("consent_required") => RefreshError::SignInAgain("consent_required"),
            Some("invalid_client") => RefreshError::Refused("invalid_client"),
            Some("unauthorized_client") => RefreshError::Refused("unauthorized_client"),
            Some("invalid_scope") => RefreshError::Refused("invalid_scope"),
            Some("invalid_request") => RefreshError::Refused("invalid_request"),
            _ => RefreshError::Refused("refused"),
        }),
    }
}
