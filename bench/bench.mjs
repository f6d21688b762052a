// `npm run bench`: the measured speed and size of the worker. Writes bench/results/*.json and
// bench/results/latest.md, and prints the same.
//
// 1. Hot path on the host: `cargo bench --bench hot_path` (see bench/hot_path.rs).
// 2. Upload size: `wrangler deploy --dry-run` (total and gzip); the startup CPU of `wrangler check
//    startup`, beside the JavaScript comparison worker's (bench/startup.mjs; BENCH_SKIP_STARTUP=1
//    skips it).
// 3. The real runtime: the built worker under wrangler dev (workerd), the fake ZITADEL answering
//    with BENCH_UPSTREAM_LATENCY_MS (20) of added latency, BENCH_REQUESTS (5000) signed requests
//    per round at BENCH_CONCURRENCY (32), with the metadata cache on and off, the same calls as
//    JWT (RS256) and JWE (RSA-OAEP-256) payloads with the cache on, and a warm token exchange
//    (`POST /token` of a back end for one of BENCH_USERS (10) users, whose Graph token the worker
//    keeps in memory), beside an empty worker that answers `{}` at once (the floor). The scenarios run side by side and take turns
//    for BENCH_ROUNDS (4) rounds. Reports requests/s, p50/p95/p99 (medians over the rounds),
//    upstream calls, errors, the resident memory of the worker's workerd and of wrangler's proxy
//    workerd and the wasm's memory (and with BENCH_HEAP=1 the isolate's JavaScript heap) after the
//    warm-up and each round, and where the CPU time goes:
//    per request, in wrangler (Node), in the proxy workerd, in the worker's workerd, and in this
//    load generator.
//
// Environment: BENCH_SKIP_HOST=1 skips step 1; BENCH_REQUESTS, BENCH_CONCURRENCY,
// BENCH_UPSTREAM_LATENCY_MS, BENCH_ORGS, BENCH_ROUNDS change the load; BENCH_EXTRA_ENTRY=<file>[,<file>]
// adds other worker scripts to compare (bench/empty-worker-with-log.mjs: an empty worker that also
// logs a line; bench/same-work-in-js.mjs: this worker's work in plain JavaScript, which also runs
// with the JWT and JWE calls; bench/exchange-in-js.mjs: the warm token exchange in plain
// JavaScript, which runs with the exchange only; both are first checked to answer as this worker
// does, by bench/same-work-check.mjs: the run stops if one does not); BENCH_PAYLOADS (json,jwt,jwe,sealed,exchange) the scenarios measured
// (sealed: the JSON call with the Microsoft token sealed, beside the cleartext one; exchange: the
// token exchange); BENCH_USERS (10) the exchange's users; BENCH_LOG_LEVEL (log) is wrangler dev's --log-level; BENCH_INSPECTOR=off runs the runtime part
// on wrangler's dev server without the DevTools inspector (which the CLI cannot turn off, and which
// hands every console line to wrangler), writing runtime-no-inspector.json and
// latest-no-inspector.md instead; BENCH_HEAP=1 (inspector on) also reads the isolate's JavaScript
// heap after a full collection, between rounds, through wrangler's DevTools port. Off by default:
// attaching DevTools, even between rounds, made wrangler drop connections in the next round
// (ECONNRESET in 3 of 4 short runs, none in 2 without it).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { checkSameExchange, checkSameWork } from './same-work-check.mjs';
import { startupProfiles } from './startup.mjs';
import { markdown } from './report.mjs';
import { FLOOR, targets } from './targets.mjs';
import { BENCH_SEALING_KEY, benchBody, benchFixture, benchJoseKeys, benchPayload, exchangeCalls, exchangeSettings, send, servingProcesses } from './support.mjs';
import { startFakeZitadel } from '../tests/support/fake-zitadel.mjs';
import { signatureHeader } from '../tests/support/signature.mjs';
import { ROOT, startWorker } from '../tests/support/worker.mjs';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const LATENCY_MS = Number(process.env.BENCH_UPSTREAM_LATENCY_MS ?? 20);
const ORGS = Number(process.env.BENCH_ORGS ?? 10);
const USERS = Number(process.env.BENCH_USERS ?? 10);
const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 4));
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'log';
const INSPECTOR = process.env.BENCH_INSPECTOR !== 'off';
const SUFFIX = INSPECTOR ? '' : '-no-inspector';
const HEAP = INSPECTOR && process.env.BENCH_HEAP === '1';
const KEY = 'bench-signing-key';
const RESULTS = join(ROOT, 'bench', 'results');
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const PAGE_BYTES = Number(spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).stdout.trim()) || 4096;
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

// 2b. Startup CPU
if (!process.env.BENCH_SKIP_STARTUP) {
  console.log('== startup CPU (wrangler check startup), this worker and the JavaScript one');
  report.startup = startupProfiles(env);
  console.log(`startup: active ${report.startup.worker.active_ms_median} ms (JavaScript: ${report.startup.same_work_in_js.active_ms_median} ms)`);
}

// 3. Runtime
const fixture = benchFixture(ORGS);
const bodies = Array.from({ length: ORGS }, (_, o) => benchPayload(`org-${o}`, KEY));

const joseKeys = await benchJoseKeys();
const PAYLOADS = (process.env.BENCH_PAYLOADS ?? 'json,jwt,jwe,sealed,exchange').split(',').filter(Boolean);
// The exchange's calls are made per run, once its fake ZITADEL has issued the users' tokens.
const bodiesOf = Object.fromEntries(await Promise.all(PAYLOADS.filter((kind) => kind !== 'exchange').map(async (kind) => [kind, await Promise.all(bodies.map((b) => benchBody(b, kind, joseKeys, KEY)))])));
const LABEL = { jwt: 'jwt (RS256)', jwe: 'jwe (RSA-OAEP-256, A256GCM, RS256)', sealed: 'json, Microsoft token sealed (TOKEN_SEALING_KEY)', exchange: 'token exchange, warm (POST /token)' };
const extras = (process.env.BENCH_EXTRA_ENTRY ?? '').split(',').filter(Boolean);
// The JavaScript twins, each with the scenarios it answers and the check that it answers them as
// this worker does; any other extra entry gets the JSON call.
const twinOf = (file) => {
  if (file.includes('same-work')) return { payloads: ['json', 'jwt', 'jwe', 'sealed'], check: checkSameWork };
  if (file.includes('exchange-in-js')) return { payloads: ['exchange'], check: checkSameExchange };
  return undefined;
};
const scenarios = [
  [FLOOR, { entry: join(ROOT, 'bench', 'empty-worker.mjs') }],
  ...extras.flatMap((file) => PAYLOADS.filter((kind) => (twinOf(file)?.payloads ?? ['json']).includes(kind))
    .map((kind) => [kind === 'json' ? `extra: ${file}` : `extra: ${file}, ${LABEL[kind]}`, { entry: resolve(ROOT, file), payload: kind }])),
  ...PAYLOADS.map((kind) => [kind === 'json' ? 'cache on (TTL 60 s)' : kind === 'exchange' ? LABEL.exchange : `cache on, ${LABEL[kind]}`, kind === 'exchange' ? { ours: true, payload: kind } : { vars: { METADATA_CACHE_TTL_SECONDS: '60' }, ours: true, payload: kind, ...(kind === 'sealed' ? { secrets: { TOKEN_SEALING_KEY: BENCH_SEALING_KEY } } : {}) }]),
  ['cache off (TTL 0)', { vars: { METADATA_CACHE_TTL_SECONDS: '0' }, ours: true }],
];
// A JavaScript twin is measured as doing this worker's work: check that it does, before it is measured.
for (const file of extras.filter((f) => twinOf(f)?.payloads.some((kind) => PAYLOADS.includes(kind)))) {
  console.log(`== ${file}: the same answers and log lines as this worker (bench/same-work-check.mjs)`);
  try {
    console.log(`ok: ${(await twinOf(file).check(resolve(ROOT, file))).join(', ')}`);
  } catch (e) {
    console.error(`${file} does not do this worker's work, so measuring it would compare nothing:\n${e.stack ?? e}`);
    process.exit(1);
  }
}
report.runtime = { inspector: INSPECTOR, requests: REQUESTS, rounds: ROUNDS, concurrency: CONCURRENCY, upstream_latency_ms: LATENCY_MS, organizations: ORGS, ...(PAYLOADS.includes('exchange') ? { exchange_users: USERS } : {}), scenarios: {} };

// All scenarios run side by side (each its own wrangler dev and fake ZITADEL, idle while the
// others are measured) and take turns round by round, each round starting one scenario later, so
// that neither the order nor a noisy minute on a shared machine favours one of them.
console.log(`== runtime: starting ${scenarios.length} workers`);
const runs = [];
try {
  for (const [name, { entry, vars = {}, secrets = {}, ours = false, payload = 'json' }] of scenarios) {
    // In the list before the worker starts, so that `finally` closes its fake ZITADEL either way.
    // The exchange's fake ZITADEL is also the OpenID provider that issues the users' access tokens.
    const exchange = payload === 'exchange';
    const run = { name, ours, payload, bodies: bodiesOf[payload] ?? bodies, ttl: Number(vars.METADATA_CACHE_TTL_SECONDS ?? 0), fake: await startFakeZitadel({ fixture, latencyMs: LATENCY_MS, ...(exchange ? { oidc: {} } : {}) }) };
    runs.push(run);
    run.fake.setWebKeys([joseKeys.jwk]);
    const settings = exchange ? exchangeSettings(run.fake) : { secrets: {}, vars: {} };
    if (exchange) run.bodies = exchangeCalls(run.fake, USERS);
    run.worker = await startWorker({
      entry,
      logLevel: LOG_LEVEL,
      inspector: INSPECTOR,
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: run.fake.accessToken, PAYLOAD_DECRYPTION_KEY: joseKeys.decryptionKey, ...settings.secrets, ...secrets },
      vars: { ZITADEL_DOMAIN: run.fake.url, GROUPS_CLAIM: 'groups', MS_TOKEN_CLIENT_IDS: '*', ...settings.vars, ...vars },
    });
    Object.assign(run, { agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }), rounds: [] });
  }
  for (const run of runs) {
    run.startedAt = Date.now();
    // The exchange's first call per user, one at a time: it reads the key set and the user's
    // sealed tokens and keeps the Graph token in memory; every later call is a warm one.
    for (const call of run.payload === 'exchange' ? run.bodies : []) {
      const { status, text } = await send(run.worker.url, run.agent, call);
      if (status !== 200) throw new Error(`${run.name}: the first exchange for user ${call.user} was answered ${status} ${text.slice(0, 300)}`);
    }
    await load(run.worker.url, run.agent, run.bodies, 200); // warm-up: JIT, isolate, connections (and the cache)
    run.rss = [workerdMemory(run.worker)];
    run.wasm = [await wasmMemory(run.worker.url)];
    run.heap = [await liveHeap(run)];
  }
  for (let round = 0; round < ROUNDS; round += 1) {
    for (let i = 0; i < runs.length; i += 1) {
      const run = runs[(round + i) % runs.length];
      const cpuBefore = processCpu(run.worker);
      const result = await load(run.worker.url, run.agent, run.bodies, REQUESTS);
      result.cpu_us_per_request = cpuPerRequest(cpuBefore, processCpu(run.worker), REQUESTS);
      run.rounds.push(result);
      run.rss.push(workerdMemory(run.worker));
      run.wasm.push(await wasmMemory(run.worker.url));
      run.heap.push(await liveHeap(run));
      run.endedAt = Date.now();
      console.log(`round ${round + 1}, ${run.name}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms, errors ${result.errors}`, result.errors ? result.failures : '');
      if (result.errors) writeFileSync(join(RESULTS, `worker-output-${runs.indexOf(run)}.log`), run.worker.output());
    }
  }
  for (const run of runs) {
    const metric = (key) => median(run.rounds.map((r) => r[key]));
    report.runtime.scenarios[run.name] = {
      rps: metric('rps'),
      p50_ms: metric('p50_ms'),
      p95_ms: metric('p95_ms'),
      p99_ms: metric('p99_ms'),
      rounds: run.rounds.map((r) => ({ rps: Math.round(r.rps), p50_ms: r.p50_ms, p95_ms: r.p95_ms, p99_ms: r.p99_ms, errors: r.errors, failures: r.failures })),
      errors_all_rounds: run.rounds.reduce((sum, r) => sum + r.errors, 0),
      upstream_calls: run.fake.callsTo(/metadata\/search$/).length,
      payload: run.payload,
      key_set_reads: run.fake.callsTo(/oauth\/v2\/keys$/).length,
      upstream_calls_counted_over: 200 + ROUNDS * REQUESTS + (run.payload === 'exchange' ? USERS : 0),
      ours: run.ours,
      ...(run.payload === 'exchange' ? { exchange_users: USERS } : {}),
      ...(run.ttl ? { cache_ttl_seconds: run.ttl } : {}),
      seconds_from_warm_up_to_last_round: Math.round((run.endedAt - run.startedAt) / 1000),
      cpu_us_per_request: Object.fromEntries(Object.keys(run.rounds[0].cpu_us_per_request).map((k) => [k, Math.round(median(run.rounds.map((r) => r.cpu_us_per_request[k])))])),
      workerd_rss_mib: { worker: run.rss.map((r) => r.worker), proxy: run.rss.map((r) => r.proxy) },
      wasm_memory_mib: run.wasm,
      js_heap_after_gc_mib: run.heap,
    };
  }
} finally {
  for (const run of runs) {
    run.agent?.destroy();
    await run.worker?.stop();
    await run.fake.close();
  }
}

const floor = report.runtime.scenarios[FLOOR].p50_ms;
for (const s of Object.values(report.runtime.scenarios)) s.p50_ratio_to_floor = Number((s.p50_ms / floor).toFixed(2));
report.targets = targets(report);
writeFileSync(join(RESULTS, `runtime${SUFFIX}.json`), JSON.stringify(report, null, 2) + '\n');
writeFileSync(join(RESULTS, `latest${SUFFIX}.md`), markdown(report));
console.log(`\n${markdown(report)}`);

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return Number((sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2).toFixed(2));
}

/** Sends `count` requests, `CONCURRENCY` at a time, cycling through the bodies. */
async function load(url, agent, signed, count) {
  const latencies = [];
  const failures = {}; // "<status> <start of body>" -> count (status 0: no answer)
  let errors = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  async function lane() {
    while (next < count) {
      const entry = signed[next % signed.length];
      // Signed again each minute: a whole run lasts longer than the signature tolerance (300 s).
      // (The exchange's calls carry no signature: their access tokens live 12 hours.)
      if (entry.header && Date.now() - entry.signedAt > 60_000) Object.assign(entry, { header: signatureHeader(entry.body, KEY), signedAt: Date.now() });
      next += 1;
      const t = process.hrtime.bigint();
      const { status, text } = await send(url, agent, entry);
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (status !== 200 || !text.startsWith('{')) {
        errors += 1;
        const kind = `${status} ${text.slice(0, 120)}`;
        failures[kind] = (failures[kind] ?? 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p) => Number(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))].toFixed(2));
  return { rps: count / seconds, p50_ms: pct(50), p95_ms: pct(95), p99_ms: pct(99), errors, failures };
}

/** The worker's wasm linear memory in MiB, from /healthz (absent for the JavaScript workers). */
async function wasmMemory(url) {
  const health = await fetch(`${url}/healthz`).then((r) => r.json()).catch(() => ({ down: true }));
  if (health.down) return 'down';
  return health.wasm_memory_bytes === undefined ? '-' : Number((health.wasm_memory_bytes / 1048576).toFixed(2));
}

/**
 * The worker isolate's JavaScript heap in MiB after a full garbage collection, read through
 * wrangler's DevTools port ('-' unless BENCH_HEAP=1). V8 runs the collection only when the
 * isolate next gets a turn, so /healthz is called every 100 ms until the collection answers.
 * Connected only for the reading: with DevTools attached, wrangler forwards every runtime and
 * network event to it, which changes what the rounds measure (and, without the cache, crashed
 * wrangler under load once); even so, attaching made wrangler drop connections afterwards.
 */
async function liveHeap(run) {
  if (!HEAP) return '-';
  const devtools = await connectDevTools(run.worker.inspectorPort);
  try {
    let answered = false;
    const collected = devtools.send('HeapProfiler.collectGarbage').then((answer) => { answered = true; return answer; });
    while (!answered) {
      await fetch(`${run.worker.url}/healthz`).then((r) => r.arrayBuffer()).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if ((await collected).timeout) return 'no gc';
    const usage = await devtools.send('Runtime.getHeapUsage');
    return usage.result ? Number((usage.result.usedSize / 1048576).toFixed(2)) : 'no answer';
  } finally {
    devtools.close();
  }
}

/** A DevTools protocol client on wrangler's inspector port, for one reading. */
async function connectDevTools(port) {
  const targets = await fetch(`http://127.0.0.1:${port}/json`).then((r) => r.json());
  // wrangler's inspector refuses a client that sends a User-Agent (Node's WebSocket does) without
  // an Origin it allows (400 "Expected `Origin` header"); `headers` is an extension of Node's
  // WebSocket (undici).
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { origin: 'http://localhost' } });
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', () => reject(new Error('DevTools connection failed')), { once: true });
  });
  const pending = new Map();
  let next = 0;
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  return {
    /** The answer to one command, or `{ timeout: true }` after 10 s. */
    send(method, params = {}) {
      const id = (next += 1);
      return new Promise((resolve) => {
        const timer = setTimeout(() => { pending.delete(id); resolve({ timeout: true }); }, 10_000);
        pending.set(id, (message) => { clearTimeout(timer); resolve(message); });
        socket.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => socket.close(),
  };
}

/** CPU time so far (µs) of the serving processes, and of this one (load generator, fake ZITADEL). */
function processCpu(worker) {
  const cpu = { wrangler_node: 0, workerd_proxy: 0, workerd_worker: 0 };
  for (const { pid, kind } of servingProcesses(worker)) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      cpu[kind] += ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
    } catch {
      // gone
    }
  }
  const self = process.cpuUsage();
  cpu.load_generator = self.user + self.system;
  return cpu;
}

function cpuPerRequest(before, after, requests) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.round((after[k] - before[k]) / requests)]));
}

/** Resident memory in MiB of the worker's workerd and of wrangler's proxy workerd. */
function workerdMemory(worker) {
  const rss = { worker: 0, proxy: 0 };
  for (const { pid, kind } of servingProcesses(worker)) {
    if (kind === 'wrangler_node') continue;
    try {
      const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
      rss[kind === 'workerd_worker' ? 'worker' : 'proxy'] += Math.round((pages * PAGE_BYTES) / 1048576);
    } catch {
      // gone
    }
  }
  return rss;
}

function machine() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.+)/)?.[1] ?? 'unknown CPU';
  return `${cpu}, ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length ?? '?'} cores, Node ${process.version}`;
}
