//! Single flight: concurrent misses for one key share one upstream call.
//!
//! Everything here is single-threaded (a Workers isolate runs one thread), hence `Rc`/`RefCell`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

use super::deadline::{flight_lifetime_ms, MAX_UPSTREAM_TIMEOUT_MS};
use crate::port::{Clock, Timer};

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
        SingleFlight::new(flight_lifetime_ms(MAX_UPSTREAM_TIMEOUT_MS))
    }
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
    pub async fn run<R: Clock + Timer, F: Future<Output = T>>(
        &self,
        runtime: &R,
        key: &str,
        work: impl FnOnce() -> F,
    ) -> T {
        let mut work = Some(work);
        loop {
            let now = runtime.now_ms();
            let running = self.flights.borrow().get(key).cloned();
            if let Some(flight) = running.filter(|f| now.saturating_sub(f.started_ms) < self.live_for_ms) {
                if let Some(value) = wait(runtime, &flight, self.live_for_ms).await {
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
async fn wait<R: Clock + Timer, T: Clone>(runtime: &R, flight: &Flight<T>, live_for_ms: u64) -> Option<T> {
    loop {
        if let Some(outcome) = &*flight.outcome.borrow() {
            return outcome.clone();
        }
        if runtime.now_ms().saturating_sub(flight.started_ms) >= live_for_ms {
            return None;
        }
        yield_once().await; // never spin, even where `sleep` is ready at once
        runtime.sleep(WAIT_POLL_MS).await;
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
mod tests;
