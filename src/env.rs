//! The Worker's vars and secrets.

use worker::wasm_bindgen::JsValue;
use worker::{js_sys, Env};

/// A var or secret as text; vars written as TOML numbers or booleans are accepted too.
pub fn setting(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if let Some(text) = value.as_string() {
        Some(text)
    } else if value.as_f64().is_some() {
        // JavaScript's own formatting: Rust's would bring float formatting into the wasm.
        js_sys::Number::from(value).to_string_with_radix(10).ok().map(String::from)
    } else {
        value.as_bool().map(|b| b.to_string())
    }
}
