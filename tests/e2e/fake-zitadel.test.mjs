// The fake ZITADEL itself: later tests trust it to speak the real wire format and behave as
// ZITADEL's gateway does (unknown fields, routing errors, permissions, base64 forms), so that is
// checked here.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, createVerify, generateKeyPairSync, randomUUID } from 'node:crypto';

import { protoBytes, startFakeZitadel } from '../support/fake-zitadel.mjs';
import { FIXTURE, ORG, b64 } from '../support/sample.mjs';
import { waitPast } from '../support/wait.mjs';

let fake;
before(async () => {
  fake = await startFakeZitadel({
    fixture: { ...FIXTURE, callerOrg: ORG, permissions: { 'no-org-read': ['user.write'], 'no-user-write': ['org.read'] } },
  });
  for (let i = 0; i < 250; i += 1) fake.setMetadata('many', `role-${String(i).padStart(3, '0')}`, [`p${i}`]);
});
after(() => fake.close());

async function search(org, body, token = 'test-pat') {
  const res = await fetch(`${fake.url}/v2/organizations/${org}/metadata/search`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('fake ZITADEL: organization metadata search (v2)', () => {
  it('answers camelCase, uint64 as strings, values as standard base64', async () => {
    const { status, json } = await search(ORG, {});
    assert.equal(status, 200);
    assert.deepEqual(json.pagination, { totalResult: '5', appliedLimit: '100' });
    const admin = json.metadata.find((m) => m.key === 'admin');
    assert.deepEqual(JSON.parse(Buffer.from(admin.value, 'base64').toString('utf8')), ['posts:read', 'posts:write', 'users:manage']);
    assert.ok(admin.creationDate && admin.changeDate);
    assert.equal(json.metadata.find((m) => m.key === 'binary').value, '//79');
    assert.equal(Buffer.from(json.metadata.find((m) => m.key === 'viewer').value, 'base64').toString(), 'posts:read');
  });

  it('pages with offset and limit given as strings or numbers', async () => {
    const first = await search('many', { pagination: { offset: '0', limit: 100, asc: true } });
    assert.equal(first.json.pagination.totalResult, '250');
    assert.equal(first.json.metadata.length, 100);
    assert.equal(first.json.metadata[0].key, 'role-000');
    const last = await search('many', { pagination: { offset: 200, limit: '100', asc: true } });
    assert.equal(last.json.metadata.length, 50);
    assert.equal(last.json.metadata.at(-1).key, 'role-249');
    assert.equal((await search('many', { pagination: { limit: 1001 } })).status, 400);
  });

  it('filters by key', async () => {
    const { json } = await search(ORG, { filters: [{ keyFilter: { key: 'admin', method: 'TEXT_FILTER_METHOD_EQUALS' } }] });
    assert.deepEqual(json.metadata.map((m) => m.key), ['admin']);
    assert.equal(json.pagination.totalResult, '1');
  });

  it('refuses a missing or wrong bearer token with a grpc-gateway error', async () => {
    for (const token of [null, 'wrong']) {
      const { status, json } = await search(ORG, {}, token);
      assert.equal(status, 401);
      assert.equal(json.code, 16);
    }
  });

  it('answers an unknown organization with an empty list, and unknown routes as the gateway does', async () => {
    const { json } = await search('nope', {});
    assert.deepEqual(json, { pagination: { totalResult: '0', appliedLimit: '100' }, metadata: [] });
    const res = await fetch(`${fake.url}/v3/whatever`, { method: 'POST', headers: { authorization: 'Bearer test-pat' } });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { code: 5, message: 'Not Found' }, 'no ZITADEL error details');
    const wrongMethod = await fetch(`${fake.url}/v2/organizations/${ORG}/metadata/search`, { headers: { authorization: 'Bearer test-pat' } });
    assert.equal(wrongMethod.status, 405);
    assert.deepEqual(await wrongMethod.json(), { code: 12, message: 'Method Not Allowed' });
  });

  it('answers a resource that is not found with ZITADEL\'s error and its details', async () => {
    const res = await fetch(`${fake.url}/v2/actions/targets/4242`, { headers: { authorization: 'Bearer test-pat' } });
    assert.equal(res.status, 404);
    const body = await res.json();
    assert.equal(body.code, 5);
    assert.equal(body.message, 'Errors.Target.NotFound (QUERY-xrerfffd7r)');
    assert.deepEqual(body.details, [{ '@type': 'type.googleapis.com/zitadel.v1.ErrorDetail', id: 'QUERY-xrerfffd7r', message: 'Errors.Target.NotFound' }]);
  });

  it('ignores unknown request fields, as the gateway (protojson DiscardUnknown) does', async () => {
    const { status, json } = await search(ORG, { pagination: { limit: 1, futureField: true }, sortingColumn: 'X', somethingNew: [1] });
    assert.equal(status, 200);
    assert.equal(json.metadata.length, 1);
  });

  it('leaves payloadType out of a target created without one, as protojson leaves out an enum at zero', async () => {
    const post = (path, body) => fetch(`${fake.url}${path}`, {
      method: 'POST', headers: { authorization: 'Bearer test-pat', 'content-type': 'application/json' }, body: JSON.stringify(body),
    }).then((r) => r.json());
    const plain = await post('/v2/actions/targets', { name: 'no-type', endpoint: 'https://w.example/', timeout: '10s', restCall: {} });
    assert.equal('payloadType' in fake.target(plain.id), false);
    const typed = await post('/v2/actions/targets', { name: 'jwt', endpoint: 'https://w.example/', timeout: '10s', restCall: {}, payloadType: 'PAYLOAD_TYPE_JWT' });
    assert.equal(fake.target(typed.id).payloadType, 'PAYLOAD_TYPE_JWT');
    await post(`/v2/actions/targets/${typed.id}`, { endpoint: 'https://w2.example/' });
    assert.equal(fake.target(typed.id).payloadType, 'PAYLOAD_TYPE_JWT', 'an update without one keeps it');
  });

  it('answers an empty list to a token without org.read (v2 filters what the caller may read), and 403 (code 7) without user.write', async () => {
    const hidden = await search(ORG, {}, 'no-org-read');
    assert.equal(hidden.status, 200);
    assert.deepEqual(hidden.json.metadata, []);
    assert.equal(hidden.json.pagination.totalResult, '0');
    assert.equal((await search(ORG, {}, 'no-user-write')).status, 200);
    const set = (token) => fetch(`${fake.url}/v2/users/u-1/metadata`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: [{ key: 'k', value: 'dg==' }] }),
    });
    const refused = await set('no-user-write');
    assert.deepEqual([refused.status, (await refused.json()).code], [403, 7]);
    assert.equal((await set('no-org-read')).status, 200);
  });

  it('reads bytes as protojson does: standard or URL-safe base64, padded or not', async () => {
    assert.deepEqual(protoBytes('+/8='), Buffer.from([0xfb, 0xff]));
    assert.deepEqual(protoBytes('-_8'), Buffer.from([0xfb, 0xff]));
    assert.deepEqual(protoBytes('-_8='), Buffer.from([0xfb, 0xff]));
    assert.deepEqual(protoBytes('dg'), Buffer.from('v'));
    for (const bad of ['+_8=', 'd', 'dg=', 'a b=', 'dg===', 7]) assert.equal(protoBytes(bad), undefined, String(bad));
    const res = await fetch(`${fake.url}/v2/users/u-b64/metadata`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-pat', 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: [{ key: 'url-safe', value: '-_8' }, { key: 'padded', value: 'dg==' }] }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(fake.userMetadata('u-b64'), { 'url-safe': Buffer.from([0xfb, 0xff]), padded: Buffer.from('v') });
  });

  it('management v1 search reads the organization from x-zitadel-orgid', async () => {
    const res = await fetch(`${fake.url}/management/v1/metadata/_search`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-pat', 'x-zitadel-orgid': ORG, 'content-type': 'application/json' },
      body: JSON.stringify({ query: { offset: '0', limit: 2, asc: true }, queries: [{ keyQuery: { key: 'a', method: 'TEXT_QUERY_METHOD_STARTS_WITH' } }] }),
    });
    const json = await res.json();
    assert.equal(res.status, 200);
    assert.equal(json.details.totalResult, '1');
    assert.deepEqual(json.result.map((m) => m.key), ['admin']);
  });

  it('management v1 without x-zitadel-orgid reads the caller\'s organization, and refuses an unknown one', async () => {
    const v1 = (headers) => fetch(`${fake.url}/management/v1/metadata/_search`, {
      method: 'POST', headers: { authorization: 'Bearer test-pat', ...headers }, body: '{}',
    });
    const own = await v1({});
    assert.equal(own.status, 200);
    assert.equal((await own.json()).details.totalResult, '5', 'the caller\'s organization (callerOrg)');
    const unknown = await v1({ 'x-zitadel-orgid': 'no-such-org' });
    assert.deepEqual([unknown.status, (await unknown.json()).code], [403, 7]);
  });

  it('issues client-credentials tokens that the APIs accept, and can revoke them', async () => {
    const local = await startFakeZitadel({ fixture: { clients: { 'svc@proj': 's:cret' } } });
    try {
      const basic = Buffer.from(`${encodeURIComponent('svc@proj')}:${encodeURIComponent('s:cret')}`).toString('base64');
      const form = 'grant_type=client_credentials&scope=openid+urn%3Azitadel%3Aiam%3Aorg%3Aproject%3Aid%3Azitadel%3Aaud';
      const token = await fetch(`${local.url}/oauth/v2/token`, { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body: form });
      const issued = await token.json();
      assert.equal(token.status, 200);
      assert.equal(issued.token_type, 'Bearer');
      assert.equal(issued.expires_in, 43199);
      const search = () => fetch(`${local.url}/v2/organizations/x/metadata/search`, { method: 'POST', headers: { authorization: `Bearer ${issued.access_token}` }, body: '{}' });
      assert.equal((await search()).status, 200);
      local.revokeTokens();
      assert.equal((await search()).status, 401);
      const wrong = await fetch(`${local.url}/oauth/v2/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from('svc@proj:nope').toString('base64')}` }, body: form });
      assert.equal(wrong.status, 401);
      assert.equal((await wrong.json()).error, 'invalid_client');
    } finally {
      await local.close();
    }
  });

  it('answers the gateway\'s routing 404 for v2 when started as an older instance', async () => {
    const old = await startFakeZitadel({ v2: false });
    try {
      const res = await fetch(`${old.url}/v2/organizations/x/metadata/search`, { method: 'POST', headers: { authorization: 'Bearer test-pat' }, body: '{}' });
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { code: 5, message: 'Not Found' });
    } finally {
      await old.close();
    }
  });

  it('records calls and injects faults', async () => {
    fake.reset();
    fake.fault(/metadata\/search$/, { status: 500, times: 1 });
    assert.equal((await search(ORG, {})).status, 500);
    assert.equal((await search(ORG, {})).status, 200);
    assert.equal(fake.callsTo(/metadata\/search$/).length, 2);
    assert.equal(fake.calls[0].authorization, 'Bearer test-pat');
  });
});

describe('fake ZITADEL: a target\'s public keys (payload encryption) and the instance\'s key set', () => {
  const PAT = 'keys-pat';
  let z;
  let target;
  before(async () => {
    z = await startFakeZitadel({
      fixture: { accessToken: PAT, permissions: { 'read-only': ['action.target.read'], 'write-only': ['action.target.write'] } },
    });
  });
  after(() => z.close());
  beforeEach(() => {
    z.reset();
    target = z.addTarget({ name: `t-${randomUUID()}`, endpoint: 'https://w.example/', payloadType: 'PAYLOAD_TYPE_JWE' });
  });

  const pemOf = (type, options) => generateKeyPairSync(type, options).publicKey.export({ type: 'spki', format: 'pem' });
  const rsaPem = () => pemOf('rsa', { modulusLength: 2048 });
  const ecPem = () => pemOf('ec', { namedCurve: 'P-256' });
  /** ZITADEL's fingerprint, computed here independently of the fake: over the DER the PEM holds. */
  const fingerprint = (pem) => `SHA256:${createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest('base64').replace(/=+$/, '')}`;

  async function api(method, path, body, token = PAT) {
    const res = await fetch(`${z.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }
  const keys = (id = target.id, token) => api('POST', `/v2/actions/targets/${id}/publickeys/search`, {}, token);
  const add = (pem, extra = {}, token) => api('POST', `/v2/actions/targets/${target.id}/publickeys`, { publicKey: b64(pem), ...extra }, token);
  const activate = (keyId, token) => api('POST', `/v2/actions/targets/${target.id}/publickeys/${keyId}/activate`, undefined, token);
  const deactivate = (keyId) => api('POST', `/v2/actions/targets/${target.id}/publickeys/${keyId}/deactivate`);
  const remove = (keyId, token) => api('DELETE', `/v2/actions/targets/${target.id}/publickeys/${keyId}`, undefined, token);

  it('AddPublicKey takes the PEM as base64 and adds the key inactive; ListPublicKeys shows it with ZITADEL\'s fingerprint', async () => {
    const pem = rsaPem();
    const added = await add(pem);
    assert.equal(added.status, 200);
    assert.deepEqual(Object.keys(added.json).sort(), ['creationDate', 'keyId']);
    assert.match(added.json.keyId, /^\d{18}$/);
    const listed = await keys();
    assert.equal(listed.status, 200);
    assert.equal(listed.json.publicKeys.length, 1);
    const [k] = listed.json.publicKeys;
    assert.equal(k.keyId, added.json.keyId);
    assert.equal('active' in k, false, 'a new key is inactive (protojson leaves out a false bool)');
    assert.equal(Buffer.from(k.publicKey, 'base64').toString('utf8'), pem);
    assert.equal(k.fingerprint, fingerprint(pem));
    assert.match(k.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.ok(k.creationDate && k.changeDate);
    assert.deepEqual(z.publicKeys(target.name).map(({ keyId, active, pem: p }) => ({ keyId, active, pem: p })), [{ keyId: k.keyId, active: false, pem }]);
    assert.equal(z.publicKeys(target.id)[0].fingerprint, k.fingerprint);
    assert.equal(z.activeKey(target.id), undefined);
    assert.equal(z.publicKeys('no-such-target'), undefined);
  });

  it('ActivatePublicKey makes one key active and deactivates the one before; activating it again changes nothing', async () => {
    const first = (await add(rsaPem())).json.keyId;
    const second = (await add(ecPem())).json.keyId;
    const a1 = await activate(first);
    assert.equal(a1.status, 200);
    assert.deepEqual(Object.keys(a1.json), ['changeDate']);
    assert.equal(z.activeKey(target.name).keyId, first);
    assert.equal((await activate(second)).status, 200);
    assert.equal(z.activeKey(target.name).keyId, second);
    assert.deepEqual(z.publicKeys(target.id).map((k) => [k.keyId, k.active]), [[first, false], [second, true]]);
    const listed = (await keys()).json.publicKeys;
    assert.deepEqual(listed.map((k) => [k.keyId, k.active ?? false]), [[first, false], [second, true]]);
    const again = await activate(second);
    assert.equal(again.status, 200);
    assert.equal(z.publicKeys(target.id).filter((k) => k.active).length, 1);
    const unknown = await activate('4242');
    assert.deepEqual([unknown.status, unknown.json.code], [404, 5]);
  });

  it('DeactivatePublicKey leaves the target without an active key', async () => {
    const id = (await add(ecPem())).json.keyId;
    await activate(id);
    const r = await deactivate(id);
    assert.equal(r.status, 200);
    assert.ok(r.json.changeDate);
    assert.equal(z.activeKey(target.id), undefined);
    assert.equal(z.publicKeys(target.id)[0].active, false);
    assert.equal((await deactivate('4242')).status, 404);
  });

  it('RemovePublicKey refuses the active key (400, code 9, Errors.Target.PublicKeyActive), removes an inactive one, and ignores an unknown one', async () => {
    const old = (await add(rsaPem())).json.keyId;
    const current = (await add(rsaPem())).json.keyId;
    await activate(old);
    await activate(current);
    const refused = await remove(current);
    assert.deepEqual([refused.status, refused.json.code], [400, 9]);
    assert.match(refused.json.message, /^Errors\.Target\.PublicKeyActive/);
    assert.equal(refused.json.details[0].message, 'Errors.Target.PublicKeyActive');
    const removed = await remove(old);
    assert.equal(removed.status, 200);
    assert.deepEqual(Object.keys(removed.json), ['deletionDate']);
    assert.deepEqual(z.publicKeys(target.id).map((k) => k.keyId), [current]);
    assert.equal((await remove('4242')).status, 200);
    assert.equal(z.publicKeys(target.id).length, 1);
  });

  it('accepts only PEM SPKI RSA or EC keys: anything else is 400, code 3', async () => {
    assert.equal((await add(pemOf('ec', { namedCurve: 'P-384' }))).status, 200);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const refused = {
      ed25519: pemOf('ed25519'),
      x25519: pemOf('x25519'),
      'EC secp256k1 (no curve of Go\'s x509)': pemOf('ec', { namedCurve: 'secp256k1' }),
      'RSA-PSS': pemOf('rsa-pss', { modulusLength: 2048 }),
      'PKCS#1 RSA PUBLIC KEY': rsa.export({ type: 'pkcs1', format: 'pem' }),
      'literal \\n instead of newlines': rsaPem().replace(/\n/g, '\\n'),
      'no PEM': 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA',
      'a private key': generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    };
    for (const [what, pem] of Object.entries(refused)) {
      const r = await add(pem);
      assert.deepEqual([r.status, r.json.code], [400, 3], what);
    }
    const empty = await api('POST', `/v2/actions/targets/${target.id}/publickeys`, {});
    assert.deepEqual([empty.status, empty.json.code], [400, 3], 'publicKey is required');
    const notBase64 = await api('POST', `/v2/actions/targets/${target.id}/publickeys`, { publicKey: rsaPem() });
    assert.deepEqual([notBase64.status, notBase64.json.code], [400, 3], 'the PEM must come as base64');
    assert.equal((await add('x'.repeat(8193))).status, 400);
    assert.equal(z.publicKeys(target.id).length, 1, 'only the P-384 key was added');
  });

  it('an expiration date must lie ahead; an expired key is no longer active and cannot be activated', async () => {
    const past = await add(rsaPem(), { expirationDate: new Date(Date.now() - 60_000).toISOString() });
    assert.deepEqual([past.status, past.json.code], [400, 3]);
    const soon = new Date(Date.now() + 300).toISOString();
    const id = (await add(ecPem(), { expirationDate: soon })).json.keyId;
    assert.equal((await keys()).json.publicKeys[0].expirationDate, soon);
    assert.equal((await activate(id)).status, 200);
    assert.equal(z.activeKey(target.id).keyId, id);
    await waitPast(400, 'the key\'s expiration date, 300 ms ahead');
    assert.equal(z.activeKey(target.id), undefined, 'deactivated after its expiration date');
    const expired = await activate(id);
    assert.deepEqual([expired.status, expired.json.code], [400, 9]);
    assert.equal((await remove(id)).status, 200, 'no longer active, so it can be removed');
  });

  it('keeps keys per target, answers 404 for an unknown target', async () => {
    const other = z.addTarget({ name: `other-${randomUUID()}`, endpoint: 'https://o.example/' });
    const mine = (await add(rsaPem())).json.keyId;
    await activate(mine);
    const theirs = z.addPublicKey(other.name, ecPem(), { active: true });
    assert.equal(theirs.active, true);
    assert.equal(z.activeKey(target.id).keyId, mine, 'activating a key of another target changes nothing here');
    assert.deepEqual((await keys()).json.publicKeys.map((k) => k.keyId), [mine]);
    assert.deepEqual((await keys(other.id)).json.publicKeys.map((k) => k.keyId), [theirs.keyId]);
    assert.equal((await api('POST', `/v2/actions/targets/${target.id}/publickeys/${theirs.keyId}/activate`)).status, 404);
    assert.deepEqual([(await keys('4242')).status, (await keys('4242')).json.code], [404, 5]);
    assert.throws(() => z.addPublicKey(other.id, 'not a key'), /Errors\.Target\.InvalidPublicKey/);
  });

  it('checks the permissions: action.target.write to add, activate, deactivate and remove, action.target.read to list', async () => {
    assert.equal((await keys(target.id, 'read-only')).status, 200);
    assert.deepEqual([(await keys(target.id, 'write-only')).status, (await keys(target.id, 'write-only')).json.code], [403, 7]);
    const denied = await add(rsaPem(), {}, 'read-only');
    assert.deepEqual([denied.status, denied.json.code], [403, 7]);
    const id = (await add(rsaPem(), {}, 'write-only')).json.keyId;
    assert.ok(id);
    assert.equal((await activate(id, 'read-only')).status, 403);
    assert.equal((await activate(id, 'write-only')).status, 200);
    assert.equal((await api('POST', `/v2/actions/targets/${target.id}/publickeys/${id}/deactivate`, undefined, 'read-only')).status, 403);
    assert.equal((await remove(id, 'read-only')).status, 403);
    assert.equal((await keys(target.id, 'wrong-token')).status, 401);
    assert.equal((await api('GET', `/v2/actions/targets/${target.id}/publickeys/${id}`)).status, 405, 'a known path with another method');
  });

  it('serves the key set at GET /oauth/v2/keys without a token, from setWebKeys', async () => {
    const jwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: '1', alg: 'ES256', use: 'sig' };
    const rsaJwk = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: '2', alg: 'RS256', use: 'sig' };
    const empty = await fetch(`${z.url}/oauth/v2/keys`);
    assert.equal(empty.status, 200);
    assert.deepEqual(await empty.json(), { keys: [] });
    z.setWebKeys([jwk, rsaJwk], { headers: { 'cache-control': 'max-age=300, must-revalidate' } });
    assert.deepEqual(z.webKeys(), [jwk, rsaJwk]);
    const res = await fetch(`${z.url}/oauth/v2/keys`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('cache-control'), 'max-age=300, must-revalidate');
    assert.deepEqual(await res.json(), { keys: [jwk, rsaJwk] });
    z.setWebKeys([rsaJwk]);
    assert.deepEqual((await (await fetch(`${z.url}/oauth/v2/keys`)).json()).keys.map((k) => k.kid), ['2']);
    assert.equal((await fetch(`${z.url}/oauth/v2/keys`)).headers.get('cache-control'), null);
    assert.equal((await fetch(`${z.url}/oauth/v2/keys`, { method: 'POST' })).status, 405);
    assert.throws(() => z.setWebKeys({ keys: [] }), TypeError);
    const seeded = await startFakeZitadel({ fixture: { webKeys: [jwk] } });
    try {
      assert.deepEqual(await (await fetch(`${seeded.url}/oauth/v2/keys`)).json(), { keys: [jwk] });
    } finally {
      await seeded.close();
    }
  });

  it('records key set fetches like every call, and takes faults', async () => {
    z.setWebKeys([{ kty: 'EC', kid: '1', crv: 'P-256', x: 'eA', y: 'eQ', alg: 'ES256', use: 'sig' }]);
    z.fault(/^\/oauth\/v2\/keys$/, { status: 503, times: 1 });
    assert.equal((await fetch(`${z.url}/oauth/v2/keys`)).status, 503);
    assert.equal((await fetch(`${z.url}/oauth/v2/keys`, { headers: { 'x-test': 'a' } })).status, 200);
    const fetched = z.callsTo(/^\/oauth\/v2\/keys$/);
    assert.equal(fetched.length, 2);
    assert.deepEqual(fetched.map((c) => [c.method, c.authorization]), [['GET', null], ['GET', null]]);
    assert.equal(fetched[1].headers['x-test'], 'a');
    z.fault(/^\/oauth\/v2\/keys$/, { delayMs: 150, times: 1 });
    const started = Date.now();
    assert.equal((await fetch(`${z.url}/oauth/v2/keys`)).status, 200);
    assert.ok(Date.now() - started >= 140, 'a delaying fault');
    assert.equal(z.callsTo(/^\/oauth\/v2\/keys$/).length, 3);
  });
});

describe('fake ZITADEL: the OpenID provider of its OIDC apps (the connect flow)', () => {
  let op;
  let clientId;
  const REDIRECT = 'https://worker.example/connect/zitadel/callback';
  const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
  const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');
  before(async () => {
    op = await startFakeZitadel({ oidc: { signedIn: 'user-1' }, fixture: { permissions: { 'no-user-read': ['org.read'] } } });
    const project = op.addProject('claims');
    clientId = op.addOidcApp(project, 'claims-connect', {
      redirectUris: [REDIRECT], responseTypes: ['OIDC_RESPONSE_TYPE_CODE'], grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE'],
      appType: 'OIDC_APP_TYPE_USER_AGENT', authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE',
    }).oidcConfig.clientId;
  });
  after(() => op.close());

  const authorize = (changes = {}) => {
    const q = new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', state: 'st', nonce: 'nn', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
    for (const [k, v] of Object.entries(changes)) (v === undefined ? q.delete(k) : q.set(k, v));
    return fetch(`${op.url}/oauth/v2/authorize?${q}`, { redirect: 'manual' });
  };
  const back = (res) => Object.fromEntries(new URL(res.headers.get('location')).searchParams);
  const redeem = (code, changes = {}) => {
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: clientId, code_verifier: VERIFIER });
    for (const [k, v] of Object.entries(changes)) (v === undefined ? form.delete(k) : form.set(k, v));
    return fetch(`${op.url}/oauth/v2/token`, { method: 'POST', body: form }).then(async (r) => ({ status: r.status, json: await r.json() }));
  };

  it('shows an error page, never a redirect, for an unknown client or a redirect URI not registered', async () => {
    for (const changes of [{ client_id: 'nobody' }, { redirect_uri: 'https://evil.example/cb' }, { redirect_uri: `${REDIRECT}/x` }]) {
      const res = await authorize(changes);
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('location'), null);
      assert.match(res.headers.get('content-type'), /^text\/html/);
    }
  });

  it('sends back invalid_request without an S256 challenge, invalid_scope without openid, access_denied when told', async () => {
    assert.deepEqual(back(await authorize({ code_challenge: undefined })), { error: 'invalid_request', error_description: 'code_challenge required', state: 'st' });
    assert.equal(back(await authorize({ code_challenge_method: 'plain' })).error, 'invalid_request');
    assert.equal(back(await authorize({ scope: 'profile' })).error, 'invalid_scope');
    assert.equal(back(await authorize({ response_type: 'token' })).error, 'unsupported_response_type');
    op.denyNextAuthorization();
    assert.deepEqual([back(await authorize()).error, back(await authorize()).error], ['access_denied', undefined], 'once');
  });

  it('without a session shows the login page', async () => {
    op.signIn(null);
    try {
      const res = await authorize();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('location'), null);
    } finally {
      op.signIn('user-1');
    }
  });

  it('redeems a code once, for its redirect URI, client and verifier, with an ID token its key set verifies', async () => {
    const code = back(await authorize()).code;
    for (const changes of [{ code_verifier: `${VERIFIER.slice(0, -1)}A` }, { code_verifier: undefined }, { redirect_uri: `${REDIRECT}x` }]) {
      const refused = await redeem(code, changes);
      assert.deepEqual([refused.status, refused.json.error], [400, 'invalid_grant'], JSON.stringify(changes));
    }
    assert.equal((await redeem(code, { client_id: 'nobody' })).status, 401);
    const ok = await redeem(code);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal((await redeem(code)).json.error, 'invalid_grant', 'a code is single-use');
    const [header, payload] = ok.json.id_token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
    assert.equal(header.alg, 'RS256');
    const jwk = (await (await fetch(`${op.url}/oauth/v2/keys`)).json()).keys.find((k) => k.kid === header.kid);
    const [input, signature] = [ok.json.id_token.split('.').slice(0, 2).join('.'), ok.json.id_token.split('.')[2]];
    assert.ok(createVerify('sha256').update(input).verify(createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(signature, 'base64url')));
    const project = op.projects().find((p) => p.name === 'claims');
    assert.deepEqual([payload.iss, payload.sub, payload.aud, payload.azp, payload.nonce], [op.url, 'user-1', [clientId, project.id], clientId, 'nn']);
    assert.ok(payload.exp > payload.iat);
  });

  it('lists a user\'s identity provider links with user.read', async () => {
    op.setIdpLinks('user-1', [{ idpId: 'ms', userId: 'oid-1', userName: 'ada@contoso.example' }]);
    const search = (user, token = op.accessToken) => fetch(`${op.url}/v2/users/${user}/links/_search`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{}' })
      .then(async (r) => ({ status: r.status, json: await r.json() }));
    assert.deepEqual((await search('user-1')).json.result, [{ idpId: 'ms', userId: 'oid-1', userName: 'ada@contoso.example' }]);
    assert.deepEqual((await search('user-2')).json.result, []);
    assert.equal((await search('user-1', 'no-user-read')).status, 403);
  });
});
