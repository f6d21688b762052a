// Settings end to end: a missing or invalid setting is named (never its value) by /healthz and by
// every call; the reference worker's secret name works; the tolerance setting is honoured.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { assertError, postSigned } from '../support/calls.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { now } from '../support/sample.mjs';
import { startWorker } from '../support/worker.mjs';

const BODY = JSON.stringify({ function: 'function/preaccesstoken' });
const workers = [];
after(() => Promise.all(workers.map((w) => w.stop())));

async function start(options) {
  const w = await startWorker(options);
  workers.push(w);
  return w;
}

/** POSTs BODY, signed with `key` at `t` (without `key`: unsigned). */
const post = (worker, { key, t } = {}) => postSigned(worker.url, BODY, key, { t });

describe('configuration', () => {
  it('without a signing key: /healthz 503 and every call 500 misconfigured, naming the setting', async () => {
    const w = await start({ vars: { SIGNATURE_TOLERANCE_SECONDS: 'ten minutes' } });
    const health = await fetch(`${w.url}/healthz`);
    assert.equal(health.status, 503);
    const body = await health.json();
    assert.equal(body.status, 'misconfigured');
    assert.deepEqual(body.problems.map((p) => p.setting), ['ZITADEL_SIGNING_KEY', 'SIGNATURE_TOLERANCE_SECONDS', 'ZITADEL_DOMAIN', 'ZITADEL_ACCESS_TOKEN']);
    assert.ok(!JSON.stringify(body).includes('ten minutes'), 'a value was echoed');

    const res = await post(w, { key: 'anything' });
    assertError(res, 500, 'misconfigured', /ZITADEL_SIGNING_KEY/);
    assert.match(res.json.message, /SIGNATURE_TOLERANCE_SECONDS/);
    assert.ok(!res.json.message.includes('ten minutes'));
  });

  it("takes the reference worker's settings as they are, and honours SIGNATURE_TOLERANCE_SECONDS", async () => {
    const fake = await startFakeZitadel({ fixture: { accessToken: 'legacy-pat' } });
    workers.push({ stop: () => fake.close() });
    // Exactly the reference worker's names: ZITADEL_DOMAIN, ACCESS_TOKEN, AUTHORIZATION_SIGNING_KEY.
    const w = await start({
      secrets: { AUTHORIZATION_SIGNING_KEY: 'legacy-key', ACCESS_TOKEN: 'legacy-pat' },
      vars: { ZITADEL_DOMAIN: fake.url, SIGNATURE_TOLERANCE_SECONDS: '30' },
    });
    assert.equal((await fetch(`${w.url}/healthz`)).status, 200);
    const t = now();
    assert.equal((await post(w, { key: 'legacy-key', t: t - 20 })).status, 200);
    const stale = await post(w, { key: 'legacy-key', t: t - 45 });
    assertError(stale, 401, 'stale_signature', /tolerance of 30 s/);
    assert.equal((await post(w, { key: 'other-key' })).json.error, 'invalid_signature');
  });

  it('refuses claim names ZITADEL would drop and two claims with one name', async () => {
    const w = await start({
      secrets: { ZITADEL_SIGNING_KEY: 'k' },
      vars: { PERMISSIONS_CLAIM: '', GROUPS_CLAIM: 'urn:zitadel:iam:groups', MS_TOKEN_CLAIM: 'my:zitadel:grants' },
    });
    const health = await fetch(`${w.url}/healthz`);
    assert.equal(health.status, 503);
    const { problems } = await health.json();
    assert.deepEqual(problems.map((p) => p.setting), ['GROUPS_CLAIM', 'MS_TOKEN_CLAIM']);
    assert.match(problems[0].problem, /silently drops/);
    assert.match(problems[1].problem, /FLAT_ROLES_CLAIM/);
    const res = await post(w, { key: 'k' });
    assert.equal(res.status, 500);
    assert.match(res.json.message, /GROUPS_CLAIM.*MS_TOKEN_CLAIM/);
  });

  it('without the permissions claim no ZITADEL settings are needed', async () => {
    const w = await start({ secrets: { ZITADEL_SIGNING_KEY: 'k' }, vars: { PERMISSIONS_CLAIM: '' } });
    assert.equal((await fetch(`${w.url}/healthz`)).status, 200);
    assert.equal((await post(w, { key: 'k' })).status, 200);
  });
});
