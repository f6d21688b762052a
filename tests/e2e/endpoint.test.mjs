// The endpoint contract end to end: the built worker in workerd (wrangler dev), called the way
// ZITADEL calls it, and every row of the error contract.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { assertError, assertJsonAnswer, postSigned, readAnswer } from '../support/calls.mjs';
import { PAYLOAD_BYTES as PAYLOAD, now } from '../support/sample.mjs';
import { signatureHeader } from '../support/signature.mjs';
import { startWorker } from '../support/worker.mjs';

const KEY = 'e2e-signing-key';
const OLD_KEY = 'e2e-old-key';
const MACHINE = readFileSync(new URL('../fixtures/payloads/preuserinfo-machine.json', import.meta.url));

let worker;

before(async () => {
  // Every claim off: this file is about the endpoint contract; claims.test.mjs covers the claims.
  worker = await startWorker({
    secrets: { ZITADEL_SIGNING_KEY: `${KEY}, ${OLD_KEY}` },
    vars: { PERMISSIONS_CLAIM: '', FLAT_ROLES_CLAIM: '', MS_TOKEN_CLAIM: '' },
  });
});
after(async () => {
  await worker?.stop();
});

/** POSTs `body` to `path`, signed with `key` (KEY) unless `header` is given (null: none). */
const call = (body, { path = '/', key = KEY, ...options } = {}) => postSigned(worker.url + path, body, key, options);

describe('happy path', () => {
  for (const path of ['/', '/zitadel/complement-token']) {
    it(`preaccesstoken on ${path} answers the response shape`, async () => {
      const res = await call(PAYLOAD, { path });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, {}, "no list at all: an empty one would erase what earlier targets gave");
      assertJsonAnswer(res);
    });
    it(`preuserinfo on ${path} answers the response shape`, async () => {
      const res = await call(MACHINE, { path });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, {}, "no list at all: an empty one would erase what earlier targets gave");
    });
  }

  it('accepts the bare function names', async () => {
    for (const fn of ['preaccesstoken', 'preuserinfo']) {
      const res = await call(JSON.stringify({ function: fn }));
      assert.equal(res.status, 200, `${fn}: ${res.text}`);
    }
  });

  it('accepts a call signed with the second configured key (rotation)', async () => {
    assert.equal((await call(PAYLOAD, { key: OLD_KEY })).status, 200);
  });

  it('accepts the header name in any case and spaces in the header', async () => {
    const sig = signatureHeader(PAYLOAD, KEY).replace(',', ' , ');
    const res = await call(PAYLOAD, { header: null, headers: { 'zitadel-signature': sig } });
    assert.equal(res.status, 200, res.text);
  });

  it('accepts a header with several v1 entries, one of them ours', async () => {
    const sig = signatureHeader(PAYLOAD, ['not-our-key', KEY]);
    assert.equal((await call(PAYLOAD, { header: sig })).status, 200);
  });
});

describe('signature errors (401)', () => {
  it('missing_signature without the header', async () => {
    assertError(await call(PAYLOAD, { header: null }), 401, 'missing_signature');
  });

  it('malformed_signature for a header without t, a non-numeric t, two t, or no hex v1', async () => {
    const good = signatureHeader(PAYLOAD, KEY);
    const v1 = good.split(',')[1];
    for (const header of [v1, `t=abc,${v1}`, `t=${now()},t=${now()},${v1}`, `t=${now()},v1=zz`]) {
      assertError(await call(PAYLOAD, { header }), 401, 'malformed_signature');
    }
  });

  it('invalid_signature for another key, a changed body, or hex(hmac(body)) alone', async () => {
    assertError(await call(PAYLOAD, { key: 'wrong-key' }), 401, 'invalid_signature');
    const header = signatureHeader(PAYLOAD, KEY);
    const changed = Buffer.from(PAYLOAD);
    changed[10] ^= 1;
    assertError(await call(changed, { header }), 401, 'invalid_signature');
    // The MAC over the body alone, without the "<t>." prefix, proves nothing about the time.
    const bodyOnly = createHmac('sha256', Buffer.from(KEY, 'utf8')).update(PAYLOAD).digest('hex');
    assertError(await call(PAYLOAD, { header: `t=${now()},v1=${bodyOnly}` }), 401, 'invalid_signature');
  });

  it('stale_signature says how old and the tolerance', async () => {
    const res = await call(PAYLOAD, { t: now() - 400 });
    assertError(res, 401, 'stale_signature');
    assert.match(res.json.message, /(399|400|401|402) s old/);
    assert.match(res.json.message, /tolerance of 300 s/);
  });

  it('future_signature beyond 60 s ahead; within 60 s is fine', async () => {
    assertError(await call(PAYLOAD, { t: now() + 120 }), 401, 'future_signature');
    assert.equal((await call(PAYLOAD, { t: now() + 30 })).status, 200);
  });

  it('the signature is checked before the body is parsed', async () => {
    assertError(await call('not json', { header: null }), 401, 'missing_signature');
  });
});

describe('payload errors (400)', () => {
  it('invalid_json with line and column', async () => {
    const res = await call('{\n  "function": "function/preaccesstoken",\n  oops\n}');
    assertError(res, 400, 'invalid_json');
    assert.match(res.json.message, /line 3, column 3/);
  });

  it('invalid_payload names the field of the wrong type, not its value', async () => {
    const res = await call(JSON.stringify({ function: 'preaccesstoken', user_grants: [{ roles: 'secret-role' }] }));
    assertError(res, 400, 'invalid_payload');
    assert.match(res.json.message, /user_grants\[0\]\.roles/);
    assert.doesNotMatch(res.text, /secret-role/);
  });

  it('unsupported_function names the function received and the supported ones', async () => {
    const res = await call(JSON.stringify({ function: 'function/preotpsmscode' }));
    assertError(res, 400, 'unsupported_function');
    assert.match(res.json.message, /function\/preotpsmscode/);
    assert.match(res.json.message, /function\/preaccesstoken, function\/preuserinfo, function\/presamlresponse/);
    assertError(await call('{}'), 400, 'unsupported_function');
  });
});

describe('HTTP errors', () => {
  it('405 with an Allow header for the wrong method', async () => {
    const res = await call(null, { method: 'GET', header: null });
    assertError(res, 405, 'method_not_allowed');
    assert.equal(res.headers.get('allow'), 'POST');
    const health = await fetch(`${worker.url}/healthz`, { method: 'POST' });
    assert.equal(health.status, 405);
    assert.equal(health.headers.get('allow'), 'GET');
  });

  it('404 for unknown paths', async () => {
    assertError(await call(PAYLOAD, { path: '/nope' }), 404, 'not_found');
  });

  it('413 for a body over 1 MiB with Content-Length, before reading it', async () => {
    // The header in its window first (a call without one is refused before its size matters).
    const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
    assertError(await call(big), 413, 'payload_too_large');
  });

  it('413 for a streamed body over 1 MiB without Content-Length', async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream({
      pull(controller) {
        if (sent > 1024 * 1024) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const headers = { 'zitadel-signature': signatureHeader('{}', KEY) };
    const res = await readAnswer(await fetch(worker.url, { method: 'POST', body: stream, duplex: 'half', headers }));
    assert.equal(res.status, 413);
    assert.equal(res.json.error, 'payload_too_large');
    // and the next call on the same connection is served normally
    assert.equal((await call(PAYLOAD)).status, 200);
  });

  it('a signed call streamed without Content-Length, 100 bytes a chunk, is read whole', async () => {
    let at = 0;
    const stream = new ReadableStream({
      pull(controller) {
        if (at >= PAYLOAD.length) return controller.close();
        controller.enqueue(new Uint8Array(PAYLOAD.subarray(at, at + 100)));
        at += 100;
      },
    });
    const headers = { 'ZITADEL-Signature': signatureHeader(PAYLOAD, KEY) };
    const res = await fetch(worker.url, { method: 'POST', body: stream, duplex: 'half', headers });
    assert.equal(res.status, 200);
    assert.ok(at > 1000, 'sent in many chunks');
    assert.deepEqual(await res.json(), (await call(PAYLOAD)).json, 'the same answer as with Content-Length');
  });

  it('exactly 1 MiB is still read (and then judged by its signature)', async () => {
    const body = Buffer.alloc(1024 * 1024, 0x20);
    assertError(await call(body), 400, 'invalid_json');
  });
});

describe('health and logs', () => {
  it('GET /healthz reports ok, the version, the wasm memory size, how MACs are computed and the features', async () => {
    const res = await fetch(`${worker.url}/healthz`);
    const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url))).version;
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.ok(Number.isInteger(body.wasm_memory_bytes) && body.wasm_memory_bytes > 0, JSON.stringify(body));
    // The calls above were signed: this isolate has computed MACs, with WebCrypto.
    // Every claim is off here (the empty names), each with the setting that turns it on.
    const features = [
      { name: 'permissions', on: false, needs: ['PERMISSIONS_CLAIM'] },
      { name: 'flat_roles', on: false, needs: ['FLAT_ROLES_CLAIM'] },
      { name: 'groups', on: false, needs: ['GROUPS_CLAIM'] },
      { name: 'microsoft_token_claim', on: false, needs: ['MS_TOKEN_CLAIM'] },
      { name: 'microsoft_sign_in_capture', on: false, needs: ['MS_TOKEN_CLAIM'] },
      { name: 'microsoft_refresh', on: false, needs: ['MS_TOKEN_CLAIM'] },
      { name: 'token_sealing', on: false, needs: ['TOKEN_SEALING_KEY'] },
      { name: 'microsoft_connect', on: false, needs: ['ZITADEL_DOMAIN', 'MS_TOKEN_CLAIM', 'TOKEN_SEALING_KEY', 'CONNECT_CLIENT_ID', 'CONNECT_RETURN_URLS'] },
      { name: 'token_exchange', on: false, needs: ['ZITADEL_DOMAIN', 'MS_TOKEN_CLAIM', 'TOKEN_SEALING_KEY', 'CONNECT_CLIENT_ID', 'CONNECT_RETURN_URLS', 'TOKEN_EXCHANGE_CLIENTS'] },
    ];
    assert.deepEqual({ ...body, wasm_memory_bytes: 0 }, { status: 'ok', version, wasm_memory_bytes: 0, mac: 'webcrypto', features });
  });

  it('writes one JSON log line per request with ids and outcome, never a key or token', async () => {
    await worker.settleLog();
    const before = worker.logLines().length;
    await call(PAYLOAD, { path: '/zitadel/complement-token' });
    await call(PAYLOAD, { key: 'wrong-key' });
    await worker.settleLog();
    const lines = worker.logLines().slice(before);
    assert.equal(lines.length, 2, worker.output());
    assert.deepEqual(
      { ...lines[0], duration_ms: 0 },
      {
        method: 'POST', path: '/zitadel/complement-token', function: 'function/preaccesstoken', payload: 'json',
        user_id: '312909075212468632', org_id: '312909075211944344', outcome: 'ok', status: 200, claims: [], duration_ms: 0,
      },
    );
    assert.equal(lines[1].outcome, 'invalid_signature');
    assert.equal(lines[1].status, 401);
    assert.equal(lines[1].payload, undefined, 'the kind is read only after the signature holds');
    const out = worker.output();
    for (const secret of [KEY, OLD_KEY, 'wrong-key']) assert.ok(!out.includes(secret), `log contains ${secret}`);
  });

  it("computes every MAC with the runtime's WebCrypto, never falling back to the one in wasm", async () => {
    const res = await call(PAYLOAD, { key: OLD_KEY });
    assert.equal(res.status, 200);
    await worker.settleLog();
    assert.ok(worker.logLines().length > 10, 'the calls above were made');
    assert.ok(!worker.output().includes('webcrypto_hmac_failed'), worker.output().slice(-2000));
    assert.equal((await fetch(`${worker.url}/healthz`).then((r) => r.json())).mac, 'webcrypto');
  });
});
