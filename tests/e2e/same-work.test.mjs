// The benchmark's comparison worker bench/same-work-in-js.mjs must do this worker's work: for the
// benchmark's call it answers the same bytes and logs the same line (timing aside), so that its
// cost in the benchmark is the cost of the work itself.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';

import { benchBody, benchFixture, benchJoseKeys, benchPayload, post } from '../../bench/support.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const KEY = 'same-work-signing-key';
const SAME_WORK = fileURLToPath(new URL('../../bench/same-work-in-js.mjs', import.meta.url));

/** The answer to one POST and the log line it made, timing aside. */
async function answerAndLine(worker, agent, body, header) {
  const { res, line } = await withLogLine(worker, () => post(worker.url, agent, body, header));
  const { duration_ms: _, ...rest } = line;
  return { ...res, line: rest };
}

describe('bench/same-work-in-js.mjs', () => {
  let zitadel;
  let ours;
  let js;
  let keys;
  const agent = new Agent({ keepAlive: true });
  before(async () => {
    keys = await benchJoseKeys();
    zitadel = await startFakeZitadel({ fixture: benchFixture(1) });
    zitadel.setWebKeys([keys.jwk]);
    const config = {
      secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: zitadel.accessToken, PAYLOAD_DECRYPTION_KEY: keys.decryptionKey },
      vars: { ZITADEL_DOMAIN: zitadel.url, GROUPS_CLAIM: 'groups', METADATA_CACHE_TTL_SECONDS: '600' },
    };
    [ours, js] = await Promise.all([startWorker(config), startWorker({ ...config, entry: SAME_WORK })]);
  });
  after(async () => {
    agent.destroy();
    await Promise.all([ours?.stop(), js?.stop()]);
    await zitadel?.close();
  });

  it("answers the benchmark's call with this worker's bytes and log line", async () => {
    const { body, header } = benchPayload('org-0', KEY);
    await post(ours.url, agent, body, header); // fills the cache
    const expected = await answerAndLine(ours, agent, body, header);
    const actual = await answerAndLine(js, agent, body, header);
    assert.equal(expected.status, 200);
    assert.equal(expected.line.cache, 'hit');
    assert.equal(actual.status, 200);
    assert.equal(actual.text, expected.text);
    assert.deepEqual(actual.line, expected.line);
  });

  for (const kind of ['jwt', 'jwe']) {
    it(`answers the benchmark's call as a ${kind.toUpperCase()} with this worker's bytes and log line`, async () => {
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
    });
  }

  it('refuses a call signed with another key', async () => {
    const { body, header } = benchPayload('org-0', 'another-key');
    assert.equal((await post(js.url, agent, body, header)).status, 400);
  });
});
