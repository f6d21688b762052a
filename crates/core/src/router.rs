//! The router: which path does what, one handler per route, and what the worker keeps per isolate
//! ([`App`], one value). The glue hands it a request and gets back the response and the trace the
//! log line is made from. A new route is a [`Route`], a line in [`route`] and a handler module.

use crate::config::{Config, Feature, Problem};
use crate::contract::limits::MAX_BODY_BYTES;
use crate::contract::signature;
use crate::error::Error;
use crate::exchange;
use crate::flow::{self, Step};
use crate::health::health;
use crate::port::Runtime;
use crate::target::Target;
use crate::trace::Trace;
pub use crate::web::{Incoming, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'p> {
    /// The target ZITADEL calls.
    Call,
    /// The configuration check.
    Health,
    /// The connect flow: one of its steps, and the provider the path names (none for ZITADEL's
    /// callback, which every provider shares).
    Connect(crate::flow::Step, &'p str),
    /// The token exchange.
    Token,
    /// The user's connection to the provider the path names.
    Connection(&'p str),
}

/// The path of a request URL as the runtime gives it (absolute, already serialized): what follows
/// the host, up to `?` or `#`.
pub fn path_of(url: &str) -> &str {
    let Some(host_start) = url.find("://").map(|i| i + 3) else {
        return if url.starts_with('/') { url } else { "/" };
    };
    match url[host_start..].find('/') {
        Some(i) => {
            let path = &url[host_start + i..];
            &path[..path.find(['?', '#']).unwrap_or(path.len())]
        }
        None => "/",
    }
}

/// `POST /` and `POST /zitadel/complement-token` are one target; `GET /healthz` reports config;
/// `GET /connect/...` are the connect flow's steps (the provider a route names is the one
/// configured; the ZITADEL callback is every provider's); `POST /token` is the token exchange;
/// `GET` and `DELETE /connections/{provider}` are the user's connection.
pub fn route<'p>(method: &str, path: &'p str) -> Result<Route<'p>, Error> {
    let (route, allow) = match path {
        "/" | "/zitadel/complement-token" => (Route::Call, "POST"),
        "/healthz" => (Route::Health, "GET"),
        "/token" => (Route::Token, "POST"),
        flow::ZITADEL_CALLBACK => (Route::Connect(Step::ZitadelCallback, ""), "GET"),
        _ => match path.strip_prefix("/connections/").filter(|name| is_provider_name(name)) {
            Some(name) => (Route::Connection(name), "GET, DELETE"),
            None => (connect_route(path).ok_or(Error::NotFound)?, "GET"),
        },
    };
    if allow.split(", ").any(|m| method.eq_ignore_ascii_case(m)) {
        Ok(route)
    } else {
        Err(Error::MethodNotAllowed { allow })
    }
}

/// `/connect/{provider}` and `/connect/{provider}/callback`: the provider is data (the flow
/// answers for the one configured), so its name is read from the path, lowercase letters, digits
/// and `-`.
fn connect_route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/connect/")?;
    let (step, name) = match rest.strip_suffix("/callback") {
        Some(name) => (Step::ProviderCallback, name),
        None => (Step::Start, rest),
    };
    is_provider_name(name).then_some(Route::Connect(step, name))
}

/// A provider's name in a path: lowercase letters, digits and `-`.
fn is_provider_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What the runtime knows of the isolate, for `/healthz`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IsolateFacts {
    /// The isolate's wasm linear memory.
    pub wasm_memory_bytes: Option<u64>,
    /// How the isolate computed its last signature MAC ("webcrypto", or "wasm" after a fallback).
    pub mac: Option<&'static str>,
}

/// What the worker keeps per isolate: the target with its settings, clients and caches, or what is
/// wrong with the settings. Settings cannot change within an isolate (a new deployment or secret
/// starts new isolates), so it is built once, from the first request's environment.
pub struct App {
    target: Result<Target, Vec<Problem>>,
    /// Each feature, on or off (none when the settings are bad).
    features: Vec<Feature>,
}

impl App {
    pub fn new(settings: Result<Config, Vec<Problem>>) -> Self {
        let features = settings.as_ref().map(Config::features).unwrap_or_default();
        App { target: settings.map(Target::new), features }
    }

    /// The target, when the settings are good.
    pub fn target(&self) -> Result<&Target, &[Problem]> {
        self.target.as_ref().map_err(Vec::as_slice)
    }

    /// Answers a request to `method` `url` (absolute, as the runtime gives it). The trace ends with
    /// the answer's outcome and status.
    pub async fn serve<R: Runtime>(
        &self,
        runtime: &R,
        method: &str,
        url: &str,
        request: &impl Incoming,
        isolate: IsolateFacts,
    ) -> (Response, Trace) {
        let (result, mut trace) = match route(method, path_of(url)) {
            Ok(Route::Health) => {
                let problems = self.target().err().unwrap_or_default();
                let (status, body) = health(problems, &self.features, isolate.wasm_memory_bytes, isolate.mac);
                (Ok(Response::json(status, body)), Trace::default())
            }
            Ok(Route::Call) => self.call(runtime, request).await,
            Ok(Route::Connect(step, provider)) => match self.target() {
                Ok(target) => Box::pin(flow::serve(target, runtime, step, provider, url, request)).await,
                Err(problems) => (Err(Error::Misconfigured(problems.to_vec())), Trace::default()),
            },
            Ok(Route::Token) => match self.target() {
                Ok(target) => Box::pin(exchange::token(target, runtime, url, request)).await,
                Err(problems) => (Err(Error::Misconfigured(problems.to_vec())), Trace::default()),
            },
            Ok(Route::Connection(provider)) => match self.target() {
                Ok(target) => Box::pin(exchange::connection(target, runtime, method, provider, request)).await,
                Err(problems) => (Err(Error::Misconfigured(problems.to_vec())), Trace::default()),
            },
            Err(e) => (Err(e), Trace::default()),
        };
        let response = match result {
            Ok(response) => {
                if trace.outcome.is_empty() {
                    trace.outcome = "ok";
                }
                response
            }
            Err(e) => {
                trace.outcome = e.code();
                Response::error(&e)
            }
        };
        trace.status = response.status;
        (response, trace)
    }

    /// The ZITADEL call: good settings, then the signature header and its time window, then the
    /// body, then the target. A call without a header, with a malformed one or with a timestamp
    /// outside the window is refused before its body is read, copied into wasm or hashed.
    async fn call<R: Runtime>(&self, runtime: &R, request: &impl Incoming) -> (Result<Response, Error>, Trace) {
        let target = match self.target() {
            Ok(target) => target,
            Err(problems) => return (Err(Error::Misconfigured(problems.to_vec())), Trace::default()),
        };
        let header = request.header(signature::HEADER);
        let config = target.config();
        let now = (runtime.now_ms() / 1000) as i64;
        if let Err(e) = signature::check_header(header.as_deref(), now, config.signature_tolerance_seconds) {
            return (Err(Error::Signature(e)), Trace::default());
        }
        let body = match request.body(MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(e) => return (Err(e), Trace::default()),
        };
        let (result, trace) = target.handle(runtime, header.as_deref(), &body).await;
        (result.map(|answer| Response::json(200, answer.to_json())), trace)
    }
}

#[cfg(test)]
mod tests;
