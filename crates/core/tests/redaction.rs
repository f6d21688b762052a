//! What the worker's types print with `{:?}` outside unit tests: never a token, key, secret or
//! metadata value (README, Security). Types that hold such values either print only sizes and keys,
//! or have no `Debug` at all, so that a `{:?}`, `dbg!` or `unwrap()` on them does not compile.

use std::fmt::Debug;

use static_assertions::assert_not_impl_any;
use zitadel_claims_core::claims::microsoft::{Outcome, Stored};
use zitadel_claims_core::claims::permission_cache::{Cached, SharedEntry};
use zitadel_claims_core::claims::permissions::PermissionMap;
use zitadel_claims_core::contract::jose::{Jwe, Jws};
use zitadel_claims_core::contract::payload::{self, UserMetadata};
use zitadel_claims_core::contract::response::{Claim, ClaimValue, ContextInfoResponse, Metadata};
use zitadel_claims_core::seal::{Aad, OpenError, SealingKeys};
use zitadel_claims_core::secret::SigningKey;
use zitadel_claims_core::secret::{DecryptionKey, Secret};
use zitadel_claims_core::target::Answer;
use zitadel_claims_core::upstream::microsoft::Refreshed;

assert_not_impl_any!(Stored: Debug);
assert_not_impl_any!(Refreshed: Debug);
assert_not_impl_any!(Outcome: Debug);
assert_not_impl_any!(ContextInfoResponse: Debug);
assert_not_impl_any!(Claim: Debug);
assert_not_impl_any!(Answer: Debug);
assert_not_impl_any!(UserMetadata<'static>: Debug);
assert_not_impl_any!(PermissionMap: Debug);
assert_not_impl_any!(SharedEntry: Debug);
assert_not_impl_any!(Cached: Debug);
// A JWS holds the decoded payload (user metadata, tokens); a JWE its ciphertext and wrapped key.
assert_not_impl_any!(Jws<'static>: Debug);
assert_not_impl_any!(Jwe<'static>: Debug);

const SECRET: &str = "SECRET-VALUE-0123456789";

#[test]
fn claim_values_print_their_size_only() {
    let text = format!("{:?}", ClaimValue::Text(SECRET.into()));
    assert_eq!(text, format!("Text(<{} bytes>)", SECRET.len()));
    let list = format!("{:?}", ClaimValue::List([SECRET, "posts:read"].into_iter().collect()));
    assert_eq!(list, "List(<2 items>)");
}

#[test]
fn a_payload_prints_metadata_keys_and_sizes_not_values() {
    let value = base64_of(SECRET);
    let body = format!(
        r#"{{"function":"function/preaccesstoken","user":{{"id":"u1"}},
            "user_metadata":[{{"key":"microsoft_access_token","value":"{value}"}}],
            "request":{{"token":"{SECRET}"}},"response":{{"accessToken":"{SECRET}"}}}}"#
    );
    let info = payload::decode(body.as_bytes()).expect("a valid payload");
    let printed = format!("{info:?}");
    assert!(!printed.contains(SECRET) && !printed.contains(&value), "{printed}");
    for shown in ["function/preaccesstoken", "u1", "microsoft_access_token", "request_bytes: Some("] {
        assert!(printed.contains(shown), "{shown} missing from {printed}");
    }
}

#[test]
fn secrets_keys_and_metadata_print_nothing_of_their_value() {
    let printed = [
        format!("{:?}", Secret::new(SECRET)),
        format!("{:?}", SigningKey::new(SECRET)),
        format!("{:?}", Metadata::new("microsoft_access_token", SECRET.as_bytes())),
    ];
    for p in printed {
        assert!(!p.contains(SECRET), "{p}");
    }
    // Bytes would print as numbers: the whole line is what may show.
    let key = format!("{:?}", DecryptionKey::new(Some("kid-1".into()), SECRET.as_bytes().to_vec()));
    assert_eq!(key, r#"DecryptionKey { kid: Some("kid-1"), .. }"#);
}

#[test]
fn sealing_keys_print_their_ids_only_and_sealing_errors_their_kind() {
    let key = base64_of("SECRET-VALUE-0123456789-32-bytes");
    let error = SealingKeys::parse(&format!("new:{key},old:{key}x")).expect_err("the 2nd is not base64");
    assert!(!error.contains(&key[..20]), "{error}");
    let keys = SealingKeys::parse(&format!("new:{key}")).expect("32 bytes");
    assert_eq!(format!("{keys:?}"), r#"SealingKeys { ids: ["new"], .. }"#);
    // The associated data holds a user id and a metadata key, or a browser flow's state.
    assert_eq!(format!("{:?}", Aad::connect_state(SECRET)), r#"Aad { purpose: "connect-state", .. }"#);
    assert_eq!(format!("{:?}", OpenError::Refused), "Refused");
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
