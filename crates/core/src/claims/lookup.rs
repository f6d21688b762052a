//! Looking up one organization's role → permissions map for one call: the isolate's cache, the
//! shared cache (KV), then ZITADEL, with single flight and stale-if-error.

use std::cell::RefCell;
use std::rc::Rc;

use super::permission_cache::{shared_key, Cached, PermissionCache, PermissionFlights, SharedEntry};
use super::permissions::PermissionMap;
use crate::config::{Config, PermissionsConfig};
use crate::port::{Clock, Http, SharedCache, Timer};
use crate::runtime::deadline::timeout_at;
use crate::trace::Trace;
use crate::upstream::zitadel::ZitadelClient;
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

/// A map, and where it came from (a [`Trace`]'s `cache`).
type Found = (Rc<PermissionMap>, &'static str);

impl<R: Http + Clock + Timer + SharedCache> PermissionLookup<'_, R> {
    /// From the isolate's cache when fresh, else from KV when fresh, else from ZITADEL, shared by
    /// concurrent requests for the same organization. On an upstream failure (a timeout at the
    /// deadline included), a map within the stale-if-error window (in memory or KV) is used
    /// instead. The trace says where the map came from, and what failed on the way.
    pub async fn permission_map(&self) -> (Result<Rc<PermissionMap>, UpstreamError>, Trace) {
        let (config, cache) = (self.config, self.cache);
        let ttl_ms = config.cache_ttl_seconds * 1000;
        let stale_ms = config.stale_if_error_seconds * 1000;
        let cached = cache.borrow_mut().lookup(self.org_id, self.runtime.now_ms(), ttl_ms, stale_ms);
        if let Cached::Fresh(map) = cached {
            return (Ok(map), Trace { cache: Some("hit"), ..Trace::default() });
        }

        let (result, mut trace) = if ttl_ms == 0 {
            // Boxed: the fetch's future is large, and the warm path above should not carry it.
            let (result, trace) = Box::pin(self.fetch()).await;
            (result.map(|(map, _)| (map, "off")), trace)
        } else {
            // What the fetch said, if this call led the flight; a waiter got the map "shared".
            let led = RefCell::new(None);
            // Boxed, as above.
            let result = Box::pin(self.flights.run(self.runtime, self.org_id, || async {
                let (loaded, trace) = self.fetch().await;
                let map = loaded.as_ref().map(|(map, _)| map.clone()).map_err(|e| *e);
                *led.borrow_mut() = Some((loaded.map(|(_, source)| source), trace));
                map
            }))
            .await;
            match led.into_inner() {
                Some((source, trace)) => (result.map(|map| (map, source.unwrap_or("shared"))), trace),
                None => (result.map(|map| (map, "shared")), Trace::default()),
            }
        };
        match (result, cached) {
            (Ok((map, source)), _) => {
                trace.cache = Some(source);
                (Ok(map), trace)
            }
            (Err(e), Cached::Stale(map)) => {
                trace.cache = Some("stale");
                trace.upstream_error = Some(e.code());
                (Ok(map), trace)
            }
            (Err(e), _) => (Err(e), trace),
        }
    }

    /// KV (if fresh), else ZITADEL, each stopped at the deadline. Returns the map and where it
    /// came from, and what the trace needs of the way there.
    async fn fetch(&self) -> (Result<Found, UpstreamError>, Trace) {
        let (config, settings, cache, runtime, org_id) =
            (self.config, self.settings, self.cache, self.runtime, self.org_id);
        let ttl_ms = config.cache_ttl_seconds * 1000;
        let keep_ms = ttl_ms + config.stale_if_error_seconds * 1000;
        let key = shared_key(self.zitadel.base_url(), org_id, &settings.metadata_prefix);
        let shared = if ttl_ms > 0 {
            timeout_at(runtime, self.deadline_ms, runtime.cache_get(&key))
                .await
                .flatten()
                .and_then(|text| serde_json::from_str::<SharedEntry>(&text).ok())
        } else {
            None
        };
        let now = runtime.now_ms();
        // An entry stamped ahead of the clock counts as absent: it would otherwise stay fresh
        // for as long as it claims.
        let shared = shared.filter(|entry| entry.fetched_at_ms <= now);
        if let Some(entry) = &shared {
            if now - entry.fetched_at_ms < ttl_ms {
                let map = Rc::new(PermissionMap::from_roles(entry.roles.clone()));
                cache.borrow_mut().store(org_id, map.clone(), entry.fetched_at_ms, now, keep_ms);
                return (Ok((map, "kv")), Trace::default());
            }
        }

        let fetch = self.zitadel.org_metadata(runtime, org_id, &settings.metadata_prefix, settings.mapping_max_bytes);
        match timeout_at(runtime, self.deadline_ms, fetch).await.unwrap_or(Err(UpstreamError::Timeout)) {
            Ok(entries) => {
                let (map, skipped) = PermissionMap::from_metadata(
                    entries.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
                    &settings.metadata_prefix,
                );
                let skipped_metadata_keys = skipped.into_iter().map(|s| format!("{} ({})", s.key, s.reason)).collect();
                let map = Rc::new(map);
                let fetched_at = runtime.now_ms();
                cache.borrow_mut().store(org_id, map.clone(), fetched_at, fetched_at, keep_ms);
                // An empty mapping is kept briefly in memory (what a missing org.read looks like
                // with v2), never in KV, whose entries live at least a minute.
                if ttl_ms > 0 && !map.is_empty() {
                    let entry = SharedEntry { fetched_at_ms: fetched_at, roles: map.roles() };
                    if let Ok(text) = serde_json::to_string(&entry) {
                        let ttl = (keep_ms / 1000).max(SHARED_CACHE_MIN_TTL_SECONDS);
                        runtime.cache_put(&key, text, ttl).await;
                    }
                }
                (Ok((map, "miss")), Trace { skipped_metadata_keys, ..Trace::default() })
            }
            Err(e) => match shared {
                Some(entry) if now - entry.fetched_at_ms < keep_ms => {
                    let map = Rc::new(PermissionMap::from_roles(entry.roles));
                    (Ok((map, "stale")), Trace { upstream_error: Some(e.code()), ..Trace::default() })
                }
                _ => (Err(e), Trace::default()),
            },
        }
    }
}
