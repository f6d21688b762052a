//! Reading a body (the call's, or an upstream answer's) into wasm memory, within a size limit.

use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys};

use zitadel_claims_core::error::Error;

/// Reads the body, refusing more than `limit` bytes: from `Content-Length` before reading
/// anything, and while streaming for bodies that do not declare their length.
pub async fn read_body(req: &web_sys::Request, headers: &web_sys::Headers, limit: usize) -> Result<Vec<u8>, Error> {
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
pub fn declared_length(headers: &web_sys::Headers) -> Option<u64> {
    headers.get("content-length").ok().flatten()?.trim().parse().ok()
}

/// A byte stream read chunk by chunk through its default reader.
pub struct Chunks(web_sys::ReadableStreamDefaultReader);

impl Chunks {
    pub fn of(stream: &web_sys::ReadableStream) -> Chunks {
        Chunks(stream.get_reader().unchecked_into())
    }

    /// The next chunk, `Ok(None)` at the end, `Err` if the stream broke.
    pub async fn next(&self) -> Result<Option<js_sys::Uint8Array>, ()> {
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
pub async fn read_limited(chunks: Chunks, limit: usize) -> Result<Vec<u8>, Option<Chunks>> {
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
