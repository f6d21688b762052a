// Bad input end to end: the built worker in workerd (wrangler dev), with the permissions claim
// active against the fake ZITADEL, fed bodies and headers that ZITADEL would never send. Every
// body is signed (so it reaches the decoder) except in the header cases. Each case asserts the
// exact status and error code, or a 200 with the affected claim left out; at the end the worker
// must still be healthy and must have printed no panic, no wasm trap and no secret.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { assertError, claim, postSigned, readAnswer } from '../support/calls.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { FIXTURE, FLAT_ROLES, MS_TOKEN, PAYLOAD, PAYLOAD_BYTES as RAW, PERMISSIONS, b64, now } from '../support/sample.mjs';
import { signatureHeader } from '../support/signature.mjs';
import { waitPast } from '../support/wait.mjs';
import { startWorker } from '../support/worker.mjs';

const KEY = 'bad-input-signing-key-5c1d';
const MS_CLAIM = 'urn:custom:ms_access_token';
const MiB = 1024 * 1024;

let fake;
let worker;

before(async () => {
  fake = await startFakeZitadel({ fixture: FIXTURE });
  worker = await startWorker({
    secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken },
    vars: { ZITADEL_DOMAIN: fake.url, MS_TOKEN_CLIENT_IDS: '*' },
  });
});
after(async () => {
  await worker?.stop();
  await fake?.close();
});

/** POSTs `body` (string or bytes), signed with KEY over the exact bytes unless `header` is given (null: none). */
const call = (body, options) => postSigned(worker.url, body, KEY, options);
const claimKeys = (res) => res.json.append_claims.map((c) => c.key);

/** The fixture payload with some top-level fields replaced. */
const payload = (changes = {}) => JSON.stringify({ ...structuredClone(PAYLOAD), ...changes });

/** The fixture's answer, all three claims (the baseline the claim-dropping cases differ from). */
function assertAllClaims(res) {
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(claim(res, 'permissions'), PERMISSIONS, res.text);
  assert.deepEqual(claim(res, 'my:zitadel:grants'), FLAT_ROLES, res.text);
  assert.equal(claim(res, MS_CLAIM), MS_TOKEN, res.text);
}

describe('bodies that are not JSON (400 invalid_json)', () => {
  it('the fixture itself answers all three claims (baseline)', async () => {
    assertAllClaims(await call(RAW));
  });

  const text = RAW.toString('utf8');
  const cuts = {
    'after the opening brace': 1,
    'inside the function name': text.indexOf('function/pre') + 'function/pre'.length,
    'right after "user_grants": [': text.indexOf('"user_grants": [') + '"user_grants": ['.length,
    'inside the base64 metadata value': text.indexOf('IkV3Qnd') + 20,
    'before the closing brace': text.lastIndexOf('}'),
  };
  for (const [where, at] of Object.entries(cuts)) {
    it(`truncated ${where} (byte ${at} of ${RAW.length})`, async () => {
      assertError(await call(RAW.subarray(0, at)), 400, 'invalid_json', /EOF while parsing/);
    });
  }

  it('an empty body', async () => {
    assertError(await call(''), 400, 'invalid_json', /EOF while parsing a value at line 1, column 0/);
  });

  it('whitespace only', async () => {
    assertError(await call(' \n\t\r\n  '), 400, 'invalid_json', /EOF while parsing a value/);
  });

  it('non-UTF-8 bytes inside a string the worker reads', async () => {
    const body = Buffer.concat([Buffer.from('{"function":"function/pre'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    assertError(await call(body), 400, 'invalid_json', /invalid unicode code point/);
  });

  it('a lone surrogate escape in a string the worker reads', async () => {
    assertError(await call('{"function":"\\ud800"}'), 400, 'invalid_json');
  });

  it('a UTF-8 byte order mark before the object', async () => {
    assertError(await call(`\ufeff${payload()}`), 400, 'invalid_json', /expected value at line 1, column 1/);
  });

  it('a second value after the object', async () => {
    assertError(await call(`${payload()} {}`), 400, 'invalid_json', /trailing characters/);
  });
});

describe('JSON that is not an object (400 invalid_payload)', () => {
  for (const [body, kind] of [['[]', 'an array'], ['null', 'null'], ['"str"', 'a string'], ['42', 'a number']]) {
    it(`${body} as the body`, async () => {
      const res = await call(body);
      assertError(res, 400, 'invalid_payload', new RegExp(`^The body is ${kind} where an object is expected\\.$`));
    });
  }
});

describe('fields of the wrong type (400 invalid_payload naming the field, never the value)', () => {
  const grants = (roles) => [{ ...PAYLOAD.user_grants[0], roles }];
  const cases = [
    ['roles as a string', { user_grants: grants('secret-role-value') }, 'user_grants[0].roles', 'a string', 'an array'],
    ['user_grants as an object', { user_grants: { roles: ['admin'] } }, 'user_grants', 'an object', 'an array'],
    ['user as a string', { user: 'secret-user-value' }, 'user', 'a string', 'an object'],
    ['org.id as a number', { org: { id: 312909075211944344 } }, 'org.id', 'a number', 'a string'],
    [
      'a user_metadata value as an array',
      { user_metadata: [{ key: 'microsoft_access_token', value: ['secret-metadata-value'] }] },
      'user_metadata[0].value',
      'an array',
      'a string',
    ],
    ['function as a number', { function: 7 }, 'function', 'a number', 'a string'],
    ['a null inside roles', { user_grants: grants(['admin', null]) }, 'user_grants[0].roles[1]', 'null', 'a string'],
  ];
  for (const [name, changes, path, found, expected] of cases) {
    it(name, async () => {
      const res = await call(payload(changes));
      const escaped = path.replace(/[[\].]/g, '\\$&');
      assertError(res, 400, 'invalid_payload', new RegExp(`^The field \`${escaped}\` is ${found} where ${expected} is expected\\.$`));
      assert.doesNotMatch(res.text, /secret-|312909075211944344/);
    });
  }

  it('a grant nested thousands of arrays deep (a known field: refused at the first wrong level)', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const res = await call(`{"function":"function/preaccesstoken","user_grants":${deep}}`);
    assertError(res, 400, 'invalid_payload', /`user_grants\[0\]` is an array where an object is expected/);
  });
});

describe('null and odd values where the worker tolerates them (200)', () => {
  for (const field of ['user', 'org', 'user_grants', 'user_metadata', 'application']) {
    it(`"${field}": null counts as absent`, async () => {
      const res = await call(payload({ [field]: null }));
      assert.equal(res.status, 200, res.text);
      const keys = claimKeys(res);
      if (field === 'user_grants') {
        assert.deepEqual(keys, [MS_CLAIM]); // no roles: no permissions, no flat roles
      } else if (field === 'user_metadata') {
        assert.deepEqual(keys, ['permissions', 'my:zitadel:grants']);
      } else {
        // org null: the user's resource_owner names the same organization
        assertAllClaims(res);
      }
    });
  }

  it('null in every known field but function: 200 with no claims', async () => {
    const body = { function: 'function/preaccesstoken', user: null, org: null, user_grants: null, user_metadata: null, application: null };
    const res = await call(JSON.stringify(body));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {}, "no list at all: an empty one would erase what earlier targets gave");
  });

  it('"function": null is no function (400 unsupported_function)', async () => {
    assertError(await call(payload({ function: null })), 400, 'unsupported_function', /names no `function`/);
  });

  it('arrays nested thousands deep in a field the worker does not read are skipped', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const res = await call(`{"ignored":${deep},${RAW.toString('utf8').trim().slice(1)}`);
    assertAllClaims(res);
  });

  it('a number out of every range (1e999999) in a field the worker does not read', async () => {
    const res = await call(`{"ignored":1e999999,${RAW.toString('utf8').trim().slice(1)}`);
    assertAllClaims(res);
  });

  it('non-UTF-8 bytes in a string the worker does not read are not checked', async () => {
    // "Fields the worker does not read are not validated": serde_json skips unread strings
    // without decoding them, so this is answered, not refused.
    const body = Buffer.concat([Buffer.from('{"ignored":"'), Buffer.from([0xff, 0xc0]), Buffer.from('",'), RAW.subarray(RAW.indexOf('{') + 1)]);
    assertAllClaims(await call(body));
  });

  it('a duplicate known key ("function" twice) is refused', async () => {
    const res = await call('{"function":"function/preaccesstoken","function":"function/preuserinfo"}');
    assertError(res, 400, 'invalid_payload', /^The body has the field `function` more than once\.$/);
  });

  it('a duplicate unknown key is ignored', async () => {
    const res = await call(`{"ignored":1,"ignored":"two",${RAW.toString('utf8').trim().slice(1)}`);
    assertAllClaims(res);
  });

  it('a function name of 100 000 characters is echoed bounded and printable', async () => {
    const res = await call(JSON.stringify({ function: `x\n${'y'.repeat(100_000)}` }));
    assertError(res, 400, 'unsupported_function');
    assert.ok(res.json.message.length < 400, res.json.message.length);
    assert.doesNotMatch(res.json.message, /\n/);
  });

  // Found by tests/properties.rs (nested_objects_given_as_arrays_are_invalid_payload): a known
  // object given as a JSON array was read positionally, and a longer array failed as invalid_json.
  it('a known object given as an array ("org": ["x", null]) is invalid_payload, not invalid_json', async () => {
    const res = await call(payload({ org: ['312909075211944344', null] }));
    assertError(res, 400, 'invalid_payload', /`org` is an array where an object is expected/);
  });
});

describe('sizes', () => {
  /** A signed payload padded to exactly `size` bytes. */
  function padded(size) {
    const head = '{"function":"function/preaccesstoken","pad":"';
    const tail = '"}';
    return Buffer.from(head + 'p'.repeat(size - head.length - tail.length) + tail);
  }

  it('exactly 1 MiB + 1 byte, with Content-Length: 413', async () => {
    const body = padded(MiB + 1);
    assert.equal(body.length, MiB + 1);
    assertError(await call(body), 413, 'payload_too_large', /1024 KiB/);
  });

  it('exactly 1 MiB is still read and answered', async () => {
    const res = await call(padded(MiB));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {}, "no list at all: an empty one would erase what earlier targets gave");
  });
});

describe('stored values the worker cannot read (200, that claim left out)', () => {
  it('a Microsoft token value that is not base64', async () => {
    const res = await call(payload({ user_metadata: [{ key: 'microsoft_access_token', value: '%%% not base64 %%%' }] }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(claimKeys(res), ['permissions', 'my:zitadel:grants']);
  });

  it('a Microsoft token value that is base64 of bytes that are not UTF-8', async () => {
    const res = await call(payload({ user_metadata: [{ key: 'microsoft_access_token', value: b64([0xff, 0xfe, 0xfd, 0x80]) }] }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(claimKeys(res), ['permissions', 'my:zitadel:grants']);
  });

  it('a permission mapping in ZITADEL that is not UTF-8: the other roles still count', async () => {
    const org = 'bad-input-org-not-utf8';
    fake.setMetadata(org, 'admin', ['posts:read', 'users:manage']);
    fake.setMetadata(org, 'editor', { base64: '//79gA==' }); // ff fe fd 80
    fake.setMetadata(org, 'viewer', 'posts:view');
    const res = await call(payload({ org: { id: org } }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(claim(res, 'permissions'), ['posts:read', 'users:manage', 'posts:view']);
    assert.deepEqual(claim(res, 'my:zitadel:grants'), FLAT_ROLES);
  });

  it('a permission mapping in ZITADEL\'s answer that is not base64: the other roles still count', async () => {
    const org = 'bad-input-org-not-base64';
    // The fake always base64-encodes what it stores, so the broken answer is injected.
    fake.fault(new RegExp(`^/v2/organizations/${org}/metadata/search$`), {
      status: 200,
      body: JSON.stringify({
        pagination: { totalResult: '3', appliedLimit: '100' },
        metadata: [
          { key: 'admin', value: b64('["posts:read","users:manage"]') },
          { key: 'editor', value: '%%%not*base64%%%' },
          { key: 'viewer', value: b64('posts:view') },
        ],
      }),
    });
    const res = await call(payload({ org: { id: org } }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(claim(res, 'permissions'), ['posts:read', 'users:manage', 'posts:view']);
  });
});

describe('signature header variants', () => {
  const good = () => signatureHeader(RAW, KEY);
  const parts = () => {
    const [t, v1] = good().split(',');
    return { t, v1, digest: v1.slice('v1='.length) };
  };

  it('spaces around parts, names and values, and empty parts', async () => {
    const { t, digest } = parts();
    const header = `  ${t.replace('=', ' = ')} ,, , v1 =  ${digest}  ,`;
    assertAllClaims(await call(RAW, { header }));
  });

  it('two t= entries: 401 malformed_signature', async () => {
    const { t, v1 } = parts();
    assertError(await call(RAW, { header: `${t},${t},${v1}` }), 401, 'malformed_signature', /more than one t=/);
  });

  it('the header sent twice (joined by the client with ", "): 401 malformed_signature', async () => {
    const headers = new Headers();
    headers.append('ZITADEL-Signature', good());
    headers.append('ZITADEL-Signature', good());
    const res = await readAnswer(await fetch(worker.url, { method: 'POST', body: RAW, headers }));
    assert.equal(res.status, 401);
    assert.equal(res.json.error, 'malformed_signature');
  });

  it('1000 v1= entries with the right one last: 200', async () => {
    const { t, v1 } = parts();
    const wrong = Array.from({ length: 999 }, (_, i) => `v1=${i.toString(16).padStart(64, '0')}`);
    const header = [t, ...wrong, v1].join(',');
    assert.ok(header.length > 64 * 1024, header.length);
    assertAllClaims(await call(RAW, { header }));
  });

  it('a 64 KiB header (unknown v0 entries after a good signature) reaches the worker: 200', async () => {
    const header = `${good()},v0=${'a'.repeat(64 * 1024 - good().length - 4)}`;
    assert.equal(header.length, 64 * 1024);
    assertAllClaims(await call(RAW, { header }));
  });

  it('a 200 KiB header (unknown v0 entries after a good signature) reaches the worker: 200', async () => {
    // The workerd of wrangler 4.164 reads up to about 1 MiB of request head (that of 4.86 refused
    // 128 KiB with 431), so this one reaches the worker, which parses it in one linear pass.
    assertAllClaims(await call(RAW, { header: `${good()},v0=${'a'.repeat(200 * 1024)}` }));
  });

  it('a 1 MiB header is refused by workerd itself (431 or a closed connection), never reaching the worker', async () => {
    // kj-http in workerd refuses a request head over its limit before the worker runs: it answers
    // 431 "message head is too large" and closes. The client is still writing the rest of the head
    // then, so it may see the connection reset (EPIPE, ECONNRESET) before it reads the 431; both
    // are workerd's refusal. What must never happen is the worker running, or any 5xx.
    await worker.settleLog();
    const before = worker.logLines().length;
    const header = `${good()},v0=${'a'.repeat(MiB)}`;
    const res = await call(RAW, { header }).catch((e) => ({ closed: e.cause?.code ?? e.message }));
    if (res.closed) {
      assert.match(res.closed, /^(EPIPE|ECONNRESET|UND_ERR_SOCKET|other side closed)$/, `an unexpected failure: ${res.closed}`);
    } else {
      assert.equal(res.status, 431, res.text.slice(0, 200));
      assert.equal(res.text, 'message head is too large', 'workerd answered, not the worker');
    }
    await worker.settleLog();
    assert.equal(worker.logLines().length, before, 'the worker never ran for it');
  });

  it('the header name in upper case', async () => {
    assertAllClaims(await call(RAW, { header: null, headers: { 'ZITADEL-SIGNATURE': good() } }));
  });

  it('the header name in lower case', async () => {
    assertAllClaims(await call(RAW, { header: null, headers: { 'zitadel-signature': good() } }));
  });

  it('a v1 digest in upper-case hex', async () => {
    const { t, digest } = parts();
    assertAllClaims(await call(RAW, { header: `${t},v1=${digest.toUpperCase()}` }));
  });

  it('an empty header value: 401 missing_signature', async () => {
    assertError(await call(RAW, { header: '' }), 401, 'missing_signature');
  });

  it('a t with a leading zero or a plus sign: 401 malformed_signature', async () => {
    for (const t of [`0${now()}`, `+${now()}`]) {
      assertError(await call(RAW, { t }), 401, 'malformed_signature', /not a whole number/);
    }
  });

  it('a v1 of 63 hex digits is no signature: 401 malformed_signature', async () => {
    const { t, digest } = parts();
    assertError(await call(RAW, { header: `${t},v1=${digest.slice(1)}` }), 401, 'malformed_signature', /no v1= entry/);
  });

  it('t 301 s in the past: 401 stale_signature', async () => {
    assertError(await call(RAW, { t: now() - 301 }), 401, 'stale_signature', /tolerance of 300 s/);
  });

  it('t 61 s in the future: 401 future_signature; 60 s ahead is still accepted', async () => {
    // Start early in a second, so the worker's clock reads the same second as ours.
    while (Date.now() % 1000 > 300) await waitPast(1000 - (Date.now() % 1000), 'the start of the next second');
    const t = now() + 61;
    assertError(await call(RAW, { t }), 401, 'future_signature', /61 s in the future/);
    assertAllClaims(await call(RAW, { t: now() + 60 }));
  });
});

describe('afterwards', () => {
  it('GET /healthz still answers 200, and the output has no panic, trap or secret', async () => {
    const res = await fetch(`${worker.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, 'ok');
    await worker.settleLog();
    const out = worker.output();
    assert.doesNotMatch(out, /panicked/);
    assert.doesNotMatch(out, /RuntimeError/);
    for (const secret of [KEY, fake.accessToken]) assert.ok(!out.includes(secret), `the output holds ${secret}`);
    // One log line per request that reached the worker, every one of them below 500.
    const lines = worker.logLines();
    assert.ok(lines.length >= 40, lines.length);
    for (const line of lines) assert.ok(line.status < 500, JSON.stringify(line));
  });
});
