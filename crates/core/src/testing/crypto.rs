//! The runtime's JOSE cryptography on the host, in RustCrypto crates (feature `testing` only: the
//! worker's wasm uses WebCrypto). What WebCrypto would refuse, this refuses: `None`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::contract::jose::{Curve, Epk, Hash, Jwk, JwsAlg};

/// The EC members of a key's JSON, as the `jwk` features of the curve crates read them (they refuse
/// members such as `alg` and `kid`).
fn ec_jwk(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let member = |name: &str| value.get(name).cloned();
    Some(serde_json::json!({ "kty": "EC", "crv": member("crv")?, "x": member("x")?, "y": member("y")? }).to_string())
}

/// The base64url member `name` of a key's JSON, decoded.
fn member(json: &str, name: &str) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    URL_SAFE_NO_PAD.decode(value.get(name)?.as_str()?).ok()
}

pub fn verify_signature(alg: JwsAlg, key: &Jwk, data: &[u8], signature: &[u8]) -> Option<bool> {
    use signature::Verifier;
    match alg {
        JwsAlg::EdDsa => {
            let x: [u8; 32] = member(&key.json, "x")?.try_into().ok()?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&x).ok()?;
            let signature = ed25519_dalek::Signature::from_slice(signature).ok()?;
            Some(key.verify(data, &signature).is_ok())
        }
        JwsAlg::Es256 | JwsAlg::Es384 | JwsAlg::Es512 => {
            let jwk = &ec_jwk(&key.json)?;
            Some(match alg.curve()? {
                Curve::P256 => {
                    let key = p256::ecdsa::VerifyingKey::from(p256::PublicKey::from_jwk_str(jwk).ok()?);
                    key.verify(data, &p256::ecdsa::Signature::from_slice(signature).ok()?).is_ok()
                }
                Curve::P384 => {
                    let key = p384::ecdsa::VerifyingKey::from(p384::PublicKey::from_jwk_str(jwk).ok()?);
                    key.verify(data, &p384::ecdsa::Signature::from_slice(signature).ok()?).is_ok()
                }
                Curve::P521 => {
                    let point = p521::PublicKey::from_jwk_str(jwk).ok()?;
                    let key = p521::ecdsa::VerifyingKey::from_affine(*point.as_affine()).ok()?;
                    key.verify(data, &p521::ecdsa::Signature::from_slice(signature).ok()?).is_ok()
                }
            })
        }
        _ => {
            let n = rsa::BigUint::from_bytes_be(&member(&key.json, "n")?);
            let e = rsa::BigUint::from_bytes_be(&member(&key.json, "e")?);
            let key = rsa::RsaPublicKey::new(n, e).ok()?;
            let pss = matches!(alg, JwsAlg::Ps256 | JwsAlg::Ps384 | JwsAlg::Ps512);
            Some(match (alg.hash(), pss) {
                (Hash::Sha256, false) => rsa_pkcs1::<sha2::Sha256>(key, data, signature),
                (Hash::Sha384, false) => rsa_pkcs1::<sha2::Sha384>(key, data, signature),
                (Hash::Sha512, false) => rsa_pkcs1::<sha2::Sha512>(key, data, signature),
                (Hash::Sha256, true) => rsa_pss::<sha2::Sha256>(key, data, signature),
                (Hash::Sha384, true) => rsa_pss::<sha2::Sha384>(key, data, signature),
                (Hash::Sha512, true) => rsa_pss::<sha2::Sha512>(key, data, signature),
            })
        }
    }
}

fn rsa_pkcs1<D: sha2::Digest + rsa::pkcs8::AssociatedOid>(
    key: rsa::RsaPublicKey,
    data: &[u8],
    signature: &[u8],
) -> bool {
    use signature::Verifier;
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else { return false };
    rsa::pkcs1v15::VerifyingKey::<D>::new(key).verify(data, &signature).is_ok()
}

fn rsa_pss<D: sha2::Digest + sha2::digest::FixedOutputReset>(
    key: rsa::RsaPublicKey,
    data: &[u8],
    signature: &[u8],
) -> bool {
    use signature::Verifier;
    let Ok(signature) = rsa::pss::Signature::try_from(signature) else { return false };
    rsa::pss::VerifyingKey::<D>::new(key).verify(data, &signature).is_ok()
}

pub fn rsa_oaep_256_decrypt(pkcs8: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8).ok()?;
    key.decrypt(rsa::Oaep::new::<sha2::Sha256>(), ciphertext).ok()
}

pub fn ecdh_shared_secret(pkcs8: &[u8], peer: &Epk) -> Option<Vec<u8>> {
    use p256::pkcs8::DecodePrivateKey;
    let jwk = &ec_jwk(&peer.json)?;
    Some(match peer.curve {
        Curve::P256 => {
            let secret = p256::SecretKey::from_pkcs8_der(pkcs8).ok()?;
            let public = p256::PublicKey::from_jwk_str(jwk).ok()?;
            p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine()).raw_secret_bytes().to_vec()
        }
        Curve::P384 => {
            let secret = p384::SecretKey::from_pkcs8_der(pkcs8).ok()?;
            let public = p384::PublicKey::from_jwk_str(jwk).ok()?;
            p384::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine()).raw_secret_bytes().to_vec()
        }
        Curve::P521 => {
            let secret = p521::SecretKey::from_pkcs8_der(pkcs8).ok()?;
            let public = p521::PublicKey::from_jwk_str(jwk).ok()?;
            p521::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine()).raw_secret_bytes().to_vec()
        }
    })
}

pub fn aes_kw_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    let kek: [u8; 32] = kek.try_into().ok()?;
    aes_kw::KekAes256::from(kek).unwrap_vec(wrapped).ok()
}

pub fn aes_gcm_decrypt(key: &[u8], iv: &[u8], aad: &[u8], ciphertext_and_tag: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).ok()?;
    let nonce = aes_gcm::Nonce::from_slice(iv.get(..12).filter(|_| iv.len() == 12)?);
    cipher.decrypt(nonce, Payload { msg: ciphertext_and_tag, aad }).ok()
}

pub fn aes_gcm_encrypt(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).ok()?;
    let nonce = aes_gcm::Nonce::from_slice(iv.get(..12).filter(|_| iv.len() == 12)?);
    cipher.encrypt(nonce, Payload { msg: plaintext, aad }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test cases 13 and 14 of the GCM specification (McGrew and Viega), AES-256 with a zero key
    /// and IV: the fake's encryption is AES-GCM, with the tag after the ciphertext.
    #[test]
    fn aes_gcm_encrypt_answers_the_specification_vectors() {
        let (key, iv) = ([0u8; 32], [0u8; 12]);
        assert_eq!(hex::encode(aes_gcm_encrypt(&key, &iv, b"", b"").unwrap()), "530f8afbc74536b9a963b4f1c4cb738b");
        let sealed = aes_gcm_encrypt(&key, &iv, b"", &[0u8; 16]).unwrap();
        assert_eq!(hex::encode(&sealed), "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
        assert_eq!(aes_gcm_decrypt(&key, &iv, b"", &sealed).unwrap(), [0u8; 16]);
        assert_eq!(aes_gcm_decrypt(&key, &iv, b"other aad", &sealed), None);
    }

    /// The fake does AES-256 with 96-bit IVs only (what the worker uses), and refuses the rest rather
    /// than answer something WebCrypto would not.
    #[test]
    fn aes_gcm_encrypt_refuses_other_key_and_iv_sizes() {
        assert_eq!(aes_gcm_encrypt(&[0u8; 31], &[0u8; 12], b"", b"x"), None);
        assert_eq!(aes_gcm_encrypt(&[0u8; 32], &[0u8; 16], b"", b"x"), None);
    }
}
