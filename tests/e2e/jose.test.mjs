// Signed (JWT) and encrypted (JWE) payloads end to end: the built worker in workerd, the fake
// ZITADEL serving the instance's key set at /oauth/v2/keys, and every JWS and JWE made with the
// `jose` npm package (not the worker's code) the way ZITADEL's payloadJWT and payloadJWE make them
// (docs/zitadel-contract.md §9). The same payload must give the same answer in all three forms;
// each refusal has its status and error code; the key set is fetched once and again only for a
// key it lacks; a chained execution works with a JWE target.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { CompactSign, exportJWK, exportPKCS8, generateKeyPair } from 'jose';

import { assertError, postSigned } from '../support/calls.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { FIXTURE, PAYLOAD, PAYLOAD_TEXT as RAW } from '../support/sample.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';
import { execute, startStandIn, zitadelPayload } from '../support/zitadel-executor.mjs';

const KEY = 'jose-worker-signing-key';
const { function: _function, ...CONTEXT } = PAYLOAD;
const KEYS_PATH = /^\/oauth\/v2\/keys$/;

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

/** A web key as ZITADEL keeps one: the private key, and the public JWK it publishes (kid, alg, use). */
async function webKey(alg, kid, options = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return { alg, kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A target key pair: the public key ZITADEL encrypts to, and the secret entry `<kid>:<base64 DER>`. */
async function targetKey(alg, kid, options = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options });
  const pem = await exportPKCS8(privateKey);
  const der = pem.replace(/-----[A-Z ]+-----|\s/g, '');
  return { alg, kid, publicKey, pem, secret: `${kid}:${der}` };
}

/** payloadJWT: a JWS of exactly the JSON, signed with the web key `key`. */
const jwt = (json, key) => zitadelPayload(json, { payloadType: 'PAYLOAD_TYPE_JWT', webKey: key });

/** payloadJWE: that JWS encrypted to the target key `target`, the header naming `kid`. */
const jwe = (json, web, target, kid = target.kid) =>
  zitadelPayload(json, { payloadType: 'PAYLOAD_TYPE_JWE', webKey: web, encryptionKey: { ...target, kid } });

const b64url = (s) => Buffer.from(s).toString('base64url');

const call = (w, body, key = KEY) => postSigned(w.url, body, key);

/** Every web key's public JWK. */
const ALL_WEB_KEYS = () => Object.values(keys).map((k) => k.jwk);

let fake;
let w;
let keys;
let rsaTarget;
let ecTarget;
let p384Target;
let p521Target;
let jsonAnswer;

before(async () => {
  keys = {
    rs256: await webKey('RS256', 'web-rs256'),
    es256: await webKey('ES256', 'web-es256'),
    eddsa: await webKey('EdDSA', 'web-eddsa'),
    rs384: await webKey('RS384', 'web-rs384'),
    rs512: await webKey('RS512', 'web-rs512'),
    es384: await webKey('ES384', 'web-es384'),
    es512: await webKey('ES512', 'web-es512'),
  };
  rsaTarget = await targetKey('RSA-OAEP-256', 'tk-rsa');
  ecTarget = await targetKey('ECDH-ES+A256KW', 'tk-p256');
  p384Target = await targetKey('ECDH-ES+A256KW', 'tk-p384', { crv: 'P-384' });
  p521Target = await targetKey('ECDH-ES+A256KW', 'tk-p521', { crv: 'P-521' });
  fake = await startFakeZitadel({ fixture: FIXTURE });
  cleanup.push(() => fake.close());
  fake.setWebKeys(ALL_WEB_KEYS());
  w = await startWorker({
    vars: { ZITADEL_DOMAIN: fake.url, MS_TOKEN_CLIENT_IDS: '*' },
    secrets: {
      ZITADEL_SIGNING_KEY: KEY,
      ZITADEL_ACCESS_TOKEN: fake.accessToken,
      PAYLOAD_DECRYPTION_KEY: [ecTarget, rsaTarget, p384Target, p521Target].map((t) => t.secret).join(','),
    },
  });
  cleanup.push(() => w.stop());
  jsonAnswer = await call(w, RAW);
  assert.equal(jsonAnswer.status, 200, jsonAnswer.text);
  assert.ok(jsonAnswer.json.append_claims.length >= 3, jsonAnswer.text);
});

describe('a signed payload (PAYLOAD_TYPE_JWT)', () => {
  for (const name of ['rs256', 'es256', 'eddsa', 'rs384', 'rs512', 'es384', 'es512']) {
    it(`${name}: the same answer as the JSON payload; the log line says jwt`, async () => {
      const body = await jwt(RAW, keys[name]);
      const { res, line } = await withLogLine(w, () => call(w, body));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, jsonAnswer.json);
      assert.equal(line.payload, 'jwt');
      assert.equal(line.status, 200);
    });
  }

  it('fetches the key set once for all those calls', () => {
    assert.equal(fake.callsTo(KEYS_PATH).length, 1);
    assert.equal(fake.callsTo(KEYS_PATH)[0].method, 'GET');
  });

  it('a changed payload or signature: 401 invalid_payload_signature', async () => {
    const [h, p, s] = (await jwt(RAW, keys.es256)).split('.');
    const other = b64url(RAW.replace('"sub"', '"sUb"'));
    assertError(await call(w, `${h}.${other}.${s}`), 401, 'invalid_payload_signature', /does not verify/);
    const flipped = Buffer.from(s, 'base64url');
    flipped[5] ^= 1;
    assertError(await call(w, `${h}.${p}.${flipped.toString('base64url')}`), 401, 'invalid_payload_signature');
  });

  it("another key under a known kid, an algorithm its key does not have, alg none and HS256: 401, and the worker's message names no key", async () => {
    const stranger = await webKey('ES256', keys.es256.kid);
    const res = await call(w, await jwt(RAW, stranger));
    assertError(res, 401, 'invalid_payload_signature');
    assert.ok(!res.text.includes(keys.es256.jwk.x), 'the message holds key material');
    const none = `${b64url(JSON.stringify({ alg: 'none', kid: keys.es256.kid, typ: 'JWT' }))}.${b64url(RAW)}.`;
    assertError(await call(w, none), 401, 'invalid_payload_signature', /unsigned \(alg none\)/);
    const otherAlg = await jwt(RAW, { ...keys.es384, kid: keys.es256.kid });
    assertError(await call(w, otherAlg), 401, 'invalid_payload_signature', /does not match its key/);
    const hs = await new CompactSign(Buffer.from(RAW)).setProtectedHeader({ alg: 'HS256', kid: keys.es256.kid }).sign(new TextEncoder().encode(KEY));
    assertError(await call(w, hs), 401, 'invalid_payload_signature', /shared secret/);
  });

  it('a kid the key set lacks, within a minute of the last read: 401, and the key set is not read again', async () => {
    const before = fake.callsTo(KEYS_PATH).length;
    const unknown = await webKey('ES256', 'web-unknown');
    assertError(await call(w, await jwt(RAW, unknown)), 401, 'invalid_payload_signature', /key the instance does not have/);
    assertError(await call(w, await jwt(RAW, unknown)), 401, 'invalid_payload_signature');
    assert.equal(fake.callsTo(KEYS_PATH).length, before);
  });

  it('an HMAC over other bytes is refused before the JWS is looked at', async () => {
    const body = await jwt(RAW, keys.es256);
    const before = fake.callsTo(KEYS_PATH).length;
    assertError(await call(w, body, 'not-the-key'), 401, 'invalid_signature');
    assert.equal(fake.callsTo(KEYS_PATH).length, before);
  });
});

describe('an encrypted payload (PAYLOAD_TYPE_JWE)', () => {
  for (const target of ['RSA-OAEP-256', 'ECDH-ES+A256KW on P-256', 'ECDH-ES+A256KW on P-384', 'ECDH-ES+A256KW on P-521']) {
    it(`${target}: the same answer as the JSON payload; the log line says jwe`, async () => {
      const key = { 'RSA-OAEP-256': rsaTarget, 'ECDH-ES+A256KW on P-256': ecTarget, 'ECDH-ES+A256KW on P-384': p384Target, 'ECDH-ES+A256KW on P-521': p521Target }[target];
      const body = await jwe(RAW, keys.rs256, key);
      const { res, line } = await withLogLine(w, () => call(w, body));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, jsonAnswer.json);
      assert.equal(line.payload, 'jwe');
    });
  }

  it('a kid no configured key has: each key is tried', async () => {
    const res = await call(w, await jwe(RAW, keys.es256, rsaTarget, 'renamed-in-zitadel'));
    assert.equal(res.status, 200, res.text);
  });

  it('to a key the worker does not hold: 400 undecryptable_payload', async () => {
    const stranger = await targetKey('RSA-OAEP-256', 'tk-rsa');
    assertError(await call(w, await jwe(RAW, keys.es256, stranger)), 400, 'undecryptable_payload');
  });

  it('a changed ciphertext or tag: 400 undecryptable_payload', async () => {
    const parts = (await jwe(RAW, keys.es256, ecTarget)).split('.');
    for (const at of [3, 4]) {
      const changed = [...parts];
      const bytes = Buffer.from(changed[at], 'base64url');
      bytes[0] ^= 1;
      changed[at] = bytes.toString('base64url');
      assertError(await call(w, changed.join('.')), 400, 'undecryptable_payload');
    }
  });

  it('a JWE whose JWS is signed with a stranger key: 401 invalid_payload_signature', async () => {
    const stranger = await webKey('RS256', keys.rs256.kid);
    assertError(await call(w, await jwe(RAW, stranger, ecTarget)), 401, 'invalid_payload_signature');
  });
});

describe('in a chained execution (tests/support/zitadel-executor.mjs)', () => {
  it('a JWE target after a JSON stand-in: the stand-in\'s claim and the worker\'s claims both land', async () => {
    const standIn = await startStandIn({ signingKey: 'stand-in', answer: () => ({ body: { append_claims: [{ key: 'from_stand_in', value: 1 }] } }) });
    cleanup.push(() => standIn.close());
    const run = await execute({
      function: 'function/preaccesstoken',
      context: CONTEXT,
      targets: [
        { url: standIn.url, signingKey: 'stand-in' },
        {
          url: w.url,
          signingKey: KEY,
          payloadType: 'PAYLOAD_TYPE_JWE',
          webKey: keys.eddsa,
          encryptionKey: { publicKey: ecTarget.publicKey, kid: ecTarget.kid, alg: ecTarget.alg },
        },
      ],
    });
    assert.equal(run.ok, true, JSON.stringify(run.calls.map((c) => [c.outcome, c.text])));
    assert.deepEqual(run.calls.map((c) => c.outcome), ['applied', 'applied']);
    assert.equal(run.claims.from_stand_in, 1);
    for (const { key, value } of jsonAnswer.json.append_claims) assert.deepEqual(run.claims[key], value, key);
  });
});

describe('PAYLOAD_TYPES and the key set being down', () => {
  let only;
  let fake2;
  before(async () => {
    fake2 = await startFakeZitadel({ fixture: FIXTURE });
    cleanup.push(() => fake2.close());
    fake2.setWebKeys([keys.es256.jwk]);
    only = await startWorker({
      vars: { ZITADEL_DOMAIN: fake2.url, PAYLOAD_TYPES: 'jwe', UPSTREAM_TIMEOUT_MS: '800' },
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake2.accessToken, PAYLOAD_DECRYPTION_KEY: rsaTarget.secret },
    });
    cleanup.push(() => only.stop());
  });

  it('PAYLOAD_TYPES=jwe refuses plain JSON and a JWT: 400 unsupported_payload_type', async () => {
    assertError(await call(only, RAW), 400, 'unsupported_payload_type', /plain JSON/);
    assertError(await call(only, await jwt(RAW, keys.es256)), 400, 'unsupported_payload_type', /JWT/);
    assert.equal(fake2.callsTo(KEYS_PATH).length, 0);
  });

  it('the key set hanging, then no JSON: 502 upstream_unavailable within the deadline, then 200 once it answers', async () => {
    fake2.fault(KEYS_PATH, { hang: true, times: 1 });
    const body = await jwe(RAW, keys.es256, rsaTarget);
    const started = Date.now();
    const res = await call(only, body);
    const ms = Date.now() - started;
    assertError(res, 502, 'upstream_unavailable', /oauth\/v2\/keys/);
    assert.ok(ms < 2000, `took ${ms} ms`);
    fake2.fault(KEYS_PATH, { status: 200, body: '<html>', times: 1 });
    assertError(await call(only, body), 502, 'upstream_unavailable');
    const again = await call(only, body);
    assert.equal(again.status, 200, again.text);
    assert.equal(fake2.callsTo(KEYS_PATH).length, 3);
    await only.settleLog();
    const out = only.output();
    assert.ok(!out.includes(rsaTarget.secret.split(':')[1].slice(0, 40)), 'the output holds the decryption key');
    assert.doesNotMatch(out, /panicked|RuntimeError/);
  });
});

describe('settings', () => {
  it('PAYLOAD_TYPES=jwe without PAYLOAD_DECRYPTION_KEY, or with a bad one: /healthz 503 naming the setting, never its value', async () => {
    const a = await startWorker({ vars: { ZITADEL_DOMAIN: fake.url, PAYLOAD_TYPES: 'json,jwe' }, secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken, PAYLOAD_DECRYPTION_KEY: 'tk:bm90IGEga2V5' } });
    cleanup.push(() => a.stop());
    const health = await fetch(`${a.url}/healthz`);
    assert.equal(health.status, 503);
    const text = await health.text();
    assert.deepEqual(JSON.parse(text).problems.map((p) => p.setting), ['PAYLOAD_DECRYPTION_KEY']);
    assert.ok(!text.includes('bm90IGEga2V5'), 'the value was echoed');
  });

  it('PAYLOAD_DECRYPTION_KEY as PEMs: one behind its key id, one as base64 of the PEM without an id', async () => {
    const secret = `${ecTarget.kid}:${ecTarget.pem},${Buffer.from(rsaTarget.pem).toString('base64')}`;
    const c = await startWorker({ vars: { ZITADEL_DOMAIN: fake.url, MS_TOKEN_CLIENT_IDS: '*' }, secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken, PAYLOAD_DECRYPTION_KEY: secret } });
    cleanup.push(() => c.stop());
    for (const target of [ecTarget, rsaTarget]) {
      const res = await call(c, await jwe(RAW, keys.es256, target));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, jsonAnswer.json);
    }
  });

  it('by default a JWE without PAYLOAD_DECRYPTION_KEY is refused per call: 400 unsupported_payload_type naming it', async () => {
    const b = await startWorker({ vars: { ZITADEL_DOMAIN: fake.url }, secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken } });
    cleanup.push(() => b.stop());
    assert.equal((await fetch(`${b.url}/healthz`)).status, 200);
    assertError(await call(b, await jwe(RAW, keys.es256, ecTarget)), 400, 'unsupported_payload_type', /PAYLOAD_DECRYPTION_KEY/);
    assert.equal((await call(b, await jwt(RAW, keys.es256))).status, 200);
  });
});

describe('signed payloads without the permissions claim (issue 23)', () => {
  it('ZITADEL_DOMAIN alone is enough: no API credentials are demanded for the public key set, and a JWE without PAYLOAD_DECRYPTION_KEY names that setting', async () => {
    const bare = await startWorker({
      vars: { ZITADEL_DOMAIN: fake.url, PERMISSIONS_CLAIM: '', MS_TOKEN_CLIENT_IDS: '*' },
      secrets: { ZITADEL_SIGNING_KEY: KEY },
    });
    cleanup.push(() => bare.stop());
    const health = await (await fetch(`${bare.url}/healthz`)).json();
    assert.equal(health.status, 'ok', JSON.stringify(health));
    const signed = await call(bare, await jwt(RAW, keys.es256));
    assert.equal(signed.status, 200, signed.text);
    assert.ok(signed.json.append_claims.some((c) => c.key === 'my:zitadel:grants'), signed.text);
    const res = await call(bare, await jwe(RAW, keys.es256, rsaTarget));
    assertError(res, 400, 'unsupported_payload_type', /PAYLOAD_DECRYPTION_KEY/);
  });
});
