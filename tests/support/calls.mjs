// Calls to the worker as ZITADEL makes them, and reading the answers: one helper per job, shared
// by the end-to-end tests. Every error answer is held to the same contract (assertError).
import assert from 'node:assert/strict';

import { SIGNATURE_HEADER, signatureHeader } from './signature.mjs';

/**
 * POSTs `body` (text or bytes) to `url` as ZITADEL does: JSON content type, signed with `key` now
 * (or at `t`); without `key`, unsigned. `header` replaces the signature header's value (null: no
 * header); `headers` are added; `method` and `signal` as for fetch. Returns readAnswer's object.
 */
export async function postSigned(url, body, key, { t, header, headers = {}, method = 'POST', signal } = {}) {
  const started = Date.now();
  const sig = header !== undefined ? header : key == null ? null : signatureHeader(body, key, t);
  const res = await fetch(url, {
    method,
    body: method === 'GET' ? undefined : body,
    headers: { 'content-type': 'application/json', ...(sig === null ? {} : { [SIGNATURE_HEADER]: sig }), ...headers },
    signal,
  });
  return readAnswer(res, started);
}

/**
 * Reads a fetch answer: the status, headers, the text, the text parsed as JSON (workerd's own
 * pages are text: then `{ text }`, kept readable in a failure message) and the ms since `started`.
 */
export async function readAnswer(res, started = Date.now()) {
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { text: text.slice(0, 200) };
  }
  return { status: res.status, headers: res.headers, text, json, ms: Date.now() - started };
}

/** The value of the claim `key` in a function answer (undefined when it is not there). */
export const claim = (res, key) => res.json?.append_claims?.find((c) => c.key === key)?.value;

/** Every answer of the worker, claims or error: JSON, and never stored by a cache on the way. */
export function assertJsonAnswer(res) {
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.equal(res.headers.get('cache-control'), 'no-store');
}

/** An error answer: `status`, `{ error: code, message }` with a sentence (matching `pattern`, if given). */
export function assertError(res, status, code, pattern) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json?.error, code, res.text);
  assert.equal(typeof res.json.message, 'string', res.text);
  assert.ok(res.json.message.length > 10, res.text);
  assertJsonAnswer(res);
  if (pattern) assert.match(res.json.message, pattern);
}
