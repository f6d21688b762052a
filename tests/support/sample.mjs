// The sample data the end-to-end files share: the fake ZITADEL's seed (tests/fixtures/zitadel/
// test.json), the preaccesstoken payload ZITADEL sends for its user (tests/fixtures/payloads/
// preaccesstoken.json) and what the worker answers for it; and small encoders.
import { readFileSync } from 'node:fs';

import { loadFixture } from './fake-zitadel.mjs';

/** The fake ZITADEL's seed data. */
export const FIXTURE = loadFixture(new URL('../fixtures/zitadel/test.json', import.meta.url));
/** The sample preaccesstoken payload, as the bytes ZITADEL sends. */
export const PAYLOAD_BYTES = readFileSync(new URL('../fixtures/payloads/preaccesstoken.json', import.meta.url));
/** The same payload as text. */
export const PAYLOAD_TEXT = PAYLOAD_BYTES.toString('utf8');
/** The same payload parsed (clone it before changing it). */
export const PAYLOAD = JSON.parse(PAYLOAD_TEXT);
/** The payload's organization. */
export const ORG = '312909075211944344';
/** The Microsoft token the payload's user metadata holds (stored JSON-quoted by the V1 action). */
export const MS_TOKEN = JSON.parse(Buffer.from(PAYLOAD.user_metadata[0].value, 'base64').toString('utf8'));
/** The permissions the fixture maps the payload's roles to, in first-seen order. */
export const PERMISSIONS = ['posts:read', 'posts:write', 'users:manage'];
/** The payload's grants as flat roles, `{projectId}:{role}`. */
export const FLAT_ROLES = ['312909075212861848:admin', '312909075212861848:editor', '312909075214958999:viewer'];

/** Standard base64 of text (as UTF-8) or bytes. */
export const b64 = (data) => Buffer.from(data).toString('base64');
/** The time now in whole seconds, as a signature's `t`. */
export const now = () => Math.floor(Date.now() / 1000);
