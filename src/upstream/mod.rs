//! The services the worker calls: the ZITADEL API and Microsoft's token endpoint.

pub mod microsoft;
pub mod zitadel;
