//! Proof Key for Code Exchange (RFC 7636) with the `S256` method, for both authorization requests
//! of the flow (ZITADEL's login is a public client, so PKCE is its only proof; Microsoft's is
//! PKCE on top of the client secret).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The `code_verifier` made of 32 random octets: their base64url encoding without padding, 43
/// characters of `[A-Za-z0-9_-]` (RFC 7636 §4.1 recommends exactly this; 43 is the least the
/// RFC allows, and 256 bits of entropy is what it asks for). The caller brings the randomness
/// (`crypto.getRandomValues` in the worker), so this stays pure.
pub fn verifier_from(random: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// The `code_challenge` for `code_challenge_method=S256`: `BASE64URL(SHA256(ASCII(verifier)))`
/// without padding (RFC 7636 §4.2).
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: the octets, the verifier made of them and its S256 challenge.
    const RFC_OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
        240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_verifier_is_the_base64url_of_the_octets_as_in_rfc_7636_appendix_b() {
        assert_eq!(verifier_from(&RFC_OCTETS), RFC_VERIFIER);
    }

    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(challenge_s256(RFC_VERIFIER), RFC_CHALLENGE);
    }

    #[test]
    fn a_verifier_is_43_unreserved_characters_whatever_the_octets() {
        for octets in [[0u8; 32], [0xff; 32], [0xfb; 32], RFC_OCTETS] {
            let verifier = verifier_from(&octets);
            assert_eq!(verifier.len(), 43, "{verifier}");
            assert!(verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{verifier}");
        }
    }
}
