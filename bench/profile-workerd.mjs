// Where the CPU time of one request goes inside the workerd that runs the worker: the built
// worker (or --entry, e.g. bench/empty-worker-with-log.mjs for comparison) on wrangler's dev server
// without the inspector, as in production, 8 clients sending the benchmark's call in a loop (cache
// on, warm), and `perf record` on that workerd for --seconds. Prints µs per request by kind of
// code (JIT: the wasm and JavaScript, compiled at run time; workerd: the runtime itself, V8 and
// BoringSSL included; the kernel) and the symbols that cost the most.
//
// Run: npm run profile [-- --entry FILE] [-- --seconds 10]   (builds the worker first)
// Needs perf (Debian: linux-perf) allowed to attach (root, or kernel.perf_event_paranoid <= 1).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { benchFixture, benchPayload, post, servingProcesses } from './support.mjs';
import { startFakeZitadel } from '../tests/support/fake-zitadel.mjs';
import { startWorker } from '../tests/support/worker.mjs';

const { values: args } = parseArgs({ options: { entry: { type: 'string' }, seconds: { type: 'string', default: '10' } } });
const SECONDS = Number(args.seconds);
if (!(SECONDS >= 1 && SECONDS <= 240)) {
  // One signed call is replayed for the whole run: it must stay inside the 300 s time window.
  console.error('--seconds must be between 1 and 240');
  process.exit(2);
}
const CLIENTS = 8;
const SAMPLE_HZ = 1999;
const KEY = 'profile-signing-key';

if (spawnSync('perf', ['--version']).status !== 0) {
  console.error('perf is missing (Debian: apt install linux-perf)');
  process.exit(2);
}
const fake = await startFakeZitadel({ fixture: benchFixture(1) });
const worker = await startWorker({
  inspector: false,
  ...(args.entry ? { entry: resolve(args.entry) } : {}),
  secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken },
  vars: { ZITADEL_DOMAIN: fake.url, GROUPS_CLAIM: 'groups', MS_TOKEN_CLIENT_IDS: '*', METADATA_CACHE_TTL_SECONDS: '600' },
});
const dir = mkdtempSync(join(tmpdir(), 'zitadel-claims-perf-'));
try {
  const { body, header } = benchPayload('org-0', KEY);
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const counts = { ok: 0, failed: 0 };
  let running = true;
  const client = async () => {
    while (running) {
      const { status } = await post(worker.url, agent, body, header);
      counts[status === 200 ? 'ok' : 'failed'] += 1;
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);
  await new Promise((r) => setTimeout(r, 3000)); // warm-up: JIT, connections, the cache

  const pid = servingProcesses(worker).find((p) => p.kind === 'workerd_worker')?.pid;
  if (!pid) throw new Error("the worker's workerd was not found");
  const data = join(dir, 'perf.data');
  const before = counts.ok;
  const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(SAMPLE_HZ), '-p', pid, '-o', data, '--', 'sleep', String(SECONDS)], { stdio: 'inherit' });
  const code = await new Promise((r) => perf.on('exit', r));
  const requests = counts.ok - before;
  running = false;
  await Promise.all(clients);
  if (code !== 0) throw new Error(`perf record exited with ${code} (allowed to attach? see the header of this file)`);
  if (counts.failed || !requests) throw new Error(`${counts.failed} requests failed, ${requests} answered while profiling`);

  const usPerSample = 1e6 / SAMPLE_HZ;
  /** perf's flat report by `key`: [samples, name] rows. */
  const rows = (key) => spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', key, '-g', 'none', '-n', '--stdio'], { encoding: 'utf8' }).stdout
    .split('\n').filter((l) => /^\s+[\d.]+%/.test(l)).map((l) => l.trim().split(/\s+/)).map(([, n, ...name]) => [Number(n), name.join(' ')]);
  const perRequest = (samples) => ((samples * usPerSample) / requests).toFixed(1);
  const kinds = {};
  for (const [n, dso] of rows('dso')) {
    const kind = dso.startsWith('[JIT]') ? 'JIT code (wasm, JavaScript)' : dso === 'workerd' ? 'workerd (runtime, V8, BoringSSL)' : dso.startsWith('[kernel') ? 'kernel' : 'other libraries';
    kinds[kind] = (kinds[kind] ?? 0) + n;
  }
  const total = Object.values(kinds).reduce((a, b) => a + b, 0);
  console.log(`${args.entry ?? 'the worker'}: ${requests} requests in ${SECONDS} s; µs of CPU per request in the worker's workerd: ${perRequest(total)}`);
  for (const [kind, n] of Object.entries(kinds).sort((a, b) => b[1] - a[1])) console.log(`  ${perRequest(n).padStart(7)}  ${kind}`);
  console.log('top symbols, µs per request:');
  for (const [n, sym] of rows('dso,sym').slice(0, 15)) console.log(`  ${perRequest(n).padStart(7)}  ${sym.slice(0, 120)}`);
} finally {
  await worker.stop();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
}
