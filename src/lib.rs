//! A ZITADEL Actions V2 target on Cloudflare Workers.
//!
//! ZITADEL calls this worker (a `restCall` target bound to `preaccesstoken`, `preuserinfo` and
//! `presamlresponse`, and to the response of RetrieveIdentityProviderIntent) while it issues
//! tokens; the worker verifies the call's signature and answers the claims to add. Everything but
//! `glue` is plain Rust, tested on the host; `glue` is the thin layer over the Workers runtime.
//! CONTRIBUTING.md describes the layers.

pub mod claims;
pub mod config;
pub mod contract;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod idp_intent;
pub mod log;
pub mod runtime;
pub mod secret;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upstream;

#[cfg(target_arch = "wasm32")]
mod glue;
