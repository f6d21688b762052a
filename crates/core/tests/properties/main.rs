//! Property tests of the parts that read untrusted input: the `ZITADEL-Signature` header, the
//! request body, and the whole call (`Target::handle`). They use only the crate's public
//! API and run on the host with plain `cargo test`.
//!
//! What they hold to, for any input proptest can think of:
//! - parsing and verifying a signature never panics, whatever the header, body, keys and clock;
//! - a body signed the way ZITADEL signs it always verifies, under every key it was signed with,
//!   and any one-bit change of the body, one-character change of a digest or change of the
//!   timestamp never verifies;
//! - decoding never panics, and an error never repeats a string that was in the body;
//! - a call with a valid configuration never panics and never answers 5xx, with the claims off,
//!   with every claim on and ZITADEL unreachable, and with every claim on and upstream answers
//!   that are garbage;
//! - the answer is exactly the JSON serde_json would write for it;
//! - a sealed value opens where it was sealed, also after a key rotation, and nowhere else: not in
//!   another place, not under another key, not with any one character changed;
//! - a `return_to` the connect flow accepts is, to a browser's WHATWG parser, on an allowed origin
//!   and under an allowed path.
//!
//! What they found is kept as regression tests: three integer overflows on extreme token
//! lifetimes and JWT `exp` values (`regression_*`), and known objects given as JSON arrays
//! (`nested_objects_given_as_arrays_are_invalid_payload`).

mod answer;
mod calls;
mod jose;
mod payload;
mod regressions;
mod return_to;
mod seal;
mod signature;
mod support;
