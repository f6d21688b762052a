//! The Concat KDF of ECDH-ES (RFC 7518 §4.6.2): the key-encryption key of `ECDH-ES+A256KW`, derived
//! from the ECDH shared secret that the runtime computes.

use sha2::{Digest, Sha256};

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
mod tests {
    use super::*;

    #[test]
    fn concat_kdf_matches_rfc_7518_appendix_c() {
        // RFC 7518 Appendix C: ECDH-ES for A128GCM, PartyUInfo "Alice", PartyVInfo "Bob".
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128,
            106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let derived = kdf_round(&z, b"A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(derived[..16], [86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26]);
        assert_eq!(concat_kdf(&z, b"", b""), kdf_round(&z, b"ECDH-ES+A256KW", b"", b"", 256));
        assert_ne!(concat_kdf(&z, b"", b""), concat_kdf(&z, b"a", b""));
    }
}
