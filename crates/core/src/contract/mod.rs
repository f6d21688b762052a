//! ZITADEL's wire formats, as a target sees them: the `ZITADEL-Signature` header, the payload of a
//! call, the answer, what the earlier targets of an execution answered, and the size limits.

pub mod chain;
pub mod id;
pub mod jose;
pub mod json;
pub mod limits;
pub mod payload;
pub mod response;
pub mod signature;
