//! The shared cache: a KV namespace binding, through the runtime's own `get` and `put`.

use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{console_log, js_sys, Context, Env};

/// The binding that, when present, shares permission maps across isolates.
const BINDING: &str = "METADATA_CACHE";

#[wasm_bindgen]
extern "C" {
    // Called directly: worker's KvStore brings serde_wasm_bindgen (for put's options) and error
    // conversions the two calls here do not need.
    /// A KV namespace binding.
    #[derive(Clone)]
    pub type KvNamespace;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_text(this: &KvNamespace, key: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn put(this: &KvNamespace, key: &str, value: &str, options: &js_sys::Object) -> Result<js_sys::Promise, JsValue>;
}

/// The KV namespace bound as [`BINDING`], if that binding is one.
pub fn binding(env: &Env) -> Option<KvNamespace> {
    let value = js_sys::Reflect::get(env, &JsValue::from_str(BINDING)).ok()?;
    let object = value.dyn_ref::<js_sys::Object>()?;
    (object.constructor().name() == "KvNamespace").then(|| value.unchecked_into())
}

/// The text stored under `key`, if any.
pub async fn get(kv: &KvNamespace, key: &str) -> Option<String> {
    JsFuture::from(kv.get_text(key).ok()?).await.ok()?.as_string()
}

/// Stores `value` under `key` for `ttl_seconds`, after the answer: the caller does not wait for KV.
pub fn put_later(ctx: &Context, kv: KvNamespace, key: &str, value: String, ttl_seconds: u64) {
    let key = key.to_string();
    ctx.wait_until(async move {
        let options = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&options, &"expirationTtl".into(), &(ttl_seconds as f64).into());
        let stored = match kv.put(&key, &value, &options) {
            Ok(put) => JsFuture::from(put).await.is_ok(),
            Err(_) => false,
        };
        if !stored {
            console_log!("{}", r#"{"event":"kv_put_failed"}"#);
        }
    });
}
