// A call is judged by its `ZITADEL-Signature` header before its body is read (issue 23): no header,
// a malformed one, or a timestamp outside the window gets its 401 while the body is still arriving.
// wrangler dev drains a request's body before it sends any answer, which production does not do,
// so the worker runs here with WRANGLER_DISABLE_REQUEST_BODY_DRAINING=true. Each request sends its
// headers and the first 64 KiB of a 1 MiB body, then waits: an answer that comes in that pause came
// without the body. A header in its window is the control: its body is read, so its answer waits
// for the rest of the body.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';

import { signatureHeader } from '../support/signature.mjs';
import { startWorker } from '../support/worker.mjs';

const KEY = 'refuse-unread-key';
const BODY_BYTES = 1 << 20;
const FIRST = 64 * 1024;
const PAUSE_MS = 3000;

let w;
before(async () => {
  w = await startWorker({
    secrets: { ZITADEL_SIGNING_KEY: KEY },
    vars: { PERMISSIONS_CLAIM: '', FLAT_ROLES_CLAIM: '', MS_TOKEN_CLAIM: '' },
    env: { WRANGLER_DISABLE_REQUEST_BODY_DRAINING: 'true' },
  });
});
after(async () => {
  await w?.stop();
});

/**
 * POSTs a 1 MiB body with `signature` (null: no header): its first 64 KiB, a pause of 3 s, then the
 * rest. Resolves with the status, the answer's body, and whether the answer came during the pause.
 */
function postSlowly(signature) {
  return new Promise((resolve, reject) => {
    const body = Buffer.alloc(BODY_BYTES, 0x20);
    const headers = { 'content-type': 'application/json', 'content-length': String(BODY_BYTES) };
    if (signature !== null) headers['zitadel-signature'] = signature;
    const url = new URL(w.url);
    let paused = true;
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/', headers }, (res) => {
      const during = paused;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), duringPause: during }));
    });
    req.on('error', (e) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    req.write(body.subarray(0, FIRST));
    setTimeout(() => {
      paused = false;
      if (!req.destroyed) req.end(body.subarray(FIRST));
    }, PAUSE_MS);
  });
}

describe('a call refused by its header is refused before its body is read', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases = [
    ['no header', null, 'missing_signature'],
    ['a malformed header', 't=soon,v1=00', 'malformed_signature'],
    ['a stale timestamp', signatureHeader('{}', KEY, now() - 301), 'stale_signature'],
    ['a timestamp ahead', signatureHeader('{}', KEY, now() + 120), 'future_signature'],
  ];
  for (const [what, header, code] of cases) {
    it(`${what}: 401 ${code} while the body is still being sent`, async () => {
      const res = await postSlowly(header);
      assert.equal(res.status, 401, res.body);
      assert.equal(JSON.parse(res.body).error, code);
      assert.ok(res.duringPause, 'the answer waited for the body');
    });
  }

  it('a header in its window gets its body read: the answer waits for it (the control)', async () => {
    const res = await postSlowly(signatureHeader('not this body', KEY));
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.body).error, 'invalid_signature');
    assert.ok(!res.duringPause, 'answered before the body was read');
  });
});
