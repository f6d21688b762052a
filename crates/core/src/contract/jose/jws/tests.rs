use super::*;
use crate::testing::b64url;

fn jws(header: &str, payload: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64url(header.as_bytes()), b64url(payload.as_bytes()), b64url(signature))
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
    let good = b64url(br#"{"alg":"RS256","kid":"k1"}"#);
    for malformed in [
        "a.b",
        "a.b.c.d",
        "!!.e30.c2ln",
        &format!("{}.e30.c2ln", b64url(b"not json")),
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
