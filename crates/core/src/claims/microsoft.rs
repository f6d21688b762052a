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
use crate::runtime::backoff::Backoff;
use crate::runtime::deadline::timeout_at;
use crate::runtime::single_flight::SingleFlight;
use crate::seal::{self, Aad, OpenError, SealingKeys};
use crate::upstream::microsoft::{MicrosoftClient, RefreshError, Refreshed};
use crate::upstream::UpstreamError;

/// Refreshed tokens remembered per isolate, at most.
const MAX_REMEMBERED: usize = 1_000;

/// How long a refusal that means "sign in again" ([`RefreshError::SignInAgain`]: `invalid_grant`,
/// `interaction_required`, `consent_required`) is remembered for its refresh token and scopes: 10
/// minutes. Microsoft does not take such a refusal back for the same refresh token (revoked,
/// expired, password changed: the user must connect again, which stores a new refresh token, of
/// another hash, used at once), so asking again on every call would only add a round trip to
/// Microsoft to every token issued for the user, and identical failing requests to the app's load
/// there. Not for longer: the few refusals an administrator can lift for the same token (consent
/// granted, a Conditional Access policy changed) are noticed within 10 minutes in each isolate.
const REFUSAL_MEMORY_MS: u64 = 10 * 60 * 1000;

/// Refusals, and 429s being waited out, remembered per isolate, at most (each). An entry is a
/// SHA-256 in hex (and the scopes asked, a subset of `MS_SCOPES`) and a few words, so 1,000 of them
/// are a few hundred KB at most of the isolate's 128 MB; 1,000 users refused within 10 minutes by
/// one isolate is a large deployment. Past that, the entry ending soonest is forgotten, and its
/// token asked about once more: the memory degrades to asking Microsoft, never grows.
const MAX_TIMED: usize = 1_000;

/// What a refresher knows of some refresh tokens until a time: keyed by the token's hash (and the
/// scopes asked), never the token. Bounded: full, it forgets what is over first, then what ends
/// soonest, never growing past [`MAX_TIMED`].
struct Timed<V> {
    entries: RefCell<HashMap<String, (V, u64)>>,
}

impl<V> Default for Timed<V> {
    fn default() -> Self {
        Timed { entries: RefCell::default() }
    }
}

impl<V: Copy> Timed<V> {
    /// What is known of `key` at `now_ms`, unless it is over.
    fn get(&self, key: &str, now_ms: u64) -> Option<V> {
        self.entries.borrow().get(key).filter(|(_, until_ms)| now_ms < *until_ms).map(|(value, _)| *value)
    }

    /// Knows `value` of `key` until `until_ms`.
    fn insert(&self, key: &str, value: V, until_ms: u64, now_ms: u64) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= MAX_TIMED && !entries.contains_key(key) {
            entries.retain(|_, (_, until)| now_ms < *until);
            if entries.len() >= MAX_TIMED {
                if let Some(soonest) = entries.iter().min_by_key(|(_, (_, until))| *until).map(|(k, _)| k.clone()) {
                    entries.remove(&soonest);
                }
            }
        }
        entries.insert(key.to_string(), (value, until_ms));
    }
}

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

    /// True when the user's metadata holds a Microsoft token ([`Stored::is_empty`] without reading
    /// it).
    pub fn present(info: &impl TokenMetadata, config: &MsTokenConfig) -> bool {
        info.value(&config.metadata_key).is_some()
            || (config.refresh.is_some() && info.value(&config.refresh_token_metadata_key).is_some())
    }

    pub fn read(info: &impl TokenMetadata, config: &MsTokenConfig) -> Stored {
        // The refresh token and the expiry matter only to refreshing.
        let for_refresh =
            |key: &str| config.refresh.as_ref().and_then(|_| info.value(key)).and_then(|v| decode_text(v).ok());
        Stored {
            access: info.value(&config.metadata_key).map(decode_text),
            refresh: for_refresh(&config.refresh_token_metadata_key),
            expires_at: for_refresh(&config.expires_at_metadata_key).and_then(|t| expiry(&t)),
        }
    }
}

/// The base64 that every sealed metadata value starts with: `sealed:v1` (nine bytes, twelve
/// characters), so that a call tells sealed values from cleartext ones without decoding them.
const SEALED_BASE64: &str = "c2VhbGVkOnYx";

/// Whether the raw (base64) metadata value is a sealed one.
fn is_sealed_value(base64_value: &str) -> bool {
    base64_value.trim_start().starts_with(SEALED_BASE64)
}

/// What a user's metadata holds for this call. With `TOKEN_SEALING_KEY`: a sealed value opens only
/// for the user and metadata key it was sealed for; a refresh token in clear is never redeemed
/// (anyone who can write a user's metadata could plant one); an access token in clear (and its
/// expiry) is passed on only with `MS_ACCEPT_UNSEALED`. Without a sealing key a sealed value
/// cannot be read, and cleartext values are read as ever ([`Stored::read`]). The notes say what
/// was set aside (never a value).
pub async fn read_stored<R: Crypto>(
    runtime: &R,
    keys: Option<&SealingKeys>,
    config: &MsTokenConfig,
    info: &impl TokenMetadata,
) -> (Stored, Vec<&'static str>) {
    let mut notes = Vec::new();
    let any_sealed = [&config.metadata_key, &config.refresh_token_metadata_key, &config.expires_at_metadata_key]
        .into_iter()
        .any(|key| info.value(key).is_some_and(is_sealed_value));
    if keys.is_none() && !any_sealed {
        return (Stored::read(info, config), notes); // the cleartext world, as ever
    }
    let user = info.user_id();
    let (access, access_clear) = read_value(runtime, keys, user, info, &config.metadata_key).await;
    let access = match access {
        Some(Ok(_)) if access_clear && keys.is_some() && !config.accept_unsealed => {
            Some(Err("the token is stored unsealed, and MS_ACCEPT_UNSEALED is off"))
        }
        other => other,
    };
    let clear_access_passed = access_clear && matches!(access, Some(Ok(_)));
    let for_refresh = config.refresh.is_some();
    let refresh = match for_refresh {
        false => None,
        true => match read_value(runtime, keys, user, info, &config.refresh_token_metadata_key).await {
            (Some(Ok(_)), true) if keys.is_some() => {
                notes.push("a refresh token stored unsealed is never redeemed");
                None
            }
            (Some(Ok(token)), _) => Some(token),
            (Some(Err(why)), false) => {
                notes.push(why);
                None
            }
            _ => None,
        },
    };
    let expires_at = match for_refresh {
        false => None,
        true => match read_value(runtime, keys, user, info, &config.expires_at_metadata_key).await {
            (Some(Ok(text)), false) => expiry(&text),
            (Some(Ok(text)), true) if keys.is_none() || clear_access_passed => expiry(&text),
            _ => None,
        },
    };
    (Stored { access, refresh, expires_at }, notes)
}

/// The text of the metadata entry `key`, opened when it is sealed, and whether it was in clear:
/// `None` when absent.
async fn read_value<R: Crypto>(
    runtime: &R,
    keys: Option<&SealingKeys>,
    user: Option<&str>,
    info: &impl TokenMetadata,
    key: &str,
) -> (Option<Result<String, &'static str>>, bool) {
    let Some(raw) = info.value(key) else { return (None, false) };
    if !is_sealed_value(raw) {
        return (Some(decode_text(raw)), true);
    }
    let Some(keys) = keys else { return (Some(Err("the token is sealed, and TOKEN_SEALING_KEY is not set")), false) };
    let Some(user) = user else { return (Some(Err("no user id to open the sealed token with")), false) };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(raw.trim()) else {
        return (Some(Err("the token metadata is not valid base64")), false);
    };
    let opened = match seal::open_bytes(runtime, keys, &Aad::metadata(user, key), &bytes).await {
        Ok(plain) => String::from_utf8(plain).map_err(|_| "the sealed token is not UTF-8 text"),
        Err(e) => Err(open_failure(e)),
    };
    (Some(opened), false)
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

/// The metadata entries of a user's Microsoft tokens, under the configured keys: the access token,
/// the refresh token when there is one, and the expiry (Unix seconds, `0` for unknown). What a
/// capture, a refresh and the connect flow each write.
pub fn token_metadata(config: &MsTokenConfig, access: &str, refresh: Option<&str>, expires_at: i64) -> Vec<Metadata> {
    let mut entries = vec![Metadata::new(&config.metadata_key, access.as_bytes())];
    if let Some(refresh) = refresh {
        entries.push(Metadata::new(&config.refresh_token_metadata_key, refresh.as_bytes()));
    }
    entries.push(Metadata::new(&config.expires_at_metadata_key, expires_at.to_string().as_bytes()));
    entries
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
        let value = seal::seal_bytes(runtime, keys, &Aad::metadata(user_id, &entry.key), &plaintext).await?;
        sealed.push(Metadata::new(entry.key, &value));
    }
    Some(sealed)
}

/// Where a user's token metadata is read from: a call's payload, or the ZITADEL API.
pub trait TokenMetadata {
    /// The user the entries belong to (what sealed values are bound to).
    fn user_id(&self) -> Option<&str>;
    /// The raw (base64) value of the entry `key`.
    fn value(&self, key: &str) -> Option<&str>;
}

impl TokenMetadata for ContextInfo<'_> {
    fn user_id(&self) -> Option<&str> {
        ContextInfo::user_id(self)
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.user_metadata.as_deref()?.iter().find(|m| m.key.as_deref() == Some(key)).and_then(|m| m.value.as_deref())
    }
}

/// A user's entries as the ZITADEL API listed them: (key, base64 value).
pub struct ListedMetadata {
    pub user_id: String,
    pub entries: Vec<(String, String)>,
}

impl TokenMetadata for ListedMetadata {
    fn user_id(&self) -> Option<&str> {
        Some(&self.user_id)
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
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
/// so that calls still carrying the old metadata do not spend the old refresh token again. A
/// refusal that means "sign in again" is remembered too (for [`REFUSAL_MEMORY_MS`]), and a 429
/// holds back that refresh token's refreshes only, until its `Retry-After`.
pub struct Refresher {
    microsoft: MicrosoftClient,
    flights: SingleFlight<Result<Rc<Refreshed>, RefreshError>>,
    done: RefCell<HashMap<String, Rc<Refreshed>>>,
    /// Refusals ([`RefreshError::SignInAgain`]), by refresh token hash and scopes.
    refused: Timed<RefreshError>,
    /// 429s being waited out, by refresh token hash (whatever the scopes: it is the user's load).
    backing_off: Timed<()>,
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
        Refresher {
            microsoft,
            flights: SingleFlight::new(live_for_ms),
            done: RefCell::default(),
            refused: Timed::default(),
            backing_off: Timed::default(),
        }
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

    let refresh = refresher.refresh(runtime, &refresh_token, None, now);
    // Boxed: the refresh's future is large, and the fresh-token path above should not carry it.
    match Box::pin(timeout_at(runtime, deadline_ms, refresh))
        .await
        .unwrap_or(Err(RefreshError::Transient(UpstreamError::Timeout)))
    {
        Ok(new) => {
            let write_back = token_metadata(config, &new.access_token, new.refresh_token.as_deref(), new.expires_at);
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
    /// Refreshes with `refresh_token` for `scopes` (else `MS_SCOPES`): once for concurrent calls
    /// with the same token and scopes, and not again while the last refresh's token is fresh. A
    /// refusal that means "sign in again" is answered again, without a call, for
    /// [`REFUSAL_MEMORY_MS`]; after a 429, this token's refreshes fail at once as `rate_limited`
    /// until its `Retry-After` (one second without) has passed.
    pub async fn refresh<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        refresh_token: &str,
        scopes: Option<&str>,
        now: i64,
    ) -> Result<Rc<Refreshed>, RefreshError> {
        let hash = hex::encode(Sha256::digest(refresh_token.as_bytes()));
        let key = match scopes {
            Some(scopes) => format!("{hash} {scopes}"),
            None => hash.clone(),
        };
        let skew = self.microsoft.config().skew_seconds as i64;
        if let Some(done) = self.done.borrow().get(&key) {
            if done.expires_at.saturating_sub(skew) > now {
                return Ok(done.clone());
            }
        }
        let now_ms = runtime.now_ms();
        if let Some(refusal) = self.refused.get(&key, now_ms) {
            return Err(refusal);
        }
        if self.backing_off.get(&hash, now_ms).is_some() {
            return Err(RefreshError::Transient(UpstreamError::RateLimited));
        }
        let result = self
            .flights
            .run(runtime, &key, || async {
                let backoff = Backoff::default();
                let result = self.microsoft.refresh(runtime, refresh_token, scopes, &backoff, now).await;
                // Noted once, by the call that asked.
                let now_ms = runtime.now_ms();
                if backoff.active(now_ms) {
                    self.backing_off.insert(&hash, (), backoff.until_ms(), now_ms);
                }
                if let Err(refusal @ RefreshError::SignInAgain(_)) = result {
                    self.refused.insert(&key, refusal, now_ms.saturating_add(REFUSAL_MEMORY_MS), now_ms);
                }
                result.map(Rc::new)
            })
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
