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

const MALFORMED: JoseError = JoseError::Undecryptable("the JWE is not a compact JWE");
const NO_EPK: JoseError = JoseError::Undecryptable("the JWE has no ephemeral EC key (epk)");

/// The protected header of a JWE as the worker accepts it (RFC 7516 §4.1, RFC 7518 §4.6.1): its
/// key-management algorithm, the target key's id, and for ECDH-ES the ephemeral key and the
/// parties' info, decoded. `enc` must be `A256GCM`, so it has no field; a header with `zip` or
/// `crit` is refused as it is read. The other members (`typ`, `cty`, ...) are not read.
struct JweHeader {
    alg: JweAlg,
    kid: Option<String>,
    epk: Option<Epk>,
    apu: Vec<u8>,
    apv: Vec<u8>,
}

impl JweHeader {
    /// Reads the header from its base64url part. Its members are matched exactly (of a repeated
    /// one the last counts), `null` as absent. In this order: it must be a JSON object; `zip` or
    /// `crit`, present at all, is refused; `alg`, `enc`, `kid`, `apu` and `apv` must be strings;
    /// `enc` must be `A256GCM`; `alg` `RSA-OAEP-256` or `ECDH-ES+A256KW`, the latter with an `epk`
    /// (read by [`Epk::read`]; for RSA-OAEP any `epk` is ignored); `apu` and `apv` base64url.
    fn read(part: &str) -> Result<JweHeader, JoseError> {
        let bytes = b64url(part).ok_or(MALFORMED)?;
        let raw: &RawValue = serde_json::from_slice(&bytes).map_err(|_| MALFORMED)?;
        let [zip, crit, epk, alg, enc, kid, apu, apv] =
            members(raw, ["zip", "crit", "epk", "alg", "enc", "kid", "apu", "apv"]).ok_or(MALFORMED)?;
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
            _ => {
                return Err(JoseError::Undecryptable(
                    "the JWE key algorithm is neither RSA-OAEP-256 nor ECDH-ES+A256KW",
                ))
            }
        };
        let epk = match alg {
            JweAlg::RsaOaep256 => None,
            JweAlg::EcdhEsA256Kw => Some(Epk::read(epk.ok_or(NO_EPK)?)?),
        };
        let party = |info: Option<String>| match info {
            None => Some(Vec::new()),
            Some(text) => b64url(&text),
        };
        Ok(JweHeader { alg, kid, epk, apu: party(apu).ok_or(MALFORMED)?, apv: party(apv).ok_or(MALFORMED)? })
    }
}

impl Epk {
    /// Reads the header's `epk` member: an object whose `kty` is `EC` (matched exactly, as the
    /// header's members) on a curve of [`Curve`]; its other members are the runtime's to read.
    fn read(raw: &RawValue) -> Result<Epk, JoseError> {
        let [kty, crv] = strings(members(raw, ["kty", "crv"]).ok_or(NO_EPK)?).map_err(|_| NO_EPK)?;
        if kty.as_deref() != Some("EC") {
            return Err(NO_EPK);
        }
        let curve = crv
            .as_deref()
            .and_then(Curve::from_name)
            .ok_or(JoseError::Undecryptable("the JWE's ephemeral key is on an unsupported curve"))?;
        Ok(Epk { curve, json: raw.get().into() })
    }
}

/// Reads a compact JWE. Only what ZITADEL produces is accepted: `A256GCM` content encryption,
/// `RSA-OAEP-256` or `ECDH-ES+A256KW` key management, no compression, no critical extensions.
pub fn parse_jwe(text: &str) -> Result<Jwe<'_>, JoseError> {
    let text = text.trim_ascii();
    let parts: Vec<&str> = text.split('.').collect();
    let [header, encrypted_key, iv, ciphertext, tag] = parts[..] else { return Err(MALFORMED) };
    let JweHeader { alg, kid, epk, apu, apv } = JweHeader::read(header)?;
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
        apu,
        apv,
        aad: header,
        encrypted_key: b64url(encrypted_key).ok_or(MALFORMED)?,
        iv,
        ciphertext_and_tag,
    })
}

#[cfg(test)]
mod tests;
