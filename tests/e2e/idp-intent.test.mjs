// Login V2 token capture end to end: the built worker in workerd, bound as a response execution
// of RetrieveIdentityProviderIntent, stores the identity provider's tokens as user metadata in
// the fake ZITADEL and answers the response unchanged; for a linked user whose message carries
// updateUser (newer versions) it puts them into that request's metadata instead, with no API
// call; for a user signing in for the first time it puts them into the request Login V2 creates
// the user with (addHumanUser, createUser).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { postSigned } from '../support/calls.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { b64 } from '../support/sample.mjs';
import { metadataAad, newSealingKey, openBytes } from '../support/seal.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const KEY = 'intent-signing-key';
const METHOD = '/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent';

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

/** The body ZITADEL posts for a response execution (docs/zitadel-contract.md §7). */
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

const post = (w, body) => postSigned(w.url, body, KEY);

/**
 * `response` as newer versions send it for the linked user (ZITADEL #11810): the deprecated
 * `updateHumanUser` beside `updateUser`, the UpdateUserRequest of the oneof `user_action`, whose
 * empty `metadata` protojson leaves out.
 */
function withUpdateUser(response, extra = {}) {
  const profile = { givenName: 'Ada', familyName: 'Lovelace' };
  response.updateHumanUser = { userId: response.userId, username: 'ada@contoso.example', profile };
  response.updateUser = {
    userId: response.userId,
    username: 'ada@contoso.example',
    human: { profile, email: { email: 'ada@contoso.example', isVerified: true } },
    ...extra,
  };
  return response;
}

// The fields of UpdateUserRequest and of Metadata (proto/zitadel/user/v2/user_service.proto):
// protojson refuses any other, and ZITADEL then empties the whole message.
const UPDATE_USER_FIELDS = ['userId', 'username', 'human', 'machine', 'metadata'];
const METADATA_FIELDS = ['key', 'value'];

describe('capturing Microsoft tokens from RetrieveIdentityProviderIntent (Login V2)', () => {
  let fake;
  let w;
  before(async () => {
    fake = await startFakeZitadel({ fixture: { accessToken: 'capture-pat' } });
    cleanup.push(() => fake.close());
    w = await startWorker({
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: 'capture-pat' },
      vars: { ZITADEL_DOMAIN: fake.url, PERMISSIONS_CLAIM: '', MS_IDP_ID: 'ms-idp' },
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

  it('a first sign-in without a user to create in the message: nothing stored, the response unchanged, the reason logged', async () => {
    fake.reset();
    const response = intentResponse({ userId: null });
    const { res, line } = await withLogLine(w, () => post(w, execution(response)));
    assert.equal(res.text, JSON.stringify(response));
    assert.equal(fake.callsTo(/\/metadata$/).length, 0);
    assert.equal(line.ms_token, 'no linked user, and no user to create in the response');
  });

  it('a first sign-in (addHumanUser): the tokens go into the metadata the user is created with, no API call', async () => {
    fake.reset();
    const response = intentResponse({ userId: null, refresh: 'M.C-first-refresh' });
    response.addHumanUser = {
      username: 'ada@contoso.example',
      profile: { givenName: 'Ada', familyName: 'Lovelace' },
      email: { email: 'ada@contoso.example', isVerified: true },
      metadata: [{ key: 'organization', value: 'Y29tcGFueQ==' }],
      idpLinks: [{ idpId: 'ms-idp', userId: 'entra-object-id', userName: 'ada@contoso.example' }],
    };
    const { res, line } = await withLogLine(w, () => post(w, execution(response)));
    assert.equal(res.status, 200);
    assert.equal(fake.calls.length, 0, 'the worker makes no API call');
    const answer = JSON.parse(res.text);
    const expected = structuredClone(response);
    expected.addHumanUser.metadata.push(
      { key: 'microsoft_access_token', value: b64('EwB-captured-access') },
      { key: 'microsoft_refresh_token', value: b64('M.C-first-refresh') },
      { key: 'microsoft_access_token_expires_at', value: b64('0') },
    );
    assert.deepEqual(answer, expected, 'only addHumanUser.metadata changed');
    assert.equal(line.ms_token, 'added');
    assert.ok(!w.output().includes('EwB-captured-access') && !w.output().includes('M.C-first-refresh'));
  });

  it('a first sign-in (createUser, newer versions): the tokens go into its top-level metadata', async () => {
    const response = intentResponse({ userId: null });
    response.createUser = { username: 'ada', human: { profile: { givenName: 'Ada', familyName: 'Lovelace' }, email: { email: 'a@b.example' } } };
    const res = await post(w, execution(response));
    const answer = JSON.parse(res.text);
    assert.deepEqual(answer.createUser.metadata, [
      { key: 'microsoft_access_token', value: b64('EwB-captured-access') },
      { key: 'microsoft_access_token_expires_at', value: b64('0') },
    ]);
    assert.deepEqual(answer.createUser.human, response.createUser.human);
    delete answer.createUser.metadata;
    assert.deepEqual(answer, response, 'nothing else changed');
  });

  it('a linked user whose message carries updateUser (newer versions): the tokens go into its metadata, and through the API too', async () => {
    fake.reset();
    const response = withUpdateUser(intentResponse({ userId: 'user-update', refresh: 'M.C-update-refresh' }), {
      metadata: [{ key: 'organization', value: 'Y29tcGFueQ==' }, { key: 'microsoft_access_token', value: 'b2xk' }],
    });
    const { res, line } = await withLogLine(w, () => post(w, execution(response)));
    assert.equal(res.status, 200);
    // Login V2 applies updateUser only when the provider's automatic update is on: with the API at
    // hand, the worker stores the tokens through it as well.
    assert.deepEqual(fake.calls.map((c) => `${c.method} ${c.path}`), ['POST /v2/users/user-update/metadata']);
    const expected = structuredClone(response);
    expected.updateUser.metadata = [
      { key: 'organization', value: 'Y29tcGFueQ==' },
      { key: 'microsoft_access_token', value: b64('EwB-captured-access') },
      { key: 'microsoft_refresh_token', value: b64('M.C-update-refresh') },
      { key: 'microsoft_access_token_expires_at', value: b64('0') },
    ];
    assert.equal(res.text, JSON.stringify(expected), 'only updateUser.metadata changed, byte for byte elsewhere');
    const answer = JSON.parse(res.text);
    assert.deepEqual(Object.keys(answer.updateUser).filter((k) => !UPDATE_USER_FIELDS.includes(k)), []);
    for (const entry of answer.updateUser.metadata) assert.deepEqual(Object.keys(entry), METADATA_FIELDS);
    assert.equal(line.ms_token, 'stored');
    assert.equal(fake.userMetadata('user-update').microsoft_access_token.toString(), 'EwB-captured-access');
    assert.ok(!w.output().includes('EwB-captured-access') && !w.output().includes('M.C-update-refresh'));
  });

  it('a linked user whose message has no updateUser (updateHumanUser only, older versions): stored through the API as before', async () => {
    fake.reset();
    const response = withUpdateUser(intentResponse({ userId: 'user-older' }));
    delete response.updateUser;
    const { res, line } = await withLogLine(w, () => post(w, execution(response)));
    assert.equal(res.text, JSON.stringify(response), 'the response, byte for byte');
    assert.equal(fake.callsTo(/\/v2\/users\/user-older\/metadata$/).length, 1);
    assert.equal(fake.userMetadata('user-older').microsoft_access_token.toString(), 'EwB-captured-access');
    assert.equal(line.ms_token, 'stored');
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
    const res = await postSigned(w.url, body, 'wrong-key');
    assert.equal(res.status, 401);
  });
});

describe('with TOKEN_SEALING_KEY and no API credentials, a linked user whose message carries updateUser', () => {
  const SEALING_KEY = newSealingKey('k1');
  let fake;
  let w;
  before(async () => {
    fake = await startFakeZitadel({ fixture: { accessToken: 'sealed-pat' } });
    cleanup.push(() => fake.close());
    w = await startWorker({
      secrets: { ZITADEL_SIGNING_KEY: KEY, TOKEN_SEALING_KEY: SEALING_KEY },
      vars: { ZITADEL_DOMAIN: fake.url, PERMISSIONS_CLAIM: '', MS_IDP_ID: 'ms-idp' },
    });
    cleanup.push(() => w.stop());
  });

  it('gets the tokens sealed for that user in updateUser.metadata (the only way without the API), and no API call is made', async () => {
    fake.reset();
    const response = withUpdateUser(intentResponse({ userId: 'user-sealed', refresh: 'M.C-sealed-refresh' }));
    const { res, line } = await withLogLine(w, () => post(w, execution(response)));
    assert.equal(res.status, 200);
    assert.equal(fake.calls.length, 0, 'the worker makes no API call');
    assert.equal(line.ms_token, 'added_to_update');
    const answer = JSON.parse(res.text);
    const { metadata } = answer.updateUser;
    delete answer.updateUser.metadata;
    assert.deepEqual(answer, response, 'nothing else changed');
    assert.deepEqual(metadata.map((m) => m.key), ['microsoft_access_token', 'microsoft_refresh_token', 'microsoft_access_token_expires_at']);
    const open = ({ key, value }) => openBytes(SEALING_KEY, metadataAad('user-sealed', key), Buffer.from(value, 'base64')).toString('utf8');
    assert.deepEqual(metadata.map(open), ['EwB-captured-access', 'M.C-sealed-refresh', '0']);
    assert.ok(!res.text.includes(b64('EwB-captured-access')), 'no token in clear');
    assert.ok(!w.output().includes('EwB-captured-access') && !w.output().includes('M.C-sealed-refresh'));
  });
});

describe('a service user without user.write', () => {
  it('gets 403 from ZITADEL: the sign-in goes on, and the log says which permission is missing', async () => {
    const fake = await startFakeZitadel({ fixture: { accessToken: 'admin-pat', permissions: { 'read-only-pat': ['org.read', 'user.read'] } } });
    cleanup.push(() => fake.close());
    const w = await startWorker({
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: 'read-only-pat' },
      vars: { ZITADEL_DOMAIN: fake.url, PERMISSIONS_CLAIM: '', MS_IDP_ID: 'ms-idp' },
    });
    cleanup.push(() => w.stop());
    const response = intentResponse({ userId: 'user-denied' });
    const { res, line } = await withLogLine(w, () => post(w, execution(response)));
    assert.equal(res.status, 200);
    assert.equal(res.text, JSON.stringify(response));
    const [set] = fake.callsTo(/\/v2\/users\/user-denied\/metadata$/);
    assert.equal(set.authorization, 'Bearer read-only-pat');
    assert.deepEqual(fake.userMetadata('user-denied'), {});
    assert.equal(line.ms_token, 'unauthorized');
    assert.equal(line.upstream_error, 'unauthorized');
    assert.deepEqual(line.notes, ['storing the tokens needs user.write (e.g. the ORG_USER_MANAGER role)']);
    assert.ok(!w.output().includes('EwB-captured-access'), 'the token never reaches the log');
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
    // A first sign-in through another provider: its user is created without the tokens.
    const other = intentResponse({ idpId: 'google-idp', userId: null });
    other.addHumanUser = { username: 'ada', metadata: [] };
    assert.equal((await post(w, execution(other))).text, JSON.stringify(other));
    const ms = intentResponse({ idpId: 'the-microsoft-idp', userId: null });
    ms.addHumanUser = { username: 'ada', metadata: [] };
    assert.equal(JSON.parse((await post(w, execution(ms))).text).addHumanUser.metadata.length, 2);
  });
});
