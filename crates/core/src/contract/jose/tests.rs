use super::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jws(header: &str, payload: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()), b64(signature))
}

fn key(kty: &str, alg: Option<&str>, crv: Option<&str>) -> Jwk {
    Jwk {
        kty: kty.into(),
        kid: Some("k1".into()),
        alg: alg.map(Into::into),
        usage: Some("sig".into()),
        crv: crv.map(Into::into),
        json: "{}".into(),
    }
}

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

#[test]
fn a_jws_is_read_with_its_signing_input_payload_and_signature() {
    let text = jws(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#, r#"{"function":"function/preaccesstoken"}"#, &[7; 64]);
    let read = parse_jws(&text).unwrap();
    assert_eq!((read.alg, read.kid.as_str()), (JwsAlg::Es256, "k1"));
    assert_eq!(read.payload, br#"{"function":"function/preaccesstoken"}"#);
    assert_eq!(read.signature, [7; 64]);
    assert_eq!(read.signing_input, &text[..text.rfind('.').unwrap()]);
}

#[test]
fn none_hs_unknown_algorithms_and_extensions_are_refused() {
    for (header, why) in [
        (r#"{"alg":"none","kid":"k1"}"#, "the JWS is unsigned (alg none)"),
        (r#"{"alg":"HS256","kid":"k1"}"#, "the JWS is signed with a shared secret (HS*), not with a web key"),
        (r#"{"alg":"rs256","kid":"k1"}"#, "the JWS algorithm is not one of ZITADEL's web key algorithms"),
        (r#"{"kid":"k1"}"#, "the JWS header names no algorithm"),
        (r#"{"alg":"RS256"}"#, "the JWS header names no key (kid)"),
        (r#"{"ALG":"RS256","kid":"k1"}"#, "the JWS header names no algorithm"),
        (r#"{"alg":"RS256","KID":"k1"}"#, "the JWS header names no key (kid)"),
        (r#"{"alg":"RS256","alg":"none","kid":"k1"}"#, "the JWS is unsigned (alg none)"),
        (
            r#"{"alg":"RS256","kid":"k1","crit":["exp"]}"#,
            "the JWS header asks for extensions the worker does not support",
        ),
        (r#"{"alg":"RS256","kid":"k1","b64":false}"#, "the JWS header asks for extensions the worker does not support"),
    ] {
        assert_eq!(parse_jws(&jws(header, "{}", b"s")).err(), Some(JoseError::Signature(why)), "{header}");
    }
    let good = b64(br#"{"alg":"RS256","kid":"k1"}"#);
    for malformed in [
        "a.b",
        "a.b.c.d",
        "!!.e30.c2ln",
        &format!("{}.e30.c2ln", b64(b"not json")),
        &format!("{good}.e30.c2l="),
        &format!("{good}.%%.c2ln"),
    ] {
        assert_eq!(
            parse_jws(malformed).err(),
            Some(JoseError::Signature("the JWS is not a compact JWS")),
            "{malformed}"
        );
    }
}

#[test]
fn the_algorithm_comes_from_the_key_and_must_match() {
    assert_eq!(check_key(&key("RSA", Some("RS256"), None), JwsAlg::Rs256), Ok(()));
    assert_eq!(check_key(&key("RSA", None, None), JwsAlg::Rs384), Ok(()), "a key without alg: its type decides");
    assert_eq!(check_key(&key("EC", Some("ES384"), Some("P-384")), JwsAlg::Es384), Ok(()));
    assert_eq!(check_key(&key("EC", Some("ES512"), Some("P-521")), JwsAlg::Es512), Ok(()));
    assert_eq!(check_key(&key("OKP", Some("EdDSA"), Some("Ed25519")), JwsAlg::EdDsa), Ok(()));
    let mismatch = Err(JoseError::Signature("the JWS algorithm does not match its key"));
    assert_eq!(check_key(&key("RSA", Some("RS256"), None), JwsAlg::Rs512), mismatch, "the key's alg wins");
    assert_eq!(check_key(&key("RSA", Some("RS256"), None), JwsAlg::Es256), mismatch);
    assert_eq!(check_key(&key("EC", Some("ES256"), Some("P-384")), JwsAlg::Es256), mismatch, "the curve must fit");
    assert_eq!(check_key(&key("EC", None, None), JwsAlg::Es256), mismatch);
    assert_eq!(check_key(&key("OKP", None, Some("X25519")), JwsAlg::EdDsa), mismatch);
    let mut encryption = key("RSA", Some("RS256"), None);
    encryption.usage = Some("enc".into());
    assert_eq!(check_key(&encryption, JwsAlg::Rs256), Err(JoseError::Signature("the JWS key is not a signing key")));
}

#[test]
fn ecdsa_and_eddsa_signatures_have_their_fixed_sizes() {
    assert_eq!(check_signature_shape(JwsAlg::Es256, &[0; 64]), Ok(()));
    assert_eq!(check_signature_shape(JwsAlg::Es512, &[0; 132]), Ok(()));
    assert_eq!(check_signature_shape(JwsAlg::EdDsa, &[0; 64]), Ok(()));
    assert_eq!(check_signature_shape(JwsAlg::Rs256, &[0; 256]), Ok(()));
    let wrong = Err(JoseError::Signature("the JWS signature has the wrong length"));
    assert_eq!(check_signature_shape(JwsAlg::Es256, &[0; 70]), wrong, "DER is not what JWS carries");
    assert_eq!(check_signature_shape(JwsAlg::Es384, &[0; 64]), wrong);
    assert_eq!(check_signature_shape(JwsAlg::Rs256, &[]), Err(JoseError::Signature("the JWS signature is empty")));
}

fn jwe(header: &str, iv_len: usize, tag_len: usize) -> String {
    format!(
        "{}.{}.{}.{}.{}",
        b64(header.as_bytes()),
        b64(b"wrapped"),
        b64(&vec![1; iv_len]),
        b64(b"ciphertext"),
        b64(&vec![2; tag_len])
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
    assert_eq!(read.aad, b64(header.as_bytes()));
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
fn concat_kdf_matches_rfc_7518_appendix_c() {
    // RFC 7518 Appendix C: ECDH-ES for A128GCM, PartyUInfo "Alice", PartyVInfo "Bob".
    let z = [
        158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128, 106,
        72, 246, 218, 167, 121, 140, 254, 144, 196,
    ];
    let derived = kdf_round(&z, b"A128GCM", b"Alice", b"Bob", 128);
    assert_eq!(derived[..16], [86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26]);
    assert_eq!(concat_kdf(&z, b"", b""), kdf_round(&z, b"ECDH-ES+A256KW", b"", b"", 256));
    assert_ne!(concat_kdf(&z, b"", b""), concat_kdf(&z, b"a", b""));
}

#[test]
fn a_key_set_is_bounded_and_found_by_kid() {
    let jwks = Jwks::parse(br#"{"keys":[{"use":"sig","kty":"RSA","kid":"1","alg":"RS256","n":"AQ","e":"AQAB"},{"kty":"EC","kid":"2","crv":"P-256","x":"eA","y":"eQ","extra":1},{"kid":"no kty"},7]}"#).unwrap();
    assert_eq!(jwks.find("2").map(|k| (k.kty.as_str(), k.crv.as_deref())), Some(("EC", Some("P-256"))));
    assert_eq!(
        jwks.find("1").map(|k| &*k.json),
        Some(r#"{"use":"sig","kty":"RSA","kid":"1","alg":"RS256","n":"AQ","e":"AQAB"}"#)
    );
    assert_eq!(jwks.keys.len(), 2, "keys without kty are left out");
    assert!(jwks.find("3").is_none());
    let many = format!(r#"{{"keys":[{}]}}"#, vec![r#"{"kty":"RSA"}"#; MAX_JWKS_KEYS + 1].join(","));
    assert!(Jwks::parse(many.as_bytes()).is_none());
    assert!(Jwks::parse(b"<html>").is_none());
    assert!(!format!("{:?}", jwks.keys[0]).contains("AQAB"), "Debug shows kid and alg, not the key");
}

#[test]
fn jws_header_members_are_matched_exactly_and_the_last_of_a_repeated_one_counts() {
    let text = jws(r#"{"alg":"none","alg":"RS256","kid":"k0","k\u0069d":"k1"}"#, "{}", b"s");
    let read = parse_jws(&text).unwrap();
    assert_eq!((read.alg, read.kid.as_str()), (JwsAlg::Rs256, "k1"), "an escaped name is the name");
    let extensions = JoseError::Signature("the JWS header asks for extensions the worker does not support");
    for (header, why) in [
        (r#"{"alg":"RS256","kid":"k1","crit":null}"#, extensions),
        (r#"{"alg":1,"kid":"k1","b64":true}"#, extensions),
        (r#"{"alg":1,"kid":"k1"}"#, JoseError::Signature("the JWS is not a compact JWS")),
        (r#"{"alg":"RS256","kid":["k1"]}"#, JoseError::Signature("the JWS is not a compact JWS")),
        (r#"{"alg":null,"kid":"k1"}"#, JoseError::Signature("the JWS header names no algorithm")),
        (r#"{"alg":"none","kid":null}"#, JoseError::Signature("the JWS is unsigned (alg none)")),
        (r#"[{"alg":"RS256","kid":"k1"}]"#, JoseError::Signature("the JWS is not a compact JWS")),
    ] {
        assert_eq!(parse_jws(&jws(header, "{}", b"s")).err(), Some(why), "{header}");
    }
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

#[test]
fn key_members_are_matched_exactly_and_the_last_of_a_repeated_one_counts() {
    let jwks = Jwks::parse(
        br#"{"keys":[{"kty":"EC","kty":"RSA","kid":"1","alg":null,"ALG":"RS256","use":"enc","use":"sig"},{"KTY":"RSA","kid":"2"},{"kty":"RSA","kid":3}]}"#,
    )
    .unwrap();
    let key = jwks.find("1").unwrap();
    assert_eq!((key.kty.as_str(), key.alg.as_deref(), key.usage.as_deref()), ("RSA", None, Some("sig")));
    assert_eq!(jwks.keys.len(), 1, "a key without an exact kty, or with a kid that is no string, is left out");
}
