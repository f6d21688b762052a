//! Opening a signed or encrypted payload (docs/zitadel-contract.md §9): which kind a body is,
//! whether `PAYLOAD_TYPES` accepts it, and, for a JWT, the check of its signature against the
//! instance's key set; for a JWE, its decryption with the target's private keys and then that
//! same check of the JWS inside. What comes out is the JSON payload, decoded as ever.
//!
//! The HMAC of `ZITADEL-Signature` has been checked before, over the body as sent: the JWS carries
//! no time, so that check stays the only one of freshness.

use std::borrow::Cow;

use crate::config::{PayloadConfig, PAYLOAD_DECRYPTION_KEY, ZITADEL_DOMAIN};
use crate::contract::jose::{self, concat_kdf, JoseError, Jwe, JweAlg, PayloadKind};
use crate::port::{Clock, Crypto, Http, Timer};
use crate::upstream::jwks::JwksCache;
use crate::upstream::UpstreamError;

/// Why a payload was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// `PAYLOAD_TYPES` does not accept this kind.
    Refused(PayloadKind),
    /// This kind needs a setting that is not set.
    NeedsSetting(PayloadKind, &'static str),
    /// The JWS or JWE is refused.
    Jose(JoseError),
    /// The instance's key set could not be read: the payload cannot be checked.
    KeysUnavailable(UpstreamError),
}

impl From<JoseError> for EnvelopeError {
    fn from(e: JoseError) -> Self {
        EnvelopeError::Jose(e)
    }
}

/// The JSON payload in `body`, which is of `kind` ([`PayloadKind::of`]).
pub async fn open<'a, R: Http + Clock + Timer + Crypto>(
    config: &PayloadConfig,
    jwks: Option<&JwksCache>,
    runtime: &R,
    kind: PayloadKind,
    body: &'a [u8],
    deadline_ms: u64,
) -> Result<Cow<'a, [u8]>, EnvelopeError> {
    let accepted = match kind {
        PayloadKind::Json => config.json,
        PayloadKind::Jwt => config.jwt,
        PayloadKind::Jwe => config.jwe,
    };
    if !accepted {
        return Err(EnvelopeError::Refused(kind));
    }
    if kind == PayloadKind::Json {
        return Ok(Cow::Borrowed(body));
    }
    // A JWE needs its private key first: without it nothing else matters.
    if kind == PayloadKind::Jwe && config.decryption_keys.is_empty() {
        return Err(EnvelopeError::NeedsSetting(kind, PAYLOAD_DECRYPTION_KEY));
    }
    // The key set is there exactly when ZITADEL_DOMAIN is (`PayloadConfig::jwks_url`).
    let jwks = jwks.ok_or(EnvelopeError::NeedsSetting(kind, ZITADEL_DOMAIN))?;
    // The shape check passed: the body is ASCII.
    let text = std::str::from_utf8(body).map_err(|_| JoseError::Signature("the JWS is not a compact JWS"))?;
    let jws_text: Cow<str> = match kind {
        PayloadKind::Jwe => {
            let plaintext = decrypt(config, runtime, &jose::parse_jwe(text)?).await?;
            Cow::Owned(
                String::from_utf8(plaintext)
                    .map_err(|_| JoseError::Signature("the JWE does not hold a compact JWS"))?,
            )
        }
        _ => Cow::Borrowed(text),
    };
    verify_jws(jwks, runtime, &jws_text, deadline_ms).await.map(Cow::Owned)
}

/// The payload of the compact JWS `text`, once its signature verifies under the key of the
/// instance's key set that it names: a JWT payload, and the ID tokens of the connect flow.
pub async fn verify_jws<R: Http + Clock + Timer + Crypto>(
    jwks: &JwksCache,
    runtime: &R,
    text: &str,
    deadline_ms: u64,
) -> Result<Vec<u8>, EnvelopeError> {
    let jws = jose::parse_jws(text)?;
    let key_set = jwks.key_set(runtime, &jws.kid, deadline_ms).await.map_err(EnvelopeError::KeysUnavailable)?;
    let key = key_set.find(&jws.kid).ok_or(JoseError::Signature("the JWS names a key the instance does not have"))?;
    jose::check_key(key, jws.alg)?;
    jose::check_signature_shape(jws.alg, &jws.signature)?;
    match runtime.verify_signature(jws.alg, key, jws.signing_input.as_bytes(), &jws.signature).await {
        Some(true) => Ok(jws.payload),
        _ => Err(JoseError::Signature("the JWS signature does not verify").into()),
    }
}

/// The JWE's plaintext, decrypted with the configured key it names, else each in turn.
async fn decrypt<R: Crypto>(config: &PayloadConfig, runtime: &R, jwe: &Jwe<'_>) -> Result<Vec<u8>, EnvelopeError> {
    let keys = &config.decryption_keys;
    let named = |k: &&crate::secret::DecryptionKey| jwe.kid.is_some() && k.kid() == jwe.kid.as_deref();
    let in_order = keys.iter().filter(named).chain(keys.iter().filter(|k| !named(k)));
    for key in in_order {
        let cek = match (jwe.alg, &jwe.epk) {
            (JweAlg::RsaOaep256, _) => runtime.rsa_oaep_256_decrypt(key.pkcs8(), &jwe.encrypted_key).await,
            (JweAlg::EcdhEsA256Kw, Some(epk)) => match runtime.ecdh_shared_secret(key.pkcs8(), epk).await {
                Some(z) => runtime.aes_kw_unwrap(&concat_kdf(&z, &jwe.apu, &jwe.apv), &jwe.encrypted_key).await,
                None => None,
            },
            (JweAlg::EcdhEsA256Kw, None) => None,
        };
        let Some(cek) = cek.filter(|cek| cek.len() == 32) else { continue };
        if let Some(plaintext) =
            runtime.aes_gcm_decrypt(&cek, &jwe.iv, jwe.aad.as_bytes(), &jwe.ciphertext_and_tag).await
        {
            return Ok(plaintext);
        }
    }
    Err(JoseError::Undecryptable("no configured key decrypts the payload").into())
}

#[cfg(test)]
mod tests;
