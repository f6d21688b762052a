// Fault injection end to end: ZITADEL and Microsoft answering 500, 429 with Retry-After, hanging
// past the deadline, dropping the connection, sending 10 MB, or sending invalid JSON. Each call is
// answered within UPSTREAM_TIMEOUT_MS + 500 ms, as the failure policy says, never with a 5xx of
// our own (502 only under ON_UPSTREAM_ERROR=fail), and the worker stays healthy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { assertError, claim, postSigned } from '../support/calls.mjs';
import { startFakeMicrosoft } from '../support/fake-microsoft.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { FIXTURE, PAYLOAD, PERMISSIONS, b64, now } from '../support/sample.mjs';
import { waitPast } from '../support/wait.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const KEY = 'faults-signing-key';
const TIMEOUT_MS = 700;
const BUDGET_MS = TIMEOUT_MS + 500;
const METADATA_SEARCH = /\/metadata\/search$/;

const FAULTS = [
  ['500', { status: 500 }, { zitadel: 'bad_status', microsoft: 'bad_status' }],
  ['429 with Retry-After', { status: 429, headers: { 'retry-after': '1' } }, { zitadel: 'rate_limited', microsoft: 'rate_limited' }],
  ['a hang past the deadline', { hang: true }, { zitadel: 'timeout', microsoft: 'timeout' }],
  ['a dropped connection', { drop: true }, { zitadel: 'network_error', microsoft: 'network_error' }],
  ['a 10 MB body', { stream: 10 * 1024 * 1024 }, { zitadel: 'response_too_large', microsoft: 'response_too_large' }],
  ['invalid JSON', { status: 200, body: '{"metadata": [{"key": "adm' }, { zitadel: 'malformed_response', microsoft: 'malformed_response' }],
];

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

let rtCount = 0;

/** The sample payload, with a Microsoft token that needs a refresh (a fresh refresh token each time). */
function payload(ms) {
  rtCount += 1;
  const rt = `faults-rt-${rtCount}`;
  ms.addRefreshToken(rt);
  const body = structuredClone(PAYLOAD);
  body.user_metadata = [
    { key: 'microsoft_access_token', value: b64(JSON.stringify('old-token-still-valid')) },
    { key: 'microsoft_refresh_token', value: b64(JSON.stringify(rt)) },
    { key: 'microsoft_access_token_expires_at', value: b64(String(now() + 120)) },
  ];
  return JSON.stringify(body);
}

const call = (w, body) => postSigned(w.url, body, KEY);

for (const policy of ['omit', 'fail']) {
  describe(`faults with ON_UPSTREAM_ERROR=${policy}, MS_ON_REFRESH_ERROR=${policy === 'omit' ? 'omit' : 'stale'}`, () => {
    let zitadel;
    let ms;
    let w;
    before(async () => {
      zitadel = await startFakeZitadel({ fixture: FIXTURE });
      ms = await startFakeMicrosoft();
      cleanup.push(() => zitadel.close(), () => ms.close());
      w = await startWorker({
        secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: zitadel.accessToken, MS_CLIENT_ID: ms.clientId, MS_CLIENT_SECRET: ms.clientSecret },
        vars: {
          ZITADEL_DOMAIN: zitadel.url,
          MS_TOKEN_CLIENT_IDS: '*',
          MS_TOKEN_URL: ms.tokenUrl(),
          UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
          ON_UPSTREAM_ERROR: policy,
          MS_ON_REFRESH_ERROR: policy === 'omit' ? 'omit' : 'stale',
          METADATA_CACHE_TTL_SECONDS: '0',
          LOG_CLAIMS: 'true',
        },
      });
      cleanup.push(() => w.stop());
    });

    for (const [name, fault, codes] of FAULTS) {
      it(`ZITADEL: ${name}`, async () => {
        zitadel.reset();
        ms.reset();
        zitadel.fault(METADATA_SEARCH, { ...fault, times: 1 });
        const res = await call(w, payload(ms));
        if (fault.status === 429) await waitPast(1100, 'the Retry-After of 1 s');
        assert.ok(res.ms < BUDGET_MS, `took ${res.ms} ms`);
        if (policy === 'omit') {
          assert.equal(res.status, 200);
          assert.equal(claim(res, 'permissions'), undefined);
          assert.ok(res.json.append_log_claims.includes(`permissions omitted: ZITADEL API ${codes.zitadel}`), JSON.stringify(res.json));
          assert.match(claim(res, 'urn:custom:ms_access_token'), /^EwB-fake-access-/, 'the Microsoft refresh is unaffected');
        } else {
          assertError(res, 502, 'upstream_unavailable');
        }
      });

      it(`Microsoft: ${name}`, async () => {
        zitadel.reset();
        ms.reset();
        ms.fault({ ...fault, times: 1 });
        const { res, line } = await withLogLine(w, () => call(w, payload(ms)));
        if (fault.status === 429) await waitPast(1100, 'the Retry-After of 1 s');
        assert.ok(res.ms < BUDGET_MS, `took ${res.ms} ms`);
        assert.equal(res.status, 200, 'a failed refresh never fails the call');
        assert.deepEqual(claim(res, 'permissions'), PERMISSIONS, 'permissions are unaffected');
        assert.deepEqual(ms.calls.map((c) => c.form.grant_type), ['refresh_token'], 'one refresh was attempted');
        if (policy === 'omit') {
          assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
          assert.ok(res.json.append_log_claims.includes(`urn:custom:ms_access_token omitted: ${codes.microsoft}`), JSON.stringify(res.json));
          assert.deepEqual([line.ms_token, line.notes], ['omitted', [codes.microsoft]], JSON.stringify(line));
        } else {
          assert.equal(claim(res, 'urn:custom:ms_access_token'), 'old-token-still-valid', 'stale: the unexpired old token');
          // The claim is not left out, so no log claim; the log line names the failure.
          assert.deepEqual([line.ms_token, line.notes], ['stale', [codes.microsoft]], JSON.stringify(line));
          assert.deepEqual(res.json.append_log_claims ?? [], [], JSON.stringify(res.json));
        }
      });
    }

    it('honours Retry-After: no call to ZITADEL while it lasts', async () => {
      zitadel.reset();
      zitadel.fault(METADATA_SEARCH, { status: 429, headers: { 'retry-after': '2' }, times: 1 });
      await call(w, payload(ms));
      const second = await call(w, payload(ms));
      assert.equal(zitadel.callsTo(METADATA_SEARCH).length, 1, 'the second call did not reach ZITADEL');
      if (policy === 'omit') assert.ok(second.json.append_log_claims.includes('permissions omitted: ZITADEL API rate_limited'));
      await waitPast(2100, 'the Retry-After of 2 s');
      const third = await call(w, payload(ms));
      assert.equal(third.status, 200);
      assert.equal(zitadel.callsTo(METADATA_SEARCH).length, 2);
    });

    it('does not follow a redirect (the request carries credentials): a 3xx is an upstream error', async () => {
      zitadel.reset();
      const elsewhere = `${zitadel.url}/elsewhere`;
      zitadel.fault(METADATA_SEARCH, { status: 307, headers: { location: elsewhere }, body: '', times: 1 });
      const res = await call(w, payload(ms));
      assert.equal(zitadel.callsTo(/elsewhere/).length, 0, 'the redirect was followed');
      if (policy === 'omit') {
        assert.equal(res.status, 200);
        assert.ok(res.json.append_log_claims.includes('permissions omitted: ZITADEL API bad_status'), JSON.stringify(res.json));
      } else {
        assert.equal(res.status, 502);
      }
    });

    it('stays healthy, with no panic in the output', async () => {
      assert.equal((await fetch(`${w.url}/healthz`)).status, 200);
      await w.settleLog();
      assert.doesNotMatch(w.output(), /panicked|RuntimeError/);
    });
  });
}
