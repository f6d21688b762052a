//! The worker: the only code that touches the Workers runtime. The fetch and start events, and the
//! core's ports ([`zitadel_claims_core::port`]) over the runtime's fetch, timers, KV and
//! WebCrypto. It feeds the core (the `zitadel-claims-core` crate, in `crates/core/`) bytes,
//! headers and the clock, and writes the response and one log line. Everything here is wasm32 only; on the host the crate is empty.
#![cfg(target_arch = "wasm32")]

mod body;
mod env;
mod fetch;
mod jose;
mod kv;
mod webcrypto;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use worker::wasm_bindgen::JsValue;
use worker::{console_log, event, web_sys, Context, Date, Delay, Env};

use self::kv::KvNamespace;
use zitadel_claims_core::config::{Config, Problem};
use zitadel_claims_core::contract::jose::{Epk, Jwk, JwsAlg};
use zitadel_claims_core::contract::limits::MAX_BODY_BYTES;
use zitadel_claims_core::contract::signature;
use zitadel_claims_core::endpoint::{self, IsolateState, Route};
use zitadel_claims_core::error::Error;
use zitadel_claims_core::log::RequestLog;
use zitadel_claims_core::port::{
    Clock, Crypto, Http, HttpRequest, HttpResponse, Mac, SharedCache, Timer, TransportError,
};

type Loaded = Rc<Result<Config, Vec<Problem>>>;

thread_local! {
    // Settings cannot change within an isolate: a new deployment or secret starts new isolates.
    static CONFIG: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    // Built with the settings, read on the first call that needs it.
    static STATE: std::cell::OnceCell<Rc<IsolateState>> = const { std::cell::OnceCell::new() };
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
    let body = body::read_body(&req, &headers, MAX_BODY_BYTES).await?;
    let header = headers.get(signature::HEADER).ok().flatten();
    let kv = SHARED_CACHE.with(|cell| cell.get_or_init(|| kv::binding(env)).clone());
    let runtime = WorkersRuntime { kv, ctx, calls: Cell::new(0) };
    let state = STATE.with(|cell| cell.get_or_init(|| Rc::new(IsolateState::new(config))).clone());
    let result = endpoint::handle_call(config, &state, &runtime, header.as_deref(), &body, log).await;
    log.upstream_calls = runtime.calls.get();
    Ok((200, result?.to_json()))
}

fn load_config(env: &Env) -> Loaded {
    CONFIG.with(|cell| {
        cell.borrow_mut().get_or_insert_with(|| Rc::new(Config::from_lookup(|name| env::setting(env, name)))).clone()
    })
}

/// The core's view of the Workers runtime for one request.
struct WorkersRuntime<'a> {
    kv: Option<KvNamespace>,
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
        kv::get(self.kv.as_ref()?, key).await
    }

    async fn cache_put(&self, key: &str, value: String, ttl_seconds: u64) {
        if let Some(kv) = self.kv.clone() {
            kv::put_later(self.ctx, kv, key, value, ttl_seconds);
        }
    }
}

impl Mac for WorkersRuntime<'_> {
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
}
