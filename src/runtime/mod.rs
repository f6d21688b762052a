//! What the core needs from the outside world, as a trait: HTTP with a deadline, the clock, a
//! timer, the optional shared cache (KV) and an HMAC. The Workers glue implements it with `fetch`,
//! `Date.now()`, `setTimeout`, KV and WebCrypto; tests implement it with canned answers.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

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

pub trait Platform {
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

    /// HMAC-SHA256 of the concatenated `parts` under `key`: the signature check's MAC. Computed
    /// in Rust unless the platform has a faster one (the Workers glue: WebCrypto, native code).
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> impl Future<Output = [u8; 32]> {
        std::future::ready(crate::contract::signature::hmac_sha256(key, parts))
    }
}

/// Remembers a `429 Too Many Requests` per isolate: until `Retry-After` has passed, calls to that
/// upstream fail at once instead of adding to its load.
#[derive(Default)]
pub struct Backoff {
    until_ms: std::cell::Cell<u64>,
}

impl Backoff {
    /// The longest wait honoured; longer `Retry-After` values are cut to this.
    pub const MAX_SECONDS: u64 = 300;

    /// True while a 429 asks callers to wait.
    pub fn active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms.get()
    }

    /// Records a 429 at `now_ms`; without `Retry-After`, one second.
    pub fn note(&self, now_ms: u64, retry_after: Option<u64>) {
        let wait = retry_after.unwrap_or(1).min(Self::MAX_SECONDS);
        self.until_ms.set(now_ms + wait * 1000);
    }
}

/// Runs `work` until it finishes or the clock reaches `deadline_ms` (Unix milliseconds).
pub async fn before<P: Platform, T>(platform: &P, deadline_ms: u64, work: impl Future<Output = T>) -> Option<T> {
    with_deadline(platform, deadline_ms.saturating_sub(platform.now_ms()), work).await
}

/// Runs `work` until it finishes or `platform.sleep(ms)` does, whichever is first. `work` is
/// dropped on timeout, which aborts its outbound requests in the Workers glue.
pub async fn with_deadline<P: Platform, T>(platform: &P, ms: u64, work: impl Future<Output = T>) -> Option<T> {
    let mut work = pin!(work);
    let mut timer = pin!(platform.sleep(ms));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_lasts_retry_after_capped() {
        let backoff = Backoff::default();
        assert!(!backoff.active(0));
        backoff.note(1_000, Some(30));
        assert!(backoff.active(30_999));
        assert!(!backoff.active(31_000));
        backoff.note(0, Some(86_400));
        assert!(!backoff.active(Backoff::MAX_SECONDS * 1000));
        backoff.note(0, None);
        assert!(backoff.active(999) && !backoff.active(1000));
    }

    #[test]
    fn retry_after_in_seconds_only() {
        assert_eq!(parse_retry_after(" 120 "), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
