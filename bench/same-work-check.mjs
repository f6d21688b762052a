// The benchmark's comparison workers must do this worker's work, so that their cost in the
// benchmark is the cost of the work itself. bench/same-work-in-js.mjs: for the benchmark's call, as
// JSON, JWT and JWE, it answers the same bytes and logs the same line (timing aside), and it
// refuses a call signed with another key. bench/exchange-in-js.mjs: for a user's token exchange,
// first and warm, it answers the same status, headers and bytes (`expires_in` may differ by up to
// two seconds, the clocks being read at different moments) and logs the same line, answers a warm
// call without an outbound call, and refuses a wrong client secret and subject tokens issued to
// another client, expired, impersonated or with a signature that does not verify, with this
// worker's bytes and line. bench.mjs runs the check of each entry before it measures it and stops
// if it fails; `node bench/same-work-check.mjs [entry]` runs it alone (after `sh scripts/build.sh`).
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BENCH_EXCHANGE_CLIENT, benchBody, benchFixture, benchJoseKeys, benchPayload, exchangeCalls, exchangeSettings, post, send } from './support.mjs';
import { startFakeZitadel } from '../tests/support/fake-zitadel.mjs';
import { startWorker, withLogLine } from '../tests/support/worker.mjs';

const KEY = 'same-work-signing-key';
const SAME_WORK = fileURLToPath(new URL('same-work-in-js.mjs', import.meta.url));
const EXCHANGE = fileURLToPath(new URL('exchange-in-js.mjs', import.meta.url));

/** The answer to one POST and the log line it made, timing aside. */
async function answerAndLine(worker, agent, body, header) {
  const { res, line } = await withLogLine(worker, () => post(worker.url, agent, body, header));
  const { duration_ms: _, ...rest } = line;
  return { ...res, line: rest };
}

/**
 * Checks that `entry` (the JavaScript twin) answers the benchmark's calls as the built worker does:
 * resolves with the names of the checks passed, throws an AssertionError naming the first that fails.
 */
export async function checkSameWork(entry = SAME_WORK) {
  const keys = await benchJoseKeys();
  const agent = new Agent({ keepAlive: true });
  const zitadel = await startFakeZitadel({ fixture: benchFixture(1) });
  let ours;
  let js;
  try {
    zitadel.setWebKeys([keys.jwk]);
    const config = {
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: zitadel.accessToken, PAYLOAD_DECRYPTION_KEY: keys.decryptionKey },
      vars: { ZITADEL_DOMAIN: zitadel.url, GROUPS_CLAIM: 'groups', MS_TOKEN_CLIENT_IDS: '*', METADATA_CACHE_TTL_SECONDS: '600' },
    };
    const started = await Promise.allSettled([startWorker(config), startWorker({ ...config, entry })]);
    [ours, js] = started.map((s) => s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const passed = [];

    // JSON: the benchmark's call with this worker's bytes and log line.
    {
      const { body, header } = benchPayload('org-0', KEY);
      await post(ours.url, agent, body, header); // fills the cache
      const expected = await answerAndLine(ours, agent, body, header);
      const actual = await answerAndLine(js, agent, body, header);
      assert.equal(expected.status, 200);
      assert.equal(expected.line.cache, 'hit');
      assert.equal(actual.status, 200);
      assert.equal(actual.text, expected.text);
      assert.deepEqual(actual.line, expected.line);
      passed.push('json');
    }

    // The same call as a JWT and as a JWE.
    for (const kind of ['jwt', 'jwe']) {
      const { body, header } = await benchBody(benchPayload('org-0', KEY), kind, keys, KEY);
      await post(ours.url, agent, body, header); // fills the caches
      await post(js.url, agent, body, header);
      const expected = await answerAndLine(ours, agent, body, header);
      const actual = await answerAndLine(js, agent, body, header);
      assert.equal(expected.status, 200, expected.text);
      assert.equal(expected.line.payload, kind);
      assert.equal(actual.status, 200, actual.text);
      assert.equal(actual.text, expected.text);
      assert.deepEqual(actual.line, expected.line);
      passed.push(kind);
    }

    // A call signed with another key is refused.
    {
      const { body, header } = benchPayload('org-0', 'another-key');
      assert.equal((await post(js.url, agent, body, header)).status, 400);
      passed.push('refuses another key');
    }
    return passed;
  } finally {
    agent.destroy();
    await Promise.all([ours?.stop(), js?.stop()]);
    await zitadel.close();
  }
}

/**
 * Checks that `entry` (the exchange's JavaScript twin) answers the benchmark's token exchange as
 * the built worker does: resolves with the names of the checks passed, throws an AssertionError
 * naming the first that fails.
 */
export async function checkSameExchange(entry = EXCHANGE) {
  const agent = new Agent({ keepAlive: true });
  const zitadel = await startFakeZitadel({ fixture: benchFixture(1), oidc: {} });
  let ours;
  let js;
  try {
    const settings = exchangeSettings(zitadel);
    const config = {
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: zitadel.accessToken, ...settings.secrets },
      vars: { ZITADEL_DOMAIN: zitadel.url, GROUPS_CLAIM: 'groups', MS_TOKEN_CLIENT_IDS: '*', ...settings.vars },
    };
    const started = await Promise.allSettled([startWorker(config), startWorker({ ...config, entry })]);
    [ours, js] = started.map((s) => s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const passed = [];
    const [call] = exchangeCalls(zitadel, 1);
    /** The answer to `call` and its log line from this worker, then from the twin, with the fake's calls each made. */
    const both = async (c, what) => {
      const answers = [];
      for (const w of [ours, js]) {
        const before = zitadel.calls.length;
        const { res, line } = await withLogLine(w, () => send(w.url, agent, c));
        const { duration_ms: _, ...rest } = line;
        const { 'content-type': type, 'cache-control': cache, pragma, 'www-authenticate': challenge } = res.headers ?? {};
        answers.push({ ...res, headers: { type, cache, pragma, challenge }, line: rest, outbound: zitadel.calls.length - before });
      }
      const [expected, actual] = answers;
      assert.equal(actual.status, expected.status, `${what}: ${actual.text}`);
      assert.deepEqual(actual.headers, expected.headers, what);
      assert.deepEqual(actual.line, expected.line, what);
      assert.equal(actual.outbound, expected.outbound, `${what}: calls to ZITADEL`);
      if (expected.status === 200) {
        // Each worker reads its clock when it answers: `expires_in` may be a second or two apart.
        const [e, a] = [JSON.parse(expected.text), JSON.parse(actual.text)];
        assert.ok(Math.abs(a.expires_in - e.expires_in) <= 2, `${what}: expires_in ${a.expires_in} against ${e.expires_in}`);
        assert.equal(actual.text.replace(/"expires_in":\d+/, `"expires_in":${e.expires_in}`), expected.text, what);
      } else {
        assert.equal(actual.text, expected.text, what);
      }
      return expected;
    };

    // The first call reads the key set and the user's sealed tokens; the next is answered from memory.
    {
      const first = await both(call, 'first exchange');
      assert.equal(first.status, 200, first.text);
      assert.equal(first.line.ms_token, 'stored');
      passed.push('first exchange');
      const warm = await both(call, 'warm exchange');
      assert.equal(warm.status, 200);
      assert.equal(warm.line.ms_token, 'cached');
      assert.equal(warm.outbound, 0, 'a warm exchange makes no outbound call');
      passed.push('warm exchange');
    }

    // Refusals: the client's secret, and subject tokens this worker does not exchange.
    {
      const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
      const wrong = { ...call, headers: { ...call.headers, authorization: basic(BENCH_EXCHANGE_CLIENT.id, 'wrong') } };
      assert.equal((await both(wrong, 'wrong secret')).status, 401);
      passed.push('refuses a wrong secret');
      const user = call.user;
      const withToken = (token) => ({ ...call, body: Buffer.from(new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(call.body.toString())), subject_token: token }).toString()) });
      const token = (options) => zitadel.issueAccessToken({ user, clientId: BENCH_EXCHANGE_CLIENT.id, ...options });
      const [h, p] = token().split('.');
      const cases = {
        subject_token_other_client: token({ clientId: '312909075212468701@shop' }),
        subject_token_expired: token({ expiresIn: -600 }),
        subject_token_impersonated: token({ act: { sub: '312909075212468999' } }),
        subject_token_signature: `${h}.${p}.${token({ expiresIn: 60 }).split('.')[2]}`,
      };
      for (const [note, subject] of Object.entries(cases)) {
        const refused = await both(withToken(subject), note);
        assert.equal(refused.status, 400, note);
        assert.deepEqual(refused.line.notes, [note]);
      }
      passed.push('refuses subject tokens of another client, expired, impersonated, forged');
    }
    return passed;
  } finally {
    agent.destroy();
    await Promise.all([ours?.stop(), js?.stop()]);
    await zitadel.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = process.argv[2] ? resolve(process.argv[2]) : SAME_WORK;
  const passed = await (entry.includes('exchange-in-js') ? checkSameExchange : checkSameWork)(entry);
  console.log(`${entry} answers as this worker does: ${passed.join(', ')}`);
}
