// The fake ZITADEL itself: later tests trust it to speak the real wire format and behave as
// ZITADEL's gateway does (unknown fields, routing errors, permissions, base64 forms), so that is
// checked here.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { loadFixture, protoBytes, startFakeZitadel } from '../support/fake-zitadel.mjs';

const ORG = '312909075211944344';
let fake;
before(async () => {
  const fixture = loadFixture(new URL('../fixtures/zitadel/test.json', import.meta.url));
  fake = await startFakeZitadel({
    fixture: { ...fixture, callerOrg: ORG, permissions: { 'no-org-read': ['user.write'], 'no-user-write': ['org.read'] } },
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

  it('answers 403 (code 7) to a token without org.read or user.write', async () => {
    const denied = await search(ORG, {}, 'no-org-read');
    assert.deepEqual([denied.status, denied.json.code], [403, 7]);
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
