//! What the core needs from the outside world, as a trait: HTTP, the clock, a timer, the
//! optional shared cache (KV) and an HMAC. The Workers glue implements it with `fetch`,
//! `Date.now()`, `setTimeout`, KV and WebCrypto; tests implement it with canned answers
//! (`testing`). Beside it: deadlines, single flight and the 429 backoff, which the upstream clients
//! build on.

pub mod backoff;
pub mod deadline;
pub mod single_flight;

use std::future::Future;

use crate::contract::jose::Crypto;
use crate::contract::signature::Mac;

/// An outbound request. `Debug` is deliberately absent: headers carry credentials.
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when the answer has one in that form.
    pub retry_after: Option<u64>,
}

/// The delta-seconds form of `Retry-After` (the HTTP-date form is ignored).
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

/// How an exchange failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// No answer within the deadline.
    Timeout,
    /// Connection refused, reset or dropped.
    Network,
    /// The answer was larger than the worker reads.
    TooLarge,
}

pub trait Platform: Mac + Crypto {
    /// Sends one request. Implementations bound the response size.
    fn send(&self, request: HttpRequest) -> impl Future<Output = Result<HttpResponse, TransportError>>;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;

    /// Reads the shared cache (KV), if one is bound.
    fn cache_get(&self, key: &str) -> impl Future<Output = Option<String>>;

    /// Writes the shared cache, if one is bound; failures are ignored by design.
    fn cache_put(&self, key: &str, value: String, ttl_seconds: u64) -> impl Future<Output = ()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_only() {
        assert_eq!(parse_retry_after(" 120 "), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
