//! A ZITADEL Actions V2 target on Cloudflare Workers.
//!
//! ZITADEL calls this worker (a `restCall` target bound to `preaccesstoken` and `preuserinfo`)
//! while it issues tokens; the worker verifies the call's signature and answers the claims to add.
//! The modules below hold the logic and never touch the runtime; this file is the glue that reads
//! settings, the clock and the request, and writes the response and one log line.

pub mod config;
pub mod endpoint;
pub mod error;
pub mod log;
pub mod payload;
pub mod response;
pub mod signature;

#[cfg(target_arch = "wasm32")]
mod glue {
    use std::cell::RefCell;
    use std::rc::Rc;

    use futures_util::StreamExt;
    use worker::wasm_bindgen::JsValue;
    use worker::{console_log, event, js_sys, Context, Date, Env, Headers, Request, Response};

    use crate::config::{Config, Problem};
    use crate::endpoint::{self, Route, MAX_BODY_BYTES};
    use crate::error::Error;
    use crate::log::RequestLog;
    use crate::signature;

    type Loaded = Rc<Result<Config, Vec<Problem>>>;

    thread_local! {
        // Settings cannot change within an isolate: a new deployment or secret starts new isolates.
        static CONFIG: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    }

    #[event(start)]
    fn start() {
        console_error_panic_hook::set_once();
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
        let started = Date::now().as_millis();
        let mut log = RequestLog::new(req.method().as_ref(), &req.path());
        let (status, body, allow) = match serve(req, &env, &mut log).await {
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
        console_log!("{}", log.to_json());

        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        headers.set("cache-control", "no-store")?;
        if let Some(allow) = allow {
            headers.set("allow", allow)?;
        }
        Ok(Response::from_bytes(body.into_bytes())?.with_status(status).with_headers(headers))
    }

    async fn serve(mut req: Request, env: &Env, log: &mut RequestLog) -> Result<(u16, String), Error> {
        let route = endpoint::route(log.method.as_str(), &log.path)?;
        let config = load_config(env);
        if route == Route::Health {
            return Ok(endpoint::health(&config));
        }
        let config = match config.as_ref() {
            Ok(config) => config,
            Err(problems) => return Err(Error::Misconfigured(problems.clone())),
        };
        let body = read_body(&mut req, MAX_BODY_BYTES).await?;
        let header = req.headers().get(signature::HEADER).ok().flatten();
        let now = (Date::now().as_millis() / 1000) as i64;
        let response = endpoint::handle_call(config, header.as_deref(), &body, now, log)?;
        Ok((200, response.to_json()))
    }

    fn load_config(env: &Env) -> Loaded {
        CONFIG.with(|cell| {
            cell.borrow_mut()
                .get_or_insert_with(|| Rc::new(Config::from_lookup(|name| setting(env, name))))
                .clone()
        })
    }

    /// A var or secret as text; vars written as TOML numbers or booleans are accepted too.
    fn setting(env: &Env, name: &str) -> Option<String> {
        let value = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
        if let Some(text) = value.as_string() {
            Some(text)
        } else if let Some(number) = value.as_f64() {
            Some(if number.fract() == 0.0 { (number as i64).to_string() } else { number.to_string() })
        } else {
            value.as_bool().map(|b| b.to_string())
        }
    }

    /// Reads the body, refusing more than `limit` bytes: from `Content-Length` before reading
    /// anything, and while streaming for bodies that do not declare their length.
    async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, Error> {
        let declared = req.headers().get("content-length").ok().flatten();
        if declared.and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|len| len > limit as u64) {
            return Err(Error::PayloadTooLarge { limit });
        }
        let Ok(mut stream) = req.stream() else {
            return Ok(Vec::new()); // no body at all
        };
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| Error::UnreadableBody)?;
            if body.len() + chunk.len() > limit {
                // Read on (and discard) a bounded amount before answering: answering mid-upload
                // breaks the connection for the next request in wrangler dev. Past the bound the
                // sender gets the 413 anyway.
                let mut drained = 0;
                while drained < 4 * limit {
                    match stream.next().await {
                        Some(Ok(rest)) => drained += rest.len(),
                        _ => break,
                    }
                }
                return Err(Error::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
