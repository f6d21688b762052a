//! The only code that touches the Workers runtime: the fetch and start events, reading the body,
//! the settings, outbound fetch, KV and WebCrypto. It feeds the core bytes, headers and the clock,
//! and writes the response and one log line.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{console_log, event, js_sys, web_sys, Context, Date, Delay, Env};

use crate::claims::Isolate;
use crate::config::{Config, Problem};
use crate::contract::limits::MAX_BODY_BYTES;
use crate::contract::signature;
use crate::endpoint::{self, Route};
use crate::error::Error;
use crate::log::RequestLog;
use crate::runtime::{HttpRequest, HttpResponse, Platform, TransportError};

/// The KV namespace binding that, when present, shares permission maps across isolates.
const SHARED_CACHE_BINDING: &str = "METADATA_CACHE";
/// The largest upstream answer read: a page of 100 mapping entries or a token answer is a few
/// KiB. Reading is not free in workerd (a 10 MB answer read to 4 MiB took a second in wrangler
/// dev), so the cap is low.
const MAX_UPSTREAM_BODY_BYTES: usize = 1 << 20;

type Loaded = Rc<Result<Config, Vec<Problem>>>;

// The runtime's own fetch and KV, called directly: worker's Fetch, streams and KV wrappers
// cost about 3 KiB of gzipped wasm (serde_wasm_bindgen for KV options, error conversions) for
// the few calls made here.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> Result<js_sys::Promise, JsValue>;

    /// A KV namespace binding.
    #[derive(Clone)]
    type KvNamespace;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_text(this: &KvNamespace, key: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn put(this: &KvNamespace, key: &str, value: &str, options: &js_sys::Object) -> Result<js_sys::Promise, JsValue>;
}

thread_local! {
    // Settings cannot change within an isolate: a new deployment or secret starts new isolates.
    static CONFIG: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    // Built with the settings, read on the first call that needs it.
    static ISOLATE: std::cell::OnceCell<Rc<Isolate>> = const { std::cell::OnceCell::new() };
    // Bindings do not change within an isolate either.
    static SHARED_CACHE: std::cell::OnceCell<Option<KvNamespace>> = const { std::cell::OnceCell::new() };
    // How the last signature MAC was computed, for /healthz.
    static LAST_MAC: Cell<Option<&'static str>> = const { Cell::new(None) };
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

// The runtime's request, not worker::Request: building that reads `request.cf`, which workerd
// parses from JSON on every call, and the worker never uses it.
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    let started = Date::now().as_millis();
    let mut log = RequestLog::new(&req.method(), endpoint::path_of(&req.url()));
    let (status, body, allow) = match serve(req, &env, &ctx, &mut log).await {
        Ok((status, body)) => (status, body, None),
        Err(e) => {
            log.outcome = e.code();
            let allow = match e {
                Error::MethodNotAllowed { allow } => Some(allow),
                _ => None,
            };
            (e.status(), e.to_json(), allow)
        }
    };
    log.status = status;
    log.duration_ms = Date::now().as_millis().saturating_sub(started);
    web_sys::console::log_1(&JsValue::from_str(&log.to_json()));
    Ok(respond(status, &body, allow)?)
}

/// The runtime's response, built directly: worker::Response would copy the body into a
/// Uint8Array and set each field of the init object through Reflect.
fn respond(status: u16, body: &str, allow: Option<&str>) -> Result<web_sys::Response, JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    if let Some(allow) = allow {
        headers.set("allow", allow)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers_headers(&headers);
    web_sys::Response::new_with_opt_str_and_init(Some(body), &init)
}

async fn serve(req: web_sys::Request, env: &Env, ctx: &Context, log: &mut RequestLog) -> Result<(u16, String), Error> {
    let route = endpoint::route(log.method.as_str(), &log.path)?;
    let config = load_config(env);
    if route == Route::Health {
        let memory = core::arch::wasm32::memory_size(0) as u64 * 65_536;
        return Ok(endpoint::health(&config, Some(memory), LAST_MAC.get()));
    }
    let config = match config.as_ref() {
        Ok(config) => config,
        Err(problems) => return Err(Error::Misconfigured(problems.clone())),
    };
    let headers = req.headers();
    let body = read_body(&req, &headers, MAX_BODY_BYTES).await?;
    let header = headers.get(signature::HEADER).ok().flatten();
    let kv = SHARED_CACHE.with(|cell| cell.get_or_init(|| kv_binding(env)).clone());
    let platform = Workers { kv, ctx, calls: Cell::new(0) };
    let isolate = ISOLATE.with(|cell| cell.get_or_init(|| Rc::new(Isolate::new(config))).clone());
    let result = endpoint::handle_call(config, &isolate, &platform, header.as_deref(), &body, log).await;
    log.upstream_calls = platform.calls.get();
    Ok((200, result?.to_json()))
}

fn load_config(env: &Env) -> Loaded {
    CONFIG.with(|cell| {
        cell.borrow_mut().get_or_insert_with(|| Rc::new(Config::from_lookup(|name| setting(env, name)))).clone()
    })
}

/// A var or secret as text; vars written as TOML numbers or booleans are accepted too.
fn setting(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if let Some(text) = value.as_string() {
        Some(text)
    } else if value.as_f64().is_some() {
        // JavaScript's own formatting: Rust's float formatting would add 14 KB to the wasm.
        js_sys::Number::from(value).to_string_with_radix(10).ok().map(String::from)
    } else {
        value.as_bool().map(|b| b.to_string())
    }
}

/// The KV namespace bound as [`SHARED_CACHE_BINDING`], if that binding is one.
fn kv_binding(env: &Env) -> Option<KvNamespace> {
    let value = js_sys::Reflect::get(env, &JsValue::from_str(SHARED_CACHE_BINDING)).ok()?;
    let object = value.dyn_ref::<js_sys::Object>()?;
    (object.constructor().name() == "KvNamespace").then(|| value.unchecked_into())
}

/// Reads the body, refusing more than `limit` bytes: from `Content-Length` before reading
/// anything, and while streaming for bodies that do not declare their length.
async fn read_body(req: &web_sys::Request, headers: &web_sys::Headers, limit: usize) -> Result<Vec<u8>, Error> {
    match declared_length(headers) {
        Some(len) if len > limit as u64 => return Err(Error::PayloadTooLarge { limit }),
        // The runtime holds the body to its declared length: read it in one call.
        Some(_) => {
            let reading = req.array_buffer().map_err(|_| Error::UnreadableBody)?;
            let buffer = JsFuture::from(reading).await.map_err(|_| Error::UnreadableBody)?;
            let bytes = js_sys::Uint8Array::new(&buffer);
            // Checked again, not trusted: the copy into wasm memory is what the limit guards.
            if bytes.length() as usize > limit {
                return Err(Error::PayloadTooLarge { limit });
            }
            return Ok(bytes.to_vec());
        }
        None => {}
    }
    let Some(stream) = req.body() else {
        return Ok(Vec::new()); // no body at all
    };
    match read_limited(Chunks::of(&stream), limit).await {
        Ok(body) => Ok(body),
        Err(Some(rest)) => {
            // Read on (and discard) a bounded amount before answering: answering mid-upload
            // breaks the connection for the next request in wrangler dev. Past the bound the
            // sender gets the 413 anyway.
            let mut drained = 0;
            while drained < 4 * limit {
                match rest.next().await {
                    Ok(Some(chunk)) => drained += chunk.length() as usize,
                    _ => break,
                }
            }
            Err(Error::PayloadTooLarge { limit })
        }
        Err(None) => Err(Error::UnreadableBody),
    }
}

/// The length a message declares in `Content-Length`, if that is a number.
fn declared_length(headers: &web_sys::Headers) -> Option<u64> {
    headers.get("content-length").ok().flatten()?.trim().parse().ok()
}

/// A byte stream read chunk by chunk through its default reader.
struct Chunks(web_sys::ReadableStreamDefaultReader);

impl Chunks {
    fn of(stream: &web_sys::ReadableStream) -> Chunks {
        Chunks(stream.get_reader().unchecked_into())
    }

    /// The next chunk, `Ok(None)` at the end, `Err` if the stream broke.
    async fn next(&self) -> Result<Option<js_sys::Uint8Array>, ()> {
        let read = JsFuture::from(self.0.read()).await.map_err(|_| ())?;
        if js_sys::Reflect::get(&read, &JsValue::from_str("done")).map_err(|_| ())?.is_truthy() {
            return Ok(None);
        }
        let value = js_sys::Reflect::get(&read, &JsValue::from_str("value")).map_err(|_| ())?;
        value.dyn_into().map(Some).map_err(|_| ())
    }
}

impl Drop for Chunks {
    /// Tells the sender the rest is not wanted (a no-op once the stream has ended).
    fn drop(&mut self) {
        let _ = self.0.cancel();
    }
}

/// The whole stream, or `Err(Some(rest))` past `limit` bytes, or `Err(None)` if it broke.
async fn read_limited(chunks: Chunks, limit: usize) -> Result<Vec<u8>, Option<Chunks>> {
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await.map_err(|_| None)? {
        let (at, len) = (body.len(), chunk.length() as usize);
        if at + len > limit {
            return Err(Some(chunks));
        }
        body.resize(at + len, 0);
        chunk.copy_to(&mut body[at..]);
    }
    Ok(body)
}

/// The core's view of the Workers runtime for one request.
struct Workers<'a> {
    kv: Option<KvNamespace>,
    ctx: &'a Context,
    calls: Cell<usize>,
}

/// Aborts the fetch when the request future is dropped (the deadline passed), so the
/// connection is not left to finish in the background.
struct AbortOnDrop(Option<web_sys::AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

impl Platform for Workers<'_> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.calls.set(self.calls.get() + 1);
        let network = |_| TransportError::Network;
        let headers = web_sys::Headers::new().map_err(network)?;
        for (name, value) in &request.headers {
            headers.set(name, value).map_err(network)?;
        }
        let controller = web_sys::AbortController::new().map_err(network)?;
        let init = web_sys::RequestInit::new();
        init.set_method(request.method);
        init.set_headers(&headers);
        // Never follow a redirect: the request may carry credentials, and a moved API is a
        // configuration error to see (as a 3xx status), not to work around.
        init.set_redirect(web_sys::RequestRedirect::Manual);
        init.set_body(&js_sys::Uint8Array::from(request.body.as_slice()));
        init.set_signal(Some(&controller.signal()));
        let outbound = web_sys::Request::new_with_str_and_init(&request.url, &init).map_err(network)?;
        let mut abort = AbortOnDrop(Some(controller));
        let answer = JsFuture::from(global_fetch(&outbound).map_err(network)?).await.map_err(network)?;
        let response: web_sys::Response = answer.dyn_into().map_err(network)?;
        let status = response.status();
        let response_headers = response.headers();
        let retry_after = response_headers.get("retry-after").ok().flatten();
        let retry_after = retry_after.as_deref().and_then(crate::runtime::parse_retry_after);
        if declared_length(&response_headers).is_some_and(|len| len > MAX_UPSTREAM_BODY_BYTES as u64) {
            // Dropped, not aborted: aborting a response whose large body is still arriving
            // held up the answer by about a second in wrangler dev; dropping it does not.
            abort.0 = None;
            return Err(TransportError::TooLarge);
        }
        let body = match response.body() {
            Some(stream) => read_limited(Chunks::of(&stream), MAX_UPSTREAM_BODY_BYTES).await.map_err(|e| match e {
                Some(_) => TransportError::TooLarge,
                None => TransportError::Network,
            })?,
            None => Vec::new(),
        };
        abort.0 = None; // finished: nothing to abort
        Ok(HttpResponse { status, body, retry_after })
    }

    fn now_ms(&self) -> u64 {
        Date::now().as_millis()
    }

    async fn sleep(&self, ms: u64) {
        // setTimeout fires at once for delays beyond 2^31 - 1 ms.
        Delay::from(Duration::from_millis(ms.min(i32::MAX as u64))).await;
    }

    async fn cache_get(&self, key: &str) -> Option<String> {
        JsFuture::from(self.kv.as_ref()?.get_text(key).ok()?).await.ok()?.as_string()
    }

    async fn cache_put(&self, key: &str, value: String, ttl_seconds: u64) {
        let Some(kv) = self.kv.clone() else { return };
        let key = key.to_string();
        // After the answer: the caller does not wait for KV.
        self.ctx.wait_until(async move {
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

    async fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        match webcrypto::hmac_sha256(key, parts).await {
            Some(mac) => {
                LAST_MAC.set(Some("webcrypto"));
                mac
            }
            None => {
                console_log!("{}", r#"{"event":"webcrypto_hmac_failed"}"#);
                LAST_MAC.set(Some("wasm"));
                signature::hmac_sha256(key, parts)
            }
        }
    }
}

/// HMAC-SHA256 through the runtime's WebCrypto: native code, about 10 µs for a 7 KB body in
/// workerd where the same MAC in wasm takes about 45 µs. Imported keys are kept per isolate.
mod webcrypto {
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
}
