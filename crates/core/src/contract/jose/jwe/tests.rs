use super::*;
use crate::testing::b64url;

fn jwe(header: &str, iv_len: usize, tag_len: usize) -> String {
    format!(
        "{}.{}.{}.{}.{}",
        b64url(header.as_bytes()),
        b64url(b"wrapped"),
        b64url(vec![1; iv_len]),
        b64url(b"ciphertext"),
        b64url(vec![2; tag_len])
    )
}

#[test]
fn a_jwe_is_read_as_zitadel_makes_it() {
    let header = r#"{"alg":"ECDH-ES+A256KW","cty":"JWT","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":"eA","y":"eQ"},"kid":"key-7","typ":"JWT"}"#;
    let text = jwe(header, 12, 16);
    let read = parse_jwe(&text).unwrap();
    assert_eq!((read.alg, read.kid.as_deref()), (JweAlg::EcdhEsA256Kw, Some("key-7")));
    assert_eq!(
        read.epk,
        Some(Epk { curve: Curve::P256, json: r#"{"crv":"P-256","kty":"EC","x":"eA","y":"eQ"}"#.into() })
    );
    assert_eq!((read.apu.len(), read.apv.len()), (0, 0));
    assert_eq!(read.aad, b64url(header.as_bytes()));
    assert_eq!(read.encrypted_key, b"wrapped");
    assert_eq!(read.ciphertext_and_tag, [&b"ciphertext"[..], &[2; 16]].concat());
    let rsa_text = jwe(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k","apu":"QWxpY2U"}"#, 12, 16);
    let rsa = parse_jwe(&rsa_text).unwrap();
    assert_eq!((rsa.alg, rsa.epk, rsa.apu), (JweAlg::RsaOaep256, None, b"Alice".to_vec()));
}

#[test]
fn only_what_zitadel_produces_is_decrypted() {
    let refused = |header: &str| parse_jwe(&jwe(header, 12, 16)).err();
    assert_eq!(
        refused(r#"{"alg":"RSA-OAEP-256","enc":"A128GCM"}"#),
        Some(JoseError::Undecryptable("the JWE content encryption is not A256GCM"))
    );
    assert_eq!(
        refused(r#"{"alg":"RSA1_5","enc":"A256GCM"}"#),
        Some(JoseError::Undecryptable("the JWE key algorithm is neither RSA-OAEP-256 nor ECDH-ES+A256KW"))
    );
    assert_eq!(
        refused(r#"{"alg":"dir","enc":"A256GCM"}"#),
        Some(JoseError::Undecryptable("the JWE key algorithm is neither RSA-OAEP-256 nor ECDH-ES+A256KW"))
    );
    assert_eq!(
        refused(r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}"#),
        Some(JoseError::Undecryptable("the JWE has no ephemeral EC key (epk)"))
    );
    assert_eq!(
        refused(r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"kty":"EC","crv":"P-192","x":"","y":""}}"#),
        Some(JoseError::Undecryptable("the JWE's ephemeral key is on an unsupported curve"))
    );
    assert_eq!(
        refused(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","zip":"DEF"}"#),
        Some(JoseError::Undecryptable("the JWE header asks for compression or extensions"))
    );
    let malformed = Some(JoseError::Undecryptable("the JWE is not a compact JWE"));
    let good = r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#;
    assert_eq!(parse_jwe(&jwe(good, 16, 16)).err(), malformed, "GCM's IV is 12 bytes");
    assert_eq!(parse_jwe(&jwe(good, 12, 8)).err(), malformed, "and its tag 16");
    assert_eq!(parse_jwe("a.b.c.d").err(), malformed);
}

#[test]
fn jwe_header_members_are_matched_exactly_and_the_last_of_a_repeated_one_counts() {
    let header = r#"{"alg":"dir","alg":"ECDH-ES+A256KW","enc":"A128GCM","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","crv":"P-384"},"kid":"a","kid":"b"}"#;
    let text = jwe(header, 12, 16);
    let read = parse_jwe(&text).unwrap();
    assert_eq!((read.alg, read.kid.as_deref()), (JweAlg::EcdhEsA256Kw, Some("b")));
    assert_eq!(read.epk.map(|e| e.curve), Some(Curve::P384));
    let refused = |header: &str| parse_jwe(&jwe(header, 12, 16)).err().unwrap();
    let malformed = JoseError::Undecryptable("the JWE is not a compact JWE");
    let no_epk = JoseError::Undecryptable("the JWE has no ephemeral EC key (epk)");
    for (header, why) in [
        (
            r#"{"ALG":"RSA-OAEP-256","enc":"A256GCM"}"#,
            "the JWE key algorithm is neither RSA-OAEP-256 nor ECDH-ES+A256KW",
        ),
        (r#"{"alg":"RSA-OAEP-256","Enc":"A256GCM"}"#, "the JWE content encryption is not A256GCM"),
        (r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","crit":null}"#, "the JWE header asks for compression or extensions"),
        (r#"{"alg":1,"enc":"A256GCM","zip":"DEF"}"#, "the JWE header asks for compression or extensions"),
    ] {
        assert_eq!(refused(header), JoseError::Undecryptable(why), "{header}");
    }
    for (header, why) in [
        (r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":7}"#, malformed),
        (r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","apu":"!"}"#, malformed),
        (r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":null}"#, no_epk),
        (r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"KTY":"EC","crv":"P-256"}}"#, no_epk),
        (r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"kty":"EC","crv":256}}"#, no_epk),
    ] {
        assert_eq!(refused(header), why, "{header}");
    }
    let rsa_text = jwe(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","epk":7}"#, 12, 16);
    let rsa = parse_jwe(&rsa_text).unwrap();
    assert_eq!(rsa.epk, None, "RSA-OAEP reads no epk");
}
