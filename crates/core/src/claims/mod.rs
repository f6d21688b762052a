//! The claims of one call: permissions (roles mapped through organization metadata, cached),
//! flat roles and groups (from the payload alone), and the Microsoft access token (from the
//! user's metadata). Upstream work is bounded by `UPSTREAM_TIMEOUT_MS`; what fails is omitted or
//! fails the call, as `ON_UPSTREAM_ERROR` says.

pub mod lookup;
pub mod microsoft;
pub mod permission_cache;
pub mod permissions;
pub mod roles;

use std::cell::RefCell;

use futures_util::future::join;

use self::lookup::PermissionLookup;
use self::microsoft::{Outcome, Refresher, Stored};
use self::permission_cache::{PermissionCache, PermissionFlights};
use crate::config::{Config, ImpersonationPolicy, MsTokenClients, MsTokenConfig, UpstreamPolicy};
use crate::contract::chain::Earlier;
use crate::contract::payload::{ContextInfo, Function};
use crate::contract::response::{Claim, ClaimValue, ContextInfoResponse, StrList};
use crate::port::{Clock, Crypto, Http, Random, SharedCache, Timer};
use crate::runtime::deadline::{timeout, SAFETY_MARGIN_MS};
use crate::runtime::single_flight::SingleFlight;
use crate::trace::Trace;
use crate::upstream::microsoft::MicrosoftClient;
use crate::upstream::zitadel::ZitadelClient;
use crate::upstream::UpstreamError;

/// What the claims keep per isolate: the permission cache and the single flights that fill it,
/// and the Microsoft token refresher (when refresh is configured).
pub struct ClaimsCache {
    pub permissions: RefCell<PermissionCache>,
    pub flights: PermissionFlights,
    pub refresher: Option<Refresher>,
}

impl ClaimsCache {
    /// The cache of an isolate running with `config`, whose requests' upstream work ends within
    /// `live_for_ms` (see [`SingleFlight::new`]).
    pub fn new(config: &Config, live_for_ms: u64) -> Self {
        let refresh = config.ms_token.as_ref().and_then(|ms| ms.refresh.clone());
        ClaimsCache {
            permissions: RefCell::new(PermissionCache::new(
                config.permissions.as_ref().map_or(0, |p| p.cache_max_bytes),
            )),
            flights: SingleFlight::new(live_for_ms),
            refresher: refresh.map(|r| Refresher::new(MicrosoftClient::new(r), live_for_ms)),
        }
    }
}

/// A verified call to build claims for: its function, its payload, and what the earlier targets
/// of the execution gave.
pub struct Call<'a> {
    pub function: Function,
    pub info: &'a ContextInfo<'a>,
    pub earlier: Earlier,
}

/// True (and noted in `trace`) when an earlier target already gave the claim `name`: its value
/// stays.
fn taken(call: &Call<'_>, name: &str, trace: &mut Trace) -> bool {
    let taken = call.earlier.has(call.function, name);
    if taken {
        trace.notes.push(format!("key {name:?} already exists (an earlier target gave it)").into());
    }
    taken
}

impl ClaimsCache {
    /// Builds the answer to `call`, after what the earlier targets of the execution gave: a claim
    /// (or SAML attribute) an earlier target already gave is left to it. The permissions lookup
    /// (through `zitadel`) and the Microsoft token refresh run side by side, each bounded by
    /// `UPSTREAM_TIMEOUT_MS`. Fails only when the permissions cannot be read and
    /// `ON_UPSTREAM_ERROR=fail`. The trace says what was given, left out and why.
    pub async fn build<R: Http + Clock + Timer + SharedCache + Crypto + Random>(
        &self,
        config: &Config,
        zitadel: Option<&ZitadelClient>,
        runtime: &R,
        call: Call<'_>,
    ) -> (Result<ContextInfoResponse, UpstreamError>, Trace) {
        let (function, info) = (call.function, call.info);
        let mut response = ContextInfoResponse::default();
        let grants = info.user_grants.as_deref().unwrap_or_default();
        let now_ms = runtime.now_ms();
        let deadline = now_ms + config.upstream_timeout_ms;
        let bound = config.upstream_timeout_ms + SAFETY_MARGIN_MS;
        let mut trace = Trace { earlier_entries: call.earlier.len(), ..Trace::default() };

        let (ms_call, ms_trace) = ms_token_for_call(config, &call);
        trace.absorb(ms_trace);
        let ms_token = async {
            let ms = ms_call?;
            let sealing = config.sealing.as_ref();
            let (stored, notes) = microsoft::read_stored(runtime, sealing, ms, info).await;
            let work =
                microsoft::token_claim(runtime, self.refresher.as_ref(), ms, stored, (now_ms / 1000) as i64, deadline);
            let mut outcome = timeout(runtime, bound, work).await.unwrap_or(Outcome::Omit("timeout"));
            // What a refresh writes back is sealed like everything the worker stores.
            if let (Outcome::Token { write_back, .. }, Some(keys)) = (&mut outcome, sealing) {
                if !write_back.is_empty() {
                    let entries = std::mem::take(write_back);
                    let sealed = match info.user_id() {
                        Some(user) => microsoft::seal_entries(runtime, keys, user, entries).await,
                        None => None,
                    };
                    *write_back = sealed.unwrap_or_default();
                }
            }
            Some((ms, outcome, notes))
        };
        // The roles the permissions claim counts (all, or those of PERMISSIONS_PROJECT_ID).
        let roles = match &config.permissions {
            Some(p) => roles::roles(grants, p.project_id.as_deref()),
            None => Vec::new(),
        };
        let skip_permissions =
            config.permissions.as_ref().is_some_and(|p| !roles.is_empty() && taken(&call, &p.claim, &mut trace));
        // IMPERSONATION_PERMISSIONS=omit: an impersonator's token carries no permissions.
        let impersonated_omit = info.actor.is_some() && config.impersonation_permissions == ImpersonationPolicy::Omit;
        let skip_permissions = match (&config.permissions, impersonated_omit && !roles.is_empty()) {
            (Some(p), true) if !skip_permissions => {
                trace.notes.push("permissions: the token is issued to someone impersonating the user".into());
                trace.omit(&p.claim, "the token is issued to someone impersonating the user");
                true
            }
            _ => skip_permissions,
        };
        let permissions = async {
            if skip_permissions {
                return (Ok(None), Trace::default());
            }
            self.permissions_claim(config, zitadel, runtime, info, &roles, deadline).await
        };
        let ((permissions, permissions_trace), ms_token) = join(permissions, ms_token).await;
        trace.absorb(permissions_trace);
        match permissions {
            Ok(claim) => response.append_claims.extend(claim),
            Err(e) => return (Err(e), trace),
        }

        if let Some(claim) =
            config.flat_roles_claim.as_deref().filter(|c| !grants.is_empty() && !taken(&call, c, &mut trace))
        {
            match roles::flat_roles(grants) {
                Some(flat) => push_list(&mut response, claim, flat),
                None => {
                    trace.notes.push("flat roles: more than 1 MiB".into());
                    trace.omit(claim, "more than 1 MiB");
                }
            }
        }
        if let Some(claim) =
            config.groups_claim.as_deref().filter(|c| !grants.is_empty() && !taken(&call, c, &mut trace))
        {
            let all_roles = match &config.permissions {
                Some(p) if p.project_id.is_none() && !roles.is_empty() => roles,
                _ => roles::roles(grants, None),
            };
            push_list(&mut response, claim, all_roles.into_iter().collect());
        }
        if let Some((ms, outcome, notes)) = ms_token {
            trace.notes.extend(notes.into_iter().map(Into::into));
            match outcome {
                Outcome::Absent => {}
                Outcome::Token { token, write_back, refreshed } => {
                    trace.ms_token = Some(if refreshed { "refreshed" } else { "passed" });
                    response.append_claims.push(Claim { key: ms.claim.clone(), value: ClaimValue::Text(token) });
                    response.set_user_metadata.extend(write_back);
                }
                Outcome::Stale { token, failure } => {
                    trace.ms_token = Some("stale");
                    trace.notes.push(failure.into());
                    response.append_claims.push(Claim { key: ms.claim.clone(), value: ClaimValue::Text(token) });
                }
                Outcome::Omit(reason) => {
                    trace.ms_token = Some("omitted");
                    trace.notes.push(reason.into());
                    trace.omit(&ms.claim, reason);
                }
            }
        }

        if function == Function::PreSamlResponse {
            // SAML answers carry attributes, and have no place for log lines.
            response.append_attribute = std::mem::take(&mut response.append_claims);
        } else if config.log_claims {
            response.append_log_claims = trace.log_claims();
        }
        trace.claims = response.claim_keys().into_iter().map(str::to_string).collect();
        response.earlier = call.earlier;
        (Ok(response), trace)
    }

    /// The permissions claim, if there is one to give. `Err` only under `ON_UPSTREAM_ERROR=fail`.
    async fn permissions_claim<R: Http + Clock + Timer + SharedCache>(
        &self,
        config: &Config,
        zitadel: Option<&ZitadelClient>,
        runtime: &R,
        info: &ContextInfo<'_>,
        roles: &[&str],
        deadline_ms: u64,
    ) -> (Result<Option<Claim>, UpstreamError>, Trace) {
        // Permissions are configured only with the API (`Config::permissions` has its settings).
        let (Some(settings), Some(zitadel)) = (&config.permissions, zitadel) else {
            return (Ok(None), Trace::default());
        };
        let mut trace = Trace { roles: roles.len(), ..Trace::default() };
        if roles.is_empty() {
            return (Ok(None), trace); // no roles, no call
        }
        let Some(org) = settings.org_id.as_deref().or(info.org_id()) else {
            trace.notes.push("permissions: the payload names no organization".into());
            return (Ok(None), trace);
        };
        let (cache, flights) = (&self.permissions, &self.flights);
        let lookup = PermissionLookup { config, settings, cache, flights, zitadel, runtime, org_id: org, deadline_ms };
        let bound = config.upstream_timeout_ms + SAFETY_MARGIN_MS;
        let (result, lookup_trace) = timeout(runtime, bound, lookup.permission_map())
            .await
            .unwrap_or((Err(UpstreamError::Timeout), Trace::default()));
        trace.absorb(lookup_trace);
        match result {
            Ok(map) if map.is_empty() => {
                // With v2, a service user without org.read gets an empty list, not a 403.
                trace.notes.push("empty_mapping".into());
                trace.omit(&settings.claim, "the organization's mapping is empty (or unreadable without org.read)");
                (Ok(None), trace)
            }
            Ok(map) => {
                let list = map.permissions(roles);
                // Each permission as a JSON string and a comma: about the claim's size.
                let bytes: usize = list.iter().map(|p| p.len() + 3).sum();
                if bytes > settings.claim_max_bytes {
                    trace.notes.push(format!("permissions: more than {} bytes", settings.claim_max_bytes).into());
                    trace.omit(&settings.claim, "more than PERMISSIONS_CLAIM_MAX_BYTES");
                    return (Ok(None), trace);
                }
                let claim =
                    (!list.is_empty()).then(|| Claim { key: settings.claim.clone(), value: ClaimValue::Shared(list) });
                (Ok(claim), trace)
            }
            // A tenant's mapping over its budget is left out whatever ON_UPSTREAM_ERROR says: it is
            // no outage, and it must not fail every token of that organization.
            Err(UpstreamError::MappingTooLarge) => {
                trace.upstream_error = Some(UpstreamError::MappingTooLarge.code());
                trace.notes.push(
                    format!("permissions: the mapping holds more than {} bytes", settings.mapping_max_bytes).into(),
                );
                trace.omit(&settings.claim, "the mapping is over PERMISSIONS_MAPPING_MAX_BYTES");
                (Ok(None), trace)
            }
            Err(e) => {
                trace.upstream_error = Some(e.code());
                if config.on_upstream_error == UpstreamPolicy::Fail {
                    return (Err(e), trace);
                }
                trace.omit(&settings.claim, format!("ZITADEL API {}", e.code()));
                (Ok(None), trace)
            }
        }
    }
}

/// The Microsoft token settings and what the user's metadata holds, when this call is one the
/// token goes into: an access token (or userinfo, with `MS_TOKEN_IN_USERINFO`; never SAML), a
/// token is stored, no earlier target gave the claim, and `MS_TOKEN_CLIENT_IDS` is `*` or lists
/// the client the payload names. The trace says what keeps a stored token out.
fn ms_token_for_call<'c>(config: &'c Config, call: &Call<'_>) -> (Option<&'c MsTokenConfig>, Trace) {
    let mut trace = Trace::default();
    let Some(ms) = config.ms_token.as_ref() else { return (None, trace) };
    let goes_into = match call.function {
        Function::PreAccessToken => true,
        Function::PreUserinfo => ms.in_userinfo,
        Function::PreSamlResponse => false,
    };
    if !goes_into {
        return (None, trace);
    }
    if !Stored::present(call.info, ms) || taken(call, &ms.claim, &mut trace) {
        return (None, trace);
    }
    // An impersonator never gets the user's Microsoft token, whatever the client.
    if call.info.actor.is_some() {
        trace.ms_token = Some("impersonated");
        trace.omit(&ms.claim, "the token is issued to someone impersonating the user");
        return (None, trace);
    }
    match &ms.clients {
        // Off: /healthz says so, and no call notes it.
        None => return (None, trace),
        Some(MsTokenClients::All) => {}
        Some(MsTokenClients::Only(clients)) => {
            let Some(client) = call.info.client_id() else {
                const WHY: &str =
                    "the payload names no application (older ZITADEL), and MS_TOKEN_CLIENT_IDS lists clients";
                trace.ms_token = Some("omitted");
                trace.notes.push(WHY.into());
                trace.omit(&ms.claim, WHY);
                return (None, trace);
            };
            if !clients.iter().any(|c| c == client) {
                trace.ms_token = Some("other_client");
                return (None, trace);
            }
        }
    }
    (Some(ms), trace)
}

fn push_list(response: &mut ContextInfoResponse, key: &str, values: StrList) {
    if !values.is_empty() {
        response.append_claims.push(Claim { key: key.to_string(), value: ClaimValue::List(values) });
    }
}

#[cfg(test)]
mod tests;
