//! What the token exchange keeps per isolate: the fetches running (one per user and scopes), and
//! what the isolate remembers of the Graph tokens it handed out: each for at most five minutes,
//! and never past five minutes before the token expires, so that a warm exchange makes no outbound
//! call. Memory only, never KV: a token never leaves the isolate that fetched it, and the same
//! bound caps how long a removed connection can still be served by another isolate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::runtime::single_flight::SingleFlight;
use crate::upstream::microsoft::RefreshError;
use crate::upstream::UpstreamError;

/// The longest a token is served from memory, in seconds.
pub const KEEP_S: i64 = 300;
/// A token is no longer served from memory this long before it expires, in seconds.
pub const EXPIRY_MARGIN_S: i64 = 300;
/// The most tokens kept per isolate.
const MAX_KEPT: usize = 1_000;

/// A Graph token as the exchange hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The scopes it carries, as Microsoft (or the request, or `MS_SCOPES`) says.
    pub scope: String,
}

/// A token fetched for a user: from the stored metadata, or by a refresh.
#[derive(Debug)]
pub struct Fetched {
    pub issued: Rc<Issued>,
    /// `stored` or `refreshed`.
    pub source: &'static str,
    /// Whether the refreshed tokens were written back (none when there was nothing to write).
    pub written: Option<bool>,
    /// Why the write-back failed.
    pub write_error: Option<&'static str>,
}

/// Why no token was fetched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// No refresh token stored, and no fresh access token.
    NotConnected,
    /// Microsoft's token endpoint refused or failed.
    Microsoft(RefreshError),
    /// The ZITADEL API failed.
    Zitadel(UpstreamError),
}

/// A token kept, and until when (Unix seconds).
type Kept = (Rc<Issued>, i64);

/// The tokens kept, by user and requested scopes, and the fetches running.
pub struct Vault {
    kept: RefCell<HashMap<(String, String), Kept>>,
    /// Concurrent exchanges of one user and scopes share one fetch (one metadata read, one
    /// refresh, one write-back).
    pub flights: SingleFlight<Result<Rc<Fetched>, Failure>>,
}

impl Vault {
    /// A vault whose fetches end within `live_for_ms` while their requests live.
    pub fn new(live_for_ms: u64) -> Self {
        Vault { kept: RefCell::default(), flights: SingleFlight::new(live_for_ms) }
    }

    /// The token kept for `user` and `scope` (the normalized request, empty for `MS_SCOPES`), if it
    /// may still be served at `now` (Unix seconds).
    pub fn get(&self, user: &str, scope: &str, now: i64) -> Option<Rc<Issued>> {
        let kept = self.kept.borrow();
        let (issued, until) = kept.get(&(user.to_string(), scope.to_string()))?;
        (*until > now).then(|| issued.clone())
    }

    /// Keeps `issued` for `user` and `scope` from `now`, for as long as the bounds allow (not at
    /// all for a token that expires within the margin).
    pub fn keep(&self, user: &str, scope: &str, issued: Rc<Issued>, now: i64) {
        let until = now.saturating_add(KEEP_S).min(issued.expires_at.saturating_sub(EXPIRY_MARGIN_S));
        if until <= now {
            return;
        }
        let mut kept = self.kept.borrow_mut();
        if kept.len() >= MAX_KEPT {
            kept.retain(|_, (_, until)| *until > now);
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
        }
        kept.insert((user.to_string(), scope.to_string()), (issued, until));
    }

    /// Forgets every token kept for `user`.
    pub fn forget(&self, user: &str) {
        self.kept.borrow_mut().retain(|(u, _), _| u != user);
    }
}

/// Scopes as a cache key and as sent to Microsoft: each once, in a fixed order.
pub fn normalize_scope(scope: &str) -> String {
    let mut scopes: Vec<&str> = scope.split_whitespace().collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: i64) -> Rc<Issued> {
        Rc::new(Issued { access_token: "at".into(), expires_at, scope: "User.Read".into() })
    }

    #[test]
    fn a_token_is_served_from_memory_for_five_minutes_at_most() {
        let vault = Vault::new(1_000);
        vault.keep("u1", "", token(10_000), 1_000);
        assert!(vault.get("u1", "", 1_299).is_some());
        assert!(vault.get("u1", "", 1_300).is_none());
        assert!(vault.get("u2", "", 1_000).is_none(), "per user");
        assert!(vault.get("u1", "Mail.Read", 1_000).is_none(), "per scope");
    }

    #[test]
    fn and_never_within_five_minutes_of_its_expiry() {
        let vault = Vault::new(1_000);
        vault.keep("u1", "", token(1_400), 1_000);
        assert!(vault.get("u1", "", 1_099).is_some());
        assert!(vault.get("u1", "", 1_100).is_none());
        vault.keep("u2", "", token(1_300), 1_000);
        assert!(vault.get("u2", "", 1_000).is_none(), "a token that expires within the margin is not kept");
    }

    #[test]
    fn forgetting_a_user_drops_every_scope_of_theirs_only() {
        let vault = Vault::new(1_000);
        vault.keep("u1", "", token(10_000), 0);
        vault.keep("u1", "Mail.Read", token(10_000), 0);
        vault.keep("u2", "", token(10_000), 0);
        vault.forget("u1");
        assert!(vault.get("u1", "", 1).is_none() && vault.get("u1", "Mail.Read", 1).is_none());
        assert!(vault.get("u2", "", 1).is_some());
    }

    #[test]
    fn the_memory_is_bounded() {
        let vault = Vault::new(1_000);
        for i in 0..(MAX_KEPT + 5) {
            vault.keep(&format!("u{i}"), "", token(10_000), 0);
        }
        assert!(vault.kept.borrow().len() <= MAX_KEPT);
    }

    #[test]
    fn scopes_are_normalized() {
        assert_eq!(normalize_scope(" User.Read  Mail.Read User.Read "), "Mail.Read User.Read");
        assert_eq!(normalize_scope(""), "");
    }
}
