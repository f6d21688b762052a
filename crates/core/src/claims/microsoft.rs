//! The Microsoft (Entra ID) access token claim of a user who signed in through ZITADEL's Microsoft
//! identity provider: read from the user's metadata, and refreshed with the stored refresh token
//! when it is about to expire (or its expiry is unknown). A refresh writes the new tokens back as
//! user metadata through `set_user_metadata`.
//!
//! Tokens are opaque here: the expiry comes from the metadata written beside the token, or, when
//! that is missing and the token happens to be a JWT, from its `exp`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{MsRefreshPolicy, MsTokenConfig};
use crate::contract::payload::ContextInfo;
use crate::contract::response::Metadata;
use crate::port::{Clock, Crypto, Http, Random, Timer};
use crate::runtime::deadline::timeout_at;
use crate::runtime::single_flight::SingleFlight;
use crate::seal::{self, Aad, OpenError, SealingKeys};
use crate::upstream::microsoft::{MicrosoftClient, RefreshError, Refreshed};
use crate::upstream::UpstreamError;

/// Refreshed tokens remembered per isolate, at most.
const MAX_REMEMBERED: usize = 1_000;

/// What a user's metadata holds.
#[cfg_attr(test, derive(Debug))]
#[derive(Default, PartialEq)]
pub struct Stored {
    /// The access token, or why it could not be read.
    pub access: Option<Result<String, &'static str>>,
    pub refresh: Option<String>,
    /// Unix seconds; `0` (what the capture writes when it cannot know) counts as unknown.
    pub expires_at: Option<i64>,
}

impl Stored {
    /// True when the user's metadata holds no Microsoft token at all.
    pub fn is_empty(&self) -> bool {
        self.access.is_none() && self.refresh.is_none()
    }

    pub fn read(info: &ContextInfo<'_>, config: &MsTokenConfig) -> Stored {
        // The refresh token and the expiry matter only to refreshing.
        let for_refresh = |key: &str| {
            config.refresh.as_ref().and_then(|_| user_metadata(info, key)).and_then(|v| decode_text(v).ok())
        };
        Stored {
            access: user_metadata(info, &config.metadata_key).map(decode_text),
            refresh: for_refresh(&config.refresh_token_metadata_key),
            expires_at: for_refresh(&config.expires_at_metadata_key).and_then(|t| expiry(&t)),
        }
    }
}

/// The stored token as this call may use it. With `TOKEN_SEALING_KEY`: a sealed value opens only
/// for the user and metadata key it was sealed for; a refresh token in clear is never redeemed
/// (anyone who can write a user's metadata could plant one); an access token in clear (and its
/// expiry) is passed on only with `MS_ACCEPT_UNSEALED`. Without a sealing key a sealed value
/// cannot be read. The notes say what was set aside (never a value).
pub async fn unseal<R: Crypto>(
    runtime: &R,
    keys: Option<&SealingKeys>,
    config: &MsTokenConfig,
    info: &ContextInfo<'_>,
    mut stored: Stored,
) -> (Stored, Vec<&'static str>) {
    let mut notes = Vec::new();
    let expiry_text = user_metadata(info, &config.expires_at_metadata_key).and_then(|v| decode_text(v).ok());
    let sealed = |text: Option<&str>| text.is_some_and(seal::is_sealed);
    let access_sealed = sealed(stored.access.as_ref().and_then(|a| a.as_deref().ok()));
    let (refresh_sealed, expiry_sealed) = (sealed(stored.refresh.as_deref()), sealed(expiry_text.as_deref()));
    let (Some(keys), Some(user_id)) = (keys, info.user_id()) else {
        if keys.is_none() && !(access_sealed || refresh_sealed) {
            return (stored, notes); // the cleartext world, as ever
        }
        let why = if keys.is_none() {
            "the token is sealed, and TOKEN_SEALING_KEY is not set"
        } else {
            "no user id to open the sealed token with"
        };
        if access_sealed || keys.is_some() {
            stored.access = stored.access.map(|_| Err(why));
        }
        if refresh_sealed || keys.is_some() {
            stored.refresh = None;
        }
        return (stored, notes);
    };
    let mut clear_access_passed = false;
    stored.access = match stored.access {
        Some(Ok(text)) if access_sealed => Some(open_text(runtime, keys, user_id, &config.metadata_key, text).await),
        Some(Ok(_)) if !config.accept_unsealed => {
            Some(Err("the token is stored unsealed, and MS_ACCEPT_UNSEALED is off"))
        }
        Some(Ok(text)) => {
            clear_access_passed = true;
            Some(Ok(text))
        }
        other => other,
    };
    stored.refresh = match stored.refresh {
        Some(text) if refresh_sealed => {
            match open_text(runtime, keys, user_id, &config.refresh_token_metadata_key, text).await {
                Ok(token) => Some(token),
                Err(why) => {
                    notes.push(why);
                    None
                }
            }
        }
        Some(_) => {
            notes.push("a refresh token stored unsealed is never redeemed");
            None
        }
        None => None,
    };
    stored.expires_at = match expiry_text {
        Some(text) if expiry_sealed => {
            open_text(runtime, keys, user_id, &config.expires_at_metadata_key, text).await.ok().and_then(|t| expiry(&t))
        }
        Some(_) if clear_access_passed => stored.expires_at,
        _ => None,
    };
    (stored, notes)
}

/// `text`, sealed for `user_id` under the metadata key `key`, opened.
async fn open_text<R: Crypto>(
    runtime: &R,
    keys: &SealingKeys,
    user_id: &str,
    key: &str,
    text: String,
) -> Result<String, &'static str> {
    match seal::open(runtime, keys, &Aad::metadata(user_id, key), &text).await {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "the sealed token is not UTF-8 text"),
        Err(e) => Err(open_failure(e)),
    }
}

/// Why a sealed token did not open, for logs (never a value).
fn open_failure(e: OpenError) -> &'static str {
    match e {
        OpenError::Refused => "the sealed token does not open here (sealed for another user or key, or changed)",
        OpenError::UnknownKey => "the sealed token names a key TOKEN_SEALING_KEY does not have",
        OpenError::Malformed | OpenError::NotSealed => "the sealed token is malformed",
    }
}

/// An expiry as stored: Unix seconds; `0` (what the capture writes when it cannot know) counts as
/// unknown.
fn expiry(text: &str) -> Option<i64> {
    text.trim().parse().ok().filter(|&seconds: &i64| seconds > 0)
}

/// `entries` sealed for `user_id`, each bound to its own key; `None` when one cannot be sealed
/// (the runtime refused): nothing is then written in clear instead.
pub async fn seal_entries<R: Crypto + Random>(
    runtime: &R,
    keys: &SealingKeys,
    user_id: &str,
    entries: Vec<Metadata>,
) -> Option<Vec<Metadata>> {
    let mut sealed = Vec::with_capacity(entries.len());
    for entry in entries {
        let plaintext = base64::engine::general_purpose::STANDARD.decode(&entry.value).ok()?;
        let value = seal::seal(runtime, keys, &Aad::metadata(user_id, &entry.key), &plaintext).await?;
        sealed.push(Metadata::new(entry.key, value.as_bytes()));
    }
    Some(sealed)
}

/// The raw (base64) value of a user metadata entry.
fn user_metadata<'a>(info: &'a ContextInfo<'_>, key: &str) -> Option<&'a str> {
    info.user_metadata.as_deref()?.iter().find(|m| m.key.as_deref() == Some(key)).and_then(|m| m.value.as_deref())
}

/// Text stored as user metadata: standard base64 of either a JSON string (a V1 action's
/// `appendMetadata` JSON-encodes what it stores) or the raw bytes (V2 `set_user_metadata`).
pub fn decode_text(base64_value: &str) -> Result<String, &'static str> {
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_value.trim())
        .map_err(|_| "the token metadata is not valid base64")?;
    // A JSON string is unquoted; anything else (raw bytes, digits) is taken as it is. Tokens hold
    // no characters that JSON escapes, so the common case is just dropping the quotes.
    let quoted = bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"';
    if quoted && !bytes.contains(&b'\\') {
        // Unquoted in place: the token is a few KB, not worth a second buffer.
        bytes.pop();
        bytes.remove(0);
    }
    let text = String::from_utf8(bytes).map_err(|_| "the token metadata is not UTF-8 text")?;
    let text =
        if quoted && text.starts_with('"') { serde_json::from_str::<String>(&text).unwrap_or(text) } else { text };
    if text.trim().is_empty() {
        return Err("the token metadata is empty");
    }
    Ok(text)
}

/// `exp` of a JWT, if the token is one and has it. Signature unchecked: this is a hint for when to
/// refresh, never a trust decision.
pub fn jwt_expiry(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else { return None };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<f64>,
    }
    let exp = serde_json::from_slice::<Claims>(&bytes).ok()?.exp?;
    // Only a plausible time counts; anything else is as good as no `exp`.
    (exp.is_finite() && exp > 0.0 && exp < 1e13).then_some(exp as i64)
}

/// Per-isolate refresh state: Microsoft's token endpoint; concurrent refreshes of one refresh
/// token share one call, and a refresh is remembered (keyed by a hash of the refresh token it used)
/// so that calls still carrying the old metadata do not spend the old refresh token again.
pub struct Refresher {
    microsoft: MicrosoftClient,
    flights: SingleFlight<Result<Rc<Refreshed>, RefreshError>>,
    done: RefCell<HashMap<String, Rc<Refreshed>>>,
}

impl Refresher {
    /// Microsoft's token endpoint, for the connect flow's code exchange.
    pub fn microsoft(&self) -> &MicrosoftClient {
        &self.microsoft
    }

    /// A refresher with `microsoft`'s token endpoint whose refreshes end within `live_for_ms` while
    /// their requests live (see [`SingleFlight::new`]).
    pub fn new(microsoft: MicrosoftClient, live_for_ms: u64) -> Self {
        // Field by field: `..Default::default()` would build and drop a second flight map.
        Refresher { microsoft, flights: SingleFlight::new(live_for_ms), done: RefCell::default() }
    }
}

/// The outcome for the claim.
#[cfg_attr(test, derive(Debug))]
#[derive(PartialEq)]
pub enum Outcome {
    /// Put this token in the claim, and write these entries back.
    Token { token: String, write_back: Vec<Metadata>, refreshed: bool },
    /// Put the stored token, not yet expired, in the claim: its refresh failed for a passing
    /// reason (`failure`, a code) under `MS_ON_REFRESH_ERROR=stale`.
    Stale { token: String, failure: &'static str },
    /// No claim, for this reason (a fixed text, for logs and log claims).
    Omit(&'static str),
    /// No token stored: nothing to say.
    Absent,
}

/// Decides the claim for `stored` at `now` (unix seconds), refreshing with `refresher` (present
/// when refresh is configured) when needed; a refresh still running at `deadline_ms` counts as a
/// timeout.
pub async fn token_claim<R: Http + Clock + Timer>(
    runtime: &R,
    refresher: Option<&Refresher>,
    config: &MsTokenConfig,
    stored: Stored,
    now: i64,
    deadline_ms: u64,
) -> Outcome {
    let access = match stored.access {
        Some(Ok(token)) => Some(token),
        Some(Err(reason)) if stored.refresh.is_none() || refresher.is_none() => return Outcome::Omit(reason),
        Some(Err(_)) | None => None,
    };
    let expiry = stored.expires_at.or_else(|| access.as_deref().and_then(jwt_expiry));
    let (Some(refresher), Some(refresh_token)) = (refresher, stored.refresh) else {
        // Passthrough only.
        return match access {
            None => Outcome::Absent,
            Some(_) if expiry.is_some_and(|e| e <= now) => Outcome::Omit("the stored token has expired"),
            Some(token) => Outcome::Token { token, write_back: Vec::new(), refreshed: false },
        };
    };
    let refresh_config = refresher.microsoft.config();
    let skew = refresh_config.skew_seconds as i64;
    if let (Some(token), Some(expiry)) = (&access, expiry) {
        if expiry.saturating_sub(skew) > now {
            return Outcome::Token { token: token.clone(), write_back: Vec::new(), refreshed: false };
        }
    }

    let refresh = refresher.refresh(runtime, &refresh_token, now);
    // Boxed: the refresh's future is large, and the fresh-token path above should not carry it.
    match Box::pin(timeout_at(runtime, deadline_ms, refresh))
        .await
        .unwrap_or(Err(RefreshError::Transient(UpstreamError::Timeout)))
    {
        Ok(new) => {
            let mut write_back = vec![Metadata::new(&config.metadata_key, new.access_token.as_bytes())];
            if let Some(rotated) = &new.refresh_token {
                write_back.push(Metadata::new(&config.refresh_token_metadata_key, rotated.as_bytes()));
            }
            write_back.push(Metadata::new(&config.expires_at_metadata_key, new.expires_at.to_string().as_bytes()));
            Outcome::Token { token: new.access_token.clone(), write_back, refreshed: true }
        }
        Err(RefreshError::Transient(e)) if refresh_config.on_error == MsRefreshPolicy::Stale => {
            match (access, expiry) {
                (Some(token), Some(expiry)) if expiry > now => Outcome::Stale { token, failure: e.code() },
                _ => Outcome::Omit(e.code()),
            }
        }
        Err(e) => Outcome::Omit(e.code()),
    }
}

impl Refresher {
    async fn refresh<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        refresh_token: &str,
        now: i64,
    ) -> Result<Rc<Refreshed>, RefreshError> {
        let key = hex::encode(Sha256::digest(refresh_token.as_bytes()));
        let skew = self.microsoft.config().skew_seconds as i64;
        if let Some(done) = self.done.borrow().get(&key) {
            if done.expires_at.saturating_sub(skew) > now {
                return Ok(done.clone());
            }
        }
        if self.microsoft.backing_off(runtime.now_ms()) {
            return Err(RefreshError::Transient(UpstreamError::RateLimited));
        }
        let result = self
            .flights
            .run(runtime, &key, || async { self.microsoft.refresh(runtime, refresh_token, now).await.map(Rc::new) })
            .await;
        if let Ok(refreshed) = &result {
            let mut done = self.done.borrow_mut();
            if done.len() >= MAX_REMEMBERED {
                done.retain(|_, r| r.expires_at.saturating_sub(skew) > now);
                if done.len() >= MAX_REMEMBERED {
                    done.clear();
                }
            }
            done.insert(key, refreshed.clone());
        }
        result
    }
}

#[cfg(test)]
mod tests;
