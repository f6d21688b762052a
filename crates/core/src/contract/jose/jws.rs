//! Compact JWS (RFC 7515): the algorithms a web key signs with, the protected header, reading a
//! compact JWS, which key may verify it, and the shape of its signature.

use serde_json::value::RawValue;

use super::jwk::{Curve, Jwk};
use super::{b64url, members, strings, JoseError};

/// The JWS algorithms a web key can sign with (ZITADEL's are RS*, ES* and EdDSA; PS* are accepted
/// too). `none` and the `HS*` family are never accepted: with them anyone could sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

/// A hash function, by its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl JwsAlg {
    pub fn from_name(name: &str) -> Option<JwsAlg> {
        Some(match name {
            "RS256" => JwsAlg::Rs256,
            "RS384" => JwsAlg::Rs384,
            "RS512" => JwsAlg::Rs512,
            "PS256" => JwsAlg::Ps256,
            "PS384" => JwsAlg::Ps384,
            "PS512" => JwsAlg::Ps512,
            "ES256" => JwsAlg::Es256,
            "ES384" => JwsAlg::Es384,
            "ES512" => JwsAlg::Es512,
            "EdDSA" => JwsAlg::EdDsa,
            _ => return None,
        })
    }

    pub fn hash(self) -> Hash {
        match self {
            JwsAlg::Rs256 | JwsAlg::Ps256 | JwsAlg::Es256 | JwsAlg::EdDsa => Hash::Sha256,
            JwsAlg::Rs384 | JwsAlg::Ps384 | JwsAlg::Es384 => Hash::Sha384,
            JwsAlg::Rs512 | JwsAlg::Ps512 | JwsAlg::Es512 => Hash::Sha512,
        }
    }

    /// The curve an ECDSA algorithm signs on (ES512 is P-521).
    pub fn curve(self) -> Option<Curve> {
        match self {
            JwsAlg::Es256 => Some(Curve::P256),
            JwsAlg::Es384 => Some(Curve::P384),
            JwsAlg::Es512 => Some(Curve::P521),
            _ => None,
        }
    }

    /// The key type (`kty`) the algorithm needs.
    fn kty(self) -> &'static str {
        match self {
            JwsAlg::Es256 | JwsAlg::Es384 | JwsAlg::Es512 => "EC",
            JwsAlg::EdDsa => "OKP",
            _ => "RSA",
        }
    }
}

/// A compact JWS, read but not yet verified.
pub struct Jws<'a> {
    pub alg: JwsAlg,
    pub kid: String,
    /// What the signature is over: `header.payload`, as sent.
    pub signing_input: &'a str,
    /// The payload, decoded: for ZITADEL, the JSON payload of the call.
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

const MALFORMED: JoseError = JoseError::Signature("the JWS is not a compact JWS");

/// The protected header of a JWS as the worker accepts it (RFC 7515 §4.1): an algorithm of a web
/// key and the key's id. A header with `crit` or `b64` (RFC 7797) is refused as it is read, so they
/// have no field; the other members (`typ`, `cty`, ...) are not read.
struct JwsHeader {
    alg: JwsAlg,
    kid: String,
}

impl JwsHeader {
    /// Reads the header from its base64url part. Its members are matched exactly (`{"ALG":..}`
    /// names no algorithm; of a repeated one the last counts), `null` as absent. In this order:
    /// it must be a JSON object; `crit` or `b64`, present at all, is refused; `alg` and `kid` must
    /// be strings; `alg` must be given and be a web key's, not `none` or `HS*`; `kid` must be given.
    fn read(part: &str) -> Result<JwsHeader, JoseError> {
        let bytes = b64url(part).ok_or(MALFORMED)?;
        let raw: &RawValue = serde_json::from_slice(&bytes).map_err(|_| MALFORMED)?;
        let [b64, crit, alg, kid] = members(raw, ["b64", "crit", "alg", "kid"]).ok_or(MALFORMED)?;
        if b64.is_some() || crit.is_some() {
            return Err(JoseError::Signature("the JWS header asks for extensions the worker does not support"));
        }
        let [alg, kid] = strings([alg, kid]).map_err(|_| MALFORMED)?;
        let alg = alg.ok_or(JoseError::Signature("the JWS header names no algorithm"))?;
        let alg = JwsAlg::from_name(&alg).ok_or(JoseError::Signature(match alg.as_str() {
            "none" => "the JWS is unsigned (alg none)",
            "HS256" | "HS384" | "HS512" => "the JWS is signed with a shared secret (HS*), not with a web key",
            _ => "the JWS algorithm is not one of ZITADEL's web key algorithms",
        }))?;
        let kid = kid.ok_or(JoseError::Signature("the JWS header names no key (kid)"))?;
        Ok(JwsHeader { alg, kid })
    }
}

/// Reads a compact JWS. Refuses what must never verify: `none`, `HS*` and unknown algorithms,
/// critical extensions, an unencoded payload, no `kid`.
pub fn parse_jws(text: &str) -> Result<Jws<'_>, JoseError> {
    let text = text.trim_ascii();
    let mut parts = text.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MALFORMED);
    };
    let JwsHeader { alg, kid } = JwsHeader::read(header)?;
    let signing_input = &text[..header.len() + 1 + payload.len()];
    Ok(Jws {
        alg,
        kid,
        signing_input,
        payload: b64url(payload).ok_or(MALFORMED)?,
        signature: b64url(signature).ok_or(MALFORMED)?,
    })
}

/// Checks that `key` may verify a JWS of `alg`: a key for signatures, of the algorithm's type and
/// curve, and, when the key names its algorithm (ZITADEL's always do), that one.
pub fn check_key(key: &Jwk, alg: JwsAlg) -> Result<(), JoseError> {
    const MISMATCH: JoseError = JoseError::Signature("the JWS algorithm does not match its key");
    if key.usage.as_deref().is_some_and(|u| u != "sig") {
        return Err(JoseError::Signature("the JWS key is not a signing key"));
    }
    if key.kty != alg.kty() || key.alg.as_deref().is_some_and(|a| JwsAlg::from_name(a) != Some(alg)) {
        return Err(MISMATCH);
    }
    match alg {
        JwsAlg::EdDsa if key.crv.as_deref() != Some("Ed25519") => Err(MISMATCH),
        _ if alg.curve().is_some() && key.crv.as_deref().and_then(Curve::from_name) != alg.curve() => Err(MISMATCH),
        _ => Ok(()),
    }
}

/// Checks the shape of a JWS signature: ECDSA signatures are `r || s`, each the curve's field size
/// (WebCrypto's form, not DER); Ed25519's are 64 bytes.
pub fn check_signature_shape(alg: JwsAlg, signature: &[u8]) -> Result<(), JoseError> {
    let expected = match alg {
        JwsAlg::EdDsa => Some(64),
        alg => alg.curve().map(|c| 2 * c.field_bytes()),
    };
    match expected {
        Some(len) if signature.len() != len => Err(JoseError::Signature("the JWS signature has the wrong length")),
        _ if signature.is_empty() => Err(JoseError::Signature("the JWS signature is empty")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
