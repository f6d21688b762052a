// The benchmark's verdicts (bench/targets.mjs) on made-up reports: each target can fail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FLOOR, targets } from '../../bench/targets.mjs';

function scenario(overrides = {}) {
  return {
    p50_ms: 50,
    errors_all_rounds: 0,
    upstream_calls: 0,
    workerd_rss_mib: { worker: [120, 160, 165, 170, 168], proxy: [70, 140, 150, 150, 150] },
    wasm_memory_mib: [1.5, 1.5, 1.81, 1.81, 1.81],
    ...overrides,
  };
}

function report({ floor = {}, cacheOn = {}, cacheOff = {}, host = 23_000, gzip = 190, inspector = false } = {}) {
  const scenarios = {
    [FLOOR]: scenario({ wasm_memory_mib: ['-', '-', '-', '-', '-'], ...floor }),
    'extra: logging floor': scenario({ p50_ms: 55 }),
    'cache on (TTL 60 s)': scenario({ ours: true, cache_ttl_seconds: 60, seconds_from_warm_up_to_last_round: 150, upstream_calls: 30, p50_ms: 60, ...cacheOn }),
    'cache off (TTL 0)': scenario({ ours: true, upstream_calls: 20200, p50_ms: 90, ...cacheOff }),
  };
  for (const s of Object.values(scenarios)) s.p50_ratio_to_floor = Number((s.p50_ms / scenarios[FLOOR].p50_ms).toFixed(2));
  return { host: { median_ns_per_request: host }, size: { gzip_kib: gzip }, runtime: { inspector, organizations: 10, scenarios } };
}

const verdict = (list, start) => {
  const found = list.filter((t) => t.target.startsWith(start));
  assert.equal(found.length, 1, `one target starting with "${start}" in ${JSON.stringify(list.map((t) => t.target))}`);
  return found[0].met;
};

describe('bench targets', () => {
  it('are all met by a good run, except the size aim, and the reference ratio has no verdict', () => {
    const list = targets(report());
    assert.deepEqual(list.filter((t) => t.met === false).map((t) => t.target), ['upload size: at most 150 KiB gzip (aim)']);
    assert.equal(verdict(list, 'cache on (TTL 60 s): p50 / p50 of "extra: logging floor"'), null);
    assert.equal(list.find((t) => t.target.includes('per TTL')).measured, '30 calls; at most 30 (10 organizations × 3 TTL windows in 150 s)');
  });

  it('fail on a slow hot path, a size over budget and errors', () => {
    const list = targets(report({ host: 25_000, gzip: 200.5, cacheOff: { errors_all_rounds: 1 } }));
    assert.equal(verdict(list, 'hot path'), false);
    assert.equal(verdict(list, 'upload size: at most 200'), false);
    assert.equal(verdict(list, 'cache off (TTL 0): 0 errors'), false);
    assert.equal(verdict(list, 'cache on (TTL 60 s): 0 errors'), true);
  });

  it('fail on more than one ZITADEL call per organization per TTL window', () => {
    assert.equal(verdict(targets(report({ cacheOn: { upstream_calls: 31 } })), 'cache on (TTL 60 s): at most one'), false);
    // 180 s is four windows (0-60, 60-120, 120-180 and the call at 180).
    assert.equal(verdict(targets(report({ cacheOn: { upstream_calls: 40, seconds_from_warm_up_to_last_round: 180 } })), 'cache on (TTL 60 s): at most one'), true);
  });

  it('judge the upload of issue 17 (under 195 KiB gzip) and show the extra CPU of JWT and JWE calls beside JavaScript\'s', () => {
    assert.equal(verdict(targets(report({ gzip: 194.9 })), 'upload size: under 195'), true);
    assert.equal(verdict(targets(report({ gzip: 195 })), 'upload size: under 195'), false);
    const cpu = (workerd_worker) => ({ cpu_us_per_request: { workerd_worker } });
    const r = report({ cacheOn: cpu(400) });
    Object.assign(r.runtime.scenarios, {
      'extra: bench/same-work-in-js.mjs': scenario({ payload: 'json', ...cpu(300) }),
      'extra: bench/same-work-in-js.mjs, jwt': scenario({ payload: 'jwt', ...cpu(420) }),
      'cache on, jwt': scenario({ ours: true, payload: 'jwt', cache_ttl_seconds: 60, seconds_from_warm_up_to_last_round: 150, ...cpu(550) }),
    });
    const row = targets(r).find((t) => t.target.startsWith('cache on, jwt: CPU per request'));
    assert.deepEqual([row.measured, row.met], ['150 µs; the same work in JavaScript: 120 µs', null]);
    r.runtime.scenarios['cache on, jwt'].p50_ratio_to_floor = 1.8;
    assert.equal(targets(r).filter((t) => t.target.startsWith('cache on, jwt: p50 within')).length, 0, "the 1.5× target is the JSON call's");
    assert.equal(verdict(targets(r), 'cache on, jwt: p50 / p50 of the floor (for reference'), null);
  });

  it('judge the sealed Microsoft token against the cleartext JSON call: within 10% of its CPU in the worker\'s workerd', () => {
    const cpu = (workerd_worker) => ({ cpu_us_per_request: { workerd_worker } });
    const sealed = (us) => {
      const r = report({ cacheOn: cpu(1000) });
      r.runtime.scenarios['cache on, sealed'] = scenario({ ours: true, payload: 'sealed', cache_ttl_seconds: 60, seconds_from_warm_up_to_last_round: 150, ...cpu(us) });
      return targets(r);
    };
    assert.equal(verdict(sealed(1100), 'sealed Microsoft token'), true);
    assert.equal(verdict(sealed(1101), 'sealed Microsoft token'), false);
    assert.equal(targets(report()).filter((t) => t.target.startsWith('sealed')).length, 0, 'no sealed scenario, no verdict');
  });

  it('judge a warm token exchange by its reads of stored tokens (one per user per 5 minutes) and show its CPU beside JavaScript\'s', () => {
    const cpu = (workerd_worker) => ({ cpu_us_per_request: { workerd_worker } });
    const exchange = (reads, seconds) => {
      const r = report({ floor: cpu(1100) });
      r.runtime.scenarios['token exchange, warm'] = scenario({ ours: true, payload: 'exchange', exchange_users: 10, seconds_from_warm_up_to_last_round: seconds, upstream_calls: reads, p50_ms: 70, ...cpu(1400) });
      r.runtime.scenarios['extra: bench/exchange-in-js.mjs, token exchange, warm'] = scenario({ payload: 'exchange', p50_ms: 65, ...cpu(1250) });
      return targets(r);
    };
    const name = 'token exchange, warm: each user\'s stored tokens';
    assert.equal(verdict(exchange(10, 207), name), true);
    assert.equal(verdict(exchange(11, 207), name), false, 'a warm exchange read the stored tokens again');
    assert.equal(verdict(exchange(20, 301), name), true, 'two windows of 5 minutes');
    const reference = exchange(10, 207).find((t) => t.target.startsWith('token exchange, warm: CPU per request'));
    assert.equal(reference.met, null);
    assert.equal(reference.measured, '1400 µs; the same work in JavaScript: 1250 µs (1.12×), p50 70 against 65 ms; the floor: 1100 µs');
  });

  it('fail when the cache-on p50 is more than 1.5 times the floor', () => {
    assert.equal(verdict(targets(report({ cacheOn: { p50_ms: 75 } })), 'cache on (TTL 60 s): p50 within'), true);
    assert.equal(verdict(targets(report({ cacheOn: { p50_ms: 76 } })), 'cache on (TTL 60 s): p50 within'), false);
  });

  it('show the p50 ratio under the CLI (inspector on) without judging it', () => {
    const list = targets(report({ inspector: true, cacheOn: { p50_ms: 76 } }));
    assert.equal(list.filter((t) => t.target.includes('p50 within')).length, 0);
    const shown = list.find((t) => t.target.startsWith('cache on (TTL 60 s): p50 / p50 of the floor under the CLI'));
    assert.deepEqual([shown.measured, shown.met], ['1.52×', null]);
  });

  it("fail when the worker's wasm memory keeps growing after the first round; resident memory is not judged", () => {
    const rss = { worker: [120, 160, 170, 180, 190], proxy: [70, 140, 150, 150, 150] };
    const list = targets(report({ cacheOff: { workerd_rss_mib: rss } }));
    assert.equal(verdict(list, "cache off (TTL 0): resident memory of the worker's workerd"), null);
    assert.equal(list.find((t) => t.target.startsWith("cache off (TTL 0): resident")).measured, '160 → 190 MiB (+19%)');
    assert.equal(verdict(targets(report({ cacheOff: { wasm_memory_mib: [1.5, 1.5, 2, 2.4, 2.5] } })), 'cache off (TTL 0): wasm memory'), true);
    assert.equal(verdict(targets(report({ cacheOff: { wasm_memory_mib: [1.5, 1.5, 2, 2.4, 2.6] } })), 'cache off (TTL 0): wasm memory'), false);
    assert.equal(verdict(targets(report({ cacheOff: { wasm_memory_mib: [1.5, 'down', 1.5, 1.5, 1.5] } })), 'cache off (TTL 0): wasm memory'), false);
    const heap = (values) => targets(report({ cacheOn: { js_heap_after_gc_mib: values } }));
    assert.equal(verdict(heap([1.03, 1.24, 1.25, 1.24, 2.2]), 'cache on (TTL 60 s): JavaScript heap'), true);
    assert.equal(verdict(heap([1.03, 1.24, 1.8, 2.1, 2.3]), 'cache on (TTL 60 s): JavaScript heap'), false);
    assert.equal(verdict(heap([1.03, 1.24, 1.25, 1.24, 'no gc']), 'cache on (TTL 60 s): JavaScript heap'), false);
    // When the heap was not read (no inspector, or no BENCH_HEAP=1): no verdict rather than a made-up one.
    assert.equal(heap(['-', '-', '-', '-', '-']).filter((t) => t.target.includes('JavaScript heap')).length, 0);
  });
});
