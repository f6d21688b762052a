//! Signed and encrypted payloads (properties 13 to 15): the JOSE readers never panic, and no
//! single changed byte of a valid JWS or JWE is ever accepted. The valid ones are those of
//! tests/fixtures/jose/vectors.json, made by the `jose` library as ZITADEL makes them.

use proptest::prelude::*;

use crate::support::*;
use zitadel_claims_core::contract::jose::{self, Jwks, PayloadKind};

use zitadel_claims_core::testing::jose_vectors as vectors;

/// Every JWT and JWE of the vectors.
fn tokens() -> Vec<String> {
    let v = vectors();
    let jwts = v["jwts"].as_array().unwrap().iter().map(|j| j["jws"].as_str().unwrap().to_string());
    let jwes = v["jwes"].as_array().unwrap().iter().map(|j| j["jwe"].as_str().unwrap().to_string());
    jwts.chain(jwes).collect()
}

/// Claims off, signed payloads checked against the vectors' key set, their JWEs' keys configured.
fn jose_config() -> Config {
    let v = vectors();
    let der = |pem: &str| {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        body
    };
    let keys: Vec<String> = v["jwes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| format!("{}:{}", j["kid"].as_str().unwrap(), der(j["pkcs8"].as_str().unwrap())))
        .collect();
    config(&[
        ("ZITADEL_SIGNING_KEY", KEY),
        ("ZITADEL_DOMAIN", "https://z.example"),
        ("ZITADEL_ACCESS_TOKEN", PAT),
        ("PERMISSIONS_CLAIM", ""),
        ("FLAT_ROLES_CLAIM", ""),
        ("MS_TOKEN_CLAIM", ""),
        ("PAYLOAD_DECRYPTION_KEY", &keys.join(",")),
    ])
}

fn jwks_platform() -> FakeRuntime {
    FakeRuntime::repeating(Reply::Answer {
        status: 200,
        body: vectors()["jwks"].to_string().into_bytes(),
        retry_after: None,
    })
}

/// A call with `body`, signed as ZITADEL signs it now: the HMAC is right, so only the JOSE checks
/// stand between the body and an answer.
fn signed_call(config: &Config, body: &[u8]) -> Result<Answer, Error> {
    let header = signature::header_for(NOW, body, &[SigningKey::new(KEY)]);
    block_on(Target::new(config.clone()).handle(&jwks_platform(), Some(&header), body)).0
}

#[test]
fn every_vector_is_answered_unchanged() {
    let config = jose_config();
    for token in tokens() {
        let answer = signed_call(&config, token.as_bytes());
        assert!(matches!(answer, Ok(Answer::Claims(_))), "{:?}", answer.err());
    }
}

/// base64url text and dots: what the readers are fed most of the time.
fn compact() -> BoxedStrategy<String> {
    let part = "[A-Za-z0-9_-]{0,40}";
    prop_oneof![
        prop::collection::vec(part, 1..7).prop_map(|parts| parts.join(".")),
        any::<String>(),
        (select(tokens()), any::<prop::sample::Index>(), "[ -~]{0,8}").prop_map(|(t, at, insert)| {
            let at = at.index(t.len());
            format!("{}{insert}{}", &t[..at], &t[at..])
        }),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(cases(512))]

    /// 13. The JOSE readers never panic, whatever the text.
    #[test]
    fn the_readers_never_panic(text in compact(), header in any_json()) {
        let _ = PayloadKind::of(text.as_bytes());
        let _ = jose::parse_jws(&text);
        let _ = jose::parse_jwe(&text);
        let _ = Jwks::parse(text.as_bytes());
        let _ = Jwks::parse(json!({ "keys": [header.clone(), header.clone()] }).to_string().as_bytes());
        let encoded = URL_SAFE_NO_PAD.encode(header.to_string());
        let _ = jose::parse_jws(&format!("{encoded}.e30.c2ln"));
        let _ = jose::parse_jwe(&format!("{encoded}.a.AAAAAAAAAAAAAAAA.b.AAAAAAAAAAAAAAAAAAAAAA"));
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// 14. Changing any one byte of a valid JWS or JWE (re-signed with the right HMAC key) never
    /// gets an answer: the signature, the decryption or the JSON decoding refuses it.
    #[test]
    fn a_changed_byte_is_never_accepted(token in select(tokens()), at in any::<prop::sample::Index>(), to in any::<u8>()) {
        let mut body = token.into_bytes();
        let at = at.index(body.len());
        prop_assume!(body[at] != to);
        body[at] = to;
        let answer = signed_call(&jose_config(), &body);
        prop_assert!(answer.is_err(), "byte {} changed to {:?}: answered", at, to as char);
    }

    /// 15. The same for a changed character that keeps the shape (another base64url character).
    #[test]
    fn a_changed_base64url_character_is_never_accepted(
        token in select(tokens()),
        at in any::<prop::sample::Index>(),
        to in select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()),
    ) {
        let mut body = token.into_bytes();
        let at = at.index(body.len());
        prop_assume!(body[at] != b'.' && body[at] != to);
        body[at] = to;
        let answer = signed_call(&jose_config(), &body);
        prop_assert!(
            matches!(answer, Err(Error::Envelope(_))),
            "byte {} changed to {:?}: {:?}", at, to as char, answer.as_ref().map(|_| "answered").map_err(Error::code)
        );
    }
}
