//! What the core needs from the outside world, as a trait: HTTP with a deadline, the clock, a
//! timer and the optional shared cache (KV). The Workers glue implements it with `fetch`,
//! `Date.now()`, `setTimeout` and KV; tests implement it with canned answers.

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
