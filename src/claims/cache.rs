//! Per-isolate caching: each organization's permission map with a time to live (and an optional
//! grace period in which an outage may serve the last good map), and single flight, which makes
//! concurrent misses for one key share one upstream call.
//!
//! Everything here is single-threaded (a Workers isolate runs one thread), hence `Rc`/`RefCell`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

use serde::{Deserialize, Serialize};

use crate::claims::permissions::PermissionMap;
use crate::runtime::Platform;

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
pub struct MetadataCache {
    entries: HashMap<String, Entry>,
}

impl MetadataCache {
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

/// Concurrent calls of [`SingleFlight::run`] with one key share the first caller's work.
pub struct SingleFlight<T> {
    flights: RefCell<HashMap<String, Rc<Flight<T>>>>,
    /// The longest a leader's work can run while its request lives (every call bounds its
    /// upstream work). An older flight was abandoned: its request went away without its future
    /// being dropped (on Cloudflare a request whose client disconnects may be cancelled by never
    /// being resumed; workerd under wrangler dev runs it to its end), so it never ends on its own.
    live_for_ms: u64,
}

impl<T> Default for SingleFlight<T> {
    /// Flights may live as long as the longest deadline the settings allow.
    fn default() -> Self {
        SingleFlight::new(flight_lifetime_ms(crate::config::MAX_UPSTREAM_TIMEOUT_MS))
    }
}

/// Past the work's own bound, how long a flight is still waited for: its timers may fire late.
const ABANDON_MARGIN_MS: u64 = 1_000;

/// How long a flight may run while its request lives, when every request bounds its upstream work
/// at `upstream_timeout_ms` plus the claims' safety margin: an older flight was abandoned.
pub fn flight_lifetime_ms(upstream_timeout_ms: u64) -> u64 {
    upstream_timeout_ms + crate::claims::SAFETY_MARGIN_MS + ABANDON_MARGIN_MS
}

struct Flight<T> {
    started_ms: u64,
    /// `Some(Some(v))` when done, `Some(None)` when the leader gave up (its request ended).
    outcome: RefCell<Option<Option<T>>>,
}

/// How often a waiting caller looks whether the leader is done.
pub const WAIT_POLL_MS: u64 = 5;

impl<T> SingleFlight<T> {
    /// Single flight whose leaders' work ends within `live_for_ms` while their requests live.
    pub fn new(live_for_ms: u64) -> Self {
        SingleFlight { flights: RefCell::new(HashMap::new()), live_for_ms }
    }
}

impl<T: Clone> SingleFlight<T> {
    /// Runs `work` unless a call with the same key is already running, in which case its result
    /// is awaited and shared. If that leading call is dropped before finishing, or has run longer
    /// than any live call can (its request was abandoned), a waiting caller runs `work` itself.
    ///
    /// Waiters look for the result every [`WAIT_POLL_MS`] on their own timer rather than being
    /// woken by the leader: in Workers, a task woken from another request's callback runs in
    /// that request's context, and whatever it creates there (its response body, its own
    /// fetches) fails in its own with "Cannot perform I/O on behalf of a different request".
    pub async fn run<P: Platform, F: Future<Output = T>>(
        &self,
        platform: &P,
        key: &str,
        work: impl FnOnce() -> F,
    ) -> T {
        let mut work = Some(work);
        loop {
            let now = platform.now_ms();
            let running = self.flights.borrow().get(key).cloned();
            if let Some(flight) = running.filter(|f| now.saturating_sub(f.started_ms) < self.live_for_ms) {
                if let Some(value) = wait(platform, &flight, self.live_for_ms).await {
                    return value;
                }
                continue; // the leader was dropped or abandoned: try again, perhaps as the leader
            }
            // Nothing running, or an abandoned flight, which this one replaces.
            let flight = Rc::new(Flight { started_ms: now, outcome: RefCell::new(None) });
            self.flights.borrow_mut().insert(key.to_string(), flight.clone());
            let mut guard = Leader { flights: &self.flights, key, flight, value: None };
            let work = work.take().expect("a caller leads at most once: it returns right after");
            let value = work().await;
            guard.value = Some(value.clone());
            return value; // the guard publishes the value as it drops
        }
    }

    /// How many keys are in flight (for tests).
    pub fn in_flight(&self) -> usize {
        self.flights.borrow().len()
    }
}

/// The leader's result; `None` if it was dropped, or has run past `live_for_ms`.
async fn wait<P: Platform, T: Clone>(platform: &P, flight: &Flight<T>, live_for_ms: u64) -> Option<T> {
    loop {
        if let Some(outcome) = &*flight.outcome.borrow() {
            return outcome.clone();
        }
        if platform.now_ms().saturating_sub(flight.started_ms) >= live_for_ms {
            return None;
        }
        yield_once().await; // never spin, even where `sleep` is ready at once
        platform.sleep(WAIT_POLL_MS).await;
    }
}

/// Pending once (asking to be polled again), then ready.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Ends a flight when the leader finishes or is dropped: removes it (unless a later flight has
/// replaced it as abandoned) and publishes the outcome.
struct Leader<'a, T> {
    flights: &'a RefCell<HashMap<String, Rc<Flight<T>>>>,
    key: &'a str,
    flight: Rc<Flight<T>>,
    value: Option<T>,
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        let mut flights = self.flights.borrow_mut();
        if flights.get(self.key).is_some_and(|f| Rc::ptr_eq(f, &self.flight)) {
            flights.remove(self.key);
        }
        *self.flight.outcome.borrow_mut() = Some(self.value.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{HttpRequest, HttpResponse, TransportError};
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use std::cell::Cell;

    fn map(role: &str) -> Rc<PermissionMap> {
        Rc::new(PermissionMap::from_roles(HashMap::from([(role.to_string(), vec!["p".to_string()])])))
    }

    #[test]
    fn fresh_until_the_ttl_then_stale_for_the_window_then_gone() {
        let mut cache = MetadataCache::default();
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
        let mut cache = MetadataCache::default();
        cache.store("o", map("a"), 0, 0, 0);
        assert!(cache.is_empty(), "store keeps nothing when nothing would read it back");
        assert_eq!(cache.lookup("o", 0, 0, 0), Cached::Missing);
    }

    #[test]
    fn without_a_stale_window_an_expired_entry_is_missing() {
        let mut cache = MetadataCache::default();
        cache.store("o", map("a"), 0, 0, 60_000);
        assert_eq!(cache.lookup("o", 60_000, 60_000, 0), Cached::Missing);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = MetadataCache::default();
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

    /// A clock that stands still until the test ticks it: decides when waiting callers look again.
    #[derive(Default)]
    struct Ticks {
        now: Cell<u64>,
        sleepers: RefCell<Vec<std::task::Waker>>,
    }

    impl Ticks {
        fn tick(&self) {
            self.now.set(self.now.get() + WAIT_POLL_MS);
            for waker in self.sleepers.borrow_mut().drain(..) {
                waker.wake();
            }
        }
    }

    impl Platform for Ticks {
        async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
            Err(TransportError::Network)
        }
        fn now_ms(&self) -> u64 {
            self.now.get()
        }
        async fn sleep(&self, ms: u64) {
            let until = self.now.get() + ms;
            std::future::poll_fn(|cx| {
                if self.now.get() >= until {
                    return Poll::Ready(());
                }
                self.sleepers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            })
            .await
        }
        async fn cache_get(&self, _: &str) -> Option<String> {
            None
        }
        async fn cache_put(&self, _: &str, _: String, _: u64) {}
    }

    #[test]
    fn concurrent_calls_share_one_run() {
        let (flights, clock) = (Rc::new(SingleFlight::<u32>::default()), Rc::new(Ticks::default()));
        let (open, gate) = futures::channel::oneshot::channel::<u32>();
        let gate = Rc::new(RefCell::new(Some(gate)));
        let started = Rc::new(Cell::new(0));
        let results = Rc::new(RefCell::new(Vec::new()));
        let mut pool = LocalPool::new();
        for _ in 0..5 {
            let (flights, clock, gate, started, results) =
                (flights.clone(), clock.clone(), gate.clone(), started.clone(), results.clone());
            pool.spawner()
                .spawn_local(async move {
                    let v = flights
                        .run(&*clock, "org", || {
                            started.set(started.get() + 1);
                            let gate = gate.borrow_mut().take().expect("work runs once");
                            async move { gate.await.unwrap() }
                        })
                        .await;
                    results.borrow_mut().push(v);
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(started.get(), 1, "only the first caller starts work");
        assert_eq!(flights.in_flight(), 1);
        open.send(40).unwrap();
        pool.run_until_stalled();
        assert_eq!(
            *results.borrow(),
            vec![40],
            "the leader is done; it wakes no waiter (in Workers, that would run the waiter in the leader's request)"
        );
        assert_eq!(flights.in_flight(), 0);
        clock.tick();
        pool.run();
        assert_eq!(*results.borrow(), vec![40; 5], "on their own timer, the waiters get the leader's result");
    }

    #[test]
    fn different_keys_do_not_share() {
        let (flights, clock) = (SingleFlight::<u32>::default(), Ticks::default());
        let a = futures::executor::block_on(flights.run(&clock, "a", || async { 1 }));
        let b = futures::executor::block_on(flights.run(&clock, "b", || async { 2 }));
        assert_eq!((a, b), (1, 2));
    }

    /// A leader polled once and then never again nor dropped: what Workers do to a request whose
    /// client went away.
    fn abandon<F: Future>(future: F) {
        let mut future = Box::pin(future);
        let waker = futures::task::noop_waker();
        assert!(future.as_mut().poll(&mut std::task::Context::from_waker(&waker)).is_pending());
        std::mem::forget(future);
    }

    #[test]
    fn an_abandoned_flight_is_led_again_once_no_live_call_can_still_be_running() {
        let (flights, clock) = (Rc::new(SingleFlight::<u32>::new(4 * WAIT_POLL_MS)), Rc::new(Ticks::default()));
        abandon(flights.run(&*clock, "org", std::future::pending::<u32>));
        let result = Rc::new(Cell::new(0));
        let mut pool = LocalPool::new();
        {
            let (flights, clock, result) = (flights.clone(), clock.clone(), result.clone());
            pool.spawner()
                .spawn_local(async move { result.set(flights.run(&*clock, "org", || async { 2 }).await) })
                .unwrap();
        }
        for _ in 0..3 {
            clock.tick();
            pool.run_until_stalled();
        }
        assert_eq!(result.get(), 0, "a waiter waits while the leader may still be running");
        clock.tick();
        pool.run_until_stalled();
        assert_eq!(result.get(), 2, "past live_for_ms, the waiter leads itself");
        assert_eq!(flights.in_flight(), 0);

        abandon(flights.run(&*clock, "org", std::future::pending::<u32>));
        for _ in 0..4 {
            clock.tick();
        }
        let mut late = Box::pin(flights.run(&*clock, "org", || async { 3 }));
        let waker = futures::task::noop_waker();
        let polled = late.as_mut().poll(&mut std::task::Context::from_waker(&waker));
        assert_eq!(polled, Poll::Ready(3), "a caller that comes after live_for_ms leads at once");
    }

    #[test]
    fn a_replaced_leader_that_ends_late_leaves_the_new_flight_alone() {
        let (flights, clock) = (Rc::new(SingleFlight::<u32>::new(WAIT_POLL_MS)), Rc::new(Ticks::default()));
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut old = Box::pin(flights.run(&*clock, "org", std::future::pending::<u32>));
        assert!(old.as_mut().poll(&mut cx).is_pending());
        clock.tick();
        let mut new = Box::pin(flights.run(&*clock, "org", std::future::pending::<u32>));
        assert!(new.as_mut().poll(&mut cx).is_pending());
        drop(old);
        assert_eq!(flights.in_flight(), 1, "the old leader's end does not remove its replacement");
        drop(new);
        assert_eq!(flights.in_flight(), 0);
    }

    #[test]
    fn a_waiter_takes_over_when_the_leader_is_dropped() {
        let (flights, clock) = (Rc::new(SingleFlight::<u32>::default()), Rc::new(Ticks::default()));
        let started = Rc::new(Cell::new(0));
        let mut pool = LocalPool::new();
        // The leader is polled once and then dropped, as when its request times out.
        let mut leader = Box::pin(flights.run(&*clock, "org", || {
            started.set(started.get() + 1);
            std::future::pending::<u32>()
        }));
        let waker = futures::task::noop_waker();
        assert!(leader.as_mut().poll(&mut std::task::Context::from_waker(&waker)).is_pending());
        let result = Rc::new(Cell::new(0));
        {
            let (flights, clock, started, result) = (flights.clone(), clock.clone(), started.clone(), result.clone());
            pool.spawner()
                .spawn_local(async move {
                    let v = flights
                        .run(&*clock, "org", || {
                            started.set(started.get() + 1);
                            async { 2 }
                        })
                        .await;
                    result.set(v);
                })
                .unwrap();
        }
        pool.run_until_stalled();
        clock.tick();
        pool.run_until_stalled();
        assert_eq!(result.get(), 0, "the waiter waits while the leader lives");
        drop(leader);
        clock.tick();
        pool.run();
        assert_eq!(result.get(), 2, "the waiter ran the work itself");
        assert_eq!(started.get(), 2);
    }
}
