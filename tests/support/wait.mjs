// Waiting in the tests, of two kinds: a barrier (poll until something the test can observe is true,
// within a deadline) and a wait for real time to pass on purpose (a TTL, a Retry-After, a time
// window), which names what it waits for. A fixed sleep that stands in for a barrier has no helper.
import assert from 'node:assert/strict';

/** Polls `predicate` (may be async) every `everyMs` until it holds: true, or false after `ms`. */
export async function waitFor(predicate, ms, everyMs = 50) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Boolean(await predicate());
}

/** A barrier: resolves once `predicate` holds, fails naming `what` if it does not within `timeoutMs`. */
export async function waitUntil(predicate, what, { timeoutMs = 10_000, everyMs = 50 } = {}) {
  if (!(await waitFor(predicate, timeoutMs, everyMs))) assert.fail(`${what}: not seen within ${timeoutMs} ms`);
}

/** Lets `ms` of real time pass on purpose; `why` says what has to pass (a TTL, a Retry-After...). */
export function waitPast(ms, why) {
  assert.ok(typeof why === 'string' && why.length > 0, 'waitPast: say what the wait is for');
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
