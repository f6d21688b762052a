//! The router: which path does what, one handler per route, and what the worker keeps per isolate
//! ([`App`], one value). The glue hands it a request and gets back the response and the trace the
//! log line is made from. A new route is a [`Route`], a line in [`route`] and a handler module.

use std::borrow::Cow;
use std::future::Future;

use crate::config::{Config, Feature, Problem};
use crate::contract::limits::MAX_BODY_BYTES;
use crate::contract::signature;
use crate::error::Error;
use crate::health::health;
use crate::port::Runtime;
use crate::target::Target;
use crate::trace::Trace;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The target ZITADEL calls.
    Call,
    /// The configuration check.
    Health,
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

/// `POST /` and `POST /zitadel/complement-token` are one target; `GET /healthz` reports config.
pub fn route(method: &str, path: &str) -> Result<Route, Error> {
    let (route, allow) = match path {
        "/" | "/zitadel/complement-token" => (Route::Call, "POST"),
        "/healthz" => (Route::Health, "GET"),
        _ => return Err(Error::NotFound),
    };
    if method.eq_ignore_ascii_case(allow) {
        Ok(route)
    } else {
        Err(Error::MethodNotAllowed { allow })
    }
}

/// A request as the runtime holds it: its headers, and its body, read only by the handlers that
/// need it, within a limit.
pub trait Incoming {
    /// The value of the header `name` (case-insensitive), if the request has it.
    fn header(&self, name: &str) -> Option<String>;

    /// The body, refused when it is larger than `limit` bytes.
    fn body(&self, limit: usize) -> impl Future<Output = Result<Vec<u8>, Error>>;
}

/// What the runtime knows of the isolate, for `/healthz`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IsolateFacts {
    /// The isolate's wasm linear memory.
    pub wasm_memory_bytes: Option<u64>,
    /// How the isolate computed its last signature MAC ("webcrypto", or "wasm" after a fallback).
    pub mac: Option<&'static str>,
}

/// An answer: status, headers and body. Header values are mostly fixed texts; a route that needs
/// one made per request (a redirect's location, a cookie) gives an owned one.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: String,
}

impl Response {
    /// A JSON answer that no cache keeps.
    pub fn json(status: u16, body: String) -> Self {
        let headers = vec![("content-type", "application/json".into()), ("cache-control", "no-store".into())];
        Response { status, headers, body }
    }

    /// The answer to `error`, with `Allow` for a method the path does not take.
    pub fn error(error: &Error) -> Self {
        let mut response = Response::json(error.status(), error.to_json());
        if let Error::MethodNotAllowed { allow } = error {
            response.headers.push(("allow", Cow::Borrowed(*allow)));
        }
        response
    }
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

    /// Answers a request to `method` `path`. The trace ends with the answer's outcome and status.
    pub async fn serve<R: Runtime>(
        &self,
        runtime: &R,
        method: &str,
        path: &str,
        request: &impl Incoming,
        isolate: IsolateFacts,
    ) -> (Response, Trace) {
        let (result, mut trace) = match route(method, path) {
            Ok(Route::Health) => {
                let problems = self.target().err().unwrap_or_default();
                let (status, body) = health(problems, &self.features, isolate.wasm_memory_bytes, isolate.mac);
                (Ok(Response::json(status, body)), Trace::default())
            }
            Ok(Route::Call) => self.call(runtime, request).await,
            Err(e) => (Err(e), Trace::default()),
        };
        let response = match result {
            Ok(response) => {
                trace.outcome = "ok";
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

    /// The ZITADEL call: good settings, then the body, then the target.
    async fn call<R: Runtime>(&self, runtime: &R, request: &impl Incoming) -> (Result<Response, Error>, Trace) {
        let target = match self.target() {
            Ok(target) => target,
            Err(problems) => return (Err(Error::Misconfigured(problems.to_vec())), Trace::default()),
        };
        let body = match request.body(MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(e) => return (Err(e), Trace::default()),
        };
        let header = request.header(signature::HEADER);
        let (result, trace) = target.handle(runtime, header.as_deref(), &body).await;
        (result.map(|answer| Response::json(200, answer.to_json())), trace)
    }
}

#[cfg(test)]
mod tests;
