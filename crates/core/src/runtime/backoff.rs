//! The 429 backoff of one upstream (or, for Microsoft's token endpoint, of one refresh token).

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

    /// When the wait ends (milliseconds; `0` before any 429).
    pub fn until_ms(&self) -> u64 {
        self.until_ms.get()
    }

    /// Records a 429 at `now_ms`; without `Retry-After`, one second.
    pub fn note(&self, now_ms: u64, retry_after: Option<u64>) {
        let wait = retry_after.unwrap_or(1).min(Self::MAX_SECONDS);
        self.until_ms.set(now_ms + wait * 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_lasts_retry_after_capped() {
        let backoff = Backoff::default();
        assert!(!backoff.active(0));
        backoff.note(1_000, Some(30));
        assert_eq!(backoff.until_ms(), 31_000);
        assert!(backoff.active(30_999));
        assert!(!backoff.active(31_000));
        backoff.note(0, Some(86_400));
        assert!(!backoff.active(Backoff::MAX_SECONDS * 1000));
        backoff.note(0, None);
        assert!(backoff.active(999) && !backoff.active(1000));
    }
}
