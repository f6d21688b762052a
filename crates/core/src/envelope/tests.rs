//! Opening the JWTs and JWEs of tests/fixtures/jose/vectors.json, made by the `jose` library as
//! ZITADEL makes them, with the host's RustCrypto standing in for WebCrypto.

use super::*;
use crate::secret::DecryptionKey;
use crate::testing::{der, jose_vectors, live_for_ms, FakeRuntime, Reply};
use base64::Engine;
use futures::executor::block_on;

const URL: &str = "https://z.example/oauth/v2/keys";

fn jwks_reply() -> Reply {
    Reply::json(200, jose_vectors()["jwks"].clone())
}

fn config(keys: Vec<DecryptionKey>) -> PayloadConfig {
    PayloadConfig { json: true, jwt: true, jwe: true, jwks_url: Some(URL.into()), decryption_keys: keys }
}

/// The isolate's key set for `config`, as the target builds it: there when the URL is.
fn key_set(config: &PayloadConfig) -> Option<JwksCache> {
    config.jwks_url.clone().map(|url| JwksCache::new(url, live_for_ms()))
}

/// What `open` gives, with the payload as text (readable in a failure).
fn open_with(
    config: &PayloadConfig,
    runtime: &FakeRuntime,
    body: &str,
) -> Result<(PayloadKind, String), EnvelopeError> {
    let kind = PayloadKind::of(body.as_bytes());
    let jwks = key_set(config);
    block_on(open(config, jwks.as_ref(), runtime, kind, body.as_bytes(), u64::MAX))
        .map(|p| (kind, String::from_utf8_lossy(&p).into_owned()))
}

fn all_target_keys() -> Vec<DecryptionKey> {
    let v = jose_vectors();
    v["jwes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| DecryptionKey::new(Some(j["kid"].as_str().unwrap().into()), der(j["pkcs8"].as_str().unwrap())))
        .collect()
}

#[test]
fn every_jwt_zitadel_can_sign_opens_to_the_json_payload() {
    let v = jose_vectors();
    for jwt in v["jwts"].as_array().unwrap() {
        let runtime = FakeRuntime::new(vec![jwks_reply()]);
        let opened = open_with(&config(vec![]), &runtime, jwt["jws"].as_str().unwrap());
        assert_eq!(opened, Ok((PayloadKind::Jwt, v["payload"].as_str().unwrap().to_string())), "{}", jwt["alg"]);
        assert_eq!(runtime.sent()[0].url, URL);
    }
}

#[test]
fn every_jwe_zitadel_can_encrypt_opens_with_its_key_found_by_kid_or_in_order() {
    let v = jose_vectors();
    for jwe in v["jwes"].as_array().unwrap() {
        let payload = v["payload"].as_str().unwrap().to_string();
        let text = jwe["jwe"].as_str().unwrap();
        let by_kid = open_with(&config(all_target_keys()), &FakeRuntime::repeating(jwks_reply()), text);
        assert_eq!(by_kid, Ok((PayloadKind::Jwe, payload.clone())), "{}", jwe["kid"]);
        // Without ids, every key is tried in turn; the right one is last.
        let mut unnamed: Vec<DecryptionKey> =
            all_target_keys().into_iter().map(|k| DecryptionKey::new(None, k.pkcs8().to_vec())).collect();
        let own = der(jwe["pkcs8"].as_str().unwrap());
        unnamed.retain(|k| k.pkcs8() != own);
        unnamed.push(DecryptionKey::new(None, own));
        let in_order = open_with(&config(unnamed), &FakeRuntime::repeating(jwks_reply()), text);
        assert_eq!(in_order, Ok((PayloadKind::Jwe, payload)), "{}", jwe["kid"]);
    }
}

#[test]
fn a_jwe_no_configured_key_decrypts_is_undecryptable() {
    let v = jose_vectors();
    let rsa = v["jwes"][0]["jwe"].as_str().unwrap();
    let others: Vec<DecryptionKey> = all_target_keys().into_iter().skip(1).collect();
    let refused = Err(EnvelopeError::Jose(JoseError::Undecryptable("no configured key decrypts the payload")));
    assert_eq!(open_with(&config(others), &FakeRuntime::new(vec![]), rsa), refused);
}

#[test]
fn a_stranger_s_key_with_a_known_kid_does_not_verify() {
    // The instance's set names the kid, but under that kid holds another key than the one that
    // signed (one bit of its x changed).
    let v = jose_vectors();
    let es256 = v["jwts"].as_array().unwrap().iter().find(|j| j["alg"] == "ES256").unwrap();
    let mut jwks = v["jwks"].clone();
    let key = jwks["keys"].as_array_mut().unwrap().iter_mut().find(|k| k["kid"] == "web-key-ES256").unwrap();
    let mut x = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    x[31] ^= 1;
    key["x"] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x).into();
    let runtime = FakeRuntime::new(vec![Reply::json(200, jwks)]);
    let result = open_with(&config(vec![]), &runtime, es256["jws"].as_str().unwrap());
    assert!(matches!(result, Err(EnvelopeError::Jose(JoseError::Signature(_)))), "{result:?}");
}

#[test]
fn an_unknown_kid_is_looked_up_again_once_then_refused() {
    let v = jose_vectors();
    let rs256 = v["jwts"][0]["jws"].as_str().unwrap().to_string();
    let empty = Reply::json(200, serde_json::json!({"keys": []}));
    let runtime = FakeRuntime::new(vec![empty.clone(), empty]);
    let cache = key_set(&config(vec![]));
    let open_now = || {
        block_on(open(&config(vec![]), cache.as_ref(), &runtime, PayloadKind::Jwt, rs256.as_bytes(), u64::MAX))
            .map(|_| ())
    };
    let unknown = Err(EnvelopeError::Jose(JoseError::Signature("the JWS names a key the instance does not have")));
    assert_eq!(open_now(), unknown);
    assert_eq!(open_now(), unknown);
    assert_eq!(runtime.sent().len(), 1, "within a minute the set is not fetched again");
}

#[test]
fn what_payload_types_refuses_and_what_is_not_set_are_said() {
    let v = jose_vectors();
    let jwt = v["jwts"][0]["jws"].as_str().unwrap();
    let jwe = v["jwes"][0]["jwe"].as_str().unwrap();
    let runtime = FakeRuntime::new(vec![]);
    let only_jwe = PayloadConfig { json: false, jwt: false, ..config(all_target_keys()) };
    assert_eq!(open_with(&only_jwe, &runtime, "{}"), Err(EnvelopeError::Refused(PayloadKind::Json)));
    assert_eq!(open_with(&only_jwe, &runtime, jwt), Err(EnvelopeError::Refused(PayloadKind::Jwt)));
    assert_eq!(
        open_with(&config(vec![]), &runtime, jwe),
        Err(EnvelopeError::NeedsSetting(PayloadKind::Jwe, PAYLOAD_DECRYPTION_KEY))
    );
    let no_domain = PayloadConfig { jwks_url: None, ..config(vec![]) };
    assert_eq!(
        open_with(&no_domain, &runtime, jwt),
        Err(EnvelopeError::NeedsSetting(PayloadKind::Jwt, ZITADEL_DOMAIN))
    );
    assert_eq!(
        open_with(&no_domain, &runtime, jwe),
        Err(EnvelopeError::NeedsSetting(PayloadKind::Jwe, PAYLOAD_DECRYPTION_KEY)),
        "a JWE names its own key first"
    );
    assert!(runtime.sent().is_empty());
}

#[test]
fn an_unreachable_key_set_leaves_the_payload_unchecked() {
    let v = jose_vectors();
    let jwt = v["jwts"][0]["jws"].as_str().unwrap();
    let runtime = FakeRuntime::new(vec![Reply::json(503, serde_json::json!({}))]);
    assert_eq!(
        open_with(&config(vec![]), &runtime, jwt),
        Err(EnvelopeError::KeysUnavailable(UpstreamError::Status(503)))
    );
}
