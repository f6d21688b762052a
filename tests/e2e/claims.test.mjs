// The claims end to end: the built worker in workerd (wrangler dev) against the fake ZITADEL.
// Permissions (pages, v1 fallback, PAT and client credentials, caching in memory and KV),
// failure policies within the time budget, flat roles, groups, the Microsoft token and the
// clients it goes to, and the same data as SAML attributes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { assertError, claim, postSigned } from '../support/calls.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { FIXTURE, FLAT_ROLES, MS_TOKEN, ORG, PAYLOAD, PERMISSIONS } from '../support/sample.mjs';
import { waitPast, waitUntil } from '../support/wait.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const KEY = 'claims-signing-key';
const METADATA_SEARCH = /\/metadata\/(search|_search)$/;

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

async function fakeZitadel(options = {}) {
  const fake = await startFakeZitadel({ fixture: FIXTURE, ...options });
  cleanup.push(() => fake.close());
  return fake;
}

async function worker(fake, { vars = {}, secrets = {}, ...options } = {}) {
  const w = await startWorker({
    vars: { ZITADEL_DOMAIN: fake.url, MS_TOKEN_CLIENT_IDS: '*', ...vars },
    secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken, ...secrets },
    ...options,
  });
  cleanup.push(() => w.stop());
  return w;
}

function payload(changes = {}) {
  return { ...structuredClone(PAYLOAD), ...changes };
}

const call = (w, body = payload()) => postSigned(w.url, JSON.stringify(body), KEY);

describe('permissions from organization metadata (PAT, cache on)', () => {
  let fake;
  let w;
  before(async () => {
    fake = await fakeZitadel();
    for (let i = 0; i < 230; i += 1) fake.setMetadata('big-org', `role-${String(i).padStart(3, '0')}`, [`perm-${i}`]);
    w = await worker(fake);
  });

  it('maps the roles of the grants to permissions, deduplicated in first-seen order', async () => {
    fake.reset();
    const res = await call(w);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS);
    const [search] = fake.callsTo(METADATA_SEARCH);
    assert.equal(search.path, `/v2/organizations/${ORG}/metadata/search`);
    assert.equal(search.authorization, `Bearer ${fake.accessToken}`);
  });

  it('an organization id that is no ZITADEL id is never put into a URL: no permissions, no call, and the v2 API stays', async () => {
    fake.reset();
    const { res, line } = await withLogLine(w, () => call(w, payload({ org: { id: '..' } })));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(claim(res, 'permissions'), undefined);
    assert.deepEqual(claim(res, 'my:zitadel:grants'), FLAT_ROLES, 'the rest of the answer is there');
    assert.equal(line.upstream_error, 'invalid_id');
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 0);
    fake.setMetadata('after-bad-id', 'admin', ['after:read']);
    const next = await call(w, payload({ org: { id: 'after-bad-id' } }));
    assert.deepEqual(claim(next, 'permissions'), ['after:read']);
    assert.deepEqual(fake.callsTo(METADATA_SEARCH).map((c) => c.path), ['/v2/organizations/after-bad-id/metadata/search'], 'still the v2 API');
  });

  it('a token issued to an impersonator (actor) gets no Microsoft token, and keeps the permissions by default', async () => {
    const actor = { user_id: '312909075212468999', issuer: 'https://zitadel.example' };
    const { res, line } = await withLogLine(w, () => call(w, payload({ actor })));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS);
    assert.equal(line.ms_token, 'impersonated');
    assert.equal(claim(await call(w, payload({ actor: null })), 'urn:custom:ms_access_token'), MS_TOKEN, 'a null actor is none');
  });

  it('many calls within the TTL make one upstream call', async () => {
    const org = 'cache-org';
    fake.setMetadata(org, 'admin', ['cached:perm']);
    fake.reset();
    const results = await Promise.all(Array.from({ length: 20 }, () => call(w, payload({ org: { id: org } }))));
    for (const res of results) assert.deepEqual(claim(res, 'permissions'), ['cached:perm']);
    for (let i = 0; i < 5; i += 1) await call(w, payload({ org: { id: org } }));
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 1);
  });

  it('reads every page (more than 100 entries)', async () => {
    fake.reset();
    const grants = [{ project_id: 'p', roles: ['role-000', 'role-150', 'role-229'] }];
    const res = await call(w, payload({ org: { id: 'big-org' }, user_grants: grants }));
    assert.deepEqual(claim(res, 'permissions'), ['perm-0', 'perm-150', 'perm-229']);
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 3);
  });

  it('no grants: no permissions claim and no API call', async () => {
    fake.reset();
    const body = payload();
    delete body.user_grants;
    const res = await call(w, body);
    assert.equal(res.status, 200);
    assert.equal(claim(res, 'permissions'), undefined);
    assert.equal(claim(res, 'my:zitadel:grants'), undefined);
    assert.equal(fake.calls.length, 0);
  });

  it('flat roles are {projectId}:{role}', async () => {
    assert.deepEqual(claim(await call(w), 'my:zitadel:grants'), FLAT_ROLES);
  });

  it('passes the Microsoft token stored by a V1 action (JSON-quoted) in preaccesstoken', async () => {
    assert.equal(MS_TOKEN.startsWith('EwBwA8l6'), true);
    assert.equal(claim(await call(w), 'urn:custom:ms_access_token'), MS_TOKEN);
  });

  it('passes the Microsoft token stored raw (V2 set_user_metadata)', async () => {
    const body = payload({ user_metadata: [{ key: 'microsoft_access_token', value: Buffer.from('raw-token-bytes').toString('base64') }] });
    assert.equal(claim(await call(w, body), 'urn:custom:ms_access_token'), 'raw-token-bytes');
  });

  it('preuserinfo gets permissions and roles but not the Microsoft token by default', async () => {
    const res = await call(w, payload({ function: 'function/preuserinfo' }));
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS);
    assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
  });

  it('logs claim keys, cache source and upstream calls, never values', async () => {
    await w.settleLog();
    const lines = w.logLines().filter((l) => l.function);
    assert.ok(lines.some((l) => l.cache === 'miss' && l.upstream_calls >= 1));
    assert.ok(lines.some((l) => l.cache === 'hit' && !l.upstream_calls));
    const out = w.output();
    for (const secret of [KEY, fake.accessToken, MS_TOKEN, 'users:manage', 'raw-token-bytes']) {
      assert.ok(!out.includes(secret), `the output contains ${secret}`);
    }
  });
});

describe('older instances: management v1 fallback only when the v2 route is missing', () => {
  it('falls back to /management/v1/metadata/_search after a 404 and remembers it', async () => {
    const fake = await fakeZitadel({ v2: false });
    fake.setMetadata('second-org', 'admin', 'v1:perm');
    const w = await worker(fake);
    const res = await call(w);
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS);
    assert.deepEqual(fake.calls.map((c) => c.path), [`/v2/organizations/${ORG}/metadata/search`, '/management/v1/metadata/_search']);
    assert.equal(fake.calls[1].headers['x-zitadel-orgid'], ORG);
    fake.reset();
    assert.deepEqual(claim(await call(w, payload({ org: { id: 'second-org' } })), 'permissions'), ['v1:perm']);
    assert.deepEqual(fake.calls.map((c) => c.path), ['/management/v1/metadata/_search'], 'v2 is not tried again');
  });

  for (const policy of ['omit', 'fail']) {
    it(`a NotFound from the v2 API is an upstream error (ON_UPSTREAM_ERROR=${policy}), not a reason to switch to v1`, async () => {
      const fake = await fakeZitadel();
      const w = await worker(fake, { vars: { ON_UPSTREAM_ERROR: policy, METADATA_CACHE_TTL_SECONDS: '0' } });
      const notFound = {
        code: 5,
        message: 'Errors.Org.NotFound (QUERY-dj2FF)',
        details: [{ '@type': 'type.googleapis.com/zitadel.v1.ErrorDetail', id: 'QUERY-dj2FF', message: 'Errors.Org.NotFound' }],
      };
      fake.fault(METADATA_SEARCH, { status: 404, body: JSON.stringify(notFound), times: 1 });
      const { res, line } = await withLogLine(w, () => call(w));
      if (policy === 'omit') {
        assert.equal(res.status, 200);
        assert.equal(claim(res, 'permissions'), undefined);
        assert.deepEqual(claim(res, 'my:zitadel:grants'), FLAT_ROLES);
      } else {
        assertError(res, 502, 'upstream_unavailable');
      }
      assert.equal(line.upstream_error, 'bad_status');
      assert.deepEqual(fake.calls.map((c) => c.path), [`/v2/organizations/${ORG}/metadata/search`], 'no v1 call');
      assert.deepEqual(claim(await call(w), 'permissions'), PERMISSIONS, 'the next call uses v2 again');
      assert.equal(fake.callsTo(/management/).length, 0);
    });
  }
});

describe('a service user without org.read', () => {
  it('v2 answers an empty list, not a 403: the claim is left out with empty_mapping (whatever ON_UPSTREAM_ERROR says), and the log claim names org.read', async () => {
    const fake = await fakeZitadel({ fixture: { ...FIXTURE, permissions: { 'no-org-read': ['user.write'] } } });
    const omit = await worker(fake, { secrets: { ZITADEL_ACCESS_TOKEN: 'no-org-read' }, vars: { LOG_CLAIMS: 'true', ON_UPSTREAM_ERROR: 'fail' } });
    const { res, line } = await withLogLine(omit, () => call(omit));
    assert.equal(res.status, 200, res.text);
    assert.equal(claim(res, 'permissions'), undefined);
    assert.match(res.json.append_log_claims.join('\n'), /permissions omitted: .*org\.read/);
    assert.ok(line.notes.includes('empty_mapping'), JSON.stringify(line));
    assert.equal(line.upstream_error, undefined);
  });

  it('management v1 (older instances) answers 403: the claim is left out (omit) or the call fails (fail), and the message names the permission', async () => {
    const fake = await fakeZitadel({ v2: false, fixture: { ...FIXTURE, permissions: { 'no-org-read': ['user.write'] } } });
    const omit = await worker(fake, { secrets: { ZITADEL_ACCESS_TOKEN: 'no-org-read' }, vars: { LOG_CLAIMS: 'true' } });
    const { res, line } = await withLogLine(omit, () => call(omit));
    assert.equal(res.status, 200);
    assert.equal(claim(res, 'permissions'), undefined);
    assert.deepEqual(res.json.append_log_claims, ['permissions omitted: ZITADEL API unauthorized']);
    assert.equal(line.upstream_error, 'unauthorized');
    const fail = await worker(fake, { secrets: { ZITADEL_ACCESS_TOKEN: 'no-org-read' }, vars: { ON_UPSTREAM_ERROR: 'fail' } });
    const refused = await call(fail);
    assertError(refused, 502, 'upstream_unavailable', /lack a permission \(HTTP 403\).*needs org\.read/);
    assert.ok(!refused.json.message.includes('no-org-read'), 'the token is not echoed');
  });
});

describe('SAML applications: presamlresponse', () => {
  let fake;
  let w;
  before(async () => {
    fake = await fakeZitadel();
    w = await worker(fake, { vars: { GROUPS_CLAIM: 'groups', LOG_CLAIMS: 'true' } });
  });

  /** The payload ZITADEL's SAML flow sends: no org, no user_metadata; the user's org is its resource owner. */
  function samlPayload(changes = {}) {
    const { user, user_grants: grants } = structuredClone(PAYLOAD);
    return { function: 'function/presamlresponse', user, user_grants: grants, ...changes };
  }

  const attribute = (res, name) => res.json.append_attribute?.find((a) => a.name === name);

  it('answers the permissions, flat roles and groups as attributes of string values, in the basic name format', async () => {
    fake.reset();
    const { res, line } = await withLogLine(w, () => call(w, samlPayload()));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const basic = 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic';
    assert.deepEqual(res.json, {
      append_attribute: [
        { name: 'permissions', name_format: basic, value: PERMISSIONS },
        { name: 'my:zitadel:grants', name_format: basic, value: FLAT_ROLES },
        { name: 'groups', name_format: basic, value: ['admin', 'editor', 'viewer'] },
      ],
    }, 'no claims, no Microsoft token, no log lines (a SAML answer has no place for them)');
    const [search] = fake.callsTo(METADATA_SEARCH);
    assert.equal(search.path, `/v2/organizations/${PAYLOAD.user.resource_owner}/metadata/search`, 'the user\'s organization');
    assert.equal(line.function, 'function/presamlresponse');
    assert.deepEqual(line.claims, ['permissions', 'my:zitadel:grants', 'groups']);
  });

  it('a user without grants gets no attributes', async () => {
    const res = await call(w, samlPayload({ user_grants: undefined }));
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, {});
  });
});

describe('MS_TOKEN_CLIENT_IDS: the Microsoft token only for the clients that need it', () => {
  let w;
  before(async () => {
    const fake = await fakeZitadel();
    w = await worker(fake, { vars: { MS_TOKEN_CLIENT_IDS: `backend-api, ${PAYLOAD.application.client_id}`, LOG_CLAIMS: 'true' } });
  });

  it('a listed client gets it', async () => {
    const { res, line } = await withLogLine(w, () => call(w));
    assert.equal(claim(res, 'urn:custom:ms_access_token'), MS_TOKEN);
    assert.equal(line.ms_token, 'passed');
  });

  it('another client (an SPA) does not, and that is no failure', async () => {
    const { res, line } = await withLogLine(w, () => call(w, payload({ application: { client_id: 'the-spa' } })));
    assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS, 'the other claims stay');
    assert.equal(res.json.append_log_claims, undefined);
    assert.equal(line.ms_token, 'other_client');
  });

  it('a payload without application (older ZITADEL) does not, and the log says why', async () => {
    const body = payload();
    delete body.application;
    const { res, line } = await withLogLine(w, () => call(w, body));
    assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
    const why = 'the payload names no application (older ZITADEL), and MS_TOKEN_CLIENT_IDS lists clients';
    assert.equal(line.ms_token, 'omitted');
    assert.deepEqual(line.notes, [why]);
    assert.deepEqual(res.json.append_log_claims, [`urn:custom:ms_access_token omitted: ${why}`]);
  });
});

describe('without MS_TOKEN_CLIENT_IDS the Microsoft token claim is off', () => {
  it('no client gets it, nothing is logged as a failure, and /healthz says what turns it on', async () => {
    const w = await worker(await fakeZitadel(), { vars: { MS_TOKEN_CLIENT_IDS: '', LOG_CLAIMS: 'true' } });
    const { res, line } = await withLogLine(w, () => call(w));
    assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS, 'the other claims stay');
    assert.equal(res.json.append_log_claims, undefined);
    assert.equal(line.ms_token, undefined);
    const health = await fetch(`${w.url}/healthz`).then((r) => r.json());
    const feature = health.features.find((f) => f.name === 'microsoft_token_claim');
    assert.deepEqual(feature, { name: 'microsoft_token_claim', on: false, needs: ['MS_TOKEN_CLIENT_IDS'] });
  });
});

describe('client credentials, cache off, prefix, project filter, groups, token in userinfo', () => {
  let fake;
  let w;
  before(async () => {
    fake = await fakeZitadel({ fixture: { ...FIXTURE, clients: { 'svc-client': 'svc-secret' } } });
    fake.setMetadata(ORG, 'perm:viewer', 'reports:read, reports:export');
    w = await worker(fake, {
      secrets: { ZITADEL_ACCESS_TOKEN: '', ZITADEL_CLIENT_ID: 'svc-client', ZITADEL_CLIENT_SECRET: 'svc-secret' },
      vars: {
        METADATA_CACHE_TTL_SECONDS: '0',
        PERMISSIONS_METADATA_PREFIX: 'perm:',
        PERMISSIONS_PROJECT_ID: '312909075214958999',
        GROUPS_CLAIM: 'groups',
        FLAT_ROLES_CLAIM: '',
        MS_TOKEN_IN_USERINFO: 'true',
      },
    });
  });

  it('requests a token once over many calls, and every call reads the metadata (cache off)', async () => {
    fake.reset();
    for (let i = 0; i < 5; i += 1) {
      const res = await call(w);
      assert.deepEqual(claim(res, 'permissions'), ['reports:read', 'reports:export']);
    }
    assert.equal(fake.callsTo(/\/oauth\/v2\/token$/).length, 1);
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 5);
    const search = fake.callsTo(METADATA_SEARCH)[0];
    assert.match(search.authorization, /^Bearer fake-token-/);
    assert.deepEqual(JSON.parse(search.body).filters, [{ keyFilter: { key: 'perm:', method: 'TEXT_FILTER_METHOD_STARTS_WITH' } }]);
  });

  it('fetches a new token once when the API answers 401', async () => {
    fake.reset();
    fake.revokeTokens();
    const res = await call(w);
    assert.deepEqual(claim(res, 'permissions'), ['reports:read', 'reports:export']);
    assert.equal(fake.callsTo(/\/oauth\/v2\/token$/).length, 1);
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 2);
  });

  it('groups are the bare role names of all grants; the flat roles claim is off', async () => {
    const res = await call(w);
    assert.deepEqual(claim(res, 'groups'), ['admin', 'editor', 'viewer']);
    assert.equal(claim(res, 'my:zitadel:grants'), undefined);
  });

  it('MS_TOKEN_IN_USERINFO=true adds the Microsoft token to preuserinfo', async () => {
    assert.equal(claim(await call(w, payload({ function: 'function/preuserinfo' })), 'urn:custom:ms_access_token'), MS_TOKEN);
  });
});

describe('cache expiry and the shared KV cache', () => {
  it('after the TTL a new upstream call is made', async () => {
    const fake = await fakeZitadel();
    const w = await worker(fake, { vars: { METADATA_CACHE_TTL_SECONDS: '1' } });
    await call(w);
    await call(w);
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 1);
    await waitPast(1100, 'the cache TTL of 1 s');
    await call(w);
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 2);
  });

  it('expiry under concurrent load: every call is answered, one upstream call per organization per TTL', async () => {
    // When the map expires while calls are in flight, the calls that wait for the shared fetch
    // must finish in their own request; answered from another request's context, workerd fails
    // them with a 500 ("Cannot perform I/O on behalf of a different request").
    const fake = await fakeZitadel({ latencyMs: 20 });
    const orgs = Array.from({ length: 5 }, (_, i) => `load-org-${i}`);
    for (const org of orgs) fake.setMetadata(org, 'admin', ['load:perm']);
    const w = await worker(fake, { vars: { METADATA_CACHE_TTL_SECONDS: '1' } });
    const statuses = {};
    const end = Date.now() + 3500;
    const lane = async (i) => {
      for (let n = i; Date.now() < end; n += 1) {
        const res = await call(w, payload({ org: { id: orgs[n % orgs.length] } }));
        const key = res.status === 200 && claim(res, 'permissions')?.[0] === 'load:perm' ? 'ok' : `${res.status} ${JSON.stringify(res.json)}`;
        statuses[key] = (statuses[key] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: 24 }, (_, i) => lane(i)));
    assert.deepEqual(Object.keys(statuses), ['ok'], JSON.stringify(statuses));
    const calls = fake.callsTo(METADATA_SEARCH).length;
    assert.ok(calls >= orgs.length * 2 && calls <= orgs.length * 5, `${calls} upstream calls for ${orgs.length} organizations over ~3.5 TTLs`);
  });

  it('a restarted worker (new isolate) reads the map from KV instead of ZITADEL', async () => {
    const fake = await fakeZitadel();
    const stateDir = mkdtempSync(join(tmpdir(), 'zitadel-claims-kv-'));
    cleanup.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const first = await startWorker({
      vars: { ZITADEL_DOMAIN: fake.url },
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken },
      kv: ['METADATA_CACHE'],
      stateDir,
    });
    cleanup.push(() => first.stop()); // stopped below; this is for a failure before that
    assert.deepEqual(claim(await call(first), 'permissions'), PERMISSIONS);
    // The KV write runs after the answer: wait until the entry is in the shared state.
    await waitUntil(async () => (await first.kvKeys('METADATA_CACHE')).some((k) => k.includes(ORG)), `the KV entry of ${ORG}`, { timeoutMs: 30_000 });
    await first.stop();
    const second = await worker(fake, { kv: ['METADATA_CACHE'], stateDir });
    fake.reset();
    assert.deepEqual(claim(await call(second), 'permissions'), PERMISSIONS);
    assert.equal(fake.calls.length, 0, 'no upstream call: the map came from KV');
    await second.settleLog();
    assert.ok(second.logLines().some((l) => l.cache === 'kv'));
  });

  it('METADATA_STALE_IF_ERROR_SECONDS serves the last good map during an outage', async () => {
    const fake = await fakeZitadel();
    const w = await worker(fake, { vars: { METADATA_CACHE_TTL_SECONDS: '1', METADATA_STALE_IF_ERROR_SECONDS: '60' } });
    await call(w);
    await waitPast(1100, 'the cache TTL of 1 s');
    fake.fault(METADATA_SEARCH, { status: 503 });
    const res = await call(w);
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS);
    await w.settleLog();
    assert.ok(w.logLines().some((l) => l.cache === 'stale' && l.upstream_error === 'bad_status'));
  });

  it('... and also when ZITADEL hangs past the deadline', async () => {
    const fake = await fakeZitadel();
    const w = await worker(fake, { vars: { METADATA_CACHE_TTL_SECONDS: '1', METADATA_STALE_IF_ERROR_SECONDS: '60', UPSTREAM_TIMEOUT_MS: '400' } });
    await call(w);
    await waitPast(1100, 'the cache TTL of 1 s');
    fake.fault(METADATA_SEARCH, { hang: true });
    const res = await call(w);
    assert.deepEqual(claim(res, 'permissions'), PERMISSIONS);
    assert.ok(res.ms < 400 + 500, `took ${res.ms} ms`);
  });
});

describe('upstream failures within the time budget', () => {
  const TIMEOUT_MS = 500;
  // The answer must come within the deadline plus this much (wrangler dev's proxy included).
  const SLACK_MS = 500;
  const faults = [
    ['500', { status: 500 }, 'bad_status'],
    ['401', { status: 401, body: JSON.stringify({ code: 16, message: 'invalid token' }) }, 'unauthorized'],
    ['malformed JSON', { status: 200, body: '{"metadata": [' }, 'malformed_response'],
    ['a hang past the deadline', { hang: true }, 'timeout'],
    ['a dropped connection', { drop: true }, 'network_error'],
  ];

  for (const policy of ['omit', 'fail']) {
    describe(`ON_UPSTREAM_ERROR=${policy}`, () => {
      let fake;
      let w;
      before(async () => {
        fake = await fakeZitadel();
        w = await worker(fake, {
          vars: { ON_UPSTREAM_ERROR: policy, UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS), LOG_CLAIMS: 'true', METADATA_CACHE_TTL_SECONDS: '0' },
        });
      });

      for (const [name, fault, code] of faults) {
        it(`${name}: answered within ${TIMEOUT_MS} + ${SLACK_MS} ms`, async () => {
          fake.reset();
          fake.fault(METADATA_SEARCH, fault);
          const res = await call(w);
          assert.ok(res.ms < TIMEOUT_MS + SLACK_MS, `took ${res.ms} ms`);
          if (fault.hang) assert.ok(res.ms >= TIMEOUT_MS - 50, `a hang was cut after ${res.ms} ms, before the deadline`);
          if (policy === 'omit') {
            assert.equal(res.status, 200);
            assert.equal(claim(res, 'permissions'), undefined);
            assert.deepEqual(claim(res, 'my:zitadel:grants'), FLAT_ROLES, 'claims that need no upstream stay');
            assert.equal(claim(res, 'urn:custom:ms_access_token'), MS_TOKEN);
            assert.deepEqual(res.json.append_log_claims, [`permissions omitted: ZITADEL API ${code}`]);
          } else {
            assertError(res, 502, 'upstream_unavailable', /ON_UPSTREAM_ERROR=fail/);
          }
        });
      }

      it('recovers once ZITADEL answers again', async () => {
        fake.reset();
        assert.deepEqual(claim(await call(w), 'permissions'), PERMISSIONS);
      });
    });
  }
});

describe('IMPERSONATION_PERMISSIONS=omit', () => {
  it("an impersonator's token carries neither the permissions nor the Microsoft token; the user's own keeps both", async () => {
    const fake = await fakeZitadel();
    const w = await worker(fake, { vars: { IMPERSONATION_PERMISSIONS: 'omit' } });
    const actor = { user_id: '312909075212468999', issuer: 'https://zitadel.example', actor: { user_id: '1', issuer: 'x' } };
    const res = await call(w, payload({ actor }));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(claim(res, 'permissions'), undefined);
    assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
    assert.deepEqual(claim(res, 'my:zitadel:grants'), FLAT_ROLES);
    assert.equal(fake.callsTo(METADATA_SEARCH).length, 0, 'no mapping read for it');
    const own = await call(w);
    assert.deepEqual(claim(own, 'permissions'), PERMISSIONS);
    assert.equal(claim(own, 'urn:custom:ms_access_token'), MS_TOKEN);
  });
});
