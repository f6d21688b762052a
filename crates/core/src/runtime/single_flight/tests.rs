use super::*;
use crate::testing::{FakeRuntime, Timers};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use std::cell::Cell;

/// A clock that stands still until the test ticks it: decides when waiting callers look again.
fn clock() -> FakeRuntime {
    FakeRuntime::new(vec![]).with_timers(Timers::Manual)
}

fn tick(clock: &FakeRuntime) {
    clock.advance_ms(WAIT_POLL_MS);
}

#[test]
fn concurrent_calls_share_one_run() {
    let (flights, clock) = (Rc::new(SingleFlight::<u32>::default()), Rc::new(clock()));
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
    tick(&clock);
    pool.run();
    assert_eq!(*results.borrow(), vec![40; 5], "on their own timer, the waiters get the leader's result");
}

#[test]
fn different_keys_do_not_share() {
    let (flights, clock) = (SingleFlight::<u32>::default(), clock());
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
    let (flights, clock) = (Rc::new(SingleFlight::<u32>::new(4 * WAIT_POLL_MS)), Rc::new(clock()));
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
        tick(&clock);
        pool.run_until_stalled();
    }
    assert_eq!(result.get(), 0, "a waiter waits while the leader may still be running");
    tick(&clock);
    pool.run_until_stalled();
    assert_eq!(result.get(), 2, "past live_for_ms, the waiter leads itself");
    assert_eq!(flights.in_flight(), 0);

    abandon(flights.run(&*clock, "org", std::future::pending::<u32>));
    for _ in 0..4 {
        tick(&clock);
    }
    let mut late = Box::pin(flights.run(&*clock, "org", || async { 3 }));
    let waker = futures::task::noop_waker();
    let polled = late.as_mut().poll(&mut std::task::Context::from_waker(&waker));
    assert_eq!(polled, Poll::Ready(3), "a caller that comes after live_for_ms leads at once");
}

#[test]
fn a_replaced_leader_that_ends_late_leaves_the_new_flight_alone() {
    let (flights, clock) = (Rc::new(SingleFlight::<u32>::new(WAIT_POLL_MS)), Rc::new(clock()));
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut old = Box::pin(flights.run(&*clock, "org", std::future::pending::<u32>));
    assert!(old.as_mut().poll(&mut cx).is_pending());
    tick(&clock);
    let mut new = Box::pin(flights.run(&*clock, "org", std::future::pending::<u32>));
    assert!(new.as_mut().poll(&mut cx).is_pending());
    drop(old);
    assert_eq!(flights.in_flight(), 1, "the old leader's end does not remove its replacement");
    drop(new);
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn a_waiter_takes_over_when_the_leader_is_dropped() {
    let (flights, clock) = (Rc::new(SingleFlight::<u32>::default()), Rc::new(clock()));
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
    tick(&clock);
    pool.run_until_stalled();
    assert_eq!(result.get(), 0, "the waiter waits while the leader lives");
    drop(leader);
    tick(&clock);
    pool.run();
    assert_eq!(result.get(), 2, "the waiter ran the work itself");
    assert_eq!(started.get(), 2);
}
