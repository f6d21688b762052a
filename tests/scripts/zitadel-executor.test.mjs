// tests/support/zitadel-executor.mjs against stand-in targets only (no worker): the ZITADEL
// behaviour it models, each case with exact values.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { compactDecrypt, compactVerify, decodeProtectedHeader, generateKeyPair } from 'jose';

import { signatureHeader } from '../support/signature.mjs';
import { LOG_CLAIM, execute, startStandIn } from '../support/zitadel-executor.mjs';

const KEY = 'test-signing-key';
const AT = 'function/preaccesstoken';
const SAML = 'function/presamlresponse';
const b64 = (s) => Buffer.from(s).toString('base64');
const CONTEXT = { userinfo: { sub: 'u1' }, user: { id: 'u1', username: 'alice' }, application: { client_id: 'c1' } };
const FIRST_BODY = '{"function":"function/preaccesstoken","userinfo":{"sub":"u1"},"user":{"id":"u1","username":"alice"},"application":{"client_id":"c1"}}';

const opened = [];
after(() => Promise.all(opened.map((s) => s.close())));

/** A stand-in answering `answer` (a function, or the same { status, body } every time). */
async function standIn(answer = {}, signingKey = KEY) {
  const s = await startStandIn({ signingKey, answer: typeof answer === 'function' ? answer : () => answer });
  opened.push(s);
  return s;
}
const target = (s, extra = {}) => ({ url: s.url, signingKey: KEY, ...extra });
const run = (targets, extra = {}) => execute({ function: AT, context: CONTEXT, targets, ...extra });

describe('zitadel-executor: calls', () => {
  it('signs the sent body; a target with another key answers 401 and is skipped', async () => {
    const good = await standIn({ body: {} });
    const wrongKey = await standIn({ body: {} }, 'other-key');
    const out = await run([target(good), target(wrongKey)]);
    assert.equal(out.ok, true);
    assert.equal(good.calls.length, 1);
    assert.equal(good.calls[0].raw, FIRST_BODY);
    assert.equal(good.calls[0].headers['content-type'], 'application/json');
    const [call] = out.calls;
    const t = /^t=(\d+),v1=[0-9a-f]{64}$/.exec(call.signature)[1];
    assert.equal(call.signature, signatureHeader(FIRST_BODY, KEY, t));
    assert.equal(good.calls[0].headers['zitadel-signature'], call.signature);
    assert.equal(wrongKey.calls.length, 0);
    assert.deepEqual(
      out.calls.map((c) => [c.status, c.outcome]),
      [
        [200, 'applied'],
        [401, 'skipped: EXEC-dra6yamk98 Errors.Execution.Failed (HTTP 401)'],
      ],
    );
  });

  it('marshals the context in Go field order, omits empty fields and escapes HTML in the whole body', async () => {
    const s = await standIn({ body: {} });
    const context = { actor: { issuer: 'a&b' }, user_grants: [], org: { id: 'o<1>' }, user_metadata: null, userinfo: { sub: 'u\u2028' } };
    await execute({ function: 'function/preuserinfo', context, targets: [target(s)] });
    assert.equal(s.calls[0].raw, '{"function":"function/preuserinfo","userinfo":{"sub":"u\\u2028"},"org":{"id":"o\\u003c1\\u003e"},"actor":{"issuer":"a\\u0026b"}}');
  });

  it('sends the second target the first answer as `response`, Go-marshalled', async () => {
    const first = await standIn({
      body: // a string, so that -0 reaches the executor
        '{"append_log_claims":["x\u2029y"],"append_claims":[{"key":"c","value":{"z":1,"a":"<&>","m":[true,null,-0]}}],' +
        `"set_user_metadata":[{"key":"k","value":"${b64('v')}"},{"key":"n","value":null}]}`,
    });
    const second = await standIn({ body: '' });
    await run([target(first), target(second)]);
    assert.equal(
      second.calls[0].raw,
      FIRST_BODY.slice(0, -1) +
        ',"response":{"set_user_metadata":[{"State":0,"Key":"k","Value":"dg=="},{"State":0,"Key":"n","Value":null}],' +
        '"append_claims":[{"key":"c","value":{"a":"\\u003c\\u0026\\u003e","m":[true,null,-0],"z":1}}],"append_log_claims":["x\\u2029y"]}}',
    );
  });

  it('adds `"response":{}` after an answer `{}`, and nothing after an empty body', async () => {
    const empty = await standIn({ body: undefined });
    const braces = await standIn({ body: {} });
    const last = await standIn({ body: undefined });
    const out = await run([target(empty), target(braces), target(last)]);
    assert.equal(empty.calls[0].raw, FIRST_BODY);
    assert.equal(braces.calls[0].raw, FIRST_BODY);
    assert.equal(last.calls[0].raw, `${FIRST_BODY.slice(0, -1)},"response":{}}`);
    assert.deepEqual(
      out.calls.map((c) => c.outcome),
      ['empty', 'applied', 'empty'],
    );
    assert.deepEqual(out.response, { set_user_metadata: null, append_claims: null, append_log_claims: null });
    assert.deepEqual(out.claims, {});
    assert.deepEqual(out.logs, []);
  });

  it('times out after timeoutMs: skipped, or fatal with interruptOnError', async () => {
    const slow = await standIn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return { body: { append_claims: [{ key: 'late', value: 1 }] } };
    });
    const started = Date.now();
    const skipped = await run([target(slow, { timeoutMs: 50 })]);
    assert.ok(Date.now() - started < 350, `took ${Date.now() - started} ms`);
    assert.equal(skipped.ok, true);
    assert.equal(skipped.calls[0].outcome, `skipped: Post "${slow.url}": context deadline exceeded`);
    assert.deepEqual(skipped.claims, {});
    const fatal = await run([target(slow, { timeoutMs: 50, interruptOnError: true })]);
    assert.deepEqual(fatal.error, { target: 0, reason: `Post "${slow.url}": context deadline exceeded` });
  });

  it('a payload that cannot be built fails the call like any other error; encode replaces the encoder and is signed', async () => {
    const s = await standIn({ body: {} });
    const skipped = await run([target(s, { payloadType: 'PAYLOAD_TYPE_JWT' })]);
    assert.equal(skipped.ok, true);
    assert.equal(skipped.calls[0].outcome, "skipped: payload: PAYLOAD_TYPE_JWT needs the target's webKey");
    assert.equal(s.calls.length, 0);
    const fatal = await run([target(s, { payloadType: 'PAYLOAD_TYPE_JWE', interruptOnError: true })]);
    assert.deepEqual(fatal.error, { target: 0, reason: "payload: PAYLOAD_TYPE_JWE needs the target's webKey" });
    const out = await run([target(s)], { encode: async (json) => json.replace('alice', 'bob') });
    assert.equal(s.calls[0].raw, FIRST_BODY.replace('alice', 'bob'));
    assert.equal(out.calls[0].signature, signatureHeader(FIRST_BODY.replace('alice', 'bob'), KEY, out.calls[0].signature.slice(2, 12)));
  });
});

describe('zitadel-executor: signed and encrypted payloads', () => {
  it('PAYLOAD_TYPE_JWT: a JWS of exactly the JSON body, header alg, kid and typ JWT; the HMAC covers the JWS', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const s = await standIn({ body: {} });
    const out = await run([target(s, { payloadType: 'PAYLOAD_TYPE_JWT', webKey: { privateKey, kid: 'w1', alg: 'ES256' } })]);
    const jws = s.calls[0].raw;
    assert.deepEqual(decodeProtectedHeader(jws), { alg: 'ES256', kid: 'w1', typ: 'JWT' });
    const { payload } = await compactVerify(jws, publicKey);
    assert.equal(Buffer.from(payload).toString('utf8'), FIRST_BODY);
    assert.equal(out.calls[0].signature, signatureHeader(jws, KEY, out.calls[0].signature.slice(2, 12)));
  });

  it('PAYLOAD_TYPE_JWE: that JWS encrypted to the target key (A256GCM, kid, typ and cty JWT)', async () => {
    const web = await generateKeyPair('RS256');
    const enc = await generateKeyPair('ECDH-ES+A256KW');
    const s = await standIn({ body: {} });
    await run([
      target(s, {
        payloadType: 'PAYLOAD_TYPE_JWE',
        webKey: { privateKey: web.privateKey, kid: 'w1', alg: 'RS256' },
        encryptionKey: { publicKey: enc.publicKey, kid: 'e1', alg: 'ECDH-ES+A256KW' },
      }),
    ]);
    const jwe = s.calls[0].raw;
    const header = decodeProtectedHeader(jwe);
    assert.deepEqual({ ...header, epk: undefined }, { alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'e1', typ: 'JWT', cty: 'JWT', epk: undefined });
    const { plaintext } = await compactDecrypt(jwe, enc.privateKey);
    const { payload } = await compactVerify(Buffer.from(plaintext).toString('utf8'), web.publicKey);
    assert.equal(Buffer.from(payload).toString('utf8'), FIRST_BODY);
  });
});

describe('zitadel-executor: answers', () => {
  it('a present list replaces, an absent one stays, null clears; keys match case-insensitively', async () => {
    const first = await standIn({
      body: { set_user_metadata: [{ key: 'm1', value: b64('1') }], append_claims: [{ key: 'a', value: 1 }], append_log_claims: ['l1'] },
    });
    const second = await standIn({ body: { Append_Claims: [{ KEY: 'b', Value: 2 }], append_log_claims: null, unknown: 1 } });
    const third = await standIn({ body: '' });
    const out = await run([target(first), target(second), target(third)]);
    assert.deepEqual(third.calls[0].payload.response, {
      set_user_metadata: [{ State: 0, Key: 'm1', Value: 'MQ==' }],
      append_claims: [{ key: 'b', value: 2 }],
    });
    assert.deepEqual(out.claims, { b: 2 });
    assert.deepEqual(out.metadata, [{ key: 'm1', value: Buffer.from('1') }]);
    assert.deepEqual(out.logs, []);
  });

  it('non-2xx: skipped (the response stays), or fatal with interruptOnError (nothing more called or applied)', async () => {
    const claims = { existing: 'x' };
    const good = await standIn({ body: { append_claims: [{ key: 'a', value: 1 }] } });
    const broken = await standIn({ status: 500, body: { append_claims: [{ key: 'b', value: 2 }] } });
    const skipped = await run([target(good), target(broken)], { claims });
    assert.equal(skipped.ok, true);
    assert.equal(skipped.calls[1].outcome, 'skipped: EXEC-dra6yamk98 Errors.Execution.Failed (HTTP 500)');
    assert.deepEqual(skipped.claims, { existing: 'x', a: 1 });

    const never = await standIn({ body: {} });
    const fatal = await run([target(good), target(broken, { interruptOnError: true }), target(never)], { claims });
    assert.equal(fatal.ok, false);
    assert.deepEqual(fatal.error, { target: 1, reason: 'EXEC-dra6yamk98 Errors.Execution.Failed (HTTP 500)' });
    assert.deepEqual(
      fatal.calls.map((c) => c.outcome),
      ['applied', 'fatal: EXEC-dra6yamk98 Errors.Execution.Failed (HTTP 500)'],
    );
    assert.equal(never.calls.length, 0);
    assert.deepEqual(fatal.claims, { existing: 'x' });
    assert.deepEqual([fatal.metadata, fatal.logs], [[], []]);
  });

  it('a body that is not JSON: skipped, or fatal with interruptOnError', async () => {
    const good = await standIn({ body: { append_claims: [{ key: 'a', value: 1 }] } });
    const text = await standIn({ body: 'not json' });
    const next = await standIn({ body: '' });
    const skipped = await run([target(good), target(text), target(next)]);
    assert.equal(skipped.calls[1].outcome, 'skipped: ACTION-4m9s2 Errors.Execution.ResponseIsNotValidJSON');
    assert.deepEqual(next.calls[0].payload.response, { append_claims: [{ key: 'a', value: 1 }] });
    assert.deepEqual(skipped.claims, { a: 1 });
    const fatal = await run([target(text, { interruptOnError: true })]);
    assert.deepEqual(fatal.error, { target: 0, reason: 'ACTION-4m9s2 Errors.Execution.ResponseIsNotValidJSON' });
  });

  it('forwardedStatusCode / forwardedErrorMessage in a 2xx body are errors', async () => {
    const forbidden = await standIn({ body: { forwardedStatusCode: 403, forwardedErrorMessage: 'no', append_claims: [{ key: 'a', value: 1 }] } });
    const onlyMessage = await standIn({ body: { forwardedErrorMessage: 'down' } });
    const notAnInt = await standIn({ body: { forwardedStatusCode: '403', append_claims: [{ key: 'b', value: 2 }] } });
    const skipped = await run([target(forbidden), target(onlyMessage), target(notAnInt)]);
    assert.deepEqual(
      skipped.calls.map((c) => c.outcome),
      ['skipped: EXEC-reUaUZCzCp forwarded 403: no', 'skipped: EXEC-bmhNhpcqpF down', 'applied'], // a type error in ErrorBody counts as success
    );
    assert.deepEqual(skipped.claims, { b: 2 });
    const fatal = await run([target(forbidden, { interruptOnError: true })]);
    assert.deepEqual(fatal.error, { target: 0, reason: 'EXEC-reUaUZCzCp forwarded 403: no' });
  });

  it('a Go type error keeps that field, decodes the others, and counts as an error', async () => {
    // (no earlier set_user_metadata: Go would decode the new entry into the old one, golang/go#21092)
    const first = await standIn({ body: { append_log_claims: ['l1'] } });
    const partly = await standIn({
      body: { append_claims: [{ key: 7, value: 'v' }, 'x'], append_log_claims: 'oops', set_user_metadata: [{ key: 'k', value: 'YWJj!' }] },
    });
    const next = await standIn({ body: '' });
    const out = await run([target(first), target(partly), target(next)]);
    assert.equal(out.calls[1].outcome, 'applied partly: json: cannot unmarshal number into Go struct field AppendClaim.append_claims.key of type string');
    assert.deepEqual(next.calls[0].payload.response, {
      set_user_metadata: [{ State: 0, Key: 'k', Value: null }],
      append_claims: [
        { key: '', value: 'v' },
        { key: '', value: null },
      ],
      append_log_claims: ['l1'],
    });
    assert.deepEqual(out.claims, { '': 'v', [LOG_CLAIM(AT)]: ['failed to set user metadata key "k"', 'key "" already exists', 'l1'] });

    const alone = await standIn({ body: { append_log_claims: 'oops' } });
    const list = await standIn({ body: { set_user_metadata: [{ key: 'k', value: 'YWJj!' }] } });
    const array = await standIn({ body: [1] });
    const each = await run([target(alone), target(list), target(array), target(next)]);
    assert.deepEqual(
      each.calls.map((c) => c.outcome),
      [
        'applied partly: json: cannot unmarshal string into Go struct field ContextInfoResponse.append_log_claims of type []string',
        'applied partly: illegal base64 data at input byte 4',
        'skipped: json: cannot unmarshal array into Go value of type oidc.ContextInfoResponse',
        'empty',
      ],
    );
    const fatal = await run([target(alone, { interruptOnError: true }), target(next)]);
    assert.deepEqual(fatal.error, {
      target: 0,
      reason: 'json: cannot unmarshal string into Go struct field ContextInfoResponse.append_log_claims of type []string',
    });
    assert.deepEqual(fatal.response, { set_user_metadata: null, append_claims: null, append_log_claims: null });
  });

  it('JSON null is a no-op; a top-level array is skipped but still allocates the response', async () => {
    const withResponse = `${FIRST_BODY.slice(0, -1)},"response":{}}`;
    for (const [body, outcome] of [
      ['null', 'applied'],
      ['[]', 'skipped: json: cannot unmarshal array into Go value of type oidc.ContextInfoResponse'],
    ]) {
      const first = await standIn({ body });
      const seen = await standIn({ body: '' });
      const out = await run([target(first), target(seen)]);
      assert.deepEqual(
        out.calls.map((c) => c.outcome),
        [outcome, 'empty'],
      );
      assert.equal(seen.calls[0].raw, withResponse, body);
      assert.deepEqual(out.claims, {});
    }
  });
});

describe('zitadel-executor: applying the final response', () => {
  it('OIDC: metadata first, the first key wins, the reserved prefix is dropped, then the log claim', async () => {
    const claims = { 'urn:zitadel:iam:org:project:roles': { admin: {} }, existing: 'x', nulled: null };
    const s = await standIn({
      body: {
        set_user_metadata: [
          { key: '', value: b64('a') },
          { key: 'e', value: '' },
          { key: 'n', value: null },
          { key: 'ok', value: b64('a<b') },
        ],
        append_claims: [
          { key: 'k', value: 1 },
          { key: 'k', value: 2 },
          { key: 'existing', value: 'y' },
          { key: 'nulled', value: 'z' },
          { key: 'urn:zitadel:iam:org:project:roles', value: 'dropped' },
          { key: 'urn:zitadel:iam:new', value: 'dropped too' },
        ],
        append_log_claims: ['extra'],
      },
    });
    const out = await run([target(s)], { claims });
    const logs = [
      'failed to set user metadata key ""',
      'failed to set user metadata key "e"',
      'failed to set user metadata key "n"',
      'key "k" already exists',
      'key "existing" already exists',
      'extra',
    ];
    assert.equal(LOG_CLAIM(AT), 'urn:zitadel:iam:action:function/preaccesstoken:log');
    assert.deepEqual(out.claims, { ...claims, k: 1, nulled: 'z', [LOG_CLAIM(AT)]: logs });
    assert.deepEqual(out.logs, logs);
    assert.deepEqual(out.metadata, [{ key: 'ok', value: Buffer.from('a<b') }]);
    assert.equal(out.attributes, undefined);
  });

  it('OIDC: no log claim without log lines; a null entry fails the flow (Go dereferences nil)', async () => {
    const quiet = await standIn({ body: { append_claims: [{ key: 'a', value: [1] }] } });
    assert.deepEqual((await run([target(quiet)])).claims, { a: [1] });
    const nil = await standIn({ body: { set_user_metadata: [{ key: 'm', value: b64('1') }], append_claims: [null] } });
    const out = await run([target(nil)]);
    assert.equal(out.ok, false);
    assert.deepEqual(out.error, {
      target: null,
      reason: 'panic: runtime error: invalid memory address or nil pointer dereference (a null entry in append_claims)',
    });
    assert.deepEqual(out.metadata, [{ key: 'm', value: Buffer.from('1') }]);
  });

  it('SAML: its own context and response, attributes last-wins with no filter, a log attribute for metadata failures', async () => {
    const context = { user_grants: [{ roles: ['r'] }], user: { id: 'u1' } };
    const first = await standIn({
      body: {
        append_attribute: [
          { name: 'a', name_format: 'f', value: ['1'] },
          { name: 'a', name_format: 'g', value: ['2'] },
        ],
        set_user_metadata: [{ key: 'k', value: '' }],
        append_log_claims: ['not a SAML field'],
      },
    });
    const second = await standIn((payload) => ({
      body: { append_attribute: [...payload.response.append_attribute, { name: 'Email', name_format: 'basic', value: null }, { name: 'urn:zitadel:iam:x', value: ['kept'] }] },
    }));
    const attributes = { Email: { nameFormat: 'basic', value: ['old@example.com'] } };
    const out = await execute({ function: SAML, context, targets: [target(first), target(second)], attributes });
    assert.equal(first.calls[0].raw, '{"function":"function/presamlresponse","user":{"id":"u1"},"user_grants":[{"roles":["r"]}]}');
    assert.equal(
      second.calls[0].raw,
      '{"function":"function/presamlresponse","user":{"id":"u1"},"user_grants":[{"roles":["r"]}],"response":{"set_user_metadata":[{"State":0,"Key":"k","Value":""}],' +
        '"append_attribute":[{"name":"a","name_format":"f","value":["1"]},{"name":"a","name_format":"g","value":["2"]}]}}',
    );
    assert.equal(out.ok, true);
    assert.deepEqual(out.attributes, {
      Email: { nameFormat: 'basic', value: null },
      a: { nameFormat: 'g', value: ['2'] },
      'urn:zitadel:iam:x': { nameFormat: '', value: ['kept'] },
      'urn:zitadel:iam:action:function/presamlresponse:log': { nameFormat: '', value: ['failed to set user metadata key "k"'] },
    });
    assert.deepEqual(out.logs, ['failed to set user metadata key "k"']);
    assert.equal(out.claims, undefined);
    await assert.rejects(execute({ function: SAML, context: { org: {} }, targets: [] }), /has no field org/);
  });
});
