// The benchmark's comparison worker bench/same-work-in-js.mjs must do this worker's work: for the
// benchmark's call, as JSON, JWT and JWE, it answers the same bytes and logs the same line (timing
// aside), so that its cost in the benchmark is the cost of the work itself; and it refuses a call
// signed with another key. bench.mjs runs this check before it measures that entry and stops if it
// fails; `node bench/same-work-check.mjs [entry]` runs it alone (after `sh scripts/build.sh`).
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { benchBody, benchFixture, benchJoseKeys, benchPayload, post } from './support.mjs';
import { startFakeZitadel } from '../tests/support/fake-zitadel.mjs';
import { startWorker, withLogLine } from '../tests/support/worker.mjs';

const KEY = 'same-work-signing-key';
const SAME_WORK = fileURLToPath(new URL('same-work-in-js.mjs', import.meta.url));

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

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = process.argv[2] ? resolve(process.argv[2]) : SAME_WORK;
  const passed = await checkSameWork(entry);
  console.log(`${entry} answers as this worker does: ${passed.join(', ')}`);
}
