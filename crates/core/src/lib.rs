//! A ZITADEL Actions V2 target on Cloudflare Workers.
//!
//! ZITADEL calls this worker (a `restCall` target bound to `preaccesstoken`, `preuserinfo` and
//! `presamlresponse`, and to the response of RetrieveIdentityProviderIntent) while it issues
//! tokens; the worker verifies the call's signature and answers the claims to add. This crate is its
//! core: plain Rust without the Workers runtime, tested on the host. The worker crate at the
//! repository's root is the thin layer over the runtime. CONTRIBUTING.md describes the layers.

pub mod claims;
pub mod config;
pub mod connect;
pub mod contract;
pub mod envelope;
pub mod error;
pub mod exchange;
pub mod flow;
pub mod health;
pub mod idp_intent;
pub mod port;
pub mod router;
pub mod runtime;
pub mod seal;
pub mod secret;
pub mod target;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod upstream;
pub mod vault;
pub mod web;
