//! HMAC-SHA256 through the runtime's WebCrypto: native code, a few times faster than the same MAC
//! compiled into the wasm (docs/signature.md has the figures). Imported keys are kept per isolate.
//! And the runtime's random bytes, `crypto.getRandomValues`.

use std::cell::RefCell;

use worker::js_sys::{Array, ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = importKey)]
    fn import_key(
        format: &str,
        key: &Uint8Array,
        algorithm: &Object,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"])]
    fn sign(algorithm: &str, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(array: &Uint8Array) -> Result<JsValue, JsValue>;
}

/// The most `getRandomValues` fills in one call (it throws beyond).
const RANDOM_CHUNK: usize = 65_536;

/// Fills `buf` from the runtime's CSPRNG. Panics if the runtime refuses (it does not for at most
/// 64 KiB of an integer array, which is all it is given): bytes that are not random must never
/// become an IV.
pub fn fill_random(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(RANDOM_CHUNK) {
        let array = Uint8Array::new_with_length(chunk.len() as u32);
        if get_random_values(&array).is_err() {
            panic!("crypto.getRandomValues refused");
        }
        array.copy_to(chunk);
    }
}

thread_local! {
    // The signing keys of this isolate's settings (one, two during a rotation), as CryptoKeys.
    static KEYS: RefCell<Vec<(Vec<u8>, JsValue)>> = const { RefCell::new(Vec::new()) };
}

/// The MAC, or None if the runtime refused (the caller then computes it in Rust).
pub async fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    let crypto_key = crypto_key(key).await?;
    let message = Uint8Array::new_with_length(parts.iter().map(|p| p.len() as u32).sum());
    let mut at = 0;
    for part in parts {
        message.subarray(at, at + part.len() as u32).copy_from(part);
        at += part.len() as u32;
    }
    let mac = JsFuture::from(sign("HMAC", &crypto_key, &message).ok()?).await.ok()?;
    if !mac.is_instance_of::<ArrayBuffer>() {
        return None;
    }
    let mac = Uint8Array::new(&mac);
    if mac.length() != 32 {
        return None;
    }
    let mut out = [0u8; 32];
    mac.copy_to(&mut out);
    Some(out)
}

async fn crypto_key(key: &[u8]) -> Option<JsValue> {
    let known = KEYS.with(|keys| keys.borrow().iter().find(|(k, _)| k == key).map(|(_, c)| c.clone()));
    if known.is_some() {
        return known;
    }
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"HMAC".into()).ok()?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into()).ok()?;
    let usages = Array::of1(&"sign".into());
    let imported = import_key("raw", &Uint8Array::from(key), &algorithm, false, &usages).ok()?;
    let crypto_key = JsFuture::from(imported).await.ok()?;
    KEYS.with(|keys| keys.borrow_mut().push((key.to_vec(), crypto_key.clone())));
    Some(crypto_key)
}
