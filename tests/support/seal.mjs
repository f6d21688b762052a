// Sealed values (crates/core/src/seal.rs) made and opened in Node, independently of the worker: the
// tests open what the worker wrote to check it is the token it should be, and seal values of their
// own (a flow state that has expired) to reach states no request can. The format:
// `sealed:v1:<key id>:<iv>:<ciphertext and tag>`, AES-256-GCM, IV and ciphertext in unpadded
// base64url; the associated data is a sequence of length-prefixed parts (4 bytes big-endian, then
// the UTF-8): `zitadel-claims-worker/sealed/v1`, the purpose, the purpose's own parts.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const DOMAIN = 'zitadel-claims-worker/sealed/v1';

/** A TOKEN_SEALING_KEY item with a fresh random key: `<id>:<base64 of 32 bytes>`. */
export const newSealingKey = (id = 'k1') => `${id}:${randomBytes(32).toString('base64')}`;

function framed(parts) {
  return Buffer.concat(parts.flatMap((part) => {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return [length, bytes];
  }));
}

/** The associated data of a value in the metadata `key` of the user `user`. */
export const metadataAad = (user, key) => framed([DOMAIN, 'metadata', user, key]);
/** The associated data of the connect flow's state cookie of `flow` (the provider's name). */
export const connectStateAad = (flow) => framed([DOMAIN, 'connect-state', flow]);

/** The keys of a TOKEN_SEALING_KEY value, in order: [{ id, key }]. */
function keysOf(setting) {
  return setting.split(',').map((item) => {
    const i = item.trim().indexOf(':');
    return { id: item.trim().slice(0, i), key: Buffer.from(item.trim().slice(i + 1), 'base64') };
  });
}

/** `plaintext` (text or bytes) sealed for `aad` under the first key of `setting`. */
export function seal(setting, aad, plaintext) {
  const { id, key } = keysOf(setting)[0];
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const sealed = Buffer.concat([cipher.update(Buffer.from(plaintext)), cipher.final(), cipher.getAuthTag()]);
  return `sealed:v1:${id}:${iv.toString('base64url')}:${sealed.toString('base64url')}`;
}

/** The plaintext (a Buffer) of `value` sealed for `aad` under a key of `setting`; throws if it does not open. */
export function open(setting, aad, value) {
  const m = /^sealed:v1:([^:]+):([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)$/.exec(value);
  if (!m) throw new Error('not a sealed value');
  const found = keysOf(setting).find((k) => k.id === m[1]);
  if (!found) throw new Error('unknown key id');
  const sealed = Buffer.from(m[3], 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', found.key, Buffer.from(m[2], 'base64url'));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

// User metadata holds sealed values in a binary form (seal_bytes in seal.rs): the same prefix and
// key id, then the 12 bytes of IV and the ciphertext with its tag, raw; ZITADEL stores the bytes
// and sends them as base64.

/** `plaintext` sealed for `aad` under the first key of `setting`, in the binary form (a Buffer). */
export function sealBytes(setting, aad, plaintext) {
  const { id, key } = keysOf(setting)[0];
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const sealed = Buffer.concat([cipher.update(Buffer.from(plaintext)), cipher.final(), cipher.getAuthTag()]);
  return Buffer.concat([Buffer.from(`sealed:v1:${id}:`), iv, sealed]);
}

/** The plaintext (a Buffer) of a binary sealed `value` (a Buffer) for `aad`; throws if it does not open. */
export function openBytes(setting, aad, value) {
  const prefix = Buffer.from('sealed:v1:');
  if (!value.subarray(0, prefix.length).equals(prefix)) throw new Error('not a sealed value');
  const rest = value.subarray(prefix.length);
  const colon = rest.indexOf(0x3a);
  if (colon < 1) throw new Error('not a sealed value');
  const found = keysOf(setting).find((k) => k.id === rest.subarray(0, colon).toString('utf8'));
  if (!found) throw new Error('unknown key id');
  const body = rest.subarray(colon + 1);
  const decipher = createDecipheriv('aes-256-gcm', found.key, body.subarray(0, 12));
  decipher.setAAD(aad);
  decipher.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]);
}

/**
 * `plaintext` sealed for the user `userId` under the metadata key `metadataKey` with the
 * TOKEN_SEALING_KEY `sealingKey`: the bytes to store, as the worker writes them.
 */
export const sealMetadata = (sealingKey, userId, metadataKey, plaintext) =>
  sealBytes(sealingKey, metadataAad(userId, metadataKey), plaintext);
