// Several targets on one function, run the way ZITADEL runs them (tests/support/zitadel-executor.mjs):
// the built worker in workerd beside stand-in targets, each answer decoded into one shared
// response with Go's rules, and the token's claims (or SAML attributes) computed at the end as
// ZITADEL does. The worker must carry the earlier targets' entries forward and keep their claims.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { assertError, postSigned } from '../support/calls.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { FIXTURE, FLAT_ROLES, MS_TOKEN, PAYLOAD, PERMISSIONS, b64 } from '../support/sample.mjs';
import { startWorker } from '../support/worker.mjs';
import { LOG_CLAIM, execute, startStandIn } from '../support/zitadel-executor.mjs';

const KEY = 'chain-worker-key';
const STAND_IN_KEY = 'chain-stand-in-key';
const { function: _function, ...CONTEXT } = PAYLOAD;
const SAML_CONTEXT = { user: PAYLOAD.user, user_grants: PAYLOAD.user_grants };
const AT = 'function/preaccesstoken';
const BASIC = 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic';

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

let fake;
let w;
before(async () => {
  fake = await startFakeZitadel({ fixture: FIXTURE });
  cleanup.push(() => fake.close());
  w = await startWorker({
    vars: { ZITADEL_DOMAIN: fake.url, GROUPS_CLAIM: 'groups', MS_TOKEN_CLIENT_IDS: '*' },
    secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken },
  });
  cleanup.push(() => w.stop());
});

async function standIn(answer) {
  const target = await startStandIn({ signingKey: STAND_IN_KEY, answer });
  cleanup.push(() => target.close());
  return { target, url: target.url, signingKey: STAND_IN_KEY };
}

const worker = (options = {}) => ({ url: w.url, signingKey: KEY, ...options });

/** What a stand-in target gives: a claim, a metadata write and a log line. */
const STAND_IN_ANSWER = {
  append_claims: [{ key: 'department', value: { name: 'research', cost_center: 4711 } }],
  set_user_metadata: [{ key: 'last_seen_by', value: b64('stand-in') }],
  append_log_claims: ['stand-in was here'],
};

/** A stand-in that chains as it should: the earlier entries, then its own. */
const chained = (own) => (payload) => {
  const earlier = payload.response ?? {};
  const body = {};
  for (const list of ['append_claims', 'set_user_metadata', 'append_log_claims', 'append_attribute']) {
    const all = [...(earlier[list] ?? []), ...(own[list] ?? [])];
    if (all.length) body[list] = all;
  }
  return { body };
};

/** The worker's log line for the call it got from the executor (the last one). */
async function lastLine() {
  await w.settleLog();
  return w.logLines().at(-1);
}

describe('the worker after a stand-in target', () => {
  it('carries the stand-in\'s claims, metadata and log line forward beside its own', async () => {
    const first = await standIn(() => ({ body: STAND_IN_ANSWER }));
    const run = await execute({ function: AT, context: CONTEXT, targets: [first, worker()] });
    assert.equal(run.ok, true, JSON.stringify(run.calls.map((c) => c.outcome)));
    assert.deepEqual(run.calls.map((c) => c.outcome), ['applied', 'applied']);
    assert.deepEqual(run.claims.department, { name: 'research', cost_center: 4711 });
    assert.deepEqual(run.claims.permissions, PERMISSIONS);
    assert.deepEqual(run.claims['my:zitadel:grants'], FLAT_ROLES);
    assert.equal(run.claims['urn:custom:ms_access_token'], MS_TOKEN);
    assert.deepEqual(run.metadata.map((m) => [m.key, m.value.toString()]), [['last_seen_by', 'stand-in']]);
    assert.deepEqual(run.claims[LOG_CLAIM(AT)], ['stand-in was here']);
    // The worker received the earlier answer as ZITADEL marshals it, and echoed it byte for byte.
    const sent = JSON.parse(run.calls[1].body);
    assert.deepEqual(sent.response.set_user_metadata, [{ State: 0, Key: 'last_seen_by', Value: b64('stand-in') }]);
    const answer = JSON.parse(run.calls[1].text);
    assert.deepEqual(answer.set_user_metadata, sent.response.set_user_metadata);
    assert.ok(run.calls[1].text.includes(JSON.stringify(sent.response.append_claims).slice(1, -1)), 'the earlier claims, byte for byte');
    const line = await lastLine();
    assert.equal(line.earlier_entries, 3);
    assert.deepEqual(line.claims, ['permissions', 'my:zitadel:grants', 'groups', 'urn:custom:ms_access_token']);
  });

  it('a claim the stand-in already set stays the stand-in\'s: ours is left out, and our log line says so', async () => {
    fake.reset();
    const first = await standIn(() => ({ body: { append_claims: [{ key: 'permissions', value: ['from:stand-in'] }, { key: 'groups', value: 'g' }] } }));
    const run = await execute({ function: AT, context: CONTEXT, targets: [first, worker()] });
    assert.equal(run.ok, true);
    assert.deepEqual(run.claims.permissions, ['from:stand-in']);
    assert.equal(run.claims.groups, 'g');
    assert.equal(run.claims[LOG_CLAIM(AT)], undefined, 'no "already exists" in the token: the worker did not repeat the keys');
    assert.deepEqual(run.claims['my:zitadel:grants'], FLAT_ROLES);
    assert.equal(fake.callsTo(/metadata\/search$/).length, 0, 'no lookup for a claim the worker will not give');
    const line = await lastLine();
    assert.deepEqual(line.notes, [
      'key "permissions" already exists (an earlier target gave it)',
      'key "groups" already exists (an earlier target gave it)',
    ]);
  });

  it('an earlier answer that cleared a list (null) leaves nothing to carry', async () => {
    const first = await standIn(() => ({ body: { append_claims: null, append_log_claims: ['kept'] } }));
    const run = await execute({ function: AT, context: CONTEXT, targets: [first, worker()] });
    assert.deepEqual(run.claims.permissions, PERMISSIONS);
    assert.deepEqual(run.claims[LOG_CLAIM(AT)], ['kept']);
  });
});

describe('the worker before (and between) stand-in targets', () => {
  it('a later target that chains keeps the worker\'s claims', async () => {
    const last = await standIn(chained(STAND_IN_ANSWER));
    const run = await execute({ function: AT, context: CONTEXT, targets: [worker(), last] });
    assert.equal(run.ok, true);
    assert.deepEqual(run.claims.permissions, PERMISSIONS);
    assert.equal(run.claims['urn:custom:ms_access_token'], MS_TOKEN);
    assert.deepEqual(run.claims.department, STAND_IN_ANSWER.append_claims[0].value);
    assert.deepEqual(last.target.calls[0].payload.response.append_claims.map((c) => c.key),
      ['permissions', 'my:zitadel:grants', 'groups', 'urn:custom:ms_access_token'], 'the later target saw the worker\'s answer');
  });

  it('between two stand-ins, everything of all three arrives', async () => {
    const first = await standIn(() => ({ body: { append_claims: [{ key: 'first', value: 1 }], append_log_claims: ['one'] } }));
    const third = await standIn(chained({ append_claims: [{ key: 'third', value: 3 }], append_log_claims: ['three'] }));
    const run = await execute({ function: AT, context: CONTEXT, targets: [first, worker(), third] });
    assert.equal(run.ok, true);
    assert.equal(run.claims.first, 1);
    assert.equal(run.claims.third, 3);
    assert.deepEqual(run.claims.permissions, PERMISSIONS);
    assert.deepEqual(run.claims[LOG_CLAIM(AT)], ['one', 'three']);
  });
});

describe('presamlresponse, chained', () => {
  it('the worker\'s attributes join the stand-in\'s; an attribute the stand-in gave stays its own', async () => {
    const first = await standIn(() => ({
      body: {
        append_attribute: [{ name: 'groups', name_format: BASIC, value: ['from-stand-in'] }, { name: 'department', name_format: '', value: ['research'] }],
        set_user_metadata: [{ key: 'saml_seen', value: b64('yes') }],
      },
    }));
    const run = await execute({ function: 'function/presamlresponse', context: SAML_CONTEXT, targets: [first, worker()] });
    assert.equal(run.ok, true, JSON.stringify(run.calls.map((c) => c.outcome)));
    assert.deepEqual(run.attributes.groups, { nameFormat: BASIC, value: ['from-stand-in'] });
    assert.deepEqual(run.attributes.department, { nameFormat: '', value: ['research'] });
    assert.deepEqual(run.attributes.permissions, { nameFormat: BASIC, value: PERMISSIONS });
    assert.deepEqual(run.attributes['my:zitadel:grants'], { nameFormat: BASIC, value: FLAT_ROLES });
    assert.deepEqual(run.metadata.map((m) => m.key), ['saml_seen']);
    assert.equal(run.attributes['urn:custom:ms_access_token'], undefined);
    const line = await lastLine();
    assert.equal(line.function, 'function/presamlresponse');
    assert.deepEqual(line.notes, ['key "groups" already exists (an earlier target gave it)']);
  });

  it('a later stand-in that chains keeps the worker\'s attributes', async () => {
    const last = await standIn(chained({ append_attribute: [{ name: 'late', name_format: BASIC, value: ['x'] }] }));
    const run = await execute({ function: 'function/presamlresponse', context: SAML_CONTEXT, targets: [worker(), last] });
    assert.deepEqual(Object.keys(run.attributes).sort(), ['groups', 'late', 'my:zitadel:grants', 'permissions']);
  });
});

describe('errors in the chain', () => {
  let failing;
  before(async () => {
    failing = await startWorker({
      vars: { ZITADEL_DOMAIN: fake.url, ON_UPSTREAM_ERROR: 'fail', METADATA_CACHE_TTL_SECONDS: '0' },
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken },
    });
    cleanup.push(() => failing.stop());
  });

  it('with interruptOnError, the worker\'s 502 (ON_UPSTREAM_ERROR=fail) stops issuance', async () => {
    fake.reset();
    fake.fault(/metadata\/search$/, { status: 500 });
    const first = await standIn(() => ({ body: STAND_IN_ANSWER }));
    const last = await standIn(chained({}));
    const targets = [first, { url: failing.url, signingKey: KEY, interruptOnError: true }, last];
    const run = await execute({ function: AT, context: CONTEXT, targets });
    assert.equal(run.ok, false);
    assert.equal(run.error.target, 1);
    assert.equal(run.calls[1].status, 502);
    assert.equal(JSON.parse(run.calls[1].text).error, 'upstream_unavailable');
    assert.equal(last.target.calls.length, 0, 'nothing after the failing target runs');
    assert.deepEqual(run.metadata, [], 'nothing is applied');
  });

  it('without interruptOnError, the 502 is skipped and the chain goes on as it was', async () => {
    fake.reset();
    fake.fault(/metadata\/search$/, { status: 500 });
    const first = await standIn(() => ({ body: STAND_IN_ANSWER }));
    const run = await execute({ function: AT, context: CONTEXT, targets: [first, { url: failing.url, signingKey: KEY }] });
    assert.equal(run.ok, true);
    assert.match(run.calls[1].outcome, /^skipped/);
    assert.deepEqual(run.claims.department, STAND_IN_ANSWER.append_claims[0].value);
    assert.equal(run.claims.permissions, undefined);
    assert.deepEqual(run.claims[LOG_CLAIM(AT)], ['stand-in was here']);
  });

  it('a malformed response is refused with 400 invalid_payload naming the field (so ZITADEL skips the answer)', async () => {
    const cases = [
      [{ append_claims: 'not a list' }, 'response.append_claims', /is a string where an array is expected/],
      [{ append_claims: [{ value: 'no key' }] }, 'response.append_claims[0].key', /is missing/],
      [{ set_user_metadata: [{ Value: 'dg==' }] }, 'response.set_user_metadata[0].key', /is missing/],
      [{ append_log_claims: [{ line: 'not a string' }] }, 'response.append_log_claims[0]', /is an object where a string is expected/],
      ['not an object', 'response', /is a string where an object is expected/],
    ];
    for (const [response, field, problem] of cases) {
      const res = await postSigned(w.url, JSON.stringify({ ...PAYLOAD, response }), KEY);
      assertError(res, 400, 'invalid_payload');
      assert.ok(res.json.message.includes(`\`${field}\``), res.json.message);
      assert.match(res.json.message, problem);
      assert.ok(!res.json.message.includes('no key') && !res.json.message.includes('not a list'), 'no value is echoed');
    }
    const saml = { function: 'function/presamlresponse', ...SAML_CONTEXT, response: { append_attribute: [{ value: ['x'] }] } };
    const res = await postSigned(w.url, JSON.stringify(saml), KEY);
    assertError(res, 400, 'invalid_payload', /`response\.append_attribute\[0\]\.name` is missing/);
  });
});
