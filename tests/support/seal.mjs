// Sealed metadata values as the worker writes them (crates/core/src/seal.rs), made in Node for the
// benchmark and the tests: `sealed:v1:<key id>:<12 bytes of IV><ciphertext and tag>`, AES-256-GCM,
// with associated data that binds the ZITADEL user id and the metadata key (each part length-prefixed,
// after the format's domain and the purpose).
import { createCipheriv, randomBytes } from 'node:crypto';

const DOMAIN = 'zitadel-claims-worker/sealed/v1';

/** The associated data of a metadata value of `userId` under `metadataKey`. */
export function metadataAad(userId, metadataKey) {
  return Buffer.concat([DOMAIN, 'metadata', userId, metadataKey].flatMap((part) => {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return [length, bytes];
  }));
}

/**
 * `plaintext` sealed for `userId` under `metadataKey` with `sealingKey` (`<id>:<base64 of 32
 * bytes>`, the TOKEN_SEALING_KEY form): the bytes to store, as a Buffer.
 */
export function sealMetadata(sealingKey, userId, metadataKey, plaintext) {
  const [id, key] = sealingKey.split(':');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'base64'), iv);
  cipher.setAAD(metadataAad(userId, metadataKey));
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(plaintext)), cipher.final()]);
  return Buffer.concat([Buffer.from(`sealed:v1:${id}:`), iv, ciphertext, cipher.getAuthTag()]);
}
