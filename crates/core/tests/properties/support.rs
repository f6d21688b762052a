//! What the properties share: generators of hostile input, the configurations, and the checks
//! every answer must pass.

pub use std::collections::HashMap;
pub use std::rc::Rc;

pub use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
pub use base64::Engine;
pub use futures::executor::block_on;
pub use hmac::{Hmac, Mac};
pub use proptest::prelude::*;
pub use proptest::sample::select;
pub use serde_json::{json, Map, Value};
pub use sha2::Sha256;

pub use zitadel_claims_core::config::Config;
pub use zitadel_claims_core::contract::chain;
pub use zitadel_claims_core::contract::payload::{self, DecodeError, Function};
pub use zitadel_claims_core::contract::response::{self, Claim, ClaimValue, ContextInfoResponse, Metadata};
pub use zitadel_claims_core::contract::signature::{self, Malformed, RustMac, SignatureError, MAX_FUTURE_SECONDS};
pub use zitadel_claims_core::error::Error;
pub use zitadel_claims_core::port::TransportError;
pub use zitadel_claims_core::secret::SigningKey;
pub use zitadel_claims_core::target::{Answer, Target};
pub use zitadel_claims_core::testing::{FakeRuntime, Reply};
pub use zitadel_claims_core::trace::LogLine;

/// The preaccesstoken payload ZITADEL sends, as in the end-to-end tests.
pub const FIXTURE: &str = include_str!("../../../../tests/fixtures/payloads/preaccesstoken.json");
/// The Login V2 token capture method (a response execution).
pub const INTENT_METHOD: &str = "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent";
/// Every generated string value starts with this, so a leak is easy to spot in a message.
pub const MARK: &str = "SECRET-";
/// 2023-11-14: the clock of the fake runtime.
pub const NOW_MS: u64 = 1_700_000_000_000;
pub const NOW: i64 = (NOW_MS / 1000) as i64;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// A recognisable string: `SECRET-` and up to a dozen characters, quotes, backslashes and
/// non-ASCII included (so JSON escapes are exercised too).
pub fn marker() -> BoxedStrategy<String> {
    "[a-zA-Z0-9 _\"\\\\/.,:=é☃\u{1F600}-]{0,12}".prop_map(|s| format!("{MARK}{s}")).boxed()
}

/// Object keys: mostly names the worker reads somewhere (at any level), sometimes unknown ones.
pub fn key() -> BoxedStrategy<String> {
    const KNOWN: &[&str] = &[
        "function",
        "user",
        "org",
        "user_grants",
        "user_metadata",
        "application",
        "fullMethod",
        "request",
        "response",
        "id",
        "resource_owner",
        "project_id",
        "roles",
        "key",
        "value",
        "client_id",
        "userId",
        "idpInformation",
        "oauth",
        "accessToken",
        "refreshToken",
    ];
    prop_oneof![3 => select(KNOWN).prop_map(String::from), 1 => marker()].boxed()
}

pub fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        marker().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, up to eight levels of arrays and objects.
pub fn any_json() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(8, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// `value` wrapped in up to 300 arrays or single-key objects (serde_json's own recursion limit
/// is 128, so this goes past it).
pub fn deeply_nested() -> BoxedStrategy<Value> {
    (any_json(), prop::collection::vec(any::<bool>(), 0..300), prop::collection::vec(key(), 1..4))
        .prop_map(|(mut value, levels, keys)| {
            for (array, key) in levels.into_iter().zip(keys.iter().cycle()) {
                value = if array { Value::Array(vec![value]) } else { json!({ key: value }) };
            }
            value
        })
        .boxed()
}

/// A string most of the time, any value sometimes.
pub fn text_or_any() -> BoxedStrategy<Value> {
    prop_oneof![4 => marker().prop_map(Value::String), 1 => any_json()].boxed()
}

/// A field as the payload may carry it: absent, null, the right shape (`shaped`), or anything.
pub fn field(shaped: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => shaped.prop_map(Some),
        1 => any_json().prop_map(Some),
        1 => deeply_nested().prop_map(Some),
    ]
    .boxed()
}

/// Like `field`, but mostly the right shape: for payloads meant to get deep into the worker.
pub fn mostly(shaped: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![16 => shaped.clone().prop_map(Some), 1 => field(shaped)].boxed()
}

pub fn object(entries: Vec<(&str, Option<Value>)>, extra: Vec<(String, Value)>) -> Value {
    let mut map = Map::new();
    for (k, v) in extra {
        map.insert(k, v);
    }
    for (k, v) in entries {
        if let Some(v) = v {
            map.insert(k.to_string(), v);
        }
    }
    Value::Object(map)
}

pub fn extra_fields() -> BoxedStrategy<Vec<(String, Value)>> {
    prop::collection::vec((marker(), any_json()), 0..3).boxed()
}

/// A payload with the known fields in roughly their shape, every string a marker, every field
/// possibly absent, null, of another type or deeply nested.
pub fn marked_payload() -> BoxedStrategy<Value> {
    let function = prop_oneof![
        select(vec!["function/preaccesstoken", "preuserinfo"]).prop_map(Value::from),
        marker().prop_map(Value::String),
    ]
    .boxed();
    let user = (field(text_or_any()), field(text_or_any()), extra_fields())
        .prop_map(|(id, owner, extra)| object(vec![("id", id), ("resource_owner", owner)], extra))
        .boxed();
    let org = (field(text_or_any()), extra_fields()).prop_map(|(id, extra)| object(vec![("id", id)], extra)).boxed();
    let roles = prop::collection::vec(text_or_any(), 0..4).prop_map(Value::Array).boxed();
    let grant = (field(text_or_any()), field(roles), extra_fields())
        .prop_map(|(project, roles, extra)| object(vec![("project_id", project), ("roles", roles)], extra))
        .boxed();
    let grants = prop::collection::vec(prop_oneof![4 => grant, 1 => any_json()], 0..4).prop_map(Value::Array).boxed();
    let entry = (field(text_or_any()), field(text_or_any()), extra_fields())
        .prop_map(|(k, v, extra)| object(vec![("key", k), ("value", v)], extra))
        .boxed();
    let metadata = prop::collection::vec(prop_oneof![4 => entry, 1 => any_json()], 0..4).prop_map(Value::Array).boxed();
    let application =
        (field(text_or_any()), extra_fields()).prop_map(|(id, extra)| object(vec![("client_id", id)], extra)).boxed();
    (
        field(function),
        field(user),
        field(org),
        field(grants),
        field(metadata),
        field(application),
        prop::option::weighted(0.1, any_json()),
        extra_fields(),
    )
        .prop_map(|(function, user, org, grants, metadata, application, raw, extra)| {
            object(
                vec![
                    ("function", function),
                    ("user", user),
                    ("org", org),
                    ("user_grants", grants),
                    ("user_metadata", metadata),
                    ("application", application),
                    ("request", raw),
                ],
                extra,
            )
        })
        .boxed()
}

/// A JWT-shaped token whose `exp` is anything from i64::MIN to 1e300 (its signature is never
/// checked: the worker only reads `exp` as a refresh hint).
pub fn jwt() -> BoxedStrategy<String> {
    let exp = prop_oneof![
        2 => (-7200i64..7200).prop_map(|d| json!(NOW + d)),
        1 => any::<i64>().prop_map(|e| json!(e)),
        2 => select(vec![i64::MIN, i64::MIN + 1, i64::MAX, 0, -1]).prop_map(|e| json!(e)),
        2 => select(vec![-1e300, 1e300, -9.3e18, 9.3e18, -9.223372036854776e18, 0.5, -0.5]).prop_map(|e| json!(e)),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        1 => Just(json!("not a number")),
    ];
    exp.prop_map(|exp| {
        format!("eyJhbGciOiJub25lIn0.{}.c2ln", URL_SAFE_NO_PAD.encode(json!({ "aud": "x", "exp": exp }).to_string()))
    })
    .boxed()
}

/// A user metadata value as it may be stored: standard base64 of a JSON-quoted token (V1 action),
/// of raw text (V2), of an expiry (digits, extremes included), of bytes that are not UTF-8; or
/// text that is not base64 at all.
pub fn metadata_value() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => jwt().prop_map(|t| STANDARD.encode(format!("\"{t}\""))),
        3 => jwt().prop_map(|t| STANDARD.encode(t)),
        2 => marker().prop_map(|t| STANDARD.encode(serde_json::to_string(&t).unwrap())),
        2 => marker().prop_map(|t| STANDARD.encode(t)),
        1 => expiry(),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| STANDARD.encode(b)),
        1 => Just(STANDARD.encode([0xff, 0xfe, 0xfd])),
        1 => Just(STANDARD.encode("\"\"")),
        1 => Just(String::new()),
        1 => marker(), // not base64
    ]
    .prop_map(Value::String)
    .boxed()
}

/// The stored expiry of the Microsoft token: base64 of digits, extremes included.
pub fn expiry() -> BoxedStrategy<String> {
    prop_oneof![
        (-7200i64..7200).prop_map(|d| (NOW + d).to_string()),
        any::<i64>().prop_map(|e| e.to_string()),
        select(vec!["0", "-1", "9223372036854775807", "-9223372036854775808", "99999999999999999999", " 12 ", ""])
            .prop_map(String::from),
    ]
    .prop_map(|e| STANDARD.encode(e))
    .boxed()
}

/// A payload that gets far into claim building: a supported function, grants with roles the
/// fake organization maps, and the Microsoft token keys with every kind of stored value; any
/// field may still be null or of another type.
pub fn claims_payload() -> BoxedStrategy<Value> {
    let function = select(vec![
        "function/preaccesstoken",
        "function/preaccesstoken",
        "function/preuserinfo",
        "preaccesstoken",
        "preuserinfo",
        "function/presamlresponse",
    ])
    .prop_map(Value::from)
    .boxed();
    let id = prop_oneof![Just(json!("312909075211944344")), Just(json!("")), marker().prop_map(Value::String)].boxed();
    let user = (mostly(id.clone()), mostly(id.clone()))
        .prop_map(|(id, owner)| object(vec![("id", id), ("resource_owner", owner)], vec![]))
        .boxed();
    let org = mostly(id.clone()).prop_map(|id| object(vec![("id", id)], vec![])).boxed();
    let role = prop_oneof![
        4 => select(vec!["admin", "editor", "viewer", "department", "binary"]).prop_map(Value::from),
        1 => marker().prop_map(Value::String),
        1 => Just(Value::Null),
    ];
    let grant = (mostly(id), mostly(prop::collection::vec(role, 0..4).prop_map(Value::Array).boxed()))
        .prop_map(|(project, roles)| object(vec![("project_id", project), ("roles", roles)], vec![]))
        .boxed();
    let grants = prop::collection::vec(grant, 0..4).prop_map(Value::Array).boxed();
    let metadata_key = prop_oneof![
        4 => select(vec![
            "microsoft_access_token",
            "microsoft_refresh_token",
            "microsoft_access_token_expires_at",
            "department",
        ])
        .prop_map(Value::from),
        1 => marker().prop_map(Value::String),
    ];
    let entry = (mostly(metadata_key.boxed()), mostly(metadata_value()))
        .prop_map(|(k, v)| object(vec![("key", k), ("value", v)], vec![]))
        .boxed();
    let ms_entry = |key: &'static str, value: BoxedStrategy<String>, p: f64| {
        prop::option::weighted(p, value).prop_map(move |v| v.map(|v| json!({ "key": key, "value": v })))
    };
    let metadata = (
        ms_entry("microsoft_access_token", metadata_value().prop_map(|v| v.as_str().unwrap().to_string()).boxed(), 0.7),
        ms_entry(
            "microsoft_refresh_token",
            metadata_value().prop_map(|v| v.as_str().unwrap().to_string()).boxed(),
            0.6,
        ),
        ms_entry("microsoft_access_token_expires_at", expiry(), 0.4),
        prop::collection::vec(entry, 0..3),
    )
        .prop_map(|(access, refresh, expires, mut others)| {
            others.extend([access, refresh, expires].into_iter().flatten());
            Value::Array(others)
        })
        .boxed();
    let function_call = (mostly(function), mostly(user), mostly(org), mostly(grants), mostly(metadata)).prop_map(
        |(function, user, org, grants, metadata)| {
            object(
                vec![
                    ("function", function),
                    ("user", user),
                    ("org", org),
                    ("user_grants", grants),
                    ("user_metadata", metadata),
                ],
                vec![],
            )
        },
    );
    prop_oneof![4 => function_call, 1 => intent_payload()].boxed()
}

/// A request or response execution, mostly the Login V2 token capture.
pub fn intent_payload() -> BoxedStrategy<Value> {
    let token = prop_oneof![jwt().prop_map(Value::String), text_or_any(), Just(json!(""))].boxed();
    let oauth = (mostly(token.clone()), mostly(token))
        .prop_map(|(access, refresh)| object(vec![("accessToken", access), ("refreshToken", refresh)], vec![]))
        .boxed();
    let information = (mostly(text_or_any()), mostly(oauth))
        .prop_map(|(idp, oauth)| object(vec![("idpId", idp), ("oauth", oauth)], vec![]))
        .boxed();
    let response = (mostly(text_or_any()), mostly(information))
        .prop_map(|(user, information)| object(vec![("userId", user), ("idpInformation", information)], vec![]))
        .boxed();
    let method = prop_oneof![
        4 => Just(json!(INTENT_METHOD)),
        1 => Just(json!("/zitadel.user.v2.UserService/GetUserByID")),
        1 => text_or_any(),
    ]
    .boxed();
    (mostly(method), mostly(response), mostly(any_json()))
        .prop_map(|(method, response, request)| {
            object(vec![("fullMethod", method), ("response", response), ("request", request)], vec![])
        })
        .boxed()
}

/// The fixture with a few random byte edits: truncated, bytes replaced, inserted or removed.
pub fn mutated_fixture() -> BoxedStrategy<Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), 0u8..4, any::<u8>());
    (0..=FIXTURE.len(), prop::collection::vec(edit, 0..6))
        .prop_map(|(cut, edits)| {
            let mut body = FIXTURE.as_bytes()[..cut].to_vec();
            for (at, kind, byte) in edits {
                if body.is_empty() {
                    body.push(byte);
                    continue;
                }
                let i = at.index(body.len());
                match kind {
                    0 => body[i] = byte,
                    1 => body.insert(i, byte),
                    2 => {
                        body.remove(i);
                    }
                    _ => body[i] ^= 1 << (byte % 8),
                }
            }
            body
        })
        .boxed()
}

/// Any body: raw bytes, JSON of any shape, the payload generators, or the edited fixture.
pub fn any_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => deeply_nested().prop_map(|v| v.to_string().into_bytes()),
        1 => marked_payload().prop_map(|v| v.to_string().into_bytes()),
        3 => claims_payload().prop_map(|v| v.to_string().into_bytes()),
        2 => mutated_fixture(),
        1 => Just(FIXTURE.as_bytes().to_vec()),
    ]
    .boxed()
}

/// One part of a header: well-formed entries, near misses and junk.
pub fn header_part() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|t| format!("t={t}")),
        "[0-9+-]{0,25}".prop_map(|t| format!("t={t}")),
        prop::array::uniform32(any::<u8>()).prop_map(|d| format!("v1={}", hex::encode(d))),
        prop::array::uniform32(any::<u8>()).prop_map(|d| format!("v1={}", hex::encode(d).to_uppercase())),
        "[0-9a-fA-FxZ ]{0,70}".prop_map(|v| format!("v1={v}")),
        "[a-z0-9]{0,3}=[^,]{0,10}",
        select(vec!["", " ", "=", "==", "t", "v1", "t=", "v1=", "t==1", " t = 1 ", "v0=abc"]).prop_map(String::from),
        any::<String>(),
    ]
    .boxed()
}

/// Header values: arbitrary unicode, header-shaped lists of parts joined by `,`, very long ones.
pub fn any_header() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "[tv1=, 0-9a-f\u{0}\u{a0}é]{0,200}",
        prop::collection::vec(header_part(), 0..12).prop_map(|parts| parts.join(",")),
        (prop::collection::vec(header_part(), 1..12), 1usize..300).prop_map(|(parts, times)| {
            let once = parts.join(",");
            vec![once; times].join(",")
        }),
        (0usize..2000, any::<i64>()).prop_map(|(n, t)| {
            let mut header = format!("t={t}");
            for i in 0..n {
                header.push_str(&format!(",v1={:064x}", i));
            }
            header
        }),
        "[a-z=,]{0,64}".prop_map(|s| s.repeat(1000)),
    ]
    .boxed()
}

/// Clock values and tolerances with the extremes of their types.
pub fn any_now() -> BoxedStrategy<i64> {
    prop_oneof![
        any::<i64>(),
        select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
        (-1000i64..1000).prop_map(|d| NOW + d),
    ]
    .boxed()
}

pub fn any_tolerance() -> BoxedStrategy<u64> {
    prop_oneof![any::<u64>(), select(vec![0, 1, 300, 3600, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX])].boxed()
}

/// Signing keys as configured: non-empty, any characters.
pub fn keys() -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(".{1,40}", 1..6).boxed()
}

pub fn signing_keys(keys: &[String]) -> Vec<SigningKey> {
    keys.iter().map(|k| SigningKey::new(k.as_str())).collect()
}

/// The header ZITADEL sends, computed here and not by the crate: `t=<t>`, then per key
/// `,v1=<hex(HMAC-SHA256(UTF-8 bytes of the key, "<t>." + body))>` (pkg/actions/signing.go).
pub fn zitadel_header(t: i64, body: &[u8], keys: &[String]) -> String {
    let mut header = format!("t={t}");
    for key in keys {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        header.push_str(&format!(",v1={}", hex::encode(mac.finalize().into_bytes())));
    }
    header
}

/// The hex digits the parser reads as a digest: both cases (`hex::decode_to_slice`).
pub const HEX_DIGITS: &str = "0123456789abcdefABCDEF";

/// `header` with character `at` of key `k`'s digest replaced by `change(that character)`. Part 0
/// is `t=..`, part k + 1 is the digest of key k.
pub fn with_digest_char(header: &str, k: usize, at: usize, change: impl FnOnce(char) -> char) -> String {
    let mut parts: Vec<String> = header.split(',').map(str::to_string).collect();
    let mut digest: Vec<char> = parts[k + 1]["v1=".len()..].chars().collect();
    digest[at] = change(digest[at]);
    parts[k + 1] = format!("v1={}", digest.iter().collect::<String>());
    parts.join(",")
}

// ---------------------------------------------------------------------------------------------
// Upstreams for Target::handle (testing::FakeRuntime): a fixed clock, canned upstream answers
// (none: every call fails), timers that are over at once and a shared cache holding whatever it
// was given.
// ---------------------------------------------------------------------------------------------

/// Every outbound request fails with a network error; the shared cache holds what it is given.
pub fn unreachable_upstream() -> FakeRuntime {
    answering(Vec::new(), None)
}

/// Answers outbound requests with `replies` in order, then fails; the shared cache answers
/// `kv_junk` for keys it was not given.
pub fn answering(replies: Vec<Reply>, kv_junk: Option<String>) -> FakeRuntime {
    FakeRuntime::new(replies).with_kv_default(kv_junk)
}

/// Upstream answers: metadata pages, token answers (ZITADEL and Microsoft) with extreme lifetimes,
/// any JSON, any bytes, with any status and Retry-After; or transport failures.
pub fn upstream_reply() -> BoxedStrategy<Reply> {
    let value = prop_oneof![
        metadata_value(),
        any_json(),
        Just(json!(STANDARD.encode(r#"["posts:read","posts:write"]"#))),
        Just(json!(STANDARD.encode([0xff, 0xfe]))),
    ];
    let entry = (prop_oneof![select(vec!["admin", "editor", "viewer"]).prop_map(Value::from), text_or_any()], value)
        .prop_map(|(key, value)| json!({ "key": key, "value": value }));
    let total = prop_oneof![
        (0u64..400).prop_map(|n| json!(n.to_string())),
        Just(json!(u64::MAX.to_string())),
        Just(json!("-1")),
        any_json(),
    ];
    let page = (total.clone(), prop::collection::vec(entry.clone(), 0..5)).prop_map(|(total, entries)| {
        json!({ "pagination": { "totalResult": total, "appliedLimit": "100" }, "metadata": entries })
    });
    let page_v1 = (total, prop::collection::vec(entry, 0..5))
        .prop_map(|(total, entries)| json!({ "details": { "totalResult": total }, "result": entries }));
    // Lifetimes up to the top of u64/i64: they once overflowed the expiry arithmetic.
    let huge = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(vec![json!(i64::MAX), json!(u64::MAX), json!(i64::MAX.to_string())]),
    ];
    let lifetime = prop_oneof![
        4 => huge,
        1 => select(vec![i64::MIN, 0, -1, 1, 60, 3600]).prop_map(Value::from),
        1 => Just(json!(1e300)),
        1 => Just(json!(-1e300)),
        1 => Just(json!("3600")),
        1 => Just(json!("soon")),
        1 => any_json(),
    ];
    let token = (prop_oneof![jwt().prop_map(Value::String), text_or_any()], lifetime.clone())
        .prop_map(|(token, lifetime)| json!({ "access_token": token, "token_type": "Bearer", "expires_in": lifetime }));
    let ms_token = (jwt(), prop::option::of(marker()), lifetime).prop_map(|(access, refresh, lifetime)| {
        json!({ "access_token": access, "refresh_token": refresh, "expires_in": lifetime })
    });
    let error = select(vec!["invalid_grant", "invalid_client", "interaction_required", "temporarily_unavailable"])
        .prop_map(|e| json!({ "error": e, "error_description": format!("{MARK}description") }));
    let body = prop_oneof![
        4 => page.prop_map(|v| v.to_string().into_bytes()),
        1 => page_v1.prop_map(|v| v.to_string().into_bytes()),
        4 => token.prop_map(|v| v.to_string().into_bytes()),
        4 => ms_token.prop_map(|v| v.to_string().into_bytes()),
        1 => error.prop_map(|v| v.to_string().into_bytes()),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let status = prop_oneof![
        8 => Just(200u16),
        1 => select(vec![201u16, 204, 400, 401, 403, 404, 429, 500, 503]),
        1 => any::<u16>(),
    ];
    let retry_after = prop_oneof![Just(None), any::<u64>().prop_map(Some), Just(Some(u64::MAX)), Just(Some(0))];
    let answer =
        (status, body, retry_after).prop_map(|(status, body, retry_after)| Reply::Answer { status, body, retry_after });
    let failure = select(vec![TransportError::Timeout, TransportError::Network, TransportError::TooLarge]);
    prop_oneof![6 => answer, 1 => failure.prop_map(Reply::Fail)].boxed()
}

/// A shared cache entry as the worker writes it (claims/permission_cache.rs, SharedEntry).
pub fn shared_entry(fetched_at_ms: u64, roles: Value) -> String {
    json!({ "fetched_at_ms": fetched_at_ms, "roles": roles }).to_string()
}

/// What a shared cache (KV) entry may hold: a good entry of any age, or junk.
pub fn kv_junk() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        2 => Just(None),
        1 => (any::<u64>(), prop::collection::vec((marker(), prop::collection::vec(marker(), 0..3)), 0..3))
            .prop_map(|(at, roles)| Some(shared_entry(at, json!(roles.into_iter().collect::<HashMap<_, _>>())))),
        1 => ((NOW_MS - 120_000)..=NOW_MS).prop_map(|at| Some(shared_entry(at, json!({ "admin": ["p"] })))),
        1 => any_json().prop_map(|v| Some(v.to_string())),
        1 => ".{0,40}".prop_map(Some),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

pub const KEY: &str = "prop-signing-key-0123456789";
pub const OLD_KEY: &str = "prop-old-signing-key-9876543210";
pub const PAT: &str = "prop-zitadel-pat-4f1c2e";
pub const CLIENT_SECRET: &str = "prop-zitadel-client-secret-77aa";
pub const MS_SECRET: &str = "prop-ms-client-secret-c0ffee";
pub const SECRETS: &[&str] = &[KEY, OLD_KEY, PAT, CLIENT_SECRET, MS_SECRET];

pub fn config(settings: &[(&str, &str)]) -> Config {
    zitadel_claims_core::testing::settings(settings).expect("a valid configuration")
}

/// Every claim off: no upstream is ever needed.
pub fn claims_off() -> Config {
    config(&[
        ("ZITADEL_SIGNING_KEY", &format!("{KEY},{OLD_KEY}")),
        ("PERMISSIONS_CLAIM", ""),
        ("FLAT_ROLES_CLAIM", ""),
        ("MS_TOKEN_CLAIM", ""),
    ])
}

/// Every claim on (the Microsoft token for every client), the Microsoft refresh configured, log claims on; with a PAT or with client
/// credentials (which make the worker fetch a token first).
pub fn claims_on(client_credentials: bool, stale: bool) -> Config {
    let mut settings = vec![
        ("ZITADEL_SIGNING_KEY", format!("{KEY},{OLD_KEY}")),
        ("ZITADEL_DOMAIN", "zitadel.invalid".to_string()),
        ("GROUPS_CLAIM", "groups".to_string()),
        ("LOG_CLAIMS", "true".to_string()),
        ("MS_TOKEN_IN_USERINFO", "true".to_string()),
        ("MS_TOKEN_CLIENT_IDS", "*".to_string()),
        ("MS_CLIENT_ID", "prop-ms-client".to_string()),
        ("MS_CLIENT_SECRET", MS_SECRET.to_string()),
        ("METADATA_STALE_IF_ERROR_SECONDS", "600".to_string()),
    ];
    if client_credentials {
        settings.push(("ZITADEL_CLIENT_ID", "prop-client".to_string()));
        settings.push(("ZITADEL_CLIENT_SECRET", CLIENT_SECRET.to_string()));
    } else {
        settings.push(("ZITADEL_ACCESS_TOKEN", PAT.to_string()));
    }
    if stale {
        settings.push(("MS_ON_REFRESH_ERROR", "stale".to_string()));
    }
    let borrowed: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    config(&borrowed)
}

/// How a generated call is signed.
#[derive(Debug, Clone)]
pub enum Signed {
    /// Signed over the body with the current key, `offset` seconds from now.
    Valid { offset: i64, old_key: bool },
    /// No header.
    Absent,
    /// This header, whatever the body.
    Raw(String),
}

pub fn signed() -> BoxedStrategy<Signed> {
    prop_oneof![
        8 => (prop_oneof![4 => Just(0i64), 1 => -400i64..120], any::<bool>())
            .prop_map(|(offset, old_key)| Signed::Valid { offset, old_key }),
        1 => Just(Signed::Absent),
        1 => any_header().prop_map(Signed::Raw),
    ]
    .boxed()
}

/// Runs one call and checks what every answer must be: no panic (implicit), no 5xx, a JSON body,
/// and none of the configured secrets anywhere in the answer or the log line.
pub fn check_call(target: &Target, runtime: &FakeRuntime, signed: &Signed, body: &[u8]) -> Result<Answer, Error> {
    let header = match signed {
        Signed::Valid { offset, old_key } => {
            let key = SigningKey::new(if *old_key { OLD_KEY } else { KEY });
            Some(signature::header_for(NOW + offset, body, &[key]))
        }
        Signed::Absent => None,
        Signed::Raw(h) => Some(h.clone()),
    };
    let (result, mut trace) = block_on(target.handle(runtime, header.as_deref(), body));
    let text = match &result {
        Ok(answer) => {
            let text = answer.to_json();
            match answer {
                Answer::Claims(_) => {
                    let parsed: Value =
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
                    let lists = parsed.as_object().unwrap_or_else(|| panic!("not an object: {text}"));
                    assert!(lists.values().all(|list| list.as_array().is_some_and(|l| !l.is_empty())), "{text}");
                }
                // The message of an API execution goes back as received, nesting and all:
                // checked without serde_json's recursion limit (IgnoredAny skips iteratively).
                Answer::Message(_) => {
                    serde_json::from_str::<serde::de::IgnoredAny>(&text)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
                }
            }
            text
        }
        Err(e) => {
            assert!(e.status() < 500, "{} {}: {}", e.status(), e.code(), e.message());
            let parsed: Value = serde_json::from_str(&e.to_json()).expect("error body is JSON");
            assert_eq!(parsed["error"], e.code());
            if !matches!(e, Error::UnsupportedFunction { .. }) {
                // The only error that echoes input is the function name, by design.
                assert!(!e.message().contains(MARK), "the message repeats input: {}", e.message());
            }
            e.to_json()
        }
    };
    trace.outcome = result.as_ref().err().map_or("ok", Error::code);
    trace.status = result.as_ref().err().map_or(200, Error::status);
    let line = LogLine::new("POST", "/", &trace, 0, 0).to_json();
    serde_json::from_str::<Value>(&line).expect("the log line is JSON");
    for secret in SECRETS {
        assert!(!text.contains(secret), "the answer holds a secret: {text}");
        assert!(!line.contains(secret), "the log line holds a secret: {line}");
    }
    result
}

/// `n` cases, and no regression files written into the repository: a failure prints its
/// minimal input, which belongs in a plain `#[test]` (as the `bug_*` tests below).
pub fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// The signature check as production runs it ([`signature::verify`]), with the MAC in Rust.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    keys: &[SigningKey],
    now: i64,
    tolerance_seconds: u64,
) -> Result<(), SignatureError> {
    block_on(signature::verify(&RustMac, header, body, keys, now, tolerance_seconds))
}
