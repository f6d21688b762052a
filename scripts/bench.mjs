// `npm run bench`: the measured speed and size of the worker. Writes bench/results/*.json and
// bench/results/latest.md, and prints the same.
//
// 1. Hot path on the host: `cargo bench --bench hot_path` (see benches/hot_path.rs).
// 2. Upload size: `wrangler deploy --dry-run` (total and gzip).
// 3. The real runtime: the built worker under wrangler dev (workerd), the fake ZITADEL answering
//    with BENCH_UPSTREAM_LATENCY_MS (20) of added latency, BENCH_REQUESTS (5000) signed requests
//    at BENCH_CONCURRENCY (32), with the metadata cache on and off, beside an empty worker that
//    answers `{}` at once (the floor). Reports requests/s, p50/p95/p99, upstream calls, errors,
//    and workerd's memory before and after two rounds.
//
// Environment: BENCH_SKIP_HOST=1 skips step 1; BENCH_REQUESTS, BENCH_CONCURRENCY,
// BENCH_UPSTREAM_LATENCY_MS, BENCH_ORGS, BENCH_ROUNDS (3) change the load; BENCH_EXTRA_ENTRY=<file>
// adds another worker script to compare (for example an empty worker that also logs a line).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { startFakeZitadel } from '../tests/support/fake-zitadel.mjs';
import { signatureHeader } from '../tests/support/signature.mjs';
import { ROOT, startWorker } from '../tests/support/worker.mjs';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const LATENCY_MS = Number(process.env.BENCH_UPSTREAM_LATENCY_MS ?? 20);
const ORGS = Number(process.env.BENCH_ORGS ?? 10);
const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 3));
const KEY = 'bench-signing-key';
const RESULTS = join(ROOT, 'bench', 'results');
const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };

mkdirSync(RESULTS, { recursive: true });
const report = { date: new Date().toISOString(), machine: machine() };

// 1. Host
if (!process.env.BENCH_SKIP_HOST) {
  console.log('== host: cargo bench --bench hot_path');
  const out = spawnSync('cargo', ['bench', '--quiet', '--bench', 'hot_path'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(out.stdout);
  if (out.status !== 0) process.exit(out.status ?? 1);
  report.host = JSON.parse(readFileSync(join(RESULTS, 'hot_path.json'), 'utf8'));
}

// 2. Build and size
console.log('== build and upload size (wrangler deploy --dry-run)');
execFileSync('sh', ['scripts/build.sh'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
const outdir = mkdtempSync(join(tmpdir(), 'zitadel-claims-dist-'));
const dry = spawnSync(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', outdir], { cwd: ROOT, env, encoding: 'utf8' });
rmSync(outdir, { recursive: true, force: true });
const size = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(dry.stdout + dry.stderr);
report.size = size ? { total_kib: Number(size[1]), gzip_kib: Number(size[2]), budget_gzip_kib: 200 } : { error: 'no size in wrangler output' };
console.log(`upload: ${size?.[1]} KiB, gzip ${size?.[2]} KiB`);

// 3. Runtime
const fixture = { accessToken: 'bench-pat', organizations: {} };
for (let o = 0; o < ORGS; o += 1) {
  const metadata = {};
  for (let r = 0; r < 20; r += 1) metadata[`role-${r}`] = ['app:read', `app:write-${r}`, `reports:${r}`];
  fixture.organizations[`org-${o}`] = { metadata };
}
const fake = await startFakeZitadel({ fixture, latencyMs: LATENCY_MS });
const bodies = Array.from({ length: ORGS }, (_, o) => payload(`org-${o}`));

const scenarios = [
  ['empty worker (floor)', { entry: join(ROOT, 'bench', 'empty-worker.mjs') }],
  ...(process.env.BENCH_EXTRA_ENTRY ? [[`extra: ${process.env.BENCH_EXTRA_ENTRY}`, { entry: resolve(ROOT, process.env.BENCH_EXTRA_ENTRY) }]] : []),
  ['cache on (TTL 60 s)', { vars: { METADATA_CACHE_TTL_SECONDS: '60' } }],
  ['cache off (TTL 0)', { vars: { METADATA_CACHE_TTL_SECONDS: '0' } }],
];
report.runtime = { requests: REQUESTS, rounds: ROUNDS, concurrency: CONCURRENCY, upstream_latency_ms: LATENCY_MS, organizations: ORGS, scenarios: {} };
for (const [name, options] of scenarios) {
  console.log(`== runtime: ${name}`);
  const worker = await startWorker({
    ...options,
    secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken },
    vars: { ZITADEL_DOMAIN: fake.url, GROUPS_CLAIM: 'groups', ...(options.vars ?? {}) },
  });
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    fake.reset();
    await load(worker.url, agent, bodies, 200); // warm-up: JIT, isolate, connections (and the cache)
    const rss = [workerdMemory(worker.pid)];
    const wasm = [await wasmMemory(worker.url)];
    const rounds = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      rounds.push(await load(worker.url, agent, bodies, REQUESTS));
      rss.push(workerdMemory(worker.pid));
      wasm.push(await wasmMemory(worker.url));
    }
    const upstreamCalls = fake.callsTo(/metadata\/search$/).length;
    agent.destroy();
    const [first] = rounds;
    const result = {
      ...first,
      upstream_calls: upstreamCalls,
      upstream_calls_counted_over: 200 + ROUNDS * REQUESTS,
      later_rounds: rounds.slice(1).map((r) => ({ rps: Math.round(r.rps), p50_ms: r.p50_ms, errors: r.errors })),
      errors_all_rounds: rounds.reduce((sum, r) => sum + r.errors, 0),
      workerd_rss_mib: rss,
      wasm_memory_mib: wasm,
    };
    report.runtime.scenarios[name] = result;
    console.log(`${first.rps.toFixed(0)} req/s, p50 ${first.p50_ms} ms, p95 ${first.p95_ms} ms, p99 ${first.p99_ms} ms, errors ${result.errors_all_rounds}, upstream calls ${upstreamCalls} (over ${result.upstream_calls_counted_over} requests), workerd RSS ${rss.join(' -> ')} MiB, wasm memory ${wasm.join(' -> ')} MiB`);
  } finally {
    await worker.stop();
  }
}
await fake.close();

const floor = report.runtime.scenarios['empty worker (floor)'].p50_ms;
for (const [name, s] of Object.entries(report.runtime.scenarios)) s.p50_ratio_to_floor = Number((s.p50_ms / floor).toFixed(2));
writeFileSync(join(RESULTS, 'runtime.json'), JSON.stringify(report, null, 2) + '\n');
writeFileSync(join(RESULTS, 'latest.md'), markdown(report));
console.log(`\n${markdown(report)}`);

/** Sends `count` requests, `CONCURRENCY` at a time, cycling through the bodies. */
async function load(url, agent, signed, count) {
  const latencies = [];
  let errors = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  async function lane() {
    while (next < count) {
      const { body, header } = signed[next % signed.length];
      next += 1;
      const t = process.hrtime.bigint();
      const { status, text } = await post(url, agent, body, header);
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (status !== 200 || !text.startsWith('{')) errors += 1;
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p) => Number(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))].toFixed(2));
  return { rps: count / seconds, p50_ms: pct(50), p95_ms: pct(95), p99_ms: pct(99), errors };
}

function post(url, agent, body, header) {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, 'ZITADEL-Signature': header } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', () => resolve({ status: 0, text: '' }));
    req.end(body);
  });
}

/** A realistic preaccesstoken payload: 5 grants × 4 roles, a 3 KB Microsoft token, full user. */
function payload(org) {
  const b64 = (s) => Buffer.from(s).toString('base64');
  const token = `EwB${'x'.repeat(3 * 1024 - 3)}`;
  const grants = Array.from({ length: 5 }, (_, g) => ({
    id: `31290907521391${g}`, grant_id: '', state: 1, creation_date: '2025-03-11T09:20:01.220Z', change_date: '2025-03-11T09:20:01.220Z', sequence: 2,
    user_id: '312909075212468632', roles: Array.from({ length: 4 }, (_, r) => `role-${g * 4 + r}`), resource_owner: org,
    project_id: `31290907521286${g}`, project_name: `Project ${g}`, org_name: 'ACME', org_primary_domain: 'acme.example', user_resource_owner: org,
  }));
  const body = JSON.stringify({
    function: 'function/preaccesstoken',
    userinfo: { sub: '312909075212468632', name: 'Ada Lovelace', email: 'ada@acme.example', email_verified: true },
    user: {
      id: '312909075212468632', resource_owner: org, state: 1, username: 'ada@acme.example', preferred_login_name: 'ada@acme.example',
      human: { first_name: 'Ada', last_name: 'Lovelace', display_name: 'Ada Lovelace', email: 'ada@acme.example', is_email_verified: true, preferred_language: 'en' },
    },
    user_metadata: [
      { key: 'microsoft_access_token', value: b64(JSON.stringify(token)) },
      { key: 'microsoft_access_token_expires_at', value: b64(String(Math.floor(Date.now() / 1000) + 3600)) },
    ],
    org: { id: org, name: 'ACME', primary_domain: 'acme.example' },
    user_grants: grants,
  });
  // Signed once: the run takes far less than the signature tolerance (300 s).
  return { body: Buffer.from(body), header: signatureHeader(body, KEY) };
}

/** The worker's wasm linear memory in MiB, from /healthz (absent for the JavaScript workers). */
async function wasmMemory(url) {
  const health = await (await fetch(`${url}/healthz`)).json().catch(() => ({}));
  return health.wasm_memory_bytes === undefined ? '-' : Number((health.wasm_memory_bytes / 1048576).toFixed(2));
}

/** RSS in MiB of the workerd processes in the wrangler process group `pgid`. */
function workerdMemory(pgid) {
  const ps = spawnSync('ps', ['-eo', 'pgid=,rss=,comm='], { encoding: 'utf8' }).stdout;
  const kib = ps.split('\n').map((l) => l.trim().split(/\s+/)).filter(([g, , comm]) => Number(g) === pgid && comm === 'workerd').reduce((sum, [, rss]) => sum + Number(rss), 0);
  return Math.round(kib / 1024);
}

function machine() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.+)/)?.[1] ?? 'unknown CPU';
  return `${cpu}, ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length ?? '?'} cores, Node ${process.version}`;
}

function markdown(r) {
  const lines = [`# Benchmark results (${r.date})`, '', `Machine: ${r.machine}`, ''];
  if (r.host) {
    lines.push('## Hot path on the host (cargo bench --bench hot_path)', '',
      `Verify + decode + all claims from a warm cache + serialize, ${r.host.body_bytes}-byte payload: **median ${(r.host.median_ns_per_request / 1000).toFixed(1)} µs** per request (p10 ${(r.host.p10_ns / 1000).toFixed(1)}, p90 ${(r.host.p90_ns / 1000).toFixed(1)}); of which signature ${(r.host.signature_check_median_ns / 1000).toFixed(1)} µs, decode ${(r.host.payload_decode_median_ns / 1000).toFixed(1)} µs, claims ${(r.host.claims_median_ns / 1000).toFixed(1)} µs, serialize ${(r.host.serialize_median_ns / 1000).toFixed(1)} µs.`, '');
  }
  lines.push('## Upload size (wrangler deploy --dry-run)', '', `${r.size.total_kib} KiB, **${r.size.gzip_kib} KiB gzip** (budget 200 KiB gzip).`, '');
  const rt = r.runtime;
  lines.push(`## The real runtime (wrangler dev)`, '', `${rt.requests} signed requests per round at concurrency ${rt.concurrency}, ${rt.rounds} rounds after 200 warm-up requests, ${rt.organizations} organizations, fake ZITADEL with ${rt.upstream_latency_ms} ms added latency. Latencies are of the first round; errors and upstream calls count all rounds and the warm-up.`, '',
    '| scenario | req/s | p50 ms | p95 ms | p99 ms | p50 / floor | errors | upstream calls | workerd RSS MiB (after warm-up → after each round) | wasm memory MiB (same points) |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const [name, s] of Object.entries(rt.scenarios)) {
    lines.push(`| ${name} | ${s.rps.toFixed(0)} | ${s.p50_ms} | ${s.p95_ms} | ${s.p99_ms} | ${s.p50_ratio_to_floor} | ${s.errors_all_rounds} | ${s.upstream_calls} | ${s.workerd_rss_mib.join(' → ')} | ${s.wasm_memory_mib.join(' → ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
