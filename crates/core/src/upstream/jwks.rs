//! The instance's key set (`{ZITADEL_DOMAIN}/oauth/v2/keys`), whose web keys sign JWT payloads:
//! kept per isolate for an hour, fetched again, at most once a minute, when a payload names a key
//! the set does not have, bounded in size and fetched within the call's deadline.
//!
//! ZITADEL publishes a web key from its creation (state initial) until it is removed, and an
//! instance starts with two, one active: a rotation activates a key that has long been in the set.
//! Only a key created and activated within the same minute, just after this isolate read the set,
//! is refused until the minute is over.

use std::cell::RefCell;
use std::rc::Rc;

use crate::contract::jose::Jwks;
use crate::port::{Clock, Http, HttpRequest, Timer};
use crate::runtime::backoff::Backoff;
use crate::runtime::deadline::timeout_at;
use crate::runtime::single_flight::SingleFlight;
use crate::upstream::{check_status, UpstreamError};

/// How long a key set is used.
pub const KEEP_MS: u64 = 3_600_000;
/// How long a key set that holds the key is still used when fetching a newer one fails.
pub const STALE_IF_ERROR_MS: u64 = 86_400_000;
/// How long after a fetch an unknown key may make the worker fetch again.
pub const REFETCH_AFTER_MS: u64 = 60_000;
/// The largest key set read (an instance's is a few KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The instance's key set as this isolate keeps it: where it is read from, the copy, the single
/// flight that fetches it and the endpoint's 429 backoff.
pub struct JwksCache {
    url: String,
    fetched: RefCell<Option<(Rc<Jwks>, u64)>>,
    flight: SingleFlight<Result<Rc<Jwks>, UpstreamError>>,
    backoff: Backoff,
}

impl JwksCache {
    /// A cache of the key set at `url` whose fetch, run by one request for all, ends within
    /// `live_for_ms` while that request lives (see [`SingleFlight::new`]).
    pub fn new(url: String, live_for_ms: u64) -> Self {
        JwksCache {
            url,
            fetched: RefCell::default(),
            flight: SingleFlight::new(live_for_ms),
            backoff: Backoff::default(),
        }
    }

    /// The key set that should hold `kid`: the cached one while it is younger than an hour and
    /// either holds `kid` or was fetched less than a minute ago; else one fetched anew
    /// before `deadline_ms`. When that fetch fails, a copy younger than a day that holds `kid`
    /// still serves: the key was the instance's, and a failing key endpoint should not stop sign-in.
    pub async fn key_set<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        kid: &str,
        deadline_ms: u64,
    ) -> Result<Rc<Jwks>, UpstreamError> {
        let now = runtime.now_ms();
        if let Some((jwks, at)) = self.fetched.borrow().as_ref() {
            let age = now.saturating_sub(*at);
            if age < KEEP_MS && (jwks.find(kid).is_some() || age < REFETCH_AFTER_MS) {
                return Ok(jwks.clone());
            }
        }
        let fetch = self.flight.run(runtime, "jwks", || async {
            let jwks = Rc::new(fetch(runtime, &self.url, &self.backoff).await?);
            *self.fetched.borrow_mut() = Some((jwks.clone(), runtime.now_ms()));
            Ok(jwks)
        });
        // Boxed: the fetch's future is large, and the cached path above should not carry it.
        let fetched = Box::pin(timeout_at(runtime, deadline_ms, fetch)).await.unwrap_or(Err(UpstreamError::Timeout));
        fetched.or_else(|e| {
            let kept = self.fetched.borrow();
            let (jwks, at) = kept.as_ref().ok_or(e)?;
            let usable = runtime.now_ms().saturating_sub(*at) < STALE_IF_ERROR_MS && jwks.find(kid).is_some();
            usable.then(|| jwks.clone()).ok_or(e)
        })
    }
}

async fn fetch<R: Http + Clock + Timer>(runtime: &R, url: &str, backoff: &Backoff) -> Result<Jwks, UpstreamError> {
    if backoff.active(runtime.now_ms()) {
        return Err(UpstreamError::RateLimited);
    }
    let request = HttpRequest {
        method: "GET",
        url: url.to_string(),
        headers: vec![("accept", "application/json".to_string())],
        body: Vec::new(),
    };
    let response = runtime.send(request).await?;
    check_status(&response, backoff, runtime.now_ms())?;
    if response.body.len() > MAX_JWKS_BYTES {
        return Err(UpstreamError::TooLarge);
    }
    Jwks::parse(&response.body).ok_or(UpstreamError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{live_for_ms, FakeRuntime, Reply};
    use futures::executor::block_on;

    const URL: &str = "https://z.example/oauth/v2/keys";

    fn cache() -> JwksCache {
        JwksCache::new(URL.into(), live_for_ms())
    }

    fn set(kids: &[&str]) -> Reply {
        let keys: Vec<_> =
            kids.iter().map(|k| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": k, "x": "AA"})).collect();
        Reply::json(200, serde_json::json!({ "keys": keys }))
    }

    fn kids(jwks: &Jwks) -> Vec<&str> {
        jwks.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }

    #[test]
    fn the_set_is_kept_for_an_hour_and_fetched_again_for_an_unknown_key_at_most_once_a_minute() {
        let runtime = FakeRuntime::new(vec![set(&["a"]), set(&["a", "b"]), set(&["c"])]);
        let cache = cache();
        // The key set's kids, and how many fetches were made in all.
        let get = |kid: &str| {
            let jwks = block_on(cache.key_set(&runtime, kid, u64::MAX)).map(|j| kids(&j).join(","));
            (jwks, runtime.sent().len())
        };
        assert_eq!(get("a"), (Ok("a".into()), 1), "fetched");
        assert_eq!(get("a"), (Ok("a".into()), 1), "kept");
        assert_eq!(get("b"), (Ok("a".into()), 1), "fetched less than a minute ago");
        runtime.advance_ms(REFETCH_AFTER_MS);
        assert_eq!(get("b"), (Ok("a,b".into()), 2), "a rotated key is found");
        assert_eq!(get("x"), (Ok("a,b".into()), 2), "read just now: another unknown key waits a minute");
        runtime.advance_ms(KEEP_MS - 1);
        assert_eq!(get("a"), (Ok("a,b".into()), 2), "kept");
        runtime.advance_ms(1);
        assert_eq!(get("a"), (Ok("c".into()), 3), "after an hour it is fetched again");
        let sent = runtime.sent();
        assert_eq!((sent[0].url.as_str(), sent[0].body.len()), (URL, 0));
    }

    #[test]
    fn failures_are_upstream_errors() {
        for (reply, expected) in [
            (Reply::json(500, serde_json::json!({})), UpstreamError::Status(500)),
            (Reply::raw(200, b"<html>"), UpstreamError::Malformed),
            (Reply::raw(200, &vec![b' '; MAX_JWKS_BYTES + 1]), UpstreamError::TooLarge),
            (Reply::Hang, UpstreamError::Timeout),
            (Reply::rate_limited(10), UpstreamError::RateLimited),
        ] {
            let runtime = FakeRuntime::new(vec![reply]);
            assert_eq!(block_on(cache().key_set(&runtime, "a", 0)).err(), Some(expected));
        }
    }

    #[test]
    fn when_a_fetch_fails_a_copy_younger_than_a_day_serves_the_keys_it_holds() {
        let down = || Reply::json(503, serde_json::json!({}));
        let runtime = FakeRuntime::new(vec![set(&["a"]), down(), down(), down()]);
        let cache = cache();
        // The key set's kids, and how many fetches were made in all.
        let get = |kid: &str| {
            let jwks = block_on(cache.key_set(&runtime, kid, u64::MAX)).map(|j| kids(&j).join(","));
            (jwks, runtime.sent().len())
        };
        assert_eq!(get("a"), (Ok("a".into()), 1));
        runtime.advance_ms(KEEP_MS);
        assert_eq!(get("a"), (Ok("a".into()), 2), "the fetch failed: the old copy serves");
        assert_eq!(get("b"), (Err(UpstreamError::Status(503)), 3), "the copy does not hold b");
        runtime.advance_ms(STALE_IF_ERROR_MS - KEEP_MS);
        assert_eq!(get("a"), (Err(UpstreamError::Status(503)), 4), "a day old");
    }
}
