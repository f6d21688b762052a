//! Signed and encrypted payloads (docs/zitadel-contract.md §9): a target whose `payloadType` is
//! `PAYLOAD_TYPE_JWT` gets the JSON payload as a compact JWS signed with the instance's web key; one
//! whose type is `PAYLOAD_TYPE_JWE` gets that JWS encrypted to the target's public key
//! (`RSA-OAEP-256`, or `ECDH-ES+A256KW` for an EC key, with `A256GCM`).
//!
//! This module reads and checks them: which kind a body is, the compact serializations, the
//! headers, the key set (JWKS), which key and algorithm a JWS may be verified with, and the Concat
//! KDF of ECDH-ES. The cryptography itself (signatures, RSA-OAEP, ECDH, AES-KW, AES-GCM) is the
//! runtime's, through [`Crypto`](crate::port::Crypto): in workerd, WebCrypto. Messages name what is wrong, never a key,
//! a token or a payload value.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

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

/// An elliptic curve of the NIST family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// The size of a coordinate (and of an ECDH shared secret), in bytes.
    pub fn field_bytes(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
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

/// A public key of the instance's key set: what the checks read of it, and the key as the JWKS
/// gives it (its JSON), which the runtime imports.
#[derive(Clone, PartialEq)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub usage: Option<String>,
    pub crv: Option<String>,
    /// The key's JSON object, as received.
    pub json: Box<str>,
}

// Public keys, but a JWKS is the instance's: print only what identifies a key.
impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk").field("kty", &self.kty).field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

/// The instance's key set (`/oauth/v2/keys`).
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The members `names` of the JSON object `raw`, read in one pass and matched exactly (JOSE names
/// are case-sensitive), or `None` if it is no object.
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

/// The most keys a key set may hold (an instance has a handful).
pub const MAX_JWKS_KEYS: usize = 100;

impl Jwks {
    /// The key set in `body`, if it is one of at most [`MAX_JWKS_KEYS`] keys. Keys that are not
    /// objects with a `kty` are left out.
    pub fn parse(body: &[u8]) -> Option<Jwks> {
        let raw: &RawValue = serde_json::from_slice(body).ok()?;
        let keys = json::exact_members(raw, &["keys"])?[0]?;
        let keys: Vec<&RawValue> = serde_json::from_str(keys.get()).ok()?;
        if keys.len() > MAX_JWKS_KEYS {
            return None;
        }
        let keys = keys
            .into_iter()
            .filter_map(|key| {
                let [kty, kid, alg, usage, crv] = strings(members(key, ["kty", "kid", "alg", "use", "crv"])?).ok()?;
                Some(Jwk { kty: kty?, kid, alg, usage, crv, json: key.get().into() })
            })
            .collect();
        Some(Jwks { keys })
    }

    /// The key named `kid`, if the set has it.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
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

fn b64url(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part).ok()
}

/// Reads a compact JWS. Refuses what must never verify: `none`, `HS*` and unknown algorithms,
/// critical extensions, an unencoded payload, no `kid`.
pub fn parse_jws(text: &str) -> Result<Jws<'_>, JoseError> {
    const MALFORMED: JoseError = JoseError::Signature("the JWS is not a compact JWS");
    let text = text.trim_ascii();
    let mut parts = text.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MALFORMED);
    };
    let header_bytes = b64url(header).ok_or(MALFORMED)?;
    let header_json: &RawValue = serde_json::from_slice(&header_bytes).map_err(|_| MALFORMED)?;
    let [b64, crit, alg, kid] = members(header_json, ["b64", "crit", "alg", "kid"]).ok_or(MALFORMED)?;
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

/// The key-encryption key of ECDH-ES+A256KW (RFC 7518 §4.6.2): the Concat KDF of NIST SP 800-56A
/// over the shared secret `z`, with SHA-256, for a 256-bit key. One round suffices.
pub fn concat_kdf(z: &[u8], apu: &[u8], apv: &[u8]) -> [u8; 32] {
    kdf_round(z, b"ECDH-ES+A256KW", apu, apv, 256)
}

/// The first (SHA-256-sized) output block of the Concat KDF for `alg_id` and `key_bits`.
fn kdf_round(z: &[u8], alg_id: &[u8], apu: &[u8], apv: &[u8], key_bits: u32) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(1u32.to_be_bytes());
    hash.update(z);
    for info in [alg_id, apu, apv] {
        hash.update((info.len() as u32).to_be_bytes());
        hash.update(info);
    }
    hash.update(key_bits.to_be_bytes()); // SuppPubInfo; SuppPrivInfo is empty
    hash.finalize().into()
}

#[cfg(test)]
mod tests;
