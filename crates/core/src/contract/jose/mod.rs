//! Signed and encrypted payloads (docs/zitadel-contract.md §9): a target whose `payloadType` is
//! `PAYLOAD_TYPE_JWT` gets the JSON payload as a compact JWS signed with the instance's web key; one
//! whose type is `PAYLOAD_TYPE_JWE` gets that JWS encrypted to the target's public key
//! (`RSA-OAEP-256`, or `ECDH-ES+A256KW` for an EC key, with `A256GCM`).
//!
//! This module reads and checks them, one concern per file, as go-jose and panva/jose lay JOSE
//! out: `jwk.rs` the key set (JWKS), its keys and their curves; `jws.rs` the JWS algorithms, the
//! compact JWS and its header, which key and algorithm a JWS may be verified with, and the shape of
//! its signature; `jwe.rs` the JWE algorithms, the compact JWE, its header and ephemeral key;
//! `kdf.rs` the Concat KDF of ECDH-ES. Here: which kind a body is, the errors, and the readers the
//! files share. Their items are all reached from here (`contract::jose::Jwk`). The cryptography
//! itself (signatures, RSA-OAEP, ECDH, AES-KW, AES-GCM) is the runtime's, through
//! [`Crypto`](crate::port::Crypto): in workerd, WebCrypto. Messages name what is wrong, never a
//! key, a token or a payload value.

mod jwe;
mod jwk;
mod jws;
mod kdf;

pub use jwe::{parse_jwe, Epk, Jwe, JweAlg};
pub use jwk::{Curve, Jwk, Jwks, MAX_JWKS_KEYS};
pub use jws::{check_key, check_signature_shape, parse_jws, Hash, Jws, JwsAlg};
pub use kdf::concat_kdf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::value::RawValue;

use crate::contract::json;

/// What a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// The JSON payload itself (anything that is not a compact JWS or JWE counts as JSON).
    Json,
    /// A compact JWS: three base64url parts.
    Jwt,
    /// A compact JWE: five base64url parts.
    Jwe,
}

impl PayloadKind {
    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::Json => "json",
            PayloadKind::Jwt => "jwt",
            PayloadKind::Jwe => "jwe",
        }
    }

    /// The kind of `body`, by its shape alone.
    pub fn of(body: &[u8]) -> PayloadKind {
        let body = body.trim_ascii();
        // A JSON body stops this at its first byte, `{`.
        let compact =
            !body.is_empty() && body.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        match compact.then(|| body.iter().filter(|b| **b == b'.').count()) {
            Some(2) => PayloadKind::Jwt,
            Some(4) => PayloadKind::Jwe,
            _ => PayloadKind::Json,
        }
    }
}

/// Why a signed or encrypted payload is refused. Each is a fixed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoseError {
    /// The JWS is malformed, names a refused algorithm or an unknown key, or does not verify.
    Signature(&'static str),
    /// The JWE is malformed, uses another algorithm, or no configured key decrypts it.
    Undecryptable(&'static str),
}

/// The members `names` of the JSON object `raw`, read in one pass and matched exactly (JOSE names
/// are case-sensitive; of repeated ones the last counts), or `None` if it is no object.
fn members<'a, const N: usize>(raw: &'a RawValue, names: [&str; N]) -> Option<[Option<&'a RawValue>; N]> {
    json::exact_members(raw, &names)?.try_into().ok()
}

/// Members read as strings (`None` for an absent or `null` one), or `Err` if one is not a string.
fn strings<const N: usize>(found: [Option<&RawValue>; N]) -> Result<[Option<String>; N], ()> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for (slot, member) in out.iter_mut().zip(found) {
        if let Some(member) = member.filter(|m| !json::is_null(m)) {
            *slot = Some(serde_json::from_str::<String>(member.get()).map_err(|_| ())?);
        }
    }
    Ok(out)
}

/// A base64url part (unpadded) of a compact serialization, decoded.
fn b64url(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_of_a_body_is_read_from_its_shape() {
        assert_eq!(PayloadKind::of(br#"{"function":"x"}"#), PayloadKind::Json);
        assert_eq!(PayloadKind::of(b"eyJh.eyJi.c2ln"), PayloadKind::Jwt);
        assert_eq!(PayloadKind::of(b" eyJh.eyJi.c2ln\n"), PayloadKind::Jwt);
        assert_eq!(PayloadKind::of(b"eyJh.a.b.c.d"), PayloadKind::Jwe);
        assert_eq!(PayloadKind::of(b"eyJh..c"), PayloadKind::Jwt, "an empty part is still a JWS's shape");
        for json in [&b""[..], b"a.b", b"a.b.c.d", b"a.b.c.d.e.f", b"a.b+c.d", b"not json", b"[1.5,2.5]"] {
            assert_eq!(PayloadKind::of(json), PayloadKind::Json, "{}", String::from_utf8_lossy(json));
        }
    }
}
