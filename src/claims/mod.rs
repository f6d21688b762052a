//! The claims of one call: permissions (roles mapped through organization metadata, cached),
//! flat roles and groups (from the payload alone), and the Microsoft access token (from the
//! user's metadata). Upstream work is bounded by `UPSTREAM_TIMEOUT_MS`; what fails is omitted or
//! fails the call, as `ON_UPSTREAM_ERROR` says.

pub mod microsoft;
pub mod permission_cache;
pub mod permissions;

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::join;

use self::microsoft::{Outcome, Refresher, Stored};
use self::permission_cache::{shared_key, Cached, MetadataCache, SharedEntry};
use self::permissions::PermissionMap;
use crate::config::{Config, MsTokenConfig, PermissionsConfig, UpstreamPolicy};
use crate::contract::chain::Earlier;
use crate::contract::payload::{ContextInfo, Function};
use crate::contract::response::{Claim, ClaimValue, ContextInfoResponse, StrList};
use crate::error::Error;
use crate::log::RequestLog;
use crate::runtime::deadline::{before, flight_lifetime_ms, with_deadline, SAFETY_MARGIN_MS};
use crate::runtime::single_flight::SingleFlight;
use crate::runtime::Platform;
use crate::upstream::zitadel::{self, Session, UpstreamError};

/// KV refuses expirations under 60 s.
const SHARED_CACHE_MIN_TTL_SECONDS: u64 = 60;

/// State shared by all requests of one isolate.
#[derive(Default)]
pub struct Isolate {
    pub metadata: RefCell<MetadataCache>,
    pub flights: SingleFlight<Result<Rc<PermissionMap>, UpstreamError>>,
    pub session: Session,
    pub refresher: Refresher,
}

impl Isolate {
    /// The state of an isolate running with `config`: every request's upstream work ends within
    /// `UPSTREAM_TIMEOUT_MS` plus a margin, so a single flight running longer was abandoned.
    pub fn new(config: &Config) -> Self {
        let live_for_ms = flight_lifetime_ms(config.upstream_timeout_ms);
        Isolate {
            metadata: RefCell::default(),
            flights: SingleFlight::new(live_for_ms),
            session: Session::new(live_for_ms),
            refresher: Refresher::new(live_for_ms),
        }
    }
}

/// Builds the answer to a verified call, after what the earlier targets of the execution gave
/// (`earlier`): a claim (or SAML attribute) an earlier target already gave is left to it. The
/// permissions lookup and the Microsoft token refresh run side by side, each bounded by
/// `UPSTREAM_TIMEOUT_MS`.
#[allow(clippy::too_many_arguments)]
pub async fn build<P: Platform>(
    config: &Config,
    isolate: &Isolate,
    platform: &P,
    function: Function,
    info: &ContextInfo<'_>,
    earlier: Earlier,
    log: &mut RequestLog,
) -> Result<ContextInfoResponse, Error> {
    let mut response = ContextInfoResponse::default();
    let grants = info.user_grants.as_deref().unwrap_or_default();
    let now_ms = platform.now_ms();
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
        let work = microsoft::token_claim(platform, &isolate.refresher, ms, stored, (now_ms / 1000) as i64, deadline);
        Some((ms, with_deadline(platform, bound, work).await.unwrap_or(Outcome::Omit("timeout"))))
    };
    // The roles the permissions claim counts (all, or those of PERMISSIONS_PROJECT_ID).
    let roles = match &config.permissions {
        Some(p) => permissions::roles(grants, p.project_id.as_deref()),
        None => Vec::new(),
    };
    let skip_permissions = config.permissions.as_ref().is_some_and(|p| !roles.is_empty() && taken(&p.claim, log));
    let permissions = async {
        if skip_permissions {
            return Ok(None);
        }
        permissions_claim(config, isolate, platform, info, &roles, deadline, log, &mut response.append_log_claims).await
    };
    let (permissions, ms_token) = join(permissions, ms_token).await;

    if let Some(claim) = permissions? {
        response.append_claims.push(claim);
    }
    if let Some(claim) = config.flat_roles_claim.as_deref().filter(|c| !grants.is_empty() && !taken(c, log)) {
        match permissions::flat_roles(grants) {
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
            _ => permissions::roles(grants, None),
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
#[allow(clippy::too_many_arguments)]
async fn permissions_claim<P: Platform>(
    config: &Config,
    isolate: &Isolate,
    platform: &P,
    info: &ContextInfo<'_>,
    roles: &[&str],
    deadline: u64,
    log: &mut RequestLog,
    log_claims: &mut Vec<String>,
) -> Result<Option<Claim>, Error> {
    let Some(settings) = &config.permissions else { return Ok(None) };
    log.roles = roles.len();
    if roles.is_empty() {
        return Ok(None); // no roles, no call
    }
    let Some(org) = settings.org_id.as_deref().or(info.org_id()) else {
        log.notes.push("permissions: the payload names no organization".into());
        return Ok(None);
    };
    let lookup = Lookup { config, settings, isolate, platform, org_id: org, deadline };
    let work = lookup.map(log);
    let bound = config.upstream_timeout_ms + SAFETY_MARGIN_MS;
    let result = with_deadline(platform, bound, work).await.unwrap_or(Err(UpstreamError::Timeout));
    match result {
        Ok(map) => {
            let list = map.permissions(roles);
            Ok((!list.is_empty()).then(|| Claim { key: settings.claim.clone(), value: ClaimValue::Shared(list) }))
        }
        Err(e) => {
            log.upstream_error = Some(e.code());
            if config.on_upstream_error == UpstreamPolicy::Fail {
                return Err(Error::UpstreamUnavailable(e));
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

/// Looking up one organization's role → permissions map for one call.
struct Lookup<'a, P> {
    config: &'a Config,
    settings: &'a PermissionsConfig,
    isolate: &'a Isolate,
    platform: &'a P,
    org_id: &'a str,
    /// When upstream work stops (Unix milliseconds).
    deadline: u64,
}

impl<P: Platform> Lookup<'_, P> {
    /// From the isolate's cache when fresh, else from KV when fresh, else from ZITADEL, shared by
    /// concurrent requests for the same organization. On an upstream failure (a timeout at the
    /// deadline included), a map within the stale-if-error window (in memory or KV) is used
    /// instead.
    async fn map(&self, log: &mut RequestLog) -> Result<Rc<PermissionMap>, UpstreamError> {
        let (config, isolate) = (self.config, self.isolate);
        let ttl_ms = config.cache_ttl_seconds * 1000;
        let stale_ms = config.stale_if_error_seconds * 1000;
        let cached = isolate.metadata.borrow_mut().lookup(self.org_id, self.platform.now_ms(), ttl_ms, stale_ms);
        if let Cached::Fresh(map) = cached {
            log.cache = Some("hit");
            return Ok(map);
        }

        let (result, source) = if ttl_ms == 0 {
            (Box::pin(self.load(log)).await.map(|(map, _)| map), "off")
        } else {
            // Where the map came from, if this call led the flight; a waiter got it "shared".
            let led = std::cell::Cell::new(None);
            let result = Box::pin(isolate.flights.run(self.platform, self.org_id, || async {
                let loaded = self.load(log).await;
                led.set(loaded.as_ref().ok().map(|(_, source)| *source));
                loaded.map(|(map, _)| map)
            }))
            .await;
            (result, led.get().unwrap_or("shared"))
        };
        match (result, cached) {
            (Ok(map), _) => {
                log.cache = Some(source);
                Ok(map)
            }
            (Err(e), Cached::Stale(map)) => {
                log.cache = Some("stale");
                log.upstream_error = Some(e.code());
                Ok(map)
            }
            (Err(e), _) => Err(e),
        }
    }

    /// KV (if fresh), else ZITADEL, each stopped at the deadline. Returns the map and where it
    /// came from.
    async fn load(&self, log: &mut RequestLog) -> Result<(Rc<PermissionMap>, &'static str), UpstreamError> {
        let (config, settings, isolate, platform, org_id) =
            (self.config, self.settings, self.isolate, self.platform, self.org_id);
        let ttl_ms = config.cache_ttl_seconds * 1000;
        let keep_ms = ttl_ms + config.stale_if_error_seconds * 1000;
        let key = shared_key(org_id, &settings.metadata_prefix);
        let shared = if ttl_ms > 0 {
            before(platform, self.deadline, platform.cache_get(&key))
                .await
                .flatten()
                .and_then(|text| serde_json::from_str::<SharedEntry>(&text).ok())
        } else {
            None
        };
        let now = platform.now_ms();
        if let Some(entry) = &shared {
            if now.saturating_sub(entry.fetched_at_ms) < ttl_ms {
                let map = Rc::new(PermissionMap::from_roles(entry.roles.clone()));
                isolate.metadata.borrow_mut().store(org_id, map.clone(), entry.fetched_at_ms, now, keep_ms);
                return Ok((map, "kv"));
            }
        }

        let fetch = zitadel::org_metadata(platform, &settings.api, &isolate.session, org_id, &settings.metadata_prefix);
        match before(platform, self.deadline, fetch).await.unwrap_or(Err(UpstreamError::Timeout)) {
            Ok(entries) => {
                let (map, skipped) = PermissionMap::from_metadata(
                    entries.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
                    &settings.metadata_prefix,
                );
                log.skipped_metadata_keys = skipped.into_iter().map(|s| format!("{} ({})", s.key, s.reason)).collect();
                let map = Rc::new(map);
                let fetched_at = platform.now_ms();
                isolate.metadata.borrow_mut().store(org_id, map.clone(), fetched_at, fetched_at, keep_ms);
                if ttl_ms > 0 {
                    let entry = SharedEntry { fetched_at_ms: fetched_at, roles: map.roles() };
                    if let Ok(text) = serde_json::to_string(&entry) {
                        let ttl = (keep_ms / 1000).max(SHARED_CACHE_MIN_TTL_SECONDS);
                        platform.cache_put(&key, text, ttl).await;
                    }
                }
                Ok((map, "miss"))
            }
            Err(e) => match shared {
                Some(entry) if now.saturating_sub(entry.fetched_at_ms) < keep_ms => {
                    log.upstream_error = Some(e.code());
                    Ok((Rc::new(PermissionMap::from_roles(entry.roles)), "stale"))
                }
                _ => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests;
