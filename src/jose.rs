//! The JOSE cryptography of signed and encrypted payloads through the runtime's WebCrypto:
//! signature checks (RSASSA-PKCS1-v1_5, RSA-PSS, ECDSA, Ed25519), RSA-OAEP, ECDH, AES-KW and
//! AES-GCM (whose encryption also seals values, the core's `seal`). The JOSE parsing and checks, and the Concat KDF, are the core's (`contract::jose`);
//! what is here only hands bytes and keys to WebCrypto, in a few lines of JavaScript, which the
//! same calls written through js-sys would make several times larger in the wasm. Imported keys are
//! kept per isolate.

use worker::js_sys::{Promise, Uint8Array};
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

use zitadel_claims_core::contract::jose::{Epk, Hash, Jwk, JwsAlg};

#[wasm_bindgen(inline_js = r#"
// Bytes from the wasm are views of its memory: copied before anything is awaited.
const copy = (bytes) => bytes.slice();
const kept = new Map();
async function imported(id, make) {
  let key = kept.get(id);
  if (!key) {
    if (kept.size >= 64) kept.clear();
    key = await make();
    kept.set(id, key);
  }
  return key;
}
const id = (bytes) => btoa(String.fromCharCode.apply(null, bytes));
export async function verify(name, hash, curve, jwk, data, signature) {
  [data, signature] = [copy(data), copy(signature)];
  const parsed = JSON.parse(jwk);
  const material = { kty: parsed.kty, n: parsed.n, e: parsed.e, crv: parsed.crv, x: parsed.x, y: parsed.y };
  const importing = name === 'ECDSA' ? { name, namedCurve: curve } : { name, hash };
  const key = await imported(`${name}/${hash}/${jwk}`, () => crypto.subtle.importKey('jwk', material, importing, false, ['verify']));
  const checking = name === 'ECDSA' ? { name, hash } : name === 'RSA-PSS' ? { name, saltLength: Number(hash.slice(4)) / 8 } : { name };
  return crypto.subtle.verify(checking, key, signature, data);
}
export async function rsaOaep(pkcs8, ciphertext) {
  [pkcs8, ciphertext] = [copy(pkcs8), copy(ciphertext)];
  const algorithm = { name: 'RSA-OAEP', hash: 'SHA-256' };
  const key = await imported(`oaep/${id(pkcs8)}`, () => crypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['decrypt']));
  return new Uint8Array(await crypto.subtle.decrypt(algorithm, key, ciphertext));
}
export async function ecdh(pkcs8, epk, curve, bits) {
  pkcs8 = copy(pkcs8);
  const algorithm = { name: 'ECDH', namedCurve: curve };
  const key = await imported(`ecdh/${curve}/${id(pkcs8)}`, () => crypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['deriveBits']));
  const { kty, crv, x, y } = JSON.parse(epk);
  const peer = await crypto.subtle.importKey('jwk', { kty, crv, x, y }, algorithm, true, []);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'ECDH', public: peer }, key, bits));
}
export async function aesKwUnwrap(kek, wrapped) {
  [kek, wrapped] = [copy(kek), copy(wrapped)];
  const unwrapping = await crypto.subtle.importKey('raw', kek, 'AES-KW', false, ['unwrapKey']);
  const cek = await crypto.subtle.unwrapKey('raw', wrapped, unwrapping, 'AES-KW', 'AES-GCM', true, ['decrypt']);
  return new Uint8Array(await crypto.subtle.exportKey('raw', cek));
}
export async function aesGcm(usage, cek, iv, aad, data) {
  [cek, iv, aad, data] = [copy(cek), copy(iv), copy(aad), copy(data)];
  const key = await crypto.subtle.importKey('raw', cek, 'AES-GCM', false, [usage]);
  return new Uint8Array(await crypto.subtle[usage]({ name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, key, data));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = verify)]
    fn verify_js(
        name: &str,
        hash: &str,
        curve: &str,
        jwk: &str,
        data: &[u8],
        signature: &[u8],
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = rsaOaep)]
    fn rsa_oaep_js(pkcs8: &[u8], ciphertext: &[u8]) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = ecdh)]
    fn ecdh_js(pkcs8: &[u8], epk: &str, curve: &str, bits: u32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = aesKwUnwrap)]
    fn aes_kw_unwrap_js(kek: &[u8], wrapped: &[u8]) -> Result<Promise, JsValue>;
    /// `usage`: `"encrypt"` or `"decrypt"`.
    #[wasm_bindgen(catch, js_name = aesGcm)]
    fn aes_gcm_js(usage: &str, key: &[u8], iv: &[u8], aad: &[u8], data: &[u8]) -> Result<Promise, JsValue>;
}

/// What a WebCrypto promise settles to, `None` if it is refused.
async fn settle(promise: Result<Promise, JsValue>) -> Option<JsValue> {
    JsFuture::from(promise.ok()?).await.ok()
}

async fn bytes(promise: Result<Promise, JsValue>) -> Option<Vec<u8>> {
    Some(settle(promise).await?.dyn_into::<Uint8Array>().ok()?.to_vec())
}

pub async fn verify_signature(alg: JwsAlg, key: &Jwk, data: &[u8], signature: &[u8]) -> Option<bool> {
    let name = match alg {
        JwsAlg::Rs256 | JwsAlg::Rs384 | JwsAlg::Rs512 => "RSASSA-PKCS1-v1_5",
        JwsAlg::Ps256 | JwsAlg::Ps384 | JwsAlg::Ps512 => "RSA-PSS",
        JwsAlg::Es256 | JwsAlg::Es384 | JwsAlg::Es512 => "ECDSA",
        JwsAlg::EdDsa => "Ed25519",
    };
    let hash = match alg.hash() {
        Hash::Sha256 => "SHA-256",
        Hash::Sha384 => "SHA-384",
        Hash::Sha512 => "SHA-512",
    };
    let curve = alg.curve().map_or("", |c| c.name());
    settle(verify_js(name, hash, curve, &key.json, data, signature)).await?.as_bool()
}

pub async fn rsa_oaep_256_decrypt(pkcs8: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    bytes(rsa_oaep_js(pkcs8, ciphertext)).await
}

pub async fn ecdh_shared_secret(pkcs8: &[u8], peer: &Epk) -> Option<Vec<u8>> {
    bytes(ecdh_js(pkcs8, &peer.json, peer.curve.name(), 8 * peer.curve.field_bytes() as u32)).await
}

pub async fn aes_kw_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    bytes(aes_kw_unwrap_js(kek, wrapped)).await
}

pub async fn aes_gcm_decrypt(key: &[u8], iv: &[u8], aad: &[u8], ciphertext_and_tag: &[u8]) -> Option<Vec<u8>> {
    bytes(aes_gcm_js("decrypt", key, iv, aad, ciphertext_and_tag)).await
}

/// The ciphertext followed by the 128-bit tag (WebCrypto appends the tag).
pub async fn aes_gcm_encrypt(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    bytes(aes_gcm_js("encrypt", key, iv, aad, plaintext)).await
}
