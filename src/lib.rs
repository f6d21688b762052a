//! The worker: the only code that touches the Workers runtime. The fetch and start events, and the
//! core's ports ([`zitadel_claims_core::port`]) over the runtime's fetch, timers, KV, WebCrypto and
//! random bytes. It feeds the core (the `zitadel-claims-core` crate, in `crates/core/`) bytes,
//! headers and the clock, and writes the response and one log line. Everything here is wasm32
//! only; on the host the crate is empty.
#![cfg(target_arch = "wasm32")]

mod body;
mod env;
mod fetch;
mod jose;
mod kv;
mod webcrypto;

use std::cell::{Cell, OnceCell};
use std::rc::Rc;
use std::time::Duration;

use worker::wasm_bindgen::JsValue;
use worker::{console_log, event, web_sys, Context, Date, Delay, Env};

use self::kv::KvNamespace;
use zitadel_claims_core::config::Config;
use zitadel_claims_core::contract::jose::{Epk, Jwk, JwsAlg};
use zitadel_claims_core::contract::signature;
use zitadel_claims_core::error::Error;
use zitadel_claims_core::port::{
    Clock, Crypto, Http, HttpRequest, HttpResponse, Mac, Random, SharedCache, Timer, TransportError,
};
use zitadel_claims_core::router::{self, App, Incoming, IsolateFacts, Response};
use zitadel_claims_core::trace::LogLine;

/// What the worker keeps per isolate, built on its first request: the core's app (the settings
/// and the clients and caches built from them), the KV binding, and how the last signature MAC was
/// computed. Settings and bindings cannot change within an isolate: a new deployment or secret
/// starts new isolates.
struct Isolate {
    app: App,
    kv: Option<KvNamespace>,
    last_mac: Cell<Option<&'static str>>,
}

thread_local! {
    static ISOLATE: OnceCell<Rc<Isolate>> = const { OnceCell::new() };
}

fn isolate(env: &Env) -> Rc<Isolate> {
    ISOLATE.with(|cell| {
        cell.get_or_init(|| {
            let settings = Config::from_lookup(|name| env::setting(env, name));
            Rc::new(Isolate { app: App::new(settings), kv: kv::binding(env), last_mac: Cell::new(None) })
        })
        .clone()
    })
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
    let (method, url) = (req.method(), req.url());
    let path = router::path_of(&url);
    let isolate = isolate(&env);
    let runtime = WorkersRuntime { isolate: &isolate, ctx: &ctx, calls: Cell::new(0) };
    let request = Request { headers: req.headers(), req };
    let facts = IsolateFacts {
        wasm_memory_bytes: Some(core::arch::wasm32::memory_size(0) as u64 * 65_536),
        mac: isolate.last_mac.get(),
    };
    let (response, trace) = isolate.app.serve(&runtime, &method, &url, &request, facts).await;
    let duration_ms = Date::now().as_millis().saturating_sub(started);
    let line = LogLine::new(&method, path, &trace, runtime.calls.get(), duration_ms);
    web_sys::console::log_1(&JsValue::from_str(&line.to_json()));
    Ok(respond(&response)?)
}

/// The runtime's response, built directly: worker::Response would copy the body into a
/// Uint8Array and set each field of the init object through Reflect.
fn respond(response: &Response) -> Result<web_sys::Response, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in &response.headers {
        headers.set(name, value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(response.status);
    init.set_headers_headers(&headers);
    web_sys::Response::new_with_opt_str_and_init(Some(&response.body), &init)
}

/// The runtime's request, as the router reads it.
struct Request {
    req: web_sys::Request,
    headers: web_sys::Headers,
}

impl Incoming for Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    async fn body(&self, limit: usize) -> Result<Vec<u8>, Error> {
        body::read_body(&self.req, &self.headers, limit).await
    }
}

/// The core's view of the Workers runtime for one request.
struct WorkersRuntime<'a> {
    isolate: &'a Isolate,
    ctx: &'a Context,
    calls: Cell<usize>,
}

impl Http for WorkersRuntime<'_> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.calls.set(self.calls.get() + 1);
        fetch::send(request).await
    }
}

impl Clock for WorkersRuntime<'_> {
    fn now_ms(&self) -> u64 {
        Date::now().as_millis()
    }
}

impl Timer for WorkersRuntime<'_> {
    async fn sleep(&self, ms: u64) {
        // setTimeout fires at once for delays beyond 2^31 - 1 ms.
        Delay::from(Duration::from_millis(ms.min(i32::MAX as u64))).await;
    }
}

impl SharedCache for WorkersRuntime<'_> {
    async fn cache_get(&self, key: &str) -> Option<String> {
        kv::get(self.isolate.kv.as_ref()?, key).await
    }

    async fn cache_put(&self, key: &str, value: String, ttl_seconds: u64) {
        if let Some(kv) = self.isolate.kv.clone() {
            kv::put_later(self.ctx, kv, key, value, ttl_seconds);
        }
    }
}

impl Mac for WorkersRuntime<'_> {
    async fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        match webcrypto::hmac_sha256(key, parts).await {
            Some(mac) => {
                self.isolate.last_mac.set(Some("webcrypto"));
                mac
            }
            None => {
                console_log!("{}", r#"{"event":"webcrypto_hmac_failed"}"#);
                self.isolate.last_mac.set(Some("wasm"));
                signature::hmac_sha256(key, parts)
            }
        }
    }
}

impl Crypto for WorkersRuntime<'_> {
    async fn verify_signature(&self, alg: JwsAlg, key: &Jwk, data: &[u8], signature: &[u8]) -> Option<bool> {
        jose::verify_signature(alg, key, data, signature).await
    }

    async fn rsa_oaep_256_decrypt(&self, pkcs8: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        jose::rsa_oaep_256_decrypt(pkcs8, ciphertext).await
    }

    async fn ecdh_shared_secret(&self, pkcs8: &[u8], peer: &Epk) -> Option<Vec<u8>> {
        jose::ecdh_shared_secret(pkcs8, peer).await
    }

    async fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
        jose::aes_kw_unwrap(kek, wrapped).await
    }

    async fn aes_gcm_decrypt(&self, key: &[u8], iv: &[u8], aad: &[u8], ciphertext_and_tag: &[u8]) -> Option<Vec<u8>> {
        jose::aes_gcm_decrypt(key, iv, aad, ciphertext_and_tag).await
    }

    async fn aes_gcm_encrypt(&self, key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        jose::aes_gcm_encrypt(key, iv, aad, plaintext).await
    }
}

impl Random for WorkersRuntime<'_> {
    fn fill_random(&self, buf: &mut [u8]) {
        webcrypto::fill_random(buf);
    }
}
