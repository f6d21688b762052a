// The token exchange (issue 22) end to end: the built worker in workerd, a back end calling
// `POST /token` (RFC 8693) with the user's ZITADEL access token, the fake ZITADEL issuing those
// tokens (JWT and opaque, introspection) and holding the user's sealed tokens, the fake Microsoft
// refreshing them. And the user's own `GET` and `DELETE /connections/microsoft`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';

import { startFakeMicrosoft } from '../support/fake-microsoft.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { now } from '../support/sample.mjs';
import { metadataAad, newSealingKey, openBytes, sealMetadata } from '../support/seal.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const SEALING_KEY = newSealingKey('k1');
const BACK_END = '312909075212468700@shop';
const BACK_END_SECRET = 'bk-3x4mpl3-s3cr3t_v4lue';
const OTHER_CLIENT = '312909075212468701@shop';
const API_APP = '312909075212468702@shop';
const API_SECRET = 'api-s3cr3t-value';
const PROJECT = '312909075212468690';
const KEYS = { access: 'microsoft_access_token', refresh: 'microsoft_refresh_token', expires: 'microsoft_access_token_expires_at' };
const TIMEOUT_MS = 1500;
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
/** One user per story, so that what one test writes is not another's. */
let nextUser = 312909075212468800n;
const newUser = () => String(nextUser++);

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

let zitadel;
let ms;
let w;
/** Every token and secret the tests made or saw: none may be logged or answered where it should not be. */
const secrets = new Set([SEALING_KEY, BACK_END_SECRET, API_SECRET]);

before(async () => {
  zitadel = await startFakeZitadel({ oidc: {} });
  cleanup.push(() => zitadel.close());
  zitadel.addApiClient(API_APP, API_SECRET, PROJECT);
  ms = await startFakeMicrosoft({ refreshTokens: [] });
  cleanup.push(() => ms.close());
  w = await startWorker({
    secrets: {
      ZITADEL_SIGNING_KEY: 'exchange-signing-key', ZITADEL_ACCESS_TOKEN: zitadel.accessToken,
      MS_CLIENT_ID: ms.clientId, MS_CLIENT_SECRET: ms.clientSecret, TOKEN_SEALING_KEY: SEALING_KEY,
      TOKEN_EXCHANGE_CLIENTS: `${BACK_END}:${BACK_END_SECRET},${OTHER_CLIENT}:other-secret`,
      INTROSPECTION_CLIENT_SECRET: API_SECRET,
    },
    vars: {
      ZITADEL_DOMAIN: zitadel.url, CONNECT_CLIENT_ID: 'connect-app', CONNECT_RETURN_URLS: 'https://app.example/',
      INTROSPECTION_CLIENT_ID: API_APP, MS_TOKEN_URL: ms.tokenUrl(), MS_SCOPES: 'offline_access User.Read Mail.Read',
      PERMISSIONS_CLAIM: '', FLAT_ROLES_CLAIM: '', UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
    },
  });
  cleanup.push(() => w.stop());
  for (const s of [ms.clientSecret, zitadel.accessToken]) secrets.add(s);
});

/** A user connected as the connect flow leaves them: the three entries, sealed for them. */
function connect(user, { expiresAt = now() + 3000, access = `ms-at-${user}`, refresh = `ms-rt-${user}` } = {}) {
  ms.addRefreshToken(refresh);
  const entries = { [KEYS.access]: access, [KEYS.refresh]: refresh, [KEYS.expires]: String(expiresAt) };
  zitadel.setUserMetadata(user, Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, { base64: sealMetadata(SEALING_KEY, user, k, v).toString('base64') }])));
  for (const v of [access, refresh]) secrets.add(v);
  return { access, refresh };
}

/** The user's access token as ZITADEL issues it to `clientId`. */
function userToken(user, options = {}) {
  const token = zitadel.issueAccessToken({ user, clientId: BACK_END, projectId: PROJECT, ...options });
  secrets.add(token);
  return token;
}

const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** `POST /token`: the answer's status, headers and JSON body. */
async function exchange(subjectToken, { params = {}, authorization = basic(BACK_END, BACK_END_SECRET), type = ACCESS } = {}) {
  const form = new URLSearchParams({ grant_type: GRANT, subject_token: subjectToken, subject_token_type: type, ...params });
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authorization) headers.authorization = authorization;
  const res = await fetch(`${w.url}/token`, { method: 'POST', headers, body: form });
  const body = await res.json();
  if (body.access_token) secrets.add(body.access_token);
  return { status: res.status, headers: res.headers, body };
}

async function connection(method, bearer) {
  const res = await fetch(`${w.url}/connections/microsoft`, { method, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const refreshes = () => ms.calls.filter((c) => c.form?.grant_type === 'refresh_token');

describe('POST /token', () => {
  it('exchanges a JWT access token of the back end for the user\'s Microsoft token, then serves it from memory with no outbound call', async () => {
    const user = newUser();
    const { access } = connect(user);
    const token = userToken(user);
    const { res, line } = await withLogLine(w, () => exchange(token));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'scope', 'token_type']);
    assert.equal(res.body.access_token, access);
    assert.equal(res.body.issued_token_type, ACCESS);
    assert.equal(res.body.token_type, 'Bearer');
    assert.ok(res.body.expires_in > 2900 && res.body.expires_in <= 3000, String(res.body.expires_in));
    assert.equal(res.body.scope, 'User.Read Mail.Read');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(line.outcome, 'ok');
    assert.equal(line.user_id, user);
    assert.equal(line.client_id, BACK_END);
    assert.equal(line.ms_token, 'stored');

    const zitadelCalls = zitadel.calls.length;
    const warm = await withLogLine(w, () => exchange(token));
    assert.equal(warm.res.status, 200);
    assert.equal(warm.res.body.access_token, access);
    assert.equal(warm.line.ms_token, 'cached');
    assert.equal(warm.line.upstream_calls, undefined, 'a warm exchange makes no outbound call');
    assert.equal(zitadel.calls.length, zitadelCalls);
  });

  it('exchanges an opaque access token through introspection, as the API application', async () => {
    const user = newUser();
    const { access } = connect(user);
    const token = userToken(user, { jwt: false });
    const res = await exchange(token);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.access_token, access);
    const [introspection] = zitadel.callsTo(/^\/oauth\/v2\/introspect$/).slice(-1);
    assert.equal(introspection.authorization, basic(API_APP, API_SECRET));
    zitadel.revokeAccessToken(token);
    const revoked = await exchange(token);
    assert.equal(revoked.status, 400, 'a revoked token is inactive, though its Graph token is still in memory');
    assert.equal(revoked.body.error, 'invalid_request');
    const unknown = await exchange(`${token}x`);
    assert.equal(unknown.status, 400);
  });

  it('refuses a wrong or missing client secret with 401 invalid_client, and reads nothing', async () => {
    const user = newUser();
    connect(user);
    const before = zitadel.calls.length;
    for (const authorization of [basic(BACK_END, 'wrong'), basic(OTHER_CLIENT, BACK_END_SECRET), null, `Bearer ${userToken(user)}`]) {
      const res = await exchange(userToken(user), { authorization });
      assert.equal(res.status, 401);
      assert.equal(res.body.error, 'invalid_client');
      assert.match(res.headers.get('www-authenticate'), /^Basic /);
    }
    assert.equal(zitadel.calls.length, before);
  });

  it('refuses a subject token issued to another client, expired, forged or impersonated with 400 invalid_request', async () => {
    const user = newUser();
    connect(user);
    const forged = (() => {
      const good = userToken(user);
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const [h, p] = good.split('.');
      const header = JSON.parse(Buffer.from(h, 'base64url'));
      const input = `${Buffer.from(JSON.stringify({ ...header, alg: 'ES256' })).toString('base64url')}.${p}`;
      return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    })();
    const cases = {
      subject_token_other_client: userToken(user, { clientId: OTHER_CLIENT }),
      subject_token_expired: userToken(user, { expiresIn: -600 }),
      subject_token_signature: forged,
      subject_token_impersonated: userToken(user, { act: { sub: '312909075212468999' } }),
      subject_token_inactive: userToken(user, { jwt: false, clientId: BACK_END, projectId: 'another-project' }),
    };
    for (const [note, token] of Object.entries(cases)) {
      const { res, line } = await withLogLine(w, () => exchange(token));
      assert.equal(res.status, 400, note);
      assert.equal(res.body.error, 'invalid_request', note);
      assert.ok(line.notes.includes(note), `${note}: ${JSON.stringify(line.notes)}`);
      assert.equal(res.body.access_token, undefined);
    }
    const impersonatedOpaque = await exchange(userToken(user, { jwt: false, act: { sub: 'admin' } }));
    assert.equal(impersonatedOpaque.status, 400, 'an impersonation token is refused through introspection too');
  });

  it('answers invalid_grant with connect_uri to a user who never connected', async () => {
    const res = await exchange(userToken(newUser()));
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
    assert.equal(res.body.connect_uri, `${w.url}/connect/microsoft`);
  });

  it('refreshes a stale token, writes the rotated tokens back sealed, and four concurrent calls share one refresh', async () => {
    const user = newUser();
    connect(user, { expiresAt: now() + 60 });
    const token = userToken(user);
    const refreshesBefore = refreshes().length;
    const searchesBefore = zitadel.callsTo(new RegExp(`/v2/users/${user}/metadata/search$`)).length;
    const answers = await Promise.all([1, 2, 3, 4].map(() => exchange(token)));
    for (const res of answers) assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(new Set(answers.map((r) => r.body.access_token)).size, 1, 'one token for all four');
    assert.equal(refreshes().length - refreshesBefore, 1, 'one refresh for four concurrent calls');
    assert.equal(zitadel.callsTo(new RegExp(`/v2/users/${user}/metadata/search$`)).length - searchesBefore, 1);
    assert.equal(zitadel.callsTo(new RegExp(`/v2/users/${user}/metadata$`)).filter((c) => c.method === 'POST').length, 1);
    const stored = zitadel.userMetadata(user);
    const open = (key) => openBytes(SEALING_KEY, metadataAad(user, key), stored[key]).toString('utf8');
    assert.equal(open(KEYS.access), answers[0].body.access_token);
    const rotated = open(KEYS.refresh);
    assert.match(rotated, /^ms-rt-\d+-/, 'the rotated refresh token is stored');
    assert.ok(Number(open(KEYS.expires)) > now() + 3000);
    assert.equal(stored[KEYS.refresh].subarray(0, 10).toString(), 'sealed:v1:');
  });

  it('passes on scope, asking Microsoft for it at refresh, and refuses one not consented', async () => {
    const user = newUser();
    connect(user);
    const res = await exchange(userToken(user), { params: { scope: 'Mail.Read', audience: 'https://graph.microsoft.com', requested_token_type: ACCESS } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [refresh] = refreshes().slice(-1);
    assert.equal(refresh.form.scope, 'Mail.Read offline_access');
    assert.equal(res.body.scope, 'Mail.Read');
    const wider = await exchange(userToken(user), { params: { scope: 'Files.ReadWrite.All' } });
    assert.equal(wider.status, 400);
    assert.equal(wider.body.error, 'invalid_scope');
    const jwtType = await exchange(userToken(user), { type: JWT });
    assert.equal(jwtType.status, 200, 'a JWT announced as such is accepted');
  });

  it('answers invalid_grant with connect_uri when Microsoft refuses the refresh', async () => {
    const user = newUser();
    const { refresh } = connect(user, { expiresAt: now() - 10 });
    ms.revoke(refresh);
    const { res, line } = await withLogLine(w, () => exchange(userToken(user)));
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
    assert.equal(res.body.connect_uri, `${w.url}/connect/microsoft`);
    assert.equal(line.upstream_error, 'invalid_grant');
    assert.doesNotMatch(JSON.stringify(res.body), /AADSTS/);
  });

  it('answers 503 temporarily_unavailable within UPSTREAM_TIMEOUT_MS when Microsoft or ZITADEL is down', async () => {
    const user = newUser();
    connect(user, { expiresAt: now() - 10 });
    ms.fault({ hang: true, times: 1 });
    let started = Date.now();
    const msDown = await exchange(userToken(user));
    assert.equal(msDown.status, 503);
    assert.equal(msDown.body.error, 'temporarily_unavailable');
    assert.ok(Date.now() - started < TIMEOUT_MS + 1000, `answered in ${Date.now() - started} ms`);

    const other = newUser();
    connect(other);
    zitadel.fault(/\/metadata\/search$/, { hang: true, times: 1 });
    started = Date.now();
    const zitadelDown = await exchange(userToken(other));
    assert.equal(zitadelDown.status, 503);
    assert.equal(zitadelDown.body.error, 'temporarily_unavailable');
    assert.ok(Date.now() - started < TIMEOUT_MS + 1000, `answered in ${Date.now() - started} ms`);
  });

  it('checks the form as RFC 8693 asks', async () => {
    const token = userToken(newUser());
    const cases = [
      [{ grant_type: 'client_credentials' }, 'unsupported_grant_type'],
      [{ subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }, 'invalid_request'],
      [{ audience: 'https://management.azure.com' }, 'invalid_target'],
      [{ subject_token: '' }, 'invalid_request'],
    ];
    for (const [params, error] of cases) {
      const res = await exchange(token, { params });
      assert.equal(res.status, 400, JSON.stringify(params));
      assert.equal(res.body.error, error, JSON.stringify(params));
    }
    const get = await fetch(`${w.url}/token`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
  });
});

describe('/connections/microsoft', () => {
  it('tells the user whether they are connected, and DELETE removes the tokens and the memory of them', async () => {
    const user = newUser();
    const expiresAt = now() + 3000;
    connect(user, { expiresAt });
    const own = userToken(user, { clientId: 'connect-app' });
    const seen = await connection('GET', own);
    assert.equal(seen.status, 200);
    assert.deepEqual(seen.body, { connected: true, expires_at: expiresAt });

    const token = userToken(user);
    assert.equal((await exchange(token)).status, 200, 'the token is now in this isolate\'s memory');
    const { res, line } = await withLogLine(w, () => connection('DELETE', own));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { connected: false, expires_at: null });
    assert.equal(line.outcome, 'disconnected');
    assert.deepEqual(Object.keys(zitadel.userMetadata(user)), []);
    const after = await exchange(token);
    assert.equal(after.status, 400, 'nothing is served from memory after a DELETE');
    assert.equal(after.body.error, 'invalid_grant');
    assert.deepEqual((await connection('GET', own)).body, { connected: false, expires_at: null });
    assert.equal((await connection('DELETE', own)).status, 200, 'removing what is not there is no error');
  });

  it('needs the user\'s token, of the connect app or a back end, never an impersonator\'s', async () => {
    const user = newUser();
    connect(user);
    for (const bearer of [null, userToken(user, { clientId: 'stranger' }), userToken(user, { clientId: 'connect-app', act: { sub: 'admin' } })]) {
      const res = await connection('GET', bearer);
      assert.equal(res.status, 401);
      assert.equal(res.body.error, 'invalid_token');
      assert.match(res.headers.get('www-authenticate'), /^Bearer /);
    }
    assert.equal((await connection('GET', userToken(user))).body.connected, true, 'a back end\'s token will do');
    assert.equal((await fetch(`${w.url}/connections/microsoft`, { method: 'PUT' })).status, 405);
  });
});

describe('health and secrecy', () => {
  it('lists token_exchange among the features', async () => {
    const health = await (await fetch(`${w.url}/healthz`)).json();
    assert.deepEqual(health.features.find((f) => f.name === 'token_exchange'), { name: 'token_exchange', on: true });
  });

  it('never logs a token or a secret', async () => {
    await w.settleLog();
    const output = w.output();
    for (const s of secrets) assert.ok(!output.includes(s), `a secret or token was logged: ${s.slice(0, 12)}…`);
  });
});

describe('without TOKEN_EXCHANGE_CLIENTS', () => {
  it('POST /token is off: 404 naming the missing setting', async () => {
    const off = await startWorker({
      secrets: { ZITADEL_SIGNING_KEY: 'k', ZITADEL_ACCESS_TOKEN: zitadel.accessToken, MS_CLIENT_ID: 'a', MS_CLIENT_SECRET: 'b', TOKEN_SEALING_KEY: SEALING_KEY },
      vars: { ZITADEL_DOMAIN: zitadel.url, CONNECT_CLIENT_ID: 'connect-app', CONNECT_RETURN_URLS: 'https://app.example/', PERMISSIONS_CLAIM: '' },
    });
    cleanup.push(() => off.stop());
    const res = await fetch(`${off.url}/token`, { method: 'POST', body: 'grant_type=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 404);
    const body = await res.json();
    assert.equal(body.error, 'feature_off');
    assert.match(body.message, /TOKEN_EXCHANGE_CLIENTS/);
  });
});

describe('on an instance without the v2 user metadata API (ZITADEL v3)', () => {
  it('reads, writes back and removes the tokens through management v1, remembering the instance has no v2 route', async () => {
    const v3 = await startFakeZitadel({ oidc: {}, v2: false });
    cleanup.push(() => v3.close());
    const old = await startWorker({
      secrets: {
        ZITADEL_SIGNING_KEY: 'exchange-signing-key', ZITADEL_ACCESS_TOKEN: v3.accessToken,
        MS_CLIENT_ID: ms.clientId, MS_CLIENT_SECRET: ms.clientSecret, TOKEN_SEALING_KEY: SEALING_KEY,
        TOKEN_EXCHANGE_CLIENTS: `${BACK_END}:${BACK_END_SECRET}`,
      },
      vars: {
        ZITADEL_DOMAIN: v3.url, CONNECT_CLIENT_ID: 'connect-app', CONNECT_RETURN_URLS: 'https://app.example/',
        MS_TOKEN_URL: ms.tokenUrl(), PERMISSIONS_CLAIM: '', FLAT_ROLES_CLAIM: '',
      },
    });
    cleanup.push(() => old.stop());
    const user = newUser();
    const refresh = `ms-rt-v3-${user}`;
    ms.addRefreshToken(refresh);
    const entries = { [KEYS.access]: 'ms-at-old', [KEYS.refresh]: refresh, [KEYS.expires]: String(now() - 10) };
    v3.setUserMetadata(user, Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, { base64: sealMetadata(SEALING_KEY, user, k, v).toString('base64') }])));
    const token = v3.issueAccessToken({ user, clientId: BACK_END });
    const form = new URLSearchParams({ grant_type: GRANT, subject_token: token, subject_token_type: ACCESS });
    const res = await fetch(`${old.url}/token`, {
      method: 'POST', body: form,
      headers: { authorization: basic(BACK_END, BACK_END_SECRET), 'content-type': 'application/x-www-form-urlencoded' },
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const paths = v3.calls.filter((c) => c.path.includes('/metadata')).map((c) => `${c.method} ${c.path}`);
    assert.deepEqual(paths, [
      `POST /v2/users/${user}/metadata/search`,
      `POST /management/v1/users/${user}/metadata/_search`,
      `POST /management/v1/users/${user}/metadata/_bulk`,
    ]);
    const stored = v3.userMetadata(user);
    assert.equal(openBytes(SEALING_KEY, metadataAad(user, KEYS.access), stored[KEYS.access]).toString(), body.access_token);
    const removed = await fetch(`${old.url}/connections/microsoft`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(removed.status, 200);
    assert.deepEqual(Object.keys(v3.userMetadata(user)), []);
    assert.ok(v3.calls.some((c) => c.method === 'DELETE' && c.path === `/management/v1/users/${user}/metadata/_bulk`));
  });
});
