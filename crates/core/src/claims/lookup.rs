//! Looking up one organization's role → permissions map for one call: the isolate's cache, the
//! shared cache (KV), then ZITADEL, with single flight and stale-if-error.

use std::cell::RefCell;
use std::rc::Rc;

use super::permission_cache::{shared_key, Cached, PermissionCache, PermissionFlights, SharedEntry};
use super::permissions::PermissionMap;
use crate::config::{Config, PermissionsConfig};
use crate::log::RequestLog;
use crate::port::{Clock, Http, SharedCache, Timer};
use crate::runtime::deadline::timeout_at;
use crate::upstream::zitadel::{self, ZitadelClient};
use crate::upstream::UpstreamError;

/// KV refuses expirations under 60 s.
const SHARED_CACHE_MIN_TTL_SECONDS: u64 = 60;

/// Looking up one organization's role → permissions map for one call.
pub struct PermissionLookup<'a, R> {
    pub config: &'a Config,
    pub settings: &'a PermissionsConfig,
    pub cache: &'a RefCell<PermissionCache>,
    pub flights: &'a PermissionFlights,
    pub zitadel: &'a ZitadelClient,
    pub runtime: &'a R,
    pub org_id: &'a str,
    /// When upstream work stops (Unix milliseconds).
    pub deadline_ms: u64,
}

impl<R: Http + Clock + Timer + SharedCache> PermissionLookup<'_, R> {
    /// From the isolate's cache when fresh, else from KV when fresh, else from ZITADEL, shared by
    /// concurrent requests for the same organization. On an upstream failure (a timeout at the
    /// deadline included), a map within the stale-if-error window (in memory or KV) is used
    /// instead.
    pub async fn permission_map(&self, log: &mut RequestLog) -> Result<Rc<PermissionMap>, UpstreamError> {
        let (config, cache) = (self.config, self.cache);
        let ttl_ms = config.cache_ttl_seconds * 1000;
        let stale_ms = config.stale_if_error_seconds * 1000;
        let cached = cache.borrow_mut().lookup(self.org_id, self.runtime.now_ms(), ttl_ms, stale_ms);
        if let Cached::Fresh(map) = cached {
            log.cache = Some("hit");
            return Ok(map);
        }

        let (result, source) = if ttl_ms == 0 {
            // Boxed: the fetch's future is large, and the warm path above should not carry it.
            (Box::pin(self.fetch(log)).await.map(|(map, _)| map), "off")
        } else {
            // Where the map came from, if this call led the flight; a waiter got it "shared".
            let led = std::cell::Cell::new(None);
            // Boxed, as above.
            let result = Box::pin(self.flights.run(self.runtime, self.org_id, || async {
                let loaded = self.fetch(log).await;
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
    async fn fetch(&self, log: &mut RequestLog) -> Result<(Rc<PermissionMap>, &'static str), UpstreamError> {
        let (config, settings, cache, runtime, org_id) =
            (self.config, self.settings, self.cache, self.runtime, self.org_id);
        let ttl_ms = config.cache_ttl_seconds * 1000;
        let keep_ms = ttl_ms + config.stale_if_error_seconds * 1000;
        let key = shared_key(org_id, &settings.metadata_prefix);
        let shared = if ttl_ms > 0 {
            timeout_at(runtime, self.deadline_ms, runtime.cache_get(&key))
                .await
                .flatten()
                .and_then(|text| serde_json::from_str::<SharedEntry>(&text).ok())
        } else {
            None
        };
        let now = runtime.now_ms();
        if let Some(entry) = &shared {
            if now.saturating_sub(entry.fetched_at_ms) < ttl_ms {
                let map = Rc::new(PermissionMap::from_roles(entry.roles.clone()));
                cache.borrow_mut().store(org_id, map.clone(), entry.fetched_at_ms, now, keep_ms);
                return Ok((map, "kv"));
            }
        }

        let fetch = zitadel::org_metadata(runtime, &settings.api, self.zitadel, org_id, &settings.metadata_prefix);
        match timeout_at(runtime, self.deadline_ms, fetch).await.unwrap_or(Err(UpstreamError::Timeout)) {
            Ok(entries) => {
                let (map, skipped) = PermissionMap::from_metadata(
                    entries.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
                    &settings.metadata_prefix,
                );
                log.skipped_metadata_keys = skipped.into_iter().map(|s| format!("{} ({})", s.key, s.reason)).collect();
                let map = Rc::new(map);
                let fetched_at = runtime.now_ms();
                cache.borrow_mut().store(org_id, map.clone(), fetched_at, fetched_at, keep_ms);
                if ttl_ms > 0 {
                    let entry = SharedEntry { fetched_at_ms: fetched_at, roles: map.roles() };
                    if let Ok(text) = serde_json::to_string(&entry) {
                        let ttl = (keep_ms / 1000).max(SHARED_CACHE_MIN_TTL_SECONDS);
                        runtime.cache_put(&key, text, ttl).await;
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
