//! Deadlines: how long upstream work may take, and how long a single flight counts as alive.
//!
//! Every request bounds its upstream work at `UPSTREAM_TIMEOUT_MS`: each step stops itself at the
//! deadline (so that fallbacks such as a stale map or an old token still apply), an outer bound a
//! safety margin later guards against a step that fails to, and a single flight that has run longer
//! than both and a last margin was abandoned.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use crate::port::{Clock, Timer};

/// The largest `UPSTREAM_TIMEOUT_MS` accepted.
pub const MAX_UPSTREAM_TIMEOUT_MS: u64 = 60_000;

/// Each upstream step stops itself at the deadline, so that fallbacks (a stale map, an old token)
/// still apply; this outer bound past it only guards against a step that fails to.
pub const SAFETY_MARGIN_MS: u64 = 250;

/// Past the work's own bound, how long a flight is still waited for: its timers may fire late.
const ABANDON_MARGIN_MS: u64 = 1_000;

/// How long a flight may run while its request lives, when every request bounds its upstream work
/// at `upstream_timeout_ms` plus the claims' safety margin: an older flight was abandoned.
pub fn flight_lifetime_ms(upstream_timeout_ms: u64) -> u64 {
    upstream_timeout_ms + SAFETY_MARGIN_MS + ABANDON_MARGIN_MS
}

/// Runs `work` until it finishes or the clock reaches `deadline_ms`, an absolute time (Unix
/// milliseconds); `None` if the deadline came first.
pub async fn timeout_at<R: Clock + Timer, T>(
    runtime: &R,
    deadline_ms: u64,
    work: impl Future<Output = T>,
) -> Option<T> {
    timeout(runtime, deadline_ms.saturating_sub(runtime.now_ms()), work).await
}

/// Runs `work` for at most `ms` milliseconds, a duration (until `runtime.sleep(ms)` ends);
/// `None` if the time ran out first. `work` is then dropped, which aborts its outbound requests
/// in the Workers glue.
pub async fn timeout<R: Clock + Timer, T>(runtime: &R, ms: u64, work: impl Future<Output = T>) -> Option<T> {
    let mut work = pin!(work);
    let mut timer = pin!(runtime.sleep(ms));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}
