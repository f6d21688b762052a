//! Outbound HTTP through the runtime's own `fetch`.

use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys};

use crate::body::{declared_length, read_limited, Chunks};
use zitadel_claims_core::port::{HttpRequest, HttpResponse, TransportError};

/// The largest upstream answer read: a page of 100 mapping entries or a token answer is a few
/// KiB, and reading is not free in workerd, so the cap is low.
const MAX_UPSTREAM_BODY_BYTES: usize = 1 << 20;

#[wasm_bindgen]
extern "C" {
    // Called directly: worker's Fetch wrapper brings error conversions the few calls here do not need.
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> Result<js_sys::Promise, JsValue>;
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

pub async fn send(request: HttpRequest) -> Result<HttpResponse, TransportError> {
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
    // A GET or HEAD with a body, even an empty one, is a TypeError in fetch.
    if !matches!(request.method, "GET" | "HEAD") {
        init.set_body(&js_sys::Uint8Array::from(request.body.as_slice()));
    }
    init.set_signal(Some(&controller.signal()));
    let outbound = web_sys::Request::new_with_str_and_init(&request.url, &init).map_err(network)?;
    let mut abort = AbortOnDrop(Some(controller));
    let answer = JsFuture::from(global_fetch(&outbound).map_err(network)?).await.map_err(network)?;
    let response: web_sys::Response = answer.dyn_into().map_err(network)?;
    let status = response.status();
    let response_headers = response.headers();
    let retry_after = response_headers.get("retry-after").ok().flatten();
    let retry_after = retry_after.as_deref().and_then(zitadel_claims_core::port::parse_retry_after);
    if declared_length(&response_headers).is_some_and(|len| len > MAX_UPSTREAM_BODY_BYTES as u64) {
        // Dropped, not aborted: in workerd, aborting a response whose large body is still
        // arriving holds up the answer; dropping it does not.
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
