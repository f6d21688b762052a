// Login V2 token capture end to end: the built worker in workerd, bound as a response execution
// of RetrieveIdentityProviderIntent, stores the identity provider's tokens as user metadata in
// the fake ZITADEL and answers the response unchanged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { signatureHeader } from '../support/signature.mjs';
import { startWorker } from '../support/worker.mjs';

const KEY = 'intent-signing-key';
const METHOD = '/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent';

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

/** The body ZITADEL posts for a response execution (§7 of the protocol notes). */
function execution(response, method = METHOD) {
  return JSON.stringify({
    fullMethod: method,
    instanceID: '312909075211878808',
    orgID: '312909075211944344',
    projectID: '312909075212271640',
    userID: '312909075212795928', // the caller: the login application's service user
    request: { idpIntentId: '3129090752', idpIntentToken: 'intent-token' },
    response,
    headers: { 'x-forwarded-for': ['203.0.113.7'] },
  });
}

function intentResponse({ access = 'EwB-captured-access', refresh, userId = 'user-ada', idpId = 'ms-idp' } = {}) {
  const oauth = { accessToken: access, idToken: 'eyJ.id.token' };
  if (refresh) oauth.refreshToken = refresh;
  const response = {
    details: { sequence: '42', changeDate: '2026-11-23T10:00:00.000Z', resourceOwner: '312909075211944344' },
    idpInformation: { oauth, idpId, userId: 'entra-object-id', userName: 'ada@contoso.example', rawInformation: { RawInfo: { sub: 'x' } } },
  };
  if (userId) response.userId = userId;
  return response;
}

async function post(w, body) {
  const res = await fetch(w.url, { method: 'POST', body, headers: { 'ZITADEL-Signature': signatureHeader(body, KEY) } });
  return { status: res.status, text: await res.text() };
}

describe('capturing Microsoft tokens from RetrieveIdentityProviderIntent (Login V2)', () => {
  let fake;
  let w;
  before(async () => {
    fake = await startFakeZitadel({ fixture: { accessToken: 'capture-pat' } });
    cleanup.push(() => fake.close());
    w = await startWorker({
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: 'capture-pat' },
      vars: { ZITADEL_DOMAIN: fake.url, PERMISSIONS_CLAIM: '' },
    });
    cleanup.push(() => w.stop());
  });

  it('stores access token, refresh token and expiry as the user metadata, and answers the response unchanged', async () => {
    fake.reset();
    const response = intentResponse({ refresh: 'M.C-refresh-token' });
    const body = execution(response);
    const res = await post(w, body);
    assert.equal(res.status, 200);
    assert.equal(res.text, JSON.stringify(response), 'the response, byte for byte');
    const stored = fake.userMetadata('user-ada');
    assert.deepEqual(Object.keys(stored).sort(), ['microsoft_access_token', 'microsoft_access_token_expires_at', 'microsoft_refresh_token']);
    assert.equal(stored.microsoft_access_token.toString(), 'EwB-captured-access');
    assert.equal(stored.microsoft_refresh_token.toString(), 'M.C-refresh-token');
    assert.equal(stored.microsoft_access_token_expires_at.toString(), '0', 'opaque token: expiry unknown, refreshed on first use');
    const [set] = fake.callsTo(/\/v2\/users\/user-ada\/metadata$/);
    assert.equal(set.authorization, 'Bearer capture-pat');
  });

  it('a JWT access token stores its exp', async () => {
    const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = `${part({ alg: 'RS256' })}.${part({ exp: 1900000000, aud: 'https://graph.microsoft.com' })}.c2ln`;
    await post(w, execution(intentResponse({ access: jwt, userId: 'user-jwt' })));
    assert.equal(fake.userMetadata('user-jwt').microsoft_access_token_expires_at.toString(), '1900000000');
  });

  it('stores nothing for a user not linked yet, and still answers the response', async () => {
    fake.reset();
    const response = intentResponse({ userId: null });
    const res = await post(w, execution(response));
    assert.equal(res.text, JSON.stringify(response));
    assert.equal(fake.callsTo(/\/metadata$/).length, 0);
  });

  it('a failing ZITADEL API does not fail the sign-in', async () => {
    fake.reset();
    fake.fault(/\/v2\/users\/.*\/metadata$/, { status: 403, body: JSON.stringify({ code: 7, message: 'No matching permissions found' }) });
    const response = intentResponse({ userId: 'user-denied' });
    const res = await post(w, execution(response));
    assert.equal(res.status, 200);
    assert.equal(res.text, JSON.stringify(response));
    await new Promise((r) => setTimeout(r, 300));
    const line = w.logLines().findLast((l) => l.api_method === METHOD);
    assert.equal(line.ms_token, 'unauthorized');
    assert.ok(!w.output().includes('EwB-captured-access'), 'the token never reaches the log');
  });

  it('other methods, and request executions, are passed through untouched', async () => {
    fake.reset();
    const other = { users: [{ userId: '1' }], details: { totalResult: '1' } };
    assert.equal((await post(w, execution(other, '/zitadel.user.v2.UserService/ListUsers'))).text, JSON.stringify(other));
    const request = JSON.stringify({ fullMethod: '/zitadel.user.v2.UserService/AddHumanUser', request: { username: 'ada' } });
    assert.equal((await post(w, request)).text, '{"username":"ada"}');
    assert.equal(fake.calls.length, 0);
  });

  it('API executions are signed like function calls', async () => {
    const body = execution(intentResponse());
    const res = await fetch(w.url, { method: 'POST', body, headers: { 'ZITADEL-Signature': signatureHeader(body, 'wrong-key') } });
    assert.equal(res.status, 401);
  });
});

describe('MS_IDP_ID limits the capture to the Microsoft identity provider', () => {
  it('tokens of another identity provider are not stored', async () => {
    const fake = await startFakeZitadel({ fixture: { accessToken: 'pat' } });
    cleanup.push(() => fake.close());
    const w = await startWorker({
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: 'pat' },
      vars: { ZITADEL_DOMAIN: fake.url, PERMISSIONS_CLAIM: '', MS_IDP_ID: 'the-microsoft-idp' },
    });
    cleanup.push(() => w.stop());
    await post(w, execution(intentResponse({ idpId: 'google-idp', userId: 'u-google' })));
    await post(w, execution(intentResponse({ idpId: 'the-microsoft-idp', userId: 'u-ms' })));
    assert.deepEqual(fake.userMetadata('u-google'), {});
    assert.equal(fake.userMetadata('u-ms').microsoft_access_token.toString(), 'EwB-captured-access');
  });
});
