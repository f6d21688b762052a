// `npm run setup` (the zitadel-claims-setup binary) against the fake ZITADEL, with a fake wrangler
// that records its arguments and standard input (and lists the secrets FAKE_WRANGLER_SECRETS names)
// and hands what it stores to a fake worker (tests/support/fake-worker.mjs), whose /healthz and
// signature check the tool's checks read. The binary is not built here: run
// `cargo build --release -p zitadel-claims-setup` first (scripts/test.sh does).
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startFakeWorker } from '../support/fake-worker.mjs';
import { signatureHeader } from '../support/signature.mjs';
import { ALL_PERMISSIONS, startFakeZitadel } from '../support/fake-zitadel.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BINARY = join(ROOT, 'target', 'release', process.platform === 'win32' ? 'zitadel-claims-setup.exe' : 'zitadel-claims-setup');
const FAKE_WRANGLER = fileURLToPath(new URL('../support/fake-wrangler.mjs', import.meta.url));
const PAT = 'setup-test-pat-6d1f0c2b9e';
/** The fake worker, one for the file (its secrets are cleared before each test), and its URL. */
const worker = await startFakeWorker();
const WORKER_ORIGIN = worker.url;
const WORKER = `${worker.url}/`;
const PREACCESSTOKEN = { function: { name: 'preaccesstoken' } };
const PREUSERINFO = { function: { name: 'preuserinfo' } };
const PRESAMLRESPONSE = { function: { name: 'presamlresponse' } };
const IDP_INTENT = { response: { method: '/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent' } };

let dir;
let fake;
/** The directory the binary runs in (where the default key file goes): a new one for each test. */
let work;
/** Every signing key the fake ever held and every key stored, to check none reaches the output. */
const seenKeys = new Set();
const KEY_FILE = '.payload-decryption-keys';

before(async () => {
  assert.ok(existsSync(BINARY), `${BINARY} is missing: run \`cargo build --release -p zitadel-claims-setup\` first`);
  dir = mkdtempSync(join(tmpdir(), 'zitadel-claims-setup-'));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await worker.close();
});

async function start(fixture = {}) {
  fake = await startFakeZitadel({ fixture: { accessToken: PAT, ...fixture } });
  return fake;
}
beforeEach(() => {
  work = mkdtempSync(join(dir, 'cwd-'));
  worker.reset();
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

let runs = 0;
/**
 * Runs the binary; resolves with its exit code, output and what the fake wrangler received.
 * Options: `pat` (null leaves ZITADEL_PAT unset), `env` (more variables), `domain`, `cwd` (default:
 * the test's own directory).
 */
function setup(args, { pat = PAT, env = {}, domain = fake?.url, cwd = work } = {}) {
  const log = join(dir, `wrangler-${(runs += 1)}.jsonl`);
  const childEnv = { ...process.env, SETUP_WRANGLER: FAKE_WRANGLER, FAKE_WRANGLER_LOG: log, FAKE_WRANGLER_WORKER: worker.url, SETUP_WAIT_SECONDS: '5', ...env };
  for (const k of ['ZITADEL_PAT', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) delete childEnv[k];
  if (pat !== null) childEnv.ZITADEL_PAT = pat;
  const fullArgs = [...(domain ? ['--domain', domain] : []), '--allow-http', ...args];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(BINARY, fullArgs, { env: childEnv, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wrangler = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
      for (const t of fake?.targets() ?? []) seenKeys.add(t.signingKey);
      // Each stored key: a signing key, or the base64 DER of a private key after `<key id>:`.
      // (`secret list` reads nothing.) The back ends' secrets of TOKEN_EXCHANGE_CLIENTS are
      // printed once, on purpose: the tests of --exchange-client check that.
      for (const { argv, stdin } of wrangler) {
        if (argv[2] === 'TOKEN_EXCHANGE_CLIENTS') continue;
        for (const part of stdin.split(',')) if (part) seenKeys.add(part.split(':').at(-1));
      }
      const result = { code, stdout, stderr, wrangler, ms: Date.now() - started };
      assertNoSecrets(result);
      resolve(result);
    });
  });
}

/** Neither the PAT nor any signing key may ever be printed. */
function assertNoSecrets({ stdout, stderr }) {
  const output = stdout + stderr;
  assert.ok(!output.includes(PAT), 'the PAT was printed');
  for (const key of seenKeys) assert.ok(!output.includes(key), 'a signing key was printed');
}

const ok = (r) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
const paths = () => fake.calls.map((c) => `${c.method} ${c.path}`);
const SECRET_PUT = ['secret', 'put', 'ZITADEL_SIGNING_KEY'];

describe('npm run setup (zitadel-claims-setup)', () => {
  beforeEach(() => start());

  it('first run creates the target, stores its key through wrangler stdin, then binds preaccesstoken', async () => {
    const r = await setup(['--worker-url', WORKER]);
    ok(r);
    const targets = fake.targets();
    assert.equal(targets.length, 1);
    const [t] = targets;
    assert.equal(t.name, 'zitadel-claims');
    assert.equal(t.endpoint, WORKER);
    assert.equal(t.timeout, '10s');
    assert.deepEqual(t.restCall, { interruptOnError: false });
    assert.deepEqual(r.wrangler, [{ argv: SECRET_PUT, stdin: t.signingKey }]);
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [t.id]);
    assert.deepEqual(fake.executionTargets(PREUSERINFO), []);
    assert.deepEqual(paths(), [
      'POST /v2/actions/targets/search',
      'POST /v2/actions/targets',
      'POST /v2/actions/executions/search',
      'PUT /v2/actions/executions',
    ]);
    assert.ok(fake.calls.every((c) => c.authorization === `Bearer ${PAT}`));
    assert.match(r.stdout, /Created target "zitadel-claims" \(id \d+\)/);
    assert.match(r.stdout, /Bound the target to the function preaccesstoken/);
    assert.equal(r.stderr, '');
  });

  it('--env goes to every wrangler command; --version prints the version and does nothing else', async () => {
    const r = await setup(['--worker-url', WORKER, '--env', 'staging']);
    ok(r);
    assert.deepEqual(r.wrangler.map((w) => w.argv), [[...SECRET_PUT, '--env', 'staging']]);
    fake.reset();
    const v = await setup(['--version']);
    ok(v);
    assert.match(v.stdout, /^zitadel-claims-setup \d+\.\d+\.\d+\n$/);
    assert.deepEqual(fake.calls, []);
  });

  it('the worker is checked before any write: a 404, a page that is not the worker, a 503 about another setting, nothing listening', async () => {
    const writes = () => fake.calls.filter((c) => !(c.method === 'GET' || c.path.endsWith('/search')));
    const cases = [
      [404, { error: 'not_found' }, /answered 404: no worker of this project is there/],
      [200, '<html>Welcome to nginx</html>', /answered 200 with something that is not JSON; nothing was changed in ZITADEL/],
      [503, { status: 'misconfigured', problems: [{ setting: 'ZITADEL_SIGNING_KEY', problem: 'is not set' }, { setting: 'ZITADEL_ACCESS_TOKEN', problem: 'is not set' }] },
        /misconfigured, and not in a way this tool fixes: ZITADEL_ACCESS_TOKEN is not set; set those \(docs\/reference\.md#settings\)/],
    ];
    for (const [status, body, message] of cases) {
      worker.setHealth(status, body);
      const r = await setup(['--worker-url', WORKER]);
      assert.equal(r.code, 1, `${status}: ${r.stdout}`);
      assert.match(r.stderr, message);
      assert.deepEqual(writes(), [], `${status}: nothing written`);
      assert.deepEqual(r.wrangler, []);
    }
    worker.setHealth();
    const nobody = `http://127.0.0.1:${await freePort()}/`;
    const away = await setup(['--worker-url', nobody]);
    assert.equal(away.code, 1);
    assert.match(away.stderr, new RegExp(`^error: cannot reach the worker at ${nobody}healthz: .*npm run deploy`));
    assert.deepEqual(writes(), []);
    assert.equal(fake.targets().length, 0);
  });

  it('a worker that never takes the key: the target is made but not bound, and the error says why', async () => {
    worker.setHealth(503, { status: 'misconfigured', problems: [{ setting: 'ZITADEL_SIGNING_KEY', problem: 'is not set' }] });
    const r = await setup(['--worker-url', WORKER], { env: { SETUP_WAIT_SECONDS: '2' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /still names ZITADEL_SIGNING_KEY after 2 s: is --worker-url the worker that `wrangler secret put` stores into/);
    assert.equal(fake.targets().length, 1);
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [], 'not bound');
  });

  it('a second run is idempotent: one target, one binding, the same key stored again', async () => {
    ok(await setup(['--worker-url', WORKER]));
    const [first] = fake.targets();
    fake.reset();
    const r = await setup(['--worker-url', WORKER, '--timeout', '5s', '--interrupt-on-error']);
    ok(r);
    const targets = fake.targets();
    assert.equal(targets.length, 1);
    assert.equal(targets[0].id, first.id);
    assert.equal(targets[0].signingKey, first.signingKey, 'an update must not rotate the key');
    assert.equal(targets[0].timeout, '5s');
    assert.deepEqual(targets[0].restCall, { interruptOnError: true });
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [first.id]);
    assert.deepEqual(r.wrangler, [{ argv: SECRET_PUT, stdin: first.signingKey }]);
    assert.deepEqual(paths(), [
      'POST /v2/actions/targets/search',
      `GET /v2/actions/targets/${first.id}`,
      `POST /v2/actions/targets/${first.id}`,
      'POST /v2/actions/executions/search',
    ]);
    assert.deepEqual(JSON.parse(fake.calls[2].body), {
      name: 'zitadel-claims',
      endpoint: WORKER,
      timeout: '5s',
      restCall: { interruptOnError: true },
    });

    // Run again without the flags: the target keeps its timeout and stays fail-closed.
    fake.reset();
    ok(await setup(['--worker-url', WORKER]));
    assert.equal(fake.target('zitadel-claims').timeout, '5s');
    assert.deepEqual(fake.target('zitadel-claims').restCall, { interruptOnError: true });
    assert.ok(!paths().includes(`POST /v2/actions/targets/${first.id}`), 'nothing to update');
    assert.match(r.stdout, /Updated target "zitadel-claims"/);
    assert.match(r.stdout, /already calls the target/);
  });

  it('--userinfo, --saml and --capture-idp-tokens bind preuserinfo, presamlresponse and the RetrieveIdentityProviderIntent response', async () => {
    ok(await setup(['--worker-url', WORKER, '--userinfo', '--saml', '--capture-idp-tokens', '--name', 'claims-2']));
    const [t] = fake.targets();
    assert.equal(t.name, 'claims-2');
    for (const condition of [PREACCESSTOKEN, PREUSERINFO, PRESAMLRESPONSE, IDP_INTENT]) {
      assert.deepEqual(fake.executionTargets(condition), [t.id], JSON.stringify(condition));
    }
    const puts = fake.calls.filter((c) => c.method === 'PUT').map((c) => JSON.parse(c.body));
    assert.deepEqual(puts, [
      { condition: PREACCESSTOKEN, targets: [t.id] },
      { condition: PREUSERINFO, targets: [t.id] },
      { condition: PRESAMLRESPONSE, targets: [t.id] },
      { condition: IDP_INTENT, targets: [t.id] },
    ]);
    ok(await setup(['--worker-url', WORKER, '--userinfo', '--saml', '--capture-idp-tokens', '--name', 'claims-2']));
    assert.equal(fake.executions().length, 4);
    assert.ok(fake.executions().every((e) => e.targets.length === 1));
  });

  it('keeps a target someone else bound to preaccesstoken, ours after it', async () => {
    await fake.close();
    await start({
      targets: [{ name: 'other', endpoint: 'https://other.example/hook', restWebhook: { interruptOnError: true } }],
      executions: [{ condition: PREACCESSTOKEN, targets: ['other'] }],
    });
    const other = fake.target('other');
    ok(await setup(['--worker-url', WORKER]));
    const ours = fake.target('zitadel-claims');
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [other.id, ours.id]);
    ok(await setup(['--worker-url', WORKER]));
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [other.id, ours.id]);
    assert.equal(fake.target('other').endpoint, 'https://other.example/hook');
  });

  it('--rotate replaces the target by one with a new key: calls signed by whatever target is bound pass all along', async () => {
    ok(await setup(['--worker-url', WORKER, '--userinfo', '--timeout', '30s', '--interrupt-on-error']));
    const old = fake.target('zitadel-claims');
    fake.reset();

    // ZITADEL's side, all through the rotation: sign with the key of the target bound to
    // preaccesstoken, as ZITADEL does, and send it to the worker.
    const refused = [];
    let sent = 0;
    let rotating = true;
    const calling = (async () => {
      while (rotating) {
        const [id] = fake.executionTargets(PREACCESSTOKEN);
        const target = fake.targets().find((t) => t.id === id);
        if (target) {
          const body = JSON.stringify({ function: 'function/preaccesstoken' });
          const res = await fetch(WORKER, { method: 'POST', headers: { 'ZITADEL-Signature': signatureHeader(body, target.signingKey) }, body });
          sent += 1;
          if (res.status !== 200) refused.push(`${res.status} from target ${id}`);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const rotated = await setup(['--rotate']);
    rotating = false;
    await calling;
    ok(rotated);
    assert.deepEqual(refused, [], 'no call failed during the rotation');
    assert.ok(sent > 5, `calls were made during the rotation (${sent})`);

    const now = fake.target('zitadel-claims');
    assert.notEqual(now.id, old.id);
    assert.notEqual(now.signingKey, old.signingKey);
    assert.deepEqual(fake.targets().map((t) => t.id), [now.id], 'the old target is deleted');
    assert.equal(now.endpoint, WORKER);
    assert.equal(now.timeout, '30s');
    assert.deepEqual(now.restCall, { interruptOnError: true });
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [now.id]);
    assert.deepEqual(fake.executionTargets(PREUSERINFO), [now.id]);
    assert.deepEqual(rotated.wrangler, [{ argv: SECRET_PUT, stdin: `${now.signingKey},${old.signingKey}` }]);
    assert.deepEqual(paths(), [
      'POST /v2/actions/targets/search',
      `GET /v2/actions/targets/${old.id}`,
      `POST /v2/actions/targets/${old.id}`,
      'POST /v2/actions/targets',
      'POST /v2/actions/executions/search',
      'PUT /v2/actions/executions',
      'PUT /v2/actions/executions',
      `DELETE /v2/actions/targets/${old.id}`,
    ]);
    assert.deepEqual(JSON.parse(fake.calls[0].body).filters, [{ targetNameFilter: { targetName: 'zitadel-claims', method: 'TEXT_FILTER_METHOD_STARTS_WITH' } }]);
    assert.deepEqual(JSON.parse(fake.calls[2].body), { name: 'zitadel-claims-retiring' });
    assert.match(rotated.stdout, /--finish-rotation/);

    const finished = await setup(['--finish-rotation']);
    ok(finished);
    assert.deepEqual(finished.wrangler, [{ argv: SECRET_PUT, stdin: now.signingKey }]);
    assert.equal(fake.target('zitadel-claims').signingKey, now.signingKey, 'finishing must not rotate again');
  });

  it('--rotate that stops halfway (no permission to delete the old target) is finished by running it again', async () => {
    await fake.close();
    await start({ permissions: { 'no-delete': ALL_PERMISSIONS.filter((p) => p !== 'action.target.delete') } });
    ok(await setup(['--worker-url', WORKER]));
    const old = fake.target('zitadel-claims');
    const stopped = await setup(['--rotate'], { pat: 'no-delete' });
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /lacks the permission action\.target\.delete/);
    const now = fake.target('zitadel-claims');
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [now.id], 'the switch was made before');
    assert.equal(fake.target('zitadel-claims-retiring').id, old.id);

    // Any other run refuses until the rotation is finished: one key alone would fail the other target.
    const plain = await setup(['--worker-url', WORKER]);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /a rotation of the target "zitadel-claims" stopped halfway .*run this again with --rotate/);
    assert.deepEqual(plain.wrangler, []);

    const again = await setup(['--rotate']);
    ok(again);
    assert.match(again.stdout, /Resuming a rotation/);
    assert.deepEqual(fake.targets().map((t) => t.id), [now.id]);
    assert.deepEqual(again.wrangler, [{ argv: SECRET_PUT, stdin: `${now.signingKey},${old.signingKey}` }]);
  });

  it('--rotate without a target says to run the setup first', async () => {
    const r = await setup(['--rotate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no target named "zitadel-claims" to rotate/);
    assert.deepEqual(r.wrangler, []);
  });

  it('--dry-run with ZITADEL_PAT only reads: the plan says what it would create, change or leave alone', async () => {
    const reads = () => fake.calls.filter((c) => !(c.method === 'GET' || c.path.endsWith('/search') || c.path.endsWith('/_search')));
    const plan = await setup(['--worker-url', WORKER, '--userinfo', '--dry-run']);
    ok(plan);
    assert.deepEqual(reads(), [], 'nothing but reads');
    assert.ok(fake.calls.length > 0, 'the instance is read');
    assert.deepEqual(plan.wrangler, []);
    assert.deepEqual(worker.secrets.size, 0);
    assert.deepEqual(worker.samples(), [], 'no sample call');
    for (const line of [
      'Dry run: only reads go to ZITADEL',
      `read: POST ${fake.url}/v2/actions/targets/search\n`,
      `Checking the worker: GET ${WORKER_ORIGIN}/healthz\nThe worker answers 503, missing only ZITADEL_SIGNING_KEY, which this run stores\n`,
      `would send: POST ${fake.url}/v2/actions/targets\n`,
      `would run: ${FAKE_WRANGLER} secret put ZITADEL_SIGNING_KEY\n`,
      `would send: PUT ${fake.url}/v2/actions/executions\n`,
    ]) assert.ok(plan.stdout.includes(line), `${line}\n${plan.stdout}`);

    // Provisioned, then planned again with one change: the rest is left alone.
    ok(await setup(['--worker-url', WORKER, '--userinfo']));
    const target = fake.target('zitadel-claims');
    fake.reset();
    const again = await setup(['--worker-url', WORKER, '--userinfo', '--timeout', '20s', '--dry-run']);
    ok(again);
    assert.deepEqual(reads(), []);
    assert.equal(fake.target('zitadel-claims').timeout, '10s', 'not changed');
    assert.ok(again.stdout.includes(`would send: POST ${fake.url}/v2/actions/targets/${target.id}\n`), again.stdout);
    assert.match(again.stdout, /The function preaccesstoken already calls the target; left as is/);
    assert.match(again.stdout, /The function preuserinfo already calls the target; left as is/);
    assert.ok(!again.stdout.includes('would send: PUT'), again.stdout);
  });

  it('--dry-run without ZITADEL_PAT sends nothing, runs no wrangler, and prints the calls and the command', async () => {
    const r = await setup(['--worker-url', WORKER, '--userinfo', '--dry-run'], { pat: null });
    ok(r);
    assert.equal(fake.calls.length, 0);
    assert.ok(r.stdout.includes(`Checking the worker: GET ${WORKER_ORIGIN}/healthz\n`), r.stdout);
    const nobody = `http://127.0.0.1:${await freePort()}/`;
    const away = await setup(['--worker-url', nobody, '--dry-run'], { pat: null });
    ok(away);
    assert.ok(away.stdout.includes(`A real run would stop here: cannot reach the worker at ${nobody}healthz`), away.stdout);
    assert.deepEqual(r.wrangler, []);
    assert.match(r.stdout, /nothing is sent/);
    assert.ok(r.stdout.includes(`POST ${fake.url}/v2/actions/targets/search`), r.stdout);
    assert.ok(r.stdout.includes(`POST ${fake.url}/v2/actions/targets\n`), r.stdout);
    assert.ok(r.stdout.includes(`PUT ${fake.url}/v2/actions/executions`), r.stdout);
    assert.ok(r.stdout.includes(`${FAKE_WRANGLER} secret put ZITADEL_SIGNING_KEY`), r.stdout);
    assert.ok(r.stdout.includes('"restCall":{"interruptOnError":false}'), r.stdout);
    assert.match(r.stdout, /assuming no target named "zitadel-claims" exists/);

    const rotate = await setup(['--rotate', '--dry-run'], { pat: null });
    ok(rotate);
    assert.equal(fake.calls.length, 0);
    assert.deepEqual(rotate.wrangler, []);
    assert.ok(rotate.stdout.includes('{"name":"zitadel-claims-retiring"}'), rotate.stdout);
  });

  it('a wrong token: "ZITADEL refused the token (401)", nothing changed', async () => {
    const r = await setup(['--worker-url', WORKER], { pat: 'not-the-pat' });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: ZITADEL refused the token (401): check ZITADEL_PAT\n');
    assert.deepEqual(r.wrangler, []);
    assert.equal(fake.targets().length, 0);
  });

  it('a token without a permission: 403 names that permission', async () => {
    // action.target.delete is needed by --rotate alone (its own test).
    const needed = ALL_PERMISSIONS.filter((p) => p.startsWith('action.') && p !== 'action.target.delete');
    const pats = Object.fromEntries(needed.map((p) => [`pat-without-${p}`, ALL_PERMISSIONS.filter((x) => x !== p)]));
    await fake.close();
    await start({ permissions: pats });
    for (const permission of needed) {
      const r = await setup(['--worker-url', WORKER], { pat: `pat-without-${permission}` });
      assert.equal(r.code, 1, permission);
      assert.match(r.stderr, /^error: ZITADEL denied .* \(403\): ZITADEL_PAT lacks the permission (\S+)/, permission);
      assert.equal(/lacks the permission (\S+)/.exec(r.stderr)[1], permission);
    }
  });

  it('an unreachable host fails fast with "cannot reach"', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const r = await setup(['--worker-url', WORKER], { domain: url });
    assert.equal(r.code, 1);
    assert.ok(r.stderr.startsWith(`error: cannot reach ${url}/v2/actions/targets/search: `), r.stderr);
    assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
    assert.deepEqual(r.wrangler, []);
  });

  it('a failing wrangler stops before the target is bound', async () => {
    const r = await setup(['--worker-url', WORKER], { env: { FAKE_WRANGLER_EXIT: '1' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secret put ZITADEL_SIGNING_KEY` failed \(exit code 1\)/);
    assert.match(r.stderr, /run this command again/);
    assert.equal(fake.targets().length, 1);
    assert.deepEqual(fake.executions(), []);
  });

  it('usage errors exit 2: no ZITADEL_PAT, an http worker URL without --allow-http, an unknown option', async () => {
    const noPat = await setup(['--worker-url', WORKER], { pat: null });
    assert.equal(noPat.code, 2);
    assert.match(noPat.stderr, /ZITADEL_PAT is not set/);
    const http = await new Promise((resolve) => {
      const child = spawn(BINARY, ['--domain', 'z.example', '--worker-url', 'http://w.example/'], { env: { ...process.env, ZITADEL_PAT: PAT } });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(http.code, 2);
    assert.match(http.stderr, /--worker-url must be https:\/\//);
    const unknown = await setup(['--worker-url', WORKER, '--frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown option --frobnicate/);
    assert.match(unknown.stderr, /run `npm run setup -- --help` for usage/, 'the hint npm does not swallow');
    assert.equal(fake.calls.length, 0);
  });

  it('--help prints the usage', async () => {
    const r = await setup(['--help'], { domain: null });
    ok(r);
    assert.match(r.stdout, /--domain <host\|url>/);
    assert.match(r.stdout, /--dry-run/);
    assert.match(r.stdout, /ZITADEL_PAT/);
    for (const flag of ['--payload-type <type>', '--key-type <type>', '--key-file <path>', '--rotate-encryption-key', 'PAYLOAD_DECRYPTION_KEY', '--connect', '--connect-project <id>', 'TOKEN_SEALING_KEY', '--introspection', 'INTROSPECTION_CLIENT_SECRET', '--exchange-client <client id>', 'TOKEN_EXCHANGE_CLIENTS']) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });
});

const DECRYPTION_PUT = ['secret', 'put', 'PAYLOAD_DECRYPTION_KEY'];

/** The entries of PAYLOAD_DECRYPTION_KEY: `<key id>:<base64 PKCS#8 DER>`, comma-separated. */
function decryptionEntries(value) {
  return value.split(',').map((entry) => {
    const m = /^(\d+):([A-Za-z0-9+/]+={0,2})$/.exec(entry);
    assert.ok(m, `not "<key id>:<base64 DER>": entry of ${value.length} characters`);
    return { keyId: m[1], der: Buffer.from(m[2], 'base64'), line: entry };
  });
}

/** The private key of a DER, checked to be PKCS#8, and the SPKI PEM of its public key. */
function privateKey(der) {
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return { key, publicPem: createPublicKey(key).export({ type: 'spki', format: 'pem' }) };
}

/** Checks that each entry's private key belongs to the fake's public key of that id. */
function assertKeysMatch(targetId, entries) {
  const known = new Map(fake.publicKeys(targetId).map((k) => [k.keyId, k]));
  for (const { keyId, der } of entries) {
    assert.ok(known.has(keyId), `ZITADEL has no public key ${keyId}`);
    assert.equal(privateKey(der).publicPem, known.get(keyId).pem, `the private key of ${keyId} matches its public key`);
  }
}

const keyFileLines = (path = join(work, KEY_FILE)) => readFileSync(path, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));

describe('npm run setup: payload types and the encryption key (--payload-type jwe)', () => {
  beforeEach(() => start());
  const JWE = ['--worker-url', WORKER, '--payload-type', 'jwe'];

  it('jwe: a new RSA 2048 key pair, its public key added and active, "<keyId>:<base64 DER>" stored, the key file 0600', async () => {
    const r = await setup(JWE);
    ok(r);
    const t = fake.target('zitadel-claims');
    assert.equal(t.payloadType, 'PAYLOAD_TYPE_JWE');
    const keys = fake.publicKeys(t.id);
    assert.equal(keys.length, 1);
    const active = fake.activeKey(t.id);
    assert.equal(active.keyId, keys[0].keyId);
    assert.deepEqual(r.wrangler.map((w) => w.argv), [DECRYPTION_PUT, SECRET_PUT], 'the decryption key first, before the target is bound');
    assert.equal(r.wrangler[1].stdin, t.signingKey);
    const entries = decryptionEntries(r.wrangler[0].stdin);
    assert.deepEqual(entries.map((e) => e.keyId), [active.keyId]);
    const { key, publicPem } = privateKey(entries[0].der);
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.equal(key.asymmetricKeyDetails.modulusLength, 2048);
    assert.equal(publicPem, active.pem, 'the private key belongs to the public key ZITADEL has');
    assert.deepEqual(paths(), [
      'POST /v2/actions/targets/search',
      'POST /v2/actions/targets',
      `POST /v2/actions/targets/${t.id}/publickeys`,
      `POST /v2/actions/targets/${t.id}/publickeys/${active.keyId}/activate`,
      'POST /v2/actions/executions/search',
      'PUT /v2/actions/executions',
    ]);
    assert.equal(JSON.parse(fake.calls[1].body).payloadType, 'PAYLOAD_TYPE_JWE');
    assert.equal(Buffer.from(JSON.parse(fake.calls[2].body).publicKey, 'base64').toString('utf8'), active.pem);
    const file = join(work, KEY_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(keyFileLines(file), [entries[0].line]);
    assert.match(r.stdout, /Activated the key \d+/);
    assert.equal(r.stderr, '');
  });

  it('jwe again: the active key is in the key file, so it is kept (no new key) and stored again', async () => {
    ok(await setup(JWE));
    const t = fake.target('zitadel-claims');
    const [first] = fake.publicKeys(t.id);
    const lines = keyFileLines();
    fake.reset();
    const r = await setup(JWE);
    ok(r);
    assert.deepEqual(fake.publicKeys(t.id).map((k) => [k.keyId, k.active]), [[first.keyId, true]]);
    assert.deepEqual(r.wrangler.map((w) => w.argv), [DECRYPTION_PUT, SECRET_PUT]);
    assert.equal(r.wrangler[0].stdin, lines[0]);
    assert.deepEqual(keyFileLines(), lines);
    assert.deepEqual(paths(), [
      'POST /v2/actions/targets/search',
      `GET /v2/actions/targets/${t.id}`,
      `POST /v2/actions/targets/${t.id}/publickeys/search`,
      'POST /v2/actions/executions/search',
    ], 'the target is as asked: not updated');
    assert.match(r.stdout, /has its private key in \.payload-decryption-keys: kept/);
  });

  it('--rotate-encryption-key stores "new,old" with ZITADEL encrypting to the new key; --finish-rotation leaves the new key alone', async () => {
    ok(await setup(JWE));
    const t = fake.target('zitadel-claims');
    const old = fake.activeKey(t.id);
    fake.reset();

    const rotated = await setup(['--rotate-encryption-key']);
    ok(rotated);
    const now = fake.activeKey(t.id);
    assert.notEqual(now.keyId, old.keyId);
    assert.deepEqual(fake.publicKeys(t.id).map((k) => [k.keyId, k.active]), [[old.keyId, false], [now.keyId, true]]);
    assert.deepEqual(rotated.wrangler.map((w) => w.argv), [DECRYPTION_PUT], 'the signing key is left alone');
    const entries = decryptionEntries(rotated.wrangler[0].stdin);
    assert.deepEqual(entries.map((e) => e.keyId), [now.keyId, old.keyId], 'new first, then old');
    assertKeysMatch(t.id, entries);
    assert.deepEqual(keyFileLines(), entries.map((e) => e.line), 'the key file, newest first');
    assert.deepEqual(paths(), [
      'POST /v2/actions/targets/search',
      `GET /v2/actions/targets/${t.id}`,
      `POST /v2/actions/targets/${t.id}/publickeys/search`,
      `POST /v2/actions/targets/${t.id}/publickeys`,
      `POST /v2/actions/targets/${t.id}/publickeys/${now.keyId}/activate`,
    ]);
    assert.match(rotated.stdout, /--finish-rotation/);

    fake.reset();
    const finished = await setup(['--finish-rotation']);
    ok(finished);
    assert.deepEqual(fake.publicKeys(t.id).map((k) => [k.keyId, k.active]), [[now.keyId, true]]);
    assert.deepEqual(finished.wrangler, [
      { argv: DECRYPTION_PUT, stdin: entries[0].line },
      { argv: SECRET_PUT, stdin: t.signingKey },
    ]);
    assert.deepEqual(keyFileLines(), [entries[0].line]);
    assert.equal(statSync(join(work, KEY_FILE)).mode & 0o777, 0o600, 'still 0600 after the rewrite');
    assert.ok(paths().includes(`DELETE /v2/actions/targets/${t.id}/publickeys/${old.keyId}`), paths().join('\n'));
  });

  it('--rotate of a jwe target gives the new target the same key pair, stored first, and activates it', async () => {
    ok(await setup(JWE));
    const old = fake.target('zitadel-claims');
    const oldKey = fake.activeKey(old.id);
    const before = keyFileLines();
    const r = await setup(['--rotate']);
    ok(r);
    const now = fake.target('zitadel-claims');
    assert.notEqual(now.id, old.id);
    assert.equal(now.payloadType, 'PAYLOAD_TYPE_JWE');
    const newKey = fake.activeKey(now.id);
    assert.ok(newKey, 'the new target has an active key');
    assert.equal(newKey.pem.toString(), oldKey.pem.toString(), 'the same public key');
    const put = r.wrangler.find((w) => w.argv[2] === 'PAYLOAD_DECRYPTION_KEY');
    const entries = decryptionEntries(put.stdin);
    assert.deepEqual(entries.map((e) => e.keyId), [newKey.keyId, oldKey.keyId], 'the new target\'s id first');
    assert.deepEqual(entries[0].der, entries[1].der, 'one key pair under both ids');
    assertKeysMatch(now.id, [entries[0]]);
    assert.deepEqual(keyFileLines(), [entries[0].line, ...before]);
    assert.deepEqual(r.wrangler.map((w) => w.argv[2]), ['PAYLOAD_DECRYPTION_KEY', 'ZITADEL_SIGNING_KEY']);
    assert.deepEqual(fake.executionTargets(PREACCESSTOKEN), [now.id]);
  });

  it('a failing wrangler during --rotate-encryption-key leaves ZITADEL encrypting to the old key', async () => {
    ok(await setup(JWE));
    const t = fake.target('zitadel-claims');
    const old = fake.activeKey(t.id);
    const r = await setup(['--rotate-encryption-key'], { env: { FAKE_WRANGLER_EXIT: '1' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secret put PAYLOAD_DECRYPTION_KEY` failed/);
    assert.match(r.stderr, /stays inactive/);
    assert.equal(fake.activeKey(t.id).keyId, old.keyId, 'the new key is not activated before the worker holds it');
    assert.equal(fake.publicKeys(t.id).length, 2);
  });

  it('--key-type p256 makes an EC P-256 key pair', async () => {
    ok(await setup([...JWE, '--key-type', 'p256']));
    const t = fake.target('zitadel-claims');
    const [{ stdin }] = (await setup(JWE)).wrangler;
    const [entry] = decryptionEntries(stdin);
    const { key, publicPem } = privateKey(entry.der);
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.equal(key.asymmetricKeyDetails.namedCurve, 'prime256v1');
    assert.equal(publicPem, fake.activeKey(t.id).pem);
    assert.equal(fake.publicKeys(t.id).length, 1);
  });

  it('--payload-type jwt sets the type and makes no keys; an update without --payload-type keeps it', async () => {
    const r = await setup(['--worker-url', WORKER, '--payload-type', 'jwt']);
    ok(r);
    const t = fake.target('zitadel-claims');
    assert.equal(t.payloadType, 'PAYLOAD_TYPE_JWT');
    assert.deepEqual(fake.publicKeys(t.id), []);
    assert.deepEqual(r.wrangler.map((w) => w.argv), [SECRET_PUT]);
    assert.equal(existsSync(join(work, KEY_FILE)), false);
    ok(await setup(['--worker-url', WORKER]));
    assert.equal(fake.target('zitadel-claims').payloadType, 'PAYLOAD_TYPE_JWT');
    ok(await setup(['--worker-url', WORKER, '--payload-type', 'json']));
    assert.equal(fake.target('zitadel-claims').payloadType, 'PAYLOAD_TYPE_JSON');
  });

  it('jwt or jwe: the exact PAYLOAD_TYPES line to set under [vars], also for a type read back and in --dry-run; none for json; wrangler.toml left alone', async () => {
    const toml = join(work, 'wrangler.toml');
    const original = 'name = "zitadel-claims"\n\n[vars]\nZITADEL_DOMAIN = "z.example"\n';
    writeFileSync(toml, original);
    const step = (type) =>
      `Done.\nLeft to do by hand:\n  1. Set the worker's variable PAYLOAD_TYPES to the target's payload type alone, in wrangler.toml:\n` +
      `       [vars]\n       PAYLOAD_TYPES = "${type}"\n     Without it the worker also accepts plain JSON payloads, `;
    const lines = (r) => r.stdout.split('\n').filter((l) => l.includes('PAYLOAD_TYPES ='));

    const jwe = await setup(JWE);
    ok(jwe);
    assert.ok(jwe.stdout.includes(step('jwe')), jwe.stdout);
    assert.match(jwe.stdout, /whose only proof is the HMAC of the target's signing key \(anyone with action\.target\.read can read it\), and JWTs that are not encrypted\.\nThen \(README/);
    assert.deepEqual(lines(jwe), ['       PAYLOAD_TYPES = "jwe"']);

    // No --payload-type: the type is read back from the target.
    const kept = await setup(['--worker-url', WORKER]);
    ok(kept);
    assert.ok(kept.stdout.includes(step('jwe')), kept.stdout);

    const jwt = await setup(['--worker-url', WORKER, '--payload-type', 'jwt']);
    ok(jwt);
    assert.equal(fake.target('zitadel-claims').payloadType, 'PAYLOAD_TYPE_JWT');
    assert.ok(jwt.stdout.includes(step('jwt')), jwt.stdout);
    assert.deepEqual(lines(jwt), ['       PAYLOAD_TYPES = "jwt"'], 'jwt alone, not jwe');

    const json = await setup(['--worker-url', WORKER, '--payload-type', 'json']);
    ok(json);
    assert.ok(json.stdout.includes('Done.\nThen (README.md, Quick start, steps 5 and 6):\n') && !json.stdout.includes('PAYLOAD_TYPES'), json.stdout);
    assert.ok(json.stdout.endsWith('  - sign in, and watch the worker\'s log line with: npx wrangler tail\n'), json.stdout);

    const dry = await setup([...JWE, '--dry-run']);
    ok(dry);
    assert.ok(dry.stdout.includes('\nLeft to do by hand:\n  1. Set the worker\'s variable PAYLOAD_TYPES') && dry.stdout.includes('\n       PAYLOAD_TYPES = "jwe"\n'), dry.stdout);

    assert.equal(readFileSync(toml, 'utf8'), original, 'the tool prints the line, it never edits wrangler.toml');
  });

  it('--connect with jwt: PAYLOAD_TYPES is set in the same step as CONNECT_CLIENT_ID', async () => {
    const r = await setup(['--worker-url', WORKER, '--connect', '--payload-type', 'jwt']);
    ok(r);
    const [app] = fake.projects()[0].apps;
    assert.ok(
      r.stdout.includes(
        `Left to do by hand:\n  1. Set the worker's variable CONNECT_CLIENT_ID (no secret) to the app's client id, and PAYLOAD_TYPES to the target's payload type alone, in wrangler.toml:\n` +
          `       [vars]\n       CONNECT_CLIENT_ID = "${app.oidcConfig.clientId}"\n       PAYLOAD_TYPES = "jwt"\n     Without PAYLOAD_TYPES the worker also accepts plain JSON payloads, `,
      ),
      r.stdout,
    );
    assert.equal(r.stdout.split('[vars]').length - 1, 1, 'one block');
  });

  it('a JSON target switched to jwe gets its key active and stored before the update', async () => {
    ok(await setup(['--worker-url', WORKER]));
    const t = fake.target('zitadel-claims');
    fake.reset();
    const r = await setup(JWE);
    ok(r);
    const key = fake.activeKey(t.id);
    assert.deepEqual(paths().slice(0, 6), [
      'POST /v2/actions/targets/search',
      `GET /v2/actions/targets/${t.id}`,
      `POST /v2/actions/targets/${t.id}/publickeys/search`,
      `POST /v2/actions/targets/${t.id}/publickeys`,
      `POST /v2/actions/targets/${t.id}/publickeys/${key.keyId}/activate`,
      `POST /v2/actions/targets/${t.id}`,
    ]);
    assert.equal(fake.target('zitadel-claims').payloadType, 'PAYLOAD_TYPE_JWE');
    assertKeysMatch(t.id, decryptionEntries(r.wrangler[0].stdin));
  });

  it('an active key whose private key is not in the key file: exit 1, nothing changed, --rotate-encryption-key suggested', async () => {
    ok(await setup(JWE));
    const t = fake.target('zitadel-claims');
    const key = fake.activeKey(t.id);
    const elsewhere = mkdtempSync(join(dir, 'elsewhere-'));
    fake.reset();
    const r = await setup(JWE, { cwd: elsewhere });
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      `  ZITADEL: searching the targets\n  ZITADEL: reading the target (its settings and signing key)\nChecking the worker: GET ${WORKER_ORIGIN}/healthz\n` +
        `The worker answers 200 ok\n  ZITADEL: listing the target's public keys\n`,
      'reads and the checks, then nothing',
    );
    assert.match(r.stderr, new RegExp(`^error: the target's active encryption key ${key.keyId} is not in the key file \\.payload-decryption-keys`));
    assert.match(r.stderr, /--rotate-encryption-key/);
    assert.deepEqual(r.wrangler, []);
    assert.deepEqual(paths(), [
      'POST /v2/actions/targets/search',
      `GET /v2/actions/targets/${t.id}`,
      `POST /v2/actions/targets/${t.id}/publickeys/search`,
    ]);
    assert.equal(existsSync(join(elsewhere, KEY_FILE)), false);

    // The way out: a new key pair, there.
    const rotated = await setup(['--rotate-encryption-key'], { cwd: elsewhere });
    ok(rotated);
    assert.match(rotated.stdout, /Warning: the previous key \d+ is not in/);
    const entries = decryptionEntries(rotated.wrangler[0].stdin);
    assert.deepEqual(entries.map((e) => e.keyId), [fake.activeKey(t.id).keyId]);
    assertKeysMatch(t.id, entries);
  });

  it('--key-file names the key file; one that others may read is refused', async () => {
    const file = join(work, 'keys', 'claims.keys');
    rmSync(join(work, 'keys'), { recursive: true, force: true });
    const missingDir = await setup([...JWE, '--key-file', file]);
    assert.equal(missingDir.code, 1);
    assert.match(missingDir.stderr, /the key file .*claims\.keys cannot be written/);
    const named = join(work, 'claims.keys');
    ok(await setup([...JWE, '--key-file', named]));
    assert.equal(statSync(named).mode & 0o777, 0o600);
    assert.equal(existsSync(join(work, KEY_FILE)), false);
    chmodSync(named, 0o644);
    const refused = await setup([...JWE, '--key-file', named]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /others may read or change it \(mode 644\): run `chmod 600 /);
    assert.deepEqual(refused.wrangler, []);
  });

  it('--dry-run with jwe prints the key calls with "<public key PEM>", makes no key and writes no file', async () => {
    const r = await setup([...JWE, '--dry-run'], { pat: null });
    ok(r);
    assert.equal(fake.calls.length, 0);
    assert.deepEqual(r.wrangler, []);
    assert.equal(existsSync(join(work, KEY_FILE)), false);
    assert.ok(r.stdout.includes(`POST ${fake.url}/v2/actions/targets/TARGET_ID/publickeys\n    {"publicKey":"<public key PEM>"}`), r.stdout);
    assert.ok(r.stdout.includes(`POST ${fake.url}/v2/actions/targets/TARGET_ID/publickeys/NEW_KEY_ID/activate`), r.stdout);
    assert.ok(r.stdout.includes(`${FAKE_WRANGLER} secret put PAYLOAD_DECRYPTION_KEY`), r.stdout);
    assert.ok(r.stdout.includes('"payloadType":"PAYLOAD_TYPE_JWE"'), r.stdout);
    assert.ok(!r.stdout.includes('BEGIN'), r.stdout);
    const finish = await setup(['--finish-rotation', '--dry-run'], { pat: null });
    ok(finish);
    assert.ok(finish.stdout.includes(`DELETE ${fake.url}/v2/actions/targets/TARGET_ID/publickeys/EARLIER_KEY_ID`), finish.stdout);
    assert.equal(fake.calls.length, 0);
  });

  it('usage: --key-type without a key pair to make, two rotations at once, an unknown payload type', async () => {
    const cases = [
      [['--worker-url', WORKER, '--key-type', 'p256'], /--key-type is for/],
      [['--rotate', '--rotate-encryption-key'], /--rotate and --rotate-encryption-key exclude each other/],
      [['--worker-url', WORKER, '--payload-type', 'xml'], /--payload-type must be json, jwt or jwe/],
      [['--rotate-encryption-key', '--payload-type', 'jwe'], /--payload-type changes the target or its bindings: give --worker-url too/],
    ];
    for (const [args, message] of cases) {
      const r = await setup(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
    assert.equal(fake.calls.length, 0);
  });
});

describe('npm run setup -- --connect: the OIDC app of the connect flow and TOKEN_SEALING_KEY', () => {
  beforeEach(() => start());

  const CONNECT = ['--worker-url', WORKER, '--connect'];
  const SEALING_PUT = ['secret', 'put', 'TOKEN_SEALING_KEY'];
  const LIST = ['secret', 'list', '--format', 'json'];
  /** The fields the connect app is created with, for a worker at `origin`. */
  const appFields = (origin, devMode) => ({
    redirectUris: [`${origin}/connect/zitadel/callback`],
    responseTypes: ['OIDC_RESPONSE_TYPE_CODE'],
    grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE'],
    appType: 'OIDC_APP_TYPE_USER_AGENT',
    authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE',
    devMode,
    accessTokenType: 'OIDC_TOKEN_TYPE_BEARER',
  });

  it('creates the project and a PKCE app with exactly these fields, stores a new sealing key, prints what is left', async () => {
    const r = await setup(CONNECT);
    ok(r);
    const [project] = fake.projects();
    assert.equal(project.name, 'zitadel-claims');
    assert.equal(project.apps.length, 1);
    const [app] = project.apps;
    assert.equal(app.name, 'zitadel-claims-connect');
    const create = fake.calls.find((c) => c.path.endsWith('/apps/oidc'));
    assert.equal(create.path, `/management/v1/projects/${project.id}/apps/oidc`);
    assert.deepEqual(JSON.parse(create.body), { name: 'zitadel-claims-connect', ...appFields(WORKER_ORIGIN, true) });
    assert.deepEqual(paths().slice(4), [
      'POST /management/v1/projects/_search',
      'POST /management/v1/projects',
      `POST /management/v1/projects/${project.id}/apps/_search`,
      `POST /management/v1/projects/${project.id}/apps/oidc`,
    ]);

    // The signing key first (that `secret put` makes a new worker), then the list, then the new key.
    assert.deepEqual(r.wrangler.map((w) => w.argv), [SECRET_PUT, LIST, SEALING_PUT]);
    const sealing = r.wrangler[2].stdin;
    const m = /^(k\d{8}):([A-Za-z0-9+/]{43}=)$/.exec(sealing);
    assert.ok(m, 'TOKEN_SEALING_KEY is "k<yyyymmdd>:<standard base64>"');
    assert.equal(Buffer.from(m[2], 'base64').length, 32);
    assert.equal(m[1], `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`);
    assert.ok(!r.stdout.includes(m[2]) && !r.stderr.includes(m[2]), 'the sealing key was printed');
    assert.ok(r.stdout.includes(`Made a token sealing key (key id ${m[1]}) and stored it as the worker's secret TOKEN_SEALING_KEY`), r.stdout);

    assert.ok(r.stdout.includes(`CONNECT_CLIENT_ID = "${app.oidcConfig.clientId}"`), r.stdout);
    assert.ok(r.stdout.includes('Register this redirect URI in the Entra app'), r.stdout);
    assert.ok(r.stdout.includes(`\n       ${WORKER_ORIGIN}/connect/microsoft/callback\n`), r.stdout);
    assert.match(r.stdout, /MS_SCOPES must include offline_access/);
    assert.match(r.stdout, /CONNECT_RETURN_URLS must list the application URLs users return to/);
    assert.equal(r.stderr, '');
  });

  it('a second run reuses the project and the app and keeps a sealing key that is set', async () => {
    ok(await setup(CONNECT));
    const [before] = fake.projects();
    fake.reset();
    const r = await setup(CONNECT, { env: { FAKE_WRANGLER_SECRETS: 'ZITADEL_SIGNING_KEY,TOKEN_SEALING_KEY' } });
    ok(r);
    assert.deepEqual(fake.projects(), [before]);
    assert.deepEqual(paths().filter((p) => p.includes('/management/')), [
      'POST /management/v1/projects/_search',
      `POST /management/v1/projects/${before.id}/apps/_search`,
    ]);
    assert.deepEqual(r.wrangler.map((w) => w.argv), [SECRET_PUT, LIST], 'TOKEN_SEALING_KEY is not replaced');
    assert.match(r.stdout, /TOKEN_SEALING_KEY is set already: kept/);
    assert.ok(r.stdout.includes(`CONNECT_CLIENT_ID = "${before.apps[0].oidcConfig.clientId}"`), r.stdout);
  });

  it('an app of a moved worker gets the new redirect URI and keeps its other settings; --connect-project names the project', async () => {
    const projectId = fake.addProject('my-project');
    const existing = fake.addOidcApp(projectId, 'zitadel-claims-connect', {
      ...appFields('https://old.example', false),
      postLogoutRedirectUris: ['https://old.example/bye'],
      idTokenUserinfoAssertion: true,
      clockSkew: '2s',
    });
    const r = await setup(['--worker-url', `${WORKER_ORIGIN}/hook`, '--connect', '--connect-project', projectId]);
    ok(r);
    assert.ok(!paths().includes('POST /management/v1/projects/_search'), 'no project search');
    assert.ok(!paths().some((p) => p.endsWith('/apps/oidc')), 'no new app');
    const [app] = fake.projects()[0].apps;
    assert.equal(app.id, existing.id);
    assert.deepEqual(app.oidcConfig, {
      clientId: existing.oidcConfig.clientId,
      redirectUris: [`${WORKER_ORIGIN}/connect/zitadel/callback`],
      responseTypes: ['OIDC_RESPONSE_TYPE_CODE'],
      grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE'],
      appType: 'OIDC_APP_TYPE_USER_AGENT',
      authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE',
      postLogoutRedirectUris: ['https://old.example/bye'],
      idTokenUserinfoAssertion: true,
      clockSkew: '2s',
      devMode: true, // the worker is on http:// here
    }, 'BEARER is a zero value protojson leaves out');
    assert.ok(r.stdout.includes(`(redirect URI ${WORKER_ORIGIN}/connect/zitadel/callback)`), r.stdout);
    assert.ok(r.stdout.includes('answered 404 not_found: the worker takes calls at / and /zitadel/complement-token alone'), r.stdout);
    assert.match(r.stdout, /Updated the OIDC app "zitadel-claims-connect" /);
    assert.ok(r.stdout.includes(`\n       ${WORKER_ORIGIN}/connect/microsoft/callback\n`), r.stdout);

    // Nothing differs now: no update (ZITADEL would refuse one that changes nothing).
    fake.reset();
    ok(await setup(['--worker-url', `${WORKER_ORIGIN}/hook`, '--connect', '--connect-project', projectId]));
    assert.ok(!fake.calls.some((c) => c.method === 'PUT' && c.path.includes('/apps/')), paths().join('\n'));
  });

  it('a token without a project permission: 403 names it', async () => {
    const needed = ALL_PERMISSIONS.filter((p) => p.startsWith('project.'));
    await fake.close();
    await start({ permissions: Object.fromEntries(needed.map((p) => [`pat-without-${p}`, ALL_PERMISSIONS.filter((x) => x !== p)])) });
    for (const permission of needed) {
      const r = await setup(CONNECT, { pat: `pat-without-${permission}` });
      assert.equal(r.code, 1, permission);
      assert.equal(/lacks the permission (\S+)/.exec(r.stderr)?.[1], permission, r.stderr);
    }
  });

  it('--dry-run prints the project and app calls, the wrangler commands and what is left', async () => {
    const r = await setup([...CONNECT, '--dry-run'], { pat: null });
    ok(r);
    assert.equal(fake.calls.length, 0);
    assert.deepEqual(r.wrangler, []);
    for (const line of [
      `POST ${fake.url}/management/v1/projects/_search`,
      `POST ${fake.url}/management/v1/projects/PROJECT_ID/apps/oidc`,
      `${FAKE_WRANGLER} secret list --format json`,
      `${FAKE_WRANGLER} secret put TOKEN_SEALING_KEY`,
      'CONNECT_CLIENT_ID = "CLIENT_ID"',
      `${WORKER_ORIGIN}/connect/microsoft/callback`,
    ]) {
      assert.ok(r.stdout.includes(line), `${line}\n${r.stdout}`);
    }
  });

  it('usage: --connect needs --worker-url, --connect-project needs --connect', async () => {
    const without = await setup(['--rotate', '--connect']);
    assert.equal(without.code, 2);
    assert.match(without.stderr, /--connect needs --worker-url/);
    const project = await setup(['--worker-url', WORKER, '--connect-project', '1']);
    assert.equal(project.code, 2);
    assert.match(project.stderr, /--connect-project is for --connect/);
    assert.equal(fake.calls.length, 0);
  });
});

describe('npm run setup -- --connect --introspection --exchange-client: the introspection app and the token exchange clients', () => {
  beforeEach(() => start());

  const ARGS = ['--worker-url', WORKER, '--connect', '--introspection', '--exchange-client', 'a@p', '--exchange-client', 'b'];
  const put = (name) => ['secret', 'put', name];
  const LIST = ['secret', 'list', '--format', 'json'];
  /** What the fake wrangler received for the secret `name` (the one put of it). */
  const stored = (r, name) => {
    const puts = r.wrangler.filter((w) => w.argv.join(' ') === put(name).join(' '));
    assert.equal(puts.length, 1, `one put of ${name}`);
    return puts[0].stdin;
  };
  /** TOKEN_EXCHANGE_CLIENTS as [[client id, secret]], each secret checked to be base64url of 32 bytes. */
  const exchangeEntries = (value) => value.split(',').map((entry) => {
    const m = /^([^:,\s]+):([A-Za-z0-9_-]{43})$/.exec(entry);
    assert.ok(m, `not "<client id>:<base64url of 32 bytes>": an entry of ${entry.length} characters`);
    assert.equal(Buffer.from(m[2], 'base64url').length, 32);
    return [m[1], m[2]];
  });
  /** The back ends' secrets as printed under step 5: [[client id, secret]]. */
  const printed = (stdout) => {
    const step = stdout.split('\n  5. ')[1];
    assert.ok(step, stdout);
    return step.split('\n').slice(1).filter((l) => l.startsWith('       ')).map((l) => l.trim().split(': '));
  };
  const introspectionApp = () => fake.projects()[0].apps.find((a) => a.name === 'zitadel-claims-introspection');

  it('creates the API app once (HTTP Basic) and a re-run has ZITADEL make a new secret; each back end gets a secret, stored together and printed once', async () => {
    const r = await setup(ARGS);
    ok(r);
    const [project] = fake.projects();
    assert.deepEqual(project.apps.map((a) => a.name), ['zitadel-claims-connect', 'zitadel-claims-introspection'], 'in the connect app\'s project');
    const app = introspectionApp();
    assert.deepEqual(Object.keys(app.apiConfig), ['clientId'], 'BASIC, the zero value, left out; no secret shown');
    const create = fake.calls.filter((c) => c.path === `/management/v1/projects/${project.id}/apps/api`);
    assert.equal(create.length, 1);
    assert.deepEqual(JSON.parse(create[0].body), { name: 'zitadel-claims-introspection', authMethodType: 'API_AUTH_METHOD_TYPE_BASIC' });
    assert.ok(!paths().some((p) => p.endsWith('/_generate_client_secret')), paths().join('\n'));
    assert.deepEqual(r.wrangler.map((w) => w.argv), [SECRET_PUT, LIST, put('TOKEN_SEALING_KEY'), put('INTROSPECTION_CLIENT_SECRET'), put('TOKEN_EXCHANGE_CLIENTS')]);

    const secret = stored(r, 'INTROSPECTION_CLIENT_SECRET');
    assert.match(secret, /^[A-Za-z0-9]{32}$/, 'the secret AddAPIApp answered');
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the client secret was printed');
    assert.ok(r.stdout.includes(`\n       INTROSPECTION_CLIENT_ID = "${app.apiConfig.clientId}"\n`), r.stdout);
    assert.match(r.stdout, /Created the API app "zitadel-claims-introspection" \(id \d+\) in project \d+: HTTP Basic client authentication/);

    const entries = exchangeEntries(stored(r, 'TOKEN_EXCHANGE_CLIENTS'));
    assert.deepEqual(entries.map(([id]) => id), ['a@p', 'b']);
    assert.notEqual(entries[0][1], entries[1][1]);
    assert.deepEqual(printed(r.stdout), entries, 'the printed secrets are the stored ones');
    for (const [, s] of entries) {
      assert.equal(r.stdout.split(s).length - 1, 1, 'each secret printed once');
      assert.ok(!r.stderr.includes(s));
    }
    assert.ok(r.stdout.includes(`shown only now; it authenticates to POST ${WORKER_ORIGIN}/token with HTTP Basic (client id and secret form-urlencoded first, RFC 6749 §2.3.1)`), r.stdout);
    assert.match(r.stdout, /TOKEN_EXCHANGE_CLIENTS .*; this replaces the whole secret/);
    assert.equal(r.stderr, '');

    // Again: the same app, a new secret (ZITADEL shows none for an app that exists), new back end secrets.
    fake.reset();
    const again = await setup(ARGS, { env: { FAKE_WRANGLER_SECRETS: 'ZITADEL_SIGNING_KEY,TOKEN_SEALING_KEY' } });
    ok(again);
    assert.deepEqual(fake.projects()[0].apps.map((a) => a.name), ['zitadel-claims-connect', 'zitadel-claims-introspection'], 'no second app');
    const { details: _, ...unchanged } = app;
    assert.deepEqual({ ...introspectionApp(), details: undefined }, { ...unchanged, details: undefined }, 'the same app, unchanged but for its secret');
    assert.deepEqual(paths().filter((p) => p.includes('/management/')), [
      'POST /management/v1/projects/_search',
      `POST /management/v1/projects/${project.id}/apps/_search`,
      `POST /management/v1/projects/${project.id}/apps/_search`,
      `POST /management/v1/projects/${project.id}/apps/${app.id}/api_config/_generate_client_secret`,
    ]);
    assert.deepEqual(JSON.parse(fake.calls.at(-1).body), {});
    assert.deepEqual(again.wrangler.map((w) => w.argv), [SECRET_PUT, LIST, put('INTROSPECTION_CLIENT_SECRET'), put('TOKEN_EXCHANGE_CLIENTS')]);
    const newSecret = stored(again, 'INTROSPECTION_CLIENT_SECRET');
    assert.match(newSecret, /^[A-Za-z0-9]{32}$/);
    assert.notEqual(newSecret, secret);
    assert.match(again.stdout, /Found the API app "zitadel-claims-introspection" \(id \d+\) in project \d+: generated a new client secret/);
    assert.ok(again.stdout.includes(`INTROSPECTION_CLIENT_ID = "${app.apiConfig.clientId}"`), again.stdout);
    const newEntries = exchangeEntries(stored(again, 'TOKEN_EXCHANGE_CLIENTS'));
    assert.deepEqual(printed(again.stdout), newEntries);
    assert.ok(newEntries.every(([, s]) => !entries.some(([, old]) => old === s)), 'new secrets each run');
  });

  it('an introspection app that is not HTTP Basic is refused by name and left alone', async () => {
    const projectId = fake.addProject('my-project');
    const res = await fetch(`${fake.url}/management/v1/projects/${projectId}/apps/api`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PAT}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'zitadel-claims-introspection', authMethodType: 'API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT' }),
    });
    assert.equal(res.status, 200);
    fake.reset();
    const r = await setup(['--worker-url', WORKER, '--connect', '--connect-project', projectId, '--introspection']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: the API app "zitadel-claims-introspection" of project ${projectId} authenticates with API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT, not with HTTP Basic`));
    assert.ok(!paths().some((p) => p.endsWith('/_generate_client_secret') || p.endsWith('/apps/api')), paths().join('\n'));
    assert.ok(!r.wrangler.some((w) => w.argv[2] === 'INTROSPECTION_CLIENT_SECRET'));
    assert.deepEqual(introspectionApp().apiConfig.authMethodType, 'API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT');
  });

  it('a token without project.app.write: 403 names it', async () => {
    await fake.close();
    await start({ permissions: { 'no-app-write': ALL_PERMISSIONS.filter((p) => p !== 'project.app.write') } });
    ok(await setup(['--worker-url', WORKER, '--connect'])); // the project and the connect app, as they are
    const r = await setup(ARGS, { pat: 'no-app-write' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ZITADEL denied creating the API app \(403\): ZITADEL_PAT lacks the permission project\.app\.write/);
    assert.ok(!r.wrangler.some((w) => ['INTROSPECTION_CLIENT_SECRET', 'TOKEN_EXCHANGE_CLIENTS'].includes(w.argv[2])));
  });

  it('--dry-run prints the API app calls and the wrangler commands, with placeholders', async () => {
    const r = await setup([...ARGS, '--dry-run'], { pat: null });
    ok(r);
    assert.equal(fake.calls.length, 0);
    assert.deepEqual(r.wrangler, []);
    for (const line of [
      `POST ${fake.url}/management/v1/projects/PROJECT_ID/apps/api\n    {"authMethodType":"API_AUTH_METHOD_TYPE_BASIC","name":"zitadel-claims-introspection"}`,
      'api_config/_generate_client_secret',
      `${FAKE_WRANGLER} secret put INTROSPECTION_CLIENT_SECRET`,
      `${FAKE_WRANGLER} secret put TOKEN_EXCHANGE_CLIENTS\n    (with "a@p:<new secret>,b:<new secret>", new secrets that replace the whole secret`,
      'INTROSPECTION_CLIENT_ID = "API_CLIENT_ID"',
      '       a@p: <new secret of a@p>\n       b: <new secret of b>\n',
    ]) {
      assert.ok(r.stdout.includes(line), `${line}\n${r.stdout}`);
    }
  });

  it('usage: both need --connect; a client id that is empty, holds "," ":" or whitespace, or comes twice', async () => {
    const cases = [
      [['--worker-url', WORKER, '--introspection'], /--introspection is for --connect/],
      [['--worker-url', WORKER, '--exchange-client', 'a'], /--exchange-client is for --connect/],
      [['--worker-url', WORKER, '--connect', '--exchange-client', 'a', '--exchange-client', 'a'], /--exchange-client "a" is given twice/],
      [['--worker-url', WORKER, '--connect', '--exchange-client', ''], /--exchange-client needs a client id/],
      [['--worker-url', WORKER, '--connect', '--exchange-client', 'a:b'], /--exchange-client "a:b": a client id has no/],
      [['--worker-url', WORKER, '--connect', '--exchange-client', 'a,b'], /--exchange-client "a,b": a client id has no/],
      [['--worker-url', WORKER, '--connect', '--exchange-client', 'a b'], /--exchange-client "a b": a client id has no/],
      [['--worker-url', WORKER, '--connect', '--exchange-client'], /--exchange-client needs a value/],
      [['--worker-url', WORKER, '--connect', '--introspection', '--introspection'], /--introspection is given twice/],
    ];
    for (const [args, message] of cases) {
      const r = await setup(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      assert.deepEqual(r.wrangler, []);
    }
    assert.equal(fake.calls.length, 0);
  });
});

describe('fake ZITADEL: Action API V2 (targets, executions)', () => {
  beforeEach(() => start({ permissions: { 'read-only': ['action.target.read', 'action.execution.read'] } }));

  async function api(method, path, body, token = PAT) {
    const res = await fetch(`${fake.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }

  it('creates, finds, reads, updates and rotates targets in the REST wire format', async () => {
    const spec = { name: 'n', endpoint: 'https://w.example/', timeout: '10s', restCall: { interruptOnError: false } };
    const created = await api('POST', '/v2/actions/targets', spec);
    assert.equal(created.status, 200);
    assert.deepEqual(Object.keys(created.json).sort(), ['creationDate', 'id', 'signingKey']);
    assert.match(created.json.id, /^\d{18}$/);
    assert.equal((await api('POST', '/v2/actions/targets', spec)).status, 409);

    const found = await api('POST', '/v2/actions/targets/search', { filters: [{ targetNameFilter: { targetName: 'n', method: 'TEXT_FILTER_METHOD_EQUALS' } }] });
    assert.equal(found.json.pagination.totalResult, '1');
    assert.equal(found.json.targets[0].signingKey, created.json.signingKey);
    const none = await api('POST', '/v2/actions/targets/search', { filters: [{ targetNameFilter: { targetName: 'N', method: 'TEXT_FILTER_METHOD_EQUALS' } }] });
    assert.deepEqual(none.json.targets, []);

    const got = await api('GET', `/v2/actions/targets/${created.json.id}`);
    assert.deepEqual(got.json.target.restCall, { interruptOnError: false });
    assert.equal(got.json.target.signingKey, created.json.signingKey);

    const updated = await api('POST', `/v2/actions/targets/${created.json.id}`, { endpoint: 'https://w2.example/' });
    assert.deepEqual(Object.keys(updated.json), ['changeDate']);
    const rotated = await api('POST', `/v2/actions/targets/${created.json.id}`, { expirationSigningKey: '0s' });
    assert.notEqual(rotated.json.signingKey, created.json.signingKey);
    assert.equal(fake.target('n').signingKey, rotated.json.signingKey);
    assert.equal((await api('POST', `/v2/actions/targets/${created.json.id}`, { expirationSigningKey: '60s' })).status, 400);
    assert.equal((await api('GET', '/v2/actions/targets/1')).status, 404);
    assert.equal((await api('POST', '/v2/actions/targets', { ...spec, name: 'x', timeout: '271s' })).status, 400);
    assert.equal((await api('POST', '/v2/actions/targets', { ...spec, name: 'x', restCall: undefined })).status, 400);
  });

  it('SetExecution replaces the list; ListExecutions filters by condition', async () => {
    const a = fake.addTarget({ name: 'a', endpoint: 'https://a/' });
    const b = fake.addTarget({ name: 'b', endpoint: 'https://b/' });
    assert.equal((await api('PUT', '/v2/actions/executions', { condition: PREACCESSTOKEN, targets: [a.id, b.id] })).status, 200);
    assert.equal((await api('PUT', '/v2/actions/executions', { condition: PREUSERINFO, targets: [a.id] })).status, 200);
    assert.equal((await api('PUT', '/v2/actions/executions', { condition: PREACCESSTOKEN, targets: [b.id] })).status, 200);
    const listed = await api('POST', '/v2/actions/executions/search', { filters: [{ inConditionsFilter: { conditions: [PREACCESSTOKEN] } }] });
    assert.equal(listed.status, 200);
    assert.equal(listed.json.pagination.totalResult, '1');
    assert.deepEqual(listed.json.executions[0].condition, PREACCESSTOKEN);
    assert.deepEqual(listed.json.executions[0].targets, [b.id]);
    assert.equal((await api('PUT', '/v2/actions/executions', { condition: { function: { name: 'nope' } }, targets: [a.id] })).status, 400);
    assert.equal((await api('PUT', '/v2/actions/executions', { condition: PREACCESSTOKEN, targets: ['404'] })).status, 404);
    assert.equal((await api('PUT', '/v2/actions/executions', { condition: PREACCESSTOKEN, targets: [a.id, a.id] })).status, 400);
    await api('PUT', '/v2/actions/executions', { condition: PREUSERINFO, targets: [] });
    assert.deepEqual(fake.executions().map((e) => e.condition), [PREACCESSTOKEN]);
  });

  it('management v1: projects and OIDC apps of the caller\'s organization; UpdateOIDCAppConfig sets every field and refuses no change', async () => {
    const byName = (name) => ({ queries: [{ nameQuery: { name, method: 'TEXT_QUERY_METHOD_EQUALS' } }] });
    const created = await api('POST', '/management/v1/projects', { name: 'p' });
    assert.equal(created.status, 200);
    fake.addProject('p', 'another-org');
    const found = await api('POST', '/management/v1/projects/_search', byName('p'));
    assert.deepEqual(found.json.result.map((p) => p.id), [created.json.id], 'only the caller\'s organization');
    const base = `/management/v1/projects/${created.json.id}/apps`;
    const app = await api('POST', `${base}/oidc`, { name: 'a', redirectUris: ['https://w/cb'], appType: 'OIDC_APP_TYPE_USER_AGENT', authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE' });
    assert.equal(app.status, 200);
    assert.match(app.json.clientId, /^\d+@p$/);
    assert.equal(app.json.clientSecret, undefined, 'a public client has no secret');
    assert.equal((await api('POST', `${base}/oidc`, { name: 'a' })).status, 409);
    assert.equal((await api('POST', `${base}/oidc`, { name: 'b', appType: 'OIDC_APP_TYPE_X' })).status, 400);
    assert.equal((await api('POST', '/management/v1/projects/1/apps/oidc', { name: 'a' })).status, 404);
    assert.deepEqual((await api('POST', `${base}/_search`, byName('b'))).json.result, undefined, 'protojson leaves out an empty list');
    const [listed] = (await api('POST', `${base}/_search`, byName('a'))).json.result;
    assert.deepEqual(listed.oidcConfig, { clientId: app.json.clientId, redirectUris: ['https://w/cb'], appType: 'OIDC_APP_TYPE_USER_AGENT', authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE' });
    const put = (body) => api('PUT', `${base}/${listed.id}/oidc_config`, body);
    assert.equal((await put({ redirectUris: ['https://w/cb'], appType: 'OIDC_APP_TYPE_USER_AGENT', authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE' })).status, 400, 'no change');
    assert.equal((await put({ redirectUris: ['https://w/cb2'] })).status, 200);
    const [after] = (await api('POST', `${base}/_search`, byName('a'))).json.result;
    assert.deepEqual(after.oidcConfig, { clientId: app.json.clientId, redirectUris: ['https://w/cb2'] }, 'absent fields are set to their zero value');
  });

  it('management v1: API apps (AddAPIApp, RegenerateAPIClientSecret); ListApps shows apiConfig without the secret', async () => {
    const byName = (name) => ({ queries: [{ nameQuery: { name, method: 'TEXT_QUERY_METHOD_EQUALS' } }] });
    const project = await api('POST', '/management/v1/projects', { name: 'p' });
    const base = `/management/v1/projects/${project.json.id}/apps`;
    const created = await api('POST', `${base}/api`, { name: 'i', authMethodType: 'API_AUTH_METHOD_TYPE_BASIC' });
    assert.equal(created.status, 200);
    assert.deepEqual(Object.keys(created.json).sort(), ['appId', 'clientId', 'clientSecret', 'details']);
    assert.match(created.json.clientSecret, /^[A-Za-z0-9]{32}$/);
    assert.equal((await api('POST', `${base}/api`, { name: 'i' })).status, 409, 'app names are unique in the project');
    assert.equal((await api('POST', `${base}/api`, { name: '' })).status, 400);
    assert.equal((await api('POST', `${base}/api`, { name: 'x', authMethodType: 'API_AUTH_METHOD_TYPE_X' })).status, 400);
    assert.equal((await api('POST', '/management/v1/projects/1/apps/api', { name: 'x' })).status, 400, 'Errors.Project.NotFound is a failed precondition');
    const jwt = await api('POST', `${base}/api`, { name: 'j', authMethodType: 'API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT' });
    assert.equal(jwt.json.clientSecret, undefined, 'a secret only for BASIC');
    const [listed] = (await api('POST', `${base}/_search`, byName('i'))).json.result;
    assert.deepEqual(listed.apiConfig, { clientId: created.json.clientId }, 'BASIC left out, no secret');
    assert.equal(listed.oidcConfig, undefined);
    const [listedJwt] = (await api('POST', `${base}/_search`, byName('j'))).json.result;
    assert.deepEqual(listedJwt.apiConfig, { clientId: jwt.json.clientId, authMethodType: 'API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT' });

    const regenerate = (appId) => api('POST', `${base}/${appId}/api_config/_generate_client_secret`, {});
    const renewed = await regenerate(created.json.appId);
    assert.equal(renewed.status, 200);
    assert.deepEqual(Object.keys(renewed.json).sort(), ['clientSecret', 'details']);
    assert.match(renewed.json.clientSecret, /^[A-Za-z0-9]{32}$/);
    assert.notEqual(renewed.json.clientSecret, created.json.clientSecret);
    assert.equal((await regenerate('1')).status, 404);
    const oidc = await api('POST', `${base}/oidc`, { name: 'o', redirectUris: ['https://w/cb'] });
    assert.equal((await regenerate(oidc.json.appId)).status, 400, 'Errors.Project.App.IsNotAPI');
    assert.equal((await api('POST', `${base}/api`, { name: 'k' }, 'read-only')).status, 403);
    assert.equal((await api('POST', `${base}/${created.json.appId}/api_config/_generate_client_secret`, {}, 'read-only')).status, 403);
  });

  it('checks the permission of each call', async () => {
    assert.equal((await api('POST', '/v2/actions/targets/search', {}, 'read-only')).status, 200);
    const denied = await api('POST', '/v2/actions/targets', { name: 'n', endpoint: 'https://w/', timeout: '1s', restCall: {} }, 'read-only');
    assert.equal(denied.status, 403);
    assert.equal(denied.json.code, 7);
    assert.equal((await api('PUT', '/v2/actions/executions', { condition: PREACCESSTOKEN, targets: [] }, 'read-only')).status, 403);
    assert.equal((await api('POST', '/v2/actions/executions/search', {}, 'wrong')).status, 401);
  });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
