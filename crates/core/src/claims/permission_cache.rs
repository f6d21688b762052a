//! The permission cache: each organization's permission map with a time to live (and an optional
//! grace period in which an outage may serve the last good map), per isolate, and the entry the
//! shared cache (KV) holds for it.

use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::claims::permissions::PermissionMap;
use crate::runtime::single_flight::SingleFlight;
use crate::upstream::UpstreamError;

/// The single flights that fill the permission cache: one ZITADEL call per organization at a time.
pub type PermissionFlights = SingleFlight<Result<Rc<PermissionMap>, UpstreamError>>;

/// Organizations remembered per isolate before the oldest are dropped.
const MAX_ENTRIES: usize = 10_000;

#[cfg_attr(test, derive(Debug))]
#[derive(Clone, PartialEq)]
pub enum Cached {
    /// Younger than the TTL: use it.
    Fresh(Rc<PermissionMap>),
    /// Expired but within the stale-if-error window: use it only if the upstream fails.
    Stale(Rc<PermissionMap>),
    Missing,
}

struct Entry {
    map: Rc<PermissionMap>,
    fetched_at_ms: u64,
}

#[derive(Default)]
pub struct PermissionCache {
    entries: HashMap<String, Entry>,
}

impl PermissionCache {
    pub fn lookup(&mut self, org_id: &str, now_ms: u64, ttl_ms: u64, stale_ms: u64) -> Cached {
        let Some(entry) = self.entries.get(org_id) else { return Cached::Missing };
        let age = now_ms.saturating_sub(entry.fetched_at_ms);
        if age < ttl_ms {
            Cached::Fresh(entry.map.clone())
        } else if age < ttl_ms + stale_ms {
            Cached::Stale(entry.map.clone())
        } else {
            self.entries.remove(org_id);
            Cached::Missing
        }
    }

    /// Remembers a map fetched at `fetched_at_ms`, unless nothing would ever read it back.
    pub fn store(&mut self, org_id: &str, map: Rc<PermissionMap>, fetched_at_ms: u64, now_ms: u64, keep_ms: u64) {
        if keep_ms == 0 {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(org_id) {
            self.entries.retain(|_, e| now_ms.saturating_sub(e.fetched_at_ms) < keep_ms);
            if self.entries.len() >= MAX_ENTRIES {
                let oldest = self.entries.iter().min_by_key(|(_, e)| e.fetched_at_ms).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(org_id.to_string(), Entry { map, fetched_at_ms });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What the shared cache (KV) holds per organization.
#[cfg_attr(test, derive(Debug))]
#[derive(Serialize, Deserialize, PartialEq)]
pub struct SharedEntry {
    pub fetched_at_ms: u64,
    pub roles: HashMap<String, Vec<String>>,
}

/// The shared cache key: versioned, and per prefix, since the map depends on it.
pub fn shared_key(org_id: &str, prefix: &str) -> String {
    format!("zitadel-claims:v1:permissions:{org_id}:{prefix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(role: &str) -> Rc<PermissionMap> {
        Rc::new(PermissionMap::from_roles(HashMap::from([(role.to_string(), vec!["p".to_string()])])))
    }

    #[test]
    fn fresh_until_the_ttl_then_stale_for_the_window_then_gone() {
        let mut cache = PermissionCache::default();
        cache.store("o", map("a"), 1_000, 1_000, 60_000 + 30_000);
        assert_eq!(cache.lookup("o", 1_000, 60_000, 30_000), Cached::Fresh(map("a")));
        assert_eq!(cache.lookup("o", 60_999, 60_000, 30_000), Cached::Fresh(map("a")));
        assert_eq!(cache.lookup("o", 61_000, 60_000, 30_000), Cached::Stale(map("a")));
        assert_eq!(cache.lookup("o", 90_999, 60_000, 30_000), Cached::Stale(map("a")));
        assert_eq!(cache.lookup("o", 91_000, 60_000, 30_000), Cached::Missing);
        assert!(cache.is_empty(), "expired entries are dropped");
    }

    #[test]
    fn nothing_is_kept_when_ttl_and_window_are_zero() {
        let mut cache = PermissionCache::default();
        cache.store("o", map("a"), 0, 0, 0);
        assert!(cache.is_empty(), "store keeps nothing when nothing would read it back");
        assert_eq!(cache.lookup("o", 0, 0, 0), Cached::Missing);
    }

    #[test]
    fn without_a_stale_window_an_expired_entry_is_missing() {
        let mut cache = PermissionCache::default();
        cache.store("o", map("a"), 0, 0, 60_000);
        assert_eq!(cache.lookup("o", 60_000, 60_000, 0), Cached::Missing);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = PermissionCache::default();
        for i in 0..MAX_ENTRIES + 5 {
            cache.store(&format!("o{i}"), map("a"), i as u64, i as u64, u64::MAX / 2);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert_eq!(cache.lookup("o0", 0, u64::MAX / 2, 0), Cached::Missing, "the oldest went first");
        assert!(matches!(cache.lookup(&format!("o{}", MAX_ENTRIES + 4), 0, u64::MAX / 2, 0), Cached::Fresh(_)));
    }

    #[test]
    fn shared_entries_round_trip_as_json() {
        let entry = SharedEntry { fetched_at_ms: 5, roles: HashMap::from([("admin".into(), vec!["p1".into()])]) };
        let text = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<SharedEntry>(&text).unwrap(), entry);
        assert_eq!(shared_key("o1", "permissions:"), "zitadel-claims:v1:permissions:o1:permissions:");
    }
}
