//! Login V2: capturing the Microsoft tokens when a user signs in through an identity provider.
//!
//! V1 actions do not run with Login V2. There, the tokens arrive in the answer to
//! `/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent`; bound as a response execution,
//! the worker receives that answer (`response`) and answers it back, as a `restCall` target of a
//! response execution must (ZITADEL reads the answer as the whole message). The tokens
//! (`idpInformation.oauth.accessToken`, and `refreshToken` where a ZITADEL version includes it)
//! are kept as the user's metadata, in the request Login V2 makes next where the message carries
//! one that has a `metadata` list:
//! - a user linked to the external identity (`userId` set) whose message carries `updateUser`
//!   (the UpdateUserRequest of the oneof `user_action`, ZITADEL #11810) gets them in that
//!   request's top-level `metadata`: Login V2 (#12433) sends it with its UpdateUser call, one
//!   write that needs no `user.write` of the worker. Login V2 makes that call only when the
//!   identity provider's automatic update is on, so with the API configured the tokens are also
//!   stored through it (no sign-in loses them); without the API, the message is the only way;
//! - a linked user whose message carries no `updateUser` (older versions: `updateHumanUser` has no
//!   metadata) gets them through the v2 user metadata API, and the message goes back unchanged; a
//!   failure to store is logged and never fails the sign-in;
//! - a user signing in for the first time has no id yet. The message then carries the request
//!   Login V2 will create the user with (`addHumanUser`, and `createUser` in newer versions); the
//!   entries are added to that request's `metadata`, so the user is created with them. No API call
//!   is made.
//!
//! An edited message differs from the received one only inside that `metadata` list (byte for
//! byte elsewhere), and only where the proto of the version that sent the request has the list:
//! ZITADEL reads the answer with protojson, refuses an unknown field, and then empties the whole
//! message, even with `interruptOnError: false`.
//!
//! With `TOKEN_SEALING_KEY` the entries are sealed for the linked user, each bound to its key. A
//! first sign-in has no user id to bind them to: nothing is stored then (`needs_connect`), and the
//! user's tokens come from the connect flow instead.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::claims::microsoft::{jwt_expiry, token_metadata};
use crate::config::{Config, MsTokenConfig};
use crate::contract::json::{self, is_null};
use crate::contract::response::{Carried, Metadata};
use crate::port::{Clock, Crypto, Http, Random, Timer};
use crate::runtime::deadline::timeout_at;
use crate::upstream::zitadel::ZitadelClient;
use crate::upstream::UpstreamError;

/// What the log says of a first sign-in with a sealing key: no user id to seal for, so nothing is
/// stored, and the user connects Microsoft at the worker instead.
pub const NEEDS_CONNECT: &str = "needs_connect";

/// What the log says when the tokens went into the request that updates a linked user
/// (`updateUser.metadata`) instead of through the API.
pub const ADDED_TO_UPDATE: &str = "added_to_update";

/// The API method whose response carries the identity provider's tokens.
pub const METHOD: &str = "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent";

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct IntentResponse<'a> {
    /// The ZITADEL user linked to the external identity; absent for a user yet to be created.
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    idp_information: Option<IdpInformation<'a>>,
    /// The AddHumanUserRequest Login V2 creates a new user with (older versions).
    #[serde(borrow)]
    add_human_user: Option<&'a RawValue>,
    /// The CreateUserRequest Login V2 creates a new user with (newer versions).
    #[serde(borrow)]
    create_user: Option<&'a RawValue>,
    /// The UpdateUserRequest Login V2 updates a linked user with (newer versions).
    #[serde(borrow)]
    update_user: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct IdpInformation<'a> {
    #[serde(borrow)]
    idp_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    oauth: Option<OAuthInformation<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct OAuthInformation<'a> {
    #[serde(borrow)]
    access_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refresh_token: Option<Cow<'a, str>>,
}

/// What happened to the tokens of one sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// This many metadata entries were written for a linked user.
    Stored(usize),
    /// This many metadata entries were added to the request that creates the user.
    Added(usize),
    /// This many metadata entries were added to the request that updates the linked user; no API
    /// call was made.
    AddedToUpdate(usize),
    /// Nothing to store, for this reason.
    Skipped(&'static str),
    /// Storing failed.
    Failed(UpstreamError),
}

impl Capture {
    pub fn describe(self) -> &'static str {
        match self {
            Capture::Stored(_) => "stored",
            Capture::Added(_) => "added",
            Capture::AddedToUpdate(_) => ADDED_TO_UPDATE,
            Capture::Skipped(reason) => reason,
            Capture::Failed(e) => e.code(),
        }
    }
}

/// What to do with the tokens of one sign-in.
#[cfg_attr(test, derive(Debug))]
#[derive(PartialEq)]
pub enum Plan {
    /// Store these entries on the linked user through the API.
    Store { user_id: String, entries: Vec<Metadata> },
    /// Put these entries (sealed for the linked user when there is a sealing key) into the
    /// `metadata` of the message's `updateUser` ([`with_update_metadata`]).
    Update { user_id: String, entries: Vec<Metadata> },
    /// Answer this message instead: the response with `added` entries in its user-creating
    /// request(s).
    Answer { message: String, added: usize },
}

/// The metadata to store for one sign-in: the access token, the refresh token when there is one,
/// and the expiry (a JWT's `exp`, else `0`, which makes the worker refresh, and so learn the
/// expiry, on the next token, instead of trusting an expiry left over from an earlier sign-in).
fn token_entries(ms: &MsTokenConfig, oauth: &OAuthInformation<'_>, access: &str) -> Vec<Metadata> {
    let refresh = oauth.refresh_token.as_deref().filter(|t| !t.is_empty());
    token_metadata(ms, access, refresh, jwt_expiry(access).unwrap_or(0))
}

/// Decides what becomes of the tokens in `response` (the raw JSON of a
/// RetrieveIdentityProviderIntent answer), or why nothing does.
pub fn plan(config: &Config, response: &str) -> Result<Plan, &'static str> {
    let Some(ms) = &config.ms_token else { return Err("the Microsoft token claim is off") };
    let parsed: IntentResponse = serde_json::from_str(response).map_err(|_| "the response is not the expected JSON")?;
    let information = parsed.idp_information.unwrap_or_default();
    // Tokens of another provider must never be stored under Microsoft's keys.
    let Some(wanted) = &ms.idp_id else { return Err("the sign-in capture is off (MS_IDP_ID is not set)") };
    if information.idp_id.as_deref() != Some(wanted.as_str()) {
        return Err("another identity provider (MS_IDP_ID)");
    }
    let oauth = information.oauth.unwrap_or_default();
    let access = oauth.access_token.as_deref().filter(|t| !t.is_empty()).ok_or("no access token in the response")?;
    let entries = token_entries(ms, &oauth, access);
    if let Some(user_id) = parsed.user_id.filter(|u| !u.is_empty()) {
        let user_id = user_id.into_owned();
        // Login V2 sends `updateUser` with its metadata in one UpdateUser call; without one (older
        // versions, whose `updateHumanUser` has no metadata) the API stores the tokens.
        return Ok(match parsed.update_user.filter(|r| !is_null(r)) {
            Some(_) => Plan::Update { user_id, entries },
            None => Plan::Store { user_id, entries },
        });
    }
    // A first sign-in: into every user-creating request the message carries (Login V2 uses
    // `createUser` where there is one, `addHumanUser` otherwise).
    let mut edits = Vec::new();
    if let Some(request) = parsed.add_human_user.filter(|r| !is_null(r)) {
        edits.push(metadata_edit(response, request, &entries, Lists::TopLevel, NOT_A_USER_TO_CREATE)?);
    }
    if let Some(request) = parsed.create_user.filter(|r| !is_null(r)) {
        edits.push(metadata_edit(response, request, &entries, Lists::OrDeprecatedHuman, NOT_A_USER_TO_CREATE)?);
    }
    if edits.is_empty() {
        return Err("no linked user, and no user to create in the response");
    }
    let added = entries.len() * edits.len();
    Ok(Plan::Answer { message: apply(response, edits), added })
}

const NOT_A_USER_TO_CREATE: &str = "the user to create is not the expected JSON";
const NOT_A_USER_TO_UPDATE: &str = "the user to update is not the expected JSON";

/// `response` (a RetrieveIdentityProviderIntent answer whose `updateUser` is an object) with
/// `entries` in that request's `metadata`, and otherwise byte for byte as received. The list is
/// UpdateUserRequest's top-level `metadata` (`repeated Metadata metadata = 5`): its `human` has
/// none, and protojson would refuse one there.
pub fn with_update_metadata(response: &str, entries: &[Metadata]) -> Result<String, &'static str> {
    let parsed: IntentResponse = serde_json::from_str(response).map_err(|_| "the response is not the expected JSON")?;
    let request = parsed.update_user.filter(|r| !is_null(r)).ok_or("no user to update in the response")?;
    let edit = metadata_edit(response, request, entries, Lists::TopLevel, NOT_A_USER_TO_UPDATE)?;
    Ok(apply(response, vec![edit]))
}

/// `message` with `edits` made (they do not overlap).
fn apply(message: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| edit.at);
    let mut out = String::with_capacity(message.len() + edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut copied = 0;
    for edit in &edits {
        out.push_str(&message[copied..edit.at]);
        out.push_str(&edit.text);
        copied = edit.at + edit.replaces;
    }
    out.push_str(&message[copied..]);
    out
}

/// Which `metadata` lists a request has in its proto.
#[derive(Clone, Copy, PartialEq)]
enum Lists {
    /// One, at the top: AddHumanUserRequest, UpdateUserRequest.
    TopLevel,
    /// At the top, and, deprecated, in `human`: CreateUserRequest.
    OrDeprecatedHuman,
}

/// Replace `replaces` bytes of the message at byte `at` with `text`.
struct Edit {
    at: usize,
    replaces: usize,
    text: String,
}

/// Where `part` (borrowed from `message`) starts in it.
fn offset(message: &str, part: &str) -> usize {
    part.as_ptr() as usize - message.as_ptr() as usize
}

/// The edit that puts `entries` into the `metadata` list of a user-creating or user-updating
/// `request` (an object within `message`): its own entries of other keys first, then ours
/// (replacing any of the same key). A CreateUserRequest may hold its metadata at the top or,
/// deprecated, in `human` (ZITADEL refuses both at once), so there the list that has entries is
/// the one extended. `not_a_request` is the reason given when `request` is not of that shape.
fn metadata_edit(
    message: &str,
    request: &RawValue,
    entries: &[Metadata],
    lists: Lists,
    not_a_request: &'static str,
) -> Result<Edit, &'static str> {
    let found = json::members(request, &["metadata", "human"]).ok_or(not_a_request)?;
    let (metadata, human) = (found[0], found[1]);
    let has_entries = |list: Option<&RawValue>| list.is_some_and(|l| !matches!(l.get(), "null" | "[]"));
    let mut target = (request, metadata);
    if lists == Lists::OrDeprecatedHuman && !has_entries(metadata) {
        if let Some(human) = human.filter(|h| !is_null(h)) {
            let human_metadata = json::members(human, &["metadata"]).ok_or(not_a_request)?[0];
            if has_entries(human_metadata) {
                target = (human, human_metadata);
            }
        }
    }
    // The list: its entries of other keys as they are, then ours.
    let mut kept = Vec::new();
    if let Some(theirs) = target.1.filter(|l| !is_null(l)) {
        let theirs: Vec<&RawValue> = serde_json::from_str(theirs.get()).map_err(|_| not_a_request)?;
        for entry in theirs {
            let key = json::members(entry, &["key"]).ok_or(not_a_request)?[0];
            let key = key.and_then(|k| serde_json::from_str::<Cow<str>>(k.get()).ok());
            if !entries.iter().any(|e| Some(e.key.as_str()) == key.as_deref()) {
                kept.push(entry);
            }
        }
    }
    let list = serde_json::to_string(&Carried { earlier: &kept, own: entries.iter() }).map_err(|_| not_a_request)?;
    Ok(match target {
        (_, Some(old)) => Edit { at: offset(message, old.get()), replaces: old.get().len(), text: list },
        (object, None) => {
            let text = object.get();
            let empty = text[1..text.len() - 1].trim().is_empty();
            // Just before the object's closing brace.
            let at = offset(message, text) + text.len() - 1;
            Edit { at, replaces: 0, text: format!("{}\"metadata\":{list}", if empty { "" } else { "," }) }
        }
    })
}

/// Captures the tokens of `response` (the raw JSON of a RetrieveIdentityProviderIntent answer)
/// with `zitadel`, the API client (present when the API is configured).
/// Returns what happened and, where the tokens went into the message, the message to answer
/// instead of `response`.
pub async fn capture<R: Http + Clock + Timer + Crypto + Random>(
    config: &Config,
    zitadel: Option<&ZitadelClient>,
    runtime: &R,
    response: &str,
    deadline_ms: u64,
) -> (Capture, Option<String>) {
    let (user_id, entries, in_update) = match plan(config, response) {
        Ok(Plan::Store { user_id, entries }) => (user_id, entries, false),
        Ok(Plan::Update { user_id, entries }) => (user_id, entries, true),
        Ok(Plan::Answer { .. }) if config.sealing.is_some() => return (Capture::Skipped(NEEDS_CONNECT), None),
        Ok(Plan::Answer { message, added }) => return (Capture::Added(added), Some(message)),
        Err(reason) => return (Capture::Skipped(reason), None),
    };
    let entries = match &config.sealing {
        Some(keys) => match crate::claims::microsoft::seal_entries(runtime, keys, &user_id, entries).await {
            Some(sealed) => sealed,
            None => return (Capture::Skipped("the runtime could not seal the tokens"), None),
        },
        None => entries,
    };
    let message = match in_update {
        false => None,
        true => match with_update_metadata(response, &entries) {
            Ok(message) => Some(message),
            Err(reason) => return (Capture::Skipped(reason), None),
        },
    };
    // Login V2 applies `updateUser` only when the identity provider's automatic update is on
    // (apps/login/src/lib/server/idp-intent.ts, `isAutoUpdate`), and Login V2 before #12433 not at
    // all: with the API at hand the tokens are stored through it too, so that no sign-in loses them.
    let Some(zitadel) = zitadel else {
        return match message {
            Some(message) => (Capture::AddedToUpdate(entries.len()), Some(message)),
            None => (Capture::Skipped("no ZITADEL API settings (ZITADEL_DOMAIN)"), None),
        };
    };
    let store = zitadel.set_user_metadata(runtime, &user_id, &entries);
    let capture = match timeout_at(runtime, deadline_ms, store).await.unwrap_or(Err(UpstreamError::Timeout)) {
        Ok(()) => Capture::Stored(entries.len()),
        Err(e) => Capture::Failed(e),
    };
    (capture, message)
}

#[cfg(test)]
mod tests;
