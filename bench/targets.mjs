// The benchmark's targets (issue 5), checked against a report of bench/bench.mjs.

/** The scenario every p50 is compared with: an empty worker that answers `{}` at once. */
export const FLOOR = 'empty worker (floor)';

/**
 * The targets of the benchmark, each with what was measured and whether it is met (`null`: shown
 * for reference, not judged). Memory "does not keep growing" when the wasm memory, where all of
 * the worker's state lives, and (when read: BENCH_HEAP=1) the isolate's JavaScript heap after a
 * full garbage collection each grew by at most 1 MiB from after the first round to after the
 * last: over three rounds of 5000 requests that catches a leak of 70 bytes per request. The
 * resident memory of the worker's workerd is shown but not judged: it also holds the garbage V8
 * has not collected yet, which V8 lets grow while the isolate is busy (one run of 15,000 requests
 * without the cache: 157 -> 196 MiB, while the heap after a full collection stayed at 1.24 MiB).
 */
export function targets(r) {
  const list = [];
  const add = (target, measured, met) => list.push({ target, measured, met });
  if (r.host) {
    const us = r.host.median_ns_per_request / 1000;
    add('hot path on the host: median under 25 µs', `${us.toFixed(1)} µs`, us < 25);
  }
  if (r.size.gzip_kib !== undefined) {
    add('upload size: at most 200 KiB gzip (budget)', `${r.size.gzip_kib} KiB`, r.size.gzip_kib <= 200);
    add('upload size: at most 150 KiB gzip (aim)', `${r.size.gzip_kib} KiB`, r.size.gzip_kib <= 150);
    add('upload size: under 195 KiB gzip (issue 17, with JWT and JWE)', `${r.size.gzip_kib} KiB`, r.size.gzip_kib < 195);
  }
  const scenarios = Object.entries(r.runtime.scenarios);
  const kind = (o) => o.payload ?? 'json';
  for (const [name, s] of scenarios) add(`${name}: 0 errors`, `${s.errors_all_rounds}`, s.errors_all_rounds === 0);
  for (const [name, s] of scenarios.filter(([, s]) => s.cache_ttl_seconds)) {
    const windows = Math.floor(s.seconds_from_warm_up_to_last_round / s.cache_ttl_seconds) + 1;
    const allowed = r.runtime.organizations * windows;
    add(`${name}: at most one ZITADEL call per organization per TTL`,
      `${s.upstream_calls} calls; at most ${allowed} (${r.runtime.organizations} organizations × ${windows} TTL windows in ${s.seconds_from_warm_up_to_last_round} s)`,
      s.upstream_calls <= allowed);
    // Judged as in production, without the DevTools inspector: the wrangler dev CLI always runs
    // it, and it hands every console line to wrangler, which puts even an empty worker that logs
    // one line at about 1.5× the floor (README, Performance). Under the CLI it is shown only.
    // Issue 5's target is the JSON call's; a JWT or JWE call's ratio is shown beside the same
    // work in JavaScript (its RSA and AES work costs what it costs in either).
    if (r.runtime.inspector === false && kind(s) === 'json') {
      add(`${name}: p50 within 1.5× of the floor`, `${s.p50_ratio_to_floor}×`, s.p50_ratio_to_floor <= 1.5);
    } else if (kind(s) === 'json') {
      add(`${name}: p50 / p50 of the floor under the CLI (for reference; the 1.5× target is judged with BENCH_INSPECTOR=off)`, `${s.p50_ratio_to_floor}×`, null);
    } else {
      add(`${name}: p50 / p50 of the floor (for reference; the 1.5× target is the JSON call's)`, `${s.p50_ratio_to_floor}×`, null);
    }
    for (const [other, o] of scenarios.filter(([n, o]) => !o.ours && n !== FLOOR)) {
      const ratio = Number((s.p50_ms / o.p50_ms).toFixed(2));
      add(`${name}: p50 / p50 of "${other}" (for reference, not a target)`, `${ratio}×`, null);
    }
  }
  // The extra CPU of a JWT or JWE call in the worker's workerd, over the JSON call of the same
  // worker, beside the same difference for the JavaScript worker doing the same WebCrypto work.
  const cpu = (s) => s?.cpu_us_per_request.workerd_worker;
  const ourJson = scenarios.find(([, o]) => o.ours && kind(o) === 'json' && o.cache_ttl_seconds)?.[1];
  for (const [name, s] of scenarios.filter(([, s]) => s.ours && kind(s) !== 'json' && kind(s) !== 'exchange')) {
    const js = scenarios.find(([n, o]) => !o.ours && kind(o) === s.payload && n.includes('same-work'))?.[1];
    const jsJson = scenarios.find(([n, o]) => !o.ours && kind(o) === 'json' && n.includes('same-work'))?.[1];
    const theirs = js && jsJson ? `; the same work in JavaScript: ${cpu(js) - cpu(jsJson)} µs` : '';
    add(`${name}: CPU per request in the worker's workerd beyond the JSON call (for reference)`, `${cpu(s) - cpu(ourJson)} µs${theirs}`, null);
  }
  // Issue 21: the claim path with the Microsoft token sealed, against the cleartext JSON call.
  const sealed = scenarios.find(([, o]) => o.ours && kind(o) === 'sealed')?.[1];
  if (sealed && ourJson) {
    const ratio = cpu(sealed) / cpu(ourJson);
    add("sealed Microsoft token: CPU per request in the worker's workerd within 10% of the cleartext JSON call",
      `${cpu(sealed)} µs against ${cpu(ourJson)} µs (${ratio.toFixed(3)}×); p50 ${sealed.p50_ms} ms against ${ourJson.p50_ms} ms`, ratio <= 1.1);
  }
  // Issue 22: a warm token exchange's CPU in the worker's workerd, beside the same work in
  // JavaScript and the floor; and no outbound call on a warm exchange: each user's stored tokens
  // read at most once per 5 minutes (how long a Graph token is kept in memory), first call included.
  for (const [name, s] of scenarios.filter(([, s]) => s.ours && kind(s) === 'exchange')) {
    const floorCpu = cpu(r.runtime.scenarios[FLOOR]);
    const js = scenarios.find(([, o]) => !o.ours && kind(o) === 'exchange')?.[1];
    const theirs = js ? `; the same work in JavaScript: ${cpu(js)} µs (${(cpu(s) / cpu(js)).toFixed(2)}×), p50 ${s.p50_ms} against ${js.p50_ms} ms` : '';
    add(`${name}: CPU per request in the worker's workerd (for reference)`, `${cpu(s)} µs${theirs}; the floor: ${floorCpu} µs`, null);
    if (s.exchange_users) {
      const windows = Math.floor(s.seconds_from_warm_up_to_last_round / 300) + 1;
      const allowed = s.exchange_users * windows;
      add(`${name}: each user's stored tokens read at most once per 5 minutes (a warm exchange makes no outbound call)`,
        `${s.upstream_calls} reads; at most ${allowed} (${s.exchange_users} users × ${windows} windows of 5 minutes in ${s.seconds_from_warm_up_to_last_round} s)`,
        s.upstream_calls <= allowed);
    }
  }
  if (r.startup) {
    add("startup CPU (wrangler check startup, for reference)", `${r.startup.worker.active_ms_median} ms; JavaScript worker ${r.startup.same_work_in_js.active_ms_median} ms`, null);
  }
  for (const [name, s] of scenarios.filter(([, s]) => s.ours)) {
    const rss = s.workerd_rss_mib.worker;
    const growth = (rss.at(-1) - rss[1]) / rss[1];
    add(`${name}: resident memory of the worker's workerd after round 1 and after the last (for reference, not judged)`, `${rss[1]} → ${rss.at(-1)} MiB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(0)}%)`, null);
    const wasm = s.wasm_memory_mib;
    const grown = typeof wasm[1] === 'number' && typeof wasm.at(-1) === 'number' ? wasm.at(-1) - wasm[1] : NaN;
    add(`${name}: wasm memory does not keep growing (at most +1 MiB after round 1)`, `${wasm[1]} → ${wasm.at(-1)} MiB`, grown <= 1);
    const heap = s.js_heap_after_gc_mib ?? [];
    if (heap.some((v) => v !== '-')) {
      const heapGrown = typeof heap[1] === 'number' && typeof heap.at(-1) === 'number' ? heap.at(-1) - heap[1] : NaN;
      add(`${name}: JavaScript heap after a full GC does not keep growing (at most +1 MiB after round 1)`, `${heap[1]} → ${heap.at(-1)} MiB`, heapGrown <= 1);
    }
  }
  return list;
}
