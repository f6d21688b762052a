// Microsoft token refresh end to end: the built worker in workerd against a fake Microsoft token
// endpoint. Fresh tokens pass without a call; stale or unknown-expiry tokens are refreshed once
// and written back through set_user_metadata; errors follow MS_ON_REFRESH_ERROR; a refusal is
// remembered per refresh token, and a 429 holds back that refresh token's refreshes only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { claim, postSigned } from '../support/calls.mjs';
import { startFakeMicrosoft } from '../support/fake-microsoft.mjs';
import { b64, now } from '../support/sample.mjs';
import { waitPast } from '../support/wait.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const KEY = 'ms-signing-key';
const TIMEOUT_MS = 600;

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

async function worker(ms, vars = {}) {
  const w = await startWorker({
    secrets: { ZITADEL_SIGNING_KEY: KEY, MS_CLIENT_ID: ms.clientId, MS_CLIENT_SECRET: ms.clientSecret },
    vars: { PERMISSIONS_CLAIM: '', FLAT_ROLES_CLAIM: '', MS_TOKEN_CLIENT_IDS: '*', MS_TOKEN_URL: ms.tokenUrl(), UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS), LOG_CLAIMS: 'true', ...vars },
  });
  cleanup.push(() => w.stop());
  return w;
}

/** A payload whose user metadata holds the given tokens, the access token V1-encoded (JSON string). */
function payload({ access, refresh, expiresAt, fn = 'function/preaccesstoken', user = 'user-1' }) {
  const metadata = [];
  if (access !== undefined) metadata.push({ key: 'microsoft_access_token', value: b64(JSON.stringify(access)) });
  if (refresh !== undefined) metadata.push({ key: 'microsoft_refresh_token', value: b64(JSON.stringify(refresh)) });
  if (expiresAt !== undefined) metadata.push({ key: 'microsoft_access_token_expires_at', value: b64(String(expiresAt)) });
  return { function: fn, user: { id: user }, org: { id: 'org-1' }, user_metadata: metadata };
}

const call = (w, body) => postSigned(w.url, JSON.stringify(body), KEY);

const token = (res) => claim(res, 'urn:custom:ms_access_token');
const written = (res) => Object.fromEntries((res.json.set_user_metadata ?? []).map((m) => [m.key, m.value]));

// The worker remembers each refresh per isolate (so a refresh token is not spent twice), so every
// test that expects a refresh uses a refresh token of its own.
let rtCount = 0;
function newRefreshToken(ms) {
  rtCount += 1;
  const rt = `rt-${rtCount}-${Date.now()}`;
  ms.addRefreshToken(rt);
  return rt;
}

describe('Microsoft token refresh (MS_ON_REFRESH_ERROR=omit)', () => {
  let ms;
  let w;
  before(async () => {
    ms = await startFakeMicrosoft({ refreshTokens: ['rt-good', 'rt-interaction'] });
    ms.requireInteraction('rt-interaction');
    cleanup.push(() => ms.close());
    w = await worker(ms);
  });

  it('a fresh token passes without a call', async () => {
    ms.reset();
    const res = await call(w, payload({ access: 'still-fresh', refresh: 'rt-good', expiresAt: now() + 3000 }));
    assert.equal(token(res), 'still-fresh');
    assert.equal(res.json.set_user_metadata, undefined);
    assert.equal(ms.calls.length, 0);
  });

  it('a stale token is refreshed with one call and written back byte for byte', async () => {
    ms.reset();
    const before = now();
    const rt = newRefreshToken(ms);
    const res = await call(w, payload({ access: 'nearly-expired', refresh: rt, expiresAt: now() + 100 }));
    const after = now();
    assert.equal(ms.calls.length, 1);
    assert.deepEqual(ms.calls[0].form, {
      grant_type: 'refresh_token', refresh_token: rt, client_id: ms.clientId, client_secret: ms.clientSecret, scope: 'offline_access User.Read',
    });
    assert.match(token(res), /^EwB-fake-access-\d+$/);
    const meta = written(res);
    assert.deepEqual(Object.keys(meta), ['microsoft_access_token', 'microsoft_refresh_token', 'microsoft_access_token_expires_at']);
    assert.equal(meta.microsoft_access_token, b64(token(res)), 'the raw token bytes, standard base64');
    assert.match(Buffer.from(meta.microsoft_refresh_token, 'base64').toString(), /^ms-rt-\d+-/);
    const expiresAt = Number(Buffer.from(meta.microsoft_access_token_expires_at, 'base64').toString());
    assert.ok(expiresAt >= before + 3599 && expiresAt <= after + 3599, `${expiresAt}`);
    for (const value of Object.values(meta)) assert.match(value, /^[A-Za-z0-9+/]+={0,2}$/, 'standard padded base64');
  });

  it('a refresh token is not spent twice within an isolate', async () => {
    ms.reset();
    const rt = newRefreshToken(ms);
    const first = await call(w, payload({ access: 'old', refresh: rt, expiresAt: now() - 10 }));
    const again = await call(w, payload({ access: 'old', refresh: rt, expiresAt: now() - 10 }));
    assert.equal(ms.calls.length, 1);
    assert.equal(token(again), token(first));
  });

  it('concurrent calls for one stale token share one refresh, and every call gets the new token', async () => {
    // The calls that wait for the shared refresh must finish in their own request: answered
    // from another request's context, workerd fails them with a 500.
    ms.reset();
    const rt = newRefreshToken(ms);
    ms.fault({ delayMs: 150, times: 1 });
    const body = payload({ access: 'old', refresh: rt, expiresAt: now() - 10 });
    const results = await Promise.all(Array.from({ length: 20 }, () => call(w, body)));
    assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
    assert.equal(ms.calls.length, 1);
    assert.equal(new Set(results.map(token)).size, 1);
    assert.match(token(results[0]), /^EwB-fake-access-\d+$/);
  });

  it('the rotated refresh token is stored and used for the next refresh', async () => {
    ms.reset();
    const first = await call(w, payload({ access: 'old', refresh: newRefreshToken(ms), expiresAt: now() - 10 }));
    const meta = written(first);
    const rotated = Buffer.from(meta.microsoft_refresh_token, 'base64').toString();
    // ZITADEL stores the metadata; the next call carries it (raw, as set_user_metadata stores it).
    const stored = (key) => ({ key, value: meta[key] });
    const next = {
      ...payload({}),
      user_metadata: [stored('microsoft_access_token'), stored('microsoft_refresh_token'), { key: 'microsoft_access_token_expires_at', value: b64(String(now() + 10)) }],
    };
    const second = await call(w, next);
    assert.equal(ms.calls.length, 2);
    assert.equal(ms.calls[1].form.refresh_token, rotated);
    assert.notEqual(token(second), token(first));
  });

  it('an unknown expiry (opaque token, no expiry metadata) refreshes', async () => {
    ms.reset();
    const res = await call(w, payload({ access: 'EwB-opaque-personal-account', refresh: newRefreshToken(ms) }));
    assert.equal(ms.calls.length, 1);
    assert.match(token(res), /^EwB-fake-access-/);
  });

  it('a JWT with a later exp and no expiry metadata passes without a call', async () => {
    ms.reset();
    const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = `${part({ alg: 'RS256' })}.${part({ aud: '00000003-0000-0000-c000-000000000000', exp: now() + 3000 })}.c2ln`;
    const res = await call(w, payload({ access: jwt, refresh: 'rt-good' }));
    assert.equal(token(res), jwt);
    assert.equal(ms.calls.length, 0);
  });

  for (const [rt, code] of [['rt-revoked', 'invalid_grant'], ['rt-interaction', 'interaction_required']]) {
    it(`${code}: the claim is omitted and the code logged, never the token`, async () => {
      const res = await call(w, payload({ access: 'old-but-valid', refresh: rt, expiresAt: now() + 60 }));
      assert.equal(res.status, 200);
      assert.equal(token(res), undefined);
      assert.deepEqual(res.json.append_log_claims, [`urn:custom:ms_access_token omitted: ${code}`]);
      await w.settleLog();
      const line = w.logLines().findLast((l) => l.ms_token);
      assert.equal(line.ms_token, 'omitted');
      assert.ok(line.notes.includes(code));
      assert.ok(!w.output().includes('old-but-valid') && !w.output().includes(rt));
    });
  }

  it('a refresh token Microsoft refused is not sent again on the next call', async () => {
    ms.reset();
    const rt = newRefreshToken(ms);
    ms.revoke(rt);
    const body = payload({ access: 'old-but-valid', refresh: rt, expiresAt: now() + 60, user: 'user-revoked' });
    for (let i = 0; i < 2; i += 1) {
      const { res, line } = await withLogLine(w, () => call(w, body));
      assert.equal(token(res), undefined);
      assert.deepEqual(res.json.append_log_claims, ['urn:custom:ms_access_token omitted: invalid_grant'], 'answered as the refusal was');
      assert.deepEqual([line.ms_token, line.notes], ['omitted', ['invalid_grant']], JSON.stringify(line));
    }
    assert.deepEqual(ms.calls.map((c) => c.form.refresh_token), [rt], 'one call to the token endpoint');
    assert.ok(!w.output().includes(rt));
  });

  it('a 429 for one user\'s refresh token holds back that refresh token only, until Retry-After', async () => {
    ms.reset();
    const [a, b] = [newRefreshToken(ms), newRefreshToken(ms)];
    ms.rateLimit(a, { retryAfter: 1, times: 1 });
    const stale = (rt, user) => payload({ access: 'old', refresh: rt, expiresAt: now() - 10, user });
    const sentWith = (rt) => ms.calls.filter((c) => c.form.refresh_token === rt).length;
    const first = await call(w, stale(a, 'user-a'));
    assert.deepEqual(first.json.append_log_claims, ['urn:custom:ms_access_token omitted: rate_limited']);
    const other = await call(w, stale(b, 'user-b'));
    assert.match(token(other), /^EwB-fake-access-\d+$/, 'another user\'s refresh goes on');
    const again = await call(w, stale(a, 'user-a'));
    assert.deepEqual(again.json.append_log_claims, ['urn:custom:ms_access_token omitted: rate_limited']);
    assert.deepEqual([sentWith(a), sentWith(b)], [1, 1], 'no call for user A while Retry-After lasts');
    await waitPast(1100, 'the Retry-After of 1 s');
    const later = await call(w, stale(a, 'user-a'));
    assert.match(token(later), /^EwB-fake-access-\d+$/);
    assert.equal(sentWith(a), 2);
  });

  it('a timeout is answered within the deadline and omits the claim', async () => {
    ms.reset();
    ms.fault({ hang: true, times: 1 });
    const res = await call(w, payload({ access: 'old-but-valid', refresh: newRefreshToken(ms), expiresAt: now() + 60 }));
    assert.ok(res.ms >= TIMEOUT_MS - 50 && res.ms < TIMEOUT_MS + 500, `took ${res.ms} ms`);
    assert.equal(token(res), undefined);
    assert.deepEqual(res.json.append_log_claims, ['urn:custom:ms_access_token omitted: timeout']);
  });

  it('preuserinfo does not refresh unless MS_TOKEN_IN_USERINFO', async () => {
    ms.reset();
    const res = await call(w, payload({ access: 'old', refresh: 'rt-good', expiresAt: now() - 1, fn: 'function/preuserinfo' }));
    assert.equal(token(res), undefined);
    assert.equal(ms.calls.length, 0);
  });

  it('preuserinfo refreshes a stale token with MS_TOKEN_IN_USERINFO=true', async () => {
    const userinfo = await worker(ms, { MS_TOKEN_IN_USERINFO: 'true' });
    ms.reset();
    const rt = newRefreshToken(ms);
    const res = await call(userinfo, payload({ access: 'old', refresh: rt, expiresAt: now() - 1, fn: 'function/preuserinfo' }));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(ms.calls.map((c) => c.form.refresh_token), [rt]);
    assert.match(token(res), /^EwB-fake-access-\d+$/);
  });
});

describe('Microsoft token refresh (MS_ON_REFRESH_ERROR=stale)', () => {
  let ms;
  let w;
  before(async () => {
    ms = await startFakeMicrosoft({ refreshTokens: ['rt-good'] });
    cleanup.push(() => ms.close());
    w = await worker(ms, { MS_ON_REFRESH_ERROR: 'stale' });
  });

  it('a timeout serves the old token while it has not expired', async () => {
    ms.reset();
    ms.fault({ hang: true, times: 1 });
    const res = await call(w, payload({ access: 'old-but-valid', refresh: newRefreshToken(ms), expiresAt: now() + 60 }));
    assert.ok(res.ms >= TIMEOUT_MS - 50 && res.ms < TIMEOUT_MS + 500, `took ${res.ms} ms`);
    assert.equal(token(res), 'old-but-valid');
  });

  it('an expired token is never served, whatever the policy', async () => {
    ms.reset();
    ms.fault({ status: 503, times: 1 });
    const res = await call(w, payload({ access: 'expired', refresh: newRefreshToken(ms), expiresAt: now() - 5 }));
    assert.equal(token(res), undefined);
    assert.deepEqual(res.json.append_log_claims, ['urn:custom:ms_access_token omitted: bad_status']);
  });

  it('invalid_grant omits even with the stale policy', async () => {
    ms.reset();
    const res = await call(w, payload({ access: 'old-but-valid', refresh: 'rt-unknown', expiresAt: now() + 60 }));
    assert.equal(ms.calls.length, 1);
    assert.equal(token(res), undefined);
    assert.deepEqual(res.json.append_log_claims, ['urn:custom:ms_access_token omitted: invalid_grant']);
  });
});
