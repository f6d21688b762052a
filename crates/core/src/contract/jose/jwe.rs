//! Compact JWE (RFC 7516) as ZITADEL makes it: the key-management algorithms, the protected header
//! and its ephemeral key, and reading a compact JWE. Only `A256GCM` content encryption.

use serde_json::value::RawValue;

use super::jwk::Curve;
use super::{b64url, members, strings, JoseError};

/// The key-management algorithms a JWE may use, as ZITADEL chooses them by the target key's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JweAlg {
    RsaOaep256,
    EcdhEsA256Kw,
}

/// ECDH-ES's ephemeral public key: its curve, and its JSON object as the header gives it, which
/// the runtime imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epk {
    pub curve: Curve,
    pub json: Box<str>,
}

/// A compact JWE, read but not yet decrypted.
pub struct Jwe<'a> {
    pub alg: JweAlg,
    /// The id of the target key it was encrypted to, if the header names it.
    pub kid: Option<String>,
    /// For ECDH-ES: the ephemeral key, and the parties' info for the KDF.
    pub epk: Option<Epk>,
    pub apu: Vec<u8>,
    pub apv: Vec<u8>,
    /// The additional authenticated data: the protected header as sent.
    pub aad: &'a str,
    pub encrypted_key: Vec<u8>,
    pub iv: Vec<u8>,
    /// The ciphertext followed by the 16-byte tag, as AES-GCM decryption takes them.
    pub ciphertext_and_tag: Vec<u8>,
}

/// Reads a compact JWE. Only what ZITADEL produces is accepted: `A256GCM` content encryption,
/// `RSA-OAEP-256` or `ECDH-ES+A256KW` key management, no compression, no critical extensions.
pub fn parse_jwe(text: &str) -> Result<Jwe<'_>, JoseError> {
    const MALFORMED: JoseError = JoseError::Undecryptable("the JWE is not a compact JWE");
    let text = text.trim_ascii();
    let parts: Vec<&str> = text.split('.').collect();
    let [header, encrypted_key, iv, ciphertext, tag] = parts[..] else { return Err(MALFORMED) };
    let header_bytes = b64url(header).ok_or(MALFORMED)?;
    let header_json: &RawValue = serde_json::from_slice(&header_bytes).map_err(|_| MALFORMED)?;
    let [zip, crit, epk, alg, enc, kid, apu, apv] =
        members(header_json, ["zip", "crit", "epk", "alg", "enc", "kid", "apu", "apv"]).ok_or(MALFORMED)?;
    if zip.is_some() || crit.is_some() {
        return Err(JoseError::Undecryptable("the JWE header asks for compression or extensions"));
    }
    let [alg, enc, kid, apu, apv] = strings([alg, enc, kid, apu, apv]).map_err(|_| MALFORMED)?;
    if enc.as_deref() != Some("A256GCM") {
        return Err(JoseError::Undecryptable("the JWE content encryption is not A256GCM"));
    }
    let alg = match alg.as_deref() {
        Some("RSA-OAEP-256") => JweAlg::RsaOaep256,
        Some("ECDH-ES+A256KW") => JweAlg::EcdhEsA256Kw,
        _ => return Err(JoseError::Undecryptable("the JWE key algorithm is neither RSA-OAEP-256 nor ECDH-ES+A256KW")),
    };
    let epk = match (alg, epk) {
        (JweAlg::RsaOaep256, _) => None,
        (JweAlg::EcdhEsA256Kw, Some(epk)) => {
            let no_epk = JoseError::Undecryptable("the JWE has no ephemeral EC key (epk)");
            let [kty, crv] = strings(members(epk, ["kty", "crv"]).ok_or(no_epk)?).map_err(|_| no_epk)?;
            if kty.as_deref() != Some("EC") {
                return Err(no_epk);
            }
            let curve = crv
                .as_deref()
                .and_then(Curve::from_name)
                .ok_or(JoseError::Undecryptable("the JWE's ephemeral key is on an unsupported curve"))?;
            Some(Epk { curve, json: epk.get().into() })
        }
        (JweAlg::EcdhEsA256Kw, None) => return Err(JoseError::Undecryptable("the JWE has no ephemeral EC key (epk)")),
    };
    let party = |info: Option<String>| match info {
        None => Some(Vec::new()),
        Some(text) => b64url(&text),
    };
    let iv = b64url(iv).ok_or(MALFORMED)?;
    let mut ciphertext_and_tag = b64url(ciphertext).ok_or(MALFORMED)?;
    let tag = b64url(tag).ok_or(MALFORMED)?;
    if iv.len() != 12 || tag.len() != 16 {
        return Err(MALFORMED);
    }
    ciphertext_and_tag.extend_from_slice(&tag);
    Ok(Jwe {
        alg,
        kid,
        epk,
        apu: party(apu).ok_or(MALFORMED)?,
        apv: party(apv).ok_or(MALFORMED)?,
        aad: header,
        encrypted_key: b64url(encrypted_key).ok_or(MALFORMED)?,
        iv,
        ciphertext_and_tag,
    })
}

#[cfg(test)]
mod tests;
