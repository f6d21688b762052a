// Runs the BUILT worker (build/index.js, made by scripts/build.sh) under `wrangler dev`, i.e. in
// workerd, on a free loopback port, with the settings a test gives. Each instance gets its own
// temporary wrangler.toml (so the developer's .dev.vars never leaks into a test), its own state
// directory and wrangler log file, and its own process group, which stop() ends as a whole: no
// workerd is left behind.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { waitFor } from './wait.mjs';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const ENTRY = join(ROOT, 'build', 'index.js');
const running = new Set();
/** The path of `settleLog`'s requests (answered 404). */
const BARRIER = '/__log_barrier/';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function compatibilityDate() {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  return toml.match(/^compatibility_date\s*=\s*"([^"]+)"/m)[1];
}

const tomlString = (s) => JSON.stringify(String(s));

/**
 * Starts the worker. `vars`: plain settings (written to [vars]); `secrets`: secret settings
 * (written to .dev.vars, which wrangler prints as "(hidden)", so the whole output can be checked
 * for leaks). `entry`: another worker script to run instead (the benchmark's empty worker).
 * `kv`: binding names of KV namespaces to attach (simulated locally); `stateDir`:
 * where wrangler keeps local KV data, to share it between instances (default: a fresh directory).
 * `inspector: false` runs wrangler's dev server without the DevTools inspector (the benchmark's
 * second runtime measurement; see dev-server-no-inspector.mjs). `env`: more environment variables
 * for wrangler (e.g. WRANGLER_DISABLE_REQUEST_BODY_DRAINING).
 * Resolves once /healthz answers.
 */
export async function startWorker({ vars = {}, secrets = {}, kv = [], stateDir, entry = ENTRY, logLevel = 'log', inspector = true, timeoutMs = 90_000, env: extraEnv = {} } = {}) {
  if (!existsSync(entry)) {
    throw new Error(`${entry} is missing: build the worker first (sh scripts/build.sh, or npm test)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'zitadel-claims-e2e-'));
  const lines = [
    'name = "zitadel-claims-test"',
    `main = ${tomlString(entry)}`,
    `compatibility_date = "${compatibilityDate()}"`,
    '',
  ];
  for (const binding of kv) lines.push('[[kv_namespaces]]', `binding = ${tomlString(binding)}`, `id = ${tomlString(binding.toLowerCase())}`, '');
  lines.push('[vars]');
  for (const [k, v] of Object.entries(vars)) lines.push(`${k} = ${tomlString(v)}`);
  const config = join(dir, 'wrangler.toml');
  writeFileSync(config, lines.join('\n') + '\n');
  writeFileSync(join(dir, '.dev.vars'), Object.entries(secrets).map(([k, v]) => `${k}=${JSON.stringify(String(v))}\n`).join(''));

  const persist = stateDir ?? join(dir, 'state');
  // A port found free can be taken by another process before wrangler binds it (the tests start
  // many servers): wrangler then exits with "Address already in use", and new ports are tried.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await launch({ dir, config, persist, inspector, logLevel, timeoutMs, extraEnv });
    } catch (e) {
      if (!e.portTaken || attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
}

/** One start of wrangler on fresh ports; on failure its process group is gone, `dir` is kept. */
async function launch({ dir, config, persist, inspector, logLevel, timeoutMs, extraEnv }) {
  const port = await freePort();
  const inspectorPort = inspector ? await freePort() : undefined;
  const [command, args] = inspector
    ? [WRANGLER, ['dev', '--config', config, '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspectorPort),
        '--persist-to', persist, '--show-interactive-dev-session=false', '--log-level', logLevel]]
    : [process.execPath, [join(ROOT, 'tests', 'support', 'dev-server-no-inspector.mjs'), config, String(port), persist, logLevel]];
  // wrangler also writes every message, down to one debug entry per DevTools event (several per
  // request), to a log file under ~/.config/.wrangler/logs: ~450 MB per benchmark run. It goes
  // to this instance's own directory instead and is removed with it.
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1', FORCE_COLOR: '0', WRANGLER_LOG_PATH: join(dir, 'wrangler.log'), ...extraEnv };
  const child = spawn(command, args, {
    cwd: dir,
    detached: true, // own process group: stop() signals wrangler and workerd together
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  let exited = false;
  child.on('exit', () => { exited = true; });
  let closed = false; // all output read
  child.on('close', () => { closed = true; });

  /** Ends the process group (wrangler and its workerd). */
  const end = async () => {
    if (!exited) {
      killGroup(child.pid, 'SIGTERM');
      const gone = await waitFor(() => exited, 5000);
      if (!gone) killGroup(child.pid, 'SIGKILL');
      await waitFor(() => exited, 5000);
    }
    // workerd may outlive wrangler in the group for a moment; make sure the group is gone.
    killGroup(child.pid, 'SIGKILL');
  };
  let barriers = 0;
  const instance = {
    url: `http://127.0.0.1:${port}`,
    /** wrangler's DevTools port (undefined without the inspector). */
    inspectorPort,
    pid: child.pid,
    /** Everything wrangler and the worker printed so far. */
    output: () => output,
    /** The worker's structured log lines (one JSON object per request), parsed; not the barriers of `settleLog`. */
    logLines: () => output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{"method"')).map((l) => JSON.parse(l))
      .filter((l) => !l.path.startsWith(BARRIER)),
    /**
     * Resolves once the log lines of every request answered so far are printed. A line reaches
     * this process through wrangler's output, not with the answer, so it may come after the
     * answer; but workerd prints its lines in order. So a request sent now to a path of its own
     * (a 404, logged with that path) is a barrier: when its line is in, the earlier ones are too.
     */
    async settleLog() {
      barriers += 1;
      const path = `${BARRIER}${barriers}`;
      await fetch(`${instance.url}${path}`).then((r) => r.arrayBuffer());
      const seen = await waitFor(() => output.includes(`"path":"${path}"`), 5000);
      assert.ok(seen, `the log barrier ${path} was not printed: ${output.slice(-2000)}`);
    },
    /**
     * The key names in the local KV namespace `binding` (one of startWorker's `kv`), read from this
     * instance's state directory by wrangler's own `kv key list --local`: what another instance
     * started on that directory reads. Takes a second or two (it starts wrangler).
     */
    async kvKeys(binding) {
      const { stdout } = await promisify(execFile)(WRANGLER, ['kv', 'key', 'list', '--local', '--binding', binding, '--config', config, '--persist-to', persist], { cwd: dir, env });
      return JSON.parse(stdout).map((k) => k.name);
    },
    async stop() {
      running.delete(instance);
      await end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(instance);

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const res = await fetch(`${instance.url}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return instance;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  running.delete(instance);
  await end();
  await waitFor(() => closed, 2000);
  const error = new Error(`wrangler dev did not start:\n${output}`);
  error.portTaken = exited && output.includes('Address already in use');
  throw error;
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

// A test that crashes must not leave servers behind.
process.on('exit', () => {
  for (const w of running) {
    try {
      process.kill(-w.pid, 'SIGKILL');
    } catch {
      // ignore
    }
  }
});

/**
 * Runs `request` and returns its answer with the one log line it made (printed a moment later).
 * The log is settled first, so a late line of an earlier request is not taken for this one's.
 */
export async function withLogLine(w, request) {
  await w.settleLog();
  const before = w.logLines().length;
  const res = await request();
  await w.settleLog();
  const made = w.logLines().slice(before);
  assert.equal(made.length, 1, w.output().slice(-2000));
  return { res, line: made[0] };
}
