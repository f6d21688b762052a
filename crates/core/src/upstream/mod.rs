//! The services the worker calls: the ZITADEL API and Microsoft's token endpoint. What they share
//! lives here: the one error type, how a status is read (429 included), and the OAuth token
//! answer both of them give.

pub mod connect;
pub mod exchange;
pub mod jwks;
pub mod microsoft;
pub mod zitadel;

use std::fmt;

use serde::Deserialize;

use crate::port::{HttpResponse, TransportError};
use crate::runtime::backoff::Backoff;

/// Why an upstream call gave no usable answer. Carries no response body: bodies may echo input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Timeout,
    Network,
    TooLarge,
    /// The credentials were refused (401/403, or `invalid_client` from the token endpoint).
    Unauthorized(u16),
    /// 429, or still waiting out an earlier 429's `Retry-After`.
    RateLimited,
    /// 404 for a route the instance does not have (an older ZITADEL), as opposed to a resource the
    /// API did not find (`Status(404)`).
    MissingApi,
    /// Any other non-2xx status.
    Status(u16),
    /// A 2xx answer that is not the expected JSON.
    Malformed,
    /// An organization or user id that does not look as ZITADEL's do: never sent.
    InvalidId,
    /// An organization's mapping holds more than `PERMISSIONS_MAPPING_MAX_BYTES`: reading stopped.
    MappingTooLarge,
}

impl UpstreamError {
    /// A snake_case word for logs and log claims.
    pub fn code(self) -> &'static str {
        match self {
            UpstreamError::Timeout => "timeout",
            UpstreamError::Network => "network_error",
            UpstreamError::TooLarge => "response_too_large",
            UpstreamError::Unauthorized(_) => "unauthorized",
            UpstreamError::RateLimited => "rate_limited",
            UpstreamError::MissingApi => "missing_api",
            UpstreamError::Status(_) => "bad_status",
            UpstreamError::Malformed => "malformed_response",
            UpstreamError::InvalidId => "invalid_id",
            UpstreamError::MappingTooLarge => "mapping_too_large",
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Timeout => f.write_str("no answer within UPSTREAM_TIMEOUT_MS"),
            UpstreamError::Network => f.write_str("the connection failed"),
            UpstreamError::TooLarge => f.write_str("the answer was too large"),
            UpstreamError::Unauthorized(403) => f.write_str("the credentials lack a permission (HTTP 403)"),
            UpstreamError::Unauthorized(status) => write!(f, "the credentials were refused (HTTP {status})"),
            UpstreamError::RateLimited => f.write_str("rate limited (HTTP 429)"),
            UpstreamError::MissingApi => f.write_str("this instance has no such API (HTTP 404)"),
            UpstreamError::Status(status) => write!(f, "HTTP {status}"),
            UpstreamError::Malformed => f.write_str("the answer was not the expected JSON"),
            UpstreamError::InvalidId => f.write_str("an id that is not a ZITADEL id was not sent"),
            UpstreamError::MappingTooLarge => f.write_str("the mapping is over PERMISSIONS_MAPPING_MAX_BYTES"),
        }
    }
}

impl From<TransportError> for UpstreamError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Timeout => UpstreamError::Timeout,
            TransportError::Network => UpstreamError::Network,
            TransportError::TooLarge => UpstreamError::TooLarge,
        }
    }
}

/// Reads an answer's status: 2xx is fine; a 429 stops calls to that upstream for `Retry-After`
/// (see [`Backoff`]); 401 and 403 are refused credentials; anything else is `Status`. Callers
/// decide first what a status means only to them (a 404 route, a token endpoint's 400).
pub fn check_status(response: &HttpResponse, backoff: &Backoff, now_ms: u64) -> Result<(), UpstreamError> {
    match response.status {
        200..=299 => Ok(()),
        429 => {
            backoff.note(now_ms, response.retry_after);
            Err(UpstreamError::RateLimited)
        }
        status @ (401 | 403) => Err(UpstreamError::Unauthorized(status)),
        status => Err(UpstreamError::Status(status)),
    }
}

/// An OAuth 2.0 token endpoint's answer (RFC 6749 §5), as ZITADEL's and Microsoft's give it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenAnswer {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// Seconds; a number, or (older endpoints) a string of digits.
    expires_in: Option<Box<serde_json::value::RawValue>>,
    /// The ID token of an OpenID Connect answer (the authorization-code grant).
    pub id_token: Option<String>,
    /// The error code of a refusal (`invalid_grant`, ...).
    pub error: Option<String>,
    /// The scopes granted, when the endpoint says (Microsoft does).
    pub scope: Option<String>,
}

impl TokenAnswer {
    /// The answer in `body`, if it is one.
    pub fn parse(body: &[u8]) -> Option<TokenAnswer> {
        serde_json::from_slice(body).ok()
    }

    /// The access token of a successful answer, or `Malformed` for an answer without one.
    pub fn access_token(&mut self) -> Result<String, UpstreamError> {
        self.access_token.take().filter(|t| !t.is_empty()).ok_or(UpstreamError::Malformed)
    }

    /// `expires_in`: `None` when absent, `Malformed` when it is not a whole number of seconds;
    /// past the range of `i64` it saturates.
    pub fn expires_in(&self) -> Result<Option<i64>, UpstreamError> {
        let Some(raw) = &self.expires_in else { return Ok(None) };
        let text = raw.get().trim_matches('"');
        let seconds = match text.strip_prefix('-') {
            Some(_) => text.parse::<i64>().ok(),
            None => text.parse::<u64>().ok().map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        };
        seconds.map(Some).ok_or(UpstreamError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<u64>) -> HttpResponse {
        HttpResponse { status, body: Vec::new(), retry_after }
    }

    #[test]
    fn statuses_are_read_alike_for_every_upstream() {
        let backoff = Backoff::default();
        assert_eq!(check_status(&answer(204, None), &backoff, 0), Ok(()));
        assert_eq!(check_status(&answer(401, None), &backoff, 0), Err(UpstreamError::Unauthorized(401)));
        assert_eq!(check_status(&answer(403, None), &backoff, 0), Err(UpstreamError::Unauthorized(403)));
        assert_eq!(check_status(&answer(503, None), &backoff, 0), Err(UpstreamError::Status(503)));
        assert!(!backoff.active(0));
        assert_eq!(check_status(&answer(429, Some(30)), &backoff, 0), Err(UpstreamError::RateLimited));
        assert!(backoff.active(29_999) && !backoff.active(30_000), "a 429 backs off for Retry-After");
    }

    #[test]
    fn token_answers_take_expires_in_as_a_number_or_a_string() {
        let mut a = TokenAnswer::parse(br#"{"access_token":"t","expires_in":3599,"token_type":"Bearer"}"#).unwrap();
        assert_eq!((a.expires_in(), a.access_token()), (Ok(Some(3599)), Ok("t".to_string())));
        assert_eq!(TokenAnswer::parse(br#"{"expires_in":"43199"}"#).unwrap().expires_in(), Ok(Some(43199)));
        assert_eq!(
            TokenAnswer::parse(br#"{"expires_in":"soon"}"#).unwrap().expires_in(),
            Err(UpstreamError::Malformed)
        );
        assert_eq!(TokenAnswer::parse(b"{}").unwrap().expires_in(), Ok(None));
        let huge = format!(r#"{{"expires_in":{}}}"#, u64::MAX);
        assert_eq!(TokenAnswer::parse(huge.as_bytes()).unwrap().expires_in(), Ok(Some(i64::MAX)));
        assert_eq!(
            TokenAnswer::parse(br#"{"access_token":""}"#).unwrap().access_token(),
            Err(UpstreamError::Malformed)
        );
        assert_eq!(
            TokenAnswer::parse(br#"{"error":"invalid_grant"}"#).unwrap().error.as_deref(),
            Some("invalid_grant")
        );
        assert!(TokenAnswer::parse(b"<html>").is_none());
    }

    #[test]
    fn error_texts_carry_no_body() {
        assert_eq!(UpstreamError::Status(502).to_string(), "HTTP 502");
        assert_eq!(UpstreamError::Timeout.code(), "timeout");
    }
}
