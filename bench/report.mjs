// The Markdown of a benchmark report (bench/bench.mjs writes it as results/latest*.md). Run alone,
// `node bench/report.mjs bench/results/runtime-no-inspector.json` judges a saved report again with
// the current bench/targets.mjs and writes its JSON and Markdown anew (after a change of targets).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { targets } from './targets.mjs';

export function markdown(r) {
  const lines = [`# Benchmark results (${r.date})`, '', `Machine: ${r.machine}`, ''];
  if (r.host) {
    lines.push('## Hot path on the host (cargo bench --bench hot_path)', '',
      `Verify + decode + all claims from a warm cache + serialize, ${r.host.body_bytes}-byte payload: **median ${(r.host.median_ns_per_request / 1000).toFixed(1)} µs** per request (p10 ${(r.host.p10_ns / 1000).toFixed(1)}, p90 ${(r.host.p90_ns / 1000).toFixed(1)}); of which signature ${(r.host.signature_check_median_ns / 1000).toFixed(1)} µs, decode ${(r.host.payload_decode_median_ns / 1000).toFixed(1)} µs, claims ${(r.host.claims_median_ns / 1000).toFixed(1)} µs, serialize ${(r.host.serialize_median_ns / 1000).toFixed(1)} µs.`, '');
  }
  lines.push('## Upload size (wrangler deploy --dry-run)', '', `${r.size.total_kib} KiB, **${r.size.gzip_kib} KiB gzip** (budget 200 KiB gzip).`, '');
  if (r.host?.jose) {
    const j = r.host.jose;
    lines.push('## JWT and JWE on the host (cargo bench --bench hot_path)', '',
      `The same call as a JWT (ES256, ${j.jwt_body_bytes} bytes) and a JWE (ECDH-ES+A256KW, ${j.jwe_body_bytes} bytes), key set and metadata warm, with RustCrypto in place of WebCrypto: JWT request ${(j.jwt_request_median_ns_rustcrypto / 1000).toFixed(1)} µs, JWE request ${(j.jwe_request_median_ns_rustcrypto / 1000).toFixed(1)} µs. The JOSE decode alone, without cryptography: JWT ${(j.jwt_decode_without_crypto_median_ns / 1000).toFixed(1)} µs, JWE ${(j.jwe_decode_without_crypto_median_ns / 1000).toFixed(1)} µs (then its JWT's).`, '');
  }
  if (r.startup) {
    const fmt = (s) => `median ${s.active_ms_median} ms (${s.active_ms_min}-${s.active_ms_max})`;
    lines.push('## Startup CPU (wrangler check startup)', '', `Active CPU in the startup profile over ${r.startup.runs} runs each: this worker ${fmt(r.startup.worker)}; the JavaScript comparison worker ${fmt(r.startup.same_work_in_js)}.`, '');
  }
  const rt = r.runtime;
  lines.push(rt.inspector ? '## The real runtime (wrangler dev)' : "## The real runtime (wrangler's dev server without the DevTools inspector)", '', `${rt.requests} signed requests per round at concurrency ${rt.concurrency}, ${rt.rounds} rounds after 200 warm-up requests, ${rt.organizations} organizations, fake ZITADEL with ${rt.upstream_latency_ms} ms added latency. The scenarios run side by side and take turns, each round starting one scenario later; req/s and latencies are medians over the rounds, errors and upstream calls count all rounds and the warm-up.${rt.exchange_users ? ` The token exchange's requests are warm \`POST /token\` calls of one back end for ${rt.exchange_users} users in turn (each user's first call, made before the warm-up, is counted in its upstream calls: the reads of the user's stored tokens).` : ''}`, '',
    '| scenario | req/s | p50 ms | p95 ms | p99 ms | p50 / floor | errors | upstream calls | RSS MiB, workerd running the worker (after warm-up → after each round) | RSS MiB, proxy workerd (same points) | wasm memory MiB (same points) | JavaScript heap after a full GC, MiB (same points) |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [name, s] of Object.entries(rt.scenarios)) {
    lines.push(`| ${name} | ${s.rps.toFixed(0)} | ${s.p50_ms} | ${s.p95_ms} | ${s.p99_ms} | ${s.p50_ratio_to_floor} | ${s.errors_all_rounds} | ${s.upstream_calls} | ${s.workerd_rss_mib.worker.join(' → ')} | ${s.workerd_rss_mib.proxy.join(' → ')} | ${s.wasm_memory_mib.join(' → ')} | ${s.js_heap_after_gc_mib.join(' → ')} |`);
  }
  lines.push('', 'CPU time per request in µs (medians over the rounds), by process: the machine has 2 cores, so the sum bounds the request rate.', '',
    '| scenario | wrangler (Node) | workerd, proxy | workerd, the worker | load generator + fake ZITADEL | sum |', '|---|---|---|---|---|---|');
  for (const [name, s] of Object.entries(rt.scenarios)) {
    const c = s.cpu_us_per_request;
    lines.push(`| ${name} | ${c.wrangler_node} | ${c.workerd_proxy} | ${c.workerd_worker} | ${c.load_generator} | ${c.wrangler_node + c.workerd_proxy + c.workerd_worker + c.load_generator} |`);
  }
  lines.push('', '## Targets', '', '| target | measured | met |', '|---|---|---|');
  for (const t of r.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met === null ? '-' : t.met ? 'yes' : '**no**'} |`);
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  const r = JSON.parse(readFileSync(file, 'utf8'));
  r.targets = targets(r);
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(file.replace(/runtime(-no-inspector)?\.json$/, 'latest$1.md'), markdown(r));
}
