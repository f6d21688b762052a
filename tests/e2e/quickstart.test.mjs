// The README's Quick start, run against the fakes (issue 24): its commands are read from README.md
// (the ```sh blocks of `## Quick start`, a ` \` continuing a command on the next line) and must be
// the ones listed here, in order, so that a changed path fails this test until it follows. Each is
// then run, or stood in for, in order, and each step's "How to tell it worked" is checked; the
// values checked (permissions, setting names, claims) are read from those sentences.
// - git clone, cd, npm install, npx wrangler login: not run (this runs in the checked-out,
//   installed repository; wrangler login needs Cloudflare).
// - npm run dev, npm run sample: run as written (PORT and DEMO_APP_PORT pick free ports). `npm run
//   dev` runs scripts/toolchain.sh and wrangler's [build] (scripts/build.sh), quick once built.
// - npm run deploy: the built worker (tests/support/worker.mjs) with ZITADEL_DOMAIN, the fake
//   ZITADEL's URL, under [vars], behind a proxy whose URL stands for the workers.dev URL. A stored
//   secret redeploys it (a new wrangler dev, on another port): the proxy holds requests meanwhile.
// - curl .../healthz: fetched through the proxy.
// - npx wrangler secret put ZITADEL_ACCESS_TOKEN: the worker redeployed with the worker's token.
// - npm run setup (dry run, then for real): run as written through `sh -c`, with the placeholders
//   replaced and `--allow-http` added (the fakes are http), the fake wrangler as wrangler; what it
//   stores reaches this file's stand-in for Cloudflare, which redeploys the worker with it.
// - npx wrangler tail: not run (Cloudflare); the fake ZITADEL's target is called as ZITADEL does
//   for a user with the role of step 5 (tests/support/zitadel-executor.mjs), the worker's log line
//   is read, and the README's `node -p` decodes a token carrying the claims that came back.
// Needs the worker's build (sh scripts/build.sh) and the setup tool's (cargo build --release -p
// zitadel-claims-setup), as scripts/test.sh makes them before the end-to-end tests.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { PAYLOAD } from '../support/sample.mjs';
import { waitFor, waitUntil } from '../support/wait.mjs';
import { ROOT, freePort, startWorker, withLogLine } from '../support/worker.mjs';
import { execute } from '../support/zitadel-executor.mjs';

const FAKE_WRANGLER = fileURLToPath(new URL('../support/fake-wrangler.mjs', import.meta.url));
const SETUP_BINARY = join(ROOT, 'target', 'release', 'zitadel-claims-setup');

// ---- the README ----

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SECTION = (() => {
  const start = README.indexOf('\n## Quick start\n');
  assert.ok(start >= 0, 'README.md has no `## Quick start` section');
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end < 0 ? undefined : end);
})();

/** The commands of the section's ```sh blocks: continued lines joined, no blanks, no comments. */
function quickStartCommands(section) {
  const commands = [];
  for (const [, block] of section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    for (const line of block.replace(/ \\\n\s*/g, ' ').split('\n')) {
      const command = line.trim();
      if (command && !command.startsWith('#')) commands.push(command);
    }
  }
  return commands;
}

/** The numbered steps of the section: { number: text } (the lines up to the next step). */
const STEPS = Object.fromEntries(
  SECTION.split(/^(?=\d+\. \*\*)/m).slice(1).map((text) => [Number(/^(\d+)\./.exec(text)[1]), text]),
);
/** A step's "How to tell it worked" sentences, with whitespace made single spaces. */
function howToTell(step) {
  const text = STEPS[step];
  assert.ok(text, `the Quick start has no step ${step}`);
  const at = text.indexOf('How to tell it worked:');
  assert.ok(at >= 0, `step ${step} says no "How to tell it worked"`);
  return text.slice(at).replace(/```[\s\S]*?```/g, ' ').replace(/\s+/g, ' ');
}
/** The first group of `re` in `text`; fails naming `what` when the README no longer says it. */
function said(text, re, what) {
  const m = re.exec(text);
  assert.ok(m, `README.md's Quick start no longer says ${what} (${re}): update this test`);
  return m[1];
}

const HEALTHZ = 'curl https://zitadel-claims.<your-subdomain>.workers.dev/healthz';
const SETUP_ARGS = '--domain <your-instance>.zitadel.cloud --worker-url https://zitadel-claims.<your-subdomain>.workers.dev/';
/** What each command of the Quick start must be, in order, and what this test does with it. */
const EXPECTED = [
  ['clone', /^git clone \S+ zitadel-claims-worker$/],
  ['cd', /^cd zitadel-claims-worker$/],
  ['install', /^npm install$/],
  ['dev', /^npm run dev$/],
  ['sample', /^npm run sample$/],
  ['login', /^npx wrangler login$/],
  ['deploy', /^npm run deploy$/],
  ['healthz', HEALTHZ],
  ['secret', /^npx wrangler secret put ZITADEL_ACCESS_TOKEN$/],
  ['healthz', HEALTHZ],
  ['setup-dry-run', `ZITADEL_PAT=<setup-user-token> npm run setup -- --dry-run ${SETUP_ARGS}`],
  ['setup', `ZITADEL_PAT=<setup-user-token> npm run setup -- ${SETUP_ARGS}`],
  ['tail', /^npx wrangler tail$/],
  ['decode', /^node -p "JSON\.parse\(Buffer\.from\(process\.argv\[1\]\.split\('\.'\)\[1\], 'base64url'\)\)" <access-token>$/],
];
const COMMANDS = quickStartCommands(SECTION);
/** The README's command for `role` (its first, for `healthz`). */
const command = (role) => COMMANDS[EXPECTED.findIndex(([r]) => r === role)];

// ---- the fakes ----

/** The setup user's PAT (`<setup-user-token>`): every permission in the fake ZITADEL. */
const SETUP_PAT = `qs-setup-pat-${randomBytes(12).toString('hex')}`;
/** The worker's user's PAT (step 3): reads organizations and users, as IAM_OWNER_VIEWER. */
const WORKER_PAT = `qs-worker-pat-${randomBytes(12).toString('hex')}`;
/** The organization of step 5's user, in "your" instance: not the sample's made-up one. */
const ORG = { id: '364525831705960001', name: 'Your organization', primary_domain: 'your-org.example' };
const PROJECT = PAYLOAD.user_grants[0].project_id;
const USER = PAYLOAD.user.id;

let fake; // the fake ZITADEL
let proxy; // { url: the "workers.dev" URL (no trailing slash), close }
let cloudflare; // the stand-in for Cloudflare's secret store: { url, puts, close }
let deployment; // Promise of the running worker behind the proxy
const workers = new Set(); // every worker started, to stop
const deployedSecrets = {}; // the secrets of the deployed worker
let dev; // `npm run dev`
let tmp;

/** (Re)deploys the worker with the secrets stored so far: the old one goes, a new one starts. */
function redeploy() {
  const previous = deployment;
  const secrets = { ...deployedSecrets };
  deployment = (async () => {
    const old = await previous?.catch(() => undefined);
    if (old) {
      workers.delete(old);
      await old.stop();
    }
    const w = await startWorker({ vars: { ZITADEL_DOMAIN: fake.url }, secrets });
    workers.add(w);
    return w;
  })();
  return deployment;
}

/** The proxy at a stable URL: each request goes to the worker deployed now (held while it restarts). */
async function startProxy() {
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    let w;
    try {
      w = await deployment;
    } catch (e) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`no worker deployed: ${e.message}`);
      return;
    }
    const target = new URL(w.url);
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`the worker did not answer: ${e.message}`);
    });
    up.end(Buffer.concat(chunks));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

/** Stands in for Cloudflare: `POST /__secrets {name, value}` (the fake wrangler's `secret put`) stores the secret and redeploys. */
async function startCloudflare() {
  const puts = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    if (req.method !== 'POST' || req.url !== '/__secrets') {
      res.writeHead(404).end();
      return;
    }
    const { name, value } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    puts.push({ name, value });
    deployedSecrets[name] = value;
    // Like Cloudflare, the put returns before the new version answers everywhere.
    redeploy().catch(() => {});
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    puts,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A README command with the placeholders replaced by the fakes' URLs and the setup user's PAT. */
function substitute(cmd) {
  const out = cmd
    .replaceAll('https://zitadel-claims.<your-subdomain>.workers.dev', proxy.url)
    .replaceAll('<your-instance>.zitadel.cloud', fake.url)
    .replaceAll('<setup-user-token>', SETUP_PAT);
  assert.ok(!/<[a-z-]+>/.test(out), `a placeholder is left in ${out}`);
  return out;
}

/** Runs `cmd` with `sh -c` in the repository; resolves { code, stdout, stderr, output }. */
function sh(cmd, { env = {}, timeoutMs = 180_000 } = {}) {
  const childEnv = { ...process.env, ...env };
  for (const k of ['ZITADEL_PAT', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) {
    if (!(k in env)) delete childEnv[k];
  }
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, output: stdout + stderr });
    });
  });
}

const ok = (r) => assert.equal(r.code, 0, `exit ${r.code}\n${r.output}`);

/** The process groups of `pid`'s descendants (Linux /proc), to end what `npm run dev` started. */
function descendantGroups(pid) {
  const procs = [];
  if (!existsSync('/proc')) return new Set(); // elsewhere, npm run dev's own Ctrl-C handling has to do
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(1, 3).map(Number);
      procs.push({ pid: Number(entry), ppid, pgid });
    } catch {
      // gone meanwhile
    }
  }
  const groups = new Set();
  const seen = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (seen.has(p.ppid) && !seen.has(p.pid)) {
        seen.add(p.pid);
        groups.add(p.pgid);
        grew = true;
      }
    }
  }
  return groups;
}

const killGroup = (pgid, signal) => {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
};

/** Stops `npm run dev` as Ctrl-C does (its process group), then whatever it left. */
async function stopDev() {
  if (!dev) return;
  const { child } = dev;
  dev = undefined;
  const groups = descendantGroups(child.pid);
  if (child.exitCode === null && child.signalCode === null) {
    killGroup(child.pid, 'SIGINT');
    await waitFor(() => child.exitCode !== null || child.signalCode !== null, 15_000);
  }
  for (const g of [child.pid, ...groups]) killGroup(g, 'SIGKILL');
}

/** A JWT as ZITADEL issues an access token, carrying `claims` (signed with a key made here). */
function accessToken(claims) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const part = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${part({ alg: 'RS256', kid: 'quickstart', typ: 'JWT' })}.${part({
    iss: fake.url, sub: USER, aud: [PAYLOAD.application.client_id, PROJECT], exp: now + 43200, iat: now, nbf: now,
    client_id: PAYLOAD.application.client_id, ...claims,
  })}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

// What the steps say, read from the README.
const STEP1 = howToTell(1);
const STEP2 = howToTell(2);
const STEP3 = howToTell(3);
const STEP4 = howToTell(4);
const STEP6 = howToTell(6);
const SAMPLE_PERMISSIONS = JSON.parse(said(STEP1, /`permissions` \(`(\[[^`]*\])`\)/, "the sample's permissions"));
const DEPLOY_PROBLEMS = said(STEP2, /`problems` name (`\w+` and `\w+`)/, 'the settings /healthz names after deploy').match(/\w+/g).filter((w) => w !== 'and');
const SECRET_PROBLEM = said(STEP3, /`problems` name only `(\w+)`/, 'the setting /healthz names after the secret');
const ROLE = said(STEPS[5], /add a role, e\.g\. `(\w+)`/, 'the role of step 5');
const ROLE_PERMISSIONS = JSON.parse(said(STEPS[5], new RegExp(`Metadata: key \`${ROLE}\`, value \`(\\[[^\`]*\\])\``), "the role's mapping"));
const TAIL_CLAIMS = JSON.parse(said(STEP6, /`"outcome":"ok"` and `"claims":(\[[^`]*\])`/, 'the claims of the tail line'));
const DECODED = said(STEP6, /the decoded token holds `([^`]+)`/, 'what the decoded token holds');

describe('the Quick start of README.md, against the fakes', () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'zitadel-claims-quickstart-'));
    fake = await startFakeZitadel({
      fixture: {
        accessToken: SETUP_PAT,
        permissions: { [WORKER_PAT]: ['org.read', 'user.read'] },
        organizations: { [ORG.id]: { metadata: { [ROLE]: ROLE_PERMISSIONS } } },
      },
    });
    proxy = await startProxy();
    cloudflare = await startCloudflare();
  });
  after(async () => {
    await stopDev();
    await deployment?.catch(() => undefined);
    await Promise.all([...workers].map((w) => w.stop()));
    await Promise.all([proxy?.close(), cloudflare?.close(), fake?.close()]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('has the commands this test runs, in order', () => {
    assert.equal(Object.keys(STEPS).join(','), '1,2,3,4,5,6', 'six numbered steps');
    assert.equal(COMMANDS.length, EXPECTED.length, `the commands are:\n${COMMANDS.join('\n')}`);
    EXPECTED.forEach(([role, expected], i) => {
      if (typeof expected === 'string') assert.equal(COMMANDS[i], expected, `command ${i + 1} (${role})`);
      else assert.match(COMMANDS[i], expected, `command ${i + 1} (${role})`);
    });
    // Step 2's [vars]: the instance's domain, which stands for the fake ZITADEL here.
    assert.match(STEPS[2], /^ZITADEL_DOMAIN = "<your-instance>\.zitadel\.cloud"$/m);
    // Step 5 has no command: the Console stands in the fixture (the role and its mapping).
    assert.doesNotMatch(STEPS[5], /```sh/);
  });

  it('step 1: npm run dev serves the worker, npm run sample gets HTTP 200 and the claims', { timeout: 420_000 }, async (t) => {
    // git clone, cd and npm install made this checkout; they are not run again.
    if (existsSync(join(ROOT, '.dev.vars'))) {
      t.skip('.dev.vars exists: npm run dev would use it instead of the demo a fresh clone gets');
      return;
    }
    assert.match(STEP1, /prints `HTTP 200`/);
    assert.match(STEP1, /`my:zitadel:grants` and `urn:custom:ms_access_token`/);
    const port = await freePort();
    const env = { ...process.env, PORT: String(port), DEMO_APP_PORT: String(await freePort()) };
    delete env.ZITADEL_PAT;
    const child = spawn('sh', ['-c', command('dev')], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    dev = { child, output: '' };
    child.stdout.on('data', (d) => (dev && (dev.output += d)));
    child.stderr.on('data', (d) => (dev && (dev.output += d)));
    const url = `http://127.0.0.1:${port}`;
    const output = () => dev?.output ?? '';
    await waitUntil(async () => {
      assert.equal(child.exitCode, null, `npm run dev exited:\n${output().slice(-3000)}`);
      try {
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    }, `npm run dev answering ${url}/healthz with 200`, { timeoutMs: 300_000, everyMs: 500 });
    await waitUntil(() => output().includes(`dev: worker ready at ${url}/ (health: ok)`), 'npm run dev saying the worker is ready', { timeoutMs: 20_000 });

    const sample = await sh(command('sample'), { env: { PORT: String(port) }, timeoutMs: 60_000 });
    ok(sample);
    const [, status, body] = /^HTTP (\d+)\n([\s\S]*)$/m.exec(sample.stdout) ?? [];
    assert.equal(status, '200', sample.output);
    const claims = Object.fromEntries(JSON.parse(body).append_claims.map((c) => [c.key, c.value]));
    assert.deepEqual(claims.permissions, SAMPLE_PERMISSIONS);
    assert.ok(Array.isArray(claims['my:zitadel:grants']) && claims['my:zitadel:grants'].length > 0, body);
    assert.equal(typeof claims['urn:custom:ms_access_token'], 'string', body);
    // "Stop `npm run dev` with Ctrl-C": its whole process group gets SIGINT.
    await stopDev();
    await waitUntil(async () => {
      try {
        await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
        return false;
      } catch {
        return true;
      }
    }, 'the worker of npm run dev gone after Ctrl-C', { timeoutMs: 15_000 });
  });

  it('step 2: npm run deploy; /healthz answers 503 misconfigured, naming the two secrets', { timeout: 120_000 }, async () => {
    // npx wrangler login: not run. npm run deploy: the built worker with ZITADEL_DOMAIN in [vars].
    assert.match(STEP2, /answers `\{"status":"misconfigured",…\}` \(HTTP 503\)/);
    await redeploy();
    const res = await fetch(`${proxy.url}/healthz`); // the README's curl
    const health = await res.json();
    assert.equal(res.status, 503, JSON.stringify(health));
    assert.equal(health.status, 'misconfigured');
    assert.deepEqual(health.problems.map((p) => p.setting).sort(), [...DEPLOY_PROBLEMS].sort(), JSON.stringify(health));
  });

  it('step 3: wrangler secret put ZITADEL_ACCESS_TOKEN; /healthz then names only the signing key', { timeout: 120_000 }, async () => {
    assert.match(STEP3, /still answers `misconfigured`/);
    // The secret put (wrangler asks for the value): the worker is redeployed with it. The curl,
    // sent at once, is held by the proxy until the new worker answers.
    deployedSecrets.ZITADEL_ACCESS_TOKEN = WORKER_PAT;
    const redeployed = redeploy();
    const res = await fetch(`${proxy.url}/healthz`);
    const health = await res.json();
    await redeployed;
    assert.equal(res.status, 503, JSON.stringify(health));
    assert.equal(health.status, 'misconfigured');
    assert.deepEqual(health.problems.map((p) => p.setting), [SECRET_PROBLEM], JSON.stringify(health));
  });

  /** Runs one of step 4's commands as written (placeholders replaced, `--allow-http` added). */
  async function setup(cmd, log) {
    assert.ok(existsSync(SETUP_BINARY), `${SETUP_BINARY} is missing: run \`cargo build --release -p zitadel-claims-setup\` first`);
    const r = await sh(`${substitute(cmd)} --allow-http`, {
      env: { SETUP_WRANGLER: FAKE_WRANGLER, FAKE_WRANGLER_LOG: log, FAKE_WRANGLER_WORKER: cloudflare.url, SETUP_WAIT_SECONDS: '60' },
    });
    const wrangler = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
    // No secret is ever printed: the PATs, the target's signing key.
    const secrets = [SETUP_PAT, WORKER_PAT, ...fake.targets().map((t) => t.signingKey), ...wrangler.map((w) => w.stdin)].filter(Boolean);
    for (const s of secrets) assert.ok(!r.output.includes(s), `a secret was printed:\n${r.output}`);
    return { ...r, wrangler };
  }

  it('step 4: npm run setup -- --dry-run writes nothing', { timeout: 240_000 }, async () => {
    const before = fake.calls.length;
    const r = await setup(command('setup-dry-run'), join(tmp, 'wrangler-dry-run.jsonl'));
    ok(r);
    assert.match(r.stdout, /^Dry run: only reads go to ZITADEL/m);
    // The plan, from what it read: create the target, store its key with wrangler, bind it.
    assert.match(r.stdout, /^The worker answers 503, missing only ZITADEL_SIGNING_KEY, which this run stores$/m);
    assert.match(r.stdout, new RegExp(`^would send: POST ${fake.url}/v2/actions/targets\n +\\{"endpoint":"${proxy.url}/","name":"zitadel-claims"`, 'm'));
    assert.match(r.stdout, /^would run: \S+ secret put ZITADEL_SIGNING_KEY$/m);
    assert.match(r.stdout, new RegExp(`^would send: PUT ${fake.url}/v2/actions/executions\n +\\{"condition":\\{"function":\\{"name":"preaccesstoken"\\}\\}`, 'm'));
    const sent = fake.calls.slice(before).filter((c) => c.authorization === `Bearer ${SETUP_PAT}`);
    assert.ok(sent.length > 0, 'the dry run reads the instance');
    const written = sent.filter((c) => !(c.method === 'GET' || c.path.endsWith('/search')));
    assert.deepEqual(written, [], 'the dry run only read');
    assert.deepEqual(fake.targets(), []);
    assert.deepEqual(fake.executions(), []);
    assert.deepEqual(r.wrangler, [], 'the dry run ran wrangler');
    assert.deepEqual(cloudflare.puts, [], 'the dry run stored a secret');
  });

  it('step 4: npm run setup creates the target, stores its key, binds it; /healthz then answers ok', { timeout: 240_000 }, async () => {
    assert.match(STEP4, /the run ends with the sample call's claims and `Done\.`/);
    assert.match(STEP4, /The sample user and organization are made up, so `permissions` is normally missing there/);
    assert.match(STEP4, /`\/healthz` now answers `\{"status":"ok",…\}`/);
    const r = await setup(command('setup'), join(tmp, 'wrangler-setup.jsonl'));
    ok(r);
    const out = r.stdout;
    // It checks the worker before it writes anything, and binds once the worker has the key.
    const steps = ['Checking the worker', 'Created target "zitadel-claims"', 'The worker has picked up ZITADEL_SIGNING_KEY', 'Bound the target', 'Sample call'];
    const order = steps.map((s) => {
      const at = out.indexOf(s);
      assert.ok(at >= 0, `no "${s}" in:\n${r.output}`);
      return at;
    });
    assert.deepEqual([...order].sort((a, b) => a - b), order, `out of order:\n${out}`);
    // The sample call's claims, then `Done.`, followed by the next steps (steps 5 and 6).
    const [, claims] = /^Sample call .*: 200\n((?: {2}.*\n)*)Done\.\nThen \(README\.md, Quick start, steps 5 and 6\):\n/m.exec(out) ?? [];
    assert.ok(claims, `no sample call's claims, then Done. and the next steps:\n${out}`);
    assert.ok(out.endsWith('npx wrangler tail\n'), out);
    const claimed = [...claims.matchAll(/^ {2}claim (\S+) = /gm)].map((m) => m[1]);
    assert.ok(claimed.includes('my:zitadel:grants'), claims);
    // The sample's organization is not the one with the mapping: no permissions for it.
    assert.ok(!claimed.includes('permissions'), claims);

    const target = fake.target('zitadel-claims');
    assert.ok(target, 'no target zitadel-claims');
    assert.equal(target.endpoint, `${proxy.url}/`);
    assert.equal(target.timeout, '10s');
    assert.deepEqual(target.restCall, { interruptOnError: false });
    assert.deepEqual(fake.executionTargets({ function: { name: 'preaccesstoken' } }), [target.id]);
    assert.deepEqual(r.wrangler, [{ argv: ['secret', 'put', 'ZITADEL_SIGNING_KEY'], stdin: target.signingKey }]);
    assert.deepEqual(cloudflare.puts, [{ name: 'ZITADEL_SIGNING_KEY', value: target.signingKey }]);

    const res = await fetch(`${proxy.url}/healthz`);
    const health = await res.json();
    assert.equal(res.status, 200, JSON.stringify(health));
    assert.equal(health.status, 'ok');
  });

  it('step 6: a sign-in gets the claims; the log line says so; node -p shows them in the token', { timeout: 120_000 }, async () => {
    // Step 5 (the Console) is the fixture: the organization maps ROLE to ROLE_PERMISSIONS. ZITADEL
    // calls the bound target for a user with ROLE, as it does while issuing the access token.
    const target = fake.target(fake.executionTargets({ function: { name: 'preaccesstoken' } })[0]);
    const context = structuredClone(PAYLOAD);
    delete context.function;
    delete context.user_metadata;
    context.org = ORG;
    context.user.resource_owner = ORG.id;
    context.userinfo['urn:zitadel:iam:org:project:roles'] = { [ROLE]: { [ORG.id]: ORG.primary_domain } };
    context.user_grants = [{
      ...context.user_grants[0], roles: [ROLE], resource_owner: ORG.id, org_name: ORG.name, org_primary_domain: ORG.primary_domain, user_resource_owner: ORG.id,
    }];
    const w = await deployment;
    const { res: result, line } = await withLogLine(w, () => execute({
      function: 'function/preaccesstoken',
      context,
      targets: [{ url: target.endpoint, signingKey: target.signingKey, interruptOnError: target.restCall.interruptOnError, timeoutMs: 10_000 }],
    }));
    assert.ok(result.ok, JSON.stringify(result.error));
    assert.equal(result.calls[0].status, 200, result.calls[0].text);
    assert.deepEqual(result.claims.permissions, ROLE_PERMISSIONS);
    assert.deepEqual(result.claims['my:zitadel:grants'], [`${PROJECT}:${ROLE}`]);
    // `npx wrangler tail` (not run: it needs Cloudflare) shows the worker's log line.
    assert.match(STEP6, /the tail shows a line with `"function":"function\/preaccesstoken"`/);
    assert.equal(line.function, 'function/preaccesstoken', JSON.stringify(line));
    assert.equal(line.outcome, 'ok', JSON.stringify(line));
    assert.deepEqual(line.claims, TAIL_CLAIMS, JSON.stringify(line));

    // The access token ZITADEL issues carries those claims; the README's node -p decodes it.
    const token = accessToken(result.claims);
    const decode = command('decode').replace('<access-token>', token);
    const r = await sh(decode, { timeoutMs: 30_000 });
    ok(r);
    assert.ok(r.stdout.replace(/\s+/g, ' ').includes(DECODED), `"${DECODED}" not in:\n${r.stdout}`);
  });
});
