// What one tenant can cost the isolate (issue 23): an organization owner can store 560 metadata
// entries of 7 KB each, within every ZITADEL limit. Three such organizations, each read by a call
// with roles, used to take the worker's wasm memory to 54.8 MiB (of an isolate's 128 MB). With the
// mapping budget (PERMISSIONS_MAPPING_MAX_BYTES, 1 MiB by default) each call is answered 200 without
// `permissions`, /healthz stays 200, and the wasm memory stays under 48 MiB.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { claim, postSigned } from '../support/calls.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { FIXTURE, FLAT_ROLES, PAYLOAD } from '../support/sample.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const KEY = 'memory-signing-key';
const ORGS = ['tenant-a', 'tenant-b', 'tenant-c'];
const ENTRIES = 560;
const VALUE_BYTES = 7 * 1024;

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

/** A role's permissions as a JSON array of about 7 KB. */
function bigValue(role) {
  const permissions = [];
  let size = 2;
  for (let i = 0; size < VALUE_BYTES; i += 1) {
    const p = `${role}:permission-${String(i).padStart(4, '0')}`;
    permissions.push(p);
    size += p.length + 3;
  }
  return permissions;
}

let fake;
let w;
before(async () => {
  fake = await startFakeZitadel({ fixture: FIXTURE });
  cleanup.push(() => fake.close());
  for (const org of ORGS) {
    for (let i = 0; i < ENTRIES; i += 1) fake.setMetadata(org, `role-${String(i).padStart(3, '0')}`, bigValue(`r${i}`));
  }
  w = await startWorker({
    vars: { ZITADEL_DOMAIN: fake.url, MS_TOKEN_CLAIM: '' },
    secrets: { ZITADEL_SIGNING_KEY: KEY, ZITADEL_ACCESS_TOKEN: fake.accessToken },
  });
  cleanup.push(() => w.stop());
});

const call = (org) => {
  const payload = structuredClone(PAYLOAD);
  payload.org = { id: org };
  payload.user_grants = [{ ...payload.user_grants[0], roles: ['role-000', 'role-559'] }];
  return postSigned(w.url, JSON.stringify(payload), KEY);
};

describe('three organizations of 560 entries of 7 KB each', () => {
  it('each call is answered 200 without permissions, the reading stopped at the budget', async () => {
    for (const org of ORGS) {
      const { res, line } = await withLogLine(w, () => call(org));
      assert.equal(res.status, 200, res.text);
      assert.equal(claim(res, 'permissions'), undefined);
      assert.ok(claim(res, 'my:zitadel:grants'), 'the rest of the answer is there');
      assert.equal(line.upstream_error, 'mapping_too_large');
      const pages = fake.callsTo(new RegExp(`/organizations/${org}/metadata/search$`)).length;
      assert.ok(pages <= 2, `${pages} pages read of 6`);
    }
  });

  it('in parallel too; /healthz stays 200 and the wasm memory under 48 MiB', async () => {
    const answers = await Promise.all([...ORGS, ...ORGS].map((org) => call(org)));
    for (const res of answers) assert.equal(res.status, 200, res.text);
    const res = await fetch(`${w.url}/healthz`);
    assert.equal(res.status, 200);
    const health = await res.json();
    console.log(`wasm_memory_bytes after the calls: ${health.wasm_memory_bytes}`);
    assert.ok(health.wasm_memory_bytes < 48 * 1024 * 1024, `wasm memory ${(health.wasm_memory_bytes / 1048576).toFixed(1)} MiB`);
  });

  it('a mapping within the budget still gives its permissions beside them', async () => {
    fake.setMetadata('small-org', 'admin', ['posts:read']);
    const payload = structuredClone(PAYLOAD);
    payload.org = { id: 'small-org' };
    const res = await postSigned(w.url, JSON.stringify(payload), KEY);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(claim(res, 'permissions'), ['posts:read']);
    assert.deepEqual(claim(res, 'my:zitadel:grants'), FLAT_ROLES);
  });
});
