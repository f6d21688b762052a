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

/// How long an empty mapping is kept at most: what a service user without `org.read` gets from
/// v2 (an empty list, not a 403), so that a fix shows soon.
pub const EMPTY_MAPPING_TTL_MS: u64 = 10_000;

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
    /// What the map counts against the budget ([`PermissionMap::bytes`]).
    bytes: usize,
}

/// Each organization's map, within a byte budget for the whole isolate: one tenant's mapping can
/// never grow the isolate's memory past it.
pub struct PermissionCache {
    entries: HashMap<String, Entry>,
    bytes: usize,
    max_bytes: usize,
}

impl Default for PermissionCache {
    fn default() -> Self {
        PermissionCache::new(16 << 20)
    }
}

impl PermissionCache {
    /// A cache that keeps at most `max_bytes` of maps.
    pub fn new(max_bytes: usize) -> Self {
        PermissionCache { entries: HashMap::new(), bytes: 0, max_bytes }
    }

    pub fn lookup(&mut self, org_id: &str, now_ms: u64, ttl_ms: u64, stale_ms: u64) -> Cached {
        let Some(entry) = self.entries.get(org_id) else { return Cached::Missing };
        // An empty mapping is kept briefly, and never served stale.
        let (ttl_ms, stale_ms) = match entry.map.is_empty() {
            true => (ttl_ms.min(EMPTY_MAPPING_TTL_MS), 0),
            false => (ttl_ms, stale_ms),
        };
        // A map stamped ahead of the clock counts as absent.
        if entry.fetched_at_ms > now_ms {
            self.remove(org_id);
            return Cached::Missing;
        }
        let age = now_ms - entry.fetched_at_ms;
        if age < ttl_ms {
            Cached::Fresh(entry.map.clone())
        } else if age < ttl_ms + stale_ms {
            Cached::Stale(entry.map.clone())
        } else {
            self.remove(org_id);
            Cached::Missing
        }
    }

    /// Remembers a map fetched at `fetched_at_ms`, unless nothing would ever read it back or it
    /// alone is over the budget. Expired maps go first to make room, then the oldest.
    pub fn store(&mut self, org_id: &str, map: Rc<PermissionMap>, fetched_at_ms: u64, now_ms: u64, keep_ms: u64) {
        self.remove(org_id);
        let bytes = map.bytes() + org_id.len();
        if keep_ms == 0 || bytes > self.max_bytes {
            return;
        }
        if self.bytes + bytes > self.max_bytes {
            let expired: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, e)| now_ms.saturating_sub(e.fetched_at_ms) >= keep_ms)
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                self.remove(&key);
            }
        }
        while self.bytes + bytes > self.max_bytes {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.fetched_at_ms).map(|(k, _)| k.clone());
            match oldest {
                Some(oldest) => self.remove(&oldest),
                None => break,
            }
        }
        self.bytes += bytes;
        self.entries.insert(org_id.to_string(), Entry { map, fetched_at_ms, bytes });
    }

    fn remove(&mut self, org_id: &str) {
        if let Some(entry) = self.entries.remove(org_id) {
            self.bytes -= entry.bytes;
        }
    }

    /// What the kept maps count against the budget.
    pub fn bytes(&self) -> usize {
        self.bytes
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

/// The shared cache key: versioned, per instance (a hash of its URL, so that two deployments of
/// different instances sharing a namespace never read each other's mappings), and per prefix,
/// since the map depends on it.
pub fn shared_key(instance_url: &str, org_id: &str, prefix: &str) -> String {
    use sha2::{Digest, Sha256};
    let instance = hex::encode(&Sha256::digest(instance_url.as_bytes())[..8]);
    format!("zitadel-claims:v2:permissions:{instance}:{org_id}:{prefix}")
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
    fn the_cache_keeps_within_its_byte_budget_dropping_the_oldest_first() {
        let one = map("a").bytes() + "o0".len();
        let mut cache = PermissionCache::new(3 * one);
        for i in 0..5u64 {
            cache.store(&format!("o{i}"), map("a"), i, i, u64::MAX / 2);
            assert!(cache.bytes() <= 3 * one, "{} > {}", cache.bytes(), 3 * one);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.lookup("o0", 10, u64::MAX / 2, 0), Cached::Missing, "the oldest went first");
        assert!(matches!(cache.lookup("o4", 10, u64::MAX / 2, 0), Cached::Fresh(_)));
        // A map larger than the whole budget is not kept, and takes nothing with it.
        let big = Rc::new(PermissionMap::from_roles(HashMap::from([("r".to_string(), vec!["p".repeat(10 * one)])])));
        cache.store("big", big, 20, 20, u64::MAX / 2);
        assert_eq!((cache.lookup("big", 21, u64::MAX / 2, 0), cache.len()), (Cached::Missing, 3));
        // Storing an organization again replaces its map and its bytes.
        cache.store("o4", map("b"), 30, 30, u64::MAX / 2);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn an_empty_mapping_is_kept_ten_seconds_at_most_and_never_served_stale() {
        let mut cache = PermissionCache::default();
        cache.store("o", Rc::new(PermissionMap::default()), 1_000, 1_000, 3_600_000);
        assert!(matches!(cache.lookup("o", 10_999, 60_000, 60_000), Cached::Fresh(_)));
        assert_eq!(cache.lookup("o", 11_000, 60_000, 60_000), Cached::Missing);
    }

    #[test]
    fn a_map_stamped_ahead_of_the_clock_is_absent() {
        let mut cache = PermissionCache::default();
        cache.store("o", map("a"), 5_000, 5_000, 60_000);
        assert_eq!(cache.lookup("o", 4_999, 60_000, 0), Cached::Missing);
    }

    #[test]
    fn shared_entries_round_trip_as_json() {
        let entry = SharedEntry { fetched_at_ms: 5, roles: HashMap::from([("admin".into(), vec!["p1".into()])]) };
        let text = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<SharedEntry>(&text).unwrap(), entry);
        let key = shared_key("https://a.zitadel.cloud", "o1", "permissions:");
        assert!(key.starts_with("zitadel-claims:v2:permissions:") && key.ends_with(":o1:permissions:"), "{key}");
        assert_ne!(key, shared_key("https://b.zitadel.cloud", "o1", "permissions:"), "per instance");
    }
}
