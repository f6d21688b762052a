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
use crate::config::{Config, MsTokenConfig, UpstreamPolicy};
use crate::contract::chain::Earlier;
use crate::contract::payload::{ContextInfo, Function};
use crate::contract::response::{Claim, ClaimValue, ContextInfoResponse, StrList};
use crate::log::RequestLog;
use crate::port::{Clock, Http, SharedCache, Timer};
use crate::runtime::deadline::{timeout, SAFETY_MARGIN_MS};
use crate::runtime::single_flight::SingleFlight;
use crate::upstream::zitadel::ZitadelClient;
use crate::upstream::UpstreamError;

/// What the claims keep per isolate: the permission cache and the single flights that fill it,
/// and the Microsoft token refresher.
#[derive(Default)]
pub struct ClaimsCache {
    pub permissions: RefCell<PermissionCache>,
    pub flights: PermissionFlights,
    pub refresher: Refresher,
}

impl ClaimsCache {
    /// The cache of an isolate whose requests' upstream work ends within `live_for_ms` (see
    /// [`SingleFlight::new`]).
    pub fn new(live_for_ms: u64) -> Self {
        ClaimsCache {
            permissions: RefCell::default(),
            flights: SingleFlight::new(live_for_ms),
            refresher: Refresher::new(live_for_ms),
        }
    }
}

/// Builds the answer to a verified call, after what the earlier targets of the execution gave
/// (`earlier`): a claim (or SAML attribute) an earlier target already gave is left to it. The
/// permissions lookup and the Microsoft token refresh run side by side, each bounded by
/// `UPSTREAM_TIMEOUT_MS`. Fails only when the permissions cannot be read and
/// `ON_UPSTREAM_ERROR=fail`.
#[allow(clippy::too_many_arguments)]
pub async fn build<R: Http + Clock + Timer + SharedCache>(
    config: &Config,
    cache: &ClaimsCache,
    zitadel: &ZitadelClient,
    runtime: &R,
    function: Function,
    info: &ContextInfo<'_>,
    earlier: Earlier,
    log: &mut RequestLog,
) -> Result<ContextInfoResponse, UpstreamError> {
    let mut response = ContextInfoResponse::default();
    let grants = info.user_grants.as_deref().unwrap_or_default();
    let now_ms = runtime.now_ms();
    let deadline = now_ms + config.upstream_timeout_ms;
    let bound = config.upstream_timeout_ms + SAFETY_MARGIN_MS;
    log.earlier_entries = earlier.len();
    // True (and noted) when an earlier target already gave this claim: its value stays.
    let taken = |name: &str, log: &mut RequestLog| {
        let taken = earlier.has(function, name);
        if taken {
            log.notes.push(format!("key {name:?} already exists (an earlier target gave it)").into());
        }
        taken
    };

    let ms_call = ms_token_for_call(config, function, info, log, &mut response.append_log_claims, taken);
    let ms_token = async {
        let (ms, stored) = ms_call?;
        let work = microsoft::token_claim(runtime, &cache.refresher, ms, stored, (now_ms / 1000) as i64, deadline);
        Some((ms, timeout(runtime, bound, work).await.unwrap_or(Outcome::Omit("timeout"))))
    };
    // The roles the permissions claim counts (all, or those of PERMISSIONS_PROJECT_ID).
    let roles = match &config.permissions {
        Some(p) => roles::roles(grants, p.project_id.as_deref()),
        None => Vec::new(),
    };
    let skip_permissions = config.permissions.as_ref().is_some_and(|p| !roles.is_empty() && taken(&p.claim, log));
    let permissions = async {
        if skip_permissions {
            return Ok(None);
        }
        let (log_claims, lookup) = (&mut response.append_log_claims, (cache, zitadel, runtime));
        permissions_claim(config, lookup, info, &roles, deadline, log, log_claims).await
    };
    let (permissions, ms_token) = join(permissions, ms_token).await;

    if let Some(claim) = permissions? {
        response.append_claims.push(claim);
    }
    if let Some(claim) = config.flat_roles_claim.as_deref().filter(|c| !grants.is_empty() && !taken(c, log)) {
        match roles::flat_roles(grants) {
            Some(flat) => push_list(&mut response, claim, flat),
            None => {
                log.notes.push("flat roles: more than 1 MiB".into());
                if config.log_claims {
                    response.append_log_claims.push(format!("{claim} omitted: more than 1 MiB"));
                }
            }
        }
    }
    if let Some(claim) = config.groups_claim.as_deref().filter(|c| !grants.is_empty() && !taken(c, log)) {
        let all_roles = match &config.permissions {
            Some(p) if p.project_id.is_none() && !roles.is_empty() => roles,
            _ => roles::roles(grants, None),
        };
        push_list(&mut response, claim, all_roles.into_iter().collect());
    }
    if let Some((ms, outcome)) = ms_token {
        match outcome {
            Outcome::Absent => {}
            Outcome::Token { token, write_back, refreshed } => {
                log.ms_token = Some(if refreshed { "refreshed" } else { "passed" });
                response.append_claims.push(Claim { key: ms.claim.clone(), value: ClaimValue::Text(token) });
                response.set_user_metadata.extend(write_back);
            }
            Outcome::Stale { token, failure } => {
                log.ms_token = Some("stale");
                log.notes.push(failure.into());
                response.append_claims.push(Claim { key: ms.claim.clone(), value: ClaimValue::Text(token) });
            }
            Outcome::Omit(reason) => {
                log.ms_token = Some("omitted");
                log.notes.push(reason.into());
                if config.log_claims {
                    response.append_log_claims.push(format!("{} omitted: {reason}", ms.claim));
                }
            }
        }
    }

    if function == Function::PreSamlResponse {
        // SAML answers carry attributes, and have no place for log lines.
        response.append_attribute = std::mem::take(&mut response.append_claims);
        response.append_log_claims.clear();
    }
    log.claims = response.claim_keys().into_iter().map(str::to_string).collect();
    response.earlier = earlier;
    Ok(response)
}

/// The Microsoft token settings and what the user's metadata holds, when this call is one the
/// token goes into: an access token (or userinfo, with `MS_TOKEN_IN_USERINFO`; never SAML), a
/// token is stored, no earlier target gave the claim, and, with `MS_TOKEN_CLIENT_IDS`, the
/// payload names one of those clients. What keeps a stored token out is logged.
fn ms_token_for_call<'c>(
    config: &'c Config,
    function: Function,
    info: &ContextInfo<'_>,
    log: &mut RequestLog,
    log_claims: &mut Vec<String>,
    taken: impl Fn(&str, &mut RequestLog) -> bool,
) -> Option<(&'c MsTokenConfig, Stored)> {
    let ms = config.ms_token.as_ref()?;
    let goes_into = match function {
        Function::PreAccessToken => true,
        Function::PreUserinfo => ms.in_userinfo,
        Function::PreSamlResponse => false,
    };
    if !goes_into {
        return None;
    }
    let stored = Stored::read(info, ms);
    if stored.is_empty() || taken(&ms.claim, log) {
        return None;
    }
    if let Some(clients) = &ms.client_ids {
        let Some(client) = info.client_id() else {
            const WHY: &str = "the payload names no application (older ZITADEL), and MS_TOKEN_CLIENT_IDS is set";
            log.ms_token = Some("omitted");
            log.notes.push(WHY.into());
            if config.log_claims {
                log_claims.push(format!("{} omitted: {WHY}", ms.claim));
            }
            return None;
        };
        if !clients.iter().any(|c| c == client) {
            log.ms_token = Some("other_client");
            return None;
        }
    }
    Some((ms, stored))
}

/// The permissions claim, if there is one to give. `Err` only under `ON_UPSTREAM_ERROR=fail`.
async fn permissions_claim<R: Http + Clock + Timer + SharedCache>(
    config: &Config,
    (cache, zitadel, runtime): (&ClaimsCache, &ZitadelClient, &R),
    info: &ContextInfo<'_>,
    roles: &[&str],
    deadline_ms: u64,
    log: &mut RequestLog,
    log_claims: &mut Vec<String>,
) -> Result<Option<Claim>, UpstreamError> {
    let Some(settings) = &config.permissions else { return Ok(None) };
    log.roles = roles.len();
    if roles.is_empty() {
        return Ok(None); // no roles, no call
    }
    let Some(org) = settings.org_id.as_deref().or(info.org_id()) else {
        log.notes.push("permissions: the payload names no organization".into());
        return Ok(None);
    };
    let (cache, flights) = (&cache.permissions, &cache.flights);
    let lookup = PermissionLookup { config, settings, cache, flights, zitadel, runtime, org_id: org, deadline_ms };
    let work = lookup.permission_map(log);
    let bound = config.upstream_timeout_ms + SAFETY_MARGIN_MS;
    let result = timeout(runtime, bound, work).await.unwrap_or(Err(UpstreamError::Timeout));
    match result {
        Ok(map) => {
            let list = map.permissions(roles);
            Ok((!list.is_empty()).then(|| Claim { key: settings.claim.clone(), value: ClaimValue::Shared(list) }))
        }
        Err(e) => {
            log.upstream_error = Some(e.code());
            if config.on_upstream_error == UpstreamPolicy::Fail {
                return Err(e);
            }
            if config.log_claims {
                log_claims.push(format!("{} omitted: ZITADEL API {}", settings.claim, e.code()));
            }
            Ok(None)
        }
    }
}

fn push_list(response: &mut ContextInfoResponse, key: &str, values: StrList) {
    if !values.is_empty() {
        response.append_claims.push(Claim { key: key.to_string(), value: ClaimValue::List(values) });
    }
}

#[cfg(test)]
mod tests;
