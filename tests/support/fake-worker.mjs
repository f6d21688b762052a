// Stands in for the deployed worker in the setup tests. What `wrangler secret put` stores reaches
// it the way it reaches a deployed worker: the fake wrangler (FAKE_WRANGLER_WORKER=<its url>)
// posts each secret to `/__secrets` after the put. It answers as the worker does:
// - `GET /healthz`: 503 `misconfigured` naming each `required` secret it does not hold (or the
//   answer `setHealth` forces), else 200 `ok`;
// - `POST /` and `POST /zitadel/complement-token`: the `ZITADEL-Signature` checked against the
//   keys of ZITADEL_SIGNING_KEY (ZITADEL's HMAC, written here independently of the tool), then 200
//   with a permissions claim, or 401 `invalid_signature`;
// - anything else: 404 `not_found`.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

export async function startFakeWorker({ required = ['ZITADEL_SIGNING_KEY'] } = {}) {
  const secrets = new Map();
  const calls = [];
  let forced; // { status, body } answered by /healthz instead
  let sampleAnswer; // { status, body } answered to a good signature instead

  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const signed = (header, body) => {
    const t = /(?:^|,)t=(\d+)/.exec(header ?? '')?.[1];
    const macs = [...(header ?? '').matchAll(/v1=([0-9a-f]{64})/g)].map((m) => Buffer.from(m[1], 'hex'));
    const keys = (secrets.get('ZITADEL_SIGNING_KEY') ?? '').split(',').filter(Boolean);
    return Boolean(t) && keys.some((key) => {
      const mac = createHmac('sha256', Buffer.from(key, 'utf8')).update(`${t}.`).update(body).digest();
      return macs.some((m) => timingSafeEqual(m, mac));
    });
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = new URL(req.url, 'http://x').pathname;
      calls.push({ method: req.method, path, signature: req.headers['zitadel-signature'], authorization: req.headers.authorization });
      if (req.method === 'POST' && path === '/__secrets') {
        const { name, value } = JSON.parse(body.toString('utf8'));
        secrets.set(name, value);
        return json(res, 200, {});
      }
      if (req.method === 'GET' && path === '/healthz') {
        if (forced) return json(res, forced.status, forced.body);
        const missing = required.filter((name) => !secrets.has(name));
        if (missing.length) {
          return json(res, 503, { status: 'misconfigured', version: '0.1.0', problems: missing.map((setting) => ({ setting, problem: 'is not set' })) });
        }
        return json(res, 200, { status: 'ok', version: '0.1.0' });
      }
      if (req.method === 'POST' && (path === '/' || path === '/zitadel/complement-token')) {
        if (!signed(req.headers['zitadel-signature'], body)) {
          return json(res, 401, { error: 'invalid_signature', message: 'no v1 matches the body under any configured key' });
        }
        if (sampleAnswer) return json(res, sampleAnswer.status, sampleAnswer.body);
        return json(res, 200, { append_claims: [{ key: 'permissions', value: ['read', 'write'] }] });
      }
      return json(res, 404, { error: 'not_found', message: `no route ${req.method} ${path}` });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    secrets,
    calls,
    /** The posts that carried a signature: the sample calls. */
    samples: () => calls.filter((c) => c.method === 'POST' && c.path !== '/__secrets'),
    setHealth(status, body) {
      forced = status === undefined ? undefined : { status, body };
    },
    setSampleAnswer(status, body) {
      sampleAnswer = status === undefined ? undefined : { status, body };
    },
    reset() {
      secrets.clear();
      calls.length = 0;
      forced = undefined;
      sampleAnswer = undefined;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
