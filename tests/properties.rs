//! Property tests of the parts that read untrusted input: the `ZITADEL-Signature` header, the
//! request body, and the whole call (`endpoint::handle_call`). They use only the crate's public
//! API and run on the host with plain `cargo test`.
//!
//! What they hold to, for any input proptest can think of:
//! - parsing and verifying a signature never panics, whatever the header, body, keys and clock;
//! - a body signed the way ZITADEL signs it always verifies, under every key it was signed with,
//!   and any one-bit change of the body, one-character change of a digest or change of the
//!   timestamp never verifies;
//! - decoding never panics, and an error never repeats a string that was in the body;
//! - a call with a valid configuration never panics and never answers 5xx, with the claims off,
//!   with every claim on and ZITADEL unreachable, and with every claim on and upstream answers
//!   that are garbage;
//! - the answer, written by hand, is exactly the JSON serde_json would write for it.
//!
//! What they found is kept as regression tests: three integer overflows on extreme token
//! lifetimes and JWT `exp` values (`regression_*`), and known objects given as JSON arrays
//! (`nested_objects_given_as_arrays_are_invalid_payload`).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use futures::executor::block_on;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use zitadel_claims_worker::claims::Isolate;
use zitadel_claims_worker::config::Config;
use zitadel_claims_worker::contract::chain;
use zitadel_claims_worker::contract::payload::{self, DecodeError, Function};
use zitadel_claims_worker::contract::response::{self, Claim, ClaimValue, ContextInfoResponse, Metadata};
use zitadel_claims_worker::contract::signature::{self, Malformed, SignatureError, SigningKey, MAX_FUTURE_SECONDS};
use zitadel_claims_worker::endpoint::{handle_call, Answer};
use zitadel_claims_worker::error::Error;
use zitadel_claims_worker::log::RequestLog;
use zitadel_claims_worker::runtime::{HttpRequest, HttpResponse, Platform, TransportError};

/// The preaccesstoken payload ZITADEL sends, as in the end-to-end tests.
const FIXTURE: &str = include_str!("fixtures/payloads/preaccesstoken.json");
/// The Login V2 token capture method (a response execution).
const INTENT_METHOD: &str = "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent";
/// Every generated string value starts with this, so a leak is easy to spot in a message.
const MARK: &str = "SECRET-";
/// 2023-11-14: the clock of the fake platform.
const NOW_MS: u64 = 1_700_000_000_000;
const NOW: i64 = (NOW_MS / 1000) as i64;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// A recognisable string: `SECRET-` and up to a dozen characters, quotes, backslashes and
/// non-ASCII included (so JSON escapes are exercised too).
fn marker() -> BoxedStrategy<String> {
    "[a-zA-Z0-9 _\"\\\\/.,:=é☃\u{1F600}-]{0,12}".prop_map(|s| format!("{MARK}{s}")).boxed()
}

/// Object keys: mostly names the worker reads somewhere (at any level), sometimes unknown ones.
fn key() -> BoxedStrategy<String> {
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

fn leaf() -> BoxedStrategy<Value> {
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
fn any_json() -> BoxedStrategy<Value> {
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
fn deeply_nested() -> BoxedStrategy<Value> {
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
fn text_or_any() -> BoxedStrategy<Value> {
    prop_oneof![4 => marker().prop_map(Value::String), 1 => any_json()].boxed()
}

/// A field as the payload may carry it: absent, null, the right shape (`shaped`), or anything.
fn field(shaped: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
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
fn mostly(shaped: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![16 => shaped.clone().prop_map(Some), 1 => field(shaped)].boxed()
}

fn object(entries: Vec<(&str, Option<Value>)>, extra: Vec<(String, Value)>) -> Value {
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

fn extra_fields() -> BoxedStrategy<Vec<(String, Value)>> {
    prop::collection::vec((marker(), any_json()), 0..3).boxed()
}

/// A payload with the known fields in roughly their shape, every string a marker, every field
/// possibly absent, null, of another type or deeply nested.
fn marked_payload() -> BoxedStrategy<Value> {
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
fn jwt() -> BoxedStrategy<String> {
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
fn metadata_value() -> BoxedStrategy<Value> {
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
fn expiry() -> BoxedStrategy<String> {
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
fn claims_payload() -> BoxedStrategy<Value> {
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
fn intent_payload() -> BoxedStrategy<Value> {
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
fn mutated_fixture() -> BoxedStrategy<Vec<u8>> {
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
fn any_body() -> BoxedStrategy<Vec<u8>> {
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
fn header_part() -> BoxedStrategy<String> {
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
fn any_header() -> BoxedStrategy<String> {
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
fn any_now() -> BoxedStrategy<i64> {
    prop_oneof![
        any::<i64>(),
        select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
        (-1000i64..1000).prop_map(|d| NOW + d),
    ]
    .boxed()
}

fn any_tolerance() -> BoxedStrategy<u64> {
    prop_oneof![any::<u64>(), select(vec![0, 1, 300, 3600, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX])].boxed()
}

/// Signing keys as configured: non-empty, any characters.
fn keys() -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(".{1,40}", 1..6).boxed()
}

fn signing_keys(keys: &[String]) -> Vec<SigningKey> {
    keys.iter().map(|k| SigningKey::new(k.as_str())).collect()
}

/// The header ZITADEL sends, computed here and not by the crate: `t=<t>`, then per key
/// `,v1=<hex(HMAC-SHA256(UTF-8 bytes of the key, "<t>." + body))>` (pkg/actions/signing.go).
fn zitadel_header(t: i64, body: &[u8], keys: &[String]) -> String {
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
const HEX_DIGITS: &str = "0123456789abcdefABCDEF";

/// `header` with character `at` of key `k`'s digest replaced by `change(that character)`. Part 0
/// is `t=..`, part k + 1 is the digest of key k.
fn with_digest_char(header: &str, k: usize, at: usize, change: impl FnOnce(char) -> char) -> String {
    let mut parts: Vec<String> = header.split(',').map(str::to_string).collect();
    let mut digest: Vec<char> = parts[k + 1]["v1=".len()..].chars().collect();
    digest[at] = change(digest[at]);
    parts[k + 1] = format!("v1={}", digest.iter().collect::<String>());
    parts.join(",")
}

// ---------------------------------------------------------------------------------------------
// A platform for handle_call: a fixed clock, canned upstream answers (none: every call fails),
// timers that are over at once and an optional shared cache holding whatever it was given.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Reply {
    Answer { status: u16, body: Vec<u8>, retry_after: Option<u64> },
    Fail(TransportError),
}

struct TestPlatform {
    replies: RefCell<VecDeque<Reply>>,
    kv: RefCell<HashMap<String, String>>,
    kv_junk: Option<String>,
    sent: RefCell<usize>,
}

impl TestPlatform {
    /// Every outbound request fails with a network error.
    fn unreachable() -> Self {
        TestPlatform::answering(Vec::new(), None)
    }

    /// Answers outbound requests with `replies` in order, then fails; the shared cache answers
    /// `kv_junk` for keys it was not given.
    fn answering(replies: Vec<Reply>, kv_junk: Option<String>) -> Self {
        TestPlatform { replies: RefCell::new(replies.into()), kv: RefCell::default(), kv_junk, sent: RefCell::new(0) }
    }
}

impl Platform for TestPlatform {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        *self.sent.borrow_mut() += 1;
        assert!(*self.sent.borrow() < 1000, "the worker keeps calling upstream");
        match self.replies.borrow_mut().pop_front() {
            Some(Reply::Answer { status, body, retry_after }) => Ok(HttpResponse { status, body, retry_after }),
            Some(Reply::Fail(e)) => Err(e),
            None => Err(TransportError::Network),
        }
    }

    fn now_ms(&self) -> u64 {
        NOW_MS
    }

    async fn sleep(&self, _ms: u64) {}

    async fn cache_get(&self, key: &str) -> Option<String> {
        self.kv.borrow().get(key).cloned().or_else(|| self.kv_junk.clone())
    }

    async fn cache_put(&self, key: &str, value: String, _ttl_seconds: u64) {
        self.kv.borrow_mut().insert(key.to_string(), value);
    }
}

/// Upstream answers: metadata pages, token answers (ZITADEL and Microsoft) with extreme lifetimes,
/// any JSON, any bytes, with any status and Retry-After; or transport failures.
fn upstream_reply() -> BoxedStrategy<Reply> {
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

/// A shared cache entry as the worker writes it (src/cache.rs, SharedEntry).
fn shared_entry(fetched_at_ms: u64, roles: Value) -> String {
    json!({ "fetched_at_ms": fetched_at_ms, "roles": roles }).to_string()
}

/// What a shared cache (KV) entry may hold: a good entry of any age, or junk.
fn kv_junk() -> BoxedStrategy<Option<String>> {
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

const KEY: &str = "prop-signing-key-0123456789";
const OLD_KEY: &str = "prop-old-signing-key-9876543210";
const PAT: &str = "prop-zitadel-pat-4f1c2e";
const CLIENT_SECRET: &str = "prop-zitadel-client-secret-77aa";
const MS_SECRET: &str = "prop-ms-client-secret-c0ffee";
const SECRETS: &[&str] = &[KEY, OLD_KEY, PAT, CLIENT_SECRET, MS_SECRET];

fn config(settings: &[(&str, &str)]) -> Config {
    let settings: HashMap<String, String> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|name| settings.get(name).cloned()).expect("a valid configuration")
}

/// Every claim off: no upstream is ever needed.
fn claims_off() -> Config {
    config(&[
        ("ZITADEL_SIGNING_KEY", &format!("{KEY},{OLD_KEY}")),
        ("PERMISSIONS_CLAIM", ""),
        ("FLAT_ROLES_CLAIM", ""),
        ("MS_TOKEN_CLAIM", ""),
    ])
}

/// Every claim on, the Microsoft refresh configured, log claims on; with a PAT or with client
/// credentials (which make the worker fetch a token first).
fn claims_on(client_credentials: bool, stale: bool) -> Config {
    let mut settings = vec![
        ("ZITADEL_SIGNING_KEY", format!("{KEY},{OLD_KEY}")),
        ("ZITADEL_DOMAIN", "zitadel.invalid".to_string()),
        ("GROUPS_CLAIM", "groups".to_string()),
        ("LOG_CLAIMS", "true".to_string()),
        ("MS_TOKEN_IN_USERINFO", "true".to_string()),
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
enum Signed {
    /// Signed over the body with the current key, `offset` seconds from now.
    Valid { offset: i64, old_key: bool },
    /// No header.
    Absent,
    /// This header, whatever the body.
    Raw(String),
}

fn signed() -> BoxedStrategy<Signed> {
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
fn check_call(
    config: &Config,
    isolate: &Isolate,
    platform: &TestPlatform,
    signed: &Signed,
    body: &[u8],
) -> Result<Answer, Error> {
    let header = match signed {
        Signed::Valid { offset, old_key } => {
            let key = SigningKey::new(if *old_key { OLD_KEY } else { KEY });
            Some(signature::header_for(NOW + offset, body, &[key]))
        }
        Signed::Absent => None,
        Signed::Raw(h) => Some(h.clone()),
    };
    let mut log = RequestLog::new("POST", "/");
    let result = block_on(handle_call(config, isolate, platform, header.as_deref(), body, &mut log));
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
    log.status = result.as_ref().err().map_or(200, Error::status);
    let line = log.to_json();
    serde_json::from_str::<Value>(&line).expect("the log line is JSON");
    for secret in SECRETS {
        assert!(!text.contains(secret), "the answer holds a secret: {text}");
        assert!(!line.contains(secret), "the log line holds a secret: {line}");
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// `n` cases, and no regression files written into the repository: a failure prints its
/// minimal input, which belongs in a plain `#[test]` (as the `bug_*` tests below).
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(cases(256))]

    /// 1. Parsing any header never panics; what it accepts is well-formed.
    #[test]
    fn parse_never_panics(header in any_header()) {
        if let Ok(parsed) = signature::parse(&header) {
            prop_assert!(header.contains(parsed.timestamp));
            prop_assert!(parsed.timestamp.parse::<i128>().is_ok(), "t={:?}", parsed.timestamp);
            prop_assert!(!parsed.signatures.is_empty());
            let lower = header.to_ascii_lowercase();
            for digest in &parsed.signatures {
                prop_assert!(lower.contains(&hex::encode(digest)));
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// 2. Verifying never panics, whatever the header, body, keys, clock and tolerance; without
    /// keys nothing verifies.
    #[test]
    fn verify_never_panics(
        header in prop::option::weighted(0.95, any_header()),
        body in prop::collection::vec(any::<u8>(), 0..256),
        keys in prop::collection::vec(".{0,20}", 0..4),
        now in any_now(),
        tolerance in any_tolerance(),
    ) {
        let keys = signing_keys(&keys);
        let result = signature::verify(header.as_deref(), &body, &keys, now, tolerance);
        if keys.is_empty() {
            prop_assert!(result.is_err());
        }
        if let Err(e) = result {
            prop_assert!(!e.message().is_empty());
        }
    }

    /// 3. A genuine signature at any timestamp, checked at any time (i64 extremes included), never
    /// panics, and is accepted exactly when it is at most `tolerance` old and at most 60 s ahead
    /// (worked out here in i128, without the saturation the worker uses).
    #[test]
    fn genuine_signature_at_any_time(
        t in any_now(),
        now in any_now(),
        tolerance in prop_oneof![0u64..=7200, (0u64..=(i64::MAX as u64 - 1))],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let keys = [SigningKey::new(KEY)];
        let header = signature::header_for(t, &body, &keys);
        let result = signature::verify(Some(&header), &body, &keys, now, tolerance);
        let age = i128::from(now) - i128::from(t);
        let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        let expected = if age > i128::from(tolerance) {
            Err(SignatureError::Stale { age_seconds: clamp(age), tolerance_seconds: tolerance })
        } else if age < -i128::from(MAX_FUTURE_SECONDS) {
            Err(SignatureError::Future { ahead_seconds: clamp(-age) })
        } else {
            Ok(())
        };
        prop_assert_eq!(result, expected, "t={} now={} tolerance={}", t, now, tolerance);
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// 4. A body signed the way ZITADEL signs it (the header computed here, with the hmac crate)
    /// verifies at any time within the window, under all the keys together and under each one
    /// alone; and `header_for` makes that same header.
    #[test]
    fn signed_body_always_verifies(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        keys in keys(),
        t in 0i64..=10_000_000_000,
        tolerance in 1u64..=3600,
        skew in any::<prop::sample::Index>(),
    ) {
        let header = zitadel_header(t, &body, &keys);
        let keys = signing_keys(&keys);
        prop_assert_eq!(signature::verify(Some(&header), &body, &keys, t, tolerance), Ok(()));
        // Anywhere from 60 s before t to `tolerance` after it.
        let now = t - MAX_FUTURE_SECONDS + skew.index(tolerance as usize + MAX_FUTURE_SECONDS as usize + 1) as i64;
        prop_assert_eq!(signature::verify(Some(&header), &body, &keys, now, tolerance), Ok(()));
        for key in &keys {
            prop_assert_eq!(signature::verify(Some(&header), &body, std::slice::from_ref(key), t, tolerance), Ok(()));
        }
        prop_assert_eq!(signature::header_for(t, &body, &keys), header);
    }

    /// 5. Flipping any bit of the body, or adding or removing a byte, never verifies.
    #[test]
    fn changed_body_never_verifies(
        body in prop::collection::vec(any::<u8>(), 1..2048),
        keys in keys(),
        t in 0i64..=10_000_000_000,
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        extra in any::<u8>(),
    ) {
        let keys = signing_keys(&keys);
        let header = signature::header_for(t, &body, &keys);
        let i = at.index(body.len());
        let mut flipped = body.clone();
        flipped[i] ^= 1 << bit;
        prop_assert_eq!(signature::verify(Some(&header), &flipped, &keys, t, 300), Err(SignatureError::Invalid));
        let mut longer = body.clone();
        longer.insert(i, extra);
        prop_assert_eq!(signature::verify(Some(&header), &longer, &keys, t, 300), Err(SignatureError::Invalid));
        let mut shorter = body.clone();
        shorter.remove(i);
        prop_assert_eq!(signature::verify(Some(&header), &shorter, &keys, t, 300), Err(SignatureError::Invalid));
    }

    /// 6. Changing any one hex digit of a key's digest to another hex digit (either case: the
    /// parser takes both; the same digit in the other case is the same digest, so excluded)
    /// never verifies under that key: the signature is invalid. Changing the timestamp never
    /// verifies either.
    #[test]
    fn changed_digest_or_timestamp_never_verifies(
        body in prop::collection::vec(any::<u8>(), 0..256),
        keys in keys(),
        which in any::<prop::sample::Index>(),
        at in 0usize..64,
        pick in any::<prop::sample::Index>(),
        t in 0i64..=10_000_000_000,
        dt in prop_oneof![-1000i64..=-1, 1i64..=1000],
    ) {
        let header = zitadel_header(t, &body, &keys);
        let keys = signing_keys(&keys);
        let k = which.index(keys.len());
        // Another key equal to key k would make its own digest match.
        prop_assume!(keys.iter().filter(|other| **other == keys[k]).count() == 1);
        let key = std::slice::from_ref(&keys[k]);

        let tampered = with_digest_char(&header, k, at, |digit| {
            let others: Vec<char> = HEX_DIGITS.chars().filter(|c| c.to_ascii_lowercase() != digit).collect();
            others[pick.index(others.len())]
        });
        prop_assert_eq!(
            signature::verify(Some(&tampered), &body, key, t, 300),
            Err(SignatureError::Invalid),
            "{:?}", tampered
        );

        let moved = header.replacen(&format!("t={t}"), &format!("t={}", t + dt), 1);
        prop_assert_eq!(signature::verify(Some(&moved), &body, &keys, t + dt, 300), Err(SignatureError::Invalid));
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// 6b. Changing one character of a key's digest to a character that is not a hex digit (nor
    /// `,` or `=`, which split the part differently) makes that entry unreadable: it is skipped,
    /// so the header is invalid when other keys' digests remain and has no signature otherwise.
    #[test]
    fn digest_with_a_non_hex_character_is_skipped(
        body in prop::collection::vec(any::<u8>(), 0..64),
        keys in keys(),
        which in any::<prop::sample::Index>(),
        at in 0usize..64,
        replacement in any::<char>().prop_filter("not a hex digit, comma or equals sign", |c| {
            !c.is_ascii_hexdigit() && *c != ',' && *c != '='
        }),
        t in 0i64..=10_000_000_000,
    ) {
        let header = zitadel_header(t, &body, &keys);
        let keys = signing_keys(&keys);
        let k = which.index(keys.len());
        prop_assume!(keys.iter().filter(|other| **other == keys[k]).count() == 1);
        let tampered = with_digest_char(&header, k, at, |_| replacement);
        let expected =
            if keys.len() > 1 { SignatureError::Invalid } else { SignatureError::Malformed(Malformed::NoSignature) };
        prop_assert_eq!(
            signature::verify(Some(&tampered), &body, &keys[k..=k], t, 300),
            Err(expected),
            "{:?}", tampered
        );
    }
}

/// The exclusion in property 6, checked once: hex digits in upper case are the same digest
/// (README: a `v1` in upper-case hex is accepted).
#[test]
fn upper_case_digest_is_the_same_digest() {
    let keys = [SigningKey::new(KEY)];
    let header = signature::header_for(NOW, b"{}", &keys);
    let upper = format!("t={NOW},{}", header.split(',').nth(1).unwrap().to_uppercase().replace("V1=", "v1="));
    assert_eq!(signature::verify(Some(&upper), b"{}", &keys, NOW, 300), Ok(()));
    let uppercase_name = header.replace("v1=", "V1=");
    assert_eq!(
        signature::verify(Some(&uppercase_name), b"{}", &keys, NOW, 300),
        Err(SignatureError::Malformed(Malformed::NoSignature)),
        "entry names are case-sensitive"
    );
}

/// JSON bodies for the decoder: payload-shaped, any shape, or nested past serde_json's limit.
fn json_body() -> BoxedStrategy<Value> {
    prop_oneof![3 => marked_payload(), 1 => any_json(), 1 => deeply_nested()].boxed()
}

/// Known object fields given as arrays are type errors, not read by position (serde's derived
/// structs would), and never `invalid_json` for valid JSON.
#[test]
fn nested_objects_given_as_arrays_are_invalid_payload() {
    let array = |path: &str| DecodeError::Field {
        path: path.into(),
        problem: "is an array where an object is expected".into(),
    };
    let cases: [(&[u8], DecodeError); 5] = [
        (br#"{"org":["312909075211944344"]}"#, array("org")),
        (br#"{"org":["x",null]}"#, array("org")),
        (br#"{"user":["u1","o1"]}"#, array("user")),
        (br#"{"user_grants":[["p",["admin"]]]}"#, array("user_grants[0]")),
        (br#"{"user_metadata":[["microsoft_access_token","dG9rZW4="]]}"#, array("user_metadata[0]")),
    ];
    for (body, expected) in cases {
        let got = payload::decode(body).map(|info| format!("{info:?}"));
        assert_eq!(got, Err(expected), "{}", String::from_utf8_lossy(body));
    }
}

/// Strings of the fixture long enough that they cannot turn up in a message by chance.
fn fixture_strings() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() >= 8 => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::from_str(FIXTURE).unwrap(), &mut out);
    out
}

/// The message of a decode error as the worker would answer it, checked for being an answer.
fn decode_error_message(e: &DecodeError) -> String {
    let error = Error::from(e.clone());
    assert_eq!(error.status(), 400);
    serde_json::from_str::<Value>(&error.to_json()).expect("error body is JSON");
    error.message()
}

proptest! {
    #![proptest_config(cases(256))]

    /// 7. Decoding any bytes never panics; decoding edits of the real payload never panics and
    /// no error repeats one of its values.
    #[test]
    fn decode_never_panics_on_bytes(
        raw in prop::collection::vec(any::<u8>(), 0..1024),
        edited in mutated_fixture(),
    ) {
        if let Err(e) = payload::decode(&raw) {
            decode_error_message(&e);
        }
        if let Err(e) = payload::decode(&edited) {
            let message = decode_error_message(&e);
            for value in fixture_strings() {
                prop_assert!(!message.contains(&value), "{} repeats {}", message, value);
            }
        }
    }

    /// 8. Decoding any JSON never panics, and an error message never repeats a string that was
    /// in the body, key or value.
    #[test]
    fn decode_errors_never_repeat_input(value in json_body(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value).unwrap() } else { value.to_string() };
        if let Err(e) = payload::decode(text.as_bytes()) {
            let message = decode_error_message(&e);
            prop_assert!(!message.contains(MARK), "{} repeats input of {}", message, text);
        }
    }

    /// 8b. Valid JSON is never answered `invalid_json`: a wrong shape is `invalid_payload`.
    #[test]
    fn valid_json_is_never_invalid_json(value in json_body()) {
        if let Err(e) = payload::decode(value.to_string().as_bytes()) {
            prop_assert!(matches!(e, DecodeError::Field { .. }), "{:?} for valid JSON {}", e, value);
        }
    }

    /// 9. A call with every claim off, for any body and any header: never a panic, never 5xx.
    #[test]
    fn handle_call_with_claims_off(body in any_body(), signed in signed()) {
        check_call(&claims_off(), &Isolate::default(), &TestPlatform::unreachable(), &signed, &body).ok();
    }

    /// 10. A call with every claim on (permissions, flat roles, groups, the Microsoft token with
    /// refresh) while ZITADEL and Microsoft are unreachable: never a panic, never 5xx.
    #[test]
    fn handle_call_with_claims_on_and_no_upstream(
        body in any_body(),
        signed in signed(),
        client_credentials in any::<bool>(),
        stale in any::<bool>(),
    ) {
        let config = claims_on(client_credentials, stale);
        check_call(&config, &Isolate::default(), &TestPlatform::unreachable(), &signed, &body).ok();
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// 11. Every claim on, and ZITADEL, Microsoft and the shared cache answer anything (any
    /// status, any body, extreme token lifetimes, any Retry-After, junk in KV): still never a
    /// panic and never 5xx, for two calls in a row on one isolate (the second meets what the
    /// first cached).
    #[test]
    fn handle_call_with_hostile_upstream(
        first in claims_payload(),
        second in claims_payload(),
        replies in prop::collection::vec(upstream_reply(), 0..8),
        kv in kv_junk(),
        client_credentials in any::<bool>(),
        stale in any::<bool>(),
    ) {
        let config = claims_on(client_credentials, stale);
        let isolate = Isolate::default();
        let platform = TestPlatform::answering(replies, kv);
        let valid = Signed::Valid { offset: 0, old_key: false };
        check_call(&config, &isolate, &platform, &valid, first.to_string().as_bytes()).ok();
        check_call(&config, &isolate, &platform, &valid, second.to_string().as_bytes()).ok();
    }
}

/// Text that is mostly what JSON escapes: quotes, backslashes, control characters (DEL and
/// non-ASCII too, which it does not), at every position around the 16-byte blocks.
fn escapable_text() -> BoxedStrategy<String> {
    let special =
        select(vec!['"', '\\', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', '\u{7f}', 'é', '😀', 'a']);
    prop::collection::vec(prop_oneof![3 => special, 1 => any::<char>()], 0..70).prop_map(String::from_iter).boxed()
}

fn claim_value() -> BoxedStrategy<(ClaimValue, Value)> {
    let list = || prop::collection::vec(escapable_text(), 0..4);
    prop_oneof![
        escapable_text().prop_map(|t| (ClaimValue::Text(t.clone()), json!(t))),
        list().prop_map(|l| (ClaimValue::List(l.iter().collect()), json!(l))),
        list().prop_map(|l| (ClaimValue::Shared(l.iter().map(|t| Rc::from(t.as_str())).collect()), json!(l))),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(cases(512))]

    /// 12. The answer, written by hand, escapes every string exactly as serde_json does, and is
    /// the JSON object ZITADEL reads: each list holds the earlier targets' entries as they came,
    /// then the worker's own, and is left out only when it is empty in total.
    #[test]
    fn answer_is_the_json_serde_would_write(
        text in escapable_text(),
        claims in prop::collection::vec((escapable_text(), claim_value()), 0..4),
        metadata in prop::collection::vec((escapable_text(), prop::collection::vec(any::<u8>(), 0..40)), 0..3),
        log_claims in prop::collection::vec(escapable_text(), 0..3),
        attributes in prop::collection::vec((escapable_text(), claim_value()), 0..3),
        earlier_claims in prop::collection::vec((escapable_text(), any_json()), 0..3),
        earlier_logs in prop::collection::vec(escapable_text(), 0..3),
        earlier_attributes in prop::collection::vec(escapable_text(), 0..2),
    ) {
        let mut written = String::new();
        response::push_json_str(&mut written, &text);
        prop_assert_eq!(written, serde_json::to_string(&text).unwrap());

        // Compared after the same trip through text as the answer's (serde_json's float parsing
        // does not round-trip every f64); the entries themselves are echoed byte for byte.
        let sent_claims: Vec<Value> = earlier_claims.iter().map(|(key, value)| json!({ "value": value, "key": key })).collect();
        let earlier_claims: Vec<Value> = sent_claims.iter().map(|c| serde_json::from_str(&c.to_string()).unwrap()).collect();
        let earlier_attributes: Vec<Value> =
            earlier_attributes.iter().map(|name| json!({ "name": name, "name_format": "", "value": [name] })).collect();
        let earlier_response = json!({ "append_claims": sent_claims, "append_log_claims": earlier_logs, "append_attribute": earlier_attributes });
        let raw = serde_json::value::RawValue::from_string(earlier_response.to_string()).unwrap();
        let oidc = chain::earlier(Function::PreAccessToken, Some(&raw)).unwrap();
        let saml = chain::earlier(Function::PreSamlResponse, Some(&raw)).unwrap();
        let earlier = chain::Earlier { append_attribute: saml.append_attribute, ..oidc };

        let answer = ContextInfoResponse {
            append_claims: claims.iter().map(|(key, (value, _))| Claim { key: key.clone(), value: value.clone() }).collect(),
            set_user_metadata: metadata.iter().map(|(key, raw)| Metadata::new(key.as_str(), raw)).collect(),
            append_log_claims: log_claims.clone(),
            append_attribute: attributes.iter().map(|(key, (value, _))| Claim { key: key.clone(), value: value.clone() }).collect(),
            earlier,
        };
        let mut expected = Map::new();
        let mut list = |name: &str, items: Vec<Value>| {
            if !items.is_empty() {
                expected.insert(name.into(), Value::Array(items));
            }
        };
        let own_claims = claims.iter().map(|(key, (_, value))| json!({ "key": key, "value": value }));
        list("append_claims", earlier_claims.iter().cloned().chain(own_claims).collect());
        list("set_user_metadata", metadata.iter().map(|(key, raw)| json!({ "key": key, "value": STANDARD.encode(raw) })).collect());
        list("append_log_claims", earlier_logs.iter().chain(&log_claims).map(|l| json!(l)).collect());
        let own_attributes = attributes.iter().map(|(name, (_, value))| {
            let values = if value.is_string() { json!([value]) } else { value.clone() };
            json!({ "name": name, "name_format": response::SAML_NAME_FORMAT, "value": values })
        });
        list("append_attribute", earlier_attributes.iter().cloned().chain(own_attributes).collect());
        let parsed: Value = serde_json::from_str(&answer.to_json()).unwrap();
        prop_assert_eq!(parsed, Value::Object(expected));
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: bugs the properties found
// ---------------------------------------------------------------------------------------------

/// The claims of a call signed now with KEY.
fn claims_of(config: &Config, platform: &TestPlatform, body: Value) -> Vec<(String, Value)> {
    let valid = Signed::Valid { offset: 0, old_key: false };
    match check_call(config, &Isolate::default(), platform, &valid, body.to_string().as_bytes()) {
        Ok(Answer::Claims(response)) => {
            let answer: Value = serde_json::from_str(&response.to_json()).unwrap();
            let claims = answer["append_claims"].as_array().cloned().unwrap_or_default();
            claims.iter().map(|c| (c["key"].as_str().unwrap().to_string(), c["value"].clone())).collect()
        }
        Ok(Answer::Message(_)) => panic!("expected claims, got a message"),
        Err(e) => panic!("expected claims, got {e:?}"),
    }
}

fn answer(status: u16, body: Value) -> Reply {
    Reply::Answer { status, body: body.to_string().into_bytes(), retry_after: None }
}

/// A stored Microsoft token that is a JWT with `exp` of -1e300 (or anything at or below
/// i64::MIN + MS_REFRESH_SKEW_SECONDS), with a refresh token and no stored expiry:
/// `jwt_expiry` saturates it to i64::MIN and `token_claim` computes `expiry - skew`
/// (src/microsoft.rs, `if expiry - skew > now`), which overflows: a panic in a debug build; in
/// the release wasm (no overflow checks) it wraps to a huge positive number and the long-expired
/// token is passed on as fresh, without a refresh.
#[test]
fn regression_jwt_exp_far_in_the_past_overflowed() {
    let jwt = format!("eyJhbGciOiJub25lIn0.{}.c2ln", URL_SAFE_NO_PAD.encode(r#"{"exp":-1e300}"#));
    let body = json!({
        "function": "function/preaccesstoken",
        "user": { "id": "u1" },
        "user_metadata": [
            { "key": "microsoft_access_token", "value": STANDARD.encode(format!("\"{jwt}\"")) },
            { "key": "microsoft_refresh_token", "value": STANDARD.encode("refresh-token") },
        ],
    });
    // Expired, so a refresh is tried; Microsoft is unreachable, so the claim is omitted.
    let claims = claims_of(&claims_on(false, false), &TestPlatform::unreachable(), body);
    assert!(claims.iter().all(|(k, _)| k != "urn:custom:ms_access_token"), "{claims:?}");
}

/// ZITADEL's client-credentials token answer with `expires_in` above about 1.8e16 s (u64::MAX
/// here): `bearer` computes `platform.now_ms() + lifetime_ms - margin` (src/zitadel.rs) where
/// `lifetime_ms` saturated at u64::MAX, which overflows: a panic in a debug build; in the
/// release wasm it wraps to a time in the past, so the token is fetched again on every call.
#[test]
fn regression_zitadel_token_lifetime_overflowed() {
    let replies = vec![
        answer(200, json!({ "access_token": "issued", "token_type": "Bearer", "expires_in": u64::MAX })),
        answer(
            200,
            json!({
                "pagination": { "totalResult": "1" },
                "metadata": [{ "key": "admin", "value": STANDARD.encode(r#"["posts:read"]"#) }],
            }),
        ),
    ];
    let body = json!({
        "function": "function/preaccesstoken",
        "org": { "id": "o1" },
        "user_grants": [{ "project_id": "p1", "roles": ["admin"] }],
    });
    let claims = claims_of(&claims_on(true, false), &TestPlatform::answering(replies, None), body);
    assert!(claims.contains(&("permissions".to_string(), json!(["posts:read"]))), "{claims:?}");
}

/// Microsoft's refresh answer with `expires_in` near i64::MAX (a number, or a string such as
/// "9223372036854775807"): `request_refresh` computes `now + expires_in` (src/microsoft.rs),
/// which overflows: a panic in a debug build; in the release wasm it wraps to a negative expiry,
/// which is written back to the user's metadata.
#[test]
fn regression_microsoft_refresh_lifetime_overflowed() {
    for expires_in in [json!(i64::MAX), json!(i64::MAX.to_string())] {
        let replies = vec![answer(200, json!({ "access_token": "new-token", "expires_in": expires_in }))];
        let body = json!({
            "function": "function/preaccesstoken",
            "user": { "id": "u1" },
            "user_metadata": [{ "key": "microsoft_refresh_token", "value": STANDARD.encode("refresh-token") }],
        });
        let claims = claims_of(&claims_on(false, false), &TestPlatform::answering(replies, None), body);
        assert!(claims.contains(&("urn:custom:ms_access_token".to_string(), json!("new-token"))), "{claims:?}");
    }
}
