// Signs a body the way ZITADEL does (pkg/actions/signing.go): header `t=<unix>,v1=<hex>` where
// v1 = HMAC-SHA256(key as UTF-8, "<t>." + raw body). Written independently of the Rust verifier,
// so the end-to-end tests check the worker against the protocol, not against itself.
import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'ZITADEL-Signature';

export function signatureHeader(body, keys, t = Math.floor(Date.now() / 1000)) {
  const list = Array.isArray(keys) ? keys : [keys];
  const parts = [`t=${t}`];
  for (const key of list) {
    const mac = createHmac('sha256', Buffer.from(key, 'utf8'));
    mac.update(`${t}.`);
    mac.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
    parts.push(`v1=${mac.digest('hex')}`);
  }
  return parts.join(',');
}
